//! Sending, editing, deleting and reading messages, and receipts (typing is presence.rs').
//!
//! Every send goes through one writer task that commits in groups: it takes whatever is
//! queued (up to `group_commit_max`), stores it in one transaction (one fsync), then
//! announces the new messages in seq order and only then acknowledges each sender.

use std::time::{Duration, Instant};

use palaver_proto::{
    HistoryResponse, MemberState, Message, MessageStatus, MessageType, ReceiptKind, RoomEvent,
    SendMessageRequest, ServerFrame,
};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::membership::Direct;
use super::{Core, Identity, ServiceError, ServiceResult, encode};
use crate::bus::{Audience, Bus, Class, Delivery, Event};
use crate::cache::RateBucket;
use crate::clock::now_ms;
use crate::domain::{client_msg_id, message_content};
use crate::store::{Appended, Markers, NewMessage, SeqOrder, Store};
use crate::telemetry::metric;

/// A stored message and whether the send was a retry of an earlier one.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message: Message,
    pub duplicate: bool,
    /// A commit's welcome, handed to its devices once the commit is stored.
    welcome: Option<super::mls::WelcomeFor>,
}

struct Job {
    origin_conn: Option<Uuid>,
    queued: Instant,
    reply: oneshot::Sender<ServiceResult<Sent>>,
    /// The link to preview once the message is stored.
    preview: Option<url::Url>,
}

/// A send that has been accepted and queued; await it for the outcome.
pub struct PendingSend {
    rx: oneshot::Receiver<ServiceResult<Sent>>,
    /// A media message holds off the orphan sweep until it is stored, so the media it
    /// names cannot be collected between the check and the commit.
    _sweep: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
    /// A commit's welcome, for `finish_send` once the commit is stored.
    welcome: Option<super::mls::WelcomeFor>,
}

impl PendingSend {
    /// Waits until the message is durable (or has failed).
    pub async fn wait(self) -> ServiceResult<Sent> {
        let mut sent = self.rx.await.unwrap_or(Err(ServiceError::Unavailable))?;
        sent.welcome = self.welcome;
        Ok(sent)
    }
}

/// The group-commit writer.
pub struct MessageWriter {
    tx: Mutex<Option<mpsc::Sender<(NewMessage, Job)>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Attempts per batch before the senders are told `message_delivery_failed`.
const COMMIT_ATTEMPTS: u32 = 3;

impl MessageWriter {
    /// Starts the writer task; with `notify`, every batch of newly stored messages is
    /// handed on for push notifications, and with `previews` each link to preview.
    pub(super) fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        max_batch: usize,
        notify: Option<mpsc::Sender<Vec<Message>>>,
        threads: mpsc::Sender<Vec<(Uuid, Uuid)>>,
        previews: Option<mpsc::Sender<super::previews::Job>>,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<(NewMessage, Job)>(max_batch * 4);
        let task = tokio::spawn(async move {
            let mut messages = Vec::with_capacity(max_batch);
            let mut jobs = Vec::with_capacity(max_batch);
            while let Some((m, j)) = rx.recv().await {
                messages.push(m);
                jobs.push(j);
                while messages.len() < max_batch {
                    match rx.try_recv() {
                        Ok((m, j)) => {
                            messages.push(m);
                            jobs.push(j);
                        }
                        Err(_) => break,
                    }
                }
                let after = AfterCommit {
                    notify: notify.as_ref(),
                    threads: &threads,
                    previews: previews.as_ref(),
                };
                commit(&*store, &*bus, &messages, jobs.drain(..), after).await;
                messages.clear();
            }
        });
        Self {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<(NewMessage, Job)>> {
        self.tx.lock().clone()
    }

    pub(super) async fn drain(&self) {
        self.tx.lock().take();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Who hears of a batch's new messages after it is stored, besides the room.
struct AfterCommit<'a> {
    /// The push notification collector, when push is on.
    notify: Option<&'a mpsc::Sender<Vec<Message>>>,
    /// The thread roots whose counts moved, as (room, root), to be announced.
    threads: &'a mpsc::Sender<Vec<(Uuid, Uuid)>>,
    /// The link preview queue, when previews are on.
    previews: Option<&'a mpsc::Sender<super::previews::Job>>,
}

async fn commit(
    store: &dyn Store,
    bus: &dyn Bus,
    messages: &[NewMessage],
    jobs: impl Iterator<Item = Job>,
    after: AfterCommit<'_>,
) {
    let notify = after.notify;
    metrics::histogram!("palaver_commit_batch_size").record(messages.len() as f64);
    let started = Instant::now();
    let mut outcome = store.append_messages(messages).await;
    let mut attempt = 1;
    while let Err(err) = &outcome {
        if attempt >= COMMIT_ATTEMPTS {
            break;
        }
        tracing::warn!(%err, attempt, "message commit failed; retrying");
        tokio::time::sleep(Duration::from_millis(20 * 5u64.pow(attempt))).await;
        attempt += 1;
        outcome = store.append_messages(messages).await;
    }
    metrics::histogram!(metric::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    match outcome {
        Ok(results) => {
            let mut fresh = Vec::new();
            let mut roots = Vec::new();
            for (result, job) in results.into_iter().zip(jobs) {
                let reply = match result {
                    Appended::New(message) => {
                        metrics::counter!(metric::MESSAGES).increment(1);
                        let frame = encode(&ServerFrame::Message {
                            message: message.clone(),
                        });
                        let delivery = Delivery {
                            audience: Audience::Room(message.room_id),
                            frame,
                            room_seq: Some((message.room_id, message.seq)),
                            exclude_conn: job.origin_conn,
                            class: Class::Change,
                        };
                        if let Err(err) = bus.publish(Event::Deliver(delivery)).await {
                            // Stored is what counts: clients repair from the store.
                            tracing::warn!(%err, "could not announce a stored message");
                        }
                        if notify.is_some() {
                            fresh.push(message.clone());
                        }
                        if let Some(root) = message.thread_root_id {
                            roots.push((message.room_id, root));
                        }
                        if let (Some(queue), Some(url)) = (after.previews, job.preview) {
                            super::previews::hand_off(queue, &message, url);
                        }
                        Ok(Sent {
                            message,
                            duplicate: false,
                            welcome: None,
                        })
                    }
                    Appended::Duplicate(message) => Ok(Sent {
                        message,
                        duplicate: true,
                        welcome: None,
                    }),
                    Appended::NotMember => Err(ServiceError::RoomNotFound),
                    Appended::WrongEpoch { current } => Err(ServiceError::WrongEpoch(current)),
                    Appended::EncryptionMismatch { encrypted: true } => {
                        Err(ServiceError::EncryptedRoom(super::mls::SEND_MLS))
                    }
                    Appended::EncryptionMismatch { encrypted: false } => {
                        Err(ServiceError::NotEncrypted)
                    }
                };
                metrics::histogram!(metric::SEND_SECONDS)
                    .record(job.queued.elapsed().as_secs_f64());
                let _ = job.reply.send(reply);
            }
            if !roots.is_empty() && after.threads.try_send(roots).is_err() {
                // Stored is what counts: the roots' counts reach clients at their next
                // sync or fetch.
                tracing::warn!("thread queue full; new thread counts will not be announced live");
            }
            // Notifications never hold up sends: a full queue drops the batch's.
            if let (Some(tx), false) = (notify, fresh.is_empty())
                && tx.try_send(fresh).is_err()
            {
                metrics::counter!(metric::PUSH_DROPPED, "stage" => "intake").increment(1);
                tracing::warn!("notification queue full; a batch of messages will not be notified");
            }
        }
        Err(err) => {
            tracing::error!(%err, batch = messages.len(), "message commit failed; senders told to retry");
            metrics::counter!(metric::MESSAGE_DELIVERY_FAILED).increment(messages.len() as u64);
            for job in jobs {
                let _ = job.reply.send(Err(ServiceError::DeliveryFailed));
            }
        }
    }
}

/// The status of a message given the room's receipt summary.
pub(super) fn status_for(seq: i64, summary: Markers) -> MessageStatus {
    if seq <= summary.read_seq {
        MessageStatus::Read
    } else if seq <= summary.delivered_seq {
        MessageStatus::Delivered
    } else {
        MessageStatus::Sent
    }
}

/// Where a receipt moves the member's markers: reading implies delivery, so a read
/// receipt moves both (a target of 0 leaves a marker where it is).
pub(super) fn receipt_target(kind: ReceiptKind, seq: i64) -> Markers {
    match kind {
        ReceiptKind::Delivered => Markers {
            delivered_seq: seq,
            read_seq: 0,
        },
        ReceiptKind::Read => Markers {
            delivered_seq: seq,
            read_seq: seq,
        },
    }
}

impl Core {
    /// A member in any state may read the room.
    pub(super) fn require_member(&self, room: Uuid, user: Uuid) -> ServiceResult<()> {
        if self.membership.is_member(room, user) {
            Ok(())
        } else {
            Err(ServiceError::RoomNotFound)
        }
    }

    /// Only a joined member sends messages, typing and receipts: an invited one reads
    /// until they accept.
    pub(super) fn require_joined(&self, room: Uuid, user: Uuid) -> ServiceResult<()> {
        match self.membership.state(room, user) {
            Some(MemberState::Joined) => Ok(()),
            Some(MemberState::Invited) => Err(ServiceError::Forbidden(super::NOT_ACCEPTED)),
            None => Err(ServiceError::RoomNotFound),
        }
    }

    /// Whether the user may send to the room now: joined, and for a 1:1 room, the other
    /// person still in it and neither of the two blocking the other.
    fn may_send(&self, room: Uuid, user: Uuid) -> ServiceResult<()> {
        self.require_joined(room, user)?;
        self.mutes.check(room, user)?;
        match self.membership.direct(room, user) {
            Direct::Group => Ok(()),
            Direct::Alone => Err(ServiceError::DirectClosed),
            Direct::With(other) if self.membership.blocked_either(user, other) => {
                Err(ServiceError::Blocked)
            }
            Direct::With(_) => Ok(()),
        }
    }

    /// Validates a send and queues it for the writer; the caller awaits the result. Sends
    /// from one caller are stored in the order they were queued.
    pub async fn submit_send(
        &self,
        who: Identity,
        req: SendMessageRequest,
        origin_conn: Option<Uuid>,
    ) -> ServiceResult<PendingSend> {
        self.submit(who, req, origin_conn, false).await
    }

    /// `submit_send`, for a send or a forward (a copy of another message).
    async fn submit(
        &self,
        who: Identity,
        req: SendMessageRequest,
        origin_conn: Option<Uuid>,
        forwarded: bool,
    ) -> ServiceResult<PendingSend> {
        let client_msg_id = client_msg_id(&req.client_msg_id)?;
        let content = message_content(&req.content, self.config.max_message_bytes)?;
        match (req.kind, req.media_id) {
            (MessageType::Text, None) if content.trim().is_empty() => {
                return Err(ServiceError::Validation(
                    "a text message needs content".into(),
                ));
            }
            (MessageType::Text, None) => {}
            (MessageType::Text, Some(_)) => {
                return Err(ServiceError::Validation(
                    "a text message has no mediaId".into(),
                ));
            }
            (MessageType::Event, _) => {
                return Err(ServiceError::Validation(
                    "room events are sent by the server".into(),
                ));
            }
            // Checked with the room's encryption below.
            (MessageType::Mls, _) => {}
            (_, None) => {
                return Err(ServiceError::Validation(
                    "a media message needs a mediaId".into(),
                ));
            }
            (_, Some(_)) => {}
        }
        self.may_send(req.room_id, who.user_id)?;
        let (mls, welcome) = self.mls_send(&req, &content).await?;
        let extras = self.extras(who, &req, &content).await?;
        let (media, sweep) = match req.media_id {
            Some(id) => {
                let sweep = self.media_sweep.clone().read_owned().await;
                // An encrypted room's file is opaque bytes to the server: any `file`.
                let kind = match req.kind {
                    MessageType::Mls => MessageType::File,
                    kind => kind,
                };
                (
                    Some(self.media_for_message(who, kind, id).await?),
                    Some(sweep),
                )
            }
            None => (None, None),
        };
        self.limit(RateBucket::Send, &who.user_id.to_string())
            .await?;
        let message = NewMessage {
            id: Uuid::now_v7(),
            room_id: req.room_id,
            sender_id: who.user_id,
            client_msg_id,
            kind: req.kind,
            content,
            media_id: req.media_id,
            media,
            reply_to: extras.reply_to,
            thread_root_id: extras.thread_root_id,
            also_in_room: extras.also_in_room,
            mentions: extras.mentions,
            mentions_room: extras.mentions_room,
            event: None,
            forwarded,
            system: false,
            mls,
            now_ms: now_ms(),
        };
        let preview = super::previews::link_of(req.kind, &message.content, req.no_preview);
        let rx = self.queue(message, origin_conn, preview).await?;
        Ok(PendingSend {
            rx,
            _sweep: sweep,
            welcome,
        })
    }

    /// Hands a message to the writer; the receiver answers once it is stored.
    async fn queue(
        &self,
        message: NewMessage,
        origin_conn: Option<Uuid>,
        preview: Option<url::Url>,
    ) -> ServiceResult<oneshot::Receiver<ServiceResult<Sent>>> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            origin_conn,
            queued: Instant::now(),
            reply,
            preview,
        };
        let sender = self.writer.sender().ok_or(ServiceError::Unavailable)?;
        sender
            .send((message, job))
            .await
            .map_err(|_| ServiceError::Unavailable)?;
        Ok(rx)
    }

    /// Stores a room event (sent by the server, in `actor`'s name) in the room's
    /// timeline, and waits until it is stored and announced.
    pub(crate) async fn room_event(
        &self,
        room: Uuid,
        actor: Uuid,
        event: RoomEvent,
    ) -> ServiceResult<()> {
        let id = Uuid::now_v7();
        let message = NewMessage {
            id,
            room_id: room,
            sender_id: actor,
            client_msg_id: format!("event:{id}"),
            kind: MessageType::Event,
            content: String::new(),
            media_id: None,
            media: None,
            reply_to: None,
            thread_root_id: None,
            also_in_room: false,
            mentions: Vec::new(),
            mentions_room: false,
            event: Some(event),
            forwarded: false,
            system: true,
            mls: None,
            now_ms: now_ms(),
        };
        let rx = self.queue(message, None, None).await?;
        rx.await.unwrap_or(Err(ServiceError::Unavailable))?;
        Ok(())
    }

    /// Sends a forwarded copy and waits until it is durable.
    pub(super) async fn send_forwarded(
        &self,
        who: Identity,
        req: SendMessageRequest,
    ) -> ServiceResult<Sent> {
        let sent = self.submit(who, req, None, true).await?.wait().await?;
        self.finish_send(sent).await
    }

    /// Sends and waits until the message is durable. A retry returns the stored message
    /// with `duplicate: true` and its current status.
    pub async fn send(
        &self,
        who: Identity,
        req: SendMessageRequest,
        origin_conn: Option<Uuid>,
    ) -> ServiceResult<Sent> {
        let sent = self
            .submit_send(who, req, origin_conn)
            .await?
            .wait()
            .await?;
        self.finish_send(sent).await
    }

    /// Completes a duplicate as it is now (status, reactions, thread); a fresh message
    /// is `sent` and complete as the writer answered it.
    pub async fn finish_send(&self, mut sent: Sent) -> ServiceResult<Sent> {
        if let Some(welcome) = sent.welcome.take()
            && !sent.duplicate
        {
            let m = &sent.message;
            self.deliver_welcome(m.room_id, m.seq, welcome).await?;
        }
        if sent.duplicate {
            let room = sent.message.room_id;
            if let Some(message) = self
                .with_status(room, vec![sent.message.clone()])
                .await?
                .pop()
            {
                sent.message = message;
            }
        }
        Ok(sent)
    }

    /// Sets the status of messages of one room from its receipt summary, and completes
    /// them (`complete`): how every read path (history, replay, search) fills messages.
    pub(super) async fn with_status(
        &self,
        room: Uuid,
        mut messages: Vec<Message>,
    ) -> ServiceResult<Vec<Message>> {
        if !messages.is_empty() {
            let summary = self.store.summary(room).await?;
            for m in &mut messages {
                m.status = status_for(m.seq, summary);
            }
            self.complete(&mut messages).await?;
        }
        Ok(messages)
    }

    /// A page of history, ascending. With `after`, the page just after it; otherwise the
    /// page just before `before` (the newest page without either).
    pub async fn history(
        &self,
        who: Identity,
        room: Uuid,
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> ServiceResult<HistoryResponse> {
        self.require_member(room, who.user_id)?;
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ServiceError::Validation("limit must be 1 to 200".into()));
        }
        if before.is_some_and(|b| b < 1) || after.is_some_and(|a| a < 0) {
            return Err(ServiceError::Validation(
                "before must be at least 1 and after at least 0".into(),
            ));
        }
        // Without `after`, the page next to `before`: read from the top down.
        let order = if after.is_none() {
            SeqOrder::Descending
        } else {
            SeqOrder::Ascending
        };
        let mut messages = self
            .store
            .messages(
                room,
                after.unwrap_or(0),
                before.unwrap_or(i64::MAX),
                limit + 1,
                order,
            )
            .await?;
        // The one read past the limit only tells that there is more.
        let has_more = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        // Pages are answered in ascending seq.
        if order == SeqOrder::Descending {
            messages.reverse();
        }
        Ok(HistoryResponse {
            messages: self.with_status(room, messages).await?,
            has_more,
        })
    }

    /// Messages of a room in `(after, before)`, ascending, for a connection's resume or gap
    /// repair; empty if the user is no longer a member.
    pub async fn replay(
        &self,
        user: Uuid,
        room: Uuid,
        after: i64,
        before: i64,
        limit: u32,
    ) -> ServiceResult<Vec<Message>> {
        if !self.membership.is_member(room, user) {
            return Ok(Vec::new());
        }
        let messages = self
            .store
            .messages(room, after, before, limit, SeqOrder::Ascending)
            .await?;
        self.with_status(room, messages).await
    }

    /// The room's newest seq, if the user is a member.
    pub async fn last_seq(&self, user: Uuid, room: Uuid) -> ServiceResult<Option<i64>> {
        if !self.membership.is_member(room, user) {
            return Ok(None);
        }
        Ok(self.store.room(room).await?.map(|r| r.last_seq))
    }

    /// One message, if the caller is in its room.
    pub async fn message(&self, who: Identity, id: Uuid) -> ServiceResult<Message> {
        let message = self
            .store
            .message(id)
            .await?
            .ok_or(ServiceError::MessageNotFound)?;
        if !self.membership.is_member(message.room_id, who.user_id) {
            return Err(ServiceError::MessageNotFound);
        }
        let mut list = self.with_status(message.room_id, vec![message]).await?;
        list.pop().ok_or(ServiceError::MessageNotFound)
    }

    async fn own_message(&self, who: Identity, id: Uuid) -> ServiceResult<Message> {
        let message = self.message(who, id).await?;
        if message.sender_id != who.user_id {
            return Err(ServiceError::Forbidden(
                "only the sender may change a message",
            ));
        }
        if message.deleted {
            return Err(ServiceError::Conflict("the message is deleted"));
        }
        Ok(message)
    }

    /// Replaces the text of one's own message; members see `message.updated`. Its link
    /// preview follows the new text (`no_preview`: none).
    pub async fn edit_message(
        &self,
        who: Identity,
        id: Uuid,
        content: &str,
        no_preview: bool,
        origin_conn: Option<Uuid>,
    ) -> ServiceResult<Message> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let old = self.own_message(who, id).await?;
        self.require_plain(old.room_id, super::mls::IN_MLS).await?;
        let content = message_content(content, self.config.max_message_bytes)?;
        if old.kind == MessageType::Text && content.trim().is_empty() {
            return Err(ServiceError::Validation(
                "a text message needs content".into(),
            ));
        }
        let (mentions, mentions_room) = self.mentions(who.user_id, old.room_id, &content).await?;
        let changed = self
            .store
            .edit_message(id, &content, &mentions, mentions_room, now_ms())
            .await?;
        let changed = self.repreview(&old, changed, no_preview).await?;
        self.changed(changed, origin_conn).await
    }

    /// Deletes one's own message, or as an owner or admin of a group anyone's there (its
    /// seq stays, its content goes); members see `message.deleted`.
    pub async fn delete_message(
        &self,
        who: Identity,
        id: Uuid,
        origin_conn: Option<Uuid>,
    ) -> ServiceResult<Message> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let moderation = self.may_delete(who, id).await?;
        if let Some(m) = self.store.message(id).await?
            && m.mls
                .is_some_and(|mls| mls.kind != palaver_proto::MlsKind::Application)
        {
            return Err(ServiceError::Conflict(
                "an MLS commit or proposal stays: every member needs each one, in order",
            ));
        }
        let changed = self.store.delete_message(id, now_ms()).await?;
        let room = changed.message.room_id;
        let (action, detail) = match moderation {
            false => ("message.delete", format!("room {room}")),
            true => (
                "room.message_delete",
                format!("room {room}, sent by {}", changed.message.sender_id),
            ),
        };
        self.audit(
            Some(who.user_id),
            action,
            Some(id.to_string()),
            Some(detail),
        )
        .await;
        self.changed(changed, origin_conn).await
    }

    /// Moves the caller's delivered or read marker; members see `receipt`, and
    /// `receipt.summary` when the room-wide minimum moves.
    pub async fn receipt(
        &self,
        who: Identity,
        room: Uuid,
        seq: i64,
        kind: ReceiptKind,
    ) -> ServiceResult<i64> {
        if seq < 1 {
            return Err(ServiceError::Validation("seq must be at least 1".into()));
        }
        self.require_joined(room, who.user_id)?;
        let moved = self
            .store
            .advance_markers(room, who.user_id, receipt_target(kind, seq))
            .await?
            .ok_or(ServiceError::RoomNotFound)?;
        let seq = match kind {
            ReceiptKind::Delivered => moved.markers.delivered_seq,
            ReceiptKind::Read => moved.markers.read_seq,
        };
        if moved.moved {
            let frame = ServerFrame::Receipt {
                room_id: room,
                user_id: who.user_id,
                status: kind,
                seq,
            };
            let audience = Audience::Joined {
                room,
                from: Some(who.user_id),
            };
            self.deliver(audience, &frame, None).await?;
        }
        if moved.summary_after != moved.summary_before {
            self.announce_summary(room, moved.summary_after).await?;
        }
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_summary() {
        let summary = Markers {
            delivered_seq: 4,
            read_seq: 3,
        };
        assert_eq!(status_for(5, summary), MessageStatus::Sent);
        assert_eq!(status_for(4, summary), MessageStatus::Delivered);
        assert_eq!(status_for(3, summary), MessageStatus::Read);
    }

    #[test]
    fn reading_implies_delivery() {
        let read = receipt_target(ReceiptKind::Read, 7);
        assert_eq!((read.delivered_seq, read.read_seq), (7, 7));
        let delivered = receipt_target(ReceiptKind::Delivered, 7);
        assert_eq!((delivered.delivered_seq, delivered.read_seq), (7, 0));
    }
}
