//! Reports of messages, and mutes and bans in rooms, for both engines.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Columns, Engine, SqlStore, is_unique_violation};
use crate::store::{
    BanRow, Constraint, Entity, MuteRow, ReportRow, ReportStore, SanctionStore, StoreError,
    StoreResult,
};

const COLUMNS: &str =
    "id, message_id, room_id, reporter_id, reason, created_at, status, closed_by, closed_at";

fn report(row: &impl Columns) -> StoreResult<ReportRow> {
    Ok(ReportRow {
        id: row.col("id")?,
        message_id: row.col("message_id")?,
        room_id: row.col("room_id")?,
        reporter_id: row.col("reporter_id")?,
        reason: row.col("reason")?,
        created_at_ms: row.col("created_at")?,
        status: row.col("status")?,
        closed_by: row.col("closed_by")?,
        closed_at_ms: row.col("closed_at")?,
    })
}

#[async_trait]
impl<P: Engine> ReportStore for SqlStore<P> {
    async fn create_report(&self, r: &ReportRow) -> StoreResult<()> {
        let stored = with_db!(&self.write, |db| {
            sqlx::query(
                "INSERT INTO reports (id, message_id, room_id, reporter_id, reason, created_at, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'open')",
            )
            .bind(r.id)
            .bind(r.message_id)
            .bind(r.room_id)
            .bind(r.reporter_id)
            .bind(&r.reason)
            .bind(r.created_at_ms)
            .execute(db)
            .await
            .map(|_| ())
        });
        stored.map_err(|err| {
            if is_unique_violation(&err) {
                StoreError::Conflict(Constraint::OpenReport)
            } else {
                err.into()
            }
        })
    }

    async fn report(&self, id: Uuid) -> StoreResult<Option<ReportRow>> {
        let sql = format!("SELECT {COLUMNS} FROM reports WHERE id = $1");
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
            row.as_ref().map(report).transpose()
        })
    }

    async fn reports(
        &self,
        status: Option<&str>,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ReportRow>> {
        // Ids are UUID v7: their order is the order of creation.
        let sql = format!(
            "SELECT {COLUMNS} FROM reports WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql)
                .bind(status)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(db)
                .await?;
            rows.iter().map(report).collect()
        })
    }

    async fn close_report(
        &self,
        id: Uuid,
        status: &str,
        by: Option<Uuid>,
        at_ms: i64,
    ) -> StoreResult<bool> {
        let (changed, exists) = with_db!(&self.write, |db| {
            let changed = sqlx::query(
                "UPDATE reports SET status = $1, closed_by = $2, closed_at = $3 \
                 WHERE id = $4 AND status = 'open'",
            )
            .bind(status)
            .bind(by)
            .bind(at_ms)
            .bind(id)
            .execute(db)
            .await?
            .rows_affected();
            let exists = changed > 0
                || sqlx::query("SELECT 1 AS one FROM reports WHERE id = $1")
                    .bind(id)
                    .fetch_optional(db)
                    .await?
                    .is_some();
            (changed, exists)
        });
        if !exists {
            return Err(StoreError::NotFound(Entity::Report));
        }
        Ok(changed > 0)
    }
}

#[async_trait]
impl<P: Engine> SanctionStore for SqlStore<P> {
    async fn set_mute(&self, room: Uuid, user: Uuid, until_ms: Option<i64>) -> StoreResult<bool> {
        let changed = with_db!(&self.write, |db| {
            sqlx::query("UPDATE members SET muted_until = $1 WHERE room_id = $2 AND user_id = $3")
                .bind(until_ms)
                .bind(room)
                .bind(user)
                .execute(db)
                .await?
                .rows_affected()
        });
        Ok(changed > 0)
    }

    async fn mutes_in_force(&self, now_ms: i64) -> StoreResult<Vec<MuteRow>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT room_id, user_id, muted_until FROM members WHERE muted_until > $1",
            )
            .bind(now_ms)
            .fetch_all(db)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(MuteRow {
                        room_id: row.col("room_id")?,
                        user_id: row.col("user_id")?,
                        until_ms: row.col("muted_until")?,
                    })
                })
                .collect()
        })
    }

    async fn ban(&self, room: Uuid, user: Uuid, by: Uuid, at_ms: i64) -> StoreResult<()> {
        with_db!(&self.write, |db| {
            sqlx::query(
                "INSERT INTO room_bans (room_id, user_id, banned_by, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (room_id, user_id) DO NOTHING",
            )
            .bind(room)
            .bind(user)
            .bind(by)
            .bind(at_ms)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    async fn unban(&self, room: Uuid, user: Uuid) -> StoreResult<bool> {
        let changed = with_db!(&self.write, |db| {
            sqlx::query("DELETE FROM room_bans WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .execute(db)
                .await?
                .rows_affected()
        });
        Ok(changed > 0)
    }

    async fn bans(&self, room: Uuid) -> StoreResult<Vec<BanRow>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT user_id, banned_by, created_at FROM room_bans WHERE room_id = $1 \
                 ORDER BY created_at, user_id",
            )
            .bind(room)
            .fetch_all(db)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(BanRow {
                        user_id: row.col("user_id")?,
                        banned_by: row.col("banned_by")?,
                        created_at_ms: row.col("created_at")?,
                    })
                })
                .collect()
        })
    }

    async fn banned_among(&self, room: Uuid, users: &[Uuid]) -> StoreResult<Vec<Uuid>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let bans = self.bans(room).await?;
        Ok(bans
            .into_iter()
            .map(|b| b.user_id)
            .filter(|u| users.contains(u))
            .collect())
    }
}
