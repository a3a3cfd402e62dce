//! The archive file: tar inside gzip, every entry hashed (SHA-256) as it is written and as
//! it is read, the manifest last. Reading accepts only the entries a backup can hold
//! (see [`classify`]), so a hostile archive cannot write outside the directory it is
//! unpacked into, and writes every file 0600 in 0700 directories whatever the archive says.
//!
//! Media objects sealed at rest (`media::sealed`) go into the archive as they are on
//! disk, still sealed; each is checked against its name by the SHA-256 of its plaintext,
//! which needs the at-rest key (`keys`), both when writing and when reading.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::{BackupError, BackupResult, Entry, FORMAT_VERSION, MANIFEST, Manifest};
use crate::files::{DATABASE_FILE, MEDIA_OBJECTS_DIR, private_dir};
use crate::media::sealed::{self, Keyring, SealError};
use crate::media::{object_path, valid_key};

/// The largest manifest read: about 1.5 million media objects' entries.
const MANIFEST_MAX_BYTES: u64 = 256 << 20;

/// Whether `name` may be a key file at the top of a backup: plain characters, no path, not
/// one of the archive's own names.
pub(super) fn key_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.starts_with(DATABASE_FILE)
        && name != MANIFEST
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// What an archive entry is, by its path.
enum Kind {
    Manifest,
    Database,
    Key,
    Media(String),
}

fn classify(path: &str) -> Option<Kind> {
    if path == MANIFEST {
        return Some(Kind::Manifest);
    }
    if path == DATABASE_FILE {
        return Some(Kind::Database);
    }
    if key_name_ok(path) {
        return Some(Kind::Key);
    }
    let key = path.strip_prefix(MEDIA_OBJECTS_DIR)?.strip_prefix('/')?;
    let key = key.rsplit('/').next()?;
    match valid_key(key) && object_path(key).ok()? == path[MEDIA_OBJECTS_DIR.len() + 1..] {
        true => Some(Kind::Media(key.to_owned())),
        false => None,
    }
}

/// Writes the archive to `path` (a new file, 0600): the database snapshot `db`, the key
/// files, the media objects (each checked against its key, opened with `sealing` when
/// sealed), then the manifest, completed from `manifest` with every entry. Synced before
/// it returns.
pub(super) fn write(
    path: &Path,
    mut manifest: Manifest,
    db: &Path,
    keys: &[(String, PathBuf)],
    media: &BTreeMap<String, PathBuf>,
    sealing: Option<&Keyring>,
) -> BackupResult<Manifest> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    // Media is mostly compressed already (images, video): the fast level costs little and
    // saves what there is to save in the database.
    let gz = GzEncoder::new(BufWriter::with_capacity(1 << 20, file), Compression::fast());
    let mut tar = tar::Builder::new(gz);
    manifest
        .entries
        .push(append_file(&mut tar, DATABASE_FILE, db)?);
    for (name, file) in keys {
        manifest.entries.push(append_file(&mut tar, name, file)?);
    }
    for (key, file) in media {
        let name = format!(
            "{MEDIA_OBJECTS_DIR}/{}",
            object_path(key)
                .map_err(|_| { BackupError::Corrupt(format!("invalid media key {key:?}")) })?
        );
        let entry = append_file(&mut tar, &name, file)?;
        // A sealed object is read once more, through its key, to hash the plaintext.
        if entry.sha256 != *key
            && sealed::plain_sha256(sealing, File::open(file)?).map_err(|e| match e {
                SealError::Io(e) => BackupError::Io(e),
                other => BackupError::Corrupt(format!("media object {key}: {other}")),
            })? != *key
        {
            return Err(BackupError::MediaDamaged(key.clone()));
        }
        manifest.entries.push(entry);
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    let mut header = header(json.len() as u64);
    tar.append_data(&mut header, MANIFEST, json.as_slice())?;
    let gz = tar.into_inner()?;
    let buffered = gz.finish()?;
    let file = buffered.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(manifest)
}

/// A regular file's header: mode 0600, no owner, time zero (a backup's time is in its
/// manifest).
fn header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// Appends the file at `file` as `name`, hashing it on the way.
fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    file: &Path,
) -> BackupResult<Entry> {
    let opened = File::open(file)?;
    let size = opened.metadata()?.len();
    let mut reader = Hashing::new(opened.take(size));
    let mut header = header(size);
    tar.append_data(&mut header, name, &mut reader)?;
    // tar pads a short read silently; a file that shrank under us is an error, not zeros.
    if reader.count != size {
        return Err(BackupError::Io(io::Error::other(format!(
            "{} changed while it was being backed up",
            file.display()
        ))));
    }
    Ok(Entry {
        path: name.to_owned(),
        size,
        sha256: reader.finish(),
    })
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader that copies what passes through it to `out`.
struct Tee<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A read error of the archive itself: an early end is truncation, anything else damage.
fn damaged(e: io::Error) -> BackupError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => BackupError::Truncated(e.to_string()),
        _ => BackupError::Corrupt(e.to_string()),
    }
}

/// Reads the whole archive at `file`, writing the database and keys (and, `with_media`,
/// the media objects) under `into`, and checks every entry against the manifest. Returns
/// the manifest. The database is not opened here; sealed media is opened with `sealing`.
pub(super) fn read(
    file: &Path,
    into: &Path,
    with_media: bool,
    sealing: Option<&Keyring>,
) -> BackupResult<Manifest> {
    let opened = File::open(file)?;
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::with_capacity(1 << 20, opened)));
    let mut seen: BTreeMap<String, Entry> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    for entry in archive.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| BackupError::Corrupt("an entry's name is not UTF-8".into()))?;
        if manifest.is_some() {
            return Err(BackupError::Corrupt(format!(
                "entry {path} after the manifest"
            )));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BackupError::Corrupt(format!(
                "entry {path} is not a regular file"
            )));
        }
        if seen.contains_key(&path) {
            return Err(BackupError::Corrupt(format!("entry {path} appears twice")));
        }
        let size = entry.header().size().map_err(damaged)?;
        let kind = classify(&path)
            .ok_or_else(|| BackupError::Corrupt(format!("unexpected entry {path:?}")))?;
        let dest = match &kind {
            Kind::Manifest => {
                if size > MANIFEST_MAX_BYTES {
                    return Err(BackupError::Corrupt("the manifest is too large".into()));
                }
                let mut json = Vec::new();
                (&mut entry)
                    .take(size)
                    .read_to_end(&mut json)
                    .map_err(damaged)?;
                if json.len() as u64 != size {
                    return Err(BackupError::Truncated("the manifest ends early".into()));
                }
                manifest = Some(serde_json::from_slice(&json).map_err(|e| {
                    BackupError::Corrupt(format!("the manifest does not parse: {e}"))
                })?);
                continue;
            }
            Kind::Database | Kind::Key => Some(into.join(&path)),
            Kind::Media(_) if with_media => Some(into.join(&path)),
            Kind::Media(_) => None,
        };
        let mut out: Box<dyn Write> = match dest {
            Some(dest) => {
                if let Some(dir) = dest.parent() {
                    private_dir(dir)?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                Box::new(BufWriter::new(options.open(dest)?))
            }
            None => Box::new(io::sink()),
        };
        let mut hashing = Hashing::new(&mut entry);
        // A media object's name is the SHA-256 of its plaintext, sealed or not.
        let plain_sha256 = match &kind {
            Kind::Media(key) => {
                let tee = Tee {
                    inner: &mut hashing,
                    out: &mut out,
                };
                Some(sealed::plain_sha256(sealing, tee).map_err(|e| match e {
                    SealError::Io(e) => damaged(e),
                    other => BackupError::Corrupt(format!("media object {key}: {other}")),
                })?)
            }
            _ => {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = hashing.read(&mut buf).map_err(damaged)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n])?;
                }
                None
            }
        };
        out.flush()?;
        drop(out);
        if hashing.count != size {
            return Err(BackupError::Truncated(format!("entry {path} ends early")));
        }
        let sha256 = hashing.finish();
        if let Kind::Media(key) = &kind
            && Some(key) != plain_sha256.as_ref()
        {
            return Err(BackupError::Corrupt(format!(
                "media object {key} does not match its SHA-256"
            )));
        }
        seen.insert(path.clone(), Entry { path, size, sha256 });
    }
    // Read the gzip stream to its end: its trailer (CRC and length) is checked only there.
    io::copy(archive.into_inner().by_ref(), &mut io::sink()).map_err(damaged)?;
    let manifest = manifest
        .ok_or_else(|| BackupError::Truncated("the archive ends before its manifest".into()))?;
    if manifest.format_version != FORMAT_VERSION {
        return Err(BackupError::UnsupportedVersion {
            found: manifest.format_version,
        });
    }
    let listed: BTreeSet<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
    if listed.len() != manifest.entries.len() {
        return Err(BackupError::Corrupt(
            "the manifest lists an entry twice".into(),
        ));
    }
    for want in &manifest.entries {
        match seen.get(&want.path) {
            None => {
                return Err(BackupError::Corrupt(format!(
                    "{} is in the manifest but not in the archive",
                    want.path
                )));
            }
            Some(got) if got.size != want.size || got.sha256 != want.sha256 => {
                return Err(BackupError::Corrupt(format!(
                    "{}: size or SHA-256 differs from the manifest",
                    want.path
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().find(|p| !listed.contains(p.as_str())) {
        return Err(BackupError::Corrupt(format!(
            "{extra} is in the archive but not in the manifest"
        )));
    }
    if !seen.contains_key(DATABASE_FILE) {
        return Err(BackupError::Corrupt("the archive has no database".into()));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_backups_own_paths_are_accepted() {
        let key = "ab".repeat(32);
        let media = format!("media/objects/ab/ab/{key}");
        assert!(matches!(classify(&media), Some(Kind::Media(k)) if k == key));
        assert!(matches!(classify("palaver.db"), Some(Kind::Database)));
        assert!(matches!(classify("manifest.json"), Some(Kind::Manifest)));
        assert!(matches!(classify("jwt-secret"), Some(Kind::Key)));
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "media/objects/../../x",
            "palaver.db-wal",
            ".hidden",
            "keys/jwt-secret",
            &format!("media/objects/cd/ab/{key}"),
            &format!("media/objects/ab/ab/{key}/x"),
            "media/objects/ab/ab/AB",
        ] {
            assert!(classify(bad).is_none(), "{bad} accepted");
        }
    }
}
