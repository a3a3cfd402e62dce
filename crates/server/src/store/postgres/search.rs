//! PostgreSQL's search index: the table `message_search` (migration 0004), one row per
//! indexed message with its room and its tokens as a `text[]` under a GIN index, so
//! `tokens @> $query` finds the rows holding every token.
//!
//! A look takes the newest `window` ids in the rooms asked for whose tokens hold the
//! query's (the planner picks a GIN bitmap scan for rare tokens, a backwards walk of the
//! id index for common ones), then reads those messages that are not deleted. PostgreSQL
//! may still read every entry of a token before it sorts, which no LIMIT stops, so each
//! look also has a statement timeout.

use async_trait::async_trait;
use palaver_proto::Message;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::store::sql::map::{self, MESSAGE_COLUMNS};
use crate::store::sql::search::{SearchIndex, tokenized};
use crate::store::{IndexQuery, SearchBatch, StoreResult};

/// The longest one look may take; a look that takes longer fails (an internal error).
const STATEMENT_TIMEOUT_MS: u32 = 5_000;

pub(super) async fn search(pool: &PgPool, q: &IndexQuery<'_>) -> StoreResult<SearchBatch> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"
    ))
    .execute(&mut *tx)
    .await?;
    // `coalesce` rather than `$3 IS NULL OR …`: a bound the id index can use in a generic
    // plan too.
    let window: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM message_search \
         WHERE tokens @> $1::text[] AND room_id = ANY($2) \
           AND id < coalesce($3, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(q.tokens)
    .bind(q.rooms)
    .bind(q.before)
    .bind(i64::from(q.window))
    .fetch_all(&mut *tx)
    .await?;
    let Some(&floor) = window.last() else {
        return Ok(SearchBatch::default());
    };
    let rows = sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ANY($1) AND deleted_at IS NULL \
         ORDER BY id DESC LIMIT $2"
    ))
    .bind(&window)
    .bind(i64::from(q.limit))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let messages = rows
        .iter()
        .map(map::message)
        .collect::<StoreResult<Vec<Message>>>()?;
    let resume = if messages.len() >= q.limit as usize {
        messages.last().map(|m| m.id)
    } else if window.len() >= q.window as usize {
        Some(floor)
    } else {
        None
    };
    Ok(SearchBatch { messages, resume })
}

#[async_trait]
impl SearchIndex for PgConnection {
    async fn index(&mut self, messages: &[&Message]) -> StoreResult<()> {
        let entries = tokenized(messages);
        if entries.is_empty() {
            return Ok(());
        }
        // One statement whatever the count: a column per array, and each message's tokens
        // as one space-joined text split again here (UNNEST cannot take ragged arrays).
        let mut ids = Vec::with_capacity(entries.len());
        let mut rooms = Vec::with_capacity(entries.len());
        let mut tokens = Vec::with_capacity(entries.len());
        for (message, joined) in &entries {
            ids.push(message.id);
            rooms.push(message.room_id);
            tokens.push(joined.as_str());
        }
        sqlx::query(
            "INSERT INTO message_search (id, room_id, tokens) \
             SELECT u.id, u.room_id, string_to_array(u.tokens, ' ') \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS u(id, room_id, tokens)",
        )
        .bind(&ids)
        .bind(&rooms)
        .bind(&tokens)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn unindex(&mut self, message: &Message) -> StoreResult<()> {
        sqlx::query("DELETE FROM message_search WHERE id = $1")
            .bind(message.id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}
