//! Durable storage: the source of truth for accounts, rooms, messages and receipts.
//!
//! The interface is one trait per area (accounts, rooms, messages, receipts, media
//! records, push, audit), each in its own module with its types, gathered under `Store`,
//! which is what the service holds. Each engine is a module (`sqlite` embedded,
//! `postgres` for clusters). The service layer holds the rules; a store only keeps what
//! it is given, atomically, and enforces the invariants that must hold whatever happens
//! above it (one seq per room position, one message per idempotency key, one 1:1 room per
//! pair).

mod accounts;
mod audit;
mod media;
mod messages;
pub mod postgres;
mod push;
mod receipts;
mod rooms;
pub mod sqlite;

use async_trait::async_trait;

pub use accounts::{AccountStore, Credentials, RefreshOutcome};
pub use audit::{AuditEntry, AuditStore};
pub use media::{MediaRecordStore, MediaRow};
pub use messages::{Appended, MessageStore, NewMessage};
pub use push::{PushStore, PushSubscriptionRow, PushTarget};
pub use receipts::{MarkerMove, ReceiptStore};
pub use rooms::{MemberRow, MyRoomRow, NewRoom, RoomRow, RoomStore};

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. a taken username).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The row the operation needs is not there.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The engine failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed at start-up.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back (corruption or a schema mismatch).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Durable storage: every area, and a health check. Every method is one transaction.
///
/// The service holds an `Arc<dyn Store>`; the methods of every area trait can be called
/// on it directly.
#[async_trait]
pub trait Store:
    AccountStore + RoomStore + MessageStore + ReceiptStore + MediaRecordStore + PushStore + AuditStore
{
    /// Cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;
}
