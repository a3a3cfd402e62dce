//! The audit log, for both engines.

use async_trait::async_trait;

use super::{Columns, Engine, SqlStore};
use crate::store::{AuditEntry, AuditRecord, AuditStore, StoreResult};

#[async_trait]
impl<P: Engine> AuditStore for SqlStore<P> {
    async fn audit(&self, entry: AuditEntry, now_ms: i64) -> StoreResult<()> {
        with_db!(&self.write, |db| {
            sqlx::query(
                "INSERT INTO audit_log (at, actor, action, target, detail) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(now_ms)
            .bind(entry.actor)
            .bind(entry.action)
            .bind(&entry.target)
            .bind(&entry.detail)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    async fn audit_tail(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT at, actor, action, target FROM audit_log ORDER BY id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(db)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(AuditRecord {
                        at_ms: row.col("at")?,
                        actor: row.col("actor")?,
                        action: row.col("action")?,
                        target: row.col("target")?,
                    })
                })
                .collect()
        })
    }
}
