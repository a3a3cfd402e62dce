//! Uploads and who may read them.
//!
//! An upload is streamed to a temporary file while it is hashed and measured; its type is
//! decided from its bytes; images lose their metadata and gain a thumbnail. The record is
//! written before the bytes, so the orphan sweep always sees bytes that are in use, and
//! a failed upload removes both. A media object is visible to its uploader and to the
//! members of every room where a message carries it; to anyone else it does not exist.

use std::ops::Range;
use std::path::PathBuf;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use palaver_proto::{Media, Message, MessageType};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::inspect::{self, ImageError};
use super::{Core, Identity, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::media::{ByteStream, MediaError};
use crate::store::MediaRow;

/// Bytes kept from the start of an upload to decide its type.
const SNIFF_BYTES: usize = 8192;

/// The client-facing description of a record.
pub fn media_view(row: &MediaRow) -> Media {
    Media {
        id: row.id,
        url: format!("/api/v1/media/{}", row.id),
        thumbnail_url: row
            .thumb_sha256
            .as_ref()
            .map(|_| format!("/api/v1/media/{}/thumbnail", row.id)),
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
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Core {
    /// Largest upload of a kind.
    fn media_limit(&self, kind: MessageType) -> u64 {
        let m = &self.config.media;
        match kind {
            MessageType::Image => m.max_image_bytes,
            MessageType::Video => m.max_video_bytes,
            MessageType::Audio => m.max_audio_bytes,
            MessageType::Text | MessageType::File => m.max_file_bytes,
        }
    }

    /// Stores an upload and returns its description. `declared_len` (Content-Length)
    /// lets an oversized upload be refused before a byte is read.
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
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let max = self.config.media.max_upload_bytes();
        let too_large =
            || ServiceError::PayloadTooLarge(format!("uploads are limited to {max} bytes"));
        if declared_len.is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let failed = |what: &str, err: &dyn std::fmt::Display| {
            tracing::warn!(error = %err, "media upload failed: {what}");
            ServiceError::UploadFailed(format!("{what}; retry the upload"))
        };

        // Stream to a temporary file, hashing and measuring as the bytes arrive.
        let temp = TempFile(self.media_tmp.join(format!("{}.part", Uuid::now_v7())));
        let mut file = crate::media::local::create_private(&temp.0)
            .await
            .map_err(|e| failed("could not buffer the upload", &e))?;
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| failed("the upload was interrupted", &e))?;
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large());
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
            created_at_ms: now_ms(),
        };

        // Images are rewritten without their metadata; the rest is stored as it came.
        let mut blobs: Vec<(String, Bytes)> = Vec::new();
        if sniffed.kind == MessageType::Image {
            let bytes = tokio::fs::read(&temp.0)
                .await
                .map_err(|e| failed("could not read the upload back", &e))?;
            let (px, max_px, mime) = (
                self.config.media.thumbnail_px,
                self.config.media.max_image_pixels,
                sniffed.mime,
            );
            let clean = tokio::task::spawn_blocking(move || {
                inspect::clean_image(Bytes::from(bytes), mime, px, max_px)
            })
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| match e {
                ImageError::TooManyPixels(_) => ServiceError::PayloadTooLarge(e.to_string()),
                ImageError::Decode(_) => ServiceError::Validation(e.to_string()),
            })?;
            row.mime_type = clean.mime.to_owned();
            row.sha256 = hex::encode(Sha256::digest(&clean.bytes));
            row.size = clean.bytes.len() as u64;
            row.width = Some(clean.width);
            row.height = Some(clean.height);
            let thumb_sha = hex::encode(Sha256::digest(&clean.thumbnail));
            row.thumb_sha256 = Some(thumb_sha.clone());
            row.thumb_mime = Some(clean.thumbnail_mime.to_owned());
            blobs.push((row.sha256.clone(), clean.bytes));
            blobs.push((thumb_sha, clean.thumbnail));
        }

        // The record goes first: the sweep never removes bytes a record points at.
        let _sweep = self.media_sweep.read().await;
        self.store.insert_media(&row).await?;
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
        Ok(media_view(&row))
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
        Ok(media_view(&row))
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
                message.media = Some(media_view(row));
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

    async fn remove_unused_blobs(&self, row: &MediaRow) {
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

#[cfg(test)]
mod tests {
    use super::clean_filename;

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
