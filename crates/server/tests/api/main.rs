//! Integration tests: the real server on a random port over a temporary data directory,
//! driven by real HTTP and WebSocket clients. One binary, one module per area.

// `pub(crate)`: tests/api_cluster.rs includes this file as a module and re-exports them.
pub(crate) mod helpers;

pub(crate) mod accounts;
pub(crate) mod cluster;
pub(crate) mod configuration;
pub(crate) mod durability;
pub(crate) mod errors;
pub(crate) mod media;
pub(crate) mod messaging;
pub(crate) mod operations;
pub(crate) mod push;
pub(crate) mod realtime;
pub(crate) mod rooms;

/// Whether every test's server runs on the cluster engines: no here, on the embedded
/// defaults; tests/api_cluster.rs sets its own to run this suite on PostgreSQL + NATS +
/// Redis.
#[allow(dead_code)] // Unused where api_cluster.rs includes this file.
const CLUSTER_ENGINES: bool = false;
