//! The Palaver chat server as a library: `Application::build(config)` then
//! `run_until_stopped(shutdown)`. The `palaver` binary is a thin wrapper; integration
//! tests start it on port 0.
//!
//! Layout: `service` holds the rules; `http` and `gateway` are the edges; `store`, `bus`
//! and `cache` are traits with one module per engine (docs/ARCHITECTURE.md).

pub mod app;
pub mod at_rest;
pub mod backup;
pub mod bus;
pub mod cache;
pub mod clock;
pub mod config;
pub mod domain;
pub mod files;
pub mod gateway;
pub mod http;
pub mod link_preview;
pub mod media;
pub mod outbound;
pub mod push;
pub mod rekey;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod transport;

pub use app::{Application, StartError};
pub use config::Config;
