//! The cluster bus: NATS, with a JetStream stream for everything stored and core NATS for
//! what is only of the moment.
//!
//! # Subjects
//!
//! Every subject starts with `palaver.<prefix>.` (the prefix names one deployment, or one
//! test run, so several share a NATS server without hearing each other). Below it:
//!
//! | subject | carries | path |
//! |---|---|---|
//! | `s.room.<room>.msg` | a new stored message (`room_seq` set) | stream |
//! | `s.room.<room>.evt` | edits, deletions, receipts, summaries, room changes for a room | stream |
//! | `s.users.evt` | durable frames for a list of users (room created, left, removed) | stream |
//! | `s.peers.<user>.evt` | durable frames for everyone who shares a room with `user` | stream |
//! | `s.ctl.membership.<room>` | `Event::Membership` (the routing table) | stream |
//! | `s.ctl.block.<blocker>` | `Event::Block` (who blocked whom, for the routing table) | stream |
//! | `s.ctl.session.<session>` | `Event::EndSession` (close a session's sockets) | stream |
//! | `e.room.<room>` | typing | core NATS |
//! | `e.peers.<user>` | presence | core NATS |
//! | `e.users` | other ephemeral frames for a list of users | core NATS |
//!
//! One stream, `PALAVER_<prefix>`, captures `palaver.<prefix>.s.>`: file storage, limits
//! retention (24 h / 1 GiB by default), a 2-minute duplicate window. Each stored event is
//! published with a `Nats-Msg-Id`, so a retry (ours, after an ack timeout, or anyone's)
//! is stored once: a new message is keyed by its room and seq (`m:<room>:<seq>`, which
//! names exactly one message), edits, deletions and receipts by a hash of the event (each
//! carries its own timestamp or a marker that only moves forward, so equal bytes mean the
//! same change), and membership changes and the rest by an id drawn per `publish` call
//! (two identical membership changes a minute apart are two changes, not a duplicate).
//!
//! Typing and presence do not go to the stream: they are worthless a second later, and
//! storing them would cost more than everything else together.
//!
//! Which is which is the delivery's `Class`, set by the service when it made the frame
//! (`Ephemeral`, `Change` keyed by content, `State` keyed per publish): this bus never
//! reads a frame, so a new frame type is routed as the service classes it.
//!
//! # Why this scales
//!
//! - JetStream stores each event once, whatever the number of nodes; nodes read it with
//!   ephemeral ordered consumers that need no acks, so a reader costs the server no state
//!   beyond a cursor.
//! - The room id is a subject token, so the stream can later be split by room (a subject
//!   transform with `partition(n, …)` into `n` streams) when one stream's rate is not
//!   enough, without changing what publishers do.
//! - Today every node reads all of `s.>` and `e.>` and its hub drops what its connections
//!   do not need: the routing table needs every membership event anyway, and at chat rates
//!   that is cheap for tens of nodes. Because audiences are in the subject, a node can
//!   instead filter on the rooms and peers of the users it holds (`filter_subjects` and
//!   per-room core subscriptions) once that stops being cheap; that needs an interest
//!   call on the `Bus` trait, not a new subject design.
//!
//! # Catching up
//!
//! A node starts consuming from "new", not from a stored cursor. A (re)started node holds
//! no connections from before, and every client that connects resumes from the database
//! by seq; its routing table is loaded from the database after it subscribed, so no
//! membership change falls between the two. A per-node durable consumer would only pile
//! up events for node ids that never come back. While it runs, a node that falls behind
//! or loses NATS for a while catches up from the stream: the ordered consumer notices a
//! gap (or missed heartbeats) and recreates itself from the last stream sequence it saw.
//! What is older than the stream's retention, or was an ephemeral frame, is gone, and the
//! gateway repairs message gaps from the store by seq (gateway/connection/writer.rs).
//!
//! # Order
//!
//! The stream and the core subscription are each ordered per publisher (one connection
//! per node, so NATS keeps its order); `subscribe()` merges the two, so a typing frame may
//! overtake a message published just before it, but stored events (messages, edits,
//! membership, session ends) never overtake each other. A node's own events come back
//! through NATS like everyone else's, so every node sees one order.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::memory::MemoryBus;
use super::{Audience, Bus, BusError, Class, Event, EventStream};

/// Tuning for [`NatsBus`]; the defaults suit a deployment.
#[derive(Debug, Clone)]
pub struct NatsBusOptions {
    /// How long the stream keeps events (how far behind a node may fall and still catch
    /// up from the stream rather than the store). Default 24 h.
    pub stream_max_age: Duration,
    /// The stream's size limit; the oldest events go first. Default 1 GiB.
    pub stream_max_bytes: i64,
    /// How long JetStream remembers a `Nats-Msg-Id` for de-duplication. Default 2 min.
    pub duplicate_window: Duration,
    /// Events buffered per local subscriber before it skips (as `MemoryBus`). Default 65 536.
    pub local_capacity: usize,
    /// How long to wait for the first connection. Default 5 s.
    pub connect_timeout: Duration,
}

impl Default for NatsBusOptions {
    fn default() -> Self {
        Self {
            stream_max_age: Duration::from_secs(24 * 3600),
            stream_max_bytes: 1 << 30,
            duplicate_window: Duration::from_secs(120),
            local_capacity: 65_536,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Attempts at a stored publish before it is given up (de-duplication makes retries safe).
const PUBLISH_ATTEMPTS: u32 = 3;
/// Stored publishes whose acks are awaited in the background before `publish` waits.
const ACK_QUEUE: usize = 8192;

/// A stored publish whose acknowledgement is still to come.
struct PendingAck {
    subject: String,
    msg_id: String,
    payload: Bytes,
    ack: PublishAckFuture,
}

/// Where an event goes and how.
struct Route {
    subject: String,
    /// `Some(Nats-Msg-Id)` for the stream; `None` for core NATS.
    msg_id: Option<String>,
    /// Wait for JetStream's ack before `publish` returns: for the rare control events a
    /// node must not silently lose (the routing table, session ends).
    confirm: bool,
}

/// The `Bus` of a cluster: NATS JetStream plus core NATS.
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    root: String,
    stream_name: String,
    /// What this node's subscribers read; fed by the two pump tasks.
    local: Arc<MemoryBus>,
    acks: mpsc::Sender<PendingAck>,
    tasks: Vec<JoinHandle<()>>,
}

/// A prefix is one subject token and part of a stream name: letters, digits, `-`, `_`.
fn validate_prefix(prefix: &str) -> Result<(), BusError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(BusError::Config(format!(
            "NATS prefix {prefix:?} must be 1-64 letters, digits, '-' or '_'"
        )))
    }
}

fn unavailable(err: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(err.to_string())
}

impl NatsBus {
    /// Connects with the default options; see [`NatsBus::connect_with`].
    pub async fn connect(url: &str, prefix: &str) -> Result<NatsBus, BusError> {
        Self::connect_with(url, prefix, NatsBusOptions::default()).await
    }

    /// Connects to NATS at `url`, creates (or reuses) the stream for `prefix`, and starts
    /// consuming: every event published after this returns reaches `subscribe()`.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        options: NatsBusOptions,
    ) -> Result<NatsBus, BusError> {
        validate_prefix(prefix)?;
        let root = format!("palaver.{prefix}");
        let client = async_nats::ConnectOptions::new()
            .name("palaver")
            .connection_timeout(options.connect_timeout)
            .connect(url)
            .await
            .map_err(unavailable)?;
        let js = jetstream::new(client.clone());
        let stream_name = format!("PALAVER_{prefix}");
        let config = stream::Config {
            name: stream_name.clone(),
            subjects: vec![format!("{root}.s.>")],
            max_age: options.stream_max_age,
            max_bytes: options.stream_max_bytes,
            duplicate_window: options.duplicate_window,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        };
        // A create can fail for a moment: nats-server 2.9 removes an account's stream
        // directory when its last stream is deleted, and a create racing that fails
        // (JetStream error 10049). A starting node tries a few times before giving up.
        let mut attempt = 0;
        let stream = loop {
            match js.get_or_create_stream(config.clone()).await {
                Ok(stream) => break stream,
                Err(err) if attempt < 4 => {
                    attempt += 1;
                    tracing::warn!(%err, attempt, "creating the JetStream stream failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(err) => return Err(unavailable(err)),
            }
        };

        let local = Arc::new(MemoryBus::new(options.local_capacity));
        let ephemeral = client
            .subscribe(format!("{root}.e.>"))
            .await
            .map_err(unavailable)?;
        let durable = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                filter_subject: format!("{root}.s.>"),
                deliver_policy: DeliverPolicy::New,
                description: Some("palaver node fan-out".into()),
                ..Default::default()
            })
            .await
            .map_err(unavailable)?
            .messages()
            .await
            .map_err(unavailable)?;
        // The server has both subscriptions once the flush returns, so nothing published
        // after `connect` returns can be missed.
        client.flush().await.map_err(unavailable)?;

        let (acks, pending) = mpsc::channel(ACK_QUEUE);
        let tasks = vec![
            tokio::spawn(pump_durable(durable, local.clone())),
            tokio::spawn(pump_ephemeral(ephemeral, local.clone())),
            tokio::spawn(confirm_acks(js.clone(), pending)),
        ];
        Ok(NatsBus {
            client,
            js,
            root,
            stream_name,
            local,
            acks,
            tasks,
        })
    }

    /// The JetStream stream this bus stores events in.
    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    /// Deletes this prefix's stream: for tests and for retiring a deployment, never while
    /// nodes run.
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        self.js
            .delete_stream(&self.stream_name)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    fn route(&self, event: &Event, payload: &[u8]) -> Route {
        let root = &self.root;
        match event {
            Event::Deliver(d) => {
                let scope = match &d.audience {
                    Audience::Room(room) => format!("room.{room}"),
                    Audience::Users(_) => "users".to_owned(),
                    Audience::PeersOf(user) => format!("peers.{user}"),
                    Audience::Joined { room, .. } => format!("room.{room}"),
                };
                let (leaf, msg_id) = match (d.class, d.room_seq) {
                    (Class::Ephemeral, _) => {
                        return Route {
                            subject: format!("{root}.e.{scope}"),
                            msg_id: None,
                            confirm: false,
                        };
                    }
                    (_, Some((room, seq))) => ("msg", format!("m:{room}:{seq}")),
                    (Class::Change, None) => ("evt", content_id(payload)),
                    // A state may repeat an earlier one on purpose: de-duplicate only our
                    // own retries.
                    (Class::State, None) => ("evt", format!("u:{}", Uuid::now_v7())),
                };
                Route {
                    subject: format!("{root}.s.{scope}.{leaf}"),
                    msg_id: Some(msg_id),
                    confirm: false,
                }
            }
            Event::Membership { room_id, .. } => Route {
                subject: format!("{root}.s.ctl.membership.{room_id}"),
                msg_id: Some(format!("u:{}", Uuid::now_v7())),
                confirm: true,
            },
            Event::Block { blocker, .. } => Route {
                subject: format!("{root}.s.ctl.block.{blocker}"),
                msg_id: Some(format!("u:{}", Uuid::now_v7())),
                confirm: true,
            },
            Event::EndSession { session_id } => Route {
                subject: format!("{root}.s.ctl.session.{session_id}"),
                // Ending a session twice is ending it once.
                msg_id: Some(format!("e:{session_id}")),
                confirm: true,
            },
        }
    }
}

/// A de-duplication id from the event's bytes.
fn content_id(payload: &[u8]) -> String {
    let digest = Sha256::digest(payload);
    format!("c:{}", hex::encode(&digest[..16]))
}

impl Drop for NatsBus {
    fn drop(&mut self) {
        // The pumps hold the local channel open; stopping them ends subscribers' streams,
        // as dropping a MemoryBus would.
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Publishes to the stream until JetStream acknowledges it, or the attempts run out.
async fn publish_confirmed(
    js: &jetstream::Context,
    subject: &str,
    msg_id: &str,
    payload: &Bytes,
    first: Option<PublishAckFuture>,
) -> Result<(), BusError> {
    let mut last_err = String::new();
    let mut in_flight = first;
    for attempt in 0..PUBLISH_ATTEMPTS {
        let ack = match in_flight.take() {
            Some(ack) => ack,
            None => {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                let message = PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(msg_id);
                match js.send_publish(subject.to_owned(), message).await {
                    Ok(ack) => ack,
                    Err(err) => {
                        last_err = err.to_string();
                        continue;
                    }
                }
            }
        };
        match ack.await {
            Ok(_) => return Ok(()),
            Err(err) => last_err = err.to_string(),
        }
    }
    metrics::counter!(crate::telemetry::metric::BUS_PUBLISH_FAILURES).increment(1);
    Err(BusError::Unavailable(format!(
        "JetStream did not store {msg_id} on {subject}: {last_err}"
    )))
}

/// Awaits stored publishes' acks in order, retrying (same `Nats-Msg-Id`) what failed.
async fn confirm_acks(js: jetstream::Context, mut pending: mpsc::Receiver<PendingAck>) {
    while let Some(p) = pending.recv().await {
        if let Err(err) =
            publish_confirmed(&js, &p.subject, &p.msg_id, &p.payload, Some(p.ack)).await
        {
            // The store has it; connections repair the gap from there.
            tracing::error!(%err, "bus event lost");
        }
    }
}

/// Hands a received event to local subscribers.
async fn forward(local: &MemoryBus, payload: &[u8]) {
    match serde_json::from_slice::<Event>(payload) {
        Ok(event) => {
            let _ = local.publish(event).await;
        }
        Err(err) => {
            // Another version's event, or garbage on our subjects: skip, never stop.
            metrics::counter!("palaver_bus_undecodable_total").increment(1);
            tracing::warn!(%err, "undecodable bus event");
        }
    }
}

async fn pump_durable(mut messages: push::Ordered, local: Arc<MemoryBus>) {
    while let Some(item) = messages.next().await {
        match item {
            Ok(message) => forward(&local, &message.payload).await,
            // The ordered consumer recreates itself after these; keep reading.
            Err(err) => tracing::warn!(%err, "bus stream consumer"),
        }
    }
    tracing::error!("bus stream consumer ended; this node no longer receives stored events");
}

async fn pump_ephemeral(mut subscriber: async_nats::Subscriber, local: Arc<MemoryBus>) {
    while let Some(message) = subscriber.next().await {
        forward(&local, &message.payload).await;
    }
    tracing::error!("bus subscription ended; this node no longer receives ephemeral events");
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, event: Event) -> Result<(), BusError> {
        let payload = Bytes::from(serde_json::to_vec(&event)?);
        let route = self.route(&event, &payload);
        let Some(msg_id) = route.msg_id else {
            return self
                .client
                .publish(route.subject, payload)
                .await
                .map_err(unavailable);
        };
        if route.confirm {
            return publish_confirmed(&self.js, &route.subject, &msg_id, &payload, None).await;
        }
        let message = PublishMessage::build()
            .payload(payload.clone())
            .message_id(&msg_id);
        let ack = match self.js.send_publish(route.subject.clone(), message).await {
            Ok(ack) => ack,
            // Could not even hand it over: retry in line, so the order holds.
            Err(_) => {
                return publish_confirmed(&self.js, &route.subject, &msg_id, &payload, None).await;
            }
        };
        // Acks are awaited elsewhere so that a burst of messages costs one round trip, not
        // one each; a full queue slows the publisher down instead of growing.
        self.acks
            .send(PendingAck {
                subject: route.subject,
                msg_id,
                payload,
                ack,
            })
            .await
            .map_err(|_| BusError::Closed)
    }

    fn subscribe(&self) -> EventStream {
        self.local.subscribe()
    }

    /// Connected, and JetStream answers for this deployment's stream (a round trip: the
    /// connection state alone lags a server that stopped answering).
    async fn ping(&self) -> Result<(), BusError> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(BusError::Unavailable("not connected to NATS".into()));
        }
        self.js
            .get_stream(&self.stream_name)
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_single_tokens() {
        assert!(validate_prefix("test-1_a").is_ok());
        for bad in ["", "a.b", "a*", ">", "a b", &"x".repeat(65)] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn events_round_trip_with_raw_frames() {
        let room = Uuid::now_v7();
        let frame = Bytes::from_static(br#"{"type":"typing","active":true}"#);
        let event = Event::Deliver(super::super::Delivery {
            audience: Audience::Room(room),
            frame: frame.clone(),
            room_seq: Some((room, 7)),
            exclude_conn: None,
            class: Class::Ephemeral,
        });
        let json = serde_json::to_string(&event).expect("serialize");
        assert!(
            json.contains(r#""frame":{"type":"typing","active":true}"#),
            "{json}"
        );
        match serde_json::from_str::<Event>(&json).expect("parse") {
            Event::Deliver(d) => {
                assert_eq!(d.frame, frame);
                assert_eq!(d.room_seq, Some((room, 7)));
                assert_eq!(d.audience, Audience::Room(room));
                assert_eq!(d.class, Class::Ephemeral);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
