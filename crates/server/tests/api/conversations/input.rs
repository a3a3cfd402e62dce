//! Bad input to the conversation routes and fields: each refused with its own code, and
//! nothing changed.

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::*;

#[tokio::test]
async fn replies_and_threads_stay_in_their_room_and_one_level_deep() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let room = alice.dm(bob).await.id;
    let other = bob.dm(carol).await.id;
    let there = bob.send(other, "elsewhere").await;
    let root = alice.send(room, "root").await;
    let reply = message_of(send_with(bob, room, "r", json!({"threadRootId": root.id})).await);
    let before = all_messages(alice, room).await.len();

    for (extra, status, code) in [
        (json!({"replyToId": there.id}), 422, "cross_room"),
        (json!({"threadRootId": there.id}), 422, "cross_room"),
        (json!({"threadRootId": reply.id}), 422, "nested_thread"),
        (json!({"alsoInRoom": true}), 422, "validation_failed"),
        (
            json!({"replyToId": Uuid::now_v7()}),
            404,
            "message_not_found",
        ),
        (
            json!({"threadRootId": Uuid::now_v7()}),
            404,
            "message_not_found",
        ),
        (json!({"replyToId": "not-a-uuid"}), 400, "bad_request"),
        (json!({"threadRootId": 7}), 400, "bad_request"),
    ] {
        let answer = send_with(bob, room, "x", extra.clone()).await;
        assert_eq!(answer.0, status, "{extra}: {answer:?}");
        assert_eq!(answer.1["error"]["code"], code, "{extra}");
    }
    // Carol reads neither the room nor its messages: her reply to one is not found (not
    // `cross_room`, which would tell her it exists).
    let answer = send_with(carol, other, "x", json!({"replyToId": root.id})).await;
    assert_error(&answer, 404, "message_not_found");
    assert_eq!(
        all_messages(alice, room).await.len(),
        before,
        "nothing stored"
    );
    let (status, body) = call(
        alice,
        Method::GET,
        &format!("/api/v1/messages/{}/thread", reply.id),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("nested_thread"))
    );
    for (query, status) in [
        ("limit=0", 422),
        ("limit=201", 422),
        ("after=-1", 422),
        ("limit=x", 400),
    ] {
        let path = format!("/api/v1/messages/{}/thread?{query}", root.id);
        assert_eq!(
            call(alice, Method::GET, &path, None).await.0,
            status,
            "{query}"
        );
    }
    let (status, _) = call(
        carol,
        Method::GET,
        &format!("/api/v1/messages/{}/thread", root.id),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_reaction_is_one_emoji_and_a_message_holds_twenty() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let room = alice.dm(bob).await.id;
    let m = alice.send(room, "hi").await;
    for bad in [
        "a",
        "👍👍",
        "ok",
        ":nope:",
        " ",
        "<script>",
        &"x".repeat(100),
        "👍 ",
    ] {
        let answer = react(bob, m.id, bad, true).await;
        assert_error(&answer, 422, "invalid_emoji");
    }
    assert_error(
        &react(bob, Uuid::now_v7(), "👍", true).await,
        404,
        "message_not_found",
    );
    let (status, _) = call(
        bob,
        Method::PUT,
        "/api/v1/messages/nope/reactions/%F0%9F%91%8D",
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(fetch(alice, m.id).await.reactions.is_empty());

    let twenty = [
        "😀", "😃", "😄", "😁", "😆", "😅", "😂", "🤣", "😊", "😇", "🙂", "🙃", "😉", "😌", "😍",
        "🥰", "😘", "😗", "😙", "😚",
    ];
    for e in twenty {
        message_of(react(bob, m.id, e, true).await);
    }
    assert_error(&react(alice, m.id, "🎉", true).await, 409, "limit_reached");
    // An emoji already there may still be added by someone else.
    let now = message_of(react(alice, m.id, "😀", true).await);
    assert_eq!((now.reactions.len(), now.reactions[0].count), (20, 2));

    // A deleted message takes no reactions, and loses its own.
    let (status, _) = call(
        alice,
        Method::DELETE,
        &format!("/api/v1/messages/{}", m.id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_error(&react(bob, m.id, "👍", true).await, 409, "conflict");
    assert!(fetch(alice, m.id).await.reactions.is_empty());
}

#[tokio::test]
async fn pins_forwards_and_levels_check_their_input() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let room = alice.dm(bob).await.id;
    let m = alice.send(room, "hi").await;
    assert_error(
        &pin(alice, room, Uuid::now_v7(), true).await,
        404,
        "message_not_found",
    );
    assert_error(
        &pin(alice, Uuid::now_v7(), m.id, true).await,
        404,
        "room_not_found",
    );
    for _ in 0..50 {
        let m = alice.send(room, "pin me").await;
        message_of(pin(alice, room, m.id, true).await);
    }
    assert_error(&pin(bob, room, m.id, true).await, 409, "limit_reached");

    let path = format!("/api/v1/messages/{}/forward", m.id);
    for (body, status) in [
        (json!({"roomId": room}), 400),
        (json!({"roomId": room, "clientMsgId": ""}), 422),
        (json!({"roomId": room, "clientMsgId": "x".repeat(65)}), 422),
        (json!({"roomId": "x", "clientMsgId": "k"}), 400),
        (json!({"roomId": Uuid::now_v7(), "clientMsgId": "k"}), 404),
    ] {
        let (got, answer) = call(bob, Method::POST, &path, Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    let (status, _) = call(
        bob,
        Method::POST,
        &format!("/api/v1/messages/{}/forward", Uuid::now_v7()),
        Some(json!({"roomId": room, "clientMsgId": "k"})),
    )
    .await;
    assert_eq!(status, 404);

    let level = format!("/api/v1/rooms/{room}/notifications");
    for body in [json!({"level": "some"}), json!({}), json!({"level": 1})] {
        let (status, _) = call(bob, Method::PUT, &level, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, _) = call(
        bob,
        Method::PUT,
        &format!("/api/v1/rooms/{}/notifications", Uuid::now_v7()),
        Some(json!({"level": "all"})),
    )
    .await;
    assert_eq!(status, 404);
}
