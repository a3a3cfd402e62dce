//! The cluster engine: PostgreSQL, shared by every node.
//!
//! Same contract as the SQLite engine, and every statement but the ones below is shared
//! with it (`store/sql/`). But several nodes write at once, so nothing may rely on being
//! the only writer:
//!
//! - An append locks the rows of its rooms (`SELECT … FOR NO KEY UPDATE`, in id order so two
//!   nodes' batches never deadlock) before it reads `last_seq`, members and idempotency
//!   keys. Whatever another node committed to the room is then visible, and nobody else
//!   can take a seq until this batch commits: seqs stay strictly increasing and gap-free.
//! - The unique index on `(room_id, sender_id, client_msg_id)` backs idempotency;
//!   inserts say `ON CONFLICT DO NOTHING`, and a conflict that slipped past the lock
//!   fails the batch (so it is retried and answered from the stored row) rather than
//!   leave a hole in the seqs.
//! - Read-modify-write operations (refresh rotation, markers, adding members) lock the
//!   row they depend on: `Engine::row_lock` gives the shared statements their clause.
//!
//! Instants are BIGINT milliseconds, as on SQLite, so `clock.rs` serves both engines.

mod append;
mod search;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use palaver_proto::User;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, PgConnection, Row};
use uuid::Uuid;

use super::sql::map::{self, USER_COLUMNS};
use super::sql::{Columns, Db, Decodes, Engine, SqlStore, is_unique_violation, like_prefix};
use super::{Appended, IndexQuery, NewMessage, SearchBatch, StoreError, StoreResult};

/// The PostgreSQL engine.
pub type PostgresStore = SqlStore<PgPool>;

/// How the connection pool is sized; `Default` suits one node.
#[derive(Debug, Clone)]
pub struct PgPoolSettings {
    /// Connections this node may hold. Every node has its own pool, so the server's
    /// `max_connections` must cover nodes × this.
    pub max_connections: u32,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PgPoolSettings {
    fn default() -> Self {
        // 16 keeps a handful of nodes well inside PostgreSQL's default of 100 while
        // leaving the group-commit writer and the readers room to run side by side.
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

impl SqlStore<PgPool> {
    /// Connects with the default pool settings; see [`PostgresStore::connect_with`].
    pub async fn connect(url: &str, schema: Option<&str>) -> StoreResult<Self> {
        Self::connect_with(url, schema, PgPoolSettings::default()).await
    }

    /// Connects to `url` (`postgres://user@host:port/db`) and runs the migrations.
    ///
    /// With `schema`, everything lives in that schema: it is created if missing and is
    /// the `search_path` of every pooled connection, so several deployments (or test
    /// runs) can share one database without seeing each other.
    pub async fn connect_with(
        url: &str,
        schema: Option<&str>,
        settings: PgPoolSettings,
    ) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let mut pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout);
        if let Some(schema) = schema {
            let quoted = quote_identifier(schema)?;
            // One connection of its own creates the schema, before the pool's
            // connections try to use it.
            let mut conn = PgConnection::connect_with(&options).await?;
            let created = conn
                .execute(format!("CREATE SCHEMA IF NOT EXISTS {quoted}").as_str())
                .await;
            // Two nodes starting at once can both pass "IF NOT EXISTS" and one then
            // trips over the catalog's unique index: the schema exists, which is the goal.
            if let Err(err) = created
                && !is_unique_violation(&err)
            {
                return Err(err.into());
            }
            conn.close().await?;
            let set_path = format!("SET search_path TO {quoted}");
            pool = pool.after_connect(move |conn, _meta| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    conn.execute(set_path.as_str()).await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(options).await?;
        // sqlx takes an advisory lock around migrations, so nodes starting together
        // apply them once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        // One pool: PostgreSQL runs reads beside writes by itself.
        Ok(Self {
            write: pool.clone(),
            read: pool,
        })
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.write.close().await;
    }
}

/// The schema name as a quoted identifier. Only plain names are accepted: it is
/// spliced into SQL (identifiers cannot be bound), so nothing may need escaping.
fn quote_identifier(name: &str) -> StoreResult<String> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !plain {
        return Err(StoreError::Invalid(format!(
            "schema name {name:?}: use lowercase letters, digits and _ (at most 63)"
        )));
    }
    Ok(format!("\"{name}\""))
}

impl Columns for PgRow {
    fn col<T: Decodes>(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }
}

#[async_trait]
impl Engine for PgPool {
    type Row = PgRow;

    const BYTEWISE: &'static str = " COLLATE \"C\"";

    fn db(&self) -> Db<'_> {
        Db::Postgres(self)
    }

    fn row_lock(clause: &'static str) -> &'static str {
        clause
    }

    async fn rows_with_ids(&self, select: &str, ids: &[Uuid]) -> StoreResult<Vec<PgRow>> {
        // One array parameter: one statement (and one prepared plan) whatever the count.
        Ok(sqlx::query(&format!("{select} = ANY($1)"))
            .bind(ids)
            .fetch_all(self)
            .await?)
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        // Usernames are stored lowercase; display names are compared lowercased (SQLite's
        // LIKE ignores case). `\` is PostgreSQL's default LIKE escape, and both columns
        // have a `text_pattern_ops` index for the prefix. `COLLATE "C"` orders by bytes,
        // as SQLite does.
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE (username LIKE $1 OR lower(display_name) LIKE $1) \
             AND deleted_at IS NULL ORDER BY username{} LIMIT $2",
            Self::BYTEWISE
        ))
        .bind(like_prefix(&prefix.to_lowercase()))
        .bind(i64::from(limit))
        .fetch_all(self)
        .await?;
        rows.iter().map(map::user).collect()
    }

    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>> {
        append::append(self, batch).await
    }

    async fn search_messages(&self, query: &IndexQuery<'_>) -> StoreResult<SearchBatch> {
        search::search(self, query).await
    }
}
