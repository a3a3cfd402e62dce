//! The connections this node holds, and the task that pushes bus events to them.
//!
//! Fan-out resolves the audience from the in-memory routing table and hands the same
//! shared bytes to every connection's bounded queue with `try_send`: it never waits for a
//! slow socket. A connection whose queue is full is closed (1008, "slow consumer") and
//! resumes from its last seq when it comes back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use palaver_proto::close;

use crate::bus::{Audience, Delivery, Event, EventStream};
use crate::service::Core;
use crate::telemetry::metric;

/// An item on a connection's outbound queue.
#[derive(Debug, Clone)]
pub struct LiveFrame {
    pub text: Utf8Bytes,
    /// For new messages: the room and seq, to drop duplicates and repair gaps.
    pub room_seq: Option<(Uuid, i64)>,
    /// The connection that sent this message: it tracks the seq but does not echo it.
    pub skip_for: Option<Uuid>,
}

/// What the hub keeps of one connection.
#[derive(Clone)]
pub struct ConnHandle {
    pub id: Uuid,
    pub session_id: Uuid,
    pub tx: mpsc::Sender<LiveFrame>,
    /// Cancelled to close the connection; `reason` says with which code.
    pub kill: CancellationToken,
    pub reason: Arc<Mutex<Option<(u16, &'static str)>>>,
}

impl ConnHandle {
    /// Asks the connection to close with the code (the first reason given wins).
    pub fn close(&self, code: u16, why: &'static str) {
        self.reason.lock().get_or_insert((code, why));
        self.kill.cancel();
    }
}

/// The connections of this node, by user.
pub struct Hub {
    core: Arc<Core>,
    conns: RwLock<HashMap<Uuid, Vec<ConnHandle>>>,
    count: AtomicUsize,
}

impl Hub {
    pub fn new(core: Arc<Core>) -> Arc<Hub> {
        Arc::new(Hub {
            core,
            conns: RwLock::default(),
            count: AtomicUsize::new(0),
        })
    }

    /// Number of open connections.
    pub fn connections(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn register(&self, user: Uuid, handle: ConnHandle) {
        self.conns.write().entry(user).or_default().push(handle);
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(metric::WS_CONNECTIONS).set(n as f64);
    }

    pub fn unregister(&self, user: Uuid, conn: Uuid) {
        let mut conns = self.conns.write();
        if let Some(list) = conns.get_mut(&user) {
            let before = list.len();
            list.retain(|c| c.id != conn);
            if list.len() < before {
                let n = self.count.fetch_sub(1, Ordering::Relaxed) - 1;
                metrics::gauge!(metric::WS_CONNECTIONS).set(n as f64);
            }
            if list.is_empty() {
                conns.remove(&user);
            }
        }
    }

    /// Closes every connection with "going away"; their writers flush what is queued.
    pub fn close_all(&self) {
        for list in self.conns.read().values() {
            for c in list {
                c.close(close::GOING_AWAY, "server shutting down");
            }
        }
    }

    /// Fans out the events the service hands on (`Core::consume`) until they end.
    pub async fn run(self: Arc<Self>, mut events: EventStream) {
        while let Some(event) = events.next().await {
            self.dispatch(&event);
        }
    }

    fn dispatch(&self, event: &Event) {
        match event {
            Event::Deliver(d) => self.deliver(d),
            // The routing table and the blocks are the service's: `Core::consume` applied
            // them before the event got here.
            Event::Membership { .. } | Event::Block { .. } => {}
            Event::EndSession { session_id } => {
                for list in self.conns.read().values() {
                    for c in list.iter().filter(|c| c.session_id == *session_id) {
                        c.close(close::SESSION_ENDED, "session ended");
                    }
                }
            }
        }
    }

    fn deliver(&self, d: &Delivery) {
        let Ok(text) = Utf8Bytes::try_from(d.frame.clone()) else {
            tracing::error!("dropping a frame that is not UTF-8");
            return;
        };
        // A new message also goes to the connection that sent it, so that connection's
        // seq bookkeeping stays whole; its writer does not echo it.
        let exclude = if d.room_seq.is_some() {
            None
        } else {
            d.exclude_conn
        };
        let item = LiveFrame {
            text,
            room_seq: d.room_seq,
            skip_for: d.exclude_conn,
        };
        let conns = self.conns.read();
        let mut sent = 0u64;
        let mut push = |user: &Uuid| {
            if let Some(list) = conns.get(user) {
                for c in list {
                    if Some(c.id) == exclude {
                        continue;
                    }
                    match c.tx.try_send(item.clone()) {
                        Ok(()) => sent += 1,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            metrics::counter!(metric::SLOW_CONSUMERS).increment(1);
                            c.close(close::SLOW_CONSUMER, "slow consumer: reconnect and resume");
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {}
                    }
                }
            }
        };
        match &d.audience {
            Audience::Room(room) => {
                if let Some(members) = self.core.membership.members(*room) {
                    members.iter().for_each(&mut push);
                }
            }
            Audience::Users(users) => users.iter().for_each(&mut push),
            Audience::Joined { room, from } => self
                .core
                .membership
                .joined_audience(*room, *from)
                .iter()
                .for_each(&mut push),
            Audience::PeersOf(user) => self
                .core
                .membership
                .peers_of(*user)
                .iter()
                .for_each(&mut push),
        }
        metrics::counter!("palaver_fanout_deliveries_total").increment(sent);
    }
}
