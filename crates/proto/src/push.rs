//! Push notifications: subscriptions, per-room mutes, the preview setting, and what a
//! notification carries (the decrypted Web Push payload, and the body of a webhook).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::MessageType;

/// `GET /api/v1/push/vapid-public-key`: the server's VAPID public key (RFC 8292), the
/// `applicationServerKey` of `pushManager.subscribe`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VapidPublicKey {
    /// Uncompressed P-256 point (65 bytes), base64url without padding.
    pub public_key: String,
}

/// The keys of a Web Push subscription, as `PushSubscription.toJSON()` gives them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PushKeys {
    /// The browser's P-256 public key (65 bytes uncompressed), base64url.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::p256dh))]
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::auth_secret))]
    pub auth: String,
}

/// `POST /api/v1/push/subscriptions`: a browser's `PushSubscription.toJSON()`
/// (`expirationTime` and other fields are ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PushSubscriptionRequest {
    /// The push service URL to POST notifications to: https, at most 2048 bytes, and not
    /// an internal address (the server resolves the name to check).
    #[cfg_attr(
        feature = "openapi",
        schema(format = "uri", min_length = 1, pattern = r"^https://")
    )]
    pub endpoint: String,
    pub keys: PushKeys,
}

/// A stored subscription (its keys are never sent back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PushSubscription {
    pub id: Uuid,
    pub endpoint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/v1/push/subscriptions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PushSubscriptionList {
    pub subscriptions: Vec<PushSubscription>,
}

/// How much a notification shows. `sender` (the default) names who wrote but not what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotificationPreview {
    /// Sender, room name and the newest message's text.
    Full,
    /// Sender and room name, no text.
    #[default]
    Sender,
    /// Only that there are new messages in a room, and how many.
    None,
}

impl NotificationPreview {
    /// The snake_case name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationPreview::Full => "full",
            NotificationPreview::Sender => "sender",
            NotificationPreview::None => "none",
        }
    }

    /// The value named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(NotificationPreview::Full),
            "sender" => Some(NotificationPreview::Sender),
            "none" => Some(NotificationPreview::None),
            _ => None,
        }
    }
}

/// `GET|PUT /api/v1/push/settings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PushSettings {
    pub preview: NotificationPreview,
    /// Rooms the caller muted (`PUT /rooms/{roomId}/mute`). Ignored in `PUT`.
    #[serde(default)]
    pub muted_rooms: Vec<Uuid>,
}

/// `PUT /api/v1/push/settings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UpdatePushSettingsRequest {
    pub preview: NotificationPreview,
}

/// One notification: new messages in one room for one user. Fields beyond `type`,
/// `roomId`, `count`, `lastSeq` and `timestamp` appear only as the user's preview setting
/// allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PushNotification {
    /// Always `"messages"`.
    #[serde(rename = "type")]
    pub kind: String,
    pub room_id: Uuid,
    /// How many messages this notification stands for (a burst collapses into one).
    pub count: u32,
    /// The seq of the newest of them.
    pub last_seq: i64,
    /// When the newest of them was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// A group's name (`sender` and `full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
    /// Who wrote the newest message (`sender` and `full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    /// The newest message's id, type and text, cut to 1000 bytes (`full` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<MessageType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// The body of a webhook request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// Unique per notification and the same on every retry: deduplicate on it.
    pub id: Uuid,
    /// Who is notified.
    pub user_id: Uuid,
    pub notification: PushNotification,
}
