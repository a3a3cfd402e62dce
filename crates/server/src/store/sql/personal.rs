//! One person's data (export, account deletion), for both engines.

use async_trait::async_trait;
use palaver_proto::Message;
use uuid::Uuid;

use super::map::{self, MEDIA_COLUMNS, MESSAGE_COLUMNS};
use super::media::UNREFERENCED;
use super::{Columns, Engine, SqlStore};
use crate::store::{
    Entity, MediaRow, OwnReaction, PersonalStore, StoreError, StoreResult, Tombstoned,
};

#[async_trait]
impl<P: Engine> PersonalStore for SqlStore<P> {
    async fn messages_sent(
        &self,
        user: Uuid,
        room: Uuid,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        // The (room_id, seq) index, filtered by sender: an export reads each room once.
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE room_id = $1 AND seq > $2 AND sender_id = $3 AND kind <> 'event' \
             ORDER BY seq LIMIT $4"
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql)
                .bind(room)
                .bind(after)
                .bind(user)
                .bind(i64::from(limit))
                .fetch_all(db)
                .await?;
            rows.iter().map(map::message).collect()
        })
    }

    async fn live_messages_sent(
        &self,
        user: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<Uuid>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT id FROM messages WHERE sender_id = $1 AND deleted_at IS NULL \
                 AND kind <> 'event' AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
            )
            .bind(user)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(db)
            .await?;
            rows.iter().map(|r| r.col("id")).collect()
        })
    }

    async fn reactions_given(
        &self,
        user: Uuid,
        after: Option<(Uuid, String)>,
        limit: u32,
    ) -> StoreResult<Vec<OwnReaction>> {
        let (after_id, after_emoji) = after.unzip();
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT room_id, message_id, emoji, created_at FROM reactions \
                 WHERE user_id = $1 AND ($2 IS NULL OR message_id > $2 \
                   OR (message_id = $2 AND emoji > $3)) \
                 ORDER BY message_id, emoji LIMIT $4",
            )
            .bind(user)
            .bind(after_id)
            .bind(after_emoji)
            .bind(i64::from(limit))
            .fetch_all(db)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(OwnReaction {
                        room_id: r.col("room_id")?,
                        message_id: r.col("message_id")?,
                        emoji: r.col("emoji")?,
                        created_at_ms: r.col("created_at")?,
                    })
                })
                .collect()
        })
    }

    async fn uploads(
        &self,
        user: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<MediaRow>> {
        let sql = format!(
            "SELECT {MEDIA_COLUMNS} FROM media WHERE uploader_id = $1 \
             AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql)
                .bind(user)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(db)
                .await?;
            rows.iter().map(map::media).collect()
        })
    }

    async fn tombstone_user(
        &self,
        user: Uuid,
        tombstone: &str,
        display: &str,
        now_ms: i64,
    ) -> StoreResult<Tombstoned> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let stripped = sqlx::query(
                "UPDATE users SET username = $1, display_name = $2, password_hash = '!', \
                 avatar_media_id = NULL, deleted_at = $3 WHERE id = $4 AND deleted_at IS NULL",
            )
            .bind(tombstone)
            .bind(display)
            .bind(now_ms)
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if stripped == 0 {
                return Err(StoreError::NotFound(Entity::User));
            }
            let sessions = sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
                 RETURNING id",
            )
            .bind(now_ms)
            .bind(user)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.col("id"))
            .collect::<StoreResult<Vec<Uuid>>>()?;
            sqlx::query("DELETE FROM push_subscriptions WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM blocks WHERE blocker_id = $1 OR blocked_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Tombstoned { sessions })
        })
    }

    async fn delete_unreferenced_uploads(&self, user: Uuid) -> StoreResult<Vec<MediaRow>> {
        let sql = format!(
            "DELETE FROM media WHERE uploader_id = $1 AND {UNREFERENCED} RETURNING {MEDIA_COLUMNS}"
        );
        with_db!(&self.write, |db| {
            let rows = sqlx::query(&sql).bind(user).fetch_all(db).await?;
            rows.iter().map(map::media).collect()
        })
    }
}
