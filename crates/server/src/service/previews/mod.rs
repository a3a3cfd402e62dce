//! Link previews: which messages get one, reading it once per URL, and attaching it to
//! the message as a change like any other.
//!
//! ```text
//! MessageWriter ──try_send(Job)──▶ preview task ──slot (max_concurrent_fetches)──▶ one task per job
//!  (after commit)  edit_message ─┘   bounded queue (queue_size)                    │
//!                                                                                  ▼
//!   cache hit (link_previews) ─or─ join the same URL's fetch in flight ─or─ rate limit, fetch
//!   (link_preview::Fetcher, through the SSRF guard), store the picture, cache the outcome
//!                                                                                  ▼
//!   set_message_preview (the room's next change number) ──▶ message.updated to the room
//! ```
//!
//! A text message's first link (`link_preview::first_url`) is previewed after the message
//! is stored, off the send path: the writer hands it on with `try_send`, and a full queue
//! drops it (counted), so sends never wait. One task, owned by `Core` and ended by
//! `drain`, takes jobs from the queue; each job holds one of `max_concurrent_fetches`
//! slots while it runs, so a node reads at most that many pages at once and the queue
//! waits behind them. A URL's outcome is cached in the store (`link_previews`) for
//! `cache_ttl_secs`, a failure for `failure_ttl_secs`; jobs for a URL whose fetch is in
//! flight on this node wait for it instead of fetching again. Only a fetch counts against
//! the sender's `previews` rate limit; a sender past it gets no preview.
//!
//! The preview is a copy stored on the message (`message_previews`), set only if the
//! message is still as it was when the preview was asked for (not deleted, not edited
//! since): so a slow fetch never puts an old link's card on an edited message. Setting it
//! takes the room's change number, members get `message.updated`, and `sync` replays it.
//! An edit that changes the first link drops the card and asks for the new one; an edit
//! with `noPreview` drops it; deleting the message deletes it (store, `delete_message`).
//!
//! The page's picture is fetched too, cleaned like an upload (decoded within the node's
//! budget, re-encoded as a thumbnail, so no metadata survives) and stored as a media
//! record of the sender's (`image.rs`): clients load it from this server by a signed
//! link, never from the third party, which so learns nothing of who reads the message.

mod image;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use palaver_proto::{LinkPreview, Message, MessageType};
use parking_lot::Mutex;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;
use uuid::Uuid;

use super::links::MediaFile;
use super::{Core, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::now_ms;
use crate::link_preview::{Fetcher, first_url};
use crate::store::{CacheEntry, Changed, PreviewRow, Toggled};

/// How often expired cache entries are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// A message waiting for its preview.
#[derive(Debug, Clone)]
pub(super) struct Job {
    room: Uuid,
    message: Uuid,
    /// Whose rate limit a fetch counts against, and whose the stored picture is.
    sender: Uuid,
    url: Url,
    /// The message's `edited_at` when the preview was asked for.
    edited_at_ms: Option<i64>,
}

/// This node's preview machinery (`Core::previews`, when `link_previews.enabled`).
pub(super) struct Previews {
    fetcher: Fetcher,
    /// Where edits queue their jobs; taken at `drain`.
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    /// The task's end of the queue, until `run` takes it.
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
    /// One per job in progress: `max_concurrent_fetches`.
    slots: Arc<Semaphore>,
    /// URLs being read on this node, with the jobs waiting for them.
    in_flight: Mutex<HashMap<String, Vec<Job>>>,
    /// Cancelled by `drain`: the task and every job end (previews are best effort).
    stop: CancellationToken,
}

impl Previews {
    pub(super) fn new(fetcher: Fetcher, queue_size: usize, slots: usize) -> Previews {
        let (tx, rx) = mpsc::channel(queue_size);
        Previews {
            fetcher,
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            slots: Arc::new(Semaphore::new(slots)),
            in_flight: Mutex::new(HashMap::new()),
            stop: CancellationToken::new(),
        }
    }

    /// The queue, for the message writer.
    pub(super) fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.tx.lock().clone()
    }

    /// Ends the task and every job in progress (`Core::drain` then waits for them).
    pub(super) fn stop(&self) {
        self.tx.lock().take();
        self.stop.cancel();
    }
}

/// The link a message of `kind` with `content` is previewed for, unless the sender
/// said `no_preview`: the first of a text message.
pub(super) fn link_of(kind: MessageType, content: &str, no_preview: bool) -> Option<Url> {
    match (kind, no_preview) {
        (MessageType::Text, false) => first_url(content),
        _ => None,
    }
}

/// Queues a stored message's preview without waiting; a full queue drops it (counted).
pub(super) fn hand_off(queue: &mpsc::Sender<Job>, message: &Message, url: Url) {
    let job = Job {
        room: message.room_id,
        message: message.id,
        sender: message.sender_id,
        url,
        edited_at_ms: message.edited_at.map(ms_of),
    };
    if queue.try_send(job).is_err() {
        // Counted, not logged one by one: under overload that would flood the log.
        metrics::counter!("palaver_link_previews_dropped_total").increment(1);
    }
}

fn ms_of(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The preview task: takes jobs while slots are free, and deletes expired cache entries
/// now and then. Ends at `drain`.
pub(super) async fn run(core: Arc<Core>) {
    let Some(previews) = core.previews.as_ref() else {
        return;
    };
    let Some(mut rx) = previews.rx.lock().take() else {
        return;
    };
    let stop = previews.stop.clone();
    let mut purge = tokio::time::interval(PURGE_EVERY);
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let job = tokio::select! {
            _ = stop.cancelled() => break,
            _ = purge.tick() => {
                match core.store.purge_previews(now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(count = n, "expired link previews deleted"),
                    Err(err) => tracing::warn!(%err, "could not delete expired link previews"),
                }
                continue;
            }
            job = rx.recv() => match job {
                Some(job) => job,
                None => break,
            },
        };
        let slot = tokio::select! {
            _ = stop.cancelled() => break,
            slot = previews.slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (me, stop) = (core.clone(), stop.clone());
        core.tasks.spawn(async move {
            let _slot = slot;
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = me.preview(job) => {}
            }
        });
    }
}

impl Core {
    /// One job: the cached outcome for its URL, or the outcome of the fetch in flight,
    /// or a fetch of its own; then the preview goes on the message.
    async fn preview(&self, job: Job) {
        let Some(previews) = self.previews.as_ref() else {
            return;
        };
        let key = job.url.as_str().to_owned();
        match self.store.cached_preview(&key, now_ms()).await {
            Ok(Some(entry)) => {
                metrics::counter!("palaver_link_previews_total", "outcome" => "cached")
                    .increment(1);
                if let Some(found) = entry.found {
                    self.attach(&job, found).await;
                }
                return;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(%err, "could not read the link preview cache");
                return;
            }
        }
        if let Some(waiting) = previews.in_flight.lock().get_mut(&key) {
            waiting.push(job);
            return;
        }
        if self
            .limit(RateBucket::Previews, &job.sender.to_string())
            .await
            .is_err()
        {
            metrics::counter!("palaver_link_previews_total", "outcome" => "rate_limited")
                .increment(1);
            return;
        }
        {
            let mut in_flight = previews.in_flight.lock();
            if let Some(waiting) = in_flight.get_mut(&key) {
                waiting.push(job);
                return;
            }
            in_flight.insert(key.clone(), Vec::new());
        }
        let found = self.fetch_preview(previews, &job).await;
        let waiting = previews.in_flight.lock().remove(&key).unwrap_or_default();
        if let Some(found) = found {
            for job in std::iter::once(&job).chain(&waiting) {
                self.attach(job, found.clone()).await;
            }
        }
    }

    /// Reads a job's page (and its picture) within `timeout_ms`, and caches the outcome.
    async fn fetch_preview(&self, previews: &Previews, job: &Job) -> Option<PreviewRow> {
        let config = &self.config.link_previews;
        let started = Instant::now();
        let deadline = started + Duration::from_millis(config.timeout_ms);
        let found = match previews.fetcher.page(&job.url, deadline).await {
            Ok(page) => {
                let image = match page.image {
                    Some(image) if previews.fetcher.fetches_images() => {
                        self.preview_image(&previews.fetcher, &image, job.sender, deadline)
                            .await
                    }
                    _ => None,
                };
                metrics::counter!("palaver_link_previews_total", "outcome" => "fetched")
                    .increment(1);
                Some(PreviewRow {
                    url: job.url.to_string(),
                    title: page.title,
                    description: page.description,
                    site_name: page.site_name,
                    image_media_id: image,
                })
            }
            Err(err) => {
                metrics::counter!("palaver_link_previews_total", "outcome" => err.reason())
                    .increment(1);
                // The URL is the user's; the host and the reason are enough to operate.
                tracing::debug!(host = job.url.host_str(), reason = err.reason(), %err, "no link preview");
                None
            }
        };
        metrics::histogram!("palaver_link_preview_seconds").record(started.elapsed().as_secs_f64());
        let now = now_ms();
        let ttl = match found {
            Some(_) => config.cache_ttl_secs,
            None => config.failure_ttl_secs,
        };
        let entry = CacheEntry {
            url: job.url.to_string(),
            found: found.clone(),
            fetched_at_ms: now,
            expires_at_ms: now
                .saturating_add(i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX)),
        };
        if let Err(err) = self.store.cache_preview(&entry).await {
            tracing::warn!(%err, "could not cache a link preview");
        }
        found
    }

    /// Puts a preview on a job's message, if it is still as the job saw it, and tells
    /// the room.
    async fn attach(&self, job: &Job, found: PreviewRow) {
        let row = PreviewRow {
            url: job.url.to_string(),
            ..found
        };
        let set = self
            .store
            .set_message_preview(job.room, job.message, job.edited_at_ms, Some(&row))
            .await;
        match set {
            Ok(Toggled::Changed(_)) => {
                if let Err(err) = self.announce_changed(job.room, &[job.message], None).await {
                    // Stored is what counts: members see it at their next sync or fetch.
                    tracing::warn!(%err, room = %job.room, "could not announce a link preview");
                }
            }
            // Deleted or edited since, or already showing it.
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, room = %job.room, "could not store a link preview"),
        }
    }

    /// After an edit: the preview follows the message's first link. A card for another
    /// link (or any, with `no_preview`) goes, in place before the edit is announced; a
    /// new link is queued. Answers the change as it is now.
    pub(super) async fn repreview(
        &self,
        old: &Message,
        mut changed: Changed,
        no_preview: bool,
    ) -> ServiceResult<Changed> {
        let message = &changed.message;
        let link = link_of(message.kind, &message.content, no_preview);
        let shown = old.link_preview.as_ref().map(|p| p.url.as_str());
        let wanted = link.as_ref().map(Url::as_str);
        if shown.is_none() || shown == wanted {
            if let (Some(url), None, Some(previews)) = (link, shown, self.previews.as_ref())
                && let Some(queue) = previews.sender()
            {
                // No card yet: one may have been on its way for the text before the
                // edit, which it will no longer fit; ask again (the cache or the fetch
                // in flight answers).
                hand_off(&queue, message, url);
            }
            return Ok(changed);
        }
        let (room, id) = (message.room_id, message.id);
        let edited_at = message.edited_at.map(ms_of);
        if let Toggled::Changed(_) = self
            .store
            .set_message_preview(room, id, edited_at, None)
            .await?
            && let Some(now) = self.store.messages_with_ids(&[id]).await?.pop()
        {
            changed.message = now;
        }
        if let (Some(url), Some(previews)) = (link, self.previews.as_ref())
            && let Some(queue) = previews.sender()
        {
            hand_off(&queue, &changed.message, url);
        }
        Ok(changed)
    }

    /// Fills in `linkPreview` on messages that have one (any path that shows messages
    /// completes them through here), its picture as a signed link made now.
    pub(crate) async fn attach_previews(&self, messages: &mut [Message]) -> ServiceResult<()> {
        let ids: Vec<Uuid> = messages
            .iter()
            .filter(|m| !m.deleted && m.kind == MessageType::Text)
            .map(|m| m.id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let found = self.store.message_previews(&ids).await?;
        let now = now_ms() / 1000;
        for p in found {
            if let Some(m) = messages.iter_mut().find(|m| m.id == p.message_id) {
                let row = p.preview;
                m.link_preview = Some(LinkPreview {
                    url: row.url,
                    title: row.title,
                    description: row.description,
                    image_url: row
                        .image_media_id
                        .map(|id| self.links.link(id, MediaFile::Original, now)),
                    site_name: row.site_name,
                });
            }
        }
        Ok(())
    }
}
