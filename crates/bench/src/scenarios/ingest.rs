//! Durable ingest: S sockets each keep W sends in flight (closed loop) into their own
//! rooms, with nobody else online, for a fixed time. Every ack means the message is
//! committed with `synchronous=FULL`, so acked messages per second is the store's
//! durable write rate through the real protocol.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::number_after;
use crate::stats::{histogram, now_us, percentiles_ms, record_since};
use crate::{BenchError, Report, Result, Target, server, setup};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestOptions {
    /// Sending sockets, each in its own 1:1 room.
    pub senders: usize,
    /// Sends in flight per socket.
    pub window: usize,
    pub duration: Duration,
}

const COLUMNS: &[&str] = &[
    "senders",
    "window",
    "acked msgs/s",
    "ack p50 ms",
    "ack p99 ms",
    "ack p99.9 ms",
    "errors",
    "server cores",
    "server µs/message",
];

/// Runs the scenario.
pub async fn run(target: &Target, opts: &IngestOptions) -> Result<Report> {
    let mut report = Report::new(
        "ingest",
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    let senders = opts.senders.max(1);
    let users = setup::register_users(target, &setup::run_prefix(), senders * 2).await?;
    let layout: Vec<Vec<usize>> = (0..senders).map(|i| vec![2 * i, 2 * i + 1]).collect();
    let rooms = setup::create_rooms(target, &users, &layout, false).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let before = server::sample(target).await?;
    let mut tasks = Vec::new();
    for (i, room) in rooms.iter().enumerate() {
        let ws = setup::open(target, &users[2 * i], i).await?;
        let (mut sink, mut stream) = ws.split();
        let window = Arc::new(Semaphore::new(opts.window.max(1)));
        let (room, stop, acked, errors) = (room.id, stop.clone(), acked.clone(), errors.clone());
        let reader_window = window.clone();
        let reader = tokio::spawn(async move {
            let mut h = histogram();
            while let Some(Ok(msg)) = stream.next().await {
                let WsMessage::Text(t) = msg else { continue };
                let t = t.as_str();
                if t.starts_with(r#"{"type":"ack""#) {
                    if let Some(sent) = number_after(t, r#""id":""#) {
                        record_since(&mut h, sent);
                    }
                    acked.fetch_add(1, Ordering::Relaxed);
                    reader_window.add_permits(1);
                } else if t.starts_with(r#"{"type":"error""#) {
                    errors.fetch_add(1, Ordering::Relaxed);
                    reader_window.add_permits(1);
                }
            }
            h
        });
        tasks.push((
            tokio::spawn(async move {
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(permit) = window.acquire().await else { break };
                    permit.forget();
                    let t = now_us();
                    let frame = format!(r#"{{"type":"send","id":"{t}","message":{{"roomId":"{room}","clientMsgId":"i{k}","content":"ingest {k}"}}}}"#);
                    if sink.send(WsMessage::Text(frame.into())).await.is_err() {
                        break;
                    }
                    k += 1;
                }
                sink
            }),
            reader,
        ));
    }
    let base = acked.load(Ordering::Relaxed);
    tokio::time::sleep(opts.duration).await;
    let done = acked.load(Ordering::Relaxed) - base;
    let after = server::sample(target).await?;
    stop.store(true, Ordering::Relaxed);
    let mut h = histogram();
    for (sender, reader) in tasks {
        // Closing the write half ends the connection; the reader then returns.
        let mut sink = sender.await.map_err(|e| BenchError::Setup(e.to_string()))?;
        let _ = sink.close().await;
        if let Ok(Ok(th)) = tokio::time::timeout(Duration::from_secs(10), reader).await {
            let _ = h.add(&th);
        }
    }
    let secs = opts.duration.as_secs_f64();
    let cpu = after.cpu_seconds - before.cpu_seconds;
    let [p50, _, p99, p999, _] = percentiles_ms(&h);
    let errs = errors.load(Ordering::Relaxed);
    report.rows.push(vec![
        senders as f64,
        opts.window as f64,
        done as f64 / secs,
        p50,
        p99,
        p999,
        errs as f64,
        cpu / secs,
        if done > 0 {
            cpu * 1e6 / done as f64
        } else {
            0.0
        },
    ]);
    if errs > 0 {
        report.problems.push(format!("{errs} sends failed"));
    }
    Ok(report)
}
