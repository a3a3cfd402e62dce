//! A preview's picture: fetched through the guard, cleaned like an upload, stored as a
//! media record.
//!
//! Only what the media pipeline takes as an image (JPEG, PNG, GIF, WebP, from its
//! bytes) is kept. It is decoded within the node's decode budget and the same pixel
//! limits as uploads, and only its thumbnail (at most `media.thumbnail_px` on its longer
//! side, re-encoded from the pixels, so no metadata survives) is stored: a card shows
//! nothing larger. The record is the sender's, so it counts against their quota like an
//! upload (over it, the card goes without a picture); the preview cache and the messages
//! showing it keep it from the orphan sweep, which collects it once neither does.

use bytes::Bytes;
use palaver_proto::MessageType;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use url::Url;
use uuid::Uuid;

use super::super::inspect;
use super::super::media::{TempFile, clean_filename};
use super::super::{Core, ServiceError, ServiceResult};
use crate::clock::now_ms;
use crate::link_preview::Fetcher;
use crate::store::MediaRow;

impl Core {
    /// The stored picture for a preview, or `None` (logged) if it cannot be had.
    pub(super) async fn preview_image(
        &self,
        fetcher: &Fetcher,
        url: &Url,
        uploader: Uuid,
        deadline: Instant,
    ) -> Option<Uuid> {
        let outcome = match fetcher.image(url, deadline).await {
            Ok(bytes) => self.store_preview_image(url, uploader, bytes).await,
            Err(err) => {
                tracing::debug!(host = url.host_str(), reason = err.reason(), %err, "no picture for a link preview");
                return None;
            }
        };
        match outcome {
            Ok(id) => Some(id),
            Err(err) => {
                tracing::debug!(host = url.host_str(), %err, "a link preview's picture was not stored");
                None
            }
        }
    }

    /// Cleans a fetched picture and stores its thumbnail as a media record of
    /// `uploader`'s.
    async fn store_preview_image(
        &self,
        url: &Url,
        uploader: Uuid,
        bytes: Bytes,
    ) -> ServiceResult<Uuid> {
        let sniffed = inspect::sniff(&bytes[..bytes.len().min(8192)]);
        if sniffed.kind != MessageType::Image {
            return Err(ServiceError::Validation(format!(
                "not an image the server cleans ({})",
                sniffed.mime
            )));
        }
        self.check_free_disk(bytes.len() as u64).await?;
        let temp = TempFile(self.media_tmp.join(format!("{}.preview", Uuid::now_v7())));
        let written = async {
            let mut file = crate::files::create_private(&temp.0).await?;
            file.write_all(&bytes).await?;
            file.flush().await
        }
        .await;
        written.map_err(|e| ServiceError::Internal(format!("buffering a preview picture: {e}")))?;
        let clean = self.clean_image(&temp.0, sniffed.mime).await?;
        let name = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty());
        let row = MediaRow {
            id: Uuid::now_v7(),
            uploader_id: uploader,
            sha256: hex::encode(Sha256::digest(&clean.thumbnail)),
            kind: MessageType::Image,
            mime_type: clean.thumbnail_mime.to_owned(),
            size: clean.thumbnail.len() as u64,
            filename: clean_filename(name),
            width: None,
            height: None,
            thumb_sha256: None,
            thumb_mime: None,
            thumb_size: None,
            created_at_ms: now_ms(),
        };
        // The record goes first: the sweep never removes bytes a record points at.
        let _sweep = self.media_sweep.read().await;
        if !self.store.insert_media(&row, self.user_quota()).await? {
            return Err(ServiceError::QuotaExceeded(
                "the sender's storage quota is used up".into(),
            ));
        }
        if let Err(err) = self.media.put_bytes(&row.sha256, clean.thumbnail).await {
            let _ = self.store.delete_media(row.id).await;
            self.remove_unused_blobs(&row).await;
            return Err(ServiceError::Internal(format!(
                "storing a preview picture: {err}"
            )));
        }
        metrics::counter!("palaver_link_preview_images_total").increment(1);
        Ok(row.id)
    }
}
