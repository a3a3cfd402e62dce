//! Message search over a large store: fills it through the real protocol with
//! `messages` messages (mostly English sentences, some Chinese, Japanese and Korean:
//! `corpus.rs`), then times searches by one user who is in half the rooms, one query at a
//! time, and reads the index's size from the database (`size.rs`).
//!
//! Each row is one query: how many stored messages in the searcher's scope hold it (counted
//! while generating them), how many a search answered (at most 20, newest first) and
//! whether it was truncated, and the latency of `searches` sequential searches (p50, p99,
//! max). The last row searches the first query in one room only. Index bytes per message
//! are on every row (the same figure).

pub mod corpus;
pub mod size;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use palaver_proto::SearchQuery;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use crate::stats::{histogram, now_us, percentiles_ms, record_since};
use crate::{BenchError, Report, Result, Target, setup};
use corpus::{Corpus, holds};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchOptions {
    /// Messages stored before searching.
    pub messages: usize,
    /// Group rooms they are spread over; the searcher is in every other one.
    pub rooms: usize,
    /// Sending sockets while filling.
    pub senders: usize,
    /// Sends in flight per socket while filling.
    pub window: usize,
    /// Timed searches per query (after a few untimed ones).
    pub searches: usize,
    /// The queries, one row each.
    pub queries: Vec<String>,
    /// Where to read the index's size, if anywhere.
    pub database: Option<size::Database>,
}

/// An English word, a very common one, two words; CJK runs of three, two and one
/// characters (東京都 also meets 東京 and 京都 apart, which the phrase check refuses).
pub const DEFAULT_QUERIES: &[&str] = &[
    "project",
    "the",
    "project meeting",
    "会议室",
    "東京都",
    "会议",
    "한국",
    "会",
];

const COLUMNS: &[&str] = &[
    "query #",
    "chars",
    "scope rooms",
    "in scope holding it",
    "answered",
    "truncated",
    "p50 ms",
    "p99 ms",
    "max ms",
    "searches/s",
    "index B/msg",
    "messages B/msg",
];

/// Untimed searches before each row.
const WARMUP: usize = 5;

/// What the fill counted, per query, among the messages in the searcher's rooms; and in
/// room 0 for the first query.
#[derive(Default)]
struct Counts {
    in_scope: Vec<u64>,
    in_room0: u64,
}

/// Runs the scenario.
pub async fn run(target: &Target, opts: &SearchOptions) -> Result<Report> {
    let mut report = Report::new(
        "search",
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    let senders = opts.senders.max(1);
    let rooms_n = opts.rooms.max(1);
    let users = setup::register_users(target, &setup::run_prefix(), senders + 1).await?;
    let searcher = senders;
    // Room r is sender (r mod senders)'s; the searcher is in the even ones.
    let layout: Vec<Vec<usize>> = (0..rooms_n)
        .map(|r| {
            let owner = r % senders;
            if r % 2 == 0 {
                vec![owner, searcher]
            } else if senders > 1 {
                vec![owner, (owner + 1) % senders]
            } else {
                vec![owner]
            }
        })
        .collect();
    let rooms: Vec<Uuid> = setup::create_rooms(target, &users, &layout, true)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();

    let started = Instant::now();
    let counts = fill(target, &users, &rooms, opts).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    report.params["fill_msgs_per_s"] = serde_json::json!(opts.messages as f64 / fill_secs);

    let sizes = match &opts.database {
        Some(db) => size::measure(db).await?,
        None => size::Sizes::default(),
    };
    let per_message = |bytes: f64| bytes / opts.messages.max(1) as f64;
    report.params["index_bytes"] = serde_json::json!(sizes.index);
    report.params["messages_bytes"] = serde_json::json!(sizes.messages);

    let me = &users[searcher].api;
    let mut rows: Vec<(usize, Option<Uuid>, u64)> = opts
        .queries
        .iter()
        .enumerate()
        .map(|(i, _)| (i, None, counts.in_scope[i]))
        .collect();
    if !opts.queries.is_empty() {
        rows.push((0, Some(rooms[0]), counts.in_room0));
    }
    for (i, room, holding) in rows {
        let q = &opts.queries[i];
        let query = SearchQuery {
            q: q.clone(),
            room_id: room,
            limit: None,
            before: None,
        };
        let mut last = None;
        for _ in 0..WARMUP {
            last = Some(me.search(&query).await?);
        }
        let mut h = histogram();
        let t0 = Instant::now();
        for _ in 0..opts.searches {
            let t = now_us();
            last = Some(me.search(&query).await?);
            record_since(&mut h, t);
        }
        let secs = t0.elapsed().as_secs_f64().max(1e-9);
        let last = last.ok_or_else(|| BenchError::Setup("no search ran".into()))?;
        let [p50, _, p99, _, max] = percentiles_ms(&h);
        let scope = match room {
            Some(_) => 1.0,
            None => rooms.len().div_ceil(2) as f64,
        };
        let expected = (holding as usize).min(20);
        if last.messages.len() < expected && !last.truncated {
            report.problems.push(format!(
                "{q:?}: {} answered, {holding} stored match",
                last.messages.len()
            ));
        }
        report.rows.push(vec![
            (i + 1) as f64,
            q.chars().count() as f64,
            scope,
            holding as f64,
            last.messages.len() as f64,
            if last.truncated { 1.0 } else { 0.0 },
            p50,
            p99,
            max,
            opts.searches as f64 / secs,
            per_message(sizes.index),
            per_message(sizes.messages),
        ]);
    }
    Ok(report)
}

/// Stores the messages: each sender keeps `window` sends in flight into its rooms in turn;
/// returns what the queries should find.
async fn fill(
    target: &Target,
    users: &[setup::BenchUser],
    rooms: &[Uuid],
    opts: &SearchOptions,
) -> Result<Counts> {
    let senders = opts.senders.max(1);
    let bar = setup::bar(target, opts.messages as u64, "messages");
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (s, user) in users.iter().enumerate().take(senders) {
        let count = opts.messages / senders + usize::from(s < opts.messages % senders);
        let mine: Vec<(usize, Uuid)> = rooms
            .iter()
            .copied()
            .enumerate()
            .filter(|(r, _)| r % senders == s)
            .collect();
        if mine.is_empty() || count == 0 {
            continue;
        }
        let ws = setup::open(target, user, s).await?;
        let (mut sink, mut stream) = ws.split();
        let window = Arc::new(Semaphore::new(opts.window.max(1)));
        let reader_window = window.clone();
        let (errors, bar) = (errors.clone(), bar.clone());
        let reader = tokio::spawn(async move {
            let mut answered = 0;
            while answered < count {
                let t = match stream.next().await {
                    Some(Ok(WsMessage::Text(t))) => t,
                    // The server's heartbeat pings (every 20 s by default) are answered by
                    // the socket itself; a long fill sees several.
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                    _ => {
                        // Wake the writer, which would otherwise wait for a permit forever.
                        reader_window.close();
                        return Err(BenchError::Setup("socket closed while filling".into()));
                    }
                };
                let t = t.as_str();
                if t.starts_with(r#"{"type":"ack""#) {
                    bar.inc(1);
                } else if t.starts_with(r#"{"type":"error""#) {
                    errors.fetch_add(1, Ordering::Relaxed);
                } else {
                    continue;
                }
                answered += 1;
                reader_window.add_permits(1);
            }
            Ok(())
        });
        let queries = opts.queries.clone();
        let writer = tokio::spawn(async move {
            let mut corpus = Corpus::new(s as u64 + 1);
            let mut counts = Counts {
                in_scope: vec![0; queries.len()],
                in_room0: 0,
            };
            for k in 0..count {
                let Ok(permit) = window.acquire().await else {
                    break;
                };
                permit.forget();
                let (r, room) = mine[k % mine.len()];
                let text = corpus.message();
                if r % 2 == 0 {
                    for (i, q) in queries.iter().enumerate() {
                        if holds(&text, q) {
                            counts.in_scope[i] += 1;
                            if i == 0 && r == 0 {
                                counts.in_room0 += 1;
                            }
                        }
                    }
                }
                let content = serde_json::to_string(&text).unwrap_or_default();
                let frame = format!(
                    r#"{{"type":"send","id":"{k}","message":{{"roomId":"{room}","clientMsgId":"s{s}-{k}","content":{content}}}}}"#
                );
                if sink.send(WsMessage::Text(frame.into())).await.is_err() {
                    return Err(BenchError::Setup("socket closed while filling".into()));
                }
            }
            Ok((counts, sink))
        });
        tasks.push((writer, reader));
    }
    let mut counts = Counts {
        in_scope: vec![0; opts.queries.len()],
        in_room0: 0,
    };
    for (writer, reader) in tasks {
        let (c, mut sink) = writer
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))??;
        reader
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))??;
        let _ = sink.close().await;
        for (total, n) in counts.in_scope.iter_mut().zip(c.in_scope) {
            *total += n;
        }
        counts.in_room0 += c.in_room0;
    }
    bar.finish_and_clear();
    let errors = errors.load(Ordering::Relaxed);
    if errors > 0 {
        return Err(BenchError::Setup(format!(
            "{errors} sends failed while filling"
        )));
    }
    Ok(counts)
}
