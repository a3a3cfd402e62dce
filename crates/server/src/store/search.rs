//! Message search: the index (filled by both engines in the transaction that stores or
//! changes a message) and the reading of it. What a token is lives in `tokens.rs`; who
//! may find what, paging and the phrase check live in the service.

use async_trait::async_trait;
use palaver_proto::Message;
use uuid::Uuid;

use super::StoreResult;

/// One look into the index.
#[derive(Debug, Clone)]
pub struct IndexQuery<'a> {
    /// A match holds every one of these tokens (`tokens::query`); at least one.
    pub tokens: &'a [String],
    /// Only messages of these rooms.
    pub rooms: &'a [Uuid],
    /// Only messages older than this one (in the engine's order: see [`SearchStore`]).
    pub before: Option<Uuid>,
    /// How many index entries to examine, newest first, at most: the bound on the work
    /// of one call, whatever the tokens and rooms. SQLite counts every room's entries
    /// (it reads its FTS index first, then the messages); PostgreSQL only those of
    /// `rooms` (its index rows carry the room).
    pub window: u32,
    /// How many messages to answer, at most.
    pub limit: u32,
}

/// What one look found.
#[derive(Debug, Clone, Default)]
pub struct SearchBatch {
    /// The matches among the entries examined that are in the rooms asked for and not
    /// deleted, newest first.
    pub messages: Vec<Message>,
    /// Where to go on from, as `before`, when older matches may exist: the last message
    /// answered when `limit` was reached, else the oldest entry examined when the window
    /// was full (whichever room it is in: for the service, never for a client). `None`
    /// when the index holds nothing older that matches.
    pub resume: Option<Uuid>,
}

/// The search index. Every method is one transaction.
///
/// Newest first means by id (UUID v7, so by time) on PostgreSQL, and by the order the
/// messages were stored on SQLite (its FTS index is keyed by the message's rowid), which
/// is the same except between sends that race within a millisecond; each engine pages in
/// its own order, so a page never repeats or skips a match.
#[async_trait]
pub trait SearchStore: Send + Sync + 'static {
    /// Examines at most `query.window` index entries matching all tokens, newest first,
    /// older than `before`; answers those in `rooms` and not deleted, at most `limit`.
    async fn search_messages(&self, query: &IndexQuery<'_>) -> StoreResult<SearchBatch>;
}
