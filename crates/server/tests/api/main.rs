//! Integration tests: the real server on a random port over a temporary data directory,
//! driven by real HTTP and WebSocket clients. One binary, one module per area.

// `pub(crate)`: tests/api_cluster.rs includes this file as a module and re-exports it.
pub(crate) mod helpers;
#[path = "../support/oidc.rs"]
pub(crate) mod oidc;
#[path = "../support/mod.rs"]
pub(crate) mod support;

mod accounts;
mod admin;
mod authz;
mod cluster;
mod configuration;
mod connections;
mod consent;
mod contract;
mod conversations;
mod durability;
mod e2ee;
mod errors;
mod media;
mod messaging;
mod operations;
mod pictures;
mod previews;
mod push;
mod realtime;
mod rooms;
mod search;
mod sso;

/// Whether every test's server runs on the cluster engines: no here, on the embedded
/// defaults; tests/api_cluster.rs sets its own to run this suite on PostgreSQL + NATS +
/// Redis.
#[allow(dead_code)] // Unused where api_cluster.rs includes this file.
const CLUSTER_ENGINES: bool = false;
