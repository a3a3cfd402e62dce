//! SQLite's search index: the FTS5 table `message_search` (migration 0007), whose rowid is
//! the message's rowid. It keeps only the index (`content=''`), can still forget a row
//! (`contentless_delete=1`), holds no positions (`detail=none`: phrases are the service's
//! check) and splits only where the tokens were joined (`tokenize='ascii'`: no token holds
//! ASCII punctuation or a space).
//!
//! A look takes the newest `window` rowids whose entries hold every token (FTS5 walks its
//! doclists from the end and stops there), then reads those of the messages that are in
//! the rooms asked for and not deleted. Rowids and rooms go in as JSON arrays, so the
//! statements are the same (and prepared once) whatever their number.

use async_trait::async_trait;
use palaver_proto::Message;
use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::ROWS_PER_STATEMENT;
use crate::store::sql::map::{self, MESSAGE_COLUMNS};
use crate::store::sql::search::{SearchIndex, tokenized};
use crate::store::{IndexQuery, SearchBatch, StoreResult};

pub(super) async fn search(read: &SqlitePool, q: &IndexQuery<'_>) -> StoreResult<SearchBatch> {
    // One read transaction: both statements see the same snapshot.
    let mut tx = read.begin().await?;
    let window: Vec<i64> = sqlx::query_scalar(
        "SELECT rowid FROM message_search WHERE message_search MATCH $1 \
           AND rowid < coalesce((SELECT rowid FROM messages WHERE id = $2), 9223372036854775807) \
         ORDER BY rowid DESC LIMIT $3",
    )
    .bind(fts_query(q.tokens))
    .bind(q.before)
    .bind(i64::from(q.window))
    .fetch_all(&mut *tx)
    .await?;
    let Some(&floor) = window.last() else {
        return Ok(SearchBatch::default());
    };
    let rows = sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages \
         WHERE rowid IN (SELECT value FROM json_each($1)) \
           AND room_id IN (SELECT unhex(value) FROM json_each($2)) AND deleted_at IS NULL \
         ORDER BY rowid DESC LIMIT $3"
    ))
    .bind(json_array(window.iter().map(i64::to_string)))
    .bind(json_array(
        q.rooms.iter().map(|r| format!("\"{}\"", r.simple())),
    ))
    .bind(i64::from(q.limit))
    .fetch_all(&mut *tx)
    .await?;
    let messages = rows
        .iter()
        .map(map::message)
        .collect::<StoreResult<Vec<Message>>>()?;
    let resume = if messages.len() >= q.limit as usize {
        messages.last().map(|m| m.id)
    } else if window.len() >= q.window as usize {
        let id: Uuid = sqlx::query_scalar("SELECT id FROM messages WHERE rowid = $1")
            .bind(floor)
            .fetch_one(&mut *tx)
            .await?;
        Some(id)
    } else {
        None
    };
    tx.commit().await?;
    Ok(SearchBatch { messages, resume })
}

/// Every token, each quoted (so none is read as an operator): FTS5 ANDs them.
fn fts_query(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn json_array(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(","))
}

#[async_trait]
impl SearchIndex for SqliteConnection {
    async fn index(&mut self, messages: &[&Message]) -> StoreResult<()> {
        for chunk in tokenized(messages).chunks(ROWS_PER_STATEMENT) {
            // The rowid is the message's, found by its id in the same transaction.
            let sql = format!(
                "INSERT INTO message_search (rowid, tokens) \
                 SELECT m.rowid, v.column2 FROM (VALUES {}) AS v JOIN messages m ON m.id = v.column1",
                vec!["(?, ?)"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (message, tokens) in chunk {
                q = q.bind(message.id).bind(tokens.as_str());
            }
            q.execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn unindex(&mut self, message: &Message) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM message_search WHERE rowid = (SELECT rowid FROM messages WHERE id = $1)",
        )
        .bind(message.id)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}
