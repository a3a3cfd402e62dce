//! Fan-out between nodes: whatever one node stores, every node hears about, so each can
//! push it to the connections it holds.
//!
//! The bus only carries what is already durable (the database is the source of truth);
//! a connection that sees a gap in a room's seq repairs it from the store.

pub mod memory;

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use uuid::Uuid;

/// Who a delivery is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every member of the room.
    Room(Uuid),
    /// These users (all their connections).
    Users(Vec<Uuid>),
    /// Everyone who shares a room with this user, but not the user.
    PeersOf(Uuid),
}

/// A frame to push to live connections, serialized once for all of them.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub audience: Audience,
    /// The JSON text of one server frame.
    pub frame: Bytes,
    /// For a new message: its room and seq, so connections can drop duplicates and
    /// repair gaps.
    pub room_seq: Option<(Uuid, i64)>,
    /// The connection that caused it (it already has the answer).
    pub exclude_conn: Option<Uuid>,
}

/// What travels on the bus.
#[derive(Debug, Clone)]
pub enum Event {
    Deliver(Delivery),
    /// Membership changed: every node updates its routing table before delivering more.
    /// `origin` is the node that already applied it.
    Membership {
        origin: Uuid,
        room_id: Uuid,
        added: Vec<Uuid>,
        removed: Vec<Uuid>,
    },
    /// A session ended (logout, token theft): close its sockets everywhere.
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
}
