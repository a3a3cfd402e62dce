//! Who is notified of what, and the push endpoints' rules (subscriptions, mutes, the
//! preview setting).
//!
//! The message writer hands every batch of stored messages to the collector task here
//! with `try_send` (a full queue drops the batch and counts it: sends never wait for
//! notifications). For each message, every other member of the room gets a pending
//! entry keyed by (user, room), due after `collapse_ms` if the member has no live
//! connection (presence from the cache, so it holds across nodes), or after
//! `ack_delay_ms` if they have one. More messages for the same key join the entry
//! without moving its deadline: a burst becomes one notification with a count. When an
//! entry falls due, the store says whether the member's devices acknowledged
//! (`delivered` marker at or past the messages), what notifies the member of the room
//! (every message, only mentions of them, or nothing), and how much the member lets a
//! notification show; only then is anything sent.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use palaver_proto::{
    Message, MessageType, NotificationLevel, NotificationPreview, PresenceStatus, PushNotification,
    PushSettings, PushSubscription, PushSubscriptionList, PushSubscriptionRequest,
    UpdatePushSettingsRequest, VapidPublicKey, WebhookEvent,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Core, Identity, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::outbound::GuardError;
use crate::push::{Channel, Dispatcher, Notice};
use crate::store::{PushSubscriptionRow, PushTarget, Subscribed};

/// Batches of stored messages waiting for the collector.
pub(super) const INTAKE_BATCHES: usize = 1024;
/// Most (user, room) entries pending at once; beyond, new ones are dropped and counted.
const MAX_PENDING: usize = 100_000;
/// Seqs remembered per entry to count what a member has not acknowledged.
const MAX_SEQS: usize = 1000;
/// Most subscriptions per user (browsers and devices).
const MAX_SUBSCRIPTIONS: usize = 20;
/// Longest endpoint URL accepted.
const MAX_ENDPOINT_BYTES: usize = 2048;
/// Longest message text in a `full` notification, bytes: keeps the encrypted payload
/// well inside the 4096 bytes every push service must accept (RFC 8291).
const MAX_PREVIEW_BYTES: usize = 1000;

/// The messages waiting to be notified to one member for one room.
struct Pending {
    seqs: Vec<i64>,
    /// Messages beyond `MAX_SEQS`, counted only.
    overflow: u32,
    latest: Arc<Message>,
    /// One of the messages mentions the member (or `@room`): it notifies even where
    /// only mentions do.
    mentioned: bool,
}

impl Pending {
    fn new(user: Uuid, message: &Arc<Message>) -> Pending {
        Pending {
            seqs: vec![message.seq],
            overflow: 0,
            latest: message.clone(),
            mentioned: mentions(message, user),
        }
    }

    fn add(&mut self, user: Uuid, message: &Arc<Message>) {
        self.mentioned |= mentions(message, user);
        if self.seqs.len() < MAX_SEQS {
            self.seqs.push(message.seq);
        } else {
            self.overflow = self.overflow.saturating_add(1);
        }
        if message.seq > self.latest.seq {
            self.latest = message.clone();
        }
    }

    /// How many of the messages are past the member's delivered marker.
    fn unacknowledged(&self, delivered_seq: i64) -> u32 {
        if self.latest.seq <= delivered_seq {
            return 0;
        }
        let listed = self.seqs.iter().filter(|s| **s > delivered_seq).count() as u32;
        listed.saturating_add(self.overflow)
    }
}

/// Whether a message mentions the user, by name or as `@room`.
fn mentions(message: &Message, user: Uuid) -> bool {
    message.mentions_room || message.mentions.contains(&user)
}

type Key = (Uuid, Uuid);

/// The collector: pending entries and their deadlines.
pub(super) async fn run(
    core: Arc<Core>,
    push: Arc<Dispatcher>,
    mut rx: mpsc::Receiver<Vec<Message>>,
) {
    let mut pending: HashMap<Key, Pending> = HashMap::new();
    let mut due: BinaryHeap<Reverse<(Instant, Key)>> = BinaryHeap::new();
    let collapse = Duration::from_millis(core.config.push.collapse_ms);
    let ack_delay = Duration::from_millis(core.config.push.ack_delay_ms);
    loop {
        let next = due.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                // Room events are shown in the timeline, not notified; nor are an
                // encrypted room's commits and proposals (its application messages
                // are, with no content: the server has none).
                let notified = |m: &Message| {
                    m.kind != MessageType::Event
                        && m.mls.as_ref().is_none_or(|mls| mls.kind == palaver_proto::MlsKind::Application)
                };
                for message in batch.into_iter().filter(notified) {
                    let message = Arc::new(message);
                    let Some(members) = core.membership.members(message.room_id) else { continue };
                    for &user in members.iter().filter(|u| **u != message.sender_id) {
                        let key = (user, message.room_id);
                        if let Some(entry) = pending.get_mut(&key) {
                            entry.add(user, &message);
                            continue;
                        }
                        if pending.len() >= MAX_PENDING {
                            metrics::counter!(crate::telemetry::metric::PUSH_DROPPED, "stage" => "pending").increment(1);
                            continue;
                        }
                        let connected = core
                            .cache
                            .presence(user)
                            .await
                            .is_some_and(|p| p.status != PresenceStatus::Offline);
                        let wait = if connected { ack_delay } else { collapse };
                        due.push(Reverse((Instant::now() + wait, key)));
                        pending.insert(key, Pending::new(user, &message));
                    }
                }
            }
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                while let Some(Reverse((at, key))) = due.peek().copied() {
                    if at > now {
                        break;
                    }
                    due.pop();
                    if let Some(entry) = pending.remove(&key) {
                        let (due_core, push) = (core.clone(), push.clone());
                        core.tasks.spawn(async move {
                            if let Err(err) = due_core.notify(&push, key, entry).await {
                                tracing::error!(%err, "could not prepare a push notification");
                            }
                        });
                    }
                }
            }
        }
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Decodes base64url (padded or not, as browsers differ).
fn base64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(s))
        .ok()
}

fn subscription_view(row: &PushSubscriptionRow) -> PushSubscription {
    PushSubscription {
        id: row.id,
        endpoint: row.endpoint.clone(),
        created_at: to_time(row.created_at_ms),
    }
}

impl Core {
    fn push(&self) -> ServiceResult<&Arc<Dispatcher>> {
        self.push.as_ref().ok_or(ServiceError::Unavailable)
    }

    /// Sends one notification for a due entry, if the member still needs it.
    async fn notify(
        &self,
        push: &Arc<Dispatcher>,
        (user, room): Key,
        entry: Pending,
    ) -> ServiceResult<()> {
        let Some(PushTarget {
            delivered_seq,
            level,
            preview,
        }) = self.store.push_target(room, user).await?
        else {
            return Ok(());
        };
        let count = entry.unacknowledged(delivered_seq);
        let wanted = match level {
            NotificationLevel::All => true,
            NotificationLevel::Mentions => entry.mentioned,
            NotificationLevel::Nothing => false,
        };
        if !wanted || count == 0 {
            return Ok(());
        }
        let subscriptions = self.store.push_subscriptions(user).await?;
        if subscriptions.is_empty() && !push.has_webhook() {
            return Ok(());
        }
        let latest = &entry.latest;
        let mut notification = PushNotification {
            kind: "messages".into(),
            room_id: room,
            count,
            last_seq: latest.seq,
            timestamp: latest.timestamp,
            room_name: None,
            sender_id: None,
            sender_name: None,
            message_id: None,
            message_type: None,
            content: None,
        };
        if preview != NotificationPreview::None {
            notification.sender_id = Some(latest.sender_id);
            notification.sender_name = self
                .store
                .user(latest.sender_id)
                .await?
                .map(|u| u.display_name);
            notification.room_name = self
                .store
                .room(room)
                .await?
                .filter(|r| r.is_group)
                .map(|r| r.name);
        }
        if preview == NotificationPreview::Full && !latest.deleted {
            notification.message_id = Some(latest.id);
            notification.message_type = Some(latest.kind);
            notification.content = Some(truncate(&latest.content, MAX_PREVIEW_BYTES));
        }
        let id = Uuid::now_v7();
        let body =
            serde_json::to_vec(&notification).map_err(|e| ServiceError::Internal(e.to_string()))?;
        for sub in subscriptions {
            push.enqueue(Notice {
                id,
                user,
                room,
                channel: Channel::WebPush(sub),
                body: body.clone(),
            });
        }
        if push.has_webhook() {
            let event = WebhookEvent {
                id,
                user_id: user,
                notification,
            };
            let body =
                serde_json::to_vec(&event).map_err(|e| ServiceError::Internal(e.to_string()))?;
            push.enqueue(Notice {
                id,
                user,
                room,
                channel: Channel::Webhook,
                body,
            });
        }
        Ok(())
    }

    /// The VAPID public key browsers subscribe with.
    pub fn vapid_public_key(&self) -> ServiceResult<VapidPublicKey> {
        Ok(VapidPublicKey {
            public_key: self.push()?.public_key().to_owned(),
        })
    }

    /// Stores a browser's subscription (idempotent on the endpoint); true if new. It is
    /// bound to the caller's session, which takes it along when it ends. An endpoint
    /// another user registered, in a session still live, is refused (`conflict`): knowing
    /// an endpoint must not let anyone redirect or silence someone else's notifications.
    /// The caller's own endpoint, registered from another of their sessions, moves to
    /// this one (the browser that holds it is the caller's either way).
    pub async fn subscribe(
        &self,
        who: Identity,
        req: PushSubscriptionRequest,
    ) -> ServiceResult<(PushSubscription, bool)> {
        let push = self.push()?;
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        if req.endpoint.len() > MAX_ENDPOINT_BYTES {
            return Err(ServiceError::PayloadTooLarge(format!(
                "endpoint is longer than {MAX_ENDPOINT_BYTES} bytes"
            )));
        }
        let url = url::Url::parse(&req.endpoint)
            .map_err(|_| ServiceError::Validation("endpoint is not a URL".into()))?;
        push.check_endpoint(&url).await.map_err(|e| match e {
            GuardError::Refused(why) => {
                ServiceError::Validation(format!("endpoint refused: {why}"))
            }
            other => ServiceError::Validation(other.to_string()),
        })?;
        let p256dh = base64url(&req.keys.p256dh)
            .filter(|k| {
                web_push_native::p256::PublicKey::from_sec1_bytes(k).is_ok() && k.len() == 65
            })
            .ok_or_else(|| {
                ServiceError::Validation(
                    "keys.p256dh must be an uncompressed P-256 public key, base64url".into(),
                )
            })?;
        let auth = base64url(&req.keys.auth)
            .filter(|a| a.len() == 16)
            .ok_or_else(|| {
                ServiceError::Validation("keys.auth must be 16 bytes, base64url".into())
            })?;
        let mine = self.store.push_subscriptions(who.user_id).await?;
        if mine.len() >= MAX_SUBSCRIPTIONS && !mine.iter().any(|s| s.endpoint == url.as_str()) {
            return Err(ServiceError::Conflict(
                "too many push subscriptions; delete one first",
            ));
        }
        let row = PushSubscriptionRow {
            id: Uuid::now_v7(),
            user_id: who.user_id,
            endpoint: url.to_string(),
            p256dh,
            auth,
            created_at_ms: now_ms(),
            session_id: Some(who.session_id),
        };
        match self.store.upsert_push_subscription(&row, now_ms()).await? {
            Subscribed::Created(stored) => Ok((subscription_view(&stored), true)),
            Subscribed::Updated(stored) => Ok((subscription_view(&stored), false)),
            Subscribed::Taken => Err(ServiceError::Conflict(
                "this push endpoint is registered by another account; unsubscribe it in the \
                 browser (PushSubscription.unsubscribe()) and subscribe again for a new one",
            )),
            Subscribed::SessionEnded => Err(ServiceError::Unauthorized("the session has ended")),
        }
    }

    /// The caller's subscriptions.
    pub async fn subscriptions(&self, who: Identity) -> ServiceResult<PushSubscriptionList> {
        let rows = self.store.push_subscriptions(who.user_id).await?;
        Ok(PushSubscriptionList {
            subscriptions: rows.iter().map(subscription_view).collect(),
        })
    }

    /// Deletes one of the caller's subscriptions.
    pub async fn unsubscribe(&self, who: Identity, id: Uuid) -> ServiceResult<()> {
        if self
            .store
            .delete_push_subscription(id, Some(who.user_id))
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::SubscriptionNotFound)
        }
    }

    /// Sets what notifies the caller of a room: every message, only mentions of them, or
    /// nothing. (Muting a room is `nothing`, unmuting `all`.)
    pub async fn set_notification_level(
        &self,
        who: Identity,
        room: Uuid,
        level: NotificationLevel,
    ) -> ServiceResult<()> {
        if !self.membership.is_member(room, who.user_id) {
            return Err(ServiceError::RoomNotFound);
        }
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        if self
            .store
            .set_notification_level(room, who.user_id, level)
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::RoomNotFound)
        }
    }

    /// The caller's preview setting and muted rooms.
    pub async fn push_settings(&self, who: Identity) -> ServiceResult<PushSettings> {
        let (preview, muted_rooms) = self.store.push_settings(who.user_id).await?;
        Ok(PushSettings {
            preview,
            muted_rooms,
        })
    }

    /// Changes the caller's preview setting.
    pub async fn update_push_settings(
        &self,
        who: Identity,
        req: UpdatePushSettingsRequest,
    ) -> ServiceResult<PushSettings> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        self.store
            .set_notification_preview(who.user_id, req.preview)
            .await?;
        self.push_settings(who).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 2), "h…");
    }

    #[test]
    fn base64url_accepts_padding_or_not() {
        assert_eq!(base64url("AQID"), Some(vec![1, 2, 3]));
        assert_eq!(base64url("AQ"), Some(vec![1]));
        assert_eq!(base64url("AQ=="), Some(vec![1]));
        assert_eq!(base64url("!!"), None);
    }
}
