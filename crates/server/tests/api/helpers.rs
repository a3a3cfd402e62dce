//! `TestApp`: a server of our own per test, and users to drive it.
//!
//! The same suite runs twice: on the embedded engines (`tests/api/main.rs`) and on the
//! cluster engines, PostgreSQL + NATS + Redis (`tests/api_cluster.rs`). There every test
//! gets its own namespace (schema, stream, key prefix), kept with its data directory so a
//! restarted server finds its data again, and removed when the directory is dropped.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use palaver_client::{Client, Socket};
use palaver_proto::{
    AuthResponse, ClientFrame, Cursors, MemberState, Message, MessageType, ReceiptKind, Room,
    ServerFrame,
};
use palaver_server::config::{RateBucket, RateLimit, RateLimits};
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
    /// Where `/metrics` is served (its own listener by default).
    pub metrics_base: String,
    dir: Option<DataDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Test defaults: a random port, a fresh directory, generous rate limits.
pub fn test_config(dir: &Path) -> Config {
    let mut rate_limits = RateLimits::each(RateLimit::new(10_000, 1_000));
    rate_limits[RateBucket::Send] = RateLimit::new(600_000, 100_000);
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.to_path_buf(),
        sync_grace_ms: 300,
        rate_limits,
        // How full this machine's disk is is not what a test is about; the floor has
        // tests of its own (media.rs).
        media: palaver_server::config::MediaConfig {
            min_free_disk_bytes: 0,
            ..Default::default()
        },
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_in(DataDir::new(), tweak).await
}

/// Starts a server over an existing data directory (e.g. after a restart).
pub async fn spawn_in(dir: DataDir, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(dir.path());
    if let Some(ns) = &dir.namespace {
        let engines = cluster_engines().expect("engines checked when the directory was made");
        engines.configure(&mut config);
        config.namespace = ns.clone();
        // JetStream reserves the whole limit per stream; a test needs little.
        config.bus_stream_max_bytes = 8 << 20;
    }
    tweak(&mut config);
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr();
    let metrics = app.metrics_addr();
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
        metrics_base: format!("http://{metrics}"),
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
    pub async fn stop(mut self) -> DataDir {
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

    /// Rows of a query on this server's database, whichever engine it is on: each column
    /// as text (integers are turned into text). For checks no API can make.
    pub async fn db_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        use sqlx::{Connection, Row};
        fn text<R: Row>(row: &R, i: usize) -> Option<String>
        where
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            row.try_get::<Option<String>, _>(i).unwrap_or_else(|_| {
                row.try_get::<Option<i64>, _>(i)
                    .expect("a text or integer column")
                    .map(|n| n.to_string())
            })
        }
        let dir = self.dir.as_ref().expect("data dir");
        match &dir.namespace {
            None => {
                let url = format!(
                    "sqlite://{}?mode=ro",
                    dir.path().join("palaver.db").display()
                );
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("open db");
                let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect(sql);
                rows.iter()
                    .map(|r| (0..r.len()).map(|i| text(r, i)).collect())
                    .collect()
            }
            Some(ns) => {
                let engines = cluster_engines().expect("engines");
                let mut conn = sqlx::PgConnection::connect(&engines.store)
                    .await
                    .expect("open db");
                sqlx::query(&format!("SET search_path TO \"{ns}\""))
                    .execute(&mut conn)
                    .await
                    .expect("search_path");
                let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect(sql);
                rows.iter()
                    .map(|r| (0..r.len()).map(|i| text(r, i)).collect())
                    .collect()
            }
        }
    }
}

/// A test server's data directory and, on the cluster engines, its namespace there.
pub struct DataDir {
    dir: TempDir,
    namespace: Option<String>,
}

impl DataDir {
    /// A fresh directory (and namespace, when the suite runs on the cluster engines).
    pub fn new() -> DataDir {
        let namespace = crate::CLUSTER_ENGINES.then(|| {
            if cluster_engines().is_none() {
                // Every test of this run needs them: skip the run, not 100 failures
                // (`cluster_engines` has said why, and put it on the skip list).
                std::process::exit(0);
            }
            static NEXT: AtomicU32 = AtomicU32::new(0);
            format!(
                "{NS_PREFIX}{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            )
        });
        DataDir {
            dir: tempfile::tempdir().expect("tempdir"),
            namespace,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let (Some(ns), Some(engines)) = (self.namespace.take(), cluster_engines()) {
            // Drop may run inside the test's runtime, which cannot be blocked on: clean up
            // from a thread with a runtime of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(clean_namespace(engines, &ns));
            })
            .join();
        }
    }
}

/// Namespaces of this suite's cluster run are `apit_<pid>_<n>`.
const NS_PREFIX: &str = "apit_";

/// The URLs of the cluster engines (PostgreSQL, NATS, Redis).
pub struct ClusterEngines {
    pub store: String,
    pub bus: String,
    pub cache: String,
}

impl ClusterEngines {
    /// Points a server's configuration at these engines.
    pub fn configure(&self, config: &mut Config) {
        config.store = self.store.parse().expect("TEST_DATABASE_URL");
        config.bus = self.bus.parse().expect("TEST_NATS_URL");
        config.cache = self.cache.parse().expect("TEST_REDIS_URL");
    }
}

/// The cluster engines, or `None` when one does not answer (a failure under `CI=true`).
/// The first call also removes what earlier runs that died left in them.
pub fn cluster_engines() -> Option<&'static ClusterEngines> {
    static ENGINES: OnceLock<Option<ClusterEngines>> = OnceLock::new();
    ENGINES
        .get_or_init(|| {
            let var =
                |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
            let engines = ClusterEngines {
                store: var(
                    "TEST_DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/test",
                ),
                bus: var("TEST_NATS_URL", "nats://127.0.0.1:4222"),
                cache: var("TEST_REDIS_URL", "redis://127.0.0.1:6379"),
            };
            for url in [&engines.store, &engines.bus, &engines.cache] {
                let parsed = url::Url::parse(url).ok();
                let addr = parsed.as_ref().and_then(|u| {
                    let default = match u.scheme() {
                        "nats" => 4222,
                        "redis" => 6379,
                        _ => 5432,
                    };
                    Some(format!("{}:{}", u.host_str()?, u.port().unwrap_or(default)))
                });
                if addr.is_none_or(|a| std::net::TcpStream::connect(a).is_err()) {
                    crate::support::skip(
                        "the tests on the cluster engines",
                        &format!("{url} does not answer"),
                    );
                    return None;
                }
            }
            let leftover = |name: &str| {
                let pid = name
                    .strip_prefix(NS_PREFIX)
                    .and_then(|rest| rest.split('_').next())
                    .and_then(|pid| pid.parse::<u32>().ok());
                pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            };
            let sweep = std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("runtime")
                            .block_on(sweep_namespaces(&engines, leftover))
                    })
                    .join()
            });
            if sweep.is_err() {
                eprintln!("could not sweep earlier runs' namespaces");
            }
            Some(engines)
        })
        .as_ref()
}

/// Removes a namespace's schema, stream and keys.
pub async fn clean_namespace(engines: &ClusterEngines, ns: &str) {
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&engines.store).await {
        // A server that is still stopping may hold locks; its namespace is then left to
        // the next run's sweep rather than waited for.
        let _ = sqlx::query("SET lock_timeout = '3s'")
            .execute(&mut conn)
            .await;
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{ns}\" CASCADE"))
            .execute(&mut conn)
            .await;
    }
    if let Ok(client) = async_nats::connect(&engines.bus).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(format!("PALAVER_{ns}"))
            .await;
    }
    if let Ok(mut conn) = redis_conn(engines).await {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("palaver:{ns}:*"))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        }
    }
}

async fn redis_conn(
    engines: &ClusterEngines,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(engines.cache.as_str())?
        .get_multiplexed_async_connection()
        .await
}

/// Cleans every namespace of this suite that `leftover` says its run has ended.
async fn sweep_namespaces(engines: &ClusterEngines, leftover: impl Fn(&str) -> bool) {
    let mut names = std::collections::BTreeSet::new();
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&engines.store).await {
        let schemas: Vec<String> = sqlx::query_scalar(
            "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'apit\\_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        names.extend(schemas);
    }
    if let Ok(client) = async_nats::connect(&engines.bus).await {
        use futures::StreamExt;
        let streams: Vec<String> = async_nats::jetstream::new(client)
            .stream_names()
            .filter_map(|n| async move { n.ok() })
            .collect()
            .await;
        names.extend(
            streams
                .iter()
                .filter_map(|s| s.strip_prefix("PALAVER_"))
                .map(str::to_owned),
        );
    }
    if let Ok(mut conn) = redis_conn(engines).await {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("palaver:{NS_PREFIX}*"))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        names.extend(
            keys.iter()
                .filter_map(|k| k.split(':').nth(1))
                .map(str::to_owned),
        );
    }
    for ns in names.iter().filter(|n| leftover(n)) {
        clean_namespace(engines, ns).await;
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
            .send_frame(ClientFrame::Sync {
                cursors,
                changes: Default::default(),
            })
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

    /// Opens the 1:1 room with `other`, who accepts it if it is a request: for tests of
    /// what members do (tests/api/consent/ tests the request itself).
    pub async fn dm(&self, other: &TestUser) -> Room {
        let room = self.dm_request(other).await;
        self.accepted(room, &[other]).await
    }

    /// Opens the 1:1 room with `other`, as it is: a request if they do not know each other.
    pub async fn dm_request(&self, other: &TestUser) -> Room {
        self.api
            .create_room(None, false, &[other.id])
            .await
            .expect("create dm")
            .1
    }

    /// Creates a group with `others`, each of whom accepts if invited: for tests of what
    /// members do.
    pub async fn group(&self, name: &str, others: &[&TestUser]) -> Room {
        let ids: Vec<Uuid> = others.iter().map(|u| u.id).collect();
        let room = self
            .api
            .create_room(Some(name), true, &ids)
            .await
            .expect("create group")
            .1;
        self.accepted(room, others).await
    }

    /// The room after each of `others` who is invited has accepted, as this user sees it.
    pub async fn accepted(&self, room: Room, others: &[&TestUser]) -> Room {
        let mut any = false;
        for other in others {
            let invited = room
                .members
                .iter()
                .any(|m| m.user_id == other.id && m.state == MemberState::Invited);
            if invited {
                other.api.accept(room.id).await.expect("accept");
                any = true;
            }
        }
        if !any {
            return room;
        }
        let path = format!("/api/v1/rooms/{}", room.id);
        self.api
            .call::<(), Room>(reqwest::Method::GET, &path, None)
            .await
            .expect("room")
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
/// Room events (a group's created, joined, added…, which are messages of type `event`)
/// are skipped: `next_event` waits for those.
pub async fn next_message(socket: &mut Socket) -> Message {
    match socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::Message { message } if message.kind != MessageType::Event),
        )
        .await
        .expect("message frame")
    {
        ServerFrame::Message { message } => message,
        _ => unreachable!(),
    }
}

/// Waits for the next room event (a message of type `event`) on a socket.
pub async fn next_event(socket: &mut Socket) -> Message {
    match socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::Message { message } if message.kind == MessageType::Event),
        )
        .await
        .expect("room event")
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
