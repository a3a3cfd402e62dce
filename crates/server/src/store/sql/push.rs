//! Push subscriptions and settings, for both engines.

use async_trait::async_trait;
use palaver_proto::{NotificationLevel, NotificationPreview};
use uuid::Uuid;

use super::map::{self, PUSH_COLUMNS};
use super::{Columns, Engine, SqlStore};
use crate::store::{
    Entity, PushStore, PushSubscriptionRow, PushTarget, StoreError, StoreResult, Subscribed,
};

#[async_trait]
impl<P: Engine> PushStore for SqlStore<P> {
    async fn upsert_push_subscription(
        &self,
        sub: &PushSubscriptionRow,
        now_ms: i64,
    ) -> StoreResult<Subscribed> {
        let Some(session) = sub.session_id else {
            return Err(StoreError::Invalid(
                "a push subscription is registered by a session".into(),
            ));
        };
        // The registering session must be live and stay so until the row is in: its row is
        // share-locked, so a logout waits for this transaction, and the trigger that ends
        // the session's subscriptions then sees this one.
        let live = format!(
            "SELECT id FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL {}",
            P::row_lock("FOR SHARE")
        );
        // The endpoint is the identity of a subscription: registering it again keeps the
        // row's id and creation time and takes the new keys and session, if it is the same
        // user's, or its session can no longer be refreshed (a revoked one took the row
        // with it). Anything else would let whoever learns an endpoint take it over.
        let sql = format!(
            "INSERT INTO push_subscriptions ({PUSH_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, \
               session_id = excluded.session_id, p256dh = excluded.p256dh, auth = excluded.auth \
             WHERE push_subscriptions.user_id = excluded.user_id \
                OR (push_subscriptions.session_id IS NOT NULL AND NOT EXISTS ( \
                    SELECT 1 FROM refresh_tokens t \
                    WHERE t.session_id = push_subscriptions.session_id \
                      AND t.used_at IS NULL AND t.expires_at > $8)) \
             RETURNING {PUSH_COLUMNS}"
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let found = sqlx::query(&live)
                .bind(session)
                .bind(sub.user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Ok(Subscribed::SessionEnded);
            }
            let row = sqlx::query(&sql)
                .bind(sub.id)
                .bind(sub.user_id)
                .bind(&sub.endpoint)
                .bind(&sub.p256dh)
                .bind(&sub.auth)
                .bind(sub.created_at_ms)
                .bind(session)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Ok(Subscribed::Taken);
            };
            let stored = map::push_subscription(&row)?;
            tx.commit().await?;
            Ok(if stored.id == sub.id {
                Subscribed::Created(stored)
            } else {
                Subscribed::Updated(stored)
            })
        })
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

    async fn set_notification_level(
        &self,
        room: Uuid,
        user: Uuid,
        level: NotificationLevel,
    ) -> StoreResult<bool> {
        let changed = with_db!(&self.write, |db| {
            sqlx::query("UPDATE members SET notify_level = $1 WHERE room_id = $2 AND user_id = $3")
                .bind(level.as_str())
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
        // muted room (one that notifies of nothing), or one row with no room.
        let rows = with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT u.notification_preview, m.room_id FROM users u \
                 LEFT JOIN members m ON m.user_id = u.id AND m.notify_level = 'nothing' \
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
                "SELECT m.delivered_seq, m.notify_level, u.notification_preview \
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
                    level: map::notification_level(&row)?,
                    preview: map::preview(&row)?,
                })
            })
            .transpose()
        })
    }
}
