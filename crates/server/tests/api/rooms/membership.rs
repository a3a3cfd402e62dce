//! Membership of a group: who may rename, add, change roles and remove; an owner who
//! leaves hands over; new members start at the last seq; a removed member's socket can
//! no longer use the room.

use palaver_proto::{MessageType, ReceiptsResponse, Role, RoomEventKind, ServerFrame};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::{
    add, get_room, ids_of, leave, listed, member_ids, message_frame, remove, rename, request,
    role_of, room_of, room_updated, set_role, tick,
};

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
    // membership to hand a group to; tests/api/consent/).
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
    let four = bob.send(group.id, "four").await;

    // The room's events take seqs too: "Alice added Carol" is the one after "four".
    let added = room_of(add(&alice, group.id, &[carol.id]).await);
    assert_eq!(added.last_seq, four.seq + 1);
    // Carol, a stranger to Alice, is invited; her markers are set when she is added, and
    // she accepts to see everyone's (tests/api/consent/ has the invitation itself).
    carol.api.accept(group.id).await.expect("accept");
    let new = added
        .members
        .iter()
        .find(|m| m.user_id == carol.id)
        .expect("carol is a member");
    assert_eq!((new.delivered_seq, new.read_seq), (four.seq, four.seq));

    let markers = receipts(&carol, group.id).await;
    assert_eq!(markers.room_id, group.id);
    let carols = markers
        .members
        .iter()
        .find(|m| m.user_id == carol.id)
        .expect("carol's markers");
    // Her markers started at the last seq; her own "Carol joined" moved them to itself.
    let joined = listed(&carol, group.id).await.last_seq;
    assert_eq!(
        carols.delivered_seq, joined,
        "deliveredSeq starts at lastSeq"
    );
    assert_eq!(carols.read_seq, joined, "readSeq starts at lastSeq");
    assert_eq!(carols.role, Role::Member);

    // Nothing from before counts as unread for her (room events never do) ...
    let hers = listed(&carol, group.id).await;
    assert_eq!(hers.unread_count, 0);
    let last = hers.last_message.as_ref().expect("last message");
    assert_eq!(
        last.event.as_ref().map(|e| e.kind),
        Some(RoomEventKind::Joined)
    );

    // ... yet she can read it.
    let history = carol
        .api
        .history(group.id, None, None, None)
        .await
        .expect("history");
    let texts: Vec<&str> = history
        .messages
        .iter()
        .filter(|m| m.kind != MessageType::Event)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(texts, vec!["one", "two", "three", "four"]);
    assert!(!history.has_more);

    // What comes after her arrival is unread until she reads it.
    let five = bob.send(group.id, "five").await;
    assert_eq!(listed(&carol, group.id).await.unread_count, 1);
    let moved = request(
        &carol,
        Method::POST,
        &format!("/api/v1/rooms/{}/receipts", group.id),
        Some(json!({ "seq": five.seq, "status": "read" })),
    )
    .await;
    assert_eq!(moved.0, 200, "{}", moved.1);
    assert_eq!(listed(&carol, group.id).await.unread_count, 0);
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
