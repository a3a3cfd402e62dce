//! Online backup, verification and restore of an embedded (SQLite + local media) data
//! directory: `palaver backup`, `palaver backup --verify`, `palaver restore`.
//!
//! A backup is one gzip-compressed tar file laid out like the data directory it came from,
//! so restoring is unpacking:
//!
//! ```text
//! palaver.db                     the database, a consistent snapshot (VACUUM INTO)
//! jwt-secret, vapid-private.pem  the keys: every regular file at the top of the data dir
//! media/objects/ab/cd/<sha256>   every media object the snapshot references
//! manifest.json                  last: format version, times, each entry's size and SHA-256
//! ```
//!
//! Why it is consistent while the server runs and writes: `VACUUM INTO` copies the
//! database inside one read transaction on a connection of its own, so the copy is the
//! database as of one commit (every message acknowledged before the backup began is in
//! it, and each room's seqs are whole), and WAL mode lets the server keep writing
//! meanwhile. Media objects are content-addressed and never change, so copying them after
//! the snapshot is safe; the only race is the orphan sweep deleting an object the snapshot
//! still lists, which [`create`] tells apart from a lost object by asking the live
//! database (see `collected_meanwhile`).
//!
//! The manifest comes last so the archive is written in one pass; a reader hashes every
//! entry as it goes and checks the lot against the manifest at the end. An archive cut
//! short therefore has no manifest (or a broken gzip trailer), and is refused as truncated.
//! Restore unpacks into a staging directory inside the target, verifies there, and only
//! then moves the files into place: a bad backup never touches the existing data.
//!
//! An encrypted data directory (`[encryption]`) gives an encrypted backup: `VACUUM INTO`
//! on SQLCipher writes the copy encrypted with the connection's key, and sealed media
//! objects are archived as they are. Making, verifying and restoring such a backup needs
//! the key the data was encrypted with (the configured one); the key itself is never in
//! the archive, as it is never in the data directory.

mod archive;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Row};

use crate::at_rest::AtRestKey;
use crate::files::{DATABASE_FILE, MEDIA_OBJECTS_DIR, private_dir};
use crate::media::sealed::Keyring;

/// The archive format this server writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The name of the manifest entry, the archive's last.
pub const MANIFEST: &str = "manifest.json";

/// Why a backup could not be made, verified or restored. Each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "no database at {0}: backup covers the embedded SQLite store; a PostgreSQL store is backed up with pg_basebackup (docs/DEPLOYMENT.md)"
    )]
    NoDatabase(PathBuf),
    #[error("the backup is truncated: {0}")]
    Truncated(String),
    #[error("the backup is corrupt: {0}")]
    Corrupt(String),
    #[error("the backup has format version {found}; this palaver reads version {FORMAT_VERSION}")]
    UnsupportedVersion { found: u32 },
    #[error(
        "the backup's database has schema version {found}, newer than this palaver knows ({known}); restore it with a newer palaver"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("media object {0} is referenced by the database but missing from the media store")]
    MediaMissing(String),
    #[error("media object {0} in the media store does not match its SHA-256")]
    MediaDamaged(String),
    #[error(
        "{0} is not empty; restore into an empty directory, or pass --force to replace its contents"
    )]
    NotEmpty(PathBuf),
    #[error("{0}")]
    Key(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias for backups.
pub type BackupResult<T> = Result<T, BackupError>;

/// What a backup holds, written as its last entry (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// When the database snapshot was taken, RFC 3339 UTC.
    pub created_at: String,
    /// The palaver version that wrote it.
    pub server_version: String,
    /// The newest migration applied to the database.
    pub schema_version: i64,
    /// Media records the orphan sweep collected between the snapshot and the copy of
    /// their objects; they are left out of the backup's database too.
    pub collected_meanwhile: usize,
    /// Every other entry, in archive order.
    pub entries: Vec<Entry>,
}

/// One file in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Path relative to the data directory, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

impl Manifest {
    /// Bytes of all entries.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// How many entries are media objects.
    pub fn media_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.path.starts_with(MEDIA_OBJECTS_DIR))
            .count()
    }
}

/// Opens a connection to the database file at `path`, which must exist, with the at-rest
/// `key` if there is one. The journal mode is left as the file has it (the server's is
/// WAL): asking for another would change it.
async fn connect(path: &Path, key: Option<&AtRestKey>) -> BackupResult<SqliteConnection> {
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30));
    let mut db = crate::store::sqlite::keyed(options, key).connect().await?;
    // SQLCipher reads nothing until asked: ask, so a key that does not fit says so here.
    if let Err(e) = sqlx::query("SELECT count(*) FROM sqlite_schema")
        .fetch_one(&mut db)
        .await
    {
        return Err(match crate::store::sqlite::key_mismatch(path, key, &e) {
            Some(why) => BackupError::Key(why),
            None => e.into(),
        });
    }
    Ok(db)
}

/// The hex SHA-256 keys of every media object the database at `db` references.
async fn referenced_media(db: &mut SqliteConnection) -> BackupResult<BTreeSet<String>> {
    let rows = sqlx::query(
        "SELECT sha256 AS key FROM media \
         UNION SELECT thumb_sha256 FROM media WHERE thumb_sha256 IS NOT NULL",
    )
    .fetch_all(&mut *db)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("key")?))
        .collect()
}

/// The newest migration applied to the database.
async fn schema_version(db: &mut SqliteConnection) -> BackupResult<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM _sqlx_migrations")
        .fetch_one(&mut *db)
        .await?;
    Ok(row.try_get("v")?)
}

/// Makes a backup of the data directory `data_dir` in `out`, while a server may be
/// running on it. `out` is written under a temporary name and renamed when complete, so
/// an interrupted backup never leaves a file that looks whole. `key` is the data
/// directory's at-rest key, if it is encrypted; the backup is encrypted with it too.
pub async fn create(
    data_dir: &Path,
    out: &Path,
    key: Option<&AtRestKey>,
) -> BackupResult<Manifest> {
    let db_path = data_dir.join(DATABASE_FILE);
    if !db_path.is_file() {
        return Err(BackupError::NoDatabase(db_path));
    }
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // The snapshot holds everything the data directory does: it is as private.
    let staging = tempfile::Builder::new()
        .prefix(".palaver-backup-")
        .tempdir_in(&out_dir)?;
    let snapshot = staging.path().join(DATABASE_FILE);
    let mut live = connect(&db_path, key).await?;
    let created_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    sqlx::query("VACUUM INTO ?")
        .bind(snapshot.to_string_lossy().into_owned())
        .execute(&mut live)
        .await?;
    restrict(&snapshot)?;
    let mut copy = connect(&snapshot, key).await?;
    let schema_version = schema_version(&mut copy).await?;
    let wanted = referenced_media(&mut copy).await?;
    let objects = data_dir.join(MEDIA_OBJECTS_DIR);
    let mut media = BTreeMap::new();
    let mut collected = BTreeSet::new();
    for key in wanted {
        let path = objects.join(crate::media::object_path(&key).map_err(|_| {
            BackupError::Corrupt(format!("the database names an invalid media key {key:?}"))
        })?);
        match path.is_file() {
            true => {
                media.insert(key, path);
            }
            false => {
                collected.insert(key);
            }
        }
    }
    // A missing object the live database no longer lists was collected by the orphan
    // sweep after the snapshot: its records go from the copy too. One it still lists is lost.
    let mut collected_meanwhile = 0;
    for key in &collected {
        let used: bool = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = ?1 OR thumb_sha256 = ?1) AS used",
        )
        .bind(key)
        .fetch_one(&mut live)
        .await?
        .try_get("used")?;
        if used {
            return Err(BackupError::MediaMissing(key.clone()));
        }
        collected_meanwhile +=
            sqlx::query("DELETE FROM media WHERE sha256 = ?1 OR thumb_sha256 = ?1")
                .bind(key)
                .execute(&mut copy)
                .await?
                .rows_affected() as usize;
    }
    live.close().await?;
    copy.close().await?;
    let keys = key_files(data_dir)?;
    let out = out.to_owned();
    let staged = staging.path().to_owned();
    let sealing = key.map(Keyring::new);
    let manifest = tokio::task::spawn_blocking(move || {
        let header = Manifest {
            format_version: FORMAT_VERSION,
            created_at,
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            schema_version,
            collected_meanwhile,
            entries: Vec::new(),
        };
        let partial = staged.join("backup.partial");
        let manifest = archive::write(
            &partial,
            header,
            &staged.join(DATABASE_FILE),
            &keys,
            &media,
            sealing.as_ref(),
        )?;
        std::fs::rename(&partial, &out)?;
        sync_parent(&out)?;
        Ok::<_, BackupError>(manifest)
    })
    .await
    .map_err(std::io::Error::other)??;
    drop(staging);
    Ok(manifest)
}

/// The keys and secrets: every regular file at the top of the data directory but the
/// database's own (`palaver.db`, `-wal`, `-shm`, `-journal`), whatever their names, so a
/// key added by a later version is backed up without a change here.
fn key_files(data_dir: &Path) -> BackupResult<Vec<(String, PathBuf)>> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with(DATABASE_FILE) || name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_file() && archive::key_name_ok(&name) {
            keys.push((name, entry.path()));
        }
    }
    keys.sort();
    Ok(keys)
}

/// Checks the backup at `file` without restoring it: the archive reads to its end, every
/// entry matches the manifest, the database passes `PRAGMA integrity_check` and is not
/// newer than this server, and every media object it references is in the archive.
/// An encrypted backup needs the `key` it was made with.
pub async fn verify(file: &Path, key: Option<&AtRestKey>) -> BackupResult<Manifest> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // Only the database is written out (it must be opened to be checked); media is hashed
    // as it streams past.
    let scratch = match tempfile::Builder::new()
        .prefix(".palaver-verify-")
        .tempdir_in(&dir)
    {
        Ok(t) => t,
        Err(_) => tempfile::Builder::new()
            .prefix("palaver-verify-")
            .tempdir()?,
    };
    let manifest = unpack_and_check(file, scratch.path(), false, key).await?;
    Ok(manifest)
}

/// Unpacks `file` into `into` (media only when `with_media`) and runs every check.
async fn unpack_and_check(
    file: &Path,
    into: &Path,
    with_media: bool,
    key: Option<&AtRestKey>,
) -> BackupResult<Manifest> {
    let (file_owned, into_owned) = (file.to_owned(), into.to_owned());
    let sealing = key.map(Keyring::new);
    let manifest = tokio::task::spawn_blocking(move || {
        archive::read(&file_owned, &into_owned, with_media, sealing.as_ref())
    })
    .await
    .map_err(std::io::Error::other)??;
    let db_path = into.join(DATABASE_FILE);
    let mut db = connect(&db_path, key).await.map_err(|e| match e {
        BackupError::Key(why) => BackupError::Key(why),
        e => BackupError::Corrupt(format!("the database does not open: {e}")),
    })?;
    let check: Vec<String> = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut db)
        .await
        .map_err(|e| BackupError::Corrupt(format!("the database does not open: {e}")))?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    if check != ["ok"] {
        return Err(BackupError::Corrupt(format!(
            "the database fails its integrity check: {}",
            check.join("; ")
        )));
    }
    let found = schema_version(&mut db).await?;
    if found != manifest.schema_version {
        return Err(BackupError::Corrupt(format!(
            "the manifest says schema version {}, the database has {found}",
            manifest.schema_version
        )));
    }
    let known = crate::store::sqlite::latest_schema_version();
    if found > known {
        return Err(BackupError::NewerSchema { found, known });
    }
    let in_archive: BTreeSet<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
    for key in referenced_media(&mut db).await? {
        let path = format!(
            "{MEDIA_OBJECTS_DIR}/{}",
            crate::media::object_path(&key).map_err(|_| {
                BackupError::Corrupt(format!("the database names an invalid media key {key:?}"))
            })?
        );
        if !in_archive.contains(path.as_str()) {
            return Err(BackupError::Corrupt(format!(
                "media object {key} is referenced by the database but not in the backup"
            )));
        }
    }
    db.close().await?;
    Ok(manifest)
}

/// Restores the backup at `file` into `data_dir`, after verifying it in full. A non-empty
/// `data_dir` is refused unless `force`, which replaces its contents (only once the backup
/// has been verified). No server may be running on `data_dir`. An encrypted backup needs
/// the `key` it was made with, and the restored directory stays encrypted with it.
pub async fn restore(
    file: &Path,
    data_dir: &Path,
    force: bool,
    key: Option<&AtRestKey>,
) -> BackupResult<Manifest> {
    private_dir(data_dir)?;
    let mut existing = Vec::new();
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        // A staging directory of an interrupted restore is ours to replace.
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(".palaver-restore-")
        {
            existing.push(entry.path());
        }
    }
    if !existing.is_empty() && !force {
        return Err(BackupError::NotEmpty(data_dir.to_owned()));
    }
    // Staged inside the target: the same file system, so moving into place is renames.
    let staging = tempfile::Builder::new()
        .prefix(".palaver-restore-")
        .tempdir_in(data_dir)?;
    let manifest = unpack_and_check(file, staging.path(), true, key).await?;
    for path in existing {
        match std::fs::symlink_metadata(&path)?.is_dir() {
            true => std::fs::remove_dir_all(&path)?,
            false => std::fs::remove_file(&path)?,
        }
    }
    for entry in std::fs::read_dir(staging.path())? {
        let entry = entry?;
        std::fs::rename(entry.path(), data_dir.join(entry.file_name()))?;
    }
    drop(staging);
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(manifest)
}

/// Mode 0600: a snapshot is as secret as the database.
fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Makes a rename into `path`'s directory durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => std::fs::File::open(p)?.sync_all(),
        _ => std::fs::File::open(".")?.sync_all(),
    }
}
