//! The whole api suite (tests/api/) again, with every test's server on the cluster engines:
//! PostgreSQL, NATS JetStream and Redis, each test in a namespace of its own. Without the
//! engines it is skipped, loudly; under `CI=true` it fails.

#[path = "api/main.rs"]
mod api;

// The suite's modules reach their helpers from the crate root (`crate::helpers`).
use api::{helpers, oidc, support};

const CLUSTER_ENGINES: bool = true;
