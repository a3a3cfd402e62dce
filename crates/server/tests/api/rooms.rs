//! Rooms: 1:1 rooms (one per pair), groups with owner / admin / member roles, the room
//! list, membership changes and the `room.updated` / `room.left` frames they cause.

use std::time::Duration;

use palaver_client::Socket;
use palaver_proto::{MemberState, ReceiptsResponse, Role, Room, ServerFrame};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

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

async fn receipts(user: &TestUser, room: Uuid) -> ReceiptsResponse {
    let answer = request(
        user,
        Method::GET,
        &format!("/api/v1/rooms/{room}/receipts"),
        None,
    )
    .await;
    assert_eq!(answer.0, 200, "receipts: {}", answer.1);
    serde_json::from_value(answer.1).expect("a ReceiptsResponse")
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

// ---------------------------------------------------------------------------------------
// 1:1 rooms

#[tokio::test]
async fn a_dm_is_created_once_per_pair() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let first = create(&alice, json!({ "isGroup": false, "memberIds": [bob.id] })).await;
    assert_eq!(first.0, 201, "{}", first.1);
    let body = &first.1;
    assert!(body["id"].is_string());
    assert_eq!(body["isGroup"], false);
    assert_eq!(body["name"], "Bob", "alice sees the room named after bob");
    assert_eq!(body["members"].as_array().map(Vec::len), Some(2));
    let room = room_of(first);
    assert_eq!(member_ids(&room), ids_of(&[&alice, &bob]));
    assert!(
        room.members.iter().all(|m| m.role == Role::Member),
        "both people in a 1:1 room are members: {:?}",
        room.members
    );
    assert_eq!(room.last_seq, 0);

    // Asking again, from either side, answers 200 with the same room.
    let again = create(&alice, json!({ "isGroup": false, "memberIds": [bob.id] })).await;
    assert_eq!(again.0, 200, "{}", again.1);
    assert_eq!(room_of(again).id, room.id);
    let from_bob = create(&bob, json!({ "isGroup": false, "memberIds": [alice.id] })).await;
    assert_eq!(from_bob.0, 200, "{}", from_bob.1);
    let bobs = room_of(from_bob);
    assert_eq!(bobs.id, room.id);
    assert_eq!(bobs.name, "Alice", "bob sees the room named after alice");

    // Each viewer sees the other's name, on every read.
    assert_eq!(room_of(get_room(&alice, room.id).await).name, "Bob");
    assert_eq!(room_of(get_room(&bob, room.id).await).name, "Alice");
    assert_eq!(listed(&alice, room.id).await.name, "Bob");
    assert_eq!(listed(&bob, room.id).await.name, "Alice");
    assert_eq!(
        alice.api.rooms().await.expect("rooms").len(),
        1,
        "no second room"
    );

    // The name follows the other person's display name.
    let renamed = request(
        &bob,
        Method::PATCH,
        "/api/v1/users/me",
        Some(json!({ "displayName": "Robert" })),
    )
    .await;
    assert_eq!(renamed.0, 200, "{}", renamed.1);
    assert_eq!(room_of(get_room(&alice, room.id).await).name, "Robert");
    assert_eq!(room_of(get_room(&bob, room.id).await).name, "Alice");
}

#[tokio::test]
async fn a_dm_needs_exactly_one_other_existing_person() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;

    let none = create(&alice, json!({ "isGroup": false, "memberIds": [] })).await;
    assert_error(&none, 422, "validation_failed");
    let missing = create(&alice, json!({ "isGroup": false })).await;
    assert_error(&missing, 422, "validation_failed");
    let only_me = create(&alice, json!({ "isGroup": false, "memberIds": [alice.id] })).await;
    assert_error(&only_me, 422, "validation_failed");
    let two = create(
        &alice,
        json!({ "isGroup": false, "memberIds": [bob.id, carol.id] }),
    )
    .await;
    assert_error(&two, 422, "validation_failed");

    let stranger = Uuid::now_v7();
    let unknown = create(&alice, json!({ "isGroup": false, "memberIds": [stranger] })).await;
    assert_error(&unknown, 404, "user_not_found");

    assert!(
        alice.api.rooms().await.expect("rooms").is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn nobody_is_removed_from_a_dm_but_either_may_leave() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dm = alice.dm(&bob).await;

    // Leaving a 1:1 room is allowed since issue 13 item 7 (one must be able to get out
    // of a conversation one did not want; docs/PROTOCOL.md): tested below and in
    // tests/api/consent.rs. Removing the other person is not.
    assert_error(&remove(&alice, dm.id, bob.id).await, 403, "forbidden");
    assert_error(&remove(&bob, dm.id, alice.id).await, 403, "forbidden");
    assert_error(
        &set_role(&alice, dm.id, bob.id, "admin").await,
        403,
        "forbidden",
    );
    assert_error(&rename(&alice, dm.id, "Ours").await, 403, "forbidden");
    assert_error(&add(&alice, dm.id, &[carol.id]).await, 403, "forbidden");

    let room = room_of(get_room(&alice, dm.id).await);
    assert_eq!(member_ids(&room), ids_of(&[&alice, &bob]), "both still in");
    assert_error(&get_room(&carol, dm.id).await, 404, "room_not_found");

    // Leaving oneself, either way it is said, takes one out and leaves the other in.
    assert_eq!(leave(&bob, dm.id).await.0, 204);
    assert_error(&get_room(&bob, dm.id).await, 404, "room_not_found");
    let room = room_of(get_room(&alice, dm.id).await);
    assert_eq!(member_ids(&room), ids_of(&[&alice]), "alice is still in");
    assert_eq!(remove(&alice, dm.id, alice.id).await.0, 204);
    assert_error(&get_room(&alice, dm.id).await, 404, "room_not_found");
}

// ---------------------------------------------------------------------------------------
// Groups

#[tokio::test]
async fn a_group_has_an_owner_and_members() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;

    let answer = create(
        &alice,
        json!({ "name": "Team", "isGroup": true, "memberIds": [bob.id, carol.id] }),
    )
    .await;
    assert_eq!(answer.0, 201, "{}", answer.1);
    assert_eq!(answer.1["isGroup"], true);
    let group = room_of(answer);
    assert_eq!(group.name, "Team");
    assert!(group.is_group);
    assert_eq!(member_ids(&group), ids_of(&[&alice, &bob, &carol]));
    assert_eq!(role_of(&group, &alice), Some(Role::Owner));
    assert_eq!(role_of(&group, &bob), Some(Role::Member));
    assert_eq!(role_of(&group, &carol), Some(Role::Member));

    // Every member sees the group, under its name.
    for user in [&alice, &bob, &carol] {
        let seen = room_of(get_room(user, group.id).await);
        assert_eq!(seen.name, "Team");
        assert_eq!(seen.id, group.id);
    }

    // Another group with the same people is another group (only 1:1 rooms are unique).
    let second = create(
        &alice,
        json!({ "name": "Team", "isGroup": true, "memberIds": [bob.id, carol.id] }),
    )
    .await;
    assert_eq!(second.0, 201, "{}", second.1);
    assert_ne!(room_of(second).id, group.id);
}

#[tokio::test]
async fn a_group_needs_a_name_and_existing_members() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let unnamed = create(&alice, json!({ "isGroup": true, "memberIds": [bob.id] })).await;
    assert_error(&unnamed, 422, "validation_failed");
    let empty = create(
        &alice,
        json!({ "name": "", "isGroup": true, "memberIds": [bob.id] }),
    )
    .await;
    assert_error(&empty, 422, "validation_failed");
    let blank = create(
        &alice,
        json!({ "name": "   ", "isGroup": true, "memberIds": [bob.id] }),
    )
    .await;
    assert_error(&blank, 422, "validation_failed");
    let long = create(
        &alice,
        json!({ "name": "x".repeat(101), "isGroup": true, "memberIds": [bob.id] }),
    )
    .await;
    assert_error(&long, 422, "validation_failed");
    let unknown = create(
        &alice,
        json!({ "name": "Team", "isGroup": true, "memberIds": [bob.id, Uuid::now_v7()] }),
    )
    .await;
    assert_error(&unknown, 404, "user_not_found");

    assert!(alice.api.rooms().await.expect("rooms").is_empty());
    assert!(bob.api.rooms().await.expect("rooms").is_empty());
}

#[tokio::test]
async fn the_room_list_is_most_recent_first_with_last_message_and_unread_count() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let dm = alice.dm(&bob).await;
    tick().await;
    let group = alice.group("Team", &[&bob]).await;

    // The newest room comes first; nothing is unread yet.
    let rooms = alice.api.rooms().await.expect("rooms");
    let order: Vec<Uuid> = rooms.iter().map(|r| r.id).collect();
    assert_eq!(order, vec![group.id, dm.id]);
    assert!(
        rooms
            .iter()
            .all(|r| r.unread_count == 0 && r.last_message.is_none())
    );

    // Bob writes three messages in the older room: it moves to the top.
    tick().await;
    for text in ["one", "two", "three"] {
        bob.send(dm.id, text).await;
    }
    let rooms = alice.api.rooms().await.expect("rooms");
    let order: Vec<Uuid> = rooms.iter().map(|r| r.id).collect();
    assert_eq!(order, vec![dm.id, group.id], "most recently active first");
    let mine = &rooms[0];
    assert_eq!(mine.unread_count, 3);
    assert_eq!(mine.last_seq, 3);
    let last = mine.last_message.as_ref().expect("lastMessage");
    assert_eq!(last.seq, 3);
    assert_eq!(last.content, "three");
    assert_eq!(last.sender_id, bob.id);
    assert_eq!(last.room_id, dm.id);
    assert_eq!(rooms[1].unread_count, 0);
    assert!(rooms[1].last_message.is_none());

    // The same in the raw JSON, with camelCase names.
    let (status, raw) = request(&alice, Method::GET, "/api/v1/rooms", None).await;
    assert_eq!(status, 200);
    assert_eq!(raw["rooms"][0]["unreadCount"], 3);
    assert_eq!(raw["rooms"][0]["lastMessage"]["content"], "three");

    // One's own messages are never unread.
    assert_eq!(listed(&bob, dm.id).await.unread_count, 0);
    // GET /rooms/{id} carries the same.
    let one = room_of(get_room(&alice, dm.id).await);
    assert_eq!(one.unread_count, 3);
    assert_eq!(one.last_message.as_ref().map(|m| m.seq), Some(3));

    // Reading moves the count.
    let path = format!("/api/v1/rooms/{}/receipts", dm.id);
    let read_one = request(
        &alice,
        Method::POST,
        &path,
        Some(json!({ "seq": 1, "status": "read" })),
    )
    .await;
    assert_eq!(read_one.0, 200, "{}", read_one.1);
    assert_eq!(listed(&alice, dm.id).await.unread_count, 2);
    let read_all = request(
        &alice,
        Method::POST,
        &path,
        Some(json!({ "seq": 3, "status": "read" })),
    )
    .await;
    assert_eq!(read_all.0, 200, "{}", read_all.1);
    let summary: ReceiptsResponse = serde_json::from_value(read_all.1).expect("receipts");
    assert_eq!(summary.room_id, dm.id);
    let alices = summary
        .members
        .iter()
        .find(|m| m.user_id == alice.id)
        .expect("alice's markers");
    assert_eq!(alices.read_seq, 3);
    assert_eq!(listed(&alice, dm.id).await.unread_count, 0);
    assert_eq!(room_of(get_room(&alice, dm.id).await).unread_count, 0);

    // A new room counts as activity too.
    tick().await;
    let carol = app.user("carol").await;
    let newest = alice.group("Newest", &[&carol]).await;
    let order: Vec<Uuid> = alice
        .api
        .rooms()
        .await
        .expect("rooms")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(order, vec![newest.id, dm.id, group.id]);

    // So do added members.
    tick().await;
    let dave = app.user("dave").await;
    room_of(add(&alice, group.id, &[dave.id]).await);
    let order: Vec<Uuid> = alice
        .api
        .rooms()
        .await
        .expect("rooms")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(order, vec![group.id, newest.id, dm.id]);
}

#[tokio::test]
async fn only_members_see_a_room() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let group = alice.group("Team", &[&bob]).await;

    let seen = room_of(get_room(&bob, group.id).await);
    assert_eq!(seen.id, group.id);
    assert_eq!(seen.name, "Team");
    assert_eq!(member_ids(&seen), ids_of(&[&alice, &bob]));

    assert_error(&get_room(&carol, group.id).await, 404, "room_not_found");
    assert_error(
        &get_room(&alice, Uuid::now_v7()).await,
        404,
        "room_not_found",
    );
    assert_error(
        &rename(&carol, group.id, "Mine").await,
        404,
        "room_not_found",
    );
    assert_error(
        &add(&carol, group.id, &[carol.id]).await,
        404,
        "room_not_found",
    );
    assert_error(&leave(&carol, group.id).await, 404, "room_not_found");
    let peek = request(
        &carol,
        Method::GET,
        &format!("/api/v1/rooms/{}/receipts", group.id),
        None,
    )
    .await;
    assert_error(&peek, 404, "room_not_found");
    assert!(carol.api.rooms().await.expect("rooms").is_empty());
}

#[tokio::test]
async fn owners_and_admins_rename_a_group_members_do_not() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = alice.group("Team", &[&bob]).await;

    let renamed = room_of(rename(&alice, group.id, "Team 2").await);
    assert_eq!(renamed.name, "Team 2");
    assert_eq!(room_of(get_room(&bob, group.id).await).name, "Team 2");

    assert_error(&rename(&bob, group.id, "Bob's").await, 403, "forbidden");
    assert_eq!(room_of(get_room(&alice, group.id).await).name, "Team 2");

    assert_error(
        &rename(&alice, group.id, "").await,
        422,
        "validation_failed",
    );
    assert_error(
        &rename(&alice, group.id, &"x".repeat(101)).await,
        422,
        "validation_failed",
    );

    room_of(set_role(&alice, group.id, bob.id, "admin").await);
    let by_admin = room_of(rename(&bob, group.id, "Bob's").await);
    assert_eq!(by_admin.name, "Bob's");
}

#[tokio::test]
async fn owners_and_admins_add_members_members_do_not() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let group = alice.group("Team", &[&bob]).await;

    assert_error(&add(&bob, group.id, &[carol.id]).await, 403, "forbidden");
    assert_error(&get_room(&carol, group.id).await, 404, "room_not_found");

    let added = room_of(add(&alice, group.id, &[carol.id]).await);
    assert_eq!(member_ids(&added), ids_of(&[&alice, &bob, &carol]));
    assert_eq!(role_of(&added, &carol), Some(Role::Member));
    assert_eq!(room_of(get_room(&carol, group.id).await).name, "Team");

    room_of(set_role(&alice, group.id, bob.id, "admin").await);
    let by_admin = room_of(add(&bob, group.id, &[dave.id]).await);
    assert_eq!(
        member_ids(&by_admin),
        ids_of(&[&alice, &bob, &carol, &dave])
    );

    // Adding someone already in leaves them as they are.
    let again = room_of(add(&alice, group.id, &[bob.id]).await);
    assert_eq!(again.members.len(), 4);
    assert_eq!(role_of(&again, &bob), Some(Role::Admin));

    assert_error(
        &add(&alice, group.id, &[Uuid::now_v7()]).await,
        404,
        "user_not_found",
    );
    assert_error(&add(&alice, group.id, &[]).await, 422, "validation_failed");
    assert_eq!(room_of(get_room(&alice, group.id).await).members.len(), 4);
}

#[tokio::test]
async fn only_the_owner_changes_roles() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let group = alice.group("Team", &[&bob, &carol, &dave]).await;

    let promoted = room_of(set_role(&alice, group.id, bob.id, "admin").await);
    assert_eq!(role_of(&promoted, &bob), Some(Role::Admin));

    // Neither an admin nor a member may change roles.
    assert_error(
        &set_role(&bob, group.id, carol.id, "admin").await,
        403,
        "forbidden",
    );
    assert_error(
        &set_role(&carol, group.id, dave.id, "admin").await,
        403,
        "forbidden",
    );
    assert_error(
        &set_role(&carol, group.id, carol.id, "admin").await,
        403,
        "forbidden",
    );
    let room = room_of(get_room(&alice, group.id).await);
    assert_eq!(role_of(&room, &carol), Some(Role::Member));
    assert_eq!(role_of(&room, &dave), Some(Role::Member));

    // Demotion works too.
    let demoted = room_of(set_role(&alice, group.id, bob.id, "member").await);
    assert_eq!(role_of(&demoted, &bob), Some(Role::Member));

    // Not a member, not a role, or oneself.
    let stranger = app.user("erin").await;
    assert_error(
        &set_role(&alice, group.id, stranger.id, "admin").await,
        404,
        "user_not_found",
    );
    let bad = set_role(&alice, group.id, bob.id, "king").await;
    assert!(
        bad.0 == 400 || bad.0 == 422,
        "an unknown role is refused: {} {}",
        bad.0,
        bad.1
    );
    assert_error(
        &set_role(&alice, group.id, alice.id, "member").await,
        422,
        "validation_failed",
    );

    // Making someone owner hands the group over; the old owner becomes an admin.
    let handed = room_of(set_role(&alice, group.id, carol.id, "owner").await);
    assert_eq!(role_of(&handed, &carol), Some(Role::Owner));
    assert_eq!(role_of(&handed, &alice), Some(Role::Admin));
    assert_eq!(
        handed
            .members
            .iter()
            .filter(|m| m.role == Role::Owner)
            .count(),
        1,
        "one owner"
    );
    assert_error(
        &set_role(&alice, group.id, dave.id, "admin").await,
        403,
        "forbidden",
    );
    room_of(set_role(&carol, group.id, dave.id, "admin").await);
}

#[tokio::test]
async fn an_admin_removes_members_but_not_the_owner() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let erin = app.user("erin").await;
    let group = alice.group("Team", &[&bob, &carol, &dave, &erin]).await;
    room_of(set_role(&alice, group.id, bob.id, "admin").await);
    room_of(set_role(&alice, group.id, erin.id, "admin").await);

    // An admin removes a member.
    let removed = remove(&bob, group.id, carol.id).await;
    assert_eq!(removed.0, 204, "{}", removed.1);
    assert_error(&get_room(&carol, group.id).await, 404, "room_not_found");
    assert!(carol.api.rooms().await.expect("rooms").is_empty());
    assert_eq!(
        member_ids(&room_of(get_room(&alice, group.id).await)),
        ids_of(&[&alice, &bob, &dave, &erin])
    );
    // A removed member can no longer write.
    let err = carol
        .api
        .send(group.id, "late", "let me in")
        .await
        .expect_err("removed members cannot send");
    assert_eq!(err.code(), Some(palaver_proto::ErrorCode::RoomNotFound));

    // An admin removes neither the owner nor another admin; a member removes nobody.
    assert_error(&remove(&bob, group.id, alice.id).await, 403, "forbidden");
    assert_error(&remove(&bob, group.id, erin.id).await, 403, "forbidden");
    assert_error(&remove(&dave, group.id, bob.id).await, 403, "forbidden");
    assert_error(&remove(&dave, group.id, erin.id).await, 403, "forbidden");
    // Someone not in the room.
    assert_error(
        &remove(&bob, group.id, carol.id).await,
        404,
        "user_not_found",
    );

    // The owner removes an admin.
    let removed = remove(&alice, group.id, erin.id).await;
    assert_eq!(removed.0, 204, "{}", removed.1);
    assert_error(&get_room(&erin, group.id).await, 404, "room_not_found");

    // A member may leave by removing themselves.
    let left = remove(&dave, group.id, dave.id).await;
    assert_eq!(left.0, 204, "{}", left.1);
    assert_eq!(
        member_ids(&room_of(get_room(&alice, group.id).await)),
        ids_of(&[&alice, &bob])
    );
}

#[tokio::test]
async fn an_owner_who_leaves_hands_over_to_the_longest_standing_admin() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let erin = app.user("erin").await;

    let group = alice.group("Team", &[&bob, &carol]).await;
    tick().await;
    room_of(add(&alice, group.id, &[dave.id]).await);
    tick().await;
    room_of(add(&alice, group.id, &[erin.id]).await);
    // Dave and Erin were strangers to Alice: they accept (an invitation is not a
    // membership to hand a group to; tests/api/consent.rs).
    dave.api.accept(group.id).await.expect("accept");
    erin.api.accept(group.id).await.expect("accept");
    // Erin is promoted first, but Dave joined earlier; Bob and Carol are only members.
    room_of(set_role(&alice, group.id, erin.id, "admin").await);
    room_of(set_role(&alice, group.id, dave.id, "admin").await);

    let left = leave(&alice, group.id).await;
    assert_eq!(left.0, 204, "{}", left.1);
    assert_error(&get_room(&alice, group.id).await, 404, "room_not_found");
    assert!(alice.api.rooms().await.expect("rooms").is_empty());

    let room = room_of(get_room(&bob, group.id).await);
    assert_eq!(member_ids(&room), ids_of(&[&bob, &carol, &dave, &erin]));
    assert_eq!(
        role_of(&room, &dave),
        Some(Role::Owner),
        "{:?}",
        room.members
    );
    assert_eq!(role_of(&room, &erin), Some(Role::Admin));
    assert_eq!(role_of(&room, &bob), Some(Role::Member));
    assert_eq!(role_of(&room, &carol), Some(Role::Member));

    // The new owner can do what owners do.
    room_of(set_role(&dave, group.id, bob.id, "admin").await);
}

#[tokio::test]
async fn an_owner_who_leaves_without_admins_hands_over_to_the_longest_standing_member() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;

    let group = alice.group("Team", &[&bob]).await;
    tick().await;
    room_of(add(&alice, group.id, &[carol.id]).await);
    tick().await;
    room_of(add(&alice, group.id, &[dave.id]).await);

    let left = leave(&alice, group.id).await;
    assert_eq!(left.0, 204, "{}", left.1);
    let room = room_of(get_room(&carol, group.id).await);
    assert_eq!(member_ids(&room), ids_of(&[&bob, &carol, &dave]));
    assert_eq!(
        role_of(&room, &bob),
        Some(Role::Owner),
        "{:?}",
        room.members
    );
    assert_eq!(role_of(&room, &carol), Some(Role::Member));
    assert_eq!(role_of(&room, &dave), Some(Role::Member));

    // The last one out leaves an empty group behind; nobody sees it.
    for user in [&carol, &dave, &bob] {
        let left = leave(user, group.id).await;
        assert_eq!(left.0, 204, "{}", left.1);
        assert_error(&get_room(user, group.id).await, 404, "room_not_found");
    }
}

// ---------------------------------------------------------------------------------------
// Live room events

#[tokio::test]
async fn members_see_room_changes_live() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;
    let mut carol_ws = carol.connect().await;

    // Created: every member hears of it (Bob, a stranger to Alice, as an invitation),
    // nobody else does.
    let group = room_of(
        create(
            &alice,
            json!({"name": "Team", "isGroup": true, "memberIds": [bob.id]}),
        )
        .await,
    );
    for socket in [&mut alice_ws, &mut bob_ws] {
        let room = room_updated(socket, group.id).await;
        assert_eq!(room.name, "Team");
        assert!(room.is_group);
        assert_eq!(member_ids(&room), ids_of(&[&alice, &bob]));
        assert_eq!(role_of(&room, &alice), Some(Role::Owner));
        assert!(room.last_message.is_none() && room.unread_count == 0);
    }
    // Bob accepts: a room change both hear.
    bob.api.accept(group.id).await.expect("accept");
    for socket in [&mut alice_ws, &mut bob_ws] {
        let room = room_updated(socket, group.id).await;
        assert!(room.members.iter().all(|m| m.state == MemberState::Joined));
    }
    assert_no_frame(
        &mut carol_ws,
        "room.updated for a room carol is not in",
        |f| matches!(f, ServerFrame::RoomUpdated { .. }),
    )
    .await;

    // Renamed.
    room_of(rename(&alice, group.id, "Team 2").await);
    for socket in [&mut alice_ws, &mut bob_ws] {
        assert_eq!(room_updated(socket, group.id).await.name, "Team 2");
    }
    assert_no_frame(
        &mut carol_ws,
        "room.updated for a room carol is not in",
        |f| matches!(f, ServerFrame::RoomUpdated { .. }),
    )
    .await;

    // A member added: the old members and the new one hear of it.
    room_of(add(&alice, group.id, &[carol.id]).await);
    for socket in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        let room = room_updated(socket, group.id).await;
        assert_eq!(room.name, "Team 2");
        assert_eq!(member_ids(&room), ids_of(&[&alice, &bob, &carol]));
    }

    // ... and the new member gets the group's messages from then on.
    let sent = bob.send(group.id, "welcome carol").await;
    let got = message_frame(&mut carol_ws, sent.id).await;
    assert_eq!(got.content, "welcome carol");
    assert_eq!(got.room_id, group.id);
    message_frame(&mut alice_ws, sent.id).await;

    // A role change is a room change too.
    room_of(set_role(&alice, group.id, bob.id, "admin").await);
    for socket in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        let room = room_updated(socket, group.id).await;
        assert_eq!(role_of(&room, &bob), Some(Role::Admin));
    }

    // Removed: the removed member gets room.left and nothing more; the others an update.
    let removed = remove(&alice, group.id, carol.id).await;
    assert_eq!(removed.0, 204, "{}", removed.1);
    let left = carol_ws
        .wait_for(WAIT, |f| matches!(f, ServerFrame::RoomLeft { .. }))
        .await
        .expect("room.left");
    assert!(
        matches!(left, ServerFrame::RoomLeft { room_id } if room_id == group.id),
        "{left:?}"
    );
    for socket in [&mut alice_ws, &mut bob_ws] {
        let room = room_updated(socket, group.id).await;
        assert_eq!(member_ids(&room), ids_of(&[&alice, &bob]));
    }
    let after = alice.send(group.id, "carol is gone").await;
    message_frame(&mut bob_ws, after.id).await;
    assert_no_frame(
        &mut carol_ws,
        "anything from a room carol left",
        |f| match f {
            ServerFrame::Message { message } => message.room_id == group.id,
            ServerFrame::RoomUpdated { room } => room.id == group.id,
            _ => false,
        },
    )
    .await;

    // Leaving: the one who leaves gets room.left, the others an update.
    let left = leave(&bob, group.id).await;
    assert_eq!(left.0, 204, "{}", left.1);
    let frame = bob_ws
        .wait_for(WAIT, |f| matches!(f, ServerFrame::RoomLeft { .. }))
        .await
        .expect("room.left");
    assert!(matches!(frame, ServerFrame::RoomLeft { room_id } if room_id == group.id));
    let room = room_updated(&mut alice_ws, group.id).await;
    assert_eq!(member_ids(&room), ids_of(&[&alice]));
}

#[tokio::test]
async fn both_people_hear_of_a_new_dm_under_the_other_ones_name() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;

    let dm = alice.dm_request(&bob).await;
    let as_alice = room_updated(&mut alice_ws, dm.id).await;
    assert_eq!(as_alice.name, "Bob");
    assert!(!as_alice.is_group);
    let as_bob = room_updated(&mut bob_ws, dm.id).await;
    assert_eq!(as_bob.name, "Alice");
    // They have not met: Bob accepts the request, which both hear of, under the same names.
    bob.api.accept(dm.id).await.expect("accept");
    assert_eq!(room_updated(&mut alice_ws, dm.id).await.name, "Bob");
    assert_eq!(room_updated(&mut bob_ws, dm.id).await.name, "Alice");

    // Opening it again changes nothing and announces nothing.
    let (status, again) = bob
        .api
        .create_room(None, false, &[alice.id])
        .await
        .expect("dm");
    assert_eq!((status, again.id), (200, dm.id));
    for socket in [&mut alice_ws, &mut bob_ws] {
        assert_no_frame(socket, "room.updated for an existing dm", |f| {
            matches!(f, ServerFrame::RoomUpdated { .. })
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------
// New members

#[tokio::test]
async fn new_members_start_at_the_last_seq_and_can_read_earlier_history() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let group = alice.group("Team", &[&bob]).await;
    let mut sent = Vec::new();
    for text in ["one", "two", "three"] {
        sent.push(alice.send(group.id, text).await);
    }
    bob.send(group.id, "four").await;

    let added = room_of(add(&alice, group.id, &[carol.id]).await);
    assert_eq!(added.last_seq, 4);
    // Carol, a stranger to Alice, is invited; her markers are set when she is added, and
    // she accepts to see everyone's (tests/api/consent.rs has the invitation itself).
    carol.api.accept(group.id).await.expect("accept");
    let new = added
        .members
        .iter()
        .find(|m| m.user_id == carol.id)
        .expect("carol is a member");
    assert_eq!((new.delivered_seq, new.read_seq), (4, 4));

    let markers = receipts(&carol, group.id).await;
    assert_eq!(markers.room_id, group.id);
    let carols = markers
        .members
        .iter()
        .find(|m| m.user_id == carol.id)
        .expect("carol's markers");
    assert_eq!(carols.delivered_seq, 4, "deliveredSeq starts at lastSeq");
    assert_eq!(carols.read_seq, 4, "readSeq starts at lastSeq");
    assert_eq!(carols.role, Role::Member);

    // Nothing from before counts as unread for her ...
    let hers = listed(&carol, group.id).await;
    assert_eq!(hers.unread_count, 0);
    assert_eq!(hers.last_seq, 4);
    assert_eq!(
        hers.last_message.as_ref().map(|m| m.content.as_str()),
        Some("four")
    );

    // ... yet she can read it.
    let history = carol
        .api
        .history(group.id, None, None, None)
        .await
        .expect("history");
    let seqs: Vec<i64> = history.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert_eq!(history.messages[0].id, sent[0].id);
    assert_eq!(history.messages[0].content, "one");
    assert!(!history.has_more);

    // What comes after her arrival is unread until she reads it.
    bob.send(group.id, "five").await;
    assert_eq!(listed(&carol, group.id).await.unread_count, 1);
    let moved = request(
        &carol,
        Method::POST,
        &format!("/api/v1/rooms/{}/receipts", group.id),
        Some(json!({ "seq": 5, "status": "read" })),
    )
    .await;
    assert_eq!(moved.0, 200, "{}", moved.1);
    assert_eq!(listed(&carol, group.id).await.unread_count, 0);
}

#[tokio::test]
async fn racing_to_open_the_same_dm_makes_one_room() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let mut tasks = Vec::new();
    for i in 0..8 {
        let (api, other) = if i % 2 == 0 {
            (alice.api.clone(), bob.id)
        } else {
            (bob.api.clone(), alice.id)
        };
        tasks.push(tokio::spawn(async move {
            api.create_room(None, false, &[other]).await
        }));
    }
    let mut created = 0;
    let mut ids = Vec::new();
    for task in tasks {
        let (status, room) = task.await.expect("task").expect("create dm");
        if status == 201 {
            created += 1;
        } else {
            assert_eq!(status, 200);
        }
        ids.push(room.id);
    }
    assert_eq!(created, 1, "exactly one request creates the room");
    ids.dedup();
    assert_eq!(ids.len(), 1, "every request answers the same room: {ids:?}");
    assert_eq!(alice.api.rooms().await.expect("rooms").len(), 1);
    assert_eq!(bob.api.rooms().await.expect("rooms").len(), 1);
}

#[tokio::test]
async fn a_group_has_a_size_limit() {
    let app = spawn_app_with(|c| c.max_room_members = 3).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;

    let too_big = create(
        &alice,
        json!({ "name": "Big", "isGroup": true, "memberIds": [bob.id, carol.id, dave.id] }),
    )
    .await;
    assert_error(&too_big, 422, "validation_failed");

    let group = alice.group("Small", &[&bob, &carol]).await;
    assert_eq!(group.members.len(), 3);
    assert_error(
        &add(&alice, group.id, &[dave.id]).await,
        422,
        "validation_failed",
    );
    // Adding someone already in does not count against the limit.
    let same = room_of(add(&alice, group.id, &[bob.id]).await);
    assert_eq!(same.members.len(), 3);
    // Once someone leaves there is room again.
    assert_eq!(leave(&carol, group.id).await.0, 204);
    let grown = room_of(add(&alice, group.id, &[dave.id]).await);
    assert_eq!(member_ids(&grown), ids_of(&[&alice, &bob, &dave]));
}

#[tokio::test]
async fn deleted_messages_are_not_unread_and_the_last_message_shows_its_status() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let dm = alice.dm(&bob).await;
    bob.send(dm.id, "one").await;
    let two = bob.send(dm.id, "two").await;
    bob.send(dm.id, "three").await;
    assert_eq!(listed(&alice, dm.id).await.unread_count, 3);

    let deleted = request(
        &bob,
        Method::DELETE,
        &format!("/api/v1/messages/{}", two.id),
        None,
    )
    .await;
    assert_eq!(deleted.0, 200, "{}", deleted.1);
    assert_eq!(listed(&alice, dm.id).await.unread_count, 2);

    // Bob sees his last message as sent, then read once alice has read it.
    let last = listed(&bob, dm.id).await.last_message.expect("lastMessage");
    assert_eq!(last.seq, 3);
    assert_eq!(last.status, palaver_proto::MessageStatus::Sent);
    let read = request(
        &alice,
        Method::POST,
        &format!("/api/v1/rooms/{}/receipts", dm.id),
        Some(json!({ "seq": 3, "status": "read" })),
    )
    .await;
    assert_eq!(read.0, 200, "{}", read.1);
    let last = listed(&bob, dm.id).await.last_message.expect("lastMessage");
    assert_eq!(last.status, palaver_proto::MessageStatus::Read);
}

#[tokio::test]
async fn a_removed_members_socket_can_no_longer_use_the_room() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = alice.group("Team", &[&bob]).await;
    let mut bob_ws = bob.connect().await;
    let first = alice.send(group.id, "hello").await;
    message_frame(&mut bob_ws, first.id).await;

    assert_eq!(remove(&alice, group.id, bob.id).await.0, 204);
    bob_ws
        .wait_for(WAIT, |f| matches!(f, ServerFrame::RoomLeft { .. }))
        .await
        .expect("room.left");

    let err = bob_ws
        .send_message(group.id, "after-removal", "let me back in")
        .await
        .expect_err("a removed member cannot send over the socket");
    assert_eq!(err.code(), Some(palaver_proto::ErrorCode::RoomNotFound));
    let id = bob_ws
        .send_frame(palaver_proto::ClientFrame::Typing {
            room_id: group.id,
            active: true,
        })
        .await
        .expect("typing");
    let err = bob_ws.answer(&id, WAIT).await.expect_err("typing refused");
    assert_eq!(err.code(), Some(palaver_proto::ErrorCode::RoomNotFound));
    let history = bob.api.history(group.id, None, None, None).await;
    assert_eq!(
        history.expect_err("history refused").code(),
        Some(palaver_proto::ErrorCode::RoomNotFound)
    );

    // Added back, the socket gets the group's messages again.
    room_of(add(&alice, group.id, &[bob.id]).await);
    room_updated(&mut bob_ws, group.id).await;
    let again = alice.send(group.id, "welcome back").await;
    let got = message_frame(&mut bob_ws, again.id).await;
    assert_eq!(got.content, "welcome back");
}
