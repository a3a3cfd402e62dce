//! Rooms: 1:1 rooms (one per pair), groups with owner / admin / member roles, the room
//! list, membership changes and the `room.updated` / `room.left` frames they cause.
//!
//! The parts: `direct` (1:1 rooms), `groups` (creating a group, who sees it, its size),
//! `membership` (renaming, adding, roles, removing, leaving and handing over), `list` (the
//! room list) and `live` (the frames membership changes cause). What they share is here.

use std::time::Duration;

use palaver_client::Socket;
use palaver_proto::{Role, Room, ServerFrame};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

mod direct;
mod groups;
mod list;
mod live;
mod membership;

/// Any request as `user`: the status and the JSON body, error statuses included.
async fn request(user: &TestUser, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    user.api
        .raw(method, path, body.as_ref())
        .await
        .expect("request")
}

/// Decodes a successful answer as a room.
#[track_caller]
fn room_of(answer: (u16, Value)) -> Room {
    assert!(
        answer.0 < 300,
        "expected success, got {} {}",
        answer.0,
        answer.1
    );
    serde_json::from_value(answer.1).expect("a Room")
}

async fn create(user: &TestUser, body: Value) -> (u16, Value) {
    request(user, Method::POST, "/api/v1/rooms/create", Some(body)).await
}

async fn get_room(user: &TestUser, room: Uuid) -> (u16, Value) {
    request(user, Method::GET, &format!("/api/v1/rooms/{room}"), None).await
}

async fn rename(user: &TestUser, room: Uuid, name: &str) -> (u16, Value) {
    request(
        user,
        Method::PATCH,
        &format!("/api/v1/rooms/{room}"),
        Some(json!({ "name": name })),
    )
    .await
}

async fn add(user: &TestUser, room: Uuid, ids: &[Uuid]) -> (u16, Value) {
    request(
        user,
        Method::POST,
        &format!("/api/v1/rooms/{room}/members"),
        Some(json!({ "userIds": ids })),
    )
    .await
}

async fn set_role(user: &TestUser, room: Uuid, target: Uuid, role: &str) -> (u16, Value) {
    request(
        user,
        Method::PATCH,
        &format!("/api/v1/rooms/{room}/members/{target}"),
        Some(json!({ "role": role })),
    )
    .await
}

async fn remove(user: &TestUser, room: Uuid, target: Uuid) -> (u16, Value) {
    request(
        user,
        Method::DELETE,
        &format!("/api/v1/rooms/{room}/members/{target}"),
        None,
    )
    .await
}

async fn leave(user: &TestUser, room: Uuid) -> (u16, Value) {
    request(
        user,
        Method::POST,
        &format!("/api/v1/rooms/{room}/leave"),
        None,
    )
    .await
}

/// The caller's view of one room, from the room list.
async fn listed(user: &TestUser, room: Uuid) -> Room {
    user.api
        .rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.id == room)
        .expect("the room is listed")
}

fn role_of(room: &Room, user: &TestUser) -> Option<Role> {
    room.members
        .iter()
        .find(|m| m.user_id == user.id)
        .map(|m| m.role)
}

fn member_ids(room: &Room) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = room.members.iter().map(|m| m.user_id).collect();
    ids.sort();
    ids
}

fn ids_of(users: &[&TestUser]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    ids.sort();
    ids
}

/// Waits for a `room.updated` frame about `room`; returns the room it carries.
async fn room_updated(socket: &mut Socket, room: Uuid) -> Room {
    match socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::RoomUpdated { room: r } if r.id == room),
        )
        .await
        .expect("room.updated frame")
    {
        ServerFrame::RoomUpdated { room } => room,
        _ => unreachable!(),
    }
}

/// Waits for the `message` frame of this message, skipping other frames.
async fn message_frame(socket: &mut Socket, id: Uuid) -> palaver_proto::Message {
    match socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::Message { message } if message.id == id),
        )
        .await
        .expect("message frame")
    {
        ServerFrame::Message { message } => message,
        _ => unreachable!(),
    }
}

/// So that things done one after the other get distinct millisecond timestamps.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(15)).await;
}
