//! One removal followed closely: what the removed member's open socket, the room's events,
//! presence, media and notifications do from that moment.

use std::time::Duration;

use palaver_client::Socket;
use palaver_proto::{
    ClientFrame, Cursors, MessageType, PresenceStatus, ReceiptKind, SendMessageRequest,
    ServerFrame, server_type,
};
use reqwest::Method;
use serde_json::json;
use tokio::time::Instant;
use uuid::Uuid;

use crate::helpers::*;

use super::table::frame_type;
use super::watch::kind_of;
use super::world::{PushSink, png, subscription};

/// Waits for a frame of this wire type (about `room`, when given) on a member's socket.
async fn hears(socket: &mut Socket, kind: &str, about: Option<Uuid>) {
    let about = about.map(|id| id.to_string());
    socket
        .wait_for(WAIT, |f| {
            kind_of(f) == kind
                && about.as_ref().is_none_or(|id| {
                    serde_json::to_string(f).is_ok_and(|text| text.contains(id.as_str()))
                })
        })
        .await
        .unwrap_or_else(|e| panic!("no {kind} frame: {e}"));
}

/// Sends a frame and returns the error code it was refused with.
async fn refused(socket: &mut Socket, frame: ClientFrame) -> String {
    let id = socket.send_frame(frame).await.expect("send frame");
    match socket.answer(&id, WAIT).await {
        Err(err) => err.code().expect("an error code").as_str().to_owned(),
        Ok(answer) => panic!("expected a refusal, got {answer:?}"),
    }
}

#[tokio::test]
async fn removal_is_immediate_on_an_open_socket() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let removed = app.user("removed").await;
    let room = owner.group("team", &[&member, &removed]).await.id;
    let send_picture = |user: &TestUser, media: Uuid| {
        let body = json!({"roomId": room, "clientMsgId": Uuid::now_v7().to_string(),
            "type": "image", "mediaId": media, "content": "a picture"});
        let api = user.api.clone();
        async move {
            let (status, body) = api
                .raw(Method::POST, "/api/v1/messages/send", Some(&body))
                .await
                .expect("send");
            assert_eq!(status, 201, "{body}");
        }
    };
    let picture = owner
        .api
        .upload("picture.png", "image/png", png())
        .await
        .expect("upload");
    send_picture(&owner, picture.id).await;
    let mine = removed
        .api
        .upload("mine.png", "image/png", png())
        .await
        .expect("upload");
    send_picture(&removed, mine.id).await;
    let own = removed.send(room, "said before removal").await;
    let target = owner.send(room, "to change later").await;

    let mut removed_ws = removed.connect().await;
    let mut member_ws = member.connect().await;
    let mut owner_ws = owner.connect().await;
    let get = |user: &TestUser, path: String| {
        let api = user.api.clone();
        async move { api.raw(Method::GET, &path, None).await.expect("request") }
    };

    // Before: the room's events, presence and media reach the member-to-be-removed.
    let typing = ClientFrame::Typing {
        room_id: room,
        active: true,
    };
    owner_ws.send_frame(typing.clone()).await.expect("typing");
    hears(&mut removed_ws, server_type::TYPING, Some(room)).await;
    let away = ClientFrame::Presence {
        status: PresenceStatus::Away,
    };
    member_ws.send_frame(away.clone()).await.expect("away");
    hears(&mut removed_ws, server_type::PRESENCE, Some(member.id)).await;
    assert_eq!(get(&removed, picture.url.clone()).await.0, 200);
    assert_eq!(
        get(&removed, format!("/api/v1/presence/{}", owner.id))
            .await
            .0,
        200
    );

    // The owner removes them; their open socket is told.
    let (status, body) = owner
        .api
        .raw(
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/members/{}", removed.id),
            None,
        )
        .await
        .expect("remove");
    assert_eq!(status, 204, "{body}");
    // Read in order up to `room.left`: what came before it was allowed.
    loop {
        match removed_ws.next_within(WAIT).await.expect("room.left") {
            ServerFrame::RoomLeft { room_id, .. } if room_id == room => break,
            _ => {}
        }
    }

    // At once, on the same socket, every frame about the room is refused, their own
    // messages included.
    let send = ClientFrame::Send {
        message: SendMessageRequest {
            room_id: room,
            client_msg_id: Uuid::now_v7().to_string(),
            content: "still here?".into(),
            kind: MessageType::Text,
            media_id: None,
            ..Default::default()
        },
    };
    let edit = ClientFrame::Edit {
        message_id: own.id,
        content: "rewritten".into(),
        no_preview: false,
    };
    let delete = ClientFrame::Delete { message_id: own.id };
    let mark_read = ClientFrame::Receipt {
        room_id: room,
        seq: target.seq,
        status: ReceiptKind::Read,
    };
    for (frame, code) in [
        (send, "room_not_found"),
        (edit, "message_not_found"),
        (delete, "message_not_found"),
        (mark_read, "room_not_found"),
        (typing.clone(), "room_not_found"),
    ] {
        let kind = frame_type(&frame);
        assert_eq!(refused(&mut removed_ws, frame).await, code, "{kind}");
    }
    let id = removed_ws
        .send_frame(ClientFrame::Sync {
            cursors: Cursors::from([(room, 0)]),
            changes: Default::default(),
        })
        .await
        .expect("sync");
    match removed_ws.answer(&id, WAIT).await.expect("synced") {
        ServerFrame::Synced { rooms, .. } => assert!(!rooms.contains_key(&room), "{rooms:?}"),
        other => panic!("expected synced, got {other:?}"),
    }
    // The room's media is gone for them; what they uploaded themselves stays theirs.
    for path in [
        picture.url.clone(),
        picture.thumbnail_url.clone().expect("thumbnail"),
    ] {
        assert_error(&get(&removed, path).await, 404, "media_not_found");
    }
    assert_eq!(get(&removed, mine.url.clone()).await.0, 200);
    // Presence, both ways: they share no room any more.
    assert_error(
        &get(&removed, format!("/api/v1/presence/{}", owner.id)).await,
        404,
        "user_not_found",
    );
    assert_error(
        &get(&owner, format!("/api/v1/lastseen/{}", removed.id)).await,
        404,
        "user_not_found",
    );

    // The others carry on: the member hears every kind of event, the removed member none.
    owner_ws
        .send_message(room, "after", "after the removal")
        .await
        .expect("send");
    hears(&mut member_ws, server_type::MESSAGE, Some(room)).await;
    let path = format!("/api/v1/messages/{}", target.id);
    let edited = json!({"content": "changed"});
    let (status, _) = owner
        .api
        .raw(Method::PATCH, &path, Some(&edited))
        .await
        .expect("edit");
    assert_eq!(status, 200);
    hears(&mut member_ws, server_type::MESSAGE_UPDATED, Some(room)).await;
    let (status, _) = owner
        .api
        .raw(Method::DELETE, &path, None)
        .await
        .expect("delete");
    assert_eq!(status, 200);
    hears(&mut member_ws, server_type::MESSAGE_DELETED, Some(room)).await;
    receipt(&mut member_ws, room, target.seq + 1, ReceiptKind::Read).await;
    hears(&mut member_ws, server_type::RECEIPT, Some(room)).await;
    owner_ws.send_frame(typing).await.expect("typing");
    hears(&mut member_ws, server_type::TYPING, Some(room)).await;
    let renamed = json!({"name": "team, smaller"});
    let (status, _) = owner
        .api
        .raw(
            Method::PATCH,
            &format!("/api/v1/rooms/{room}"),
            Some(&renamed),
        )
        .await
        .expect("rename");
    assert_eq!(status, 200);
    hears(&mut member_ws, server_type::ROOM_UPDATED, Some(room)).await;
    owner_ws.send_frame(away.clone()).await.expect("away");
    hears(&mut member_ws, server_type::PRESENCE, Some(owner.id)).await;
    // And their own presence no longer reaches the room's members.
    removed_ws.send_frame(away).await.expect("away");

    let room_text = room.to_string();
    assert_no_frame(&mut removed_ws, "an event of the room", |f| {
        matches!(f, ServerFrame::Presence { .. })
            || serde_json::to_string(f).is_ok_and(|t| t.contains(&room_text))
    })
    .await;
    let removed_text = removed.id.to_string();
    assert_no_frame(&mut owner_ws, "the removed member's presence", |f| {
        matches!(f, ServerFrame::Presence { user_id, .. } if user_id.to_string() == removed_text)
    })
    .await;
}

#[tokio::test]
async fn a_removed_member_gets_no_push() {
    let sink = PushSink::start().await;
    let app = spawn_app_with(|c| {
        c.push.outbound_allow = vec!["127.0.0.1".into()];
        c.push.collapse_ms = 100;
    })
    .await;
    let owner = app.user("owner").await;
    let removed = app.user("removed").await;
    let room = owner.group("team", &[&removed]).await.id;
    let body = subscription(&sink.url("removed"));
    let (status, body) = removed
        .api
        .raw(Method::POST, "/api/v1/push/subscriptions", Some(&body))
        .await
        .expect("subscribe");
    assert_eq!(status, 201, "{body}");

    // While a member (and offline), they are notified.
    owner.send(room, "while a member").await;
    let deadline = Instant::now() + WAIT;
    while sink.hits().is_empty() {
        assert!(Instant::now() < deadline, "no notification while a member");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Removed: nothing more, however long one waits.
    let (status, body) = owner
        .api
        .raw(
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/members/{}", removed.id),
            None,
        )
        .await
        .expect("remove");
    assert_eq!(status, 204, "{body}");
    let before = sink.hits().len();
    for i in 0..3 {
        owner.send(room, &format!("after the removal {i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        sink.hits().len(),
        before,
        "notified after the removal: {:?}",
        sink.hits()
    );
}
