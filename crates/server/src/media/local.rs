//! Media on local disk: `<root>/ab/cd/<sha256>`. Objects are written to a temporary file,
//! synced, then renamed into place, so a crash leaves either the whole object or none.
//! Only the server's user may read them: directories 0700, files 0600.

use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::{ByteStream, MediaError, MediaResult, MediaStore, object_path};
use crate::files::{create_private, private_dir};

/// A directory of content-addressed objects.
pub struct LocalMediaStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl LocalMediaStore {
    /// Opens (and creates) `root`; `tmp` must be on the same file system, for renames.
    pub fn open(root: &Path, tmp: &Path) -> MediaResult<Self> {
        private_dir(root)?;
        private_dir(tmp)?;
        Ok(Self {
            root: root.to_owned(),
            tmp: tmp.to_owned(),
        })
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
        tokio::fs::File::open(path).await?.sync_all().await?;
        self.install(key, path).await
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> MediaResult<()> {
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
