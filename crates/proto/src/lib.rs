//! Palaver's wire contract: every REST body, WebSocket frame and error code that crosses
//! the network. The server, the client library, the CLI and the load generator all use
//! these types, so a change here is a change to the public protocol (docs/PROTOCOL.md).
//!
//! JSON field names are camelCase, ids are UUID v7 strings, timestamps RFC 3339 UTC and
//! `seq` an integer. It depends only on serde, uuid and time
//! (no async runtime, no HTTP), so any client can use it.

pub mod account;
pub mod admin;
pub mod close;
pub mod conversation;
pub mod error;
pub mod frames;
mod integral;
pub mod login;
pub mod mls;
pub mod model;
pub mod push;
pub mod role;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod search;

pub use account::*;
pub use admin::*;
pub use conversation::*;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use frames::{ClientEnvelope, ClientFrame, LeftReason, ServerFrame, client_type, server_type};
pub use login::*;
pub use mls::*;
pub use model::*;
pub use push::*;
pub use role::Role;
pub use search::{SearchQuery, SearchResponse};

/// Path prefix of the REST API and the WebSocket endpoint.
pub const API_PREFIX: &str = "/api/v1";
