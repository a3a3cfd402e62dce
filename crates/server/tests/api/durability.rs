//! Acknowledged means durable: across a restart, and across `kill -9` of the real binary.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use palaver_client::Client;
use palaver_proto::{ClientFrame, ReceiptKind, SendMessageRequest, ServerFrame, close};

use crate::helpers::*;

/// A `send` frame for a text message.
fn text(room_id: uuid::Uuid, client_msg_id: String, content: String) -> ClientFrame {
    ClientFrame::Send {
        message: SendMessageRequest {
            room_id,
            client_msg_id,
            content,
            kind: Default::default(),
            media_id: None,
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn restart_over_the_same_data_dir_keeps_everything() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    for i in 1..=10 {
        alice.send(room.id, &format!("m{i}")).await;
    }
    let mut b = bob.connect().await;
    receipt(&mut b, room.id, 7, ReceiptKind::Read).await;
    let before = alice
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    let rooms_before = alice.api.rooms().await.expect("rooms");
    let dir = app.stop().await;

    let app = spawn_in(dir, |_| {}).await;
    // Tokens stay valid across a restart (the signing secret lives in the data dir).
    let alice_api = app.client().with_token(alice.auth.access_token.clone());
    let after = alice_api
        .history(room.id, None, None, None)
        .await
        .expect("history after restart");
    assert_eq!(before.messages, after.messages);
    assert_eq!(rooms_before, alice_api.rooms().await.expect("rooms"));
    app.client()
        .login("bob", PASSWORD)
        .await
        .expect("bob logs in again");
    let (_, next) = alice_api
        .send(room.id, "after-restart", "still here")
        .await
        .expect("send");
    assert_eq!(next.seq, 11, "seq continues without a gap");
}

/// The real `palaver` binary, as an operator runs it.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

// The child is killed and reaped by `Server`'s Drop (or explicitly by the test).
#[allow(clippy::zombie_processes)]
async fn start_binary(dir: &std::path::Path) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_palaver"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .env("PALAVER_RATE_LIMITS__SEND_PER_MINUTE", "10000000")
        .env("PALAVER_RATE_LIMITS__SEND_BURST", "100000")
        .env("PALAVER_LOG", "warn")
        .env("PALAVER_METRICS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start palaver");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("palaver did not become ready");
}

#[tokio::test]
async fn kill_dash_nine_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start_binary(dir.path()).await;
    let anon = Client::new(&server.base).expect("client");
    let alice = anon.register("alice", PASSWORD, None).await.expect("alice");
    let bob = anon.register("bob", PASSWORD, None).await.expect("bob");
    let alice_api = anon.with_token(alice.access_token.clone());
    let room = alice_api
        .create_room(None, false, &[bob.user.id])
        .await
        .expect("dm")
        .1;

    // Pipeline many sends, and kill the server while most are still in flight.
    let mut socket = alice_api.connect().await.expect("connect");
    const N: usize = 3000;
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(
            socket
                .send_frame(text(room.id, format!("k{i}"), format!("k{i}")))
                .await
                .expect("send"),
        );
    }
    let mut acked = Vec::new();
    while acked.len() < 500 {
        match socket.next_within(WAIT).await.expect("frame") {
            ServerFrame::Ack {
                message: Some(m), ..
            } => acked.push(m),
            ServerFrame::Error { code, message, .. } => panic!("send failed: {code} {message}"),
            _ => {}
        }
    }
    server.child.kill().expect("kill -9"); // SIGKILL: no shutdown code runs
    server.child.wait().expect("reaped");
    // Acks already on the wire before the kill count as acknowledged too.
    while let Ok(frame) = socket.next_within(Duration::from_secs(2)).await {
        if let ServerFrame::Ack {
            message: Some(m), ..
        } = frame
        {
            acked.push(m);
        }
    }

    let server = start_binary(dir.path()).await;
    let api = Client::new(&server.base)
        .expect("client")
        .with_token(alice.access_token.clone());
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .history(room.id, None, Some(after), Some(200))
            .await
            .expect("history");
        stored.extend(
            page.messages
                .iter()
                .map(|m| (m.seq, m.id, m.client_msg_id.clone())),
        );
        match page.messages.last() {
            Some(last) if page.has_more => after = last.seq,
            _ => break,
        }
    }
    assert_eq!(
        stored.iter().map(|s| s.0).collect::<Vec<_>>(),
        (1..=stored.len() as i64).collect::<Vec<_>>(),
        "seqs stay gap-free"
    );
    for m in &acked {
        assert!(
            stored.iter().any(|s| s.1 == m.id && s.0 == m.seq),
            "acknowledged message {} (seq {}) was lost",
            m.client_msg_id,
            m.seq
        );
    }
    eprintln!(
        "kill -9 after {} acks of {N} sent: {} stored, none lost",
        acked.len(),
        stored.len()
    );
    drop(server);
}

#[tokio::test]
async fn sigterm_closes_sockets_with_going_away_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start_binary(dir.path()).await;
    let anon = Client::new(&server.base).expect("client");
    let alice = anon.register("alice", PASSWORD, None).await.expect("alice");
    let mut socket = anon
        .with_token(alice.access_token.clone())
        .connect()
        .await
        .expect("connect");
    socket.next_within(WAIT).await.expect("hello");

    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let closed = loop {
        match socket.next_within(WAIT).await {
            Ok(_) => continue,
            Err(palaver_client::ClientError::Closed(frame)) => break frame,
            Err(other) => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(
        closed.map(|(code, _)| code),
        Some(close::GOING_AWAY),
        "going away"
    );
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait();
        (server, status)
    })
    .await
    .expect("wait");
    assert!(
        exit.1.expect("exit status").success(),
        "palaver exits 0 after SIGTERM"
    );
}

/// The sum and count of a histogram on `/metrics`.
async fn histogram(app: &TestApp, name: &str) -> (f64, f64) {
    let text = reqwest::get(format!("{}/metrics", app.metrics_base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let value = |series: &str| {
        text.lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    (
        value(&format!("{name}_sum")),
        value(&format!("{name}_count")),
    )
}

#[tokio::test]
async fn concurrent_sends_share_commits() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol", "dave"]).await;
    let room = users[0]
        .group("commits", &[&users[1], &users[2], &users[3]])
        .await;
    let (sum_before, count_before) = histogram(&app, "palaver_commit_batch_size").await;

    // Every user pipelines 100 sends over a socket, all at once.
    const EACH: usize = 100;
    let bursts = users.iter().map(|user| async {
        let mut socket = user.connect().await;
        let mut ids = Vec::new();
        for i in 0..EACH {
            ids.push(
                socket
                    .send_frame(text(room.id, format!("{}-{i}", user.name), format!("{i}")))
                    .await
                    .expect("send"),
            );
        }
        for id in ids {
            socket.answer(&id, WAIT).await.expect("ack");
        }
    });
    futures::future::join_all(bursts).await;

    let (sum_after, count_after) = histogram(&app, "palaver_commit_batch_size").await;
    let (messages, commits) = (sum_after - sum_before, count_after - count_before);
    // Other tests in this process commit too, so only bounds hold: at least our 400
    // messages, in far fewer transactions than messages.
    assert!(
        messages >= (4 * EACH) as f64,
        "{messages} messages committed"
    );
    assert!(
        commits * 2.0 < messages,
        "{messages} messages took {commits} commits: no group commit"
    );
}

#[tokio::test]
async fn the_bus_is_never_the_only_copy() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await;
    let mut reader = bob.connect().await;
    let mut writer = alice.connect().await;
    for i in 0..30 {
        let id = writer
            .send_frame(text(room.id, format!("bus-{i}"), format!("{i}")))
            .await
            .expect("send");
        // The moment a live frame arrives, the database already holds the message.
        let live = next_message(&mut reader).await;
        let stored = app
            .db_rows(&format!(
                "SELECT seq FROM messages WHERE client_msg_id = '{}'",
                live.client_msg_id
            ))
            .await;
        assert_eq!(
            stored,
            vec![vec![Some(live.seq.to_string())]],
            "message {} was on the bus before it was stored",
            live.seq
        );
        writer.answer(&id, WAIT).await.expect("ack");
    }
}
