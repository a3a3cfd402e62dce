//! What docs/PROTOCOL.md promises a client written from it alone, where no other test
//! pins it: which frames a lone `read` produces, who sees REST changes, an empty first
//! `sync`, no compression, and integral numbers written with a fraction. (Typing on the
//! typer's other devices is pinned with the rest of typing, in realtime.rs.)

use palaver_proto::{ClientFrame, Cursors, ReceiptKind, ServerFrame};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// "Read implies delivered": a `read` with no `delivered` before it moves both markers,
/// and is announced by one `receipt` frame (status `read`) and one `receipt.summary`
/// carrying both minimums; no `delivered` receipt frame.
#[tokio::test]
async fn a_lone_read_moves_both_markers_and_is_announced_once() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;
    alice.send(room.id, "one").await;
    alice.send(room.id, "two").await;
    next_message(&mut b).await;
    next_message(&mut b).await;

    receipt(&mut b, room.id, 2, ReceiptKind::Read).await;
    let mut receipts = Vec::new();
    let summary = loop {
        match a.next_within(WAIT).await.expect("frames") {
            ServerFrame::Receipt {
                user_id,
                status,
                seq,
                ..
            } => receipts.push((user_id, status, seq)),
            ServerFrame::ReceiptSummary {
                delivered_seq,
                read_seq,
                ..
            } => break (delivered_seq, read_seq),
            _ => {}
        }
    };
    assert_eq!(receipts, vec![(bob.id, ReceiptKind::Read, 2)]);
    assert_eq!(summary, (2, 2), "the summary carries both minimums");
    assert_no_frame(&mut a, "a second receipt frame", |f| {
        matches!(
            f,
            ServerFrame::Receipt { .. } | ServerFrame::ReceiptSummary { .. }
        )
    })
    .await;
    // The mover's own connection gets its `receipt` too.
    b.wait_for(WAIT, |f| {
        matches!(
            f,
            ServerFrame::Receipt {
                status: ReceiptKind::Read,
                seq: 2,
                ..
            }
        )
    })
    .await
    .expect("own receipt");

    let (status, markers) = bob
        .api
        .raw(
            Method::GET,
            &format!("/api/v1/rooms/{}/receipts", room.id),
            None,
        )
        .await
        .expect("receipts");
    assert_eq!(status, 200);
    let mine = markers["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["userId"] == bob.id.to_string()))
        .cloned()
        .expect("bob's markers");
    assert_eq!(
        (mine["deliveredSeq"].as_i64(), mine["readSeq"].as_i64()),
        (Some(2), Some(2))
    );

    // A `delivered` at or below the read marker then moves nothing and says nothing.
    receipt(&mut b, room.id, 2, ReceiptKind::Delivered).await;
    assert_no_frame(&mut a, "a receipt for a marker that did not move", |f| {
        matches!(
            f,
            ServerFrame::Receipt { .. } | ServerFrame::ReceiptSummary { .. }
        )
    })
    .await;
}

/// A send, edit or delete over REST comes from no connection, so every socket of the
/// actor gets the frame, like every other member's.
#[tokio::test]
async fn rest_sends_edits_and_deletes_reach_the_actors_own_sockets() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;

    let sent = alice.send(room.id, "over REST").await;
    for socket in [&mut a, &mut b] {
        assert_eq!(next_message(socket).await.id, sent.id);
    }

    let (status, _) = alice
        .api
        .raw(
            Method::PATCH,
            &format!("/api/v1/messages/{}", sent.id),
            Some(&json!({"content": "edited over REST"})),
        )
        .await
        .expect("edit");
    assert_eq!(status, 200);
    for socket in [&mut a, &mut b] {
        match socket
            .wait_for(WAIT, |f| matches!(f, ServerFrame::MessageUpdated { .. }))
            .await
            .expect("message.updated")
        {
            ServerFrame::MessageUpdated { message } => {
                assert_eq!(
                    (message.id, message.content.as_str()),
                    (sent.id, "edited over REST")
                )
            }
            _ => unreachable!(),
        }
    }

    let (status, _) = alice
        .api
        .raw(
            Method::DELETE,
            &format!("/api/v1/messages/{}", sent.id),
            None,
        )
        .await
        .expect("delete");
    assert_eq!(status, 200);
    for socket in [&mut a, &mut b] {
        match socket
            .wait_for(WAIT, |f| matches!(f, ServerFrame::MessageDeleted { .. }))
            .await
            .expect("message.deleted")
        {
            ServerFrame::MessageDeleted { message } => {
                assert_eq!((message.id, message.deleted), (sent.id, true))
            }
            _ => unreachable!(),
        }
    }
}

/// A first `sync` with no cursors (a new client, or one that knows no room yet) is fine:
/// it is answered by an empty `synced`, and live traffic starts.
#[tokio::test]
async fn an_empty_first_sync_is_answered_and_goes_live() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    // Bob's first socket sees this one arrive, so its event has passed (on a cluster the
    // bus may carry it a moment after the answer to the send): the socket opened next
    // cannot get it live.
    let mut earlier = bob.connect().await;
    let before = alice.send(room.id, "before the socket").await;
    assert_eq!(next_message(&mut earlier).await.id, before.id);
    let mut b = bob.connect().await;
    let id = b
        .send_frame(ClientFrame::Sync {
            cursors: Cursors::new(),
            changes: Default::default(),
        })
        .await
        .expect("sync");
    match b.answer(&id, WAIT).await.expect("synced") {
        ServerFrame::Synced { rooms, .. } => assert!(rooms.is_empty(), "{rooms:?}"),
        other => panic!("expected synced, got {other:?}"),
    }
    let live = alice.send(room.id, "after the sync").await;
    let got = next_message(&mut b).await;
    assert_eq!(
        got.id, live.id,
        "live traffic, and no replay of the room left out"
    );
}

/// The server negotiates no WebSocket compression: a handshake offering
/// permessage-deflate is answered without `Sec-WebSocket-Extensions`, so frames go
/// uncompressed (RFC 7692: the client must not compress either). REST answers are not
/// compressed whatever `Accept-Encoding` says.
#[tokio::test]
async fn nothing_is_compressed() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         Authorization: Bearer {}\r\n\r\n",
        app.addr, alice.auth.access_token
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(WAIT, tcp.read_exact(&mut byte))
            .await
            .expect("answer in time")
            .expect("read");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-extensions"), "{head}");

    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/users/me", app.base))
        .bearer_auth(&alice.auth.access_token)
        .header("accept-encoding", "gzip, deflate, br, zstd")
        .send()
        .await
        .expect("me");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-encoding").is_none());
}

/// A `seq` written as an integral number with a fraction (`2.0`, what some JSON
/// libraries print) is that integer, over REST and on the socket; `1.5` is refused.
#[tokio::test]
async fn an_integral_seq_written_with_a_fraction_is_that_integer() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    alice.send(room.id, "one").await;
    alice.send(room.id, "two").await;
    let path = format!("/api/v1/rooms/{}/receipts", room.id);

    let (status, body) = bob
        .api
        .raw(
            Method::POST,
            &path,
            Some(&json!({"seq": 1.0, "status": "delivered"})),
        )
        .await
        .expect("receipt");
    assert_eq!(status, 200, "{body}");
    let answer = bob
        .api
        .raw(
            Method::POST,
            &path,
            Some(&json!({"seq": 1.5, "status": "read"})),
        )
        .await
        .expect("receipt");
    assert_error(&answer, 400, "bad_request");

    let mut b = bob.connect().await;
    b.send_text(format!(
        r#"{{"type": "receipt", "id": "r1", "roomId": "{}", "seq": 2.0, "status": "read"}}"#,
        room.id
    ))
    .await
    .expect("receipt frame");
    assert!(
        matches!(
            b.answer("r1", WAIT).await.expect("answer"),
            ServerFrame::Ack { .. }
        ),
        "a receipt with seq 2.0 is acknowledged"
    );
    b.send_text(format!(
        r#"{{"type": "sync", "id": "s1", "cursors": {{"{}": 1.0}}}}"#,
        room.id
    ))
    .await
    .expect("sync frame");
    let mut replayed = Vec::new();
    loop {
        match b.next_within(WAIT).await.expect("replay") {
            ServerFrame::Message { message } => replayed.push(message.seq),
            ServerFrame::Synced { rooms, .. } => {
                assert_eq!(rooms.get(&room.id), Some(&2));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(replayed, vec![2]);

    let (status, markers) = bob.api.raw(Method::GET, &path, None).await.expect("get");
    assert_eq!(status, 200);
    let mine = markers["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["userId"] == bob.id.to_string()))
        .cloned()
        .expect("bob's markers");
    assert_eq!(mine["readSeq"].as_i64(), Some(2));
}
