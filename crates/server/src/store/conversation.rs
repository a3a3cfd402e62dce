//! What conversations add to messages: reactions, pins, threads, the details a page of
//! messages is completed with, and the change numbers `sync` replays from.
//!
//! Every change to a message after it was appended takes its room's next change number
//! (`rooms.version`) and leaves it on the message (`messages.version`), in the same
//! transaction; so "every message of the room changed after number N" is one range scan,
//! and a client that applied everything up to N needs exactly those.

use async_trait::async_trait;
use palaver_proto::Message;
use uuid::Uuid;

use super::StoreResult;

/// One user's reaction, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionRow {
    pub message_id: Uuid,
    pub emoji: String,
    pub user_id: Uuid,
    pub created_at_ms: i64,
}

/// Whose reaction, with which emoji, on which message of which room.
#[derive(Debug, Clone, Copy)]
pub struct Reacting<'a> {
    pub room: Uuid,
    pub message: Uuid,
    pub user: Uuid,
    pub emoji: &'a str,
}

/// What a reaction or pin request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggled {
    /// The message changed and took this change number.
    Changed(i64),
    /// It was already so: nothing changed.
    Unchanged,
    /// Refused: the message already carries as many as it may (distinct emojis, or the
    /// room's pins).
    Full,
    /// No such message in that room, or it is deleted.
    Missing,
}

/// A message that changed, and the replies quoting it, which show it and so changed too.
#[derive(Debug, Clone)]
pub struct Changed {
    pub message: Message,
    pub replies: Vec<Uuid>,
}

/// Reactions, pins, threads and change numbers. Every method is one transaction.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// The messages with these ids, in no particular order (unknown ids are skipped).
    async fn messages_with_ids(&self, ids: &[Uuid]) -> StoreResult<Vec<Message>>;
    /// The reactions on these messages, oldest first.
    async fn reactions_of(&self, messages: &[Uuid]) -> StoreResult<Vec<ReactionRow>>;
    /// Who replied in a thread, by their first reply, at most `limit`.
    async fn thread_participants(&self, root: Uuid, limit: u32) -> StoreResult<Vec<Uuid>>;
    /// Adds (`add`) or removes a reaction. A new emoji on a message that already carries
    /// `max_emojis` distinct ones is `Full`.
    async fn set_reaction(
        &self,
        reaction: Reacting<'_>,
        add: bool,
        max_emojis: u32,
        now_ms: i64,
    ) -> StoreResult<Toggled>;
    /// Pins (`Some(by)`) or unpins a message of `room`; a room holds at most `max_pins`.
    async fn set_pinned(
        &self,
        room: Uuid,
        message: Uuid,
        by: Option<Uuid>,
        max_pins: u32,
        now_ms: i64,
    ) -> StoreResult<Toggled>;
    /// The room's pinned messages, the most recently pinned first.
    async fn pins(&self, room: Uuid) -> StoreResult<Vec<Message>>;
    /// A thread's replies with `seq > after`, ascending, at most `limit`.
    async fn thread(&self, root: Uuid, after: i64, limit: u32) -> StoreResult<Vec<Message>>;
    /// The room's messages with `seq <= max_seq` changed after change number `after`, in
    /// the order of their changes, at most `limit`.
    async fn changed_messages(
        &self,
        room: Uuid,
        after: i64,
        max_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
}
