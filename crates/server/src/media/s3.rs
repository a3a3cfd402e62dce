//! Media in an S3-compatible object store (AWS S3, SeaweedFS, MinIO, Ceph …) through the
//! `object_store` crate. S3 writes are atomic per object: a failed or aborted upload
//! leaves nothing readable behind.

use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::{ByteStream, MediaError, MediaResult, MediaStore, object_path};
use crate::config::MediaConfig;

/// Files up to this size go up in one PUT; larger ones in parts of this size.
const PART_BYTES: usize = 8 * 1024 * 1024;

/// One bucket of an S3-compatible store.
pub struct S3MediaStore {
    store: AmazonS3,
}

impl S3MediaStore {
    /// Connects lazily: nothing is sent until the first request.
    pub fn open(config: &MediaConfig) -> MediaResult<Self> {
        // Credentials and region not in the configuration come from AWS_* variables.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.s3_bucket)
            .with_region(&config.s3_region)
            .with_allow_http(config.s3_allow_http);
        if let Some(endpoint) = &config.s3_endpoint {
            // Path-style requests: self-hosted stores rarely have wildcard DNS.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(id) = &config.s3_access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.s3_secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder
            .build()
            .map_err(|e| MediaError::Config(e.to_string()))?;
        Ok(Self { store })
    }

    /// Some S3-compatible stores (SeaweedFS among them) show a completed multipart
    /// upload a moment after completing it; an upload is answered only once its object
    /// can be read, so a client never gets an id it cannot fetch.
    async fn wait_until_visible(&self, key: &str) -> MediaResult<()> {
        for _ in 0..50 {
            if self.exists(key).await? {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(MediaError::Config(format!(
            "object {key} not visible 5 s after its upload completed"
        )))
    }

    fn path(key: &str) -> MediaResult<ObjectPath> {
        Ok(ObjectPath::from(object_path(key)?))
    }
}

fn not_found(err: object_store::Error) -> MediaError {
    match err {
        object_store::Error::NotFound { .. } => MediaError::NotFound,
        other => other.into(),
    }
}

#[async_trait]
impl MediaStore for S3MediaStore {
    async fn put_file(&self, key: &str, path: &Path) -> MediaResult<()> {
        let location = Self::path(key)?;
        if self.exists(key).await? {
            tokio::fs::remove_file(path).await?;
            return Ok(());
        }
        let mut file = tokio::fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        if size <= PART_BYTES as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).await?;
            self.store.put(&location, PutPayload::from(bytes)).await?;
        } else {
            let mut upload = WriteMultipart::new_with_chunk_size(
                self.store.put_multipart(&location).await?,
                PART_BYTES,
            );
            let mut buf = vec![0u8; 1024 * 1024];
            let sent = async {
                loop {
                    let n = file.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    upload.wait_for_capacity(2).await?;
                    upload.write(&buf[..n]);
                }
                Ok::<_, MediaError>(())
            }
            .await;
            match sent {
                Ok(()) => {
                    upload.finish().await?;
                    self.wait_until_visible(key).await?;
                }
                Err(err) => {
                    let _ = upload.abort().await;
                    return Err(err);
                }
            }
        }
        tokio::fs::remove_file(path).await?;
        Ok(())
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> MediaResult<()> {
        self.store
            .put(&Self::path(key)?, PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> MediaResult<bool> {
        match self.store.head(&Self::path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> MediaResult<ByteStream> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&Self::path(key)?, options)
            .await
            .map_err(not_found)?;
        Ok(result
            .into_stream()
            .map(|chunk| chunk.map_err(MediaError::from))
            .boxed())
    }

    async fn delete(&self, key: &str) -> MediaResult<()> {
        match self.store.delete(&Self::path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn name(&self) -> &'static str {
        "s3"
    }
}
