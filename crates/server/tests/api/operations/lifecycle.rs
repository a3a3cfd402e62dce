//! Graceful shutdown (`going away`) and a restart that keeps everything, and TLS.

use std::time::Duration;

use palaver_client::{ClientError, Socket};
use palaver_proto::{MessageType, Room, ServerFrame, close};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Reads until the socket closes; returns the close code and reason.
async fn read_until_closed(socket: &mut Socket) -> Option<(u16, String)> {
    loop {
        match socket.next_within(WAIT).await {
            Ok(_) => continue,
            Err(ClientError::Closed(frame)) => return frame,
            Err(other) => panic!("expected the socket to close, got {other}"),
        }
    }
}

#[tokio::test]
async fn shutdown_says_going_away_and_a_restart_keeps_everything() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dm = alice.dm(&bob).await;
    let group = alice.group("Team", &[&bob, &carol]).await;
    for i in 0..5 {
        alice.send(dm.id, &format!("dm {i}")).await;
        bob.send(group.id, &format!("group {i}")).await;
    }
    // Some receipts, so markers are part of what must survive.
    let receipt = bob
        .api
        .raw(
            Method::POST,
            &format!("/api/v1/rooms/{}/receipts", dm.id),
            Some(&json!({ "seq": 3, "status": "read" })),
        )
        .await
        .expect("receipt");
    assert_eq!(receipt.0, 200, "{}", receipt.1);

    let rooms_before: Vec<(String, Vec<Room>)> = {
        let mut out = Vec::new();
        for user in [&alice, &bob, &carol] {
            out.push((user.name.clone(), user.api.rooms().await.expect("rooms")));
        }
        out
    };
    let dm_history = alice
        .api
        .history(dm.id, None, None, None)
        .await
        .expect("history")
        .messages;
    let group_history = carol
        .api
        .history(group.id, None, None, None)
        .await
        .expect("history")
        .messages;
    assert_eq!(dm_history.len(), 5);
    // The group's timeline also holds its events: created, and each member who joined.
    let texts = group_history
        .iter()
        .filter(|m| m.kind != MessageType::Event);
    assert_eq!(texts.count(), 5);

    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;

    // Stop while both sockets are open: each is closed with 1001 "going away".
    let stopping = tokio::spawn(app.stop());
    for (who, socket) in [("alice", &mut alice_ws), ("bob", &mut bob_ws)] {
        let closed = tokio::time::timeout(Duration::from_secs(20), read_until_closed(socket))
            .await
            .unwrap_or_else(|_| panic!("{who}'s socket was not closed"));
        let (code, _reason) =
            closed.unwrap_or_else(|| panic!("{who}'s socket closed without a close frame"));
        assert_eq!(
            code,
            close::GOING_AWAY,
            "{who}'s socket closed with going away"
        );
    }
    let dir = stopping.await.expect("stop task");

    // A new server over the same directory has everything.
    let app = spawn_in(dir, |_| {}).await;
    let mut again = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let auth = app
            .client()
            .login(name, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("{name} logs in after a restart: {e}"));
        again.push(app.client().with_token(&auth.access_token));
    }
    for ((name, before), api) in rooms_before.iter().zip(&again) {
        let after = api.rooms().await.expect("rooms after restart");
        assert_eq!(&after, before, "{name}'s rooms after a restart");
    }
    let (alice_api, carol_api) = (&again[0], &again[2]);
    let dm_after = alice_api
        .history(dm.id, None, None, None)
        .await
        .expect("history")
        .messages;
    assert_eq!(dm_after, dm_history, "the dm's history after a restart");
    let group_after = carol_api
        .history(group.id, None, None, None)
        .await
        .expect("history")
        .messages;
    assert_eq!(
        group_after, group_history,
        "the group's history after a restart"
    );

    // The routing table is back: a socket gets live messages of the old rooms.
    let mut bob_ws = again[1].connect().await.expect("connect after restart");
    // And it keeps working: seqs continue where they stopped.
    let next = alice_api
        .send(dm.id, "after-restart", "still here")
        .await
        .expect("send after restart")
        .1;
    assert_eq!(next.seq, 6);
    let live = bob_ws
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::Message { message } if message.id == next.id),
        )
        .await
        .expect("bob gets the new message live");
    assert!(matches!(live, ServerFrame::Message { message } if message.seq == 6));
    // A retry of a message sent before the restart is still recognised.
    let retry = alice_api
        .send(dm.id, &dm_history[0].client_msg_id, "dm 0")
        .await
        .expect("retry after restart");
    assert_eq!(retry.0, 200, "an idempotent retry survives a restart");
    assert_eq!(retry.1.id, dm_history[0].id);
}

#[tokio::test]
async fn tls_serves_https() {
    let certs = tempfile::tempdir().expect("tempdir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let cert_pem = generated.cert.pem();
    let cert_path = certs.path().join("cert.pem");
    let key_path = certs.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).expect("write cert");
    std::fs::write(&key_path, generated.key_pair.serialize_pem()).expect("write key");

    let app = spawn_app_with(|c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;
    let port = app.addr.port();
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem certificate"),
        )
        .resolve("localhost", app.addr)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("https client");
    let base = format!("https://localhost:{port}");

    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("GET /healthz over https");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        health
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000"),
        "HSTS when the server speaks TLS itself"
    );
    let body: Value = health.json().await.expect("json");
    assert_eq!(body, json!({ "status": "ok" }));

    let registered = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({ "username": "alice", "password": PASSWORD, "displayName": "Alice" }))
        .send()
        .await
        .expect("register over https");
    assert_eq!(registered.status().as_u16(), 201);
    let auth: palaver_proto::AuthResponse = registered.json().await.expect("auth response");
    assert_eq!(auth.user.username, "alice");

    let me = http
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&auth.access_token)
        .send()
        .await
        .expect("GET /users/me over https");
    assert_eq!(me.status().as_u16(), 200);
    let me: palaver_proto::User = me.json().await.expect("user");
    assert_eq!(me.id, auth.user.id);

    // Plain HTTP to a TLS port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served on the TLS port"
    );
}
