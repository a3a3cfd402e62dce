//! Bad input gets a clear error in the one error shape, and changes nothing: malformed
//! and oversized bodies and frames, forged tokens, strangers to a room, foreign origins,
//! rate limits, slow consumers and removed members.
//!
//! The parts: `rest` (bodies, routes, ids and missing tokens), `tokens` (forged and expired
//! tokens), `socket` (malformed and oversized frames, and origins), `access` (strangers
//! to a room and removed members) and `limits` (rate limits and slow consumers). What
//! they share is here.

use palaver_client::Socket;
use palaver_proto::{ClientFrame, ErrorCode, MessageType, SendMessageRequest, ServerFrame};
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

mod access;
mod limits;
mod rest;
mod socket;
mod tokens;

/// Asserts an HTTP answer is the error shape with this status and code.
#[track_caller]
fn assert_api_error(got: (u16, Value), status: u16, code: &str) {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "status; body: {body}");
    assert_eq!(body["error"]["code"], code, "error code; body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error message; body: {body}"
    );
}

async fn call(user: &TestUser, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    user.api
        .raw(method, path, body.as_ref())
        .await
        .expect("request")
}

/// How many messages the room holds, its events (created, joined, removed…) aside.
async fn history_len(user: &TestUser, room: Uuid) -> usize {
    user.api
        .history(room, None, None, Some(200))
        .await
        .expect("history")
        .messages
        .iter()
        .filter(|m| m.kind != palaver_proto::MessageType::Event)
        .count()
}

/// Waits for the socket's `error` frame answering frame `id`.
async fn error_for(socket: &mut Socket, id: Option<&str>) -> ErrorCode {
    let frame = socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::Error { id: got, .. } if got.as_deref() == id),
        )
        .await
        .unwrap_or_else(|e| panic!("error frame for id {id:?}: {e:?}"));
    match frame {
        ServerFrame::Error { code, message, .. } => {
            assert!(!message.is_empty());
            code
        }
        _ => unreachable!(),
    }
}

/// Pings and expects the pong: the connection is still usable.
async fn assert_alive(socket: &mut Socket) {
    let id = socket
        .send_frame(ClientFrame::Ping)
        .await
        .expect("send ping");
    match socket.answer(&id, WAIT).await.expect("pong") {
        ServerFrame::Pong { id: Some(got) } => assert_eq!(got, id),
        other => panic!("expected pong, got {other:?}"),
    }
}

fn send_frame(room: Uuid, client_msg_id: &str, content: &str) -> ClientFrame {
    ClientFrame::Send {
        message: SendMessageRequest {
            room_id: room,
            client_msg_id: client_msg_id.into(),
            content: content.into(),
            kind: MessageType::Text,
            media_id: None,
            ..Default::default()
        },
    }
}
