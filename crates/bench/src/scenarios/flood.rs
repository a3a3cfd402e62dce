//! A hostile client's cost to everyone else: many 1:1 pairs chat at a steady rate while a
//! few flooding clients send as fast as they can. Two rows, the same normal load without
//! and with the flood, so the normal users' latency can be compared; the flood's sends
//! are counted as acked or refused (`rate_limited`).
//!
//! Run it against a server with real send limits (bench/flood.toml), not the
//! limits-off bench/server.toml: the point is what the limits buy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use super::fanout::{Counters, Histos, Sink, receive, start_senders, take};
use crate::setup::{self, Ws};
use crate::stats::{instant_at, now_us, percentiles_ms};
use crate::{Report, Result, Target, server};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FloodOptions {
    /// Normal 1:1 pairs, both members sending.
    pub pairs: usize,
    /// Normal messages per second, all normal senders together.
    pub rate: f64,
    /// Flooding clients, each in a 1:1 room of its own with a victim who is online.
    pub flooders: usize,
    /// Sends per second each flooder attempts.
    pub flood_rate: f64,
    /// Measured time per row.
    pub duration: Duration,
    /// Unmeasured time at the start of each row.
    pub warmup: Duration,
}

const COLUMNS: &[&str] = &[
    "flooders",
    "flood sends/s",
    "flood acked/s",
    "flood refused/s",
    "normal msgs/s",
    "ack p50 ms",
    "ack p99 ms",
    "recv p50 ms",
    "recv p99 ms",
    "normal errors",
    "server cores",
];

/// What the flooders' sockets saw.
#[derive(Default)]
struct FloodCounters {
    sent: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    /// Error frames other than `rate_limited`.
    other: AtomicU64,
}

/// Reads a flooder's socket: acks and refusals, nothing timed.
async fn flood_receive(mut stream: futures::stream::SplitStream<Ws>, c: Arc<FloodCounters>) {
    while let Some(Ok(msg)) = stream.next().await {
        let WsMessage::Text(text) = msg else { continue };
        let text = text.as_str();
        if text.starts_with(r#"{"type":"ack""#) {
            c.acked.fetch_add(1, Ordering::Relaxed);
        } else if text.starts_with(r#"{"type":"error""#) {
            if text.contains(r#""code":"rate_limited""#) {
                c.refused.fetch_add(1, Ordering::Relaxed);
            } else if c.other.fetch_add(1, Ordering::Relaxed) < 3 {
                eprintln!("flooder got: {text}");
            }
        }
    }
}

/// Sends as fast as `per_sec` allows (in bursts, when the timer is coarser) until `stop_us`.
async fn flood(
    mut sink: futures::stream::SplitSink<Ws, WsMessage>,
    room: Uuid,
    per_sec: f64,
    stop_us: u64,
    c: Arc<FloodCounters>,
) -> futures::stream::SplitSink<Ws, WsMessage> {
    let period_us = 1e6 / per_sec.max(0.001);
    let start = now_us();
    let mut k = 0u64;
    loop {
        let intended = start + (k as f64 * period_us) as u64;
        if intended >= stop_us {
            return sink;
        }
        tokio::time::sleep_until(instant_at(intended)).await;
        let id = Uuid::now_v7().simple();
        let frame = format!(
            r#"{{"type":"send","id":"{id}","message":{{"roomId":"{room}","clientMsgId":"{id}","content":"flood"}}}}"#
        );
        if sink.send(WsMessage::Text(frame.into())).await.is_err() {
            return sink;
        }
        c.sent.fetch_add(1, Ordering::Relaxed);
        k += 1;
    }
}

/// Runs the scenario: one row without the flood, one with it.
pub async fn run(target: &Target, opts: &FloodOptions) -> Result<Report> {
    let mut report = Report::new(
        "flood",
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    setup::raise_fd_limit();
    let prefix = setup::run_prefix();
    let normal_users = opts.pairs.max(1) * 2;
    let users = setup::register_users(target, &prefix, normal_users + opts.flooders * 2).await?;
    // Users 2i and 2i+1 share a room; the flood rooms come after the normal ones, the
    // flooder first.
    let layout: Vec<Vec<usize>> = (0..users.len() / 2)
        .map(|r| vec![2 * r, 2 * r + 1])
        .collect();
    let rooms = setup::create_rooms(target, &users, &layout, false).await?;
    let sockets = setup::open_all(target, &users, 64).await?;

    let normal = Arc::new(Counters::default());
    let victims = Arc::new(Counters::default());
    let flooders = Arc::new(FloodCounters::default());
    let mut histos = Vec::new();
    let mut sinks: Vec<Sink> = Vec::new();
    let mut flood_sinks = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        if i < normal_users {
            let h = Histos::new();
            tokio::spawn(receive(stream, normal.clone(), h.clone()));
            histos.push(h);
            sinks.push(Arc::new(tokio::sync::Mutex::new(sink)));
        } else if (i - normal_users).is_multiple_of(2) {
            tokio::spawn(flood_receive(stream, flooders.clone()));
            flood_sinks.push((sink, rooms[i / 2].id));
        } else {
            // Victims: online, reading, their latency not part of the comparison.
            tokio::spawn(receive(stream, victims.clone(), Histos::new()));
        }
    }
    // Every normal user sends in its own room.
    let senders: Vec<(Sink, Uuid)> = (0..normal_users)
        .map(|i| (sinks[i].clone(), rooms[i / 2].id))
        .collect();

    // The flooders' sinks outlive their tasks: dropping one would close its socket.
    let mut kept = Vec::new();
    for flooding in [false, true] {
        let start = now_us() + 50_000;
        let measure_from = start + opts.warmup.as_micros() as u64;
        let stop = measure_from + opts.duration.as_micros() as u64;
        let tasks = start_senders(&senders, opts.rate, start, stop, &normal);
        let mut flood_tasks = Vec::new();
        if flooding {
            for (sink, room) in flood_sinks.drain(..) {
                flood_tasks.push(tokio::spawn(flood(
                    sink,
                    room,
                    opts.flood_rate,
                    stop,
                    flooders.clone(),
                )));
            }
        }
        tokio::time::sleep_until(instant_at(measure_from)).await;
        take(&histos);
        let sent_before = normal.sent.load(Ordering::Relaxed);
        let errors_before = normal.errors.load(Ordering::Relaxed);
        let flood_before = flood_snapshot(&flooders);
        let server_before = server::sample(target).await?;
        tokio::time::sleep_until(instant_at(stop)).await;
        let sent_after = normal.sent.load(Ordering::Relaxed);
        let errors_after = normal.errors.load(Ordering::Relaxed);
        let flood_after = flood_snapshot(&flooders);
        let server_after = server::sample(target).await?;
        for t in tasks {
            let _ = t.await;
        }
        for t in flood_tasks {
            if let Ok(sink) = t.await {
                kept.push(sink);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;

        let secs = opts.duration.as_secs_f64();
        let (recv, ack) = take(&histos);
        let [r50, _, r99, _, _] = percentiles_ms(&recv);
        let [a50, _, a99, _, _] = percentiles_ms(&ack);
        let per_sec = |after: u64, before: u64| (after - before) as f64 / secs;
        report.rows.push(vec![
            if flooding { opts.flooders as f64 } else { 0.0 },
            per_sec(flood_after[0], flood_before[0]),
            per_sec(flood_after[1], flood_before[1]),
            per_sec(flood_after[2], flood_before[2]),
            per_sec(sent_after, sent_before),
            a50,
            a99,
            r50,
            r99,
            (errors_after - errors_before) as f64,
            (server_after.cpu_seconds - server_before.cpu_seconds) / secs,
        ]);
    }

    let closed = normal.closed.load(Ordering::Relaxed) + victims.closed.load(Ordering::Relaxed);
    if closed > 0 {
        report.problems.push(format!(
            "{closed} normal sockets were closed by the server during the run"
        ));
    }
    let errors = normal.errors.load(Ordering::Relaxed) + victims.errors.load(Ordering::Relaxed);
    if errors > 0 {
        report.problems.push(format!(
            "{errors} error frames or failed sends among normal users"
        ));
    }
    let other = flooders.other.load(Ordering::Relaxed);
    if other > 0 {
        report.problems.push(format!(
            "flooders got {other} errors other than rate_limited"
        ));
    }
    if opts.flooders > 0 && flooders.refused.load(Ordering::Relaxed) == 0 {
        report.problems.push(
            "the server refused none of the flood: are its send limits off? (use bench/flood.toml)"
                .into(),
        );
    }
    Ok(report)
}

/// Flood sends, acks and refusals so far.
fn flood_snapshot(c: &FloodCounters) -> [u64; 3] {
    [
        c.sent.load(Ordering::Relaxed),
        c.acked.load(Ordering::Relaxed),
        c.refused.load(Ordering::Relaxed),
    ]
}
