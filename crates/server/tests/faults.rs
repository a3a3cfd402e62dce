//! Faults on deployments of real processes: nodes, NATS and Redis killed with SIGKILL.
//!
//! The crash loop, short: load while processes are killed and restarted, then every
//! promise about messages checked (palaver-bench's `crashloop` scenario;
//! docs/RELIABILITY.md has the long runs):
//! - One node on its embedded engines (SQLite), killed and restarted.
//! - Three nodes on PostgreSQL + NATS + Redis behind nginx: nodes killed in turn, NATS
//!   and Redis killed and restarted; clients reconnect through nginx to whichever node
//!   is up and resume by seq.
//!
//! And presence: the users of a node that died are announced offline to their contacts.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use palaver_bench::fleet::{ClusterOptions, Fleet, FleetOptions};
use palaver_bench::scenarios::crashloop::{self, CrashloopOptions};
use palaver_proto::{PresenceStatus, ServerFrame};

/// A program on this machine, by absolute path or on PATH.
fn program(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(name);
    if path.is_absolute() {
        return path.is_file().then_some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn options(duration_secs: u64) -> CrashloopOptions {
    CrashloopOptions {
        rooms: 8,
        rate: 160.0,
        duration: Duration::from_secs(duration_secs),
        kill_every: Duration::from_secs(4),
        down_for: Duration::from_millis(700),
        retry_every: 10,
    }
}

async fn run_and_check(cluster: Option<ClusterOptions>, duration_secs: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fleet = Fleet::start(&FleetOptions {
        server_bin: PathBuf::from(env!("CARGO_BIN_EXE_palaver")),
        dir: dir.path().to_path_buf(),
        cluster,
        env: Vec::new(),
    })
    .await
    .expect("start the deployment");
    let result = crashloop::run(&mut fleet, &options(duration_secs), false).await;
    fleet.stop().await;
    let (report, outcome) = result.expect("crash loop ran");
    println!("{}", report.table());
    let logs = || {
        std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!("--- {}\n{}", e.path().display(), tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        outcome.faults.len() >= 3,
        "faults injected: {:?}",
        outcome.faults
    );
    assert!(outcome.acked > 100, "the load ran: {outcome:?}");
    assert!(outcome.reconnects > 0, "the faults were felt: {outcome:?}");
    assert_eq!(outcome.violations(), 0, "{outcome:#?}\n{}", logs());
    assert!(outcome.problems.is_empty(), "{outcome:#?}\n{}", logs());
    assert_eq!(
        outcome.stored, outcome.acked,
        "every send was finally acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_killed_under_load_loses_and_duplicates_nothing() {
    run_and_check(None, 16).await;
}

/// The cluster's processes, or `None` (skipped loudly; a failure under CI) when one is
/// missing.
fn cluster_options(nodes: usize) -> Option<ClusterOptions> {
    let database_url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pg_up = url::Url::parse(&database_url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port().unwrap_or(5432))))
        .is_some_and(|a| std::net::TcpStream::connect(a).is_ok());
    if !pg_up {
        support::skip(
            "the cluster fault tests",
            &format!("{database_url} does not answer"),
        );
        return None;
    }
    let (Some(nats_bin), Some(redis_bin), Some(nginx_bin), Some(_)) = (
        program("nats-server"),
        program("redis-server"),
        program("nginx"),
        program("psql"),
    ) else {
        support::skip(
            "the cluster fault tests",
            "they need nats-server, redis-server, nginx and psql",
        );
        return None;
    };
    Some(ClusterOptions {
        nodes,
        database_url,
        nats_bin,
        redis_bin,
        nginx_bin,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survives_node_nats_and_redis_kills_through_nginx() {
    let Some(cluster) = cluster_options(3) else {
        return;
    };
    // Seven faults or more: nodes 1 and 2, NATS, nodes 3 and 1, Redis, node 2.
    run_and_check(Some(cluster), 33).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_users_are_announced_offline_to_their_contacts() {
    let Some(cluster) = cluster_options(2) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fleet = Fleet::start(&FleetOptions {
        server_bin: PathBuf::from(env!("CARGO_BIN_EXE_palaver")),
        dir: dir.path().to_path_buf(),
        cluster: Some(cluster),
        env: vec![("PALAVER_PRESENCE_TTL_SECS".into(), "2".into())],
    })
    .await
    .expect("start the cluster");
    let on = |i: usize| palaver_client::Client::new(&fleet.node_base(i)).expect("client");
    let alice = on(0)
        .register("alice", "correct horse battery", None)
        .await
        .expect("alice");
    let bob = on(1)
        .register("bob", "correct horse battery", None)
        .await
        .expect("bob");
    let alice_api = on(0).with_token(&alice.access_token);
    let (_, dm) = alice_api
        .create_room(None, false, &[bob.user.id])
        .await
        .expect("dm");
    // Strangers see each other's presence once the request is accepted.
    on(1)
        .with_token(&bob.access_token)
        .accept(dm.id)
        .await
        .expect("bob accepts");
    let mut watcher = alice_api.connect().await.expect("alice on node 1");
    let mut dying = on(1)
        .with_token(&bob.access_token)
        .connect()
        .await
        .expect("bob on node 2");
    let _ = dying.next_within(WAIT).await;
    let presence = |status: PresenceStatus| {
        move |f: &ServerFrame| {
            matches!(f, ServerFrame::Presence { user_id, status: s, .. }
                if *user_id == bob.user.id && *s == status)
        }
    };
    watcher
        .wait_for(WAIT, presence(PresenceStatus::Online))
        .await
        .expect("bob online");

    fleet.kill_node(1).await;
    // Within the TTL (2 s) and a reaper tick (a third of it), give or take a loaded box.
    let frame = watcher
        .wait_for(Duration::from_secs(15), presence(PresenceStatus::Offline))
        .await;
    fleet.stop().await;
    frame.expect("bob announced offline after his node died");
}

const WAIT: Duration = Duration::from_secs(10);

/// Node 1's `palaver_engine_up` value for `role` (bus, cache) in one scrape, if it has one.
async fn engine_up(http: &reqwest::Client, metrics: &str, role: &str) -> Option<f64> {
    let text = http.get(metrics).send().await.ok()?.text().await.ok()?;
    let role = format!("role=\"{role}\"");
    text.lines()
        .filter(|l| l.starts_with("palaver_engine_up{") && l.contains(&role))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
}

/// Scrapes until `role`'s gauge reads `want`; false if it did not within `within`.
async fn engine_reads(
    http: &reqwest::Client,
    metrics: &str,
    role: &str,
    want: f64,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if engine_up(http, metrics, role).await == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// What the PalaverBusUnreachable and PalaverCacheUnreachable alerts read: each scrape
/// checks NATS and Redis, so `palaver_engine_up` drops to 0 while one is down and comes
/// back to 1 once it is up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_gauges_follow_nats_and_redis_going_down_and_back() {
    let Some(cluster) = cluster_options(1) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fleet = Fleet::start(&FleetOptions {
        server_bin: PathBuf::from(env!("CARGO_BIN_EXE_palaver")),
        dir: dir.path().to_path_buf(),
        cluster: Some(cluster),
        env: Vec::new(),
    })
    .await
    .expect("start the cluster");
    let metrics = format!("{}/metrics", fleet.node_metrics(0));
    let http = reqwest::Client::new();
    for role in ["store", "bus", "cache"] {
        assert!(
            engine_reads(&http, &metrics, role, 1.0, WAIT).await,
            "{role} reads up at the start"
        );
    }
    for role in ["bus", "cache"] {
        // Down for longer than a check's own timeout (3 s), so a scrape sees it down.
        let down = Duration::from_secs(8);
        let watch = engine_reads(&http, &metrics, role, 0.0, down);
        let restart = async {
            match role {
                "bus" => fleet.restart_nats(down).await,
                _ => fleet.restart_redis(down).await,
            }
        };
        let (seen_down, restarted) = tokio::join!(watch, restart);
        restarted.expect("restart");
        assert!(seen_down, "{role} read down while it was down");
        assert!(
            engine_reads(&http, &metrics, role, 1.0, Duration::from_secs(30)).await,
            "{role} reads up again once it is back"
        );
    }
    fleet.stop().await;
}
