//! The whole api suite (tests/api/) again, with every test's server on the cluster engines:
//! PostgreSQL, NATS JetStream and Redis, each test in a namespace of its own. Without the
//! engines it is skipped, loudly; under `CI=true` it fails.

#[path = "api/main.rs"]
mod api;

// The suite's modules name each other from the crate root (`crate::helpers`).
#[allow(unused_imports)]
use api::{
    accounts, cluster, configuration, durability, errors, helpers, media, messaging, operations,
    push, realtime, rooms,
};

const CLUSTER_ENGINES: bool = true;
