//! The MLS directory, for both engines.

use std::collections::HashSet;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Columns, Engine, SqlStore};
use crate::store::mls::{
    Claim, ClaimedRow, DeviceRow, MlsStore, NewKeyPackage, RefOwner, Registered, Stock, WelcomeRow,
};
use crate::store::{Entity, StoreError, StoreResult};

const DEVICE_COLUMNS: &str = "id, user_id, session_id, name, signature_key, created_at";

/// How long a claimed package's row is kept: long enough for the welcome made from it to
/// find its device.
const CLAIMED_KEPT_MS: i64 = 30 * 24 * 3600 * 1000;

fn device(row: &impl Columns) -> StoreResult<DeviceRow> {
    Ok(DeviceRow {
        id: row.col("id")?,
        user_id: row.col("user_id")?,
        session_id: row.col("session_id")?,
        name: row.col("name")?,
        signature_key: row.col("signature_key")?,
        created_at_ms: row.col("created_at")?,
    })
}

fn welcome(row: &impl Columns) -> StoreResult<WelcomeRow> {
    Ok(WelcomeRow {
        id: row.col("id")?,
        device_id: row.col("device_id")?,
        room_id: row.col("room_id")?,
        seq: row.col("seq")?,
        data: row.col("data")?,
        created_at_ms: row.col("created_at")?,
    })
}

/// `n` distinct values of `items`, in their first order.
fn distinct<T: Clone + Eq + std::hash::Hash>(items: &[T]) -> Vec<T> {
    let mut seen = HashSet::new();
    items
        .iter()
        .filter(|i| seen.insert((*i).clone()))
        .cloned()
        .collect()
}

#[async_trait]
impl<P: Engine> MlsStore for SqlStore<P> {
    async fn register_device(&self, d: &DeviceRow, max_per_user: u32) -> StoreResult<Registered> {
        let existing = format!(
            "SELECT {DEVICE_COLUMNS} FROM mls_devices WHERE session_id = $1 AND revoked_at IS NULL"
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            if let Some(row) = sqlx::query(&existing)
                .bind(d.session_id)
                .fetch_optional(&mut *tx)
                .await?
            {
                return Ok(Registered::SessionHasDevice(device(&row)?));
            }
            let live: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM mls_devices WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(d.user_id)
            .fetch_one(&mut *tx)
            .await?
            .col("n")?;
            if live >= i64::from(max_per_user) {
                return Ok(Registered::TooMany);
            }
            sqlx::query(
                "INSERT INTO mls_devices (id, user_id, session_id, name, signature_key, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(d.id)
            .bind(d.user_id)
            .bind(d.session_id)
            .bind(&d.name)
            .bind(&d.signature_key)
            .bind(d.created_at_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Registered::New)
        })
    }

    async fn device(&self, id: Uuid) -> StoreResult<Option<DeviceRow>> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM mls_devices WHERE id = $1 AND revoked_at IS NULL"
        );
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
            row.as_ref().map(device).transpose()
        })
    }

    async fn devices_of(&self, user: Uuid) -> StoreResult<Vec<DeviceRow>> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM mls_devices WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at, id"
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql).bind(user).fetch_all(db).await?;
            rows.iter().map(device).collect()
        })
    }

    async fn revoke_device(&self, user: Uuid, id: Uuid, now_ms: i64) -> StoreResult<bool> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let revoked = sqlx::query(
                "UPDATE mls_devices SET revoked_at = $1 \
                 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
            )
            .bind(now_ms)
            .bind(id)
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked == 1 {
                for table in ["mls_key_packages", "mls_welcomes"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE device_id = $1"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(revoked == 1)
        })
    }

    async fn revoke_session_devices(
        &self,
        sessions: &[Uuid],
        now_ms: i64,
    ) -> StoreResult<Vec<DeviceRow>> {
        let live = format!(
            "SELECT {DEVICE_COLUMNS} FROM mls_devices WHERE session_id = $1 AND revoked_at IS NULL"
        );
        let mut revoked = Vec::new();
        for session in distinct(sessions) {
            let found = with_db!(&self.read, |db| {
                sqlx::query(&live)
                    .bind(session)
                    .fetch_optional(db)
                    .await?
                    .as_ref()
                    .map(device)
                    .transpose()?
            });
            if let Some(d) = found
                && self.revoke_device(d.user_id, d.id, now_ms).await?
            {
                revoked.push(d);
            }
        }
        Ok(revoked)
    }

    async fn add_key_packages(
        &self,
        device_id: Uuid,
        packages: &[NewKeyPackage],
        max_stored: u32,
        now_ms: i64,
    ) -> StoreResult<Stock> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let live = sqlx::query(
                "SELECT 1 AS one FROM mls_devices WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(device_id)
            .fetch_optional(&mut *tx)
            .await?;
            if live.is_none() {
                return Err(StoreError::NotFound(Entity::Device));
            }
            for p in packages {
                if p.last_resort {
                    // The old one is retired, not deleted: welcomes made from it still
                    // find the device.
                    sqlx::query(
                        "UPDATE mls_key_packages SET claimed_at = $1 \
                         WHERE device_id = $2 AND last_resort AND claimed_at IS NULL AND key_ref <> $3",
                    )
                    .bind(now_ms)
                    .bind(device_id)
                    .bind(&p.key_ref)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO mls_key_packages (key_ref, device_id, data, last_resort, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_ref) DO NOTHING",
                )
                .bind(&p.key_ref)
                .bind(device_id)
                .bind(&p.data)
                .bind(p.last_resort)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            // Keep the newest `max_stored` one-time packages, and claimed rows only as
            // long as a welcome may still name them.
            let free: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM mls_key_packages \
                 WHERE device_id = $1 AND claimed_at IS NULL AND NOT last_resort",
            )
            .bind(device_id)
            .fetch_one(&mut *tx)
            .await?
            .col("n")?;
            let excess = free - i64::from(max_stored);
            if excess > 0 {
                sqlx::query(
                    "DELETE FROM mls_key_packages WHERE key_ref IN (SELECT key_ref FROM mls_key_packages \
                     WHERE device_id = $1 AND claimed_at IS NULL AND NOT last_resort \
                     ORDER BY created_at, key_ref LIMIT $2)",
                )
                .bind(device_id)
                .bind(excess)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM mls_key_packages WHERE device_id = $1 AND claimed_at < $2")
                .bind(device_id)
                .bind(now_ms - CLAIMED_KEPT_MS)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.stock(device_id).await
    }

    async fn stock(&self, device_id: Uuid) -> StoreResult<Stock> {
        with_db!(&self.read, |db| {
            let row = sqlx::query(
                "SELECT \
                   COALESCE(SUM(CASE WHEN NOT last_resort THEN 1 ELSE 0 END), 0) AS available, \
                   COALESCE(SUM(CASE WHEN last_resort THEN 1 ELSE 0 END), 0) AS last_resort \
                 FROM mls_key_packages WHERE device_id = $1 AND claimed_at IS NULL",
            )
            .bind(device_id)
            .fetch_one(db)
            .await?;
            let available: i64 = row.col("available")?;
            let last_resort: i64 = row.col("last_resort")?;
            Ok(Stock {
                available: u32::try_from(available).unwrap_or(u32::MAX),
                last_resort: last_resort > 0,
            })
        })
    }

    async fn claim_key_packages(&self, claim: Claim<'_>) -> StoreResult<Vec<ClaimedRow>> {
        let devices = "SELECT id FROM mls_devices WHERE user_id = $1 AND revoked_at IS NULL \
                       ORDER BY created_at, id";
        let taken = "SELECT COUNT(*) AS n FROM mls_key_packages \
                     WHERE device_id = $1 AND claimed_by = $2 AND claimed_at > $3 AND NOT last_resort";
        // The outer `claimed_at IS NULL` makes the loser of two concurrent claims of one
        // package update nothing (and fall back), rather than hand it out twice.
        let one_time = "UPDATE mls_key_packages SET claimed_at = $1, claimed_by = $2 \
                        WHERE claimed_at IS NULL AND key_ref = (SELECT key_ref FROM mls_key_packages \
                          WHERE device_id = $3 AND claimed_at IS NULL AND NOT last_resort \
                          ORDER BY created_at, key_ref LIMIT 1) \
                        RETURNING data";
        let last_resort = "SELECT data FROM mls_key_packages \
                           WHERE device_id = $1 AND last_resort AND claimed_at IS NULL";
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let mut out = Vec::new();
            for user in distinct(claim.users) {
                let ids: Vec<Uuid> = sqlx::query(devices)
                    .bind(user)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|row| row.col("id"))
                    .collect::<StoreResult<_>>()?;
                for device_id in ids {
                    let had: i64 = sqlx::query(taken)
                        .bind(device_id)
                        .bind(claim.claimer)
                        .bind(claim.now_ms - claim.window_ms)
                        .fetch_one(&mut *tx)
                        .await?
                        .col("n")?;
                    let fresh = if had < i64::from(claim.share) {
                        sqlx::query(one_time)
                            .bind(claim.now_ms)
                            .bind(claim.claimer)
                            .bind(device_id)
                            .fetch_optional(&mut *tx)
                            .await?
                    } else {
                        None
                    };
                    let (row, last) = match fresh {
                        Some(row) => (Some(row), false),
                        None => (
                            sqlx::query(last_resort)
                                .bind(device_id)
                                .fetch_optional(&mut *tx)
                                .await?,
                            true,
                        ),
                    };
                    if let Some(row) = row {
                        out.push(ClaimedRow {
                            user_id: user,
                            device_id,
                            data: row.col("data")?,
                            last_resort: last,
                        });
                    }
                }
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    async fn ref_owners(&self, refs: &[Vec<u8>]) -> StoreResult<Vec<RefOwner>> {
        let sql = "SELECT k.key_ref, d.id, d.user_id FROM mls_key_packages k \
                   JOIN mls_devices d ON d.id = k.device_id \
                   WHERE k.key_ref = $1 AND d.revoked_at IS NULL";
        let mut out = Vec::new();
        with_db!(&self.read, |db| {
            for key_ref in distinct(refs) {
                if let Some(row) = sqlx::query(sql).bind(&key_ref).fetch_optional(db).await? {
                    out.push(RefOwner {
                        key_ref,
                        device_id: row.col("id")?,
                        user_id: row.col("user_id")?,
                    });
                }
            }
        });
        Ok(out)
    }

    async fn add_welcomes(&self, welcomes: &[WelcomeRow], max_per_device: u32) -> StoreResult<()> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            for w in welcomes {
                sqlx::query(
                    "INSERT INTO mls_welcomes (id, device_id, room_id, seq, data, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(w.id)
                .bind(w.device_id)
                .bind(w.room_id)
                .bind(w.seq)
                .bind(&w.data)
                .bind(w.created_at_ms)
                .execute(&mut *tx)
                .await?;
            }
            for device_id in distinct(&welcomes.iter().map(|w| w.device_id).collect::<Vec<_>>()) {
                let waiting: i64 =
                    sqlx::query("SELECT COUNT(*) AS n FROM mls_welcomes WHERE device_id = $1")
                        .bind(device_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .col("n")?;
                let excess = waiting - i64::from(max_per_device);
                if excess > 0 {
                    sqlx::query(
                        "DELETE FROM mls_welcomes WHERE id IN (SELECT id FROM mls_welcomes \
                         WHERE device_id = $1 ORDER BY created_at, id LIMIT $2)",
                    )
                    .bind(device_id)
                    .bind(excess)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn welcomes(&self, device_id: Uuid) -> StoreResult<Vec<WelcomeRow>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT id, device_id, room_id, seq, data, created_at FROM mls_welcomes \
                 WHERE device_id = $1 ORDER BY created_at, id",
            )
            .bind(device_id)
            .fetch_all(db)
            .await?;
            rows.iter().map(welcome).collect()
        })
    }

    async fn take_welcome(&self, device_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let deleted = with_db!(&self.write, |db| {
            sqlx::query("DELETE FROM mls_welcomes WHERE id = $1 AND device_id = $2")
                .bind(id)
                .bind(device_id)
                .execute(db)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }
}
