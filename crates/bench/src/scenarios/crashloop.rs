//! Crash loop: steady load on a deployment the run starts itself (fleet.rs) while nodes
//! are `kill -9`ed and restarted at intervals (on a cluster also NATS and Redis), then a
//! check of every promise the server makes about messages:
//!
//! - no acknowledged message is lost: every ack's (clientMsgId, seq) is in the store;
//! - each room's seqs are 1..n, with no gap and no duplicate, and each clientMsgId is
//!   stored once;
//! - a retry (same clientMsgId, resent after a lost connection, or on purpose after an
//!   ack) is answered with the original seq;
//! - every client's view (live frames plus `sync` replays) equals the store's.
//!
//! Clients behave as a good client must: a send whose ack did not come is resent with the
//! same clientMsgId after reconnecting, and a reconnect resumes with `sync` from the last
//! seq seen without a gap.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palaver_client::{ClientError, Socket};
use palaver_proto::{ClientFrame, Cursors, ServerFrame};
use uuid::Uuid;

use crate::fleet::Fleet;
use crate::setup::{self, BenchUser};
use crate::{BenchError, Report, Result, Target};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CrashloopOptions {
    /// 1:1 rooms, two clients each, both sending.
    pub rooms: usize,
    /// Messages per second over all clients.
    pub rate: f64,
    pub duration: Duration,
    /// Time between faults.
    pub kill_every: Duration,
    /// How long a killed process stays down.
    pub down_for: Duration,
    /// Every n-th send of a client resends an earlier, acknowledged one (0: never).
    pub retry_every: u64,
}

/// What happened, and every broken promise counted.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CrashloopOutcome {
    pub faults: Vec<String>,
    pub sent: u64,
    pub acked: u64,
    /// Sends repeated with the same clientMsgId (after a lost ack, or on purpose).
    pub retries: u64,
    /// Retries after a lost connection that the server answered as duplicates: the
    /// message had been committed but its ack never arrived (a kill between the two).
    pub committed_before_lost_ack: u64,
    pub reconnects: u64,
    /// Messages in the store at the end.
    pub stored: u64,
    /// Acknowledged but not in the store (or stored under another seq).
    pub lost: u64,
    /// Missing seqs in rooms.
    pub gaps: u64,
    /// Seqs or clientMsgIds stored twice.
    pub duplicates: u64,
    /// Retries answered with a seq other than the first answer's.
    pub retry_mismatches: u64,
    /// Clients whose final view differs from the store.
    pub view_mismatches: u64,
    pub problems: Vec<String>,
}

impl CrashloopOutcome {
    /// Broken promises; 0 on a clean run.
    pub fn violations(&self) -> u64 {
        self.lost + self.gaps + self.duplicates + self.retry_mismatches + self.view_mismatches
    }
}

/// How long a client waits for an ack before it counts the connection as lost.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the run waits, after the load, for clients to finish their last sends.
const SETTLE: Duration = Duration::from_secs(60);

/// One client's record.
#[derive(Default)]
struct ClientLog {
    /// clientMsgId -> the seq of its first ack.
    acked: HashMap<String, i64>,
    /// seq -> message id, as seen live, in acks and in replays.
    view: BTreeMap<i64, Uuid>,
    sent: u64,
    retries: u64,
    committed_before_lost_ack: u64,
    reconnects: u64,
    retry_mismatches: u64,
    problems: Vec<String>,
}

impl ClientLog {
    /// The last seq before the first hole in what this client has seen.
    fn cursor(&self) -> i64 {
        let mut cursor = 0;
        for seq in self.view.keys() {
            if *seq != cursor + 1 {
                break;
            }
            cursor = *seq;
        }
        cursor
    }

    fn see(&mut self, frame: &ServerFrame, room: Uuid) {
        if let ServerFrame::Message { message } = frame
            && message.room_id == room
        {
            self.view.insert(message.seq, message.id);
        }
    }
}

/// Opens a socket and resumes the room from the client's cursor; retries until `until`.
async fn reconnect(
    user: &BenchUser,
    room: Uuid,
    log: &mut ClientLog,
    until: Instant,
) -> Result<Socket> {
    let mut backoff = Duration::from_millis(50);
    loop {
        match resume(user, room, log).await {
            Ok(socket) => return Ok(socket),
            Err(err) if Instant::now() >= until => return Err(err),
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn resume(user: &BenchUser, room: Uuid, log: &mut ClientLog) -> Result<Socket> {
    let mut socket = user.api.connect().await?;
    match socket.next_within(ACK_TIMEOUT).await? {
        ServerFrame::Hello { .. } => {}
        other => return Err(BenchError::Setup(format!("expected hello, got {other:?}"))),
    }
    let cursors: Cursors = BTreeMap::from([(room, log.cursor())]);
    let id = socket
        .send_frame(ClientFrame::Sync {
            cursors,
            changes: Default::default(),
        })
        .await?;
    let deadline = tokio::time::Instant::now() + ACK_TIMEOUT * 2;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match socket.next_within(left).await? {
            ServerFrame::Synced { id: Some(i), .. } if i == id => return Ok(socket),
            ServerFrame::Error {
                id: Some(i),
                message,
                ..
            } if i == id => {
                return Err(BenchError::Setup(format!("sync refused: {message}")));
            }
            frame => log.see(&frame, room),
        }
    }
}

/// Sends `cmid` and waits for its ack (frames that arrive meanwhile stay queued).
async fn send_once(
    socket: &mut Socket,
    room: Uuid,
    cmid: &str,
) -> std::result::Result<(i64, Uuid, bool), ClientError> {
    let (message, duplicate) = tokio::time::timeout(
        ACK_TIMEOUT,
        socket.send_message(room, cmid, &format!("crash loop {cmid}")),
    )
    .await
    .map_err(|_| ClientError::Timeout)??;
    Ok((message.seq, message.id, duplicate))
}

/// Everything one client does: send at its pace until `stop`, retrying what was not
/// acknowledged, then finish its last send.
async fn client(
    user: BenchUser,
    room: Uuid,
    interval: Duration,
    stop: Instant,
    retry_every: u64,
    sent_total: Arc<AtomicU64>,
) -> ClientLog {
    let mut log = ClientLog::default();
    let give_up = stop + SETTLE;
    let Ok(mut socket) = reconnect(&user, room, &mut log, give_up).await else {
        log.problems.push("never connected".into());
        return log;
    };
    let mut next = tokio::time::Instant::now();
    // A send not yet acknowledged: it is resent, with the same id, until it is.
    let mut pending: Option<String> = None;
    let mut order: Vec<String> = Vec::new();
    let mut n = 0u64;
    loop {
        let finishing = Instant::now() >= stop;
        if finishing && pending.is_none() {
            break;
        }
        if !finishing {
            tokio::time::sleep_until(next).await;
            next += interval;
        }
        n += 1;
        let after_loss = pending.is_some();
        let cmid = match pending.take() {
            Some(cmid) => {
                log.retries += 1;
                cmid
            }
            None if retry_every > 0 && n.is_multiple_of(retry_every) && !order.is_empty() => {
                log.retries += 1;
                order[(n as usize / 7) % order.len()].clone()
            }
            None => {
                log.sent += 1;
                sent_total.fetch_add(1, Ordering::Relaxed);
                Uuid::now_v7().to_string()
            }
        };
        match send_once(&mut socket, room, &cmid).await {
            Ok((seq, id, duplicate)) => {
                if after_loss && duplicate && !log.acked.contains_key(&cmid) {
                    log.committed_before_lost_ack += 1;
                }
                match log.acked.get(&cmid) {
                    Some(first_seq) if *first_seq != seq => {
                        log.retry_mismatches += 1;
                        log.problems.push(format!(
                            "{cmid} answered with seq {seq}, first with {first_seq}"
                        ));
                    }
                    Some(_) => {}
                    None => {
                        log.acked.insert(cmid.clone(), seq);
                        order.push(cmid);
                    }
                }
                log.view.insert(seq, id);
            }
            Err(ClientError::Api { code, message, .. }) => {
                // A refusal is an answer, not a lost connection; it must not happen here.
                log.problems
                    .push(format!("{cmid} refused: {code:?} {message}"));
            }
            Err(_) => {
                pending = Some(cmid);
                log.reconnects += 1;
                match reconnect(&user, room, &mut log, give_up).await {
                    Ok(s) => socket = s,
                    Err(err) => {
                        log.problems.push(format!("gave up reconnecting: {err}"));
                        return log;
                    }
                }
            }
        }
        // What arrived while we waited for acks.
        while let Ok(frame) = socket.next_within(Duration::ZERO).await {
            log.see(&frame, room);
        }
    }
    let _ = socket.close().await;
    log
}

/// After every client has stopped sending: one more resume, which replays whatever live
/// frames a dying node never sent (and the partner's last sends).
async fn catch_up(user: BenchUser, room: Uuid, mut log: ClientLog) -> ClientLog {
    match reconnect(&user, room, &mut log, Instant::now() + SETTLE).await {
        Ok(socket) => {
            let _ = socket.close().await;
        }
        Err(err) => log.problems.push(format!("final resume failed: {err}")),
    }
    log
}

/// Faults, one every `every`, until `stop`: node kills in turn; on a cluster every
/// third fault restarts NATS or Redis instead. Returns what was done.
async fn inject(
    fleet: &mut Fleet,
    every: Duration,
    down: Duration,
    stop: Instant,
    progress: bool,
) -> Result<Vec<String>> {
    let mut faults = Vec::new();
    let (mut k, mut kills) = (0usize, 0usize);
    loop {
        let at = Instant::now() + every;
        if at + down >= stop {
            return Ok(faults);
        }
        tokio::time::sleep_until(at.into()).await;
        let what = match (fleet.is_cluster(), k % 6) {
            (true, 2) => {
                fleet.restart_nats(down).await?;
                "kill -9 NATS, restart".to_owned()
            }
            (true, 5) => {
                fleet.restart_redis(down).await?;
                "kill -9 Redis, restart (empty)".to_owned()
            }
            _ => {
                let node = kills % fleet.nodes();
                kills += 1;
                fleet.kill_node(node).await;
                tokio::time::sleep(down).await;
                fleet.start_node(node).await?;
                format!("kill -9 node {}, restart", node + 1)
            }
        };
        if progress {
            eprintln!("fault {}: {what}", k + 1);
        }
        faults.push(what);
        k += 1;
    }
}

/// Reads a whole room back from the store, in seq order.
async fn read_room(user: &BenchUser, room: Uuid) -> Result<Vec<palaver_proto::Message>> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = user.api.history(room, None, Some(after), Some(200)).await?;
        if let Some(last) = page.messages.last() {
            after = after.max(last.seq);
        }
        let more = page.has_more && !page.messages.is_empty();
        all.extend(page.messages);
        if !more {
            break;
        }
    }
    all.sort_by_key(|m| m.seq);
    Ok(all)
}

/// Compares a room in the store with what its two clients were told and saw.
fn check_room(
    stored: &[palaver_proto::Message],
    clients: &[&ClientLog],
    outcome: &mut CrashloopOutcome,
) {
    outcome.stored += stored.len() as u64;
    let mut by_cmid: HashMap<&str, i64> = HashMap::new();
    for (i, m) in stored.iter().enumerate() {
        let expected = i as i64 + 1;
        if m.seq > expected {
            outcome.gaps += (m.seq - expected) as u64;
        } else if m.seq < expected {
            outcome.duplicates += 1;
        }
        if by_cmid.insert(m.client_msg_id.as_str(), m.seq).is_some() {
            outcome.duplicates += 1;
            outcome
                .problems
                .push(format!("clientMsgId {} stored twice", m.client_msg_id));
        }
    }
    let store_view: BTreeMap<i64, Uuid> = stored.iter().map(|m| (m.seq, m.id)).collect();
    for log in clients {
        for (cmid, seq) in &log.acked {
            if by_cmid.get(cmid.as_str()) != Some(seq) {
                outcome.lost += 1;
                outcome.problems.push(format!(
                    "acked {cmid} at seq {seq}, store has {:?}",
                    by_cmid.get(cmid.as_str())
                ));
            }
        }
        if log.view != store_view {
            outcome.view_mismatches += 1;
            let missing = store_view
                .keys()
                .filter(|s| !log.view.contains_key(s))
                .count();
            let extra = log
                .view
                .keys()
                .filter(|s| !store_view.contains_key(s))
                .count();
            outcome.problems.push(format!(
                "a client's view differs from the store: {missing} missing, {extra} unknown"
            ));
        }
    }
}

const COLUMNS: &[&str] = &[
    "nodes",
    "seconds",
    "faults",
    "sent",
    "acked",
    "msg/s",
    "retries",
    "committed, ack lost",
    "reconnects",
    "lost",
    "gaps",
    "duplicates",
    "retry mismatches",
    "view mismatches",
];

/// Runs load and faults against `fleet` (which it leaves running), then checks.
pub async fn run(
    fleet: &mut Fleet,
    options: &CrashloopOptions,
    progress: bool,
) -> Result<(Report, CrashloopOutcome)> {
    let target = Target::new(fleet.base(), &fleet.node_metrics(0));
    let prefix = setup::run_prefix();
    let users = setup::register_users(&target, &prefix, options.rooms * 2).await?;
    let pairs: Vec<Vec<usize>> = (0..options.rooms).map(|r| vec![2 * r, 2 * r + 1]).collect();
    let rooms = setup::create_rooms(&target, &users, &pairs, false).await?;

    let started = Instant::now();
    let stop = started + options.duration;
    let clients = users.len().max(1) as f64;
    let interval = Duration::from_secs_f64(clients / options.rate.max(0.001));
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            tokio::spawn(client(
                user.clone(),
                rooms[i / 2].id,
                interval,
                stop,
                options.retry_every,
                sent.clone(),
            ))
        })
        .collect();
    let ticker = progress.then(|| {
        let sent = sent.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!(
                    "{:>5.0} s: {} sent",
                    started.elapsed().as_secs_f64(),
                    sent.load(Ordering::Relaxed)
                );
            }
        })
    });
    let faults = inject(fleet, options.kill_every, options.down_for, stop, progress).await;
    let mut sent_logs = Vec::new();
    for task in tasks {
        sent_logs.push(
            task.await
                .map_err(|e| BenchError::Setup(format!("client task: {e}")))?,
        );
    }
    // Only now that nobody sends any more can a client's view be complete.
    let logs = futures::future::join_all(
        sent_logs
            .into_iter()
            .enumerate()
            .map(|(i, log)| catch_up(users[i].clone(), rooms[i / 2].id, log)),
    )
    .await;
    if let Some(t) = ticker {
        t.abort();
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut outcome = CrashloopOutcome {
        faults: faults?,
        ..Default::default()
    };
    for (r, room) in rooms.iter().enumerate() {
        let stored = read_room(&users[2 * r], room.id).await?;
        check_room(&stored, &[&logs[2 * r], &logs[2 * r + 1]], &mut outcome);
    }
    for log in &logs {
        outcome.sent += log.sent;
        outcome.acked += log.acked.len() as u64;
        outcome.retries += log.retries;
        outcome.committed_before_lost_ack += log.committed_before_lost_ack;
        outcome.reconnects += log.reconnects;
        outcome.retry_mismatches += log.retry_mismatches;
        outcome.problems.extend(log.problems.iter().cloned());
    }

    let mut report = Report::new(
        "crashloop",
        serde_json::to_value(options).unwrap_or_default(),
        COLUMNS,
    );
    let o = &outcome;
    report.rows.push(vec![
        fleet.nodes() as f64,
        elapsed,
        o.faults.len() as f64,
        o.sent as f64,
        o.acked as f64,
        o.acked as f64 / elapsed.max(0.001),
        o.retries as f64,
        o.committed_before_lost_ack as f64,
        o.reconnects as f64,
        o.lost as f64,
        o.gaps as f64,
        o.duplicates as f64,
        o.retry_mismatches as f64,
        o.view_mismatches as f64,
    ]);
    report.problems = outcome.problems.iter().take(20).cloned().collect();
    Ok((report, outcome))
}
