//! Search, for both engines. What goes into the index is `tokens::index_tokens`, for
//! both; how it is stored and read is each engine's (`sqlite/search.rs`: an FTS5 table;
//! `postgres/search.rs`: a GIN-indexed token array), through [`SearchIndex`], which the
//! transactions that store or change messages call, and `Engine::search_messages`.

use async_trait::async_trait;
use palaver_proto::Message;

use super::{Engine, SqlStore};
use crate::store::tokens::index_tokens;
use crate::store::{IndexQuery, SearchBatch, SearchStore, StoreResult};

#[async_trait]
impl<P: Engine> SearchStore for SqlStore<P> {
    async fn search_messages(&self, query: &IndexQuery<'_>) -> StoreResult<SearchBatch> {
        if query.tokens.is_empty() || query.rooms.is_empty() || query.window == 0 {
            return Ok(SearchBatch::default());
        }
        self.read.search_messages(query).await
    }
}

/// Keeping the index in step, inside the transaction that changes the messages:
/// implemented by each engine's connection type, which says how it stores.
#[async_trait]
pub(in crate::store) trait SearchIndex {
    /// Indexes messages stored in this transaction, by their content.
    async fn index(&mut self, messages: &[&Message]) -> StoreResult<()>;
    /// Removes a message from the index (it may not be there: no tokens, or deleted).
    async fn unindex(&mut self, message: &Message) -> StoreResult<()>;
}

/// The messages that have something to index, with their tokens joined by spaces (no
/// token holds one): what both engines' inserts take.
pub(in crate::store) fn tokenized<'a>(messages: &[&'a Message]) -> Vec<(&'a Message, String)> {
    messages
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| (*m, index_tokens(&m.content).join(" ")))
        .filter(|(_, tokens)| !tokens.is_empty())
        .collect()
}

/// A message's index entry after its content changed (an edit): the old one out, the new
/// one in.
pub(in crate::store) async fn reindex<C: SearchIndex + Send>(
    conn: &mut C,
    message: &Message,
) -> StoreResult<()> {
    conn.unindex(message).await?;
    conn.index(&[message]).await
}
