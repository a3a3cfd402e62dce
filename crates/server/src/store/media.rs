//! Media records: what was uploaded, by whom, and where its bytes are. The bytes
//! themselves live in the media store (`crate::media`), keyed by their SHA-256.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// An uploaded file's record; its bytes live in the media store under `sha256`.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRow {
    pub id: Uuid,
    pub uploader_id: Uuid,
    /// Hex SHA-256 of the stored bytes, which is also their key in the media store.
    pub sha256: String,
    pub kind: palaver_proto::MessageType,
    pub mime_type: String,
    pub size: u64,
    pub filename: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The thumbnail's key, type and size, for images (the size is unknown, `None`, for
    /// thumbnails recorded before sizes were).
    pub thumb_sha256: Option<String>,
    pub thumb_mime: Option<String>,
    pub thumb_size: Option<u64>,
    pub created_at_ms: i64,
}

impl MediaRow {
    /// What the record counts against its uploader's quota: its file and thumbnail.
    pub fn stored_bytes(&self) -> u64 {
        self.size.saturating_add(self.thumb_size.unwrap_or(0))
    }
}

/// Media records. Every method is one transaction.
#[async_trait]
pub trait MediaRecordStore: Send + Sync + 'static {
    /// Stores a record. With a `quota`, only if the uploader's records, this one
    /// included, stay within it (`stored_bytes`, summed): false, and nothing stored,
    /// otherwise. The sum and the insert are atomic, also between nodes.
    async fn insert_media(&self, media: &MediaRow, quota: Option<u64>) -> StoreResult<bool>;
    /// What the user's records occupy: their `stored_bytes`, summed.
    async fn media_usage(&self, user: Uuid) -> StoreResult<u64>;
    async fn media(&self, id: Uuid) -> StoreResult<Option<MediaRow>>;
    async fn media_many(&self, ids: &[Uuid]) -> StoreResult<Vec<MediaRow>>;
    /// Rooms with a (not deleted) message carrying this media.
    async fn media_rooms(&self, id: Uuid) -> StoreResult<Vec<Uuid>>;
    /// Deletes one record (an upload whose bytes could not be stored).
    async fn delete_media(&self, id: Uuid) -> StoreResult<()>;
    /// Deletes records created before `before_ms` that no message carries and no user or
    /// room shows as its picture; returns them.
    async fn delete_orphan_media(&self, before_ms: i64) -> StoreResult<Vec<MediaRow>>;
    /// Whether any record still uses these bytes (as file or thumbnail).
    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool>;
}
