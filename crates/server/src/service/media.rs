//! Uploads and who may read them.
//!
//! An upload is streamed to a temporary file while it is hashed and measured; its type is
//! decided from its bytes; images lose their metadata and gain a thumbnail. The record is
//! written before the bytes, so the orphan sweep always sees bytes that are in use, and
//! a failed upload removes both. A media object is visible to its uploader and to the
//! members of every room where a message carries it; to anyone else it does not exist.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use palaver_proto::{Media, MediaUsage, Message, MessageType};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::inspect::{self, ImageError};
use super::links::{LinkSigner, MediaFile};
use super::{Core, Identity, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::media::{ByteStream, MediaError};
use crate::store::MediaRow;
use crate::telemetry::metric;

/// Bytes kept from the start of an upload to decide its type.
const SNIFF_BYTES: usize = 8192;

/// While an upload streams, the free-space floor is checked again after every this many
/// bytes: uploads running at once can take the disk at most this far each below it.
const FLOOR_CHECK_BYTES: u64 = 16 << 20;

/// How long a client is asked to wait when the disk is below its floor: space comes back
/// when an operator frees some or the orphan sweep runs, neither of which is known here.
const LOW_DISK_RETRY: Duration = Duration::from_secs(60);

/// The client-facing description of a record, with links signed as of `now` (unix
/// seconds).
fn media_view(row: &MediaRow, links: &LinkSigner, now: i64) -> Media {
    Media {
        id: row.id,
        url: links.link(row.id, MediaFile::Original, now),
        thumbnail_url: row
            .thumb_sha256
            .as_ref()
            .map(|_| links.link(row.id, MediaFile::Thumbnail, now)),
        mime_type: row.mime_type.clone(),
        kind: row.kind,
        size: row.size,
        sha256: row.sha256.clone(),
        filename: row.filename.clone(),
        width: row.width,
        height: row.height,
        created_at: to_time(row.created_at_ms),
    }
}

/// Keeps a file name's last component, without control characters, at most 255 bytes.
pub fn clean_filename(name: Option<&str>) -> String {
    let base = name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let mut out = String::new();
    for c in base.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > 255 {
            break;
        }
        out.push(c);
    }
    let out = out.trim().trim_start_matches('.').to_owned();
    if out.is_empty() { "file".into() } else { out }
}

/// Deletes a temporary file when dropped, whatever path the upload took.
pub(super) struct TempFile(pub(super) PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Core {
    /// The client-facing description of a record, its links signed now.
    pub(super) fn media_view(&self, row: &MediaRow) -> Media {
        media_view(row, &self.links, now_ms() / 1000)
    }

    /// Largest upload of a kind.
    fn media_limit(&self, kind: MessageType) -> u64 {
        let m = &self.config.media;
        match kind {
            MessageType::Image => m.max_image_bytes,
            MessageType::Video => m.max_video_bytes,
            MessageType::Audio => m.max_audio_bytes,
            MessageType::Text | MessageType::File | MessageType::Event | MessageType::Mls => {
                m.max_file_bytes
            }
        }
    }

    /// The user's quota, if the server sets one.
    pub(super) fn user_quota(&self) -> Option<u64> {
        Some(self.config.media.user_quota_bytes).filter(|q| *q > 0)
    }

    /// What the caller's uploads occupy, and their quota.
    pub async fn media_usage(&self, who: Identity) -> ServiceResult<MediaUsage> {
        Ok(MediaUsage {
            used_bytes: self.store.media_usage(who.user_id).await?,
            quota_bytes: self.user_quota(),
        })
    }

    /// `quota_exceeded`, saying where the user stands: `used` of `quota` bytes, and the
    /// upload's size if known.
    fn over_quota(quota: u64, used: u64, upload: Option<u64>) -> ServiceError {
        metrics::counter!(metric::MEDIA_REFUSED, "reason" => "quota").increment(1);
        let upload = upload
            .map(|n| format!(" and this upload has {n}"))
            .unwrap_or_default();
        ServiceError::QuotaExceeded(format!(
            "storage quota exceeded: your uploads occupy {used} of your {quota} bytes{upload}; \
             space comes back when uploads are deleted (delete the messages that carry them, \
             or leave them unsent: unsent uploads are deleted after a while)"
        ))
    }

    /// Refuses an upload of `needed` more bytes while the data directory's file system is
    /// (or would then be) below `media.min_free_disk_bytes`.
    pub(super) async fn check_free_disk(&self, needed: u64) -> ServiceResult<()> {
        let floor = self.config.media.min_free_disk_bytes;
        if floor == 0 {
            return Ok(());
        }
        let dir = self.media_tmp.clone();
        let free = tokio::task::spawn_blocking(move || {
            crate::files::disk_space(&dir).map(|space| space.free)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        match free {
            Ok(free) if free < floor.saturating_add(needed) => {
                tracing::warn!(free, floor, "upload refused: the disk is below its floor");
                metrics::counter!(metric::MEDIA_REFUSED, "reason" => "disk").increment(1);
                Err(ServiceError::InsufficientStorage {
                    retry: LOW_DISK_RETRY,
                })
            }
            Ok(_) => Ok(()),
            // Not knowing is no reason to refuse every upload; the quota still holds.
            Err(err) => {
                tracing::warn!(%err, "could not read the data directory's free space");
                Ok(())
            }
        }
    }

    /// Stores an upload and returns its description. `declared_len` (Content-Length)
    /// lets an oversized upload, or one over the uploader's remaining quota, be refused
    /// before a byte is read. The quota is checked again as the bytes arrive, and once
    /// more, atomically, when the record is stored: uploads running side by side never
    /// take a user past it.
    pub async fn upload_media<S, E>(
        &self,
        who: Identity,
        filename: Option<&str>,
        declared_len: Option<u64>,
        mut body: S,
    ) -> ServiceResult<Media>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.limit(RateBucket::Upload, &who.user_id.to_string())
            .await?;
        let max = self.config.media.max_upload_bytes();
        let too_large =
            || ServiceError::PayloadTooLarge(format!("uploads are limited to {max} bytes"));
        if declared_len.is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let quota = self.user_quota();
        let used = match quota {
            Some(_) => self.store.media_usage(who.user_id).await?,
            None => 0,
        };
        // What is left of the quota; the upload may not grow past it.
        let room = quota.map(|q| q.saturating_sub(used));
        let over = |used: u64, upload: Option<u64>| {
            Self::over_quota(quota.unwrap_or_default(), used, upload)
        };
        if room.is_some_and(|room| room == 0 || declared_len.is_some_and(|n| n > room)) {
            return Err(over(used, declared_len));
        }
        self.check_free_disk(declared_len.unwrap_or(0)).await?;
        let failed = |what: &str, err: &dyn std::fmt::Display| {
            tracing::warn!(error = %err, "media upload failed: {what}");
            ServiceError::UploadFailed(format!("{what}; retry the upload"))
        };

        // Stream to a temporary file, hashing and measuring as the bytes arrive.
        let temp = TempFile(self.media_tmp.join(format!("{}.part", Uuid::now_v7())));
        let mut file = crate::files::create_private(&temp.0)
            .await
            .map_err(|e| failed("could not buffer the upload", &e))?;
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| failed("the upload was interrupted", &e))?;
            let before = size;
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large());
            }
            if room.is_some_and(|room| size > room) {
                return Err(over(used, None));
            }
            if before / FLOOR_CHECK_BYTES != size / FLOOR_CHECK_BYTES {
                self.check_free_disk(0).await?;
            }
            if head.len() < SNIFF_BYTES {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| failed("could not buffer the upload", &e))?;
        }
        file.flush()
            .await
            .map_err(|e| failed("could not buffer the upload", &e))?;
        drop(file);
        if size == 0 {
            return Err(ServiceError::Validation("the file is empty".into()));
        }

        let sniffed = inspect::sniff(&head);
        let limit = self.media_limit(sniffed.kind);
        if size > limit {
            return Err(ServiceError::PayloadTooLarge(format!(
                "{} files are limited to {limit} bytes",
                sniffed.kind.as_str()
            )));
        }
        let mut row = MediaRow {
            id: Uuid::now_v7(),
            uploader_id: who.user_id,
            sha256: hex::encode(hasher.finalize()),
            kind: sniffed.kind,
            mime_type: sniffed.mime.to_owned(),
            size,
            filename: clean_filename(filename),
            width: None,
            height: None,
            thumb_sha256: None,
            thumb_mime: None,
            thumb_size: None,
            created_at_ms: now_ms(),
        };

        // Images are rewritten without their metadata; the rest is stored as it came.
        let mut blobs: Vec<(String, Bytes)> = Vec::new();
        if sniffed.kind == MessageType::Image {
            let clean = self.clean_image(&temp.0, sniffed.mime).await?;
            row.mime_type = clean.mime.to_owned();
            row.sha256 = hex::encode(Sha256::digest(&clean.bytes));
            row.size = clean.bytes.len() as u64;
            row.width = Some(clean.width);
            row.height = Some(clean.height);
            let thumb_sha = hex::encode(Sha256::digest(&clean.thumbnail));
            row.thumb_sha256 = Some(thumb_sha.clone());
            row.thumb_mime = Some(clean.thumbnail_mime.to_owned());
            row.thumb_size = Some(clean.thumbnail.len() as u64);
            blobs.push((row.sha256.clone(), clean.bytes));
            blobs.push((thumb_sha, clean.thumbnail));
        }

        // The record goes first: the sweep never removes bytes a record points at.
        let _sweep = self.media_sweep.read().await;
        if !self.store.insert_media(&row, quota).await? {
            // Others of the user's uploads were stored meanwhile.
            let now = self.store.media_usage(who.user_id).await?;
            return Err(over(now, Some(row.stored_bytes())));
        }
        let stored = async {
            if blobs.is_empty() {
                self.media.put_file(&row.sha256, &temp.0).await
            } else {
                for (key, bytes) in &blobs {
                    self.media.put_bytes(key, bytes.clone()).await?;
                }
                Ok(())
            }
        }
        .await;
        if let Err(err) = stored {
            let _ = self.store.delete_media(row.id).await;
            self.remove_unused_blobs(&row).await;
            return Err(failed("the file could not be stored", &err));
        }
        metrics::counter!("palaver_media_uploads_total", "type" => row.kind.as_str()).increment(1);
        metrics::counter!("palaver_media_upload_bytes_total").increment(row.size);
        Ok(self.media_view(&row))
    }

    /// An uploaded image without its metadata, with its thumbnail. The headers are read
    /// first (a bomb is refused there, having cost nothing); then the decode waits for
    /// its share of the node's decode memory and runs off the async workers.
    pub(super) async fn clean_image(
        &self,
        path: &std::path::Path,
        mime: &'static str,
    ) -> ServiceResult<inspect::CleanImage> {
        let config = &self.config.media;
        let limits = inspect::ImageLimits {
            max_pixels: config.max_image_pixels,
            max_sparse_pixels: config.max_sparse_image_pixels,
            pixels_per_byte: config.image_pixels_per_byte,
        };
        let thumb_px = config.thumbnail_px;
        let header = blocking_on_file(path, move |bytes| {
            inspect::read_header(&bytes, mime, thumb_px, &limits)
        })
        .await?;
        let reserved = self.decode_budget.reserve(header.decode_bytes).await?;
        blocking_on_file(path, move |bytes| {
            // Held by the decode itself: a client that hangs up does not stop it, and
            // must not give its memory back before it ends.
            let _reserved = reserved;
            inspect::clean_image(bytes, mime, thumb_px, &limits)
        })
        .await
    }

    /// The record of a media object the caller may see: as its uploader, or as a member
    /// of a room where it was shared. Otherwise `media_not_found`, as if it did not exist.
    pub async fn visible_media(&self, who: Identity, id: Uuid) -> ServiceResult<MediaRow> {
        let row = self
            .store
            .media(id)
            .await?
            .ok_or(ServiceError::MediaNotFound)?;
        if row.uploader_id == who.user_id {
            return Ok(row);
        }
        let rooms = self.store.media_rooms(id).await?;
        if rooms
            .iter()
            .any(|room| self.membership.is_member(*room, who.user_id))
        {
            Ok(row)
        } else {
            Err(ServiceError::MediaNotFound)
        }
    }

    /// The record of a media object for a signed link to one of its files: `unauthorized`
    /// unless the link is valid for that file and not expired, then `media_not_found` if
    /// the object is gone. The signature is checked before anything is looked up.
    pub async fn linked_media(
        &self,
        id: Uuid,
        file: MediaFile,
        exp: i64,
        sig: &str,
    ) -> ServiceResult<MediaRow> {
        self.links
            .check(id, file, exp, sig, now_ms() / 1000)
            .map_err(|e| {
                metrics::counter!("palaver_media_links_refused_total").increment(1);
                ServiceError::Unauthorized(e.reason())
            })?;
        self.store
            .media(id)
            .await?
            .ok_or(ServiceError::MediaNotFound)
    }

    /// The stored bytes under `key`, or the `range` of them.
    pub async fn media_bytes(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> ServiceResult<ByteStream> {
        self.media.get(key, range).await.map_err(|e| match e {
            MediaError::NotFound => {
                tracing::error!(key, "a media record points at bytes that are gone");
                ServiceError::MediaNotFound
            }
            other => ServiceError::Internal(other.to_string()),
        })
    }

    /// Checks a message's media and returns its description: the caller must be able to
    /// see it, and its kind must fit the message type (`file` carries anything).
    pub(crate) async fn media_for_message(
        &self,
        who: Identity,
        kind: MessageType,
        id: Uuid,
    ) -> ServiceResult<Media> {
        let row = self.visible_media(who, id).await?;
        if kind != MessageType::File && kind != row.kind {
            return Err(ServiceError::Validation(format!(
                "a message of type {} cannot carry {} media ({})",
                kind.as_str(),
                row.kind.as_str(),
                row.mime_type
            )));
        }
        Ok(self.media_view(&row))
    }

    /// Fills in `media` on messages that name one (history, sync and edits read messages
    /// back from the store, which keeps only the id).
    pub(crate) async fn attach_media(&self, messages: &mut [Message]) -> ServiceResult<()> {
        let ids: Vec<Uuid> = messages
            .iter()
            .filter(|m| m.media.is_none())
            .filter_map(|m| m.media_id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let rows = self.store.media_many(&ids).await?;
        for message in messages.iter_mut() {
            if let Some(row) = rows.iter().find(|r| Some(r.id) == message.media_id) {
                message.media = Some(self.media_view(row));
            }
        }
        Ok(())
    }

    /// Deletes uploads older than `media.orphan_ttl_secs` that no message carries, and
    /// their bytes once nothing else uses them. Returns how many records went.
    pub async fn collect_orphan_media(&self) -> ServiceResult<usize> {
        let _sweep = self.media_sweep.write().await;
        let before = now_ms() - (self.config.media.orphan_ttl_secs as i64) * 1000;
        let rows = self.store.delete_orphan_media(before).await?;
        for row in &rows {
            self.remove_unused_blobs(row).await;
        }
        if !rows.is_empty() {
            tracing::info!(count = rows.len(), "collected orphan media");
            metrics::counter!("palaver_media_orphans_collected_total").increment(rows.len() as u64);
        }
        Ok(rows.len())
    }

    pub(super) async fn remove_unused_blobs(&self, row: &MediaRow) {
        for key in std::iter::once(&row.sha256).chain(row.thumb_sha256.as_ref()) {
            match self.store.blob_in_use(key).await {
                Ok(false) => {
                    if let Err(err) = self.media.delete(key).await {
                        tracing::warn!(%err, key, "could not delete media bytes");
                    }
                }
                Ok(true) => {}
                Err(err) => tracing::warn!(%err, key, "could not check media bytes"),
            }
        }
    }
}

/// Runs `work` over a file's bytes on a blocking thread; an image it refuses becomes
/// the client's error.
async fn blocking_on_file<T: Send + 'static>(
    path: &std::path::Path,
    work: impl FnOnce(Bytes) -> Result<T, ImageError> + Send + 'static,
) -> ServiceResult<T> {
    let path = path.to_owned();
    let done = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path).map_err(|e| {
            tracing::warn!(error = %e, "media upload failed: could not read the upload back");
            ServiceError::UploadFailed("could not read the upload back; retry the upload".into())
        })?;
        work(Bytes::from(bytes)).map_err(|e| match e {
            ImageError::TooManyPixels(_) => ServiceError::PayloadTooLarge(e.to_string()),
            ImageError::Decode(_) | ImageError::Implausible(_) => {
                ServiceError::Validation(e.to_string())
            }
        })
    })
    .await;
    done.map_err(|e| ServiceError::Internal(e.to_string()))?
}

/// The memory all image decodes of the node may use at once. Each decode reserves its
/// estimated need (`ImageHeader::decode_bytes`) and holds it until done; one that does
/// not get it within `media.decode_wait_ms` is refused with 503 and `Retry-After`, and
/// one that needs more than the whole budget is refused outright (413), never queued.
pub struct DecodeBudget {
    /// Permits are KiB.
    permits: Arc<Semaphore>,
    total_kib: u32,
    wait: Duration,
}

/// A decode's share of the budget, given back when dropped.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        metrics::gauge!("palaver_media_decode_reserved_bytes").decrement(self.bytes as f64);
    }
}

impl DecodeBudget {
    /// A budget of `bytes` (at least 1 KiB), waiting at most `wait` for room.
    pub fn new(bytes: u64, wait: Duration) -> Self {
        let total_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        Self {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            wait,
        }
    }

    /// Reserves `bytes` of the budget, waiting for room as long as allowed.
    pub async fn reserve(&self, bytes: u64) -> ServiceResult<Reservation> {
        let refused = |reason: &'static str| {
            metrics::counter!("palaver_media_decode_refused_total", "reason" => reason)
                .increment(1);
        };
        let kib = bytes.div_ceil(1024).max(1);
        let Some(kib) = u32::try_from(kib).ok().filter(|k| *k <= self.total_kib) else {
            refused("too_large");
            return Err(ServiceError::PayloadTooLarge(format!(
                "the image would take about {} MiB of memory to decode; this server decodes \
                 at most {} MiB at once",
                bytes.div_ceil(1 << 20),
                u64::from(self.total_kib) / 1024
            )));
        };
        let permit = if self.wait.is_zero() {
            self.permits.clone().try_acquire_many_owned(kib).ok()
        } else {
            tokio::time::timeout(self.wait, self.permits.clone().acquire_many_owned(kib))
                .await
                .ok()
                .and_then(Result::ok)
        };
        let Some(permit) = permit else {
            refused("busy");
            return Err(ServiceError::Busy {
                what: "the server is busy decoding other images".into(),
                retry: self.wait.max(Duration::from_secs(1)),
            });
        };
        metrics::gauge!("palaver_media_decode_reserved_bytes").increment(bytes as f64);
        Ok(Reservation {
            _permit: permit,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_decode_budget_is_shared_and_bounded() {
        let budget = DecodeBudget::new(10 << 20, Duration::ZERO);
        let first = budget.reserve(6 << 20).await.expect("room");
        // No room for another 6 MiB while the first is held: come back later.
        match budget.reserve(6 << 20).await {
            Err(ServiceError::Busy { retry, .. }) => assert!(retry >= Duration::from_secs(1)),
            other => panic!("{:?}", other.map(|r| r.bytes)),
        }
        let small = budget.reserve(4 << 20).await.expect("what is left");
        drop(first);
        let again = budget.reserve(6 << 20).await.expect("given back");
        drop((small, again));
        // More than the whole budget is never queued.
        assert!(matches!(
            budget.reserve(11 << 20).await,
            Err(ServiceError::PayloadTooLarge(_))
        ));
        // With a wait, a reservation gets room as soon as it is given back.
        let budget = Arc::new(DecodeBudget::new(10 << 20, Duration::from_secs(60)));
        let held = budget.reserve(10 << 20).await.expect("all of it");
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(10 << 20).await.map(|r| r.bytes) }
        });
        tokio::task::yield_now().await;
        drop(held);
        assert_eq!(waiting.await.expect("task").expect("room"), 10 << 20);
    }

    #[test]
    fn filenames_lose_directories_and_control_characters() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_filename(Some("C:\\Users\\me\\cat.png")), "cat.png");
        assert_eq!(clean_filename(Some("a\nb\u{0}.txt")), "ab.txt");
        assert_eq!(clean_filename(Some(".hidden")), "hidden");
        assert_eq!(clean_filename(None), "file");
        assert_eq!(clean_filename(Some("é".repeat(200).as_str())).len(), 254);
    }
}
