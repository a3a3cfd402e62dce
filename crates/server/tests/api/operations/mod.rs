//! Operations: health, readiness, metrics, the OpenAPI document, graceful shutdown and
//! restart, TLS, presence and heartbeats.
//!
//! The parts: `health` (health, readiness, metrics and what caches may keep), `openapi`
//! (the document against the router), `lifecycle` (graceful shutdown, restart and TLS),
//! `presence` (presence and heartbeats) and `data_dir` (a private data directory).

mod data_dir;
mod health;
mod lifecycle;
mod openapi;
mod presence;
