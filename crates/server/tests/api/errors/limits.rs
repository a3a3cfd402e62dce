//! Rate limits and slow consumers: sends limited per user with the wait in a field, a
//! flooding socket limited while others chat on, a slow consumer closed with 1008.

use std::time::Duration;

use futures::StreamExt;
use palaver_client::{ClientError, Socket};
use palaver_proto::{ClientFrame, Cursors, ErrorCode, ServerFrame, close};
use palaver_server::config::{RateBucket, RateLimit};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

use super::{assert_alive, assert_api_error, call, error_for, history_len, send_frame};

#[tokio::test]
async fn sends_are_rate_limited_per_user() {
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Send] = RateLimit::new(1, 3);
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;

    for i in 0..3 {
        let (status, _) = alice
            .api
            .send(room, &format!("c{i}"), "hi")
            .await
            .expect("within the burst");
        assert_eq!(status, 201);
    }
    let got = call(
        &alice,
        Method::POST,
        "/api/v1/messages/send",
        Some(json!({"roomId": room, "clientMsgId": "c3", "content": "one too many"})),
    )
    .await;
    assert_api_error(got, 429, "rate_limited");
    // Over the socket too, answered with the frame's id.
    let mut socket = alice.connect().await;
    let id = socket
        .send_frame(send_frame(room, "c4", "still too many"))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::RateLimited
    );

    let history = alice
        .api
        .history(room, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 3);
    assert_eq!(
        history.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    // The limit is alice's: bob may still send.
    let (status, _) = bob
        .api
        .send(room, "b1", "my turn")
        .await
        .expect("bob sends");
    assert_eq!(status, 201);
}

/// The next `error` frame: its (id, clientMsgId, code, retryAfterMs).
async fn next_error(
    socket: &mut Socket,
) -> (Option<String>, Option<String>, ErrorCode, Option<u64>) {
    match socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::Error { .. }))
        .await
        .expect("an error frame")
    {
        ServerFrame::Error {
            id,
            client_msg_id,
            code,
            retry_after_ms,
            ..
        } => (id, client_msg_id, code, retry_after_ms),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn rate_limited_says_how_long_to_wait_in_a_field() {
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Send] = RateLimit::new(1, 1);
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    alice.send(room, "the one allowed").await;

    // REST: Retry-After in whole seconds, rounded up, and the same wait in milliseconds
    // in the body.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/messages/send", app.base))
        .bearer_auth(&alice.auth.access_token)
        .json(&json!({"roomId": room, "clientMsgId": "c2", "content": "too many"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 429);
    let header: u64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    let body: Value = resp.json().await.expect("the error shape");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let ms = body["error"]["retryAfterMs"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfterMs is an integer: {body}"));
    assert!((1..=60_000).contains(&ms), "{body}");
    assert_eq!(
        header,
        ms.div_ceil(1000),
        "Retry-After rounds retryAfterMs up"
    );

    // The socket: the same field on the error frame, which names the send (its id and its
    // clientMsgId; with no id, the clientMsgId alone).
    let mut socket = alice.connect().await;
    let id = socket
        .send_frame(send_frame(room, "c3", "still too many"))
        .await
        .expect("send");
    let (got_id, client_msg_id, code, wait) = next_error(&mut socket).await;
    assert_eq!(code, ErrorCode::RateLimited);
    assert_eq!(got_id.as_deref(), Some(id.as_str()));
    assert_eq!(client_msg_id.as_deref(), Some("c3"));
    assert!(wait.is_some_and(|w| (1..=60_000).contains(&w)), "{wait:?}");
    let no_id = json!({"type": "send", "message": {"roomId": room, "clientMsgId": "c4", "content": "again"}});
    socket.send_text(no_id.to_string()).await.expect("send");
    let (got_id, client_msg_id, code, wait) = next_error(&mut socket).await;
    assert_eq!(
        (got_id, client_msg_id.as_deref(), code),
        (None, Some("c4"), ErrorCode::RateLimited)
    );
    assert!(wait.is_some(), "retryAfterMs on a send without id");
    // Other errors carry no wait.
    let id = socket
        .send_frame(ClientFrame::Typing {
            room_id: Uuid::now_v7(),
            active: true,
        })
        .await
        .expect("typing");
    let (got_id, client_msg_id, code, wait) = next_error(&mut socket).await;
    assert_eq!(got_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        (client_msg_id, code, wait),
        (None, ErrorCode::RoomNotFound, None)
    );
}

#[tokio::test]
async fn an_error_answering_a_send_without_id_carries_its_client_msg_id() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    let mut socket = alice.connect().await;
    let stranger_room = bob.group("bob alone", &[]).await.id;
    let send = |room: Value, client_msg_id: &str, extra: Value| {
        let mut message = json!({"roomId": room, "clientMsgId": client_msg_id, "content": "hi"});
        if let (Some(m), Some(extra)) = (message.as_object_mut(), extra.as_object()) {
            m.extend(extra.clone());
        }
        json!({"type": "send", "message": message}).to_string()
    };

    // Each send has no `id`; each error names its clientMsgId.
    for (frame, client_msg_id, code) in [
        // Refused by validation: empty content, media type without mediaId.
        (
            send(json!(room), "v1", json!({"content": ""})),
            "v1",
            ErrorCode::ValidationFailed,
        ),
        (
            send(json!(room), "v2", json!({"type": "image"})),
            "v2",
            ErrorCode::ValidationFailed,
        ),
        // Not allowed: a room Alice is not in, media she cannot see.
        (
            send(json!(stranger_room), "n1", json!({})),
            "n1",
            ErrorCode::RoomNotFound,
        ),
        (
            send(
                json!(room),
                "n2",
                json!({"type": "image", "mediaId": Uuid::now_v7()}),
            ),
            "n2",
            ErrorCode::MediaNotFound,
        ),
        // Too malformed to handle, but the clientMsgId can still be read.
        (
            send(json!("not-a-uuid"), "m1", json!({})),
            "m1",
            ErrorCode::BadRequest,
        ),
        (
            send(json!(room), "m2", json!({"content": 5})),
            "m2",
            ErrorCode::BadRequest,
        ),
    ] {
        socket.send_text(frame.clone()).await.expect("send");
        let (got_id, got_client_msg_id, got_code, _) = next_error(&mut socket).await;
        assert_eq!(got_id, None, "{frame}");
        assert_eq!(got_client_msg_id.as_deref(), Some(client_msg_id), "{frame}");
        assert_eq!(got_code, code, "{frame}");
    }
    // A clientMsgId that cannot be read, or is too long to be one, is not echoed.
    let long = "x".repeat(65);
    for frame in [
        send(json!(room), &long, json!({})),
        json!({"type": "send", "message": {"roomId": room, "clientMsgId": 7}}).to_string(),
    ] {
        socket.send_text(frame.clone()).await.expect("send");
        let (_, got_client_msg_id, _, _) = next_error(&mut socket).await;
        assert_eq!(got_client_msg_id, None, "{frame}");
    }
    // Errors for other frames carry none.
    socket
        .send_text(json!({"type": "typing", "roomId": stranger_room}).to_string())
        .await
        .expect("typing");
    let (_, got_client_msg_id, code, _) = next_error(&mut socket).await;
    assert_eq!((got_client_msg_id, code), (None, ErrorCode::RoomNotFound));
    // Nothing was stored.
    assert_eq!(history_len(&alice, room).await, 0);
}

#[tokio::test]
async fn a_flooding_socket_is_rate_limited_while_others_chat_on() {
    const BURST: usize = 20;
    const FLOOD: usize = 300;
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Send] = RateLimit::new(60, BURST as u32);
    })
    .await;
    let (mallory, alice, bob) = (
        app.user("mallory").await,
        app.user("alice").await,
        app.user("bob").await,
    );
    let target = mallory.dm(&alice).await.id;
    let quiet_room = alice.dm(&bob).await.id;
    let mut bob_socket = bob.connect().await;

    // Mallory pipelines FLOOD sends without waiting for any answer.
    let mut flood = mallory.connect().await;
    let mut ids = Vec::new();
    for i in 0..FLOOD {
        ids.push(
            flood
                .send_frame(send_frame(target, &format!("f{i}"), "spam"))
                .await
                .expect("send"),
        );
    }
    // Every frame is answered: an ack within the burst (and what refills meanwhile, one a
    // second), a rate_limited error naming the frame and the wait after that.
    let (mut acked, mut limited) = (0, 0);
    for id in &ids {
        match flood.answer(id, WAIT).await {
            Ok(ServerFrame::Ack { .. }) => acked += 1,
            Err(ClientError::Api { code, message, .. }) => {
                assert_eq!(code, ErrorCode::RateLimited, "{message}");
                assert!(message.contains("retry in"), "says when: {message}");
                limited += 1;
            }
            other => panic!("expected ack or error, got {other:?}"),
        }
    }
    assert_eq!(acked + limited, FLOOD);
    assert!(
        (BURST..BURST + 10).contains(&acked),
        "{acked} acked of {FLOOD}"
    );
    // The flooder's connection is still usable, and only what was acked was stored.
    assert_alive(&mut flood).await;
    assert_eq!(history_len(&mallory, target).await, acked);

    // Others are not limited by mallory's flood: alice reaches bob at once.
    let sent = alice.send(quiet_room, "still here").await;
    assert_eq!(next_message(&mut bob_socket).await.id, sent.id);
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1008_and_resumes_without_a_gap() {
    const TOTAL: usize = 2000;
    const IN_FLIGHT: usize = 64;
    let app = spawn_app_with(|c| c.outbound_queue = 8).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;

    // Bob's connection goes live, then bob stops reading.
    let mut bob_socket = bob.connect().await;
    assert_alive(&mut bob_socket).await;

    // Alice sends quickly, many at once. (Over REST: a socket of hers would get her own
    // messages on its queue of 8 too, and could not keep many in flight.)
    let padding = "x".repeat(8 * 1024);
    let started = std::time::Instant::now();
    let sends = (1..=TOTAL).map(|n| {
        let api = alice.api.clone();
        let content = format!("{n} {padding}");
        async move {
            api.send(room, &format!("m{n}"), &content)
                .await
                .expect("send")
                .0
        }
    });
    let statuses: Vec<u16> = futures::stream::iter(sends)
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 201));
    eprintln!("sent {TOTAL} in {:?}", started.elapsed());

    // Bob reads what he can: messages in order with no gap, then the close.
    let mut last = 0i64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match bob_socket.next_within(left).await {
            Ok(ServerFrame::Message { message }) => {
                assert_eq!(message.room_id, room);
                assert_eq!(message.seq, last + 1, "gap in live traffic");
                last = message.seq;
            }
            Ok(_) => {}
            Err(ClientError::Closed(Some((close::SLOW_CONSUMER, _)))) => break,
            Err(other) => panic!("expected close 1008 after seq {last}, got {other:?}"),
        }
    }
    eprintln!(
        "bob got {last} live before the close, after {:?}",
        started.elapsed()
    );
    assert!(last < TOTAL as i64, "bob was never cut off");

    // Bob comes back and resumes from the last seq he has: the rest, in order, once.
    let (mut resumed, replayed) = bob.resume(Cursors::from([(room, last)])).await;
    let seqs: Vec<i64> = replayed.iter().map(|m| m.seq).collect();
    let expected: Vec<i64> = (last + 1..=TOTAL as i64).collect();
    assert_eq!(seqs.len(), expected.len());
    assert!(seqs == expected, "replay is not {}..={TOTAL}", last + 1);
    assert!(
        replayed
            .iter()
            .all(|m| m.room_id == room && m.content.ends_with(&padding))
    );
    // And is live again.
    alice.send(room, "welcome back").await;
    let next = next_message(&mut resumed).await;
    assert_eq!(
        (next.seq, next.content.as_str()),
        (TOTAL as i64 + 1, "welcome back")
    );
}
