//! Soak: steady 1:1 chat held for as long as asked (hours, if need be) while visitors come
//! and go, sampled every interval. Each row is one interval: throughput, latency
//! percentiles, and the server's resident memory, open files, connections, CPU and (given
//! its data directory) disk. What a soak looks for is drift: memory or descriptors that
//! grow with time rather than with load, latency that creeps up as the database grows.
//!
//! The load is open loop, as in the fan-out scenario (latency counts from the time a
//! message was meant to be sent). A visit refreshes the visitor's token (runs outlive an
//! access token), opens a socket, sends one message and waits for its ack, reads a page
//! of history and closes: the paths a steady load alone never opens and closes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use hdrhistogram::Histogram;
use palaver_client::{Client, ConnectOptions};
use uuid::Uuid;

use super::fanout::{Counters, Histos, Sink, lock, receive, start_senders, take};
use crate::report::Chart;
use crate::setup::{self, BenchUser};
use crate::stats::{histogram, instant_at, now_us, percentiles_ms};
use crate::{BenchError, Report, Result, Target, server};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakOptions {
    /// 1:1 pairs online for the whole run, both members sending.
    pub pairs: usize,
    /// Messages per second, all pairs together.
    pub rate: f64,
    pub duration: Duration,
    /// One report row per interval.
    pub interval: Duration,
    /// Users who come and go, in groups of up to ten.
    pub visitors: usize,
    /// Visits per second, all visitors together.
    pub visit_rate: f64,
    /// The server's data directory, to report its size (optional).
    pub data_dir: Option<PathBuf>,
    /// Where the report is rewritten after every interval, so a run cut short keeps its
    /// rows.
    #[serde(skip)]
    pub checkpoint: Option<PathBuf>,
}

const COLUMNS: &[&str] = &[
    "minute",
    "msgs/s",
    "deliveries/s",
    "ack p99 ms",
    "recv p50 ms",
    "recv p99 ms",
    "recv max ms",
    "visit p99 ms",
    "visits",
    "errors",
    "server RSS MiB",
    "open fds",
    "connections",
    "server cores",
    "data MiB",
];

/// What the visitors did.
#[derive(Default)]
struct Visits {
    done: AtomicU64,
    failed: AtomicU64,
}

/// Runs the scenario.
pub async fn run(target: &Target, opts: &SoakOptions) -> Result<Report> {
    let mut report = Report::new(
        "soak",
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    report.charts = vec![
        Chart::new(
            "latency",
            "ms",
            &["recv p50 ms", "recv p99 ms", "ack p99 ms", "visit p99 ms"],
        ),
        Chart::new("server memory", "MiB", &["server RSS MiB"]),
        Chart::new(
            "open files and sockets",
            "count",
            &["open fds", "connections"],
        ),
        Chart::new("throughput", "per second", &["msgs/s", "deliveries/s"]),
    ];
    setup::raise_fd_limit();
    let prefix = setup::run_prefix();
    let pair_users = opts.pairs.max(1) * 2;
    let users = setup::register_users(target, &prefix, pair_users + opts.visitors).await?;
    let (pair_users, visitors) = users.split_at(pair_users);
    let mut layout: Vec<Vec<usize>> = (0..opts.pairs.max(1))
        .map(|r| vec![2 * r, 2 * r + 1])
        .collect();
    let pair_rooms = layout.len();
    // Visitors in groups of up to ten, after the pairs.
    let visitor_ids: Vec<usize> = (pair_users.len()..users.len()).collect();
    layout.extend(visitor_ids.chunks(10).map(<[usize]>::to_vec));
    let rooms = setup::create_rooms(target, &users, &layout[..pair_rooms], false).await?;
    let groups = setup::create_rooms(target, &users, &layout[pair_rooms..], true).await?;
    let sockets = setup::open_all(target, pair_users, 64).await?;

    let counters = Arc::new(Counters::default());
    let mut histos = Vec::new();
    let mut senders: Vec<(Sink, Uuid)> = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        let h = Histos::new();
        tokio::spawn(receive(stream, counters.clone(), h.clone()));
        histos.push(h);
        senders.push((Arc::new(tokio::sync::Mutex::new(sink)), rooms[i / 2].id));
    }

    let start = now_us() + 50_000;
    let stop = start + opts.duration.as_micros() as u64;
    let tasks = start_senders(&senders, opts.rate, start, stop, &counters);
    let visits = Arc::new(Visits::default());
    let visit_times = Arc::new(std::sync::Mutex::new(histogram()));
    let visit_period_us = 1e6 * visitors.len().max(1) as f64 / opts.visit_rate.max(0.001);
    let mut visitor_tasks = Vec::new();
    for (i, visitor) in visitors.iter().enumerate() {
        let room = groups[i / 10].id;
        visitor_tasks.push(tokio::spawn(visit_loop(
            target.clone(),
            visitor.clone(),
            room,
            start + (visit_period_us * i as f64 / visitors.len() as f64) as u64,
            visit_period_us,
            stop,
            visits.clone(),
            visit_times.clone(),
        )));
    }

    let intervals = opts
        .duration
        .as_micros()
        .div_ceil(opts.interval.as_micros().max(1)) as u64;
    let bar = setup::bar(target, intervals, "soak");
    let mut from = start;
    let mut before = Totals::now(&counters, &visits, server::sample(target).await?);
    while from < stop {
        let until = (from + opts.interval.as_micros() as u64).min(stop);
        tokio::time::sleep_until(instant_at(until)).await;
        let sample = server::sample(target).await?;
        let after = Totals::now(&counters, &visits, sample);
        let (recv, ack) = take(&histos);
        let visit = std::mem::replace(&mut *lock(&visit_times), histogram());
        report.rows.push(row(
            opts,
            (until - start) as f64 / 60e6,
            (until - from) as f64 / 1e6,
            &before,
            &after,
            &recv,
            &ack,
            &visit,
        ));
        if let Some(dir) = &opts.checkpoint {
            report.write(dir)?;
        }
        before = after;
        from = until;
        bar.inc(1);
    }
    bar.finish_and_clear();
    for t in tasks.into_iter().chain(visitor_tasks) {
        let _ = t.await;
    }

    // Every send is acknowledged in the end, or the run failed.
    let settle = tokio::time::Instant::now() + Duration::from_secs(10);
    while counters.acks.load(Ordering::Relaxed) < counters.sent.load(Ordering::Relaxed)
        && tokio::time::Instant::now() < settle
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (sent, acks) = (
        counters.sent.load(Ordering::Relaxed),
        counters.acks.load(Ordering::Relaxed),
    );
    if acks != sent {
        report
            .problems
            .push(format!("{sent} messages sent, {acks} acknowledged"));
    }
    report.problems.extend(counters.problems());
    let failed = visits.failed.load(Ordering::Relaxed);
    if failed > 0 {
        report.problems.push(format!("{failed} visits failed"));
    }
    Ok(report)
}

/// Counters at one instant, to subtract.
struct Totals {
    sent: u64,
    deliveries: u64,
    errors: u64,
    visits: u64,
    failed: u64,
    server: server::Sample,
}

impl Totals {
    fn now(c: &Counters, v: &Visits, server: server::Sample) -> Totals {
        Totals {
            sent: c.sent.load(Ordering::Relaxed),
            deliveries: c.deliveries.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            visits: v.done.load(Ordering::Relaxed),
            failed: v.failed.load(Ordering::Relaxed),
            server,
        }
    }
}

/// One interval's row, in [`COLUMNS`] order.
#[allow(clippy::too_many_arguments)]
fn row(
    opts: &SoakOptions,
    minute: f64,
    secs: f64,
    before: &Totals,
    after: &Totals,
    recv: &Histogram<u64>,
    ack: &Histogram<u64>,
    visit: &Histogram<u64>,
) -> Vec<f64> {
    let [r50, _, r99, _, rmax] = percentiles_ms(recv);
    let [_, _, a99, _, _] = percentiles_ms(ack);
    let [_, _, v99, _, _] = percentiles_ms(visit);
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    vec![
        minute,
        (after.sent - before.sent) as f64 / secs,
        (after.deliveries - before.deliveries) as f64 / secs,
        a99,
        r50,
        r99,
        rmax,
        v99,
        (after.visits - before.visits) as f64,
        (after.errors - before.errors + after.failed - before.failed) as f64,
        mib(after.server.resident_bytes),
        after.server.open_fds,
        after.server.connections,
        (after.server.cpu_seconds - before.server.cpu_seconds) / secs,
        opts.data_dir
            .as_deref()
            .map_or(0.0, |d| mib(dir_size(d) as f64)),
    ]
}

/// Bytes in the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// One visitor's visits, every `period_us` from `first_us` until `stop_us`.
#[allow(clippy::too_many_arguments)]
async fn visit_loop(
    target: Target,
    mut visitor: BenchUser,
    room: Uuid,
    first_us: u64,
    period_us: f64,
    stop_us: u64,
    visits: Arc<Visits>,
    times: Arc<std::sync::Mutex<Histogram<u64>>>,
) {
    let anon = match Client::new(&target.base) {
        Ok(anon) => anon,
        Err(e) => {
            eprintln!("visitor: {e}");
            visits.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let mut k = 0u64;
    loop {
        let intended = first_us + (k as f64 * period_us) as u64;
        if intended >= stop_us {
            return;
        }
        tokio::time::sleep_until(instant_at(intended)).await;
        match visit(&target, &anon, &mut visitor, room, intended).await {
            Ok(()) => {
                visits.done.fetch_add(1, Ordering::Relaxed);
                crate::stats::record_since(&mut lock(&times), intended);
            }
            Err(e) => {
                if visits.failed.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("visit failed: {e}");
                }
            }
        }
        k += 1;
    }
}

/// Refresh, connect, send and wait for the ack, read a page of history, close.
async fn visit(
    target: &Target,
    anon: &Client,
    visitor: &mut BenchUser,
    room: Uuid,
    n: u64,
) -> Result<()> {
    let auth = anon.refresh(&visitor.refresh_token).await?;
    visitor.refresh_token = auth.refresh_token;
    visitor.api = anon.with_token(auth.access_token);
    let options = ConnectOptions {
        origin: None,
        local_addr: target.source(n as usize),
        small_buffers: true,
        auth_frame: false,
    };
    let mut socket = visitor.api.connect_with(&options).await?;
    let (message, _) = socket
        .send_message(room, &format!("v{n}"), "visiting")
        .await?;
    let page = visitor.api.history(room, None, None, Some(20)).await?;
    if !page.messages.iter().any(|m| m.id == message.id) {
        return Err(BenchError::Setup(format!(
            "message {} is not in its room's latest history",
            message.id
        )));
    }
    socket.close().await?;
    Ok(())
}
