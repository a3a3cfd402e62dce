//! The audit log, for both engines.

use async_trait::async_trait;

use super::{Columns, Engine, SqlStore};
use crate::store::{AuditEntry, AuditFilter, AuditRecord, AuditStore, StoreResult};

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

    async fn audit_log(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        // One statement for every combination: a filter not given is `$n IS NULL`.
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT id, at, actor, action, target, detail FROM audit_log \
                 WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action = $2) \
                   AND ($3 IS NULL OR target = $3) AND ($4 IS NULL OR at >= $4) \
                   AND ($5 IS NULL OR at < $5) AND ($6 IS NULL OR id < $6) \
                 ORDER BY id DESC LIMIT $7",
            )
            .bind(f.actor)
            .bind(&f.action)
            .bind(&f.target)
            .bind(f.since_ms)
            .bind(f.until_ms)
            .bind(f.before_id)
            .bind(i64::from(f.limit))
            .fetch_all(db)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(AuditRecord {
                        id: row.col("id")?,
                        at_ms: row.col("at")?,
                        actor: row.col("actor")?,
                        action: row.col("action")?,
                        target: row.col("target")?,
                        detail: row.col("detail")?,
                    })
                })
                .collect()
        })
    }
}
