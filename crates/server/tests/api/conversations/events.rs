//! Room events in the timeline, and what a removed member is told.

use palaver_proto::{LeftReason, MessageType, Role, RoomEventKind, ServerFrame};
use reqwest::Method;
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_groups_changes_are_in_its_timeline_in_order_with_the_names_of_the_time() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let room = alice.group("Team", &[bob]).await.id;
    let path = |rest: &str| format!("/api/v1/rooms/{room}{rest}");
    let ok = |answer: (u16, serde_json::Value)| assert!(answer.0 < 300, "{answer:?}");
    ok(call(
        alice,
        Method::PATCH,
        &path(""),
        Some(json!({"name": "Crew"})),
    )
    .await);
    ok(call(
        alice,
        Method::POST,
        &path("/members"),
        Some(json!({"userIds": [carol.id]})),
    )
    .await);
    carol.api.accept(room).await.expect("accept");
    ok(call(
        alice,
        Method::PATCH,
        &path(&format!("/members/{}", bob.id)),
        Some(json!({"role": "admin"})),
    )
    .await);
    // Carol changes her name, then leaves: the event keeps the name she had.
    ok(call(
        carol,
        Method::PATCH,
        "/api/v1/users/me",
        Some(json!({"displayName": "Caroline"})),
    )
    .await);
    let mut c = carol.connect().await;
    ok(call(carol, Method::POST, &path("/leave"), None).await);
    match c
        .wait_for(WAIT, |f| matches!(f, ServerFrame::RoomLeft { .. }))
        .await
        .expect("room.left")
    {
        ServerFrame::RoomLeft { reason, by, .. } => {
            assert_eq!((reason, by), (Some(LeftReason::Left), None));
        }
        _ => unreachable!(),
    }

    let events: Vec<_> = all_messages(alice, room)
        .await
        .into_iter()
        .filter(|m| m.kind == MessageType::Event)
        .collect();
    let seen: Vec<(RoomEventKind, uuid::Uuid, String, Vec<String>)> = events
        .iter()
        .map(|m| {
            let e = m.event.clone().expect("event");
            let names = e.users.iter().map(|u| u.display_name.clone()).collect();
            (e.kind, m.sender_id, e.sender_name, names)
        })
        .collect();
    use RoomEventKind::*;
    assert_eq!(
        seen,
        vec![
            (Created, alice.id, "Alice".into(), vec!["Bob".into()]),
            (Joined, bob.id, "Bob".into(), vec![]),
            (Renamed, alice.id, "Alice".into(), vec![]),
            (MembersAdded, alice.id, "Alice".into(), vec!["Carol".into()]),
            (Joined, carol.id, "Carol".into(), vec![]),
            (RoleChanged, alice.id, "Alice".into(), vec!["Bob".into()]),
            (MemberLeft, carol.id, "Caroline".into(), vec![]),
        ]
    );
    assert_eq!(
        events[2]
            .event
            .as_ref()
            .and_then(|e| e.name.clone())
            .as_deref(),
        Some("Crew")
    );
    assert_eq!(
        events[5].event.as_ref().and_then(|e| e.role),
        Some(Role::Admin)
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    // Events are not unread, and a client cannot send one.
    let listed = bob.api.rooms().await.expect("rooms");
    assert_eq!(
        listed.iter().find(|r| r.id == room).map(|r| r.unread_count),
        Some(0)
    );
    let sent = send_with(bob, room, "", json!({"type": "event"})).await;
    assert_error(&sent, 422, "validation_failed");
}

#[tokio::test]
async fn a_removed_member_is_told_who_removed_them() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let room = alice.group("Team", &[bob]).await.id;
    let mut b = bob.connect().await;
    let (status, _) = call(
        alice,
        Method::DELETE,
        &format!("/api/v1/rooms/{room}/members/{}", bob.id),
        None,
    )
    .await;
    assert_eq!(status, 204);
    match b
        .wait_for(WAIT, |f| matches!(f, ServerFrame::RoomLeft { .. }))
        .await
        .expect("room.left")
    {
        ServerFrame::RoomLeft {
            room_id,
            reason,
            by,
        } => {
            assert_eq!(
                (room_id, reason, by),
                (room, Some(LeftReason::Removed), Some(alice.id))
            );
        }
        _ => unreachable!(),
    }
    let last = all_messages(alice, room).await.pop().expect("messages");
    let event = last.event.expect("event");
    assert_eq!(
        (event.kind, event.users[0].id),
        (RoomEventKind::MemberRemoved, bob.id)
    );
}
