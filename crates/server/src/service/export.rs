//! A user's data, taken out: `GET /api/v1/users/me/export` (docs/PROTOCOL.md, "Export and
//! account deletion"; the layout is `palaver_proto::account`'s).
//!
//! Bounded and streamed: the archive is written as it is read, never whole in memory.
//! Every JSON document is at most one page (1000 messages, reactions or uploads) and
//! media bytes stream from the media store in its own chunks; a producer task fills a
//! channel of a few chunks, so a slow reader slows the producer, and a reader that goes
//! away ends it. A node builds at most `accounts.max_concurrent_exports` at once.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::StreamExt;
use palaver_proto::{EXPORT_PAGE, ExportManifest, ExportReaction, ExportReceipt, Media, Room};
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Core, Identity, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};

/// Chunks of compressed archive waiting for the reader.
const CHANNEL_CHUNKS: usize = 8;

/// Compressed bytes gathered before they are handed on.
const CHUNK_BYTES: usize = 64 * 1024;

/// The archive, as the HTTP body reads it.
pub type ExportStream = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// The reader went away: stop building.
struct Gone;

impl From<std::io::Error> for Gone {
    fn from(_: std::io::Error) -> Self {
        Gone
    }
}

/// A tar file, gzip-compressed on the way into a channel.
struct TarGz {
    gz: GzEncoder<Vec<u8>>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
}

impl TarGz {
    fn new(tx: mpsc::Sender<std::io::Result<Bytes>>) -> Self {
        Self {
            gz: GzEncoder::new(Vec::with_capacity(CHUNK_BYTES * 2), Compression::default()),
            tx,
        }
    }

    /// Hands on what is compressed, once there is enough of it (or `all`).
    async fn drain(&mut self, all: bool) -> Result<(), Gone> {
        let out = self.gz.get_mut();
        if out.is_empty() || (!all && out.len() < CHUNK_BYTES) {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(out));
        self.tx.send(Ok(chunk)).await.map_err(|_| Gone)
    }

    fn header(&mut self, path: &str, size: u64) -> Result<(), Gone> {
        let mut header = tar::Header::new_ustar();
        header.set_path(path)?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime((now_ms() / 1000).max(0) as u64);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        self.gz.write_all(header.as_bytes())?;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> Result<(), Gone> {
        let rest = (512 - (size % 512) as usize) % 512;
        self.gz.write_all(&[0u8; 512][..rest])?;
        Ok(())
    }

    /// One JSON document.
    async fn json(&mut self, path: &str, value: &impl Serialize) -> Result<(), Gone> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|_| Gone)?;
        self.header(path, bytes.len() as u64)?;
        self.gz.write_all(&bytes)?;
        self.pad(bytes.len() as u64)?;
        self.drain(false).await
    }

    /// One media object's bytes, `size` of them, streamed from the store.
    async fn object(&mut self, core: &Core, path: &str, key: &str, size: u64) -> Result<(), Gone> {
        let mut stream = match core.media.get(key, None).await {
            Ok(stream) => stream,
            Err(err) => {
                return self
                    .fail(&format!("media object {key} could not be read: {err}"))
                    .await;
            }
        };
        self.header(path, size)?;
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    return self
                        .fail(&format!("media object {key} could not be read: {err}"))
                        .await;
                }
            };
            let take = chunk.len().min((size - written) as usize);
            self.gz.write_all(&chunk[..take])?;
            written += take as u64;
            self.drain(false).await?;
        }
        // An object shorter than its record would shift every later entry: stop here (the
        // reader sees a cut archive, which a tar reader reports) rather than pad it out.
        if written != size {
            return self
                .fail(&format!("media object {key} is shorter than its record"))
                .await;
        }
        self.pad(size)?;
        self.drain(false).await
    }

    /// Ends the body with an error, so the reader sees a failed download, not a short
    /// archive that looks whole.
    async fn fail(&mut self, why: &str) -> Result<(), Gone> {
        tracing::warn!(why, "export failed");
        let _ = self
            .tx
            .send(Err(std::io::Error::other("the export failed")))
            .await;
        Err(Gone)
    }

    async fn finish(mut self) -> Result<(), Gone> {
        self.gz.write_all(&[0u8; 1024])?;
        let out = self.gz.finish()?;
        if !out.is_empty() {
            self.tx.send(Ok(Bytes::from(out))).await.map_err(|_| Gone)?;
        }
        Ok(())
    }
}

/// A file name safe inside a tar path: no directories, no control characters, at most 80
/// bytes (a ustar name holds 100).
fn entry_name(filename: &str) -> String {
    let mut name: String = filename
        .chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    while name.len() > 80 {
        name.pop();
    }
    match name.trim_matches('.') {
        "" => "file".to_owned(),
        _ => name,
    }
}

#[derive(Serialize)]
struct Rooms<'a> {
    rooms: &'a [Room],
}

#[derive(Serialize)]
struct Messages {
    messages: Vec<palaver_proto::Message>,
}

#[derive(Serialize)]
struct Receipts {
    receipts: Vec<ExportReceipt>,
}

#[derive(Serialize)]
struct Reactions {
    reactions: Vec<ExportReaction>,
}

#[derive(Serialize)]
struct Uploads {
    media: Vec<Media>,
}

impl Core {
    /// Starts building the caller's export; the stream is the archive. Refused with
    /// `rate_limited` while the node builds as many as it may, or when the caller asks
    /// too often.
    pub async fn export(self: &Arc<Self>, who: Identity) -> ServiceResult<ExportStream> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let permit = self
            .exports
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::RateLimited(Duration::from_secs(10)))?;
        // What fails before the first byte is the caller's error; later, only a cut archive.
        let profile = self.me(who).await?;
        let rooms = self.rooms(who).await?;
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let core = self.clone();
        self.tasks.spawn(async move {
            let _permit = permit;
            let failed = tx.clone();
            if let Err(err) = core.write_export(who, profile, rooms, TarGz::new(tx)).await {
                tracing::warn!(%err, "export failed");
                let _ = failed
                    .send(Err(std::io::Error::other("the export failed")))
                    .await;
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
    }

    async fn write_export(
        &self,
        who: Identity,
        profile: palaver_proto::User,
        rooms: Vec<Room>,
        mut out: TarGz,
    ) -> ServiceResult<()> {
        let user = who.user_id;
        // `Gone` (the reader left) is no failure of ours: stop quietly.
        macro_rules! put {
            ($e:expr) => {
                if $e.await.is_err() {
                    return Ok(());
                }
            };
        }
        let manifest = ExportManifest {
            format_version: 1,
            user_id: user,
            created_at: to_time(now_ms()),
        };
        put!(out.json("export.json", &manifest));
        put!(out.json("profile.json", &profile));
        put!(out.json("rooms.json", &Rooms { rooms: &rooms }));
        let mut receipts = Vec::new();
        for room in &rooms {
            let members = self.store.members(room.id).await?;
            if let Some(me) = members.iter().find(|m| m.user_id == user) {
                receipts.push(ExportReceipt {
                    room_id: room.id,
                    delivered_seq: me.delivered_seq,
                    read_seq: me.read_seq,
                });
            }
        }
        put!(out.json("receipts.json", &Receipts { receipts }));
        for room in &rooms {
            let mut after = 0;
            let mut page_no = 1;
            loop {
                let mut page = self
                    .store
                    .messages_sent(user, room.id, after, EXPORT_PAGE)
                    .await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                let full = page.len() as u32 == EXPORT_PAGE;
                self.complete(&mut page).await?;
                let path = format!("messages/{}/{page_no}.json", room.id);
                put!(out.json(&path, &Messages { messages: page }));
                page_no += 1;
                if !full {
                    break;
                }
            }
        }
        let mut reactions = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .reactions_given(user, after.clone(), EXPORT_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.message_id, last.emoji.clone()));
            let full = page.len() as u32 == EXPORT_PAGE;
            reactions.extend(page.into_iter().map(|r| ExportReaction {
                room_id: r.room_id,
                message_id: r.message_id,
                emoji: r.emoji,
                created_at: to_time(r.created_at_ms),
            }));
            if !full {
                break;
            }
        }
        put!(out.json("reactions.json", &Reactions { reactions }));
        let mut uploads = Vec::new();
        let mut after: Option<Uuid> = None;
        loop {
            let page = self.store.uploads(user, after, EXPORT_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let full = page.len() as u32 == EXPORT_PAGE;
            uploads.extend(page);
            if !full {
                break;
            }
        }
        let views: Vec<Media> = uploads.iter().map(|row| self.media_view(row)).collect();
        put!(out.json("media.json", &Uploads { media: views }));
        for row in &uploads {
            let path = format!("media/{}/{}", row.id, entry_name(&row.filename));
            put!(out.object(self, &path, &row.sha256, row.size));
        }
        put!(out.finish());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_stay_inside_their_directory() {
        assert_eq!(entry_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(entry_name(".."), "file");
        assert_eq!(entry_name(""), "file");
        assert_eq!(entry_name("a\nb.txt"), "a_b.txt");
        assert!(entry_name(&"x".repeat(300)).len() <= 80);
        assert_eq!(entry_name("photo.jpg"), "photo.jpg");
    }
}
