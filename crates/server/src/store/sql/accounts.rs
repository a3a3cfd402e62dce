//! Users and sessions, for both engines.

use std::collections::HashMap;

use async_trait::async_trait;
use palaver_proto::User;
use uuid::Uuid;

use super::map::{self, USER_COLUMNS};
use super::{Columns, Engine, SqlStore, is_unique_violation, ms_of};
use crate::store::{
    AccountStore, Constraint, Credentials, Entity, RefreshOutcome, StoreError, StoreResult,
};

/// Stores a refresh token (its hash) for a session: `$1` hash, `$2` session, `$3` expiry.
const INSERT_REFRESH: &str =
    "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)";

#[async_trait]
impl<P: Engine> AccountStore for SqlStore<P> {
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        let stored = with_db!(&self.write, |db| {
            sqlx::query(
                // The first account administers the server.
                "INSERT INTO users (id, username, display_name, password_hash, created_at, is_admin) \
                 VALUES ($1, $2, $3, $4, $5, NOT EXISTS (SELECT 1 FROM users))",
            )
            .bind(user.id)
            .bind(&user.username)
            .bind(&user.display_name)
            .bind(password_hash)
            .bind(ms_of(user.created_at))
            .execute(db)
            .await
            .map(|_| ())
        });
        stored.map_err(|err| {
            if is_unique_violation(&err) {
                StoreError::Conflict(Constraint::Username)
            } else {
                err.into()
            }
        })
    }

    async fn user(&self, id: Uuid) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
            row.as_ref().map(map::user).transpose()
        })
    }

    async fn users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>> {
        let select = format!("SELECT {USER_COLUMNS} FROM users WHERE id");
        let found = self
            .read
            .rows_with_ids(&select, ids)
            .await?
            .iter()
            .map(|row| map::user(row).map(|u| (u.id, u)))
            .collect::<StoreResult<HashMap<_, _>>>()?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1 AND deleted_at IS NULL"
        );
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(username).fetch_optional(db).await?;
            row.map(|row| {
                Ok(Credentials {
                    user: map::user(&row)?,
                    password_hash: row.col("password_hash")?,
                })
            })
            .transpose()
        })
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        self.read.search_users(prefix, limit).await
    }

    async fn set_display_name(&self, id: Uuid, name: &str) -> StoreResult<()> {
        let changed = with_db!(&self.write, |db| {
            sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(db)
                .await?
                .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound(Entity::User));
        }
        Ok(())
    }

    async fn set_last_seen(&self, id: Uuid, at_ms: i64) -> StoreResult<()> {
        with_db!(&self.write, |db| {
            sqlx::query("UPDATE users SET last_seen_at = $1 WHERE id = $2")
                .bind(at_ms)
                .bind(id)
                .execute(db)
                .await?;
        });
        Ok(())
    }

    async fn last_seen(&self, id: Uuid) -> StoreResult<Option<i64>> {
        with_db!(&self.read, |db| {
            let row = sqlx::query("SELECT last_seen_at FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(db)
                .await?;
            Ok(match row {
                Some(row) => row.col("last_seen_at")?,
                None => None,
            })
        })
    }

    async fn create_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        refresh_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        // The account's row is locked where nodes write side by side, so a session cannot
        // be opened while `set_disabled` ends the account's sessions and be missed by it.
        let live = format!(
            "SELECT id FROM users WHERE id = $1 AND disabled_at IS NULL {}",
            P::row_lock("FOR SHARE")
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let found = sqlx::query(&live)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Ok(false);
            }
            sqlx::query("INSERT INTO sessions (id, user_id, created_at) VALUES ($1, $2, $3)")
                .bind(session_id)
                .bind(user_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_REFRESH)
                .bind(refresh_hash)
                .bind(session_id)
                .bind(expires_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    async fn rotate_refresh(
        &self,
        old_hash: &[u8],
        new_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> StoreResult<RefreshOutcome> {
        // The token row is locked where nodes write side by side: the same token presented
        // to two nodes at once must rotate once and be seen as reused by the other.
        let find = format!(
            "SELECT t.session_id, t.expires_at, t.used_at, s.user_id, s.revoked_at \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
             WHERE t.token_hash = $1 {}",
            P::row_lock("FOR UPDATE OF t")
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let row = sqlx::query(&find)
                .bind(old_hash)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Ok(RefreshOutcome::Invalid);
            };
            let session_id: Uuid = row.col("session_id")?;
            let user_id: Uuid = row.col("user_id")?;
            let revoked: Option<i64> = row.col("revoked_at")?;
            let used: Option<i64> = row.col("used_at")?;
            let expires: i64 = row.col("expires_at")?;
            if revoked.is_some() || expires <= now_ms {
                return Ok(RefreshOutcome::Invalid);
            }
            if used.is_some() {
                sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2")
                    .bind(now_ms)
                    .bind(session_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(RefreshOutcome::Reused {
                    session_id,
                    user_id,
                });
            }
            sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
                .bind(now_ms)
                .bind(old_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_REFRESH)
                .bind(new_hash)
                .bind(session_id)
                .bind(expires_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(RefreshOutcome::Rotated {
                session_id,
                user_id,
            })
        })
    }

    async fn revoke_session(&self, session_id: Uuid, now_ms: i64) -> StoreResult<Option<Uuid>> {
        with_db!(&self.write, |db| {
            let row = sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
                 RETURNING user_id",
            )
            .bind(now_ms)
            .bind(session_id)
            .fetch_optional(db)
            .await?;
            row.map(|row| row.col("user_id")).transpose()
        })
    }

    async fn session_of_refresh(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>> {
        with_db!(&self.read, |db| {
            let row = sqlx::query(
                "SELECT t.session_id, s.user_id FROM refresh_tokens t \
                 JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(db)
            .await?;
            row.map(|row| Ok((row.col("session_id")?, row.col("user_id")?)))
                .transpose()
        })
    }

    async fn revoked_sessions_since(&self, since_ms: i64) -> StoreResult<Vec<Uuid>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1",
            )
            .bind(since_ms)
            .fetch_all(db)
            .await?;
            rows.iter().map(|row| row.col("id")).collect()
        })
    }
}
