//! Conversations: replies, threads, reactions, mentions, pins, forwards, room events and
//! notification levels (service/conversation.rs), and the sync that replays every change
//! (sync.rs here: the randomised state-equality test).

mod events;
mod features;
mod input;
mod sync;

use palaver_proto::Message;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// Any request, answered as (status, JSON).
async fn call(user: &TestUser, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    user.api
        .raw(method, path, body.as_ref())
        .await
        .expect("request")
}

/// A send with extra fields (`replyToId`, `threadRootId`, `alsoInRoom`…).
async fn send_with(user: &TestUser, room: Uuid, text: &str, extra: Value) -> (u16, Value) {
    let mut body =
        json!({"roomId": room, "clientMsgId": Uuid::now_v7().to_string(), "content": text});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    call(user, Method::POST, "/api/v1/messages/send", Some(body)).await
}

/// The message of a successful answer.
fn message_of(answer: (u16, Value)) -> Message {
    assert!(matches!(answer.0, 200 | 201), "{answer:?}");
    serde_json::from_value(answer.1).expect("a message")
}

/// Adds (`add`) or removes a reaction; `emoji` is put in the path URL-encoded.
async fn react(user: &TestUser, message: Uuid, emoji: &str, add: bool) -> (u16, Value) {
    let method = if add { Method::PUT } else { Method::DELETE };
    let path = format!(
        "/api/v1/messages/{message}/reactions/{}",
        urlencoding(emoji)
    );
    call(user, method, &path, None).await
}

/// Percent-encodes every byte outside `A-Za-z0-9-_.~:`.
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Pins (`pin`) or unpins a message.
async fn pin(user: &TestUser, room: Uuid, message: Uuid, pin: bool) -> (u16, Value) {
    let method = if pin { Method::PUT } else { Method::DELETE };
    call(
        user,
        method,
        &format!("/api/v1/rooms/{room}/pins/{message}"),
        None,
    )
    .await
}

/// A message as `user` reads it now.
async fn fetch(user: &TestUser, message: Uuid) -> Message {
    message_of(
        call(
            user,
            Method::GET,
            &format!("/api/v1/messages/{message}"),
            None,
        )
        .await,
    )
}

/// Every message of a room, ascending.
async fn all_messages(user: &TestUser, room: Uuid) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    loop {
        let after = out.last().map(|m| m.seq).unwrap_or(0);
        let page = user
            .api
            .history(room, None, Some(after), Some(200))
            .await
            .expect("history");
        let more = page.has_more;
        out.extend(page.messages);
        if !more {
            return out;
        }
    }
}
