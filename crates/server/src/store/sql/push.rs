//! Push subscriptions and settings, for both engines.

use async_trait::async_trait;
use palaver_proto::NotificationPreview;
use uuid::Uuid;

use super::map::{self, PUSH_COLUMNS};
use super::{Columns, Engine, SqlStore};
use crate::store::{Entity, PushStore, PushSubscriptionRow, PushTarget, StoreError, StoreResult};

#[async_trait]
impl<P: Engine> PushStore for SqlStore<P> {
    async fn upsert_push_subscription(
        &self,
        sub: &PushSubscriptionRow,
    ) -> StoreResult<(PushSubscriptionRow, bool)> {
        // The endpoint is the identity of a subscription: a second registration keeps the
        // row's id and creation time and takes the new keys and owner.
        let sql = format!(
            "INSERT INTO push_subscriptions ({PUSH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, \
               p256dh = excluded.p256dh, auth = excluded.auth \
             RETURNING {PUSH_COLUMNS}"
        );
        let stored = with_db!(&self.write, |db| {
            let row = sqlx::query(&sql)
                .bind(sub.id)
                .bind(sub.user_id)
                .bind(&sub.endpoint)
                .bind(&sub.p256dh)
                .bind(&sub.auth)
                .bind(sub.created_at_ms)
                .fetch_one(db)
                .await?;
            map::push_subscription(&row)?
        });
        let created = stored.id == sub.id;
        Ok((stored, created))
    }

    async fn push_subscriptions(&self, user: Uuid) -> StoreResult<Vec<PushSubscriptionRow>> {
        let sql =
            format!("SELECT {PUSH_COLUMNS} FROM push_subscriptions WHERE user_id = $1 ORDER BY id");
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql).bind(user).fetch_all(db).await?;
            rows.iter().map(map::push_subscription).collect()
        })
    }

    async fn delete_push_subscription(&self, id: Uuid, owner: Option<Uuid>) -> StoreResult<bool> {
        let deleted = with_db!(&self.write, |db| {
            sqlx::query(
                "DELETE FROM push_subscriptions WHERE id = $1 AND ($2 IS NULL OR user_id = $2)",
            )
            .bind(id)
            .bind(owner)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok(deleted > 0)
    }

    async fn set_room_muted(&self, room: Uuid, user: Uuid, muted: bool) -> StoreResult<bool> {
        let changed = with_db!(&self.write, |db| {
            sqlx::query("UPDATE members SET muted = $1 WHERE room_id = $2 AND user_id = $3")
                .bind(muted)
                .bind(room)
                .bind(user)
                .execute(db)
                .await?
                .rows_affected()
        });
        Ok(changed > 0)
    }

    async fn push_settings(&self, user: Uuid) -> StoreResult<(NotificationPreview, Vec<Uuid>)> {
        // One statement, so the preview and the mutes come from one snapshot: a row per
        // muted room, or one row with no room.
        let rows = with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT u.notification_preview, m.room_id FROM users u \
                 LEFT JOIN members m ON m.user_id = u.id AND m.muted \
                 WHERE u.id = $1 ORDER BY m.room_id",
            )
            .bind(user)
            .fetch_all(db)
            .await?;
            rows.iter()
                .map(|row| Ok((map::preview(row)?, row.col("room_id")?)))
                .collect::<StoreResult<Vec<(NotificationPreview, Option<Uuid>)>>>()?
        });
        let Some((preview, _)) = rows.first() else {
            return Err(StoreError::NotFound(Entity::User));
        };
        Ok((
            *preview,
            rows.iter().filter_map(|(_, room)| *room).collect(),
        ))
    }

    async fn set_notification_preview(
        &self,
        user: Uuid,
        preview: NotificationPreview,
    ) -> StoreResult<()> {
        let changed = with_db!(&self.write, |db| {
            sqlx::query("UPDATE users SET notification_preview = $1 WHERE id = $2")
                .bind(preview.as_str())
                .bind(user)
                .execute(db)
                .await?
                .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound(Entity::User));
        }
        Ok(())
    }

    async fn push_target(&self, room: Uuid, user: Uuid) -> StoreResult<Option<PushTarget>> {
        with_db!(&self.read, |db| {
            let row = sqlx::query(
                "SELECT m.delivered_seq, m.muted, u.notification_preview \
                 FROM members m JOIN users u ON u.id = m.user_id \
                 WHERE m.room_id = $1 AND m.user_id = $2",
            )
            .bind(room)
            .bind(user)
            .fetch_optional(db)
            .await?;
            row.map(|row| {
                Ok(PushTarget {
                    delivered_seq: row.col("delivered_seq")?,
                    muted: row.col("muted")?,
                    preview: map::preview(&row)?,
                })
            })
            .transpose()
        })
    }
}
