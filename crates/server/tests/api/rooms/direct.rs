//! 1:1 rooms: one per pair, even when both race to open it; exactly one other existing
//! person; nobody removed from one, but either may leave.

use palaver_proto::Role;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::{
    add, create, get_room, ids_of, leave, listed, member_ids, remove, rename, request, room_of,
    set_role,
};

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

    // Leaving a 1:1 room is allowed since consent came (one must be able to get out
    // of a conversation one did not want; docs/PROTOCOL.md): tested below and in
    // tests/api/consent/. Removing the other person is not.
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
