//! History paging: one long room, many readers paging back from the newest message to
//! the first, again and again.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::stats::{histogram, now_us, percentiles_ms, record_since};
use crate::{BenchError, Report, Result, Target, setup};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryOptions {
    /// Messages in the room.
    pub messages: usize,
    /// Concurrent readers.
    pub readers: usize,
    /// Messages per page (1–200).
    pub page: u32,
    pub duration: Duration,
}

const COLUMNS: &[&str] = &[
    "readers",
    "pages/s",
    "messages/s",
    "page p50 ms",
    "page p99 ms",
    "page p99.9 ms",
    "errors",
];

/// Sends `n` messages into the room over one socket, pipelined, and waits for every ack.
pub async fn fill(
    target: &Target,
    user: &setup::BenchUser,
    room: uuid::Uuid,
    n: usize,
) -> Result<()> {
    let ws = setup::open(target, user, 0).await?;
    let (mut sink, mut stream) = ws.split();
    let bar = setup::bar(target, n as u64, "messages");
    let reader = tokio::spawn(async move {
        let mut acked = 0;
        while acked < n {
            match stream.next().await {
                Some(Ok(WsMessage::Text(t))) if t.as_str().starts_with(r#"{"type":"ack""#) => {
                    acked += 1
                }
                Some(Ok(WsMessage::Text(t))) if t.as_str().starts_with(r#"{"type":"error""#) => {
                    return Err(BenchError::Setup(format!("send failed: {}", t.as_str())));
                }
                Some(Ok(_)) => {}
                _ => {
                    return Err(BenchError::Setup(
                        "socket closed while filling history".into(),
                    ));
                }
            }
        }
        Ok(())
    });
    for i in 0..n {
        let frame = format!(
            r#"{{"type":"send","id":"{i}","message":{{"roomId":"{room}","clientMsgId":"h{i}","content":"history message {i}"}}}}"#
        );
        sink.send(WsMessage::Text(frame.into()))
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        bar.inc(1);
    }
    let done = reader.await.map_err(|e| BenchError::Setup(e.to_string()))?;
    bar.finish_and_clear();
    done
}

/// Runs the scenario.
pub async fn run(target: &Target, opts: &HistoryOptions) -> Result<Report> {
    let mut report = Report::new(
        "history",
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    let users = setup::register_users(target, &setup::run_prefix(), 2).await?;
    let room = setup::create_rooms(target, &users, &[vec![0, 1]], false)
        .await?
        .remove(0)
        .id;
    fill(target, &users[0], room, opts.messages).await?;

    let stop = Instant::now() + opts.duration;
    let mut tasks = Vec::new();
    for r in 0..opts.readers.max(1) {
        let api = users[r % 2].api.clone();
        let page = opts.page;
        tasks.push(tokio::spawn(async move {
            let (mut h, mut pages, mut messages, mut errors) = (histogram(), 0u64, 0u64, 0u64);
            let mut before = None;
            while Instant::now() < stop {
                let t = now_us();
                match api.history(room, before, None, Some(page)).await {
                    Ok(p) => {
                        record_since(&mut h, t);
                        pages += 1;
                        messages += p.messages.len() as u64;
                        before = if p.has_more {
                            p.messages.first().map(|m| m.seq)
                        } else {
                            None
                        };
                    }
                    Err(_) => errors += 1,
                }
            }
            (h, pages, messages, errors)
        }));
    }
    let (mut h, mut pages, mut messages, mut errors) = (histogram(), 0, 0, 0);
    for t in tasks {
        let (th, p, m, e) = t.await.map_err(|e| BenchError::Setup(e.to_string()))?;
        let _ = h.add(&th);
        pages += p;
        messages += m;
        errors += e;
    }
    let secs = opts.duration.as_secs_f64();
    let [p50, _, p99, p999, _] = percentiles_ms(&h);
    report.rows.push(vec![
        opts.readers as f64,
        pages as f64 / secs,
        messages as f64 / secs,
        p50,
        p99,
        p999,
        errors as f64,
    ]);
    if errors > 0 {
        report
            .problems
            .push(format!("{errors} history requests failed"));
    }
    Ok(report)
}
