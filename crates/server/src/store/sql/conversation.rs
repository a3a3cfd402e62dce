//! Reactions, pins, threads and change numbers, for both engines.

use async_trait::async_trait;
use palaver_proto::Message;
use uuid::Uuid;

use super::map::{self, MESSAGE_COLUMNS};
use super::{Columns, Engine, SqlStore};
use crate::store::{ConversationStore, ReactionRow, StoreResult, Toggled};

/// Takes the room's next change number: `$1` the room. Inside a write transaction, and
/// on PostgreSQL the row lock that orders the room's appends and changes.
pub(super) const NEXT_VERSION: &str =
    "UPDATE rooms SET version = version + 1 WHERE id = $1 RETURNING version";

/// Takes the room's next change number for a change of its name, picture or members:
/// `$1` the room.
pub(super) const NEXT_STATE_VERSION: &str = "UPDATE rooms SET version = version + 1, \
     state_version = version + 1 WHERE id = $1 RETURNING version";

#[async_trait]
impl<P: Engine> ConversationStore for SqlStore<P> {
    async fn messages_with_ids(&self, ids: &[Uuid]) -> StoreResult<Vec<Message>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let select = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id");
        let rows = self.read.rows_with_ids(&select, ids).await?;
        rows.iter().map(map::message).collect()
    }

    async fn reactions_of(&self, messages: &[Uuid]) -> StoreResult<Vec<ReactionRow>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let select =
            "SELECT message_id, emoji, user_id, created_at FROM reactions WHERE message_id";
        let rows = self.read.rows_with_ids(select, messages).await?;
        let mut out = rows
            .iter()
            .map(|row| {
                Ok(ReactionRow {
                    message_id: row.col("message_id")?,
                    emoji: row.col("emoji")?,
                    user_id: row.col("user_id")?,
                    created_at_ms: row.col("created_at")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by(|a, b| {
            (a.created_at_ms, a.user_id, &a.emoji).cmp(&(b.created_at_ms, b.user_id, &b.emoji))
        });
        Ok(out)
    }

    async fn thread_participants(&self, root: Uuid, limit: u32) -> StoreResult<Vec<Uuid>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT sender_id, MIN(seq) AS first FROM messages WHERE thread_root_id = $1 \
                 GROUP BY sender_id ORDER BY first LIMIT $2",
            )
            .bind(root)
            .bind(i64::from(limit))
            .fetch_all(db)
            .await?;
            rows.iter().map(|row| row.col("sender_id")).collect()
        })
    }

    async fn set_reaction(
        &self,
        room: Uuid,
        message: Uuid,
        user: Uuid,
        emoji: &str,
        add: bool,
        max_emojis: u32,
        now_ms: i64,
    ) -> StoreResult<Toggled> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            // The room's row first: it orders this change with the room's other writes.
            let version: i64 = match sqlx::query(NEXT_VERSION)
                .bind(room)
                .fetch_optional(&mut *tx)
                .await?
            {
                Some(row) => row.col("version")?,
                None => return Ok(Toggled::Missing),
            };
            let live = sqlx::query(
                "SELECT 1 AS x FROM messages WHERE id = $1 AND room_id = $2 AND deleted_at IS NULL",
            )
            .bind(message)
            .bind(room)
            .fetch_optional(&mut *tx)
            .await?;
            if live.is_none() {
                return Ok(Toggled::Missing);
            }
            let changed = if add {
                let emojis = sqlx::query(
                    "SELECT COUNT(DISTINCT emoji) AS n, \
                       SUM(CASE WHEN emoji = $2 THEN 1 ELSE 0 END) AS mine \
                     FROM reactions WHERE message_id = $1",
                )
                .bind(message)
                .bind(emoji)
                .fetch_one(&mut *tx)
                .await?;
                let distinct: i64 = emojis.col("n")?;
                let this: Option<i64> = emojis.col("mine")?;
                if this.unwrap_or(0) == 0 && distinct >= i64::from(max_emojis) {
                    return Ok(Toggled::Full);
                }
                sqlx::query(
                    "INSERT INTO reactions (message_id, emoji, user_id, room_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(message)
                .bind(emoji)
                .bind(user)
                .bind(room)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query(
                    "DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
                )
                .bind(message)
                .bind(emoji)
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            if changed == 0 {
                // Nothing changed: the change number is not spent.
                tx.rollback().await?;
                return Ok(Toggled::Unchanged);
            }
            sqlx::query("UPDATE messages SET version = $1 WHERE id = $2")
                .bind(version)
                .bind(message)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Toggled::Changed(version))
        })
    }

    async fn set_pinned(
        &self,
        room: Uuid,
        message: Uuid,
        by: Option<Uuid>,
        max_pins: u32,
        now_ms: i64,
    ) -> StoreResult<Toggled> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let version: i64 = match sqlx::query(NEXT_VERSION)
                .bind(room)
                .fetch_optional(&mut *tx)
                .await?
            {
                Some(row) => row.col("version")?,
                None => return Ok(Toggled::Missing),
            };
            let Some(row) = sqlx::query(
                "SELECT pinned_at FROM messages WHERE id = $1 AND room_id = $2 AND deleted_at IS NULL",
            )
            .bind(message)
            .bind(room)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(Toggled::Missing);
            };
            let pinned = row.col::<Option<i64>>("pinned_at")?.is_some();
            if pinned == by.is_some() {
                tx.rollback().await?;
                return Ok(Toggled::Unchanged);
            }
            if by.is_some() {
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n FROM messages WHERE room_id = $1 AND pinned_at IS NOT NULL",
                )
                .bind(room)
                .fetch_one(&mut *tx)
                .await?;
                if row.col::<i64>("n")? >= i64::from(max_pins) {
                    return Ok(Toggled::Full);
                }
            }
            sqlx::query(
                "UPDATE messages SET pinned_at = $1, pinned_by = $2, version = $3 WHERE id = $4",
            )
            .bind(by.map(|_| now_ms))
            .bind(by)
            .bind(version)
            .bind(message)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Toggled::Changed(version))
        })
    }

    async fn pins(&self, room: Uuid) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND pinned_at IS NOT NULL \
             ORDER BY pinned_at DESC, seq DESC"
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql).bind(room).fetch_all(db).await?;
            rows.iter().map(map::message).collect()
        })
    }

    async fn thread(&self, root: Uuid, after: i64, limit: u32) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_root_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql)
                .bind(root)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(db)
                .await?;
            rows.iter().map(map::message).collect()
        })
    }

    async fn changed_messages(
        &self,
        room: Uuid,
        after: i64,
        max_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE room_id = $1 AND version > $2 AND seq <= $3 ORDER BY version LIMIT $4"
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql)
                .bind(room)
                .bind(after)
                .bind(max_seq)
                .bind(i64::from(limit))
                .fetch_all(db)
                .await?;
            rows.iter().map(map::message).collect()
        })
    }
}
