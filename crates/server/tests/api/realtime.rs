//! Real time over the socket: fan-out, receipts, several devices, typing and resume.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use palaver_client::{ClientError, ConnectOptions};
use palaver_proto::{ClientFrame, ErrorCode, MessageStatus, ReceiptKind, ServerFrame, close};
use reqwest::Method;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use uuid::Uuid;

use crate::helpers::*;

fn is_receipt_from(user: Uuid, kind: ReceiptKind) -> impl Fn(&ServerFrame) -> bool {
    move |f| matches!(f, ServerFrame::Receipt { user_id, status, .. } if *user_id == user && *status == kind)
}

/// The next `receipt.summary` on the socket, as (deliveredSeq, readSeq).
async fn next_summary(socket: &mut palaver_client::Socket) -> (i64, i64) {
    match socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::ReceiptSummary { .. }))
        .await
        .expect("summary")
    {
        ServerFrame::ReceiptSummary {
            delivered_seq,
            read_seq,
            ..
        } => (delivered_seq, read_seq),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn direct_message_with_receipts_sent_delivered_read() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;

    let (sent, duplicate) = a.send_message(room.id, "m1", "hi bob").await.expect("send");
    assert!(!duplicate);
    assert_eq!((sent.seq, sent.status), (1, MessageStatus::Sent));

    let got = next_message(&mut b).await;
    assert_eq!(
        (got.id, got.content.as_str(), got.sender_id),
        (sent.id, "hi bob", alice.id)
    );

    receipt(&mut b, room.id, got.seq, ReceiptKind::Delivered).await;
    match a
        .wait_for(WAIT, is_receipt_from(bob.id, ReceiptKind::Delivered))
        .await
        .expect("delivered")
    {
        ServerFrame::Receipt { room_id, seq, .. } => assert_eq!((room_id, seq), (room.id, 1)),
        _ => unreachable!(),
    }
    assert_eq!(next_summary(&mut a).await, (1, 0));
    let history = alice
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages[0].status, MessageStatus::Delivered);

    receipt(&mut b, room.id, got.seq, ReceiptKind::Read).await;
    a.wait_for(WAIT, is_receipt_from(bob.id, ReceiptKind::Read))
        .await
        .expect("read");
    assert_eq!(next_summary(&mut a).await, (1, 1));
    let history = alice
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages[0].status, MessageStatus::Read);

    // Markers never move back, and never past the last message.
    receipt(&mut b, room.id, 1, ReceiptKind::Delivered).await;
    receipt(&mut b, room.id, 99, ReceiptKind::Read).await;
    let receipts = alice
        .api
        .call::<(), palaver_proto::ReceiptsResponse>(
            reqwest::Method::GET,
            &format!("/api/v1/rooms/{}/receipts", room.id),
            None,
        )
        .await
        .expect("receipts")
        .1;
    let bob_marker = receipts
        .members
        .iter()
        .find(|m| m.user_id == bob.id)
        .expect("bob");
    assert_eq!((bob_marker.delivered_seq, bob_marker.read_seq), (1, 1));
}

#[tokio::test]
async fn group_of_five_with_receipts_from_each() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol", "dave", "erin"]).await;
    let (alice, others) = users.split_first().expect("users");
    let room = alice
        .group("five", &others.iter().collect::<Vec<_>>())
        .await;
    let mut sender = alice.connect().await;
    let mut sockets = Vec::new();
    for u in others {
        sockets.push(u.connect().await);
    }

    let (sent, _) = sender
        .send_message(room.id, "g1", "hello all")
        .await
        .expect("send");
    for s in &mut sockets {
        assert_eq!(next_message(s).await.id, sent.id);
    }
    for (u, s) in others.iter().zip(&mut sockets) {
        receipt(s, room.id, sent.seq, ReceiptKind::Read).await;
        sender
            .wait_for(WAIT, is_receipt_from(u.id, ReceiptKind::Read))
            .await
            .expect("each member's receipt");
    }
    // The summary reaches the message only once the last member has read it (the room
    // events before it, created and joined, take the seqs before it).
    let mut last = (0, 0);
    while last != (sent.seq, sent.seq) {
        last = next_summary(&mut sender).await;
    }
    let history = alice
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert!(
        history
            .messages
            .iter()
            .all(|m| m.status == MessageStatus::Read)
    );
}

#[tokio::test]
async fn one_user_on_two_devices() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut phone = alice.connect().await;
    let mut laptop = alice.connect().await;
    let mut b = bob.connect().await;

    let from_bob = bob.send(room.id, "to both").await;
    assert_eq!(next_message(&mut phone).await.id, from_bob.id);
    assert_eq!(next_message(&mut laptop).await.id, from_bob.id);

    let (from_phone, _) = phone
        .send_message(room.id, "p1", "from my phone")
        .await
        .expect("send");
    assert_eq!(
        next_message(&mut laptop).await.id,
        from_phone.id,
        "the other device sees it"
    );
    // A REST send reaches every socket of the sender too.
    assert_eq!(next_message(&mut b).await.id, from_bob.id);
    assert_eq!(next_message(&mut b).await.id, from_phone.id);
    assert_no_frame(&mut phone, "echo to the sending device", |f| {
        matches!(f, ServerFrame::Message { .. })
    })
    .await;
}

/// Typing reaches the typer's other devices (and everyone else in the room), not the
/// connection it came from.
#[tokio::test]
async fn typing_reaches_the_typers_other_devices() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut phone = alice.connect().await;
    let mut laptop = alice.connect().await;
    let mut b = bob.connect().await;
    let id = phone
        .send_frame(ClientFrame::Typing {
            room_id: room.id,
            active: true,
        })
        .await
        .expect("typing");
    phone.answer(&id, WAIT).await.expect("ack");
    for (socket, who) in [(&mut laptop, "the typer's other device"), (&mut b, "bob")] {
        match socket
            .wait_for(WAIT, |f| matches!(f, ServerFrame::Typing { .. }))
            .await
            .unwrap_or_else(|e| panic!("typing on {who}: {e}"))
        {
            ServerFrame::Typing {
                room_id,
                user_id,
                active,
            } => assert_eq!(
                (room_id, user_id, active),
                (room.id, alice.id, true),
                "{who}"
            ),
            _ => unreachable!(),
        }
    }
    assert_no_frame(&mut phone, "typing echoed to its own connection", |f| {
        matches!(f, ServerFrame::Typing { .. })
    })
    .await;
}

#[tokio::test]
async fn offline_member_resumes_exactly_while_messages_keep_coming() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let other = alice.group("side", &[&bob]).await;

    let mut b = bob.connect().await;
    for i in 1..=5 {
        alice.send(room.id, &format!("before {i}")).await;
    }
    let mut have = 0;
    while have < 5 {
        have = next_message(&mut b).await.seq;
    }
    b.close().await.expect("close");

    // While bob is away.
    for i in 6..=20 {
        alice.send(room.id, &format!("while away {i}")).await;
    }
    alice.send(other.id, "side 1").await;

    // Alice keeps sending during the reconnect.
    let sender = alice.api.clone();
    let room_id = room.id;
    let during = tokio::spawn(async move {
        for i in 21..=60 {
            sender
                .send(room_id, &format!("during-{i}"), &format!("during {i}"))
                .await
                .expect("send during");
        }
    });
    let mut cursors = BTreeMap::new();
    cursors.insert(room.id, have);
    cursors.insert(other.id, 0);
    let (mut b, replayed) = bob.resume(cursors).await;
    during.await.expect("sender");

    let mut seqs: Vec<i64> = replayed
        .iter()
        .filter(|m| m.room_id == room.id)
        .map(|m| m.seq)
        .collect();
    assert!(
        replayed
            .iter()
            .any(|m| m.room_id == other.id && m.content == "side 1"),
        "the other room is replayed too"
    );
    // Then live, until the last one.
    while seqs.last().copied().unwrap_or(0) < 60 {
        let m = next_message(&mut b).await;
        if m.room_id == room.id {
            seqs.push(m.seq);
        }
    }
    assert_eq!(
        seqs,
        (6..=60).collect::<Vec<i64>>(),
        "everything missed, in order, exactly once"
    );
    assert_no_frame(&mut b, "a duplicate", |f| {
        matches!(f, ServerFrame::Message { .. })
    })
    .await;
}

#[tokio::test]
async fn pipelined_sends_over_one_socket_are_acked_in_order() {
    // Room for every frame in Bob's queue: on a busy machine his reader may fall behind,
    // and this test is about ordering, not about closing slow consumers.
    let app = spawn_app_with(|c| c.outbound_queue = 8192).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;
    const N: usize = 2000;
    let started = Instant::now();
    // Bob reads as a real client does, while Alice sends (a socket nobody reads is a
    // slow consumer, and is closed).
    let receiver = tokio::spawn(async move {
        let mut seqs = Vec::with_capacity(N);
        while seqs.len() < N {
            seqs.push(next_message(&mut b).await.seq);
        }
        (seqs, started.elapsed())
    });
    let mut ids = Vec::with_capacity(N);
    for i in 0..N {
        let message = palaver_proto::SendMessageRequest {
            room_id: room.id,
            client_msg_id: format!("p{i}"),
            content: format!("message {i}"),
            kind: Default::default(),
            media_id: None,
            ..Default::default()
        };
        ids.push(
            a.send_frame(ClientFrame::Send { message })
                .await
                .expect("send"),
        );
    }
    let mut seqs = Vec::with_capacity(N);
    for id in &ids {
        match a.answer(id, WAIT).await.expect("ack") {
            ServerFrame::Ack {
                message: Some(m), ..
            } => seqs.push(m.seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    let acked = started.elapsed();
    assert_eq!(seqs, (1..=N as i64).collect::<Vec<_>>());
    let (received, delivered) = receiver.await.expect("receiver");
    assert_eq!(
        received,
        (1..=N as i64).collect::<Vec<_>>(),
        "in order, once each"
    );
    // A figure for the notes, not an assertion: timing belongs in benchmarks.
    eprintln!(
        "pipelined {N} sends: acked in {:?} ({:.0} msg/s), delivered in {:?} ({:.0} msg/s)",
        acked,
        N as f64 / acked.as_secs_f64(),
        delivered,
        N as f64 / delivered.as_secs_f64()
    );
}

/// Frames are small and their latency is the product, so the server's connections send at
/// once (TCP_NODELAY). Without it a frame written while the peer had not yet acknowledged
/// the previous one waited for the peer's delayed ACK, up to 40 ms on Linux: the soak's
/// receive p99 sat at 44 ms at half capacity (docs/RELIABILITY.md, "Soak").
#[tokio::test]
async fn the_servers_connections_send_without_delay() {
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};

    let app = spawn_app().await;
    let alice = app.user("nodelay").await;
    let _socket = alice.connect().await;
    // The server runs in this process, so its ends of the connections are among our file
    // descriptors: the sockets bound to its port that have a peer.
    let me = pidfd_open(getpid(), PidfdFlags::empty()).expect("pidfd_open");
    let mut checked = 0;
    for entry in std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
    {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
        let Some(n) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // A descriptor may close between the listing and here.
        let Ok(fd) = pidfd_getfd(&me, n, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let local = rustix::net::getsockname(&fd)
            .ok()
            .and_then(|a| std::net::SocketAddr::try_from(a).ok());
        let has_peer = matches!(rustix::net::getpeername(&fd), Ok(Some(_)));
        if is_socket && has_peer && local == Some(app.addr) {
            assert!(
                rustix::net::sockopt::tcp_nodelay(&fd).expect("TCP_NODELAY"),
                "a connection to the server holds back small writes (Nagle)"
            );
            checked += 1;
        }
    }
    // The socket and the REST calls that registered alice.
    assert!(checked >= 1, "found none of the server's connections");
}

/// A socket opened without an `Authorization` header, as a browser opens one.
async fn open_without_header(app: &TestApp) -> palaver_client::Socket {
    app.client()
        .connect()
        .await
        .expect("a handshake without a header is upgraded")
}

/// Reads the refusal of a first frame: an `error` frame with this code (and the frame's
/// `id`, if it had one), then close 4003.
async fn refused_with_4003(socket: &mut palaver_client::Socket, code: ErrorCode, id: Option<&str>) {
    match socket.next_within(WAIT).await.expect("the refusal") {
        ServerFrame::Error {
            code: got,
            id: got_id,
            ..
        } => {
            assert_eq!(got, code);
            assert_eq!(got_id.as_deref(), id);
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    match socket.next_within(WAIT).await {
        Err(ClientError::Closed(Some((close::AUTH_FAILED, _)))) => {}
        other => panic!("expected close 4003, got {other:?}"),
    }
}

#[tokio::test]
async fn a_browser_authenticates_its_socket_with_the_first_frame() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    alice.send(room.id, "before").await;

    // `auth`, then `sync` at once without waiting: hello, the replay, synced.
    let options = ConnectOptions {
        auth_frame: true,
        ..Default::default()
    };
    let mut socket = alice.api.connect_with(&options).await.expect("connect");
    let sync = socket
        .send_frame(ClientFrame::Sync {
            cursors: BTreeMap::from([(room.id, 0)]),
            changes: Default::default(),
        })
        .await
        .expect("sync");
    match socket.next_within(WAIT).await.expect("hello") {
        ServerFrame::Hello { user_id, .. } => assert_eq!(user_id, alice.id),
        other => panic!("expected hello, got {other:?}"),
    }
    assert_eq!(next_message(&mut socket).await.content, "before");
    socket.answer(&sync, WAIT).await.expect("synced");
    // A connection like any other: it sends, and hears.
    socket
        .send_message(room.id, "c1", "from the browser")
        .await
        .expect("send");
    bob.send(room.id, "to the browser").await;
    assert_eq!(next_message(&mut socket).await.content, "to the browser");

    // Once authenticated, another `auth` is refused and changes nothing.
    let again = socket
        .send_frame(ClientFrame::Auth {
            token: bob.auth.access_token.clone(),
        })
        .await
        .expect("auth again");
    let err = socket.answer(&again, WAIT).await.expect_err("refused");
    assert_eq!(err.code(), Some(ErrorCode::BadRequest));
    let id = socket.send_frame(ClientFrame::Ping).await.expect("ping");
    socket.answer(&id, WAIT).await.expect("still open");
}

#[tokio::test]
async fn a_socket_that_does_not_authenticate_is_closed() {
    let app = spawn_app_with(|c| c.ws_auth_timeout_ms = 300).await;
    let alice = app.user("alice").await;
    let auth = |token: &str| ClientFrame::Auth {
        token: token.into(),
    };

    // A bad token, with an id: the error carries it; then 4003.
    let mut socket = open_without_header(&app).await;
    let id = socket.send_frame(auth("not-a-token")).await.expect("auth");
    refused_with_4003(&mut socket, ErrorCode::Unauthorized, Some(&id)).await;

    // An empty one, and a frame that is not `auth` (even a valid one): refused.
    let mut socket = open_without_header(&app).await;
    socket
        .send_text(r#"{"type":"auth","token":""}"#.into())
        .await
        .expect("auth");
    refused_with_4003(&mut socket, ErrorCode::Unauthorized, None).await;
    let mut socket = open_without_header(&app).await;
    let id = socket.send_frame(ClientFrame::Ping).await.expect("ping");
    refused_with_4003(&mut socket, ErrorCode::Unauthorized, Some(&id)).await;

    // Malformed, binary, and larger than an `auth` frame may be.
    let mut socket = open_without_header(&app).await;
    socket.send_text("{not json".into()).await.expect("junk");
    refused_with_4003(&mut socket, ErrorCode::BadRequest, None).await;
    let mut socket = open_without_header(&app).await;
    socket
        .send_ws(WsMessage::Binary(
            alice.auth.access_token.clone().into_bytes().into(),
        ))
        .await
        .expect("binary");
    refused_with_4003(&mut socket, ErrorCode::BadRequest, None).await;
    let mut socket = open_without_header(&app).await;
    let padded = format!("{}{}", alice.auth.access_token, " ".repeat(5000));
    socket.send_frame(auth(&padded)).await.expect("big auth");
    refused_with_4003(&mut socket, ErrorCode::PayloadTooLarge, None).await;

    // Nothing at all (pings do not count): closed 4004 after the timeout.
    let mut socket = open_without_header(&app).await;
    socket
        .send_ws(WsMessage::Ping(Vec::new().into()))
        .await
        .expect("ping");
    match socket.next_within(WAIT).await {
        Err(ClientError::Closed(Some((close::AUTH_TIMEOUT, _)))) => {}
        other => panic!("expected close 4004, got {other:?}"),
    }
    // A late `auth` is too late.
    let mut socket = open_without_header(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let _ = socket.send_frame(auth(&alice.auth.access_token)).await;
    match socket.next_within(WAIT).await {
        Err(ClientError::Closed(Some((close::AUTH_TIMEOUT, _)))) => {}
        other => panic!("expected close 4004, got {other:?}"),
    }
    // None of these counted as a connection: Alice was never online.
    let (status, presence) = alice
        .api
        .raw(Method::GET, &format!("/api/v1/presence/{}", alice.id), None)
        .await
        .expect("presence");
    assert_eq!(status, 200, "{presence}");
    assert_eq!(presence["lastSeen"], serde_json::Value::Null, "{presence}");
}

#[tokio::test]
async fn an_access_token_in_the_socket_url_is_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let url = format!(
        "ws://{}/api/v1/ws?access_token={}",
        app.addr, alice.auth.access_token
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401);
            let body: serde_json::Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default())
                    .expect("the error shape");
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        }
        Ok(_) => panic!("a token in the URL opened a socket"),
        Err(other) => panic!("expected a 401, got {other}"),
    }
}

#[tokio::test]
async fn the_server_answers_a_close_with_a_close() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for auth_frame in [false, true] {
        let options = ConnectOptions {
            auth_frame,
            ..Default::default()
        };
        let mut socket = alice.api.connect_with(&options).await.expect("connect");
        assert!(matches!(
            socket.next_within(WAIT).await.expect("hello"),
            ServerFrame::Hello { .. }
        ));
        let mut ws = socket.into_inner();
        let bye = CloseFrame {
            code: CloseCode::Library(4321),
            reason: "bye".into(),
        };
        ws.close(Some(bye)).await.expect("send close");
        // The answer is a Close with the same code (RFC 6455 §5.5.1), then the end of the
        // stream; not a dropped connection (1006).
        let answer = loop {
            match tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("an answer")
            {
                Some(Ok(WsMessage::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(
            answer.map(|f| u16::from(f.code)),
            Some(4321),
            "auth frame: {auth_frame}"
        );
        assert!(
            matches!(
                tokio::time::timeout(WAIT, ws.next())
                    .await
                    .expect("the end"),
                None | Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed))
            ),
            "the server ends the connection after the closing handshake"
        );
    }
    // Before authenticating too (the server's handshake ping may come first).
    let mut ws = open_without_header(&app).await.into_inner();
    ws.close(None).await.expect("send close");
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer")
        {
            Some(Ok(WsMessage::Ping(_))) => {}
            Some(Ok(WsMessage::Close(_))) => break,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
