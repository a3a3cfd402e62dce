//! The store, written once for both engines.
//!
//! Every area trait is implemented here, once, for `SqlStore<P>`, where `P` is the
//! engine's connection pool (`SqlitePool` or `PgPool`). One SQL string serves both:
//!
//! - Parameters are `$1`, `$2`, …: PostgreSQL's syntax, which sqlx's SQLite driver binds by
//!   number as well (`SqliteArguments::bind` in sqlx-sqlite reads the `$N` name).
//! - The schemas match column for column: ids are UUIDs (BLOB on SQLite, `uuid` on
//!   PostgreSQL), instants BIGINT milliseconds, flags `bool` (INTEGER 0/1 on SQLite, which
//!   sqlx binds and reads as `bool`). So one mapper reads a row of either engine (map.rs,
//!   through [`Columns`]).
//! - Statements keep to what both dialects accept: `ON CONFLICT … DO NOTHING | DO UPDATE`,
//!   `RETURNING`, multi-row `VALUES`, `$n IS NULL` (sqlx tells PostgreSQL each
//!   parameter's type).
//!
//! A body runs on the pool of either engine through [`with_db!`]: it is compiled once for
//! each, so inside it the pool, rows and transactions have that engine's concrete types.
//! (Code generic over `sqlx::Database` would need a dozen higher-ranked bounds repeated
//! on every impl, because a trait's where-clauses are not implied where it is used.)
//!
//! What differs between the engines is theirs, behind [`Engine`], in their folders
//! (`sqlite/`, `postgres/`): opening the pools, the batch append (SQLite: one writer, a
//! multi-row INSERT and a trigger; PostgreSQL: room locks and arrays), the
//! case-insensitive user search, how a list of ids is passed, row locks, byte-wise
//! ordering of text, and the search index (`search.rs`).

use async_trait::async_trait;
use palaver_proto::User;
use sqlx::{Decode, Postgres, Sqlite, Type};
use uuid::Uuid;

use super::{Appended, IndexQuery, NewMessage, SearchBatch, Store, StoreResult};

/// Runs `$body` with `$db` bound to the pool `$pool` holds, whichever engine it is.
///
/// The body is written once and compiled once per engine: inside it `$db` is a
/// `&SqlitePool` or a `&PgPool`, so queries, rows and transactions have concrete types.
/// It is not a closure, only written like one so that rustfmt formats it: `?`, `return`
/// and `.await` act on the enclosing function.
macro_rules! with_db {
    ($pool:expr, |$db:ident| $body:expr) => {
        match $crate::store::sql::Engine::db($pool) {
            $crate::store::sql::Db::Sqlite($db) => $body,
            $crate::store::sql::Db::Postgres($db) => $body,
        }
    };
}

mod accounts;
mod admin;
mod audit;
mod blocks;
pub(super) mod conversation;
pub(super) mod map;
mod media;
pub(super) mod messages;
mod mls;
mod personal;
mod pictures;
mod previews;
mod push;
mod receipts;
mod reports;
mod rooms;
pub(super) mod search;
mod second_factor;

/// The store on one engine: `SqlStore<SqlitePool>` is `SqliteStore`, `SqlStore<PgPool>`
/// is `PostgresStore`. Constructed by the engine's module.
pub struct SqlStore<P> {
    /// Writes, and reads inside a write transaction.
    pub(super) write: P,
    /// Reads on their own. On SQLite, read-only connections beside the one writer; on
    /// PostgreSQL, the same pool as `write`.
    pub(super) read: P,
}

/// A pool of either engine, as [`with_db!`] takes it apart.
pub enum Db<'a> {
    Sqlite(&'a sqlx::SqlitePool),
    Postgres(&'a sqlx::PgPool),
}

/// What the engines do differently, implemented by each engine's pool type.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// A row of this engine.
    type Row: Columns + Send;

    /// A `COLLATE` clause (with its leading space) that orders text byte by byte, as
    /// SQLite does by default, whatever PostgreSQL's locale is.
    const BYTEWISE: &'static str;

    /// This pool, for [`with_db!`].
    fn db(&self) -> Db<'_>;

    /// `clause` (`FOR UPDATE` and the like) where several nodes write at once. SQLite has
    /// none: its one write connection already runs write transactions one at a time.
    fn row_lock(clause: &'static str) -> &'static str;

    /// The rows `select` (`SELECT … FROM t WHERE id`, completed here) finds for `ids`, in
    /// no particular order.
    async fn rows_with_ids(&self, select: &str, ids: &[Uuid]) -> StoreResult<Vec<Self::Row>>;

    /// `AccountStore::search_users`: "starts with, ignoring case" is said differently.
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>>;

    /// `MessageStore::append_messages`, on the write pool: how a batch is made safe
    /// against other writers, and how it is inserted, is the engine's.
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>>;

    /// `SearchStore::search_messages`, on the read pool: each engine reads its own index.
    async fn search_messages(&self, query: &IndexQuery<'_>) -> StoreResult<SearchBatch>;
}

/// A value both engines decode.
pub trait Decodes:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Decodes for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A row of either engine, read by column name: what lets one mapper serve both.
pub trait Columns {
    fn col<T: Decodes>(&self, name: &str) -> StoreResult<T>;
}

#[async_trait]
impl<P: Engine> Store for SqlStore<P> {
    async fn ping(&self) -> StoreResult<()> {
        with_db!(&self.read, |db| {
            sqlx::query("SELECT 1").execute(db).await?;
        });
        Ok(())
    }

    async fn close(&self) {
        for pool in [self.read.db(), self.write.db()] {
            match pool {
                Db::Sqlite(pool) => pool.close().await,
                Db::Postgres(pool) => pool.close().await,
            }
        }
    }
}

/// Whether a statement broke a unique index or constraint.
pub(super) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// An instant as stored: milliseconds since the Unix epoch.
pub(super) fn ms_of(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A `LIKE` pattern for "starts with `prefix`", its wildcards escaped with `\` so that a
/// `%` or `_` in the prefix matches only itself.
pub(super) fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
