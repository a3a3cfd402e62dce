//! Fan-out between nodes: whatever one node stores, every node hears about, so each can
//! push it to the connections it holds.
//!
//! The bus only carries what is already durable (the database is the source of truth);
//! a connection that sees a gap in a room's seq repairs it from the store.

pub mod memory;
pub mod nats;

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who a delivery is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Audience {
    /// Every member of the room.
    Room(Uuid),
    /// These users (all their connections).
    Users(Vec<Uuid>),
    /// Everyone who may see this user's presence (`Membership::peers_of`): joined with
    /// them in a shared room and not blocked either way; not the user.
    PeersOf(Uuid),
    /// The room's joined members (not invited ones), without anyone blocked either way
    /// with `from`: typing, receipts and receipt summaries.
    #[serde(rename_all = "camelCase")]
    Joined { room: Uuid, from: Option<Uuid> },
}

/// How a delivery travels between nodes. The service says so when it makes one (it
/// knows what it announces), so no bus engine reads the frame to decide: the embedded
/// bus ignores it, a cluster bus routes by it (`nats.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Class {
    /// Of the moment (typing, presence): worthless a second later, so never stored.
    Ephemeral,
    /// A stored change whose bytes name it (a new message, an edit, a deletion, a
    /// receipt, a summary): equal bytes are the same change, so a repeat may be dropped.
    Change,
    /// A stored announcement of a state, which may repeat an earlier one on purpose
    /// (`room.updated`): each publish counts. The default, for events from a node that
    /// did not send a class.
    #[default]
    State,
}

/// A frame to push to live connections, serialized once for all of them.
///
/// Serializable so a cluster bus can carry it between nodes; the frame travels as raw JSON
/// (not re-encoded, not base64), so it stays readable with `nats sub`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub audience: Audience,
    /// The JSON text of one server frame.
    #[serde(with = "raw_json")]
    pub frame: Bytes,
    /// For a new message: its room and seq, so connections can drop duplicates and
    /// repair gaps.
    pub room_seq: Option<(Uuid, i64)>,
    /// The connection that caused it (it already has the answer).
    pub exclude_conn: Option<Uuid>,
    /// Stored or ephemeral, and how repeats count.
    #[serde(default)]
    pub class: Class,
}

/// What travels on the bus.
///
/// Externally tagged on the wire (`{"deliver": {...}}`): an internally tagged enum would
/// buffer its content, which cannot hold the frame's raw JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Event {
    Deliver(Delivery),
    /// Membership changed: every node updates its routing table before delivering more.
    /// `origin` is the node that already applied it. `added` are joined members now (new,
    /// or invited before), `invited` are invited now; `direct` says the room is 1:1.
    #[serde(rename_all = "camelCase")]
    Membership {
        origin: Uuid,
        room_id: Uuid,
        #[serde(default)]
        direct: bool,
        added: Vec<Uuid>,
        #[serde(default)]
        invited: Vec<Uuid>,
        removed: Vec<Uuid>,
    },
    /// `blocker` blocked `blocked` (`active`) or lifted the block: every node updates its
    /// routing table, which decides who sees whose presence.
    #[serde(rename_all = "camelCase")]
    Block {
        origin: Uuid,
        blocker: Uuid,
        blocked: Uuid,
        active: bool,
    },
    /// A session ended (logout, token theft): close its sockets everywhere.
    #[serde(rename_all = "camelCase")]
    EndSession {
        session_id: Uuid,
    },
}

/// What can go wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Nobody is listening any more (the node is shutting down).
    #[error("bus closed")]
    Closed,
    /// The bus was configured wrongly (e.g. a subject prefix with dots or wildcards).
    #[error("bus configuration: {0}")]
    Config(String),
    /// The message service could not be reached, or refused a request.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// An event could not be encoded for the wire.
    #[error("bus encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Carries a frame (already JSON text) as raw JSON inside the serialized event.
mod raw_json {
    use bytes::Bytes;
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(frame: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        // Parsing validates: a frame that is not JSON must fail here, not on every node.
        let raw: &RawValue = serde_json::from_slice(frame).map_err(S::Error::custom)?;
        raw.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let raw = Box::<RawValue>::deserialize(d).map_err(D::Error::custom)?;
        // Box<RawValue> -> Box<str> -> Box<[u8]> -> Bytes: the text is not copied again.
        let text: Box<str> = raw.into();
        Ok(Bytes::from(text.into_boxed_bytes()))
    }
}

/// The stream of events a node consumes.
pub type EventStream = Pin<Box<dyn Stream<Item = Arc<Event>> + Send>>;

/// Publish/subscribe between nodes.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Hands an event to every subscriber on every node, in publish order per publisher.
    async fn publish(&self, event: Event) -> Result<(), BusError>;
    /// Every event published from now on.
    fn subscribe(&self) -> EventStream;
    /// Whether the message service answers (health checks and `palaver_engine_up`). The
    /// in-process bus always does.
    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}
