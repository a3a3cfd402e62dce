//! Durable storage: the source of truth for accounts, rooms, messages and receipts.
//!
//! The interface is one trait per area (accounts, rooms, messages, conversations,
//! receipts, media records, pictures, link previews, push, audit, search, second factors,
//! the MLS directory), each in its own module with its types, gathered under `Store`,
//! which is what the service holds. The service layer holds the rules; a store only keeps
//! what it is given, atomically, and enforces the invariants that must hold whatever
//! happens above it (one seq per room position, one message per idempotency key, one 1:1
//! room per pair, receipt markers that only move up and never past the room's last seq).
//!
//! There is one implementation, `SqlStore` (`sql/`), with every statement written once
//! for both engines; each engine's module (`sqlite` embedded, `postgres` for clusters)
//! opens its pools and holds only what its dialect or driver does differently.

mod accounts;
mod admin;
mod audit;
mod blocks;
mod conversation;
mod media;
mod messages;
pub mod mls;
mod personal;
mod pictures;
pub mod postgres;
mod previews;
mod push;
mod receipts;
mod reports;
mod rooms;
mod search;
mod second_factor;
mod sql;
pub mod sqlite;
pub mod tokens;

use async_trait::async_trait;

pub use accounts::{AccountStore, Credentials, RefreshOutcome};
pub use admin::{Account, AccountFilter, AdminRoomRow, AdminStore};
pub use audit::{AuditEntry, AuditFilter, AuditRecord, AuditStore};
pub use blocks::{Block, BlockRow, BlockStore};
pub use conversation::{Changed, ConversationStore, Reacting, ReactionRow, Toggled};
pub use media::{MediaRecordStore, MediaRow};
pub use messages::{Appended, MessageStore, NewMessage, SeqOrder};
pub use mls::MlsStore;
pub use personal::{OwnReaction, PersonalStore, Tombstoned};
pub use pictures::{Picture, PictureStore};
pub use previews::{CacheEntry, MessagePreview, PreviewRow, PreviewStore};
pub use push::{PushStore, PushSubscriptionRow, PushTarget, Subscribed};
pub use receipts::{MarkerMove, Markers, ReceiptStore};
pub use reports::{BanRow, MuteRow, ReportRow, ReportStore, SanctionStore};
pub use rooms::{MemberRow, MembershipRow, MyRoomRow, NewMember, NewRoom, RoomRow, RoomStore};
pub use search::{IndexQuery, SearchBatch, SearchStore};
pub use second_factor::{SecondFactorStore, SsoFlow, TotpFactor};
pub use sql::SqlStore;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row an operation changes is not there.
    #[error("{0} not found")]
    NotFound(Entity),
    /// A uniqueness rule refused the write.
    #[error("conflict: {0} already taken")]
    Conflict(Constraint),
    /// The database could not be reached or did not answer in time (no free connection
    /// within the acquire timeout, a closed pool, a broken connection).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Migrations failed at start-up.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back (corruption or a schema mismatch).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A value or setting the store cannot take (a schema name that would need quoting,
    /// a size beyond what the column holds).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database file and the at-rest key do not go together (a wrong key, a key for
    /// a database that is not encrypted, an encrypted one and no key). Nothing was written.
    #[error("{0}")]
    Key(String),
}

impl From<sqlx::Error> for StoreError {
    /// Sorts the driver's errors into "could not talk to the database" and the rest.
    fn from(err: sqlx::Error) -> Self {
        use sqlx::Error::*;
        if matches!(
            err,
            PoolTimedOut | PoolClosed | Io(_) | Tls(_) | WorkerCrashed
        ) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Database(err)
        }
    }
}

/// What a `NotFound` was looking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User,
    Room,
    Message,
    Report,
    Device,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::User => "user",
            Entity::Room => "room",
            Entity::Message => "message",
            Entity::Report => "report",
            Entity::Device => "device",
        })
    }
}

/// Which uniqueness rule a `Conflict` broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    /// Usernames are unique (case-insensitively: they are stored lowercase).
    Username,
    /// One message per (room, sender, clientMsgId). Only a batch append that raced past
    /// its room lock meets it; the batch is retried and answered from the stored row.
    MessageIdempotencyKey,
    /// At least one enabled administrator remains.
    LastAdmin,
    /// One open report per reporter and message.
    OpenReport,
    /// An OpenID provider's user links to one account.
    SsoIdentity,
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Constraint::Username => "username",
            Constraint::MessageIdempotencyKey => "message idempotency key",
            Constraint::LastAdmin => "last administrator",
            Constraint::OpenReport => "open report",
            Constraint::SsoIdentity => "single sign-on identity",
        })
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Durable storage: every area, and a health check. Every method is one transaction.
///
/// The service holds an `Arc<dyn Store>`; the methods of every area trait can be called
/// on it directly.
#[async_trait]
pub trait Store:
    AccountStore
    + AdminStore
    + ReportStore
    + SanctionStore
    + RoomStore
    + MessageStore
    + ReceiptStore
    + MediaRecordStore
    + PushStore
    + AuditStore
    + BlockStore
    + ConversationStore
    + PictureStore
    + SearchStore
    + PreviewStore
    + PersonalStore
    + SecondFactorStore
    + MlsStore
{
    /// Cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;
    /// Closes the connections, once nothing will use the store again (the end of a
    /// graceful shutdown): SQLite's last connection checkpoints the WAL into the database
    /// file and removes it, so a stopped server leaves one file that nothing changes.
    async fn close(&self) {}
}
