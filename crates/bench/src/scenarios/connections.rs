//! Idle connections: ramp N authenticated sockets (spread over several loopback source
//! addresses, so N can pass 64k), hold them while the server pings, and report the
//! connect rate, failures and the server's resident memory per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::{Report, Result, Target, server, setup};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionsOptions {
    pub connections: usize,
    /// Users the connections belong to (each gets connections / users devices).
    pub users: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// How long to hold them all open.
    pub hold: Duration,
}

const COLUMNS: &[&str] = &[
    "connections",
    "opened",
    "failed",
    "connect/s",
    "server RSS MiB",
    "server KiB/conn",
    "alive after hold",
    "server cores idle",
];

/// Runs the scenario.
pub async fn run(target: &Target, opts: &ConnectionsOptions) -> Result<Report> {
    let mut report = Report::new(
        "connections",
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    setup::raise_fd_limit();
    let prefix = setup::run_prefix();
    let users = setup::register_users(
        target,
        &prefix,
        opts.users.clamp(1, opts.connections.max(1)),
    )
    .await?;
    let before = server::sample(target).await?;
    let closed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let bar = setup::bar(target, opts.connections as u64, "connections");
    let started = Instant::now();
    let holders: Vec<_> = futures::stream::iter(0..opts.connections)
        .map(|i| {
            let user = &users[i % users.len()];
            let (bar, closed, failed) = (bar.clone(), closed.clone(), failed.clone());
            async move {
                bar.inc(1);
                match setup::open(target, user, i).await {
                    // Reading keeps answering the server's pings.
                    Ok(mut ws) => Some(tokio::spawn(async move {
                        while let Some(Ok(_)) = ws.next().await {}
                        closed.fetch_add(1, Ordering::Relaxed);
                    })),
                    Err(err) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("connect failed: {err}");
                        }
                        None
                    }
                }
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let ramp = started.elapsed();
    bar.finish_and_clear();
    let opened = holders.iter().filter(|h| h.is_some()).count();
    // Let allocations settle before reading memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = server::sample(target).await?;
    tokio::time::sleep(opts.hold).await;
    let held = server::sample(target).await?;
    let per_conn = if opened > 0 {
        (loaded.resident_bytes - before.resident_bytes) / opened as f64 / 1024.0
    } else {
        0.0
    };
    report.rows.push(vec![
        opts.connections as f64,
        opened as f64,
        failed.load(Ordering::Relaxed) as f64,
        opened as f64 / ramp.as_secs_f64().max(1e-9),
        loaded.resident_bytes / (1024.0 * 1024.0),
        per_conn,
        held.connections,
        (held.cpu_seconds - loaded.cpu_seconds) / opts.hold.as_secs_f64().max(1e-9),
    ]);
    let lost = closed.load(Ordering::Relaxed);
    if lost > 0 {
        report
            .problems
            .push(format!("{lost} connections closed during the hold"));
    }
    let failures = failed.load(Ordering::Relaxed);
    if failures > 0 {
        report
            .problems
            .push(format!("{failures} connections failed to open"));
    }
    for h in holders.into_iter().flatten() {
        h.abort();
    }
    Ok(report)
}
