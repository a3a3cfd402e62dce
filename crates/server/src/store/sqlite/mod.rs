//! The embedded engine: one SQLite file in WAL mode with `synchronous=FULL`, so an
//! acknowledged write survives a crash or a power cut.
//!
//! All writes go through a pool of exactly one connection: SQLite allows one writer at a
//! time anyway, and queueing in the pool avoids `SQLITE_BUSY` on lock upgrades. Reads use
//! their own pool and run beside the writer (WAL readers never block it). Being the only
//! writer is also why nothing here takes row locks.
//!
//! Every statement but the ones below is shared with PostgreSQL (`store/sql/`); this
//! module opens the pools and says what SQLite says differently.
//!
//! The SQLite is SQLCipher (see Cargo.toml). With an at-rest key (`[encryption]`) every
//! connection of both pools sets `PRAGMA key` before any other statement (sqlx runs the
//! `key` pragma first), so every page of the database and of its WAL is encrypted. A key
//! that does not fit the file is found by the first read, before anything is written, and
//! reported as what it is ([`key_mismatch`]).

mod append;
mod search;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use palaver_proto::User;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use uuid::Uuid;

use super::sql::map::{self, USER_COLUMNS};
use super::sql::{Columns, Db, Decodes, Engine, SqlStore, like_prefix};
use super::{Appended, IndexQuery, NewMessage, SearchBatch, StoreError, StoreResult};
use crate::at_rest::AtRestKey;

/// The SQLite schema's migrations, embedded.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The newest SQLite migration this build knows: a database past it came from a newer
/// server (backups check this before restoring).
pub fn latest_schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The SQLite engine.
pub type SqliteStore = SqlStore<SqlitePool>;

/// Rows per multi-row statement: at most 9 parameters each stays far below SQLite's
/// limit (32,766).
const ROWS_PER_STATEMENT: usize = 256;

/// The first 16 bytes of an unencrypted SQLite database.
const PLAIN_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// `options` with `PRAGMA key` set, when there is a key: sqlx sends it first on every new
/// connection, before any statement that reads the file.
pub fn keyed(options: SqliteConnectOptions, key: Option<&AtRestKey>) -> SqliteConnectOptions {
    match key {
        Some(key) => options.pragma("key", key.sqlcipher_pragma()),
        None => options,
    }
}

/// Whether the database file at `path` is unencrypted SQLite (a missing or empty file
/// is neither: it becomes whatever is written first).
pub fn is_plain(path: &Path) -> std::io::Result<Option<bool>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(16);
    match std::fs::File::open(path) {
        Ok(file) => file.take(16).read_to_end(&mut head)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(match head.len() {
        0 => None,
        _ => Some(head == PLAIN_HEADER),
    })
}

/// What to tell the operator when the file at `path` did not open with `key`: `Some`
/// when `err` is SQLite's "file is not a database", which is what SQLCipher answers for
/// a wrong key, a key given for a plain file, or no key for an encrypted one.
pub fn key_mismatch(path: &Path, key: Option<&AtRestKey>, err: &sqlx::Error) -> Option<String> {
    let code = err.as_database_error().and_then(|e| e.code());
    // SQLITE_NOTADB, and its message when it comes as another kind of error.
    if code.as_deref() != Some("26") && !err.to_string().contains("file is not a database") {
        return None;
    }
    let plain = is_plain(path);
    let path = path.display();
    Some(match (key, plain) {
        (Some(key), Ok(Some(true))) => format!(
            "the database {path} is not encrypted, but an encryption key (id {}) is \
             configured: encrypt it with `palaver rekey --new-key-file FILE` and no key \
             configured (docs/DEPLOYMENT.md, \"Encryption at rest\"), or remove the key",
            key.id()
        ),
        (Some(key), _) => format!(
            "the database {path} cannot be read with the configured encryption key (id {}): \
             it was encrypted with another key (after a `palaver rekey`, configure the new \
             key), or it is damaged; nothing was written",
            key.id()
        ),
        (None, _) => format!(
            "the database {path} is encrypted (or is not a database) and no encryption key \
             is configured: set encryption.key_file or PALAVER_ENCRYPTION__KEY"
        ),
    })
}

impl SqlStore<SqlitePool> {
    /// Opens (creating if needed) the database file and runs the migrations. With `key`
    /// the database is encrypted (a new one is created encrypted).
    pub async fn open(path: &Path, key: Option<&AtRestKey>) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let options = keyed(options, key);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| match key_mismatch(path, key, &e) {
                Some(why) => StoreError::Key(why),
                None => e.into(),
            })?;
        MIGRATOR.run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { write, read })
    }
}

impl Columns for SqliteRow {
    fn col<T: Decodes>(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }
}

#[async_trait]
impl Engine for SqlitePool {
    type Row = SqliteRow;

    /// SQLite compares text byte by byte unless told otherwise.
    const BYTEWISE: &'static str = "";

    fn db(&self) -> Db<'_> {
        Db::Sqlite(self)
    }

    fn row_lock(_clause: &'static str) -> &'static str {
        ""
    }

    async fn rows_with_ids(&self, select: &str, ids: &[Uuid]) -> StoreResult<Vec<SqliteRow>> {
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("{select} IN ({})", vec!["?"; chunk.len()].join(", "));
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            rows.extend(query.fetch_all(self).await?);
        }
        Ok(rows)
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        // SQLite's LIKE ignores (ASCII) case by itself, and has no escape character
        // unless given one.
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE (username LIKE ?1 ESCAPE '\\' OR display_name LIKE ?1 ESCAPE '\\') \
               AND deleted_at IS NULL ORDER BY username LIMIT ?2"
        ))
        .bind(like_prefix(prefix))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Durability is a setting: checked here, not assumed.
    #[tokio::test]
    async fn writes_are_fsynced_write_ahead_logged_and_constrained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("palaver.db"), None)
            .await
            .expect("open");
        let pragma = |name: &'static str| {
            let pool = store.write.clone();
            async move {
                sqlx::query_scalar::<_, String>(&format!(
                    "SELECT CAST({name} AS TEXT) FROM pragma_{name}"
                ))
                .fetch_one(&pool)
                .await
                .expect(name)
            }
        };
        // 2 = FULL: the WAL is fsynced at every commit, so an ack survives power loss.
        assert_eq!(pragma("synchronous").await, "2");
        assert_eq!(pragma("journal_mode").await, "wal");
        assert_eq!(pragma("foreign_keys").await, "1");
        // One writer: commits never interleave, and a batch is one transaction.
        assert_eq!(store.write.options().get_max_connections(), 1);
    }

    /// The SQLite is SQLCipher; with a key the file is encrypted from its first page, and
    /// FTS5 with the trigram tokenizer (what search uses) works on it as on plain SQLite.
    #[tokio::test]
    async fn with_a_key_the_file_is_encrypted_and_fts5_still_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("palaver.db");
        let key = AtRestKey::generate();
        let store = SqliteStore::open(&path, Some(&key)).await.expect("open");
        let version: String = sqlx::query_scalar("PRAGMA cipher_version")
            .fetch_one(&store.write)
            .await
            .expect("cipher_version");
        assert!(version.starts_with('4'), "SQLCipher {version}");
        for sql in [
            "CREATE VIRTUAL TABLE probe USING fts5(body, tokenize = 'trigram')",
            "INSERT INTO probe (body) VALUES ('encrypted search still finds substrings')",
        ] {
            sqlx::query(sql).execute(&store.write).await.expect(sql);
        }
        let hits: i64 = sqlx::query_scalar("SELECT count(*) FROM probe WHERE probe MATCH 'substr'")
            .fetch_one(&store.read)
            .await
            .expect("match");
        assert_eq!(hits, 1);
        assert_eq!(is_plain(&path).expect("read"), Some(false));
        drop(store);
        // Plain SQLite (no key) on the same build still makes plain files.
        let plain = dir.path().join("plain.db");
        drop(SqliteStore::open(&plain, None).await.expect("open plain"));
        assert_eq!(is_plain(&plain).expect("read"), Some(true));
    }
}
