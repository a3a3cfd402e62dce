//! Privacy by consent (finding 7 of the hardening round, docs/SECURITY.md): a 1:1 room from
//! a stranger is a request and a group add by a stranger an invitation; until the invitee
//! accepts, no presence, last seen, typing or receipts flow between them and the room. A
//! user can decline, leave a 1:1 room, and block: no 1:1 rooms, invitations or presence
//! between the two, either way.
//!
//! Each test opens sockets on both sides and checks what does not arrive as well as what
//! does: a hidden presence is one that neither the REST answer nor any frame reveals.
//!
//! The parts: `requests` (requests and invitations, accepting, declining, leaving, and the
//! consent routes' input checks) and `blocks` (blocks, and blocks and accepts across
//! nodes). The helpers they share are here.

use palaver_client::Socket;
use palaver_proto::{ClientFrame, MemberState, PresenceStatus, Room, ServerFrame};
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

mod blocks;
mod requests;

async fn request(user: &TestUser, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    user.api
        .raw(method, path, body.as_ref())
        .await
        .expect("request")
}

/// `request` with a path of its own (for closures that build it).
async fn request_to(user: &TestUser, method: Method, path: String) -> (u16, Value) {
    request(user, method, &path, None).await
}

fn state_of(room: &Room, user: &TestUser) -> Option<MemberState> {
    room.members
        .iter()
        .find(|m| m.user_id == user.id)
        .map(|m| m.state)
}

/// `GET /presence/{user}` as `viewer`: the status, or the error code.
async fn presence_of(viewer: &TestUser, user: &TestUser) -> (u16, Value) {
    let path = format!("/api/v1/presence/{}", user.id);
    request(viewer, Method::GET, &path, None).await
}

/// Whether `viewer` may see `user`'s presence and last seen, over every REST route that
/// answers them: all three agree, or the test fails.
async fn sees(viewer: &TestUser, user: &TestUser) -> bool {
    let mut answers = Vec::new();
    for route in ["presence", "chat/status", "lastseen"] {
        let path = format!("/api/v1/{route}/{}", user.id);
        let answer = request(viewer, Method::GET, &path, None).await;
        match answer.0 {
            200 => answers.push(true),
            _ => {
                assert_error(&answer, 404, "user_not_found");
                answers.push(false);
            }
        }
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "the presence routes disagree: {answers:?}"
    );
    answers[0]
}

/// Sends a frame and returns the answer: `Ok` for an ack, else the error code.
async fn frame(socket: &mut Socket, frame: ClientFrame) -> Result<(), String> {
    let id = socket.send_frame(frame).await.expect("send frame");
    match socket.answer(&id, WAIT).await {
        Ok(_) => Ok(()),
        Err(palaver_client::ClientError::Api { code, .. }) => Err(code.as_str().to_owned()),
        Err(other) => panic!("no answer: {other}"),
    }
}

fn typing(room: Uuid) -> ClientFrame {
    ClientFrame::Typing {
        room_id: room,
        active: true,
    }
}

fn away() -> ClientFrame {
    ClientFrame::Presence {
        status: PresenceStatus::Away,
    }
}

/// Waits for a `room.updated` about `room`.
async fn room_updated(socket: &mut Socket, room: Uuid) -> Room {
    match socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::RoomUpdated { room: r } if r.id == room),
        )
        .await
        .expect("room.updated")
    {
        ServerFrame::RoomUpdated { room } => room,
        _ => unreachable!(),
    }
}

/// Frames that would tell one side about the other's activity.
fn activity_of(user: Uuid) -> impl Fn(&ServerFrame) -> bool {
    move |f| match f {
        ServerFrame::Presence { user_id, .. }
        | ServerFrame::Typing { user_id, .. }
        | ServerFrame::Receipt { user_id, .. } => *user_id == user,
        _ => false,
    }
}
