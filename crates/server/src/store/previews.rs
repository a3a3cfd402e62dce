//! Link previews: the cache of what pages said about themselves, one entry per URL, and
//! the preview each message shows (a copy, changed only with a change number).

use async_trait::async_trait;
use uuid::Uuid;

use super::{StoreResult, Toggled};

/// What a page said about itself, as stored (lengths already bounded by the service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewRow {
    pub url: String,
    pub title: String,
    pub description: Option<String>,
    pub site_name: Option<String>,
    /// The page's picture, an image record of the media store.
    pub image_media_id: Option<Uuid>,
}

/// One URL's cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub url: String,
    /// The preview; `None` for a fetch that failed (cached too, for less long).
    pub found: Option<PreviewRow>,
    pub fetched_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A message's preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePreview {
    pub message_id: Uuid,
    pub preview: PreviewRow,
}

/// The preview cache and messages' previews. Every method is one transaction.
#[async_trait]
pub trait PreviewStore: Send + Sync + 'static {
    /// The entry for `url`, if there is one that has not expired at `now_ms`.
    async fn cached_preview(&self, url: &str, now_ms: i64) -> StoreResult<Option<CacheEntry>>;
    /// Stores a URL's entry, replacing any.
    async fn cache_preview(&self, entry: &CacheEntry) -> StoreResult<()>;
    /// Deletes the entries expired at `now_ms`; answers how many.
    async fn purge_previews(&self, now_ms: i64) -> StoreResult<u64>;
    /// Sets (`Some`) or clears the preview of a message of `room` that is live and still
    /// as it was when the preview was asked for: `edited_at_ms` is its `edited_at` then
    /// (`None`: never edited). A change takes the room's next change number;
    /// `Unchanged` when it already shows that; `Missing` when the message is not there,
    /// is deleted or was edited since.
    async fn set_message_preview(
        &self,
        room: Uuid,
        message: Uuid,
        edited_at_ms: Option<i64>,
        preview: Option<&PreviewRow>,
    ) -> StoreResult<Toggled>;
    /// The previews of those of these messages that have one, in no particular order.
    async fn message_previews(&self, ids: &[Uuid]) -> StoreResult<Vec<MessagePreview>>;
}
