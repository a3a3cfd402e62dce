//! Where uploaded bytes live. `MediaStore` is the one interface; each engine is a module:
//! `local` (a directory, the default) and `s3` (any S3-compatible object store).
//!
//! Objects are content-addressed: the key is the hex SHA-256 of the bytes, so the same
//! file is stored once however often it is uploaded, and an object never changes.
//! `sealed` is the format of objects encrypted at rest on local disk (`[encryption]`).

pub mod local;
pub mod s3;
pub mod sealed;

use std::ops::Range;
use std::path::Path;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// What can go wrong in a media store.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media object not found")]
    NotFound,
    #[error("media store I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("media store misconfigured: {0}")]
    Config(String),
    #[error("media object cannot be opened: {0}")]
    Sealed(#[from] sealed::SealError),
}

/// Result alias for media stores.
pub type MediaResult<T> = Result<T, MediaError>;

/// The bytes of an object (or of a range of it), as they arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = MediaResult<Bytes>> + Send>>;

/// Content-addressed object storage for uploads and thumbnails.
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// Stores the file at `path` (which the store may move or delete) under `key`.
    /// Either the whole object is stored or nothing is: no reader ever sees a part.
    async fn put_file(&self, key: &str, path: &Path) -> MediaResult<()>;
    /// Stores `bytes` under `key`, atomically.
    async fn put_bytes(&self, key: &str, bytes: Bytes) -> MediaResult<()>;
    /// Whether an object is stored under `key`.
    async fn exists(&self, key: &str) -> MediaResult<bool>;
    /// The object's bytes, or the bytes in `range` (which must lie inside the object).
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> MediaResult<ByteStream>;
    /// Removes the object; removing a missing one is not an error.
    async fn delete(&self, key: &str) -> MediaResult<()>;
    /// The engine's name, for logs.
    fn name(&self) -> &'static str;
}

/// Whether `key` is a hex SHA-256, the only shape of key Palaver stores: anything else
/// reaching a store is a bug, and must not become a path.
pub fn valid_key(key: &str) -> bool {
    key.len() == 64
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `ab/cd/abcd…`: two levels of fan-out keep directories and listings small.
pub fn object_path(key: &str) -> MediaResult<String> {
    if !valid_key(key) {
        return Err(MediaError::Config(format!("invalid media key {key:?}")));
    }
    Ok(format!("{}/{}/{}", &key[0..2], &key[2..4], key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hex_sha256_only() {
        let key = "a".repeat(64);
        assert_eq!(
            object_path(&key).expect("a valid key"),
            format!("aa/aa/{key}")
        );
        assert!(object_path("../../etc/passwd").is_err());
        assert!(object_path(&"A".repeat(64)).is_err());
        assert!(object_path(&"a".repeat(63)).is_err());
    }
}
