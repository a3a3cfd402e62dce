//! Server administrators: the role (the first account, `admin.usernames`), the admin API
//! (accounts, sessions, roles, rooms, the audit log), disabling an account on every node,
//! and `palaver admin` in both modes.
//!
//! The parts: `role` (who is an administrator; who may call the admin API), `accounts`
//! (list, create, disable, enable, passwords, sessions, promote, demote), `rooms_audit`
//! (rooms and the audit log), `input` (malformed, oversized, unknown ids), `cluster`
//! (disabling on node A ends the socket and token on node B) and `cli` (the binary).

mod accounts;
mod cli;
mod cluster;
mod input;
mod moderation;
mod role;
mod rooms_audit;

use palaver_client::ClientError;
use palaver_proto::{ServerFrame, close};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

/// A strong password that is not `PASSWORD`.
const OTHER_PASSWORD: &str = "staple orbit lantern 7 meadow";

/// A server whose first account, `admin`, administers it; and `bob`, who does not.
async fn with_admin() -> (TestApp, TestUser, TestUser) {
    let app = spawn_app().await;
    let admin = app.user("admin").await;
    let bob = app.user("bob").await;
    (app, admin, bob)
}

async fn call(user: &TestUser, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    user.api
        .raw(method, path, body.as_ref())
        .await
        .expect("request")
}

/// Waits until `socket` is closed with `code`; other frames are skipped.
async fn closed_with(socket: &mut palaver_client::Socket, code: u16) {
    loop {
        match socket.next_within(WAIT).await {
            Ok(ServerFrame::Error { .. }) | Ok(_) => continue,
            Err(ClientError::Closed(Some((got, _)))) => {
                assert_eq!(got, code, "close code");
                return;
            }
            Err(other) => panic!("expected the socket to close with {code}, got {other}"),
        }
    }
}

/// The socket of an account that was disabled is closed as an ended session.
async fn session_ended(socket: &mut palaver_client::Socket) {
    closed_with(socket, close::SESSION_ENDED).await
}
