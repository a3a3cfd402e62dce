//! Reconnect storm: N clients in groups drop at once, messages arrive while they are
//! away, then all reconnect together and resume with `sync`. Checks that each client
//! receives exactly the seqs it missed, in order, once; reports how long it took.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use palaver_proto::{ClientEnvelope, ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use crate::{BenchError, Report, Result, Target, setup};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReconnectOptions {
    pub clients: usize,
    /// Members per group.
    pub room_size: usize,
    /// Messages sent to each room while everyone is away.
    pub missed: usize,
    /// Reconnects in flight at once.
    pub concurrency: usize,
}

const COLUMNS: &[&str] = &[
    "clients",
    "resumed",
    "seconds",
    "resumes/s",
    "messages replayed",
    "missing",
    "duplicates",
    "failed",
];

#[derive(Default)]
struct Outcome {
    replayed: u64,
    missing: u64,
    duplicates: u64,
    failed: bool,
}

/// One client: connect, sync from `cursor`, read until `synced`, check the seqs.
async fn resume(
    target: &Target,
    user: &setup::BenchUser,
    i: usize,
    room: Uuid,
    cursor: i64,
    last: i64,
) -> Outcome {
    let Ok(ws) = setup::open(target, user, i).await else {
        return Outcome {
            failed: true,
            ..Default::default()
        };
    };
    let (mut sink, mut stream) = ws.split();
    let cursors = BTreeMap::from([(room, cursor)]);
    let frame = ClientEnvelope {
        id: Some("s".into()),
        frame: ClientFrame::Sync {
            cursors,
            changes: Default::default(),
        },
    };
    let Ok(text) = serde_json::to_string(&frame) else {
        return Outcome {
            failed: true,
            ..Default::default()
        };
    };
    if sink.send(WsMessage::Text(text.into())).await.is_err() {
        return Outcome {
            failed: true,
            ..Default::default()
        };
    }
    let mut seqs = Vec::new();
    let read = async {
        while let Some(Ok(msg)) = stream.next().await {
            let WsMessage::Text(t) = msg else { continue };
            match serde_json::from_str::<ServerFrame>(t.as_str()) {
                Ok(ServerFrame::Message { message }) if message.room_id == room => {
                    seqs.push(message.seq)
                }
                Ok(ServerFrame::Synced { .. }) => return true,
                _ => {}
            }
        }
        false
    };
    let synced = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .unwrap_or(false);
    let expected: Vec<i64> = (cursor + 1..=last).collect();
    let mut unique = seqs.clone();
    unique.dedup();
    Outcome {
        replayed: seqs.len() as u64,
        missing: expected.iter().filter(|s| !seqs.contains(s)).count() as u64,
        duplicates: (seqs.len() - unique.len()) as u64,
        failed: !synced || seqs.windows(2).any(|w| w[0] > w[1]),
    }
}

/// Runs the scenario.
pub async fn run(target: &Target, opts: &ReconnectOptions) -> Result<Report> {
    let mut report = Report::new(
        "reconnect",
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    setup::raise_fd_limit();
    let size = opts.room_size.max(2);
    let groups = opts.clients.div_ceil(size);
    let users = setup::register_users(target, &setup::run_prefix(), groups * size).await?;
    let layout: Vec<Vec<usize>> = (0..groups)
        .map(|g| (g * size..(g + 1) * size).collect())
        .collect();
    let rooms = setup::create_rooms(target, &users, &layout, true).await?;

    // Everyone online, one message each room, then everyone drops at once. Each
    // room's cursor is that message's seq: the room's own events (created, members
    // added) come before it.
    let sockets = setup::open_all(target, &users, 256).await?;
    let mut cursors = Vec::with_capacity(rooms.len());
    for (g, room) in rooms.iter().enumerate() {
        let (_, before) = users[layout[g][0]]
            .api
            .send(room.id, "before", "before")
            .await?;
        cursors.push(before.seq);
    }
    drop(sockets);

    // Messages while they are away, from each room's owner over REST.
    let bar = setup::bar(target, (groups * opts.missed) as u64, "missed");
    let sends = futures::stream::iter(
        rooms
            .iter()
            .enumerate()
            .flat_map(|(g, room)| (0..opts.missed).map(move |k| (g, room.id, k))),
    )
    .map(|(g, room, k)| {
        let api = users[layout[g][0]].api.clone();
        let bar = bar.clone();
        async move {
            let sent = api
                .send(room, &format!("m{k}"), &format!("missed {k}"))
                .await;
            bar.inc(1);
            sent
        }
    })
    .buffered(32)
    .collect::<Vec<_>>()
    .await;
    bar.finish_and_clear();
    if let Some(Err(e)) = sends.into_iter().find(|s| s.is_err()) {
        return Err(BenchError::Client(e));
    }
    let missed = opts.missed as i64;

    let target = Arc::new(target.clone());
    let bar = setup::bar(&target, users.len() as u64, "resumed");
    let started = Instant::now();
    let outcomes: Vec<Outcome> = futures::stream::iter(users.iter().enumerate())
        .map(|(i, user)| {
            let (target, bar) = (target.clone(), bar.clone());
            let (room, cursor) = (rooms[i / size].id, cursors[i / size]);
            async move {
                let o = resume(&target, user, i, room, cursor, cursor + missed).await;
                bar.inc(1);
                o
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let resumed = outcomes.iter().filter(|o| !o.failed).count();
    let sum = |f: fn(&Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let (missing, duplicates) = (sum(|o| o.missing), sum(|o| o.duplicates));
    report.rows.push(vec![
        users.len() as f64,
        resumed as f64,
        secs,
        resumed as f64 / secs.max(1e-9),
        sum(|o| o.replayed) as f64,
        missing as f64,
        duplicates as f64,
        (users.len() - resumed) as f64,
    ]);
    if missing + duplicates > 0 || resumed < users.len() {
        report.problems.push(format!(
            "{missing} missing, {duplicates} duplicated, {} clients failed to resume",
            users.len() - resumed
        ));
    }
    Ok(report)
}
