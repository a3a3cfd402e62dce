//! Push notifications: Web Push subscriptions, mutes and the preview setting.

use async_trait::async_trait;
use palaver_proto::{NotificationLevel, NotificationPreview};
use uuid::Uuid;

use super::StoreResult;

/// A Web Push subscription with its keys.
#[derive(Debug, Clone)]
pub struct PushSubscriptionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub endpoint: String,
    /// The browser's P-256 public key, 65 bytes uncompressed.
    pub p256dh: Vec<u8>,
    /// The 16-byte authentication secret.
    pub auth: Vec<u8>,
    pub created_at_ms: i64,
    /// The session that registered it; its end (logout, revocation) deletes the row.
    /// `None` for a subscription registered before subscriptions were bound to sessions.
    pub session_id: Option<Uuid>,
}

/// What registering an endpoint did.
#[derive(Debug, Clone)]
pub enum Subscribed {
    /// A new subscription.
    Created(PushSubscriptionRow),
    /// The endpoint was registered already, and now has the new keys and session.
    Updated(PushSubscriptionRow),
    /// The endpoint is another user's, in a session that is still live: nothing changed.
    Taken,
    /// The registering session has ended (or does not exist): nothing stored.
    SessionEnded,
}

/// What deciding on one notification needs to know about a member of a room.
#[derive(Debug, Clone, Copy)]
pub struct PushTarget {
    pub delivered_seq: i64,
    /// What notifies them of this room.
    pub level: NotificationLevel,
    pub preview: NotificationPreview,
}

/// Push subscriptions and settings. Every method is one transaction.
#[async_trait]
pub trait PushStore: Send + Sync + 'static {
    /// Stores a subscription for `sub.session_id`'s live session, or updates the one
    /// with the same endpoint (keys, owner and session from `sub`; id and creation time
    /// kept) if that one is the same user's, or its session can no longer be refreshed
    /// at `now_ms` (no refresh token unused and unexpired). Another user's endpoint in
    /// a live session is `Taken`.
    async fn upsert_push_subscription(
        &self,
        sub: &PushSubscriptionRow,
        now_ms: i64,
    ) -> StoreResult<Subscribed>;
    /// The user's subscriptions, oldest first.
    async fn push_subscriptions(&self, user: Uuid) -> StoreResult<Vec<PushSubscriptionRow>>;
    /// Deletes a subscription (only if it is `owner`'s, when given); whether it existed.
    async fn delete_push_subscription(&self, id: Uuid, owner: Option<Uuid>) -> StoreResult<bool>;
    /// Sets what notifies a member of a room; false if they are not a member.
    async fn set_notification_level(
        &self,
        room: Uuid,
        user: Uuid,
        level: NotificationLevel,
    ) -> StoreResult<bool>;
    /// The user's preview setting and muted rooms; `NotFound` if there is no such user.
    async fn push_settings(&self, user: Uuid) -> StoreResult<(NotificationPreview, Vec<Uuid>)>;
    /// `NotFound` if there is no such user.
    async fn set_notification_preview(
        &self,
        user: Uuid,
        preview: NotificationPreview,
    ) -> StoreResult<()>;
    /// The member's delivered marker, mute and preview; `None` if not a member.
    async fn push_target(&self, room: Uuid, user: Uuid) -> StoreResult<Option<PushTarget>>;
}
