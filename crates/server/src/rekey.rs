//! `palaver rekey`: moving an embedded data directory to a new at-rest key, or encrypting
//! one that is not encrypted yet (docs/DEPLOYMENT.md, "Encryption at rest").
//!
//! The database goes first, in one step that either happens whole or not at all:
//! - encrypted with the old key: SQLCipher's `PRAGMA rekey`, which rewrites every page in
//!   one transaction (in rollback-journal mode: the WAL is checkpointed and left first,
//!   and WAL mode restored after);
//! - not encrypted: `sqlcipher_export` into a new file beside it, synced, then renamed
//!   over the old one.
//!
//! Then every media object not yet sealed with the new key is read through the old key
//! (or as it is, if it was stored unsealed), checked against its name (the SHA-256 of its
//! plaintext), sealed with the new key into a temporary file, synced and renamed over the
//! old object. An object is always whole under one key or the other.
//!
//! So an interrupted run leaves a directory that the same command, run again, finishes:
//! it opens the database with the new key if the old one no longer fits, and skips
//! objects already sealed with the new key. Until it reports done, both keys are needed
//! (the server can run mid-way with `key_file` the new key and `previous_key_file` the
//! old). Switching the journal mode needs the database to itself, so a server still
//! running on the directory makes the command fail before anything changes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};

use crate::at_rest::{AtRestKey, KeyId};
use crate::files::{DATABASE_FILE, MEDIA_OBJECTS_DIR, private_dir};
use crate::media::sealed::{self, Keyring, PlainReader, SealError};
use crate::store::sqlite::{is_plain, key_mismatch, keyed};

/// Why a rekey stopped. Whatever it is, the directory is readable with the keys it was
/// given, and running the command again carries on.
#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error("{0}")]
    Key(String),
    #[error("no database at {0}")]
    NoDatabase(PathBuf),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("media object {key}: {error}")]
    Media { key: String, error: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// What a rekey did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RekeyReport {
    /// The database was rekeyed (or encrypted) now; false: it already had the new key.
    pub database_changed: bool,
    /// Media objects sealed with the new key now.
    pub media_resealed: usize,
    /// Media objects that already were.
    pub media_already: usize,
}

/// Moves the data directory `data_dir` from `old` (none: not encrypted yet) to `new`.
/// No server may be running on it.
pub async fn rekey(
    data_dir: &Path,
    old: Option<&AtRestKey>,
    new: &AtRestKey,
) -> Result<RekeyReport, RekeyError> {
    if let Some(old) = old
        && old.id() == new.id()
        && old.sqlcipher_pragma() != new.sqlcipher_pragma()
    {
        return Err(RekeyError::Key(format!(
            "the old and the new key share the id {}: make another new key",
            new.id()
        )));
    }
    let mut report = RekeyReport {
        database_changed: rekey_database(&data_dir.join(DATABASE_FILE), old, new).await?,
        ..RekeyReport::default()
    };
    let keys = match old {
        Some(old) => Keyring::new(new).with_previous(old),
        None => Keyring::new(new),
    };
    let objects = data_dir.join(MEDIA_OBJECTS_DIR);
    let tmp = data_dir.join("media").join("tmp");
    let found = tokio::task::spawn_blocking(move || reseal_all(&objects, &tmp, &keys))
        .await
        .map_err(std::io::Error::other)??;
    report.media_resealed = found.0;
    report.media_already = found.1;
    Ok(report)
}

async fn connect(path: &Path, key: Option<&AtRestKey>) -> Result<SqliteConnection, sqlx::Error> {
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(5));
    let mut db = keyed(options, key).connect().await?;
    sqlx::query("SELECT count(*) FROM sqlite_schema")
        .fetch_one(&mut db)
        .await?;
    Ok(db)
}

/// The database step; whether it changed anything.
async fn rekey_database(
    path: &Path,
    old: Option<&AtRestKey>,
    new: &AtRestKey,
) -> Result<bool, RekeyError> {
    let plain = match is_plain(path)? {
        None => return Err(RekeyError::NoDatabase(path.to_owned())),
        Some(plain) => plain,
    };
    if plain {
        if let Some(old) = old {
            return Err(RekeyError::Key(format!(
                "the database {} is not encrypted, yet a key (id {}) is configured: \
                 to encrypt it, run rekey with no key configured",
                path.display(),
                old.id()
            )));
        }
        encrypt_plain(path, new).await?;
        return Ok(true);
    }
    // Already under the new key: an earlier run got this far.
    if connect(path, Some(new)).await.is_ok() {
        return Ok(false);
    }
    let mut db = connect(path, old).await.map_err(|e| {
        RekeyError::Key(
            key_mismatch(path, old, &e).unwrap_or_else(|| e.to_string())
                + " (nor does the new key open it)",
        )
    })?;
    // Out of WAL mode for the rekey; this needs the database to itself.
    leave_wal(&mut db, path).await?;
    sqlx::query(&format!("PRAGMA rekey = {}", new.sqlcipher_pragma()))
        .execute(&mut db)
        .await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut db)
        .await?;
    db.close().await?;
    // Proof, before anything else changes: the new key opens it.
    let mut check = connect(path, Some(new))
        .await
        .map_err(|e| RekeyError::Key(format!("the rekeyed database does not open: {e}")))?;
    let ok: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut check)
        .await?;
    if ok != "ok" {
        return Err(RekeyError::Key(format!(
            "the rekeyed database fails its check: {ok}"
        )));
    }
    check.close().await?;
    Ok(true)
}

/// Takes the database out of WAL mode, which needs it to itself: a running server keeps
/// it in WAL mode, and is told to stop first.
async fn leave_wal(db: &mut SqliteConnection, path: &Path) -> Result<(), RekeyError> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *db)
        .await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode = DELETE")
        .fetch_one(&mut *db)
        .await?;
    if mode != "delete" {
        return Err(RekeyError::Key(format!(
            "the database {} is in use (journal mode stays {mode}): stop the server first",
            path.display()
        )));
    }
    Ok(())
}

/// An unencrypted database, encrypted: exported into a new file, synced, renamed over it.
async fn encrypt_plain(path: &Path, new: &AtRestKey) -> Result<(), RekeyError> {
    let next = path.with_extension("db.encrypting");
    for stale in [next.clone(), path.with_extension("db.encrypting-journal")] {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    crate::files::create_private_file(&next)?;
    let mut db = connect(path, None).await?;
    leave_wal(&mut db, path).await?;
    let quoted = next.to_string_lossy().replace('\'', "''");
    sqlx::query(&format!(
        "ATTACH DATABASE '{quoted}' AS encrypted KEY {}",
        new.sqlcipher_pragma()
    ))
    .execute(&mut db)
    .await?;
    sqlx::query("SELECT sqlcipher_export('encrypted')")
        .execute(&mut db)
        .await?;
    sqlx::query("DETACH DATABASE encrypted")
        .execute(&mut db)
        .await?;
    db.close().await?;
    {
        let mut check = connect(&next, Some(new)).await?;
        let ok: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&mut check)
            .await?;
        if ok != "ok" {
            return Err(RekeyError::Key(format!(
                "the encrypted copy fails its check: {ok}"
            )));
        }
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut check)
            .await?;
        check.close().await?;
    }
    std::fs::File::open(&next)?.sync_all()?;
    std::fs::rename(&next, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Every object under `objects` sealed with the keyring's current key; (resealed now,
/// already sealed).
fn reseal_all(objects: &Path, tmp: &Path, keys: &Keyring) -> Result<(usize, usize), RekeyError> {
    private_dir(tmp)?;
    let mut counts = (0, 0);
    if !objects.is_dir() {
        return Ok(counts);
    }
    let mut stack = vec![objects.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let Some(key) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !crate::media::valid_key(&key) {
                continue;
            }
            match reseal(&path, &key, tmp, keys)? {
                true => counts.0 += 1,
                false => counts.1 += 1,
            }
        }
    }
    Ok(counts)
}

/// Seals one object with the current key unless it already is; whether it was resealed.
fn reseal(path: &Path, key: &str, tmp: &Path, keys: &Keyring) -> Result<bool, RekeyError> {
    let failed = |error: String| RekeyError::Media {
        key: key.to_owned(),
        error,
    };
    let file = std::fs::File::open(path)?;
    let sealed_len = file.metadata()?.len();
    let reader = PlainReader::new(Some(keys), std::io::BufReader::new(file))
        .map_err(|e| failed(e.to_string()))?;
    let current: KeyId = keys.current_id();
    if reader.sealed_with() == Some(current) {
        return Ok(false);
    }
    let len = match reader.plain_len() {
        Some(len) => len,
        None => sealed_len,
    };
    let out = tmp.join(format!("{}.rekey", uuid::Uuid::now_v7()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut writer = std::io::BufWriter::new(options.open(&out)?);
        let mut hashing = HashingReader {
            inner: reader,
            hasher: Sha256::new(),
        };
        sealed::seal(keys, len, &mut hashing, &mut writer).map_err(|e| match e {
            SealError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                failed(e.to_string())
            }
            other => failed(other.to_string()),
        })?;
        if hex::encode(hashing.hasher.finalize()) != key {
            return Err(failed(
                "its plaintext does not match its name (damaged); left as it is".into(),
            ));
        }
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&out, path)?;
        sync_dir(path.parent().unwrap_or(tmp))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&out);
    }
    result.map(|()| true)
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
