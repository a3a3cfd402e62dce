//! Durable storage: the source of truth for accounts, rooms, messages and receipts.
//!
//! `Store` is the one interface; each engine is a module (`sqlite` embedded, `postgres`
//! for clusters). The service layer holds the rules; a store only keeps what it is given,
//! atomically, and enforces the invariants that must hold whatever happens above it (one
//! seq per room position, one message per idempotency key, one 1:1 room per pair).

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use palaver_proto::{Message, NotificationPreview, ReceiptKind, Role, User};
use uuid::Uuid;

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

/// A user with the secret needed to log in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// A room's own row, without its members.
#[derive(Debug, Clone)]
pub struct RoomRow {
    pub id: Uuid,
    pub name: String,
    pub is_group: bool,
    pub created_at_ms: i64,
    pub last_seq: i64,
    pub last_activity_ms: i64,
}

/// A member of a room with their names and receipt markers.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub joined_at_ms: i64,
    pub delivered_seq: i64,
    pub read_seq: i64,
}

/// A room as seen by one member: its row, that member's read marker and unread count.
#[derive(Debug, Clone)]
pub struct MyRoomRow {
    pub room: RoomRow,
    pub read_seq: i64,
    pub unread: i64,
}

/// A new room with its first members.
#[derive(Debug, Clone)]
pub struct NewRoom {
    pub id: Uuid,
    pub name: String,
    pub is_group: bool,
    /// Set for 1:1 rooms: the pair's key, unique across rooms.
    pub direct_key: Option<String>,
    pub members: Vec<(Uuid, Role)>,
    pub now_ms: i64,
}

/// A message to append; the store gives it the room's next seq.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: Uuid,
    pub room_id: Uuid,
    pub sender_id: Uuid,
    pub client_msg_id: String,
    pub kind: palaver_proto::MessageType,
    pub content: String,
    pub media_id: Option<Uuid>,
    /// What `media_id` names, copied into the stored message's answer.
    pub media: Option<palaver_proto::Media>,
    pub now_ms: i64,
}

/// An uploaded file's record; its bytes live in the media store under `sha256`.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRow {
    pub id: Uuid,
    pub uploader_id: Uuid,
    /// Hex SHA-256 of the stored bytes, which is also their key in the media store.
    pub sha256: String,
    pub kind: palaver_proto::MessageType,
    pub mime_type: String,
    pub size: u64,
    pub filename: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The thumbnail's key and type, for images.
    pub thumb_sha256: Option<String>,
    pub thumb_mime: Option<String>,
    pub created_at_ms: i64,
}

/// The outcome of one append in a batch.
#[derive(Debug, Clone)]
pub enum Appended {
    /// Stored now, with its seq.
    New(Message),
    /// The idempotency key was used before: the message stored then.
    Duplicate(Message),
    /// The sender is not a member of the room (checked inside the transaction).
    NotMember,
}

/// The outcome of refreshing: which session, and whether the token was fresh.
#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    /// The old token is retired and the new one stored.
    Rotated { session_id: Uuid, user_id: Uuid },
    /// The token had been used before: the session has now been revoked.
    Reused { session_id: Uuid, user_id: Uuid },
    /// Unknown, expired, or its session is revoked.
    Invalid,
}

/// A receipt marker that moved, with the room-wide minimums before and after.
#[derive(Debug, Clone, Copy)]
pub struct MarkerMove {
    /// The marker's value now (it never moves back, and never past the room's last seq).
    pub seq: i64,
    /// Whether this call moved it.
    pub moved: bool,
    /// (min delivered, min read) over all members, before and after.
    pub summary_before: (i64, i64),
    pub summary_after: (i64, i64),
}

/// One security-relevant event for the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: Option<Uuid>,
    pub action: &'static str,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// A Web Push subscription with its keys.
#[derive(Debug, Clone)]
pub struct PushSubscriptionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub endpoint: String,
    /// The browser's P-256 public key, 65 bytes uncompressed.
    pub p256dh: Vec<u8>,
    /// The 16-byte authentication secret.
    pub auth: Vec<u8>,
    pub created_at_ms: i64,
}

/// What deciding on one notification needs to know about a member of a room.
#[derive(Debug, Clone, Copy)]
pub struct PushTarget {
    pub delivered_seq: i64,
    pub muted: bool,
    pub preview: NotificationPreview,
}

/// Durable storage. Every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;

    // --- users
    /// Stores a new user; `Conflict` if the username is taken.
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()>;
    async fn user(&self, id: Uuid) -> StoreResult<Option<User>>;
    async fn users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>>;
    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>>;
    /// Users whose username or display name starts with `prefix` (case-insensitive).
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>>;
    async fn set_display_name(&self, id: Uuid, name: &str) -> StoreResult<()>;
    async fn set_last_seen(&self, id: Uuid, at_ms: i64) -> StoreResult<()>;
    async fn last_seen(&self, id: Uuid) -> StoreResult<Option<i64>>;

    // --- sessions
    async fn create_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        refresh_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()>;
    async fn rotate_refresh(
        &self,
        old_hash: &[u8],
        new_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> StoreResult<RefreshOutcome>;
    /// Ends a session; returns its user if it existed and was live.
    async fn revoke_session(&self, session_id: Uuid, now_ms: i64) -> StoreResult<Option<Uuid>>;
    /// The session (and its user) a refresh token belongs to, if the token is known.
    async fn session_of_refresh(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>>;
    /// Sessions revoked since `since_ms` (their access tokens may still be unexpired).
    async fn revoked_sessions_since(&self, since_ms: i64) -> StoreResult<Vec<Uuid>>;

    // --- rooms
    /// Creates a room, or for a 1:1 room whose pair already has one returns that
    /// room's id and `false`.
    async fn create_room(&self, room: &NewRoom) -> StoreResult<(Uuid, bool)>;
    async fn room(&self, id: Uuid) -> StoreResult<Option<RoomRow>>;
    /// The user's rooms (or just `only`, if given), most recently active first.
    async fn rooms_of(&self, user: Uuid, only: Option<Uuid>) -> StoreResult<Vec<MyRoomRow>>;
    async fn members(&self, room: Uuid) -> StoreResult<Vec<MemberRow>>;
    /// Adds members (existing ones are left as they are); returns those added. New
    /// members' markers start at the room's last seq.
    async fn add_members(
        &self,
        room: Uuid,
        members: &[(Uuid, Role)],
        now_ms: i64,
    ) -> StoreResult<Vec<Uuid>>;
    /// Removes a member, and in the same transaction makes `heir` the owner (when the
    /// owner leaves); returns whether they were a member.
    async fn remove_member(&self, room: Uuid, user: Uuid, heir: Option<Uuid>) -> StoreResult<bool>;
    /// Sets several roles in one transaction (e.g. handing ownership over).
    async fn set_roles(&self, room: Uuid, roles: &[(Uuid, Role)]) -> StoreResult<()>;
    async fn rename_room(&self, room: Uuid, name: &str) -> StoreResult<()>;
    /// Every (room, user) membership, to build the in-memory routing table at start-up.
    async fn all_memberships(&self) -> StoreResult<Vec<(Uuid, Uuid)>>;

    // --- messages
    /// Appends messages in one transaction (group commit): each gets its room's next
    /// seq, unless its idempotency key was seen, or its sender is not a member. Nothing
    /// is returned before the transaction is durable.
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>>;
    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>>;
    /// Replaces the content; returns the updated message.
    async fn edit_message(&self, id: Uuid, content: &str, now_ms: i64) -> StoreResult<Message>;
    /// Blanks the content and marks it deleted; returns the updated message.
    async fn delete_message(&self, id: Uuid, now_ms: i64) -> StoreResult<Message>;
    /// Messages with `after < seq < before`, at most `limit`, ascending; `newest` picks the
    /// page next to `before` (otherwise the page next to `after`).
    async fn messages(
        &self,
        room: Uuid,
        after: i64,
        before: i64,
        limit: u32,
        newest: bool,
    ) -> StoreResult<Vec<Message>>;

    // --- media
    async fn insert_media(&self, media: &MediaRow) -> StoreResult<()>;
    async fn media(&self, id: Uuid) -> StoreResult<Option<MediaRow>>;
    async fn media_many(&self, ids: &[Uuid]) -> StoreResult<Vec<MediaRow>>;
    /// Rooms with a (not deleted) message carrying this media.
    async fn media_rooms(&self, id: Uuid) -> StoreResult<Vec<Uuid>>;
    /// Deletes one record (an upload whose bytes could not be stored).
    async fn delete_media(&self, id: Uuid) -> StoreResult<()>;
    /// Deletes records created before `before_ms` that no message carries; returns them.
    async fn delete_orphan_media(&self, before_ms: i64) -> StoreResult<Vec<MediaRow>>;
    /// Whether any record still uses these bytes (as file or thumbnail).
    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool>;

    // --- receipts
    /// Moves a member's marker forward to `seq` (clamped to the room's last seq).
    async fn advance_marker(
        &self,
        room: Uuid,
        user: Uuid,
        kind: ReceiptKind,
        seq: i64,
    ) -> StoreResult<Option<MarkerMove>>;
    /// (min delivered, min read) over the room's members.
    async fn summary(&self, room: Uuid) -> StoreResult<(i64, i64)>;

    // --- audit
    async fn audit(&self, entry: AuditEntry, now_ms: i64) -> StoreResult<()>;
    /// The newest audit entries, for operators and tests.
    async fn audit_tail(
        &self,
        limit: u32,
    ) -> StoreResult<Vec<(i64, Option<Uuid>, String, Option<String>)>>;

    // --- push ---
    /// Stores a subscription, or updates the one with the same endpoint (keys and owner
    /// from `sub`, id and creation time kept); returns the stored row and whether it is new.
    async fn upsert_push_subscription(
        &self,
        sub: &PushSubscriptionRow,
    ) -> StoreResult<(PushSubscriptionRow, bool)>;
    /// The user's subscriptions, oldest first.
    async fn push_subscriptions(&self, user: Uuid) -> StoreResult<Vec<PushSubscriptionRow>>;
    /// Deletes a subscription (only if it is `owner`'s, when given); whether it existed.
    async fn delete_push_subscription(&self, id: Uuid, owner: Option<Uuid>) -> StoreResult<bool>;
    /// Mutes or unmutes a room for a member; false if they are not a member.
    async fn set_room_muted(&self, room: Uuid, user: Uuid, muted: bool) -> StoreResult<bool>;
    /// The user's preview setting and muted rooms.
    async fn push_settings(&self, user: Uuid) -> StoreResult<(NotificationPreview, Vec<Uuid>)>;
    async fn set_notification_preview(
        &self,
        user: Uuid,
        preview: NotificationPreview,
    ) -> StoreResult<()>;
    /// The member's delivered marker, mute and preview; `None` if not a member.
    async fn push_target(&self, room: Uuid, user: Uuid) -> StoreResult<Option<PushTarget>>;
}
