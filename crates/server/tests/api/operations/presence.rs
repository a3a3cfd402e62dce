//! Presence and heartbeats: presence follows connections and counts every device, a peer
//! that stops answering pings is noticed, a heartbeat timeout closes with 4002, and
//! presence is hidden once no room is shared.

use std::time::Duration;

use palaver_client::Socket;
use palaver_proto::{ClientFrame, LastSeen, Presence, PresenceStatus, ServerFrame, close};
use reqwest::Method;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::*;

/// Waits for a `presence` frame about `user` with `status`; returns its `lastSeen`.
async fn presence_frame(
    socket: &mut Socket,
    user: Uuid,
    status: PresenceStatus,
    within: Duration,
) -> Option<OffsetDateTime> {
    match socket
        .wait_for(within, |f| {
            matches!(f, ServerFrame::Presence { user_id, status: s, .. } if *user_id == user && *s == status)
        })
        .await
    {
        Ok(ServerFrame::Presence { last_seen, .. }) => last_seen,
        Ok(_) => unreachable!(),
        Err(err) => panic!("no presence {status:?} for {user} within {within:?}: {err}"),
    }
}

/// `GET` as `user`, decoded, with the status.
async fn get<T: serde::de::DeserializeOwned>(user: &TestUser, path: &str) -> T {
    user.api
        .call::<(), T>(Method::GET, path, None)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .1
}

/// Asserts that lastSeen is within the last minute (and not in the future).
#[track_caller]
fn recent(at: Option<OffsetDateTime>) {
    let at = at.expect("lastSeen is set");
    let now = OffsetDateTime::now_utc();
    assert!(
        at <= now + time::Duration::seconds(2) && at >= now - time::Duration::minutes(1),
        "lastSeen {at} is not within the last minute of {now}"
    );
}

#[tokio::test]
async fn presence_follows_connections() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    alice.dm(&bob).await;
    let mut alice_ws = alice.connect().await;

    // Before bob ever connects: offline, never seen.
    let never: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(never.user_id, bob.id);
    assert_eq!(never.status, PresenceStatus::Offline);
    assert_eq!(never.last_seen, None, "never connected");

    // Bob connects: alice hears he is online.
    let mut bob_ws = bob.connect().await;
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;
    for path in ["presence", "chat/status"] {
        let p: Presence = get(&alice, &format!("/api/v1/{path}/{}", bob.id)).await;
        assert_eq!(p.user_id, bob.id);
        assert_eq!(p.status, PresenceStatus::Online, "{path}");
        recent(p.last_seen);
    }
    let raw = alice
        .api
        .raw(Method::GET, &format!("/api/v1/presence/{}", bob.id), None)
        .await
        .expect("presence");
    assert_eq!(raw.1["status"], "online");
    assert_eq!(raw.1["userId"], bob.id.to_string());

    // Away, then back.
    let id = bob_ws
        .send_frame(ClientFrame::Presence {
            status: PresenceStatus::Away,
        })
        .await
        .expect("presence frame");
    bob_ws.answer(&id, WAIT).await.expect("presence accepted");
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Away, WAIT).await;
    let p: Presence = get(&alice, &format!("/api/v1/chat/status/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Away);
    bob_ws
        .send_text(r#"{"type":"presence","status":"online"}"#.into())
        .await
        .expect("presence frame");
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;
    // Offline is not something one says; one closes the socket.
    let id = bob_ws
        .send_frame(ClientFrame::Presence {
            status: PresenceStatus::Offline,
        })
        .await
        .expect("presence frame");
    let refused = bob_ws
        .answer(&id, WAIT)
        .await
        .expect_err("offline is refused");
    assert_eq!(
        refused.code(),
        Some(palaver_proto::ErrorCode::ValidationFailed)
    );

    // Bob disconnects: offline, with a recent lastSeen.
    bob_ws.close().await.expect("close");
    let seen = presence_frame(&mut alice_ws, bob.id, PresenceStatus::Offline, WAIT).await;
    recent(seen);
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Offline);
    recent(p.last_seen);
    let last: LastSeen = get(&alice, &format!("/api/v1/lastseen/{}", bob.id)).await;
    assert_eq!(last.user_id, bob.id);
    recent(last.last_seen);
    let raw = alice
        .api
        .raw(Method::GET, &format!("/api/v1/lastseen/{}", bob.id), None)
        .await
        .expect("lastseen");
    assert_eq!(raw.0, 200);
    assert!(raw.1["lastSeen"].is_string(), "{}", raw.1);

    // One's own presence is visible.
    let own: Presence = get(&alice, &format!("/api/v1/presence/{}", alice.id)).await;
    assert_eq!(own.status, PresenceStatus::Online);

    // Someone who shares no room with alice is as invisible as someone who does not exist.
    for path in ["presence", "chat/status", "lastseen"] {
        for target in [carol.id, Uuid::now_v7()] {
            let (status, body) = alice
                .api
                .raw(Method::GET, &format!("/api/v1/{path}/{target}"), None)
                .await
                .expect("request");
            assert_eq!(status, 404, "{path}: {body}");
            assert_eq!(body["error"]["code"], "user_not_found", "{path}");
        }
    }
    // And carol's own socket hears nothing about bob or alice.
    let mut carol_ws = carol.connect().await;
    let _bob_again = bob.connect().await;
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;
    assert_no_frame(&mut carol_ws, "presence of a stranger", |f| {
        matches!(f, ServerFrame::Presence { .. })
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_noticed() {
    let app = spawn_app_with(|c| c.heartbeat_interval_secs = 1).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    alice.dm(&bob).await;
    let mut alice_ws = alice.connect().await;

    // Bob's socket reads its hello and then nothing more, so it never answers a ping.
    let started = tokio::time::Instant::now();
    let mut bob_ws = bob.api.connect().await.expect("connect");
    match bob_ws.next_within(WAIT).await.expect("hello") {
        ServerFrame::Hello {
            heartbeat_interval, ..
        } => assert_eq!(heartbeat_interval, 1),
        other => panic!("expected hello, got {other:?}"),
    }
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;

    let seen = presence_frame(
        &mut alice_ws,
        bob.id,
        PresenceStatus::Offline,
        Duration::from_secs(6),
    )
    .await;
    recent(seen);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500),
        "bob was dropped after {elapsed:?}, before two heartbeat intervals"
    );
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Offline);

    // Alice, who answers pings as she reads, is still connected and served.
    let id = alice_ws.send_frame(ClientFrame::Ping).await.expect("ping");
    alice_ws.answer(&id, WAIT).await.expect("pong");
    drop(bob_ws);
}

#[tokio::test]
async fn a_heartbeat_timeout_closes_with_4002() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| c.heartbeat_interval_secs = 1).await;
    let bob = app.user("bob").await;
    // A socket that never says anything, pongs included: a raw client after the upgrade.
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let handshake = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        app.addr, bob.auth.access_token
    );
    stream
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got))
        .await
        .expect("the socket was closed")
        .expect("read");
    assert!(got.starts_with(b"HTTP/1.1 101"));
    // Server frames are unmasked: a close frame is 0x88, its length, then the code.
    let closed_with_4002 = got
        .windows(4)
        .any(|w| w[0] == 0x88 && w[1] >= 2 && w[2..4] == close::HEARTBEAT_TIMEOUT.to_be_bytes());
    assert!(closed_with_4002, "no close frame with 4002 in {got:?}");
}

#[tokio::test]
async fn presence_counts_every_device() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    alice.dm(&bob).await;
    let mut alice_ws = alice.connect().await;

    let phone = bob.connect().await;
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;
    let laptop = bob.connect().await;
    assert_no_frame(&mut alice_ws, "presence for a second device", |f| {
        matches!(f, ServerFrame::Presence { .. })
    })
    .await;

    // One device gone: still online.
    phone.close().await.expect("close");
    assert_no_frame(&mut alice_ws, "offline while a device is connected", |f| {
        matches!(
            f,
            ServerFrame::Presence {
                status: PresenceStatus::Offline,
                ..
            }
        )
    })
    .await;
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Online);

    // The last one gone: offline.
    laptop.close().await.expect("close");
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Offline, WAIT).await;
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Offline);
}

#[tokio::test]
async fn presence_is_hidden_once_no_room_is_shared() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = alice.group("Team", &[&bob]).await;
    let _bob_ws = bob.connect().await;
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Online);

    let left = bob
        .api
        .raw(
            Method::POST,
            &format!("/api/v1/rooms/{}/leave", group.id),
            None,
        )
        .await
        .expect("leave");
    assert_eq!(left.0, 204, "{}", left.1);
    for path in ["presence", "chat/status", "lastseen"] {
        let (status, body) = alice
            .api
            .raw(Method::GET, &format!("/api/v1/{path}/{}", bob.id), None)
            .await
            .expect("request");
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "user_not_found");
    }
}
