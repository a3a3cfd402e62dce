//! The room list: most recent first, with the last message and the unread count; deleted
//! messages are not unread and the last message shows its status.

use palaver_proto::ReceiptsResponse;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::{add, get_room, listed, request, room_of, tick};

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
    assert!(rooms.iter().all(|r| r.unread_count == 0));
    // A group's timeline starts with its events (created, joined); a 1:1 room's is empty.
    let last_kind = |r: &palaver_proto::Room| r.last_message.as_ref().map(|m| m.kind);
    assert_eq!(
        last_kind(&rooms[0]),
        Some(palaver_proto::MessageType::Event)
    );
    assert_eq!(last_kind(&rooms[1]), None);

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
    assert_eq!(
        last_kind(&rooms[1]),
        Some(palaver_proto::MessageType::Event)
    );

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
