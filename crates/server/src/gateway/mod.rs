//! The WebSocket gateway: the connections this node holds (`connection`) and the hub
//! that fans bus events out to them (`hub`). It knows no HTTP: the handshake is the HTTP
//! edge's (`http/ws.rs`), which hands each upgraded socket to `connection::run`.

pub mod connection;
pub mod hub;
