//! Server administration, for both engines.

use async_trait::async_trait;
use uuid::Uuid;

use super::map::{self, USER_COLUMNS};
use super::{Columns, Engine, SqlStore, like_prefix};
use crate::store::{
    Account, AccountFilter, AdminRoomRow, AdminStore, Constraint, Entity, StoreError, StoreResult,
};

/// What `Account` reads besides the user's columns.
const ACCOUNT_EXTRA: &str = "is_admin, disabled_at";

fn account(row: &impl Columns) -> StoreResult<Account> {
    Ok(Account {
        user: map::user(row)?,
        is_admin: row.col("is_admin")?,
        disabled_at_ms: row.col("disabled_at")?,
    })
}

/// A room's columns for administrators, with its member count.
const ROOM_SELECT: &str = "SELECT r.id, r.name, r.is_group, r.created_at, r.deleted_at, \
     (SELECT COUNT(*) FROM members m WHERE m.room_id = r.id) AS member_count FROM rooms r";

fn room(row: &impl Columns) -> StoreResult<AdminRoomRow> {
    Ok(AdminRoomRow {
        id: row.col("id")?,
        name: row.col("name")?,
        is_group: row.col("is_group")?,
        member_count: row.col("member_count")?,
        created_at_ms: row.col("created_at")?,
        deleted_at_ms: row.col("deleted_at")?,
    })
}

/// Ends the live sessions of `$1` at `$2`, answering their ids.
const END_SESSIONS: &str = "UPDATE sessions SET revoked_at = $2 \
     WHERE user_id = $1 AND revoked_at IS NULL RETURNING id";

/// Whether an enabled administrator other than `$1` remains.
const OTHER_ADMIN: &str =
    "SELECT COUNT(*) AS n FROM users WHERE is_admin AND disabled_at IS NULL AND id <> $1";

#[async_trait]
impl<P: Engine> AdminStore for SqlStore<P> {
    async fn account(&self, id: Uuid) -> StoreResult<Option<Account>> {
        let sql = format!("SELECT {USER_COLUMNS}, {ACCOUNT_EXTRA} FROM users WHERE id = $1");
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
            row.as_ref().map(account).transpose()
        })
    }

    async fn account_named(&self, username: &str) -> StoreResult<Option<Account>> {
        let sql = format!("SELECT {USER_COLUMNS}, {ACCOUNT_EXTRA} FROM users WHERE username = $1");
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(username).fetch_optional(db).await?;
            row.as_ref().map(account).transpose()
        })
    }

    async fn accounts(&self, f: &AccountFilter) -> StoreResult<Vec<Account>> {
        let order = P::BYTEWISE;
        let sql = format!(
            "SELECT {USER_COLUMNS}, {ACCOUNT_EXTRA} FROM users \
             WHERE ($1 IS NULL OR username LIKE $1 ESCAPE '\\') \
               AND ($2 IS NULL OR (disabled_at IS NOT NULL) = $2) \
               AND ($3 IS NULL OR username{order} > $3) \
             ORDER BY username{order} LIMIT $4"
        );
        let prefix = f.prefix.as_deref().map(like_prefix);
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql)
                .bind(&prefix)
                .bind(f.disabled)
                .bind(&f.after)
                .bind(i64::from(f.limit))
                .fetch_all(db)
                .await?;
            rows.iter().map(account).collect()
        })
    }

    async fn set_admin(&self, id: Uuid, admin: bool) -> StoreResult<()> {
        // Every administrator's row is locked where nodes write side by side: two
        // demotions at once cannot each leave the other as the last one.
        let lock = format!(
            "SELECT id FROM users WHERE is_admin {}",
            P::row_lock("FOR UPDATE")
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            if !admin {
                sqlx::query(&lock).fetch_all(&mut *tx).await?;
                let others: i64 = sqlx::query(OTHER_ADMIN)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?
                    .col("n")?;
                if others == 0 {
                    return Err(StoreError::Conflict(Constraint::LastAdmin));
                }
            }
            let changed = sqlx::query("UPDATE users SET is_admin = $1 WHERE id = $2")
                .bind(admin)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound(Entity::User));
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn set_disabled(&self, id: Uuid, at_ms: Option<i64>) -> StoreResult<Vec<Uuid>> {
        let lock = format!(
            "SELECT id FROM users WHERE is_admin {}",
            P::row_lock("FOR UPDATE")
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let target = sqlx::query("SELECT is_admin FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(target) = target else {
                return Err(StoreError::NotFound(Entity::User));
            };
            let is_admin: bool = target.col("is_admin")?;
            if at_ms.is_some() && is_admin {
                sqlx::query(&lock).fetch_all(&mut *tx).await?;
                let others: i64 = sqlx::query(OTHER_ADMIN)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?
                    .col("n")?;
                if others == 0 {
                    return Err(StoreError::Conflict(Constraint::LastAdmin));
                }
            }
            // Disabling twice keeps the first instant.
            sqlx::query(
                "UPDATE users SET disabled_at = CASE WHEN $1 IS NULL THEN NULL \
                 ELSE COALESCE(disabled_at, $1) END WHERE id = $2",
            )
            .bind(at_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let ended = match at_ms {
                Some(now) => {
                    let rows = sqlx::query(END_SESSIONS)
                        .bind(id)
                        .bind(now)
                        .fetch_all(&mut *tx)
                        .await?;
                    rows.iter()
                        .map(|row| row.col("id"))
                        .collect::<StoreResult<Vec<Uuid>>>()?
                }
                None => Vec::new(),
            };
            tx.commit().await?;
            Ok(ended)
        })
    }

    async fn end_user_sessions(&self, id: Uuid, now_ms: i64) -> StoreResult<Vec<Uuid>> {
        with_db!(&self.write, |db| {
            let rows = sqlx::query(END_SESSIONS)
                .bind(id)
                .bind(now_ms)
                .fetch_all(db)
                .await?;
            rows.iter().map(|row| row.col("id")).collect()
        })
    }

    async fn set_password_hash(&self, id: Uuid, hash: &str) -> StoreResult<()> {
        let changed = with_db!(&self.write, |db| {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
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

    async fn admin_rooms(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<AdminRoomRow>> {
        let sql = format!("{ROOM_SELECT} WHERE ($1 IS NULL OR r.id > $1) ORDER BY r.id LIMIT $2");
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(db)
                .await?;
            rows.iter().map(room).collect()
        })
    }

    async fn admin_room(&self, id: Uuid) -> StoreResult<Option<AdminRoomRow>> {
        let sql = format!("{ROOM_SELECT} WHERE r.id = $1");
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
            row.as_ref().map(room).transpose()
        })
    }

    async fn close_room(&self, id: Uuid, at_ms: i64) -> StoreResult<()> {
        let changed = with_db!(&self.write, |db| {
            sqlx::query(
                "UPDATE rooms SET deleted_at = COALESCE(deleted_at, $1), direct_key = NULL \
                 WHERE id = $2",
            )
            .bind(at_ms)
            .bind(id)
            .execute(db)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound(Entity::Room));
        }
        Ok(())
    }
}
