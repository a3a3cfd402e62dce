//! Group fan-out (and 1:1 chat, its two-member case): R rooms × M members online, S
//! senders at a target rate, open loop. Latency is measured from the time each message
//! was *meant* to be sent, so a stalled server cannot hide its delay (no coordinated
//! omission). Reports deliveries/s, send→ack and send→receive percentiles, errors, and
//! the server's CPU time per delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use super::number_after;
use crate::setup::{self, Ws};
use crate::stats::{histogram, instant_at, now_us, percentiles_ms, record_since};
use crate::{Report, Result, Target, server};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FanoutOptions {
    pub rooms: usize,
    /// Members per room (2 with `direct`).
    pub members: usize,
    /// Users sending, spread over the rooms.
    pub senders: usize,
    /// Messages per second, all senders together, at the full step.
    pub rate: f64,
    /// Fractions of `rate` to run, one report row each.
    pub steps: Vec<f64>,
    /// Measured time per step.
    pub duration: Duration,
    /// Unmeasured time at the start of each step.
    pub warmup: Duration,
    /// 1:1 rooms instead of groups.
    pub direct: bool,
}

/// What a group of sockets saw (shared with the flood scenario).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) deliveries: AtomicU64,
    pub(crate) acks: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) sent: AtomicU64,
}

impl Counters {
    /// What went wrong on these sockets: closed by the server, error frames, failed sends.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let closed = self.closed.load(Ordering::Relaxed);
        if closed > 0 {
            problems.push(format!(
                "{closed} sockets were closed by the server during the run"
            ));
        }
        let errors = self.errors.load(Ordering::Relaxed);
        if errors > 0 {
            problems.push(format!("{errors} error frames or failed sends"));
        }
        problems
    }
}

/// One socket's histograms; only its receiver task records, so the locks are uncontended.
pub(crate) struct Histos {
    pub(crate) receive: Mutex<Histogram<u64>>,
    pub(crate) ack: Mutex<Histogram<u64>>,
}

impl Histos {
    pub(crate) fn new() -> Arc<Histos> {
        Arc::new(Histos {
            receive: Mutex::new(histogram()),
            ack: Mutex::new(histogram()),
        })
    }
}

const COLUMNS: &[&str] = &[
    "offered msgs/s",
    "msgs/s",
    "deliveries/s",
    "ack p50 ms",
    "ack p99 ms",
    "recv p50 ms",
    "recv p90 ms",
    "recv p99 ms",
    "recv p99.9 ms",
    "errors",
    "server cores",
    "server µs/delivery",
];

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one socket until it closes, counting and timing what arrives.
pub(crate) async fn receive(
    mut stream: futures::stream::SplitStream<Ws>,
    counters: Arc<Counters>,
    histos: Arc<Histos>,
) {
    while let Some(Ok(msg)) = stream.next().await {
        let WsMessage::Text(text) = msg else { continue };
        let text = text.as_str();
        if text.starts_with(r#"{"type":"message""#) {
            counters.deliveries.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = number_after(text, r#""content":"t="#) {
                record_since(&mut lock(&histos.receive), t);
            }
        } else if text.starts_with(r#"{"type":"ack""#) {
            counters.acks.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = number_after(text, r#""id":""#) {
                record_since(&mut lock(&histos.ack), t);
            }
        } else if text.starts_with(r#"{"type":"error""#)
            && counters.errors.fetch_add(1, Ordering::Relaxed) < 3
        {
            eprintln!("server error frame: {text}");
        }
    }
    counters.closed.fetch_add(1, Ordering::Relaxed);
}

pub(crate) type Sink = Arc<tokio::sync::Mutex<SplitSink<Ws, WsMessage>>>;

/// Sends at `period_us` intervals from `start_us` until `stop_us`.
pub(crate) async fn send(
    sink: Sink,
    room: Uuid,
    start_us: u64,
    period_us: f64,
    stop_us: u64,
    counters: Arc<Counters>,
) {
    let mut sink = sink.lock().await;
    let mut k = 0u64;
    loop {
        let intended = start_us + (k as f64 * period_us) as u64;
        if intended >= stop_us {
            return;
        }
        tokio::time::sleep_until(instant_at(intended)).await;
        let frame = format!(
            r#"{{"type":"send","id":"{intended}","message":{{"roomId":"{room}","clientMsgId":"c{intended}","content":"t={intended}"}}}}"#
        );
        if sink.send(WsMessage::Text(frame.into())).await.is_err() {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        counters.sent.fetch_add(1, Ordering::Relaxed);
        k += 1;
    }
}

/// Starts every sender on a fixed schedule, `rate` messages per second all together,
/// from `start_us` until `stop_us`, staggered evenly across one period.
pub(crate) fn start_senders(
    senders: &[(Sink, Uuid)],
    rate: f64,
    start_us: u64,
    stop_us: u64,
    counters: &Arc<Counters>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let period_us = 1e6 * senders.len() as f64 / rate.max(0.001);
    senders
        .iter()
        .enumerate()
        .map(|(i, (sink, room))| {
            let offset = (period_us * i as f64 / senders.len() as f64) as u64;
            tokio::spawn(send(
                sink.clone(),
                *room,
                start_us + offset,
                period_us,
                stop_us,
                counters.clone(),
            ))
        })
        .collect()
}

/// Every socket's receive and ack latencies since the last take, merged; the sockets'
/// histograms start empty again.
pub(crate) fn take(histos: &[Arc<Histos>]) -> (Histogram<u64>, Histogram<u64>) {
    let mut receive = histogram();
    let mut ack = histogram();
    for h in histos {
        let mut r = lock(&h.receive);
        let _ = receive.add(&*r);
        r.reset();
        let mut a = lock(&h.ack);
        let _ = ack.add(&*a);
        a.reset();
    }
    (receive, ack)
}

/// Runs the scenario.
pub async fn run(target: &Target, opts: &FanoutOptions) -> Result<Report> {
    let members = if opts.direct { 2 } else { opts.members.max(2) };
    let name = if opts.direct { "dm" } else { "fanout" };
    let mut report = Report::new(
        name,
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    setup::raise_fd_limit();
    let prefix = setup::run_prefix();
    let users = setup::register_users(target, &prefix, opts.rooms * members).await?;
    let layout: Vec<Vec<usize>> = (0..opts.rooms)
        .map(|r| (r * members..(r + 1) * members).collect())
        .collect();
    let rooms = setup::create_rooms(target, &users, &layout, !opts.direct).await?;
    let sockets = setup::open_all(target, &users, 64).await?;

    let counters = Arc::new(Counters::default());
    let mut histos = Vec::new();
    let mut sinks: Vec<Sink> = Vec::new();
    for ws in sockets {
        let (sink, stream) = ws.split();
        let h = Histos::new();
        tokio::spawn(receive(stream, counters.clone(), h.clone()));
        histos.push(h);
        sinks.push(Arc::new(tokio::sync::Mutex::new(sink)));
    }
    // Sender i speaks in room i % R as that room's member (i / R) % M.
    let senders: Vec<(Sink, Uuid)> = (0..opts.senders.max(1))
        .map(|i| {
            let room = i % opts.rooms;
            let member = (i / opts.rooms) % members;
            (sinks[room * members + member].clone(), rooms[room].id)
        })
        .collect();

    let bar = setup::bar(target, opts.steps.len() as u64, name);
    for fraction in &opts.steps {
        let offered = opts.rate * fraction;
        let start = now_us() + 50_000;
        let measure_from = start + opts.warmup.as_micros() as u64;
        let stop = measure_from + opts.duration.as_micros() as u64;
        let tasks = start_senders(&senders, offered, start, stop, &counters);
        tokio::time::sleep_until(instant_at(measure_from)).await;
        take(&histos);
        let base = snapshot(&counters);
        let server_before = server::sample(target).await?;
        tokio::time::sleep_until(instant_at(stop)).await;
        let end = snapshot(&counters);
        let server_after = server::sample(target).await?;
        for t in tasks {
            let _ = t.await;
        }
        // Let the last messages land before the next step.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let secs = opts.duration.as_secs_f64();
        let (receive, ack) = take(&histos);
        let [r50, r90, r99, r999, _] = percentiles_ms(&receive);
        let [a50, _, a99, _, _] = percentiles_ms(&ack);
        let deliveries = (end.deliveries - base.deliveries) as f64;
        let cpu = server_after.cpu_seconds - server_before.cpu_seconds;
        report.rows.push(vec![
            offered,
            (end.sent - base.sent) as f64 / secs,
            deliveries / secs,
            a50,
            a99,
            r50,
            r90,
            r99,
            r999,
            (end.errors - base.errors) as f64,
            cpu / secs,
            if deliveries > 0.0 {
                cpu * 1e6 / deliveries
            } else {
                0.0
            },
        ]);
        bar.inc(1);
    }
    bar.finish_and_clear();
    report.problems.extend(counters.problems());
    Ok(report)
}

#[derive(Clone, Copy)]
struct Snapshot {
    deliveries: u64,
    errors: u64,
    sent: u64,
}

fn snapshot(c: &Counters) -> Snapshot {
    Snapshot {
        deliveries: c.deliveries.load(Ordering::Relaxed),
        errors: c.errors.load(Ordering::Relaxed),
        sent: c.sent.load(Ordering::Relaxed),
    }
}
