//! Groups: an owner and members, a name and existing members needed, only members see
//! the room, and a size limit.

use palaver_proto::Role;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::{add, create, get_room, ids_of, leave, member_ids, rename, request, role_of, room_of};

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
