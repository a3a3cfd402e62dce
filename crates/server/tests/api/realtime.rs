//! Real time over the socket: fan-out, receipts, several devices, typing and resume.

use std::collections::BTreeMap;
use std::time::Instant;

use palaver_proto::{ClientFrame, MessageStatus, ReceiptKind, ServerFrame};
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
    // The summary reaches 1 only once the last member has read it.
    let mut last = (0, 0);
    while last != (1, 1) {
        last = next_summary(&mut sender).await;
    }
    let history = alice
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages[0].status, MessageStatus::Read);
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

#[tokio::test]
async fn typing_is_relayed_to_the_others() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;
    let id = a
        .send_frame(ClientFrame::Typing {
            room_id: room.id,
            active: true,
        })
        .await
        .expect("typing");
    a.answer(&id, WAIT).await.expect("ack");
    match b
        .wait_for(WAIT, |f| matches!(f, ServerFrame::Typing { .. }))
        .await
        .expect("typing")
    {
        ServerFrame::Typing {
            room_id,
            user_id,
            active,
        } => assert_eq!((room_id, user_id, active), (room.id, alice.id, true)),
        _ => unreachable!(),
    }
    assert_no_frame(&mut a, "own typing echoed", |f| {
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
