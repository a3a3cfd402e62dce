//! Integration tests: the real server on a random port over a temporary data directory,
//! driven by real HTTP and WebSocket clients. One binary, one module per area.

mod helpers;

mod accounts;
mod authz;
mod cluster;
mod configuration;
mod durability;
mod errors;
mod media;
mod messaging;
mod operations;
mod push;
mod realtime;
mod rooms;
