//! Messages: the group-commit append, edits, deletions and pages of history.

use async_trait::async_trait;
use palaver_proto::Message;
use uuid::Uuid;

use super::{Changed, StoreResult};

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
    /// The quoted message, as the answer shows it (only its id is stored).
    pub reply_to: Option<palaver_proto::ReplyTo>,
    pub thread_root_id: Option<Uuid>,
    pub also_in_room: bool,
    /// The members the text mentions, and whether it mentions `@room`.
    pub mentions: Vec<Uuid>,
    pub mentions_room: bool,
    /// For a room event (kind `event`), what happened.
    pub event: Option<palaver_proto::RoomEvent>,
    pub forwarded: bool,
    /// Sent by the server (a room event): stored even if the sender is no longer a
    /// member, as when they just left.
    pub system: bool,
    /// For a message of kind `mls`: what the service read of its framing, and its bytes.
    pub mls: Option<palaver_proto::MlsContent>,
    pub now_ms: i64,
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
    /// An MLS commit or proposal not made in the room's current epoch (or an application
    /// message from an epoch still to come): the epoch it must be made in.
    WrongEpoch { current: u64 },
    /// An MLS message for a plain room (`encrypted: false`), or a message from a client
    /// that is not MLS for an encrypted one (`encrypted: true`).
    EncryptionMismatch { encrypted: bool },
}

/// Which end of a range of seqs a page of messages comes from, in the order it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOrder {
    /// From the lowest seq up.
    Ascending,
    /// From the highest seq down: the newest page first.
    Descending,
}

/// Messages. Every method is one transaction.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Appends messages in one transaction (group commit): each gets its room's next
    /// seq, unless its idempotency key was seen, or its sender is not a member. Nothing
    /// is returned before the transaction is durable.
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>>;
    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>>;
    /// Replaces the content and the mentions; returns the updated message (with its new
    /// change number) and the replies quoting it, which changed with it.
    async fn edit_message(
        &self,
        id: Uuid,
        content: &str,
        mentions: &[Uuid],
        mentions_room: bool,
        now_ms: i64,
    ) -> StoreResult<Changed>;
    /// Blanks the content, marks it deleted, drops its reactions, pin and mentions;
    /// returns the updated message and the replies quoting it.
    async fn delete_message(&self, id: Uuid, now_ms: i64) -> StoreResult<Changed>;
    /// Messages with `after < seq < before`, at most `limit`: the lowest seqs of the range
    /// in ascending order, or the highest in descending order.
    async fn messages(
        &self,
        room: Uuid,
        after: i64,
        before: i64,
        limit: u32,
        order: SeqOrder,
    ) -> StoreResult<Vec<Message>>;
}
