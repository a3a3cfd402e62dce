//! `TestApp`: a server of our own per test, and users to drive it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use palaver_client::{Client, Socket};
use palaver_proto::{AuthResponse, ClientFrame, Cursors, Message, ReceiptKind, Room, ServerFrame};
use palaver_server::{Application, Config};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a test waits to be sure something does not happen.
pub const QUIET: Duration = Duration::from_millis(300);

pub const PASSWORD: &str = "correct horse battery";

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    dir: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Test defaults: a random port, a fresh directory, generous rate limits.
pub fn test_config(dir: &Path) -> Config {
    let lots = |per_minute: u32, burst: u32| (per_minute, burst);
    let (send, login, other) = (
        lots(600_000, 100_000),
        lots(10_000, 1_000),
        lots(10_000, 1_000),
    );
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_path_buf(),
        sync_grace_ms: 300,
        rate_limits: palaver_server::config::RateLimitConfig {
            send_per_minute: send.0,
            send_burst: send.1,
            login_per_minute: login.0,
            login_burst: login.1,
            register_per_minute: other.0,
            register_burst: other.1,
            ephemeral_per_minute: other.0,
            ephemeral_burst: other.1,
            actions_per_minute: other.0,
            actions_burst: other.1,
        },
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    spawn_in(dir, tweak).await
}

/// Starts a server over an existing data directory (e.g. after a restart).
pub async fn spawn_in(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .expect("server run");
    });
    TestApp {
        addr,
        base: format!("http://{addr}"),
        dir: Some(dir),
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    /// An unauthenticated client.
    pub fn client(&self) -> Client {
        Client::new(&self.base).expect("client")
    }

    /// Registers a user and returns it with an authenticated client.
    pub async fn user(&self, name: &str) -> TestUser {
        let auth = self
            .client()
            .register(name, PASSWORD, Some(&capitalise(name)))
            .await
            .expect("register");
        TestUser {
            api: self.client().with_token(&auth.access_token),
            id: auth.user.id,
            name: name.to_owned(),
            auth,
        }
    }

    /// Several users at once.
    pub async fn users(&self, names: &[&str]) -> Vec<TestUser> {
        let mut out = Vec::new();
        for n in names {
            out.push(self.user(n).await);
        }
        out
    }

    /// Stops gracefully and hands back the data directory.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("server stops")
                .expect("server task");
        }
        self.dir.take().expect("data dir")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.as_ref().map(|d| d.path()).expect("data dir")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("palaver.db")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// A registered user.
pub struct TestUser {
    pub api: Client,
    pub id: Uuid,
    pub name: String,
    pub auth: AuthResponse,
}

impl TestUser {
    /// Opens a socket and reads the `hello` frame.
    pub async fn connect(&self) -> Socket {
        let mut socket = self.api.connect().await.expect("connect");
        match socket.next_within(WAIT).await.expect("hello") {
            ServerFrame::Hello { user_id, .. } => assert_eq!(user_id, self.id),
            other => panic!("expected hello, got {other:?}"),
        }
        socket
    }

    /// Opens a socket that resumes from `cursors`; returns it with the replayed messages.
    pub async fn resume(&self, cursors: Cursors) -> (Socket, Vec<Message>) {
        let mut socket = self.connect().await;
        let id = socket
            .send_frame(ClientFrame::Sync { cursors })
            .await
            .expect("sync");
        let mut replayed = Vec::new();
        loop {
            match socket.next_within(WAIT).await.expect("replay") {
                ServerFrame::Message { message } => replayed.push(message),
                ServerFrame::Synced { id: Some(i), .. } if i == id => break,
                _ => {}
            }
        }
        (socket, replayed)
    }

    pub async fn dm(&self, other: &TestUser) -> Room {
        self.api
            .create_room(None, false, &[other.id])
            .await
            .expect("create dm")
            .1
    }

    pub async fn group(&self, name: &str, others: &[&TestUser]) -> Room {
        let ids: Vec<Uuid> = others.iter().map(|u| u.id).collect();
        self.api
            .create_room(Some(name), true, &ids)
            .await
            .expect("create group")
            .1
    }

    pub async fn send(&self, room: Uuid, text: &str) -> Message {
        self.api
            .send(room, &Uuid::now_v7().to_string(), text)
            .await
            .expect("send")
            .1
    }
}

/// Waits for the next new message on a socket, skipping other frames.
pub async fn next_message(socket: &mut Socket) -> Message {
    match socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::Message { .. }))
        .await
        .expect("message frame")
    {
        ServerFrame::Message { message } => message,
        _ => unreachable!(),
    }
}

/// Asserts that no frame matching `pred` arrives for a while.
pub async fn assert_no_frame(socket: &mut Socket, what: &str, pred: impl Fn(&ServerFrame) -> bool) {
    let deadline = tokio::time::Instant::now() + QUIET;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        match socket.next_within(left).await {
            Ok(frame) if pred(&frame) => panic!("unexpected {what}: {frame:?}"),
            Ok(_) => continue,
            Err(_) => return,
        }
    }
}

/// Sends a receipt frame and waits for its ack.
pub async fn receipt(socket: &mut Socket, room: Uuid, seq: i64, status: ReceiptKind) {
    let id = socket
        .send_frame(ClientFrame::Receipt {
            room_id: room,
            seq,
            status,
        })
        .await
        .expect("receipt");
    socket.answer(&id, WAIT).await.expect("receipt ack");
}

/// Asserts the one error shape with this status and code.
#[track_caller]
pub fn assert_error(answer: &(u16, serde_json::Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "status of {}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "code of {}", answer.1);
    assert!(
        answer.1["error"]["message"].is_string(),
        "message of {}",
        answer.1
    );
}
