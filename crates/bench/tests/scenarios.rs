//! A tiny run of every scenario against a real server, so the load generator never rots.

use std::time::Duration;

use palaver_bench::Target;
use palaver_bench::scenarios::{
    bombs, connections, fanout, flood, history, ingest, logins, reconnect, search, soak,
};
use palaver_server::config::{RateBucket, RateLimit, RateLimits};
use palaver_server::{Application, Config};

/// A server configured as docs/BENCHMARKS.md says (fast hashing, high limits).
async fn server() -> (Target, tempfile::TempDir, tokio::sync::oneshot::Sender<()>) {
    server_with(|_| {}).await
}

async fn server_with(
    tweak: impl FnOnce(&mut Config),
) -> (Target, tempfile::TempDir, tokio::sync::oneshot::Sender<()>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let many = 10_000_000;
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().to_path_buf(),
        insecure_fast_password_hashing: true,
        rate_limits: RateLimits::all(many),
        ..Config::default()
    };
    tweak(&mut config);
    let app = Application::build(config).await.expect("build");
    let base = format!("http://{}", app.local_addr());
    let metrics = format!("http://{}", app.metrics_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    let mut target = Target::new(&base, &metrics);
    target.sources = palaver_bench::loopback_sources(2);
    (target, dir, tx)
}

fn clean(report: &palaver_bench::Report) {
    assert!(report.problems.is_empty(), "{}", report.table());
    assert!(!report.rows.is_empty());
    let out = tempfile::tempdir().expect("out");
    let written = report.write(out.path()).expect("write report");
    assert!(written.iter().all(|p| p.exists()));
}

#[tokio::test]
async fn connections_scenario() {
    let (target, _dir, _stop) = server().await;
    let opts = connections::ConnectionsOptions {
        connections: 50,
        users: 5,
        concurrency: 16,
        hold: Duration::from_millis(200),
    };
    let report = connections::run(&target, &opts).await.expect("run");
    clean(&report);
    assert_eq!(report.last("opened"), Some(50.0));
    assert!(report.last("server KiB/conn").is_some());
}

#[tokio::test]
async fn fanout_and_dm_scenarios() {
    let (target, _dir, _stop) = server().await;
    let opts = fanout::FanoutOptions {
        rooms: 2,
        members: 5,
        senders: 2,
        rate: 40.0,
        steps: vec![0.5, 1.0],
        duration: Duration::from_millis(700),
        warmup: Duration::from_millis(200),
        direct: false,
    };
    let report = fanout::run(&target, &opts).await.expect("fanout");
    clean(&report);
    assert!(
        report.last("deliveries/s").unwrap_or(0.0) > 0.0,
        "{}",
        report.table()
    );
    let dm = fanout::FanoutOptions {
        rooms: 3,
        members: 2,
        senders: 6,
        steps: vec![1.0],
        direct: true,
        ..opts
    };
    let report = fanout::run(&target, &dm).await.expect("dm");
    clean(&report);
    assert!(
        report.last("recv p50 ms").unwrap_or(0.0) > 0.0,
        "{}",
        report.table()
    );
}

#[tokio::test]
async fn flood_scenario() {
    // Send limits on, as bench/flood.toml has them (smaller, to be hit within a second).
    let (target, _dir, _stop) = server_with(|c| {
        c.rate_limits[RateBucket::Send] = RateLimit::new(600, 20);
    })
    .await;
    let opts = flood::FloodOptions {
        pairs: 3,
        rate: 12.0,
        flooders: 1,
        flood_rate: 500.0,
        duration: Duration::from_millis(700),
        warmup: Duration::from_millis(200),
    };
    let report = flood::run(&target, &opts).await.expect("run");
    clean(&report);
    assert_eq!(report.rows.len(), 2, "{}", report.table());
    assert!(
        report.last("flood refused/s").unwrap_or(0.0) > 0.0,
        "{}",
        report.table()
    );
    assert!(
        report.last("recv p50 ms").unwrap_or(0.0) > 0.0,
        "{}",
        report.table()
    );
}

#[tokio::test]
async fn bombs_scenario() {
    let (target, _dir, _stop) = server().await;
    let opts = bombs::BombsOptions {
        uploads: 4,
        users: 2,
        bombs: vec![bombs::Bomb::Gif, bombs::Bomb::Png],
    };
    let report = bombs::run(&target, &opts).await.expect("run");
    clean(&report);
    assert_eq!(report.rows.len(), 2, "{}", report.table());
    assert!(
        report.column("refused").is_some_and(|r| r == [4.0, 4.0]),
        "every bomb refused: {}",
        report.table()
    );
}

#[tokio::test]
async fn history_scenario() {
    let (target, _dir, _stop) = server().await;
    let opts = history::HistoryOptions {
        messages: 120,
        readers: 2,
        page: 50,
        duration: Duration::from_millis(500),
    };
    let report = history::run(&target, &opts).await.expect("run");
    clean(&report);
    assert!(report.last("pages/s").unwrap_or(0.0) > 0.0);
}

#[tokio::test]
async fn reconnect_scenario() {
    let (target, _dir, _stop) = server().await;
    let opts = reconnect::ReconnectOptions {
        clients: 12,
        room_size: 4,
        missed: 5,
        concurrency: 12,
    };
    let report = reconnect::run(&target, &opts).await.expect("run");
    clean(&report);
    assert_eq!(report.last("resumed"), Some(12.0));
    assert_eq!(report.last("messages replayed"), Some(12.0 * 5.0));
}

#[tokio::test]
async fn ingest_scenario() {
    let (target, _dir, _stop) = server().await;
    let opts = ingest::IngestOptions {
        senders: 2,
        window: 8,
        duration: Duration::from_millis(500),
    };
    let report = ingest::run(&target, &opts).await.expect("run");
    clean(&report);
    assert!(
        report.last("acked msgs/s").unwrap_or(0.0) > 0.0,
        "{}",
        report.table()
    );
}

#[tokio::test]
async fn soak_scenario() {
    let (target, dir, _stop) = server().await;
    let checkpoint = tempfile::tempdir().expect("checkpoint");
    let opts = soak::SoakOptions {
        pairs: 3,
        rate: 30.0,
        duration: Duration::from_millis(1_500),
        interval: Duration::from_millis(500),
        visitors: 4,
        visit_rate: 8.0,
        data_dir: Some(dir.path().to_path_buf()),
        checkpoint: Some(checkpoint.path().to_path_buf()),
    };
    let report = soak::run(&target, &opts).await.expect("run");
    clean(&report);
    assert_eq!(report.rows.len(), 3, "{}", report.table());
    // Visits refresh their tokens, so each visitor's later visits prove the rotation works.
    let visits: f64 = report.column("visits").expect("visits").iter().sum();
    assert!(visits >= 8.0, "{}", report.table());
    for column in [
        "msgs/s",
        "recv p99 ms",
        "server RSS MiB",
        "open fds",
        "data MiB",
    ] {
        assert!(
            report.last(column).unwrap_or(0.0) > 0.0,
            "{column}: {}",
            report.table()
        );
    }
    // Every interval rewrote the report, plot included.
    assert!(checkpoint.path().join("soak.json").exists());
    let svg = std::fs::read_to_string(checkpoint.path().join("soak.svg")).expect("plot");
    assert!(svg.contains("server memory"), "the plot has its panels");
}

#[tokio::test]
async fn logins_scenario() {
    // Real limits and password checks, as the scenario expects; a few requests only.
    let (target, _dir, _stop) = server_with(|c| {
        c.rate_limits = RateLimits::default();
        c.passwords.max_concurrent_hashes = 1;
        c.passwords.hash_wait_ms = 0;
    })
    .await;
    let opts = logins::LoginsOptions {
        long_names: 20,
        name_bytes: 60_000,
        concurrency: 4,
        concurrent_logins: 6,
        rounds: 1,
    };
    let report = logins::run(&target, &opts).await.expect("run");
    clean(&report);
    assert_eq!(report.rows.len(), 2, "{}", report.table());
    // Long usernames are refused as such; logins past the one hashing slot get 503.
    let col = |name: &str| report.column(name).expect(name);
    assert_eq!(col("422")[0], 20.0, "{}", report.table());
    assert_eq!(
        col("401")[1] + col("503")[1] + col("429")[1],
        6.0,
        "{}",
        report.table()
    );
    assert!(col("RSS peak MiB")[1] > 0.0);
}

#[tokio::test]
async fn search_scenario() {
    let (target, dir, _stop) = server().await;
    let opts = search::SearchOptions {
        messages: 400,
        rooms: 4,
        senders: 2,
        window: 32,
        searches: 3,
        queries: search::DEFAULT_QUERIES
            .iter()
            .map(|q| q.to_string())
            .collect(),
        database: Some(search::size::Database::Sqlite(
            dir.path().join("palaver.db"),
        )),
    };
    let report = search::run(&target, &opts).await.expect("run");
    clean(&report);
    assert_eq!(report.rows.len(), search::DEFAULT_QUERIES.len() + 1);
    assert!(
        report.last("index B/msg").unwrap_or(0.0) > 0.0,
        "{}",
        report.table()
    );
    // Each query answered what the store holds, up to a page.
    for row in &report.rows {
        assert_eq!(row[4], row[3].min(20.0), "{}", report.table());
    }
}
