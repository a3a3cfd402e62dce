//! Who is not, or no longer, in a room: a stranger is denied everything about it, and a
//! removed member loses it at once, open sockets included.

use palaver_proto::{ClientFrame, Cursors, ErrorCode, ReceiptKind, ServerFrame};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::{assert_alive, assert_api_error, call, error_for, history_len, send_frame};

#[tokio::test]
async fn a_non_member_is_denied_everything_about_a_room() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let room = alice.dm(&bob).await.id;
    let message = alice.send(room, "for bob only").await;
    let mut carol_socket = carol.connect().await;

    // REST: the room and its messages do not exist for carol.
    let msg = message.id;
    let send_body = json!({"roomId": room, "clientMsgId": "c-1", "content": "let me in"});
    for (method, path, body, code) in [
        (
            Method::GET,
            format!("/api/v1/messages/history?roomId={room}"),
            None,
            "room_not_found",
        ),
        (
            Method::POST,
            "/api/v1/messages/send".to_owned(),
            Some(send_body),
            "room_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/rooms/{room}"),
            None,
            "room_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/rooms/{room}/receipts"),
            None,
            "room_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{room}/receipts"),
            Some(json!({"seq": 1, "status": "read"})),
            "room_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/chat/{room}"),
            Some(json!({"clientMsgId": "c-2", "content": "hi"})),
            "room_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/chat/{room}"),
            None,
            "room_not_found",
        ),
        (
            Method::PATCH,
            format!("/api/v1/rooms/{room}"),
            Some(json!({"name": "mine now"})),
            "room_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{room}/members"),
            Some(json!({"userIds": [carol.id]})),
            "room_not_found",
        ),
        (
            Method::DELETE,
            format!("/api/v1/rooms/{room}/members/{}", bob.id),
            None,
            "room_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{room}/leave"),
            None,
            "room_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/presence/{}", alice.id),
            None,
            "user_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/chat/status/{}", alice.id),
            None,
            "user_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/lastseen/{}", alice.id),
            None,
            "user_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/messages/{msg}"),
            None,
            "message_not_found",
        ),
        (
            Method::PATCH,
            format!("/api/v1/messages/{msg}"),
            Some(json!({"content": "defaced"})),
            "message_not_found",
        ),
        (
            Method::DELETE,
            format!("/api/v1/messages/{msg}"),
            None,
            "message_not_found",
        ),
    ] {
        let got = call(&carol, method.clone(), &path, body).await;
        assert_api_error(got, 404, code);
    }
    // The room is not in carol's list.
    assert!(carol.api.rooms().await.expect("rooms").is_empty());

    // Socket: send, typing, receipt, edit, delete are refused with the frame's id.
    let mut refused = Vec::new();
    refused.push(
        carol_socket
            .send_frame(send_frame(room, "c-3", "let me in"))
            .await
            .expect("send"),
    );
    refused.push(
        carol_socket
            .send_frame(ClientFrame::Typing {
                room_id: room,
                active: true,
            })
            .await
            .expect("send"),
    );
    refused.push(
        carol_socket
            .send_frame(ClientFrame::Receipt {
                room_id: room,
                seq: 1,
                status: ReceiptKind::Read,
            })
            .await
            .expect("send"),
    );
    for id in &refused {
        assert_eq!(
            error_for(&mut carol_socket, Some(id)).await,
            ErrorCode::RoomNotFound,
            "frame {id}"
        );
    }
    let id = carol_socket
        .send_frame(ClientFrame::Edit {
            message_id: msg,
            content: "defaced".into(),
            no_preview: false,
        })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut carol_socket, Some(&id)).await,
        ErrorCode::MessageNotFound
    );
    let id = carol_socket
        .send_frame(ClientFrame::Delete { message_id: msg })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut carol_socket, Some(&id)).await,
        ErrorCode::MessageNotFound
    );

    // A sync naming the room replays nothing and leaves it out of `synced`.
    let id = carol_socket
        .send_frame(ClientFrame::Sync {
            cursors: Cursors::from([(room, 0)]),
            changes: Default::default(),
        })
        .await
        .expect("sync");
    let mut replayed = Vec::new();
    loop {
        match carol_socket.next_within(WAIT).await.expect("replay") {
            ServerFrame::Message { message } => replayed.push(message),
            ServerFrame::Synced {
                id: Some(got),
                rooms,
                ..
            } if got == id => {
                assert!(
                    !rooms.contains_key(&room),
                    "synced names the room: {rooms:?}"
                );
                break;
            }
            _ => {}
        }
    }
    assert!(replayed.is_empty(), "replayed {replayed:?}");

    // Live traffic in the room never reaches carol.
    let mut bob_socket = bob.connect().await;
    let mut alice_socket = alice.connect().await;
    alice_socket
        .send_message(room, "live-1", "secret one")
        .await
        .expect("send");
    alice_socket
        .send_frame(ClientFrame::Typing {
            room_id: room,
            active: true,
        })
        .await
        .expect("typing");
    alice.send(room, "secret two").await;
    // Bob got them, so they were fanned out...
    assert_eq!(next_message(&mut bob_socket).await.content, "secret one");
    assert_eq!(next_message(&mut bob_socket).await.content, "secret two");
    // ...but carol got nothing from the room.
    let room_text = room.to_string();
    assert_no_frame(
        &mut carol_socket,
        "frame from a room carol is not in",
        |f| {
            matches!(f, ServerFrame::Message { .. })
                || serde_json::to_string(f)
                    .is_ok_and(|s| s.contains(&room_text) || s.contains("secret"))
        },
    )
    .await;

    // Nothing carol did changed anything.
    let history = alice
        .api
        .history(room, None, None, None)
        .await
        .expect("history");
    let contents: Vec<&str> = history
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(contents, ["for bob only", "secret one", "secret two"]);
    assert!(
        history
            .messages
            .iter()
            .all(|m| m.sender_id == alice.id && !m.deleted && m.edited_at.is_none())
    );
    let receipts = alice
        .api
        .call::<(), palaver_proto::ReceiptsResponse>(
            Method::GET,
            &format!("/api/v1/rooms/{room}/receipts"),
            None,
        )
        .await
        .expect("receipts")
        .1;
    let members: Vec<Uuid> = receipts.members.iter().map(|m| m.user_id).collect();
    assert!(!members.contains(&carol.id));
    assert_eq!(members.len(), 2);
    assert!(
        receipts
            .members
            .iter()
            .all(|m| m.read_seq == 0 || m.user_id == alice.id)
    );
}

#[tokio::test]
async fn removal_takes_effect_at_once_on_open_sockets() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let room = alice.group("team", &[&bob, &carol]).await.id;
    let before = alice.send(room, "before").await;
    let mut bob_socket = bob.connect().await;
    let mut carol_socket = carol.connect().await;
    let mut alice_socket = alice.connect().await;
    assert_alive(&mut bob_socket).await;
    assert_alive(&mut carol_socket).await;

    let (status, body) = call(
        &alice,
        Method::DELETE,
        &format!("/api/v1/rooms/{room}/members/{}", bob.id),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    match bob_socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::RoomLeft { .. }))
        .await
        .expect("room.left")
    {
        ServerFrame::RoomLeft { room_id, .. } => assert_eq!(room_id, room),
        _ => unreachable!(),
    }

    // Alice sends; carol gets it, bob does not.
    // "before" was sent while bob was a member: on the cluster its live copy can reach the
    // sockets opened after it late (the bus under load), and that delivery is right, for
    // carol as for bob. Anything later must not reach bob.
    let sent = alice.send(room, "after bob left").await;
    carol_socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::Message { message } if message.id == sent.id),
        )
        .await
        .expect("carol gets the message");
    assert_no_frame(&mut bob_socket, "message from a room bob was removed from", |f| {
        matches!(f, ServerFrame::Message { message } if message.room_id == room && message.id != before.id)
            || matches!(f, ServerFrame::Typing { room_id, .. } | ServerFrame::Receipt { room_id, .. } if *room_id == room)
    })
    .await;
    let id = alice_socket
        .send_frame(ClientFrame::Typing {
            room_id: room,
            active: true,
        })
        .await
        .expect("typing");
    alice_socket
        .answer(&id, WAIT)
        .await
        .expect("typing accepted");
    match carol_socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::Typing { .. }))
        .await
        .expect("carol sees typing")
    {
        ServerFrame::Typing {
            room_id, user_id, ..
        } => assert_eq!((room_id, user_id), (room, alice.id)),
        _ => unreachable!(),
    }
    assert_no_frame(
        &mut bob_socket,
        "typing from a room bob was removed from",
        |f| {
            matches!(f, ServerFrame::Message { message } if message.room_id == room)
                || matches!(f, ServerFrame::Typing { room_id, .. } if *room_id == room)
        },
    )
    .await;

    // Bob's REST view: the room is gone.
    let got = call(
        &bob,
        Method::GET,
        &format!("/api/v1/messages/history?roomId={room}"),
        None,
    )
    .await;
    assert_api_error(got, 404, "room_not_found");
    let got = call(&bob, Method::GET, &format!("/api/v1/rooms/{room}"), None).await;
    assert_api_error(got, 404, "room_not_found");
    let got = call(
        &bob,
        Method::GET,
        &format!("/api/v1/messages/{}", sent.id),
        None,
    )
    .await;
    assert_api_error(got, 404, "message_not_found");
    let err = bob
        .api
        .send(room, "b1", "still here?")
        .await
        .expect_err("bob cannot send");
    assert_eq!(err.code(), Some(ErrorCode::RoomNotFound));
    // And on his socket: sends are refused, and a sync does not replay the room.
    let id = bob_socket
        .send_frame(send_frame(room, "b2", "still here?"))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut bob_socket, Some(&id)).await,
        ErrorCode::RoomNotFound
    );
    let id = bob_socket
        .send_frame(ClientFrame::Sync {
            cursors: Cursors::from([(room, 0)]),
            changes: Default::default(),
        })
        .await
        .expect("sync");
    loop {
        match bob_socket.next_within(WAIT).await.expect("sync answer") {
            ServerFrame::Message { message } if message.room_id == room => {
                panic!("replayed {message:?}")
            }
            ServerFrame::Synced {
                id: Some(got),
                rooms,
                ..
            } if got == id => {
                assert!(!rooms.contains_key(&room), "{rooms:?}");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        history_len(&alice, room).await,
        2,
        "bob's attempts stored nothing"
    );
}
