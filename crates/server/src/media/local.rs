//! Media on local disk: `<root>/ab/cd/<sha256>`. Objects are written to a temporary file,
//! synced, then renamed into place, so a crash leaves either the whole object or none.
//! Only the server's user may read them: directories 0700, files 0600.
//!
//! With an at-rest key (`[encryption]`) every object is written sealed (`media::sealed`):
//! the plaintext is encrypted on its way from the upload's buffer to the object file, and
//! reads decrypt as they stream, a range read only the chunks it covers. Objects stored
//! before the key was configured stay readable as they are, until `palaver rekey` seals
//! them.
//!
//! Object names stay the SHA-256 of the plaintext, sealed or not. They are what the
//! database (encrypted too) and backups use to find objects, and deduplication needs
//! them. What a name tells someone who can read the directory is what it told before:
//! that a file they already hold, and hash, is stored here; sizes show as before (a
//! sealed file is 56 bytes plus 16 per 64 KiB larger). Names keyed with a secret (an
//! HMAC of the hash) would hide that, at the price of renaming every object at each key
//! rotation and of a backup no longer checkable without the key; docs/DEPLOYMENT.md says
//! when that trade matters (and that file-system encryption covers names too).

use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::sealed::{self, FileCipher, HEADER_LEN, Keyring, TAG_LEN};
use super::{ByteStream, MediaError, MediaResult, MediaStore, object_path};
use crate::files::{create_private, private_dir};

/// A directory of content-addressed objects.
pub struct LocalMediaStore {
    root: PathBuf,
    tmp: PathBuf,
    /// Seals new objects and opens sealed ones; none: objects are stored as they come.
    keys: Option<Keyring>,
}

impl LocalMediaStore {
    /// Opens (and creates) `root`; `tmp` must be on the same file system, for renames.
    /// With `keys`, objects are sealed at rest.
    pub fn open(root: &Path, tmp: &Path, keys: Option<Keyring>) -> MediaResult<Self> {
        private_dir(root)?;
        private_dir(tmp)?;
        Ok(Self {
            root: root.to_owned(),
            tmp: tmp.to_owned(),
            keys,
        })
    }

    /// Seals the `len` bytes of `input` into a new temporary file, synced, and returns
    /// its path.
    async fn seal_to_tmp(
        &self,
        keys: &Keyring,
        len: u64,
        input: Box<dyn std::io::Read + Send>,
    ) -> MediaResult<PathBuf> {
        let tmp = self.tmp.join(format!("{}.sealed", uuid::Uuid::now_v7()));
        let (keys, out) = (keys.clone(), tmp.clone());
        let sealed = tokio::task::spawn_blocking(move || {
            let mut input = std::io::BufReader::with_capacity(256 * 1024, input);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(&out)?;
            let mut writer = std::io::BufWriter::with_capacity(256 * 1024, file);
            sealed::seal(&keys, len, &mut input, &mut writer)?;
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok::<_, sealed::SealError>(())
        })
        .await
        .map_err(std::io::Error::other)?;
        if let Err(err) = sealed {
            let _ = remove_if_exists(&tmp).await;
            return Err(err.into());
        }
        Ok(tmp)
    }

    fn path(&self, key: &str) -> MediaResult<PathBuf> {
        Ok(self.root.join(object_path(key)?))
    }

    /// Moves a synced file into place, unless the object is already there.
    async fn install(&self, key: &str, file: &Path) -> MediaResult<()> {
        let dest = self.path(key)?;
        if tokio::fs::try_exists(&dest).await? {
            // Same key, same bytes: the copy we have is as good.
            remove_if_exists(file).await?;
            return Ok(());
        }
        let dir = dest.parent().unwrap_or(&self.root).to_owned();
        let made = dir.clone();
        tokio::task::spawn_blocking(move || private_dir(&made))
            .await
            .map_err(std::io::Error::other)??;
        // Whoever made the file, the object is the server's alone.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).await?;
        }
        tokio::fs::rename(file, &dest).await?;
        // The rename is durable only once the directory entry is.
        tokio::fs::File::open(&dir).await?.sync_all().await?;
        Ok(())
    }
}

async fn remove_if_exists(path: &Path) -> MediaResult<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

#[async_trait]
impl MediaStore for LocalMediaStore {
    async fn put_file(&self, key: &str, path: &Path) -> MediaResult<()> {
        let Some(keys) = &self.keys else {
            tokio::fs::File::open(path).await?.sync_all().await?;
            return self.install(key, path).await;
        };
        if self.exists(key).await? {
            return remove_if_exists(path).await;
        }
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        let sealed = self.seal_to_tmp(keys, len, Box::new(file)).await?;
        let installed = self.install(key, &sealed).await;
        if installed.is_err() {
            let _ = remove_if_exists(&sealed).await;
        }
        // The plaintext was the store's to move or delete.
        remove_if_exists(path).await?;
        installed
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> MediaResult<()> {
        if let Some(keys) = &self.keys {
            if self.exists(key).await? {
                return Ok(());
            }
            let len = bytes.len() as u64;
            let sealed = self
                .seal_to_tmp(keys, len, Box::new(std::io::Cursor::new(bytes)))
                .await?;
            let installed = self.install(key, &sealed).await;
            if installed.is_err() {
                let _ = remove_if_exists(&sealed).await;
            }
            return installed;
        }
        let tmp = self.tmp.join(format!("{}.part", uuid::Uuid::now_v7()));
        let written = async {
            let mut file = create_private(&tmp).await?;
            file.write_all(&bytes).await?;
            file.sync_all().await?;
            self.install(key, &tmp).await
        }
        .await;
        if written.is_err() {
            let _ = remove_if_exists(&tmp).await;
        }
        written
    }

    async fn exists(&self, key: &str) -> MediaResult<bool> {
        Ok(tokio::fs::try_exists(self.path(key)?).await?)
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> MediaResult<ByteStream> {
        let mut file = match tokio::fs::File::open(self.path(key)?).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(MediaError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let mut head = [0u8; HEADER_LEN];
        let sealed = match &self.keys {
            Some(keys) => {
                let got = read_up_to(&mut file, &mut head).await?;
                file.seek(SeekFrom::Start(0)).await?;
                match sealed::is_sealed(&head[..got]) {
                    true => Some(keys),
                    false => None,
                }
            }
            None => None,
        };
        if let Some(keys) = sealed {
            return open_sealed(keys, file, &head, range).await;
        }
        let stream = match range {
            Some(r) => {
                file.seek(SeekFrom::Start(r.start)).await?;
                ReaderStream::new(file.take(r.end.saturating_sub(r.start))).boxed()
            }
            None => ReaderStream::new(file).boxed(),
        };
        Ok(stream.map(|chunk| chunk.map_err(MediaError::from)).boxed())
    }

    async fn delete(&self, key: &str) -> MediaResult<()> {
        remove_if_exists(&self.path(key)?).await
    }

    fn name(&self) -> &'static str {
        "local"
    }
}

/// Reads into `buf` until it is full or the file ends; how many bytes were read.
async fn read_up_to(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]).await? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The plaintext of a sealed object, or of `range` of it, decrypting only the chunks the
/// range covers. The file's length is checked against its header first, so a truncated
/// or extended object fails whichever part is read.
async fn open_sealed(
    keys: &Keyring,
    mut file: tokio::fs::File,
    head: &[u8; HEADER_LEN],
    range: Option<Range<u64>>,
) -> MediaResult<ByteStream> {
    let cipher = FileCipher::open(keys, head)?;
    let header = cipher.header();
    if file.metadata().await?.len() != header.sealed_len() {
        return Err(sealed::SealError::Length.into());
    }
    let span = header.span(range.unwrap_or(0..header.len));
    file.seek(SeekFrom::Start(header.chunk_offset(span.first)))
        .await?;
    struct Reading {
        file: tokio::fs::File,
        cipher: FileCipher,
        next: u64,
        end: u64,
        skip: u64,
        left: u64,
    }
    let state = Reading {
        file,
        next: span.first,
        end: span.first + span.count,
        skip: span.skip,
        left: span.take,
        cipher,
    };
    let stream = futures::stream::try_unfold(state, |mut s| async move {
        if s.next == s.end || s.left == 0 {
            return Ok(None);
        }
        let len = s.cipher.header().chunk_len(s.next) as usize + TAG_LEN;
        let mut chunk = vec![0u8; len];
        s.file.read_exact(&mut chunk).await?;
        s.cipher.open_chunk(s.next, &mut chunk)?;
        s.next += 1;
        let start = std::mem::take(&mut s.skip) as usize;
        let end = (start as u64 + s.left).min(chunk.len() as u64) as usize;
        s.left -= (end - start) as u64;
        let bytes = Bytes::from(chunk).slice(start..end);
        Ok::<_, MediaError>(Some((bytes, s)))
    });
    Ok(stream.boxed())
}
