//! What a conversation adds to a message: replies, threads, reactions, mentions, pins,
//! forwards, link previews and room events; and the bodies of their endpoints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

use crate::role::Role;

/// The message a reply quotes, as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReplyTo {
    pub id: Uuid,
    pub sender_id: Uuid,
    /// The start of its text (at most 100 characters), or the media's file name; empty
    /// once deleted.
    pub preview: String,
    /// True once the quoted message was deleted.
    #[serde(default)]
    pub deleted: bool,
}

/// A card for the first link of a text message, read by the server from the page
/// (`og:` tags, else `<title>` and the meta description). It arrives after the message,
/// as `message.updated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LinkPreview {
    /// The link as it appears in the message (normalised: scheme and host lowercase).
    pub url: String,
    /// At most 300 characters.
    pub title: String,
    /// At most 1000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The page's picture, fetched and cleaned by the server and served from it: a signed
    /// link like `Media.thumbnailUrl` (relative to the server), never the third party's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// The site's name (`og:site_name`), at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
}

/// On a thread's root: its replies at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ThreadSummary {
    pub reply_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub last_reply_at: OffsetDateTime,
    /// Who replied, first replier first (at most 10).
    pub participant_ids: Vec<Uuid>,
}

/// One emoji on a message and who added it (oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    pub emoji: String,
    pub count: u32,
    pub user_ids: Vec<Uuid>,
}

/// What happened to a room, shown in its timeline as a message of type `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoomEventKind {
    /// The group was created (by the message's sender).
    Created,
    /// The sender renamed the group to `name`.
    Renamed,
    /// The sender added `users`.
    MembersAdded,
    /// The sender accepted an invitation and joined.
    Joined,
    /// The sender removed `users`.
    MemberRemoved,
    /// The sender left.
    MemberLeft,
    /// The sender gave `users` the role `role`.
    RoleChanged,
    /// The sender changed (or removed) the group's picture.
    PictureChanged,
}

/// Someone a room event names, with the name they had then, so that it stays readable
/// after they leave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventUser {
    pub id: Uuid,
    pub display_name: String,
}

/// A room event: what changed, who did it (the message's `senderId` and `senderName`),
/// and to whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RoomEvent {
    pub kind: RoomEventKind,
    /// The sender's display name at the time.
    pub sender_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<EventUser>,
    /// `renamed`: the new name; `created`: the first name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `role_changed`: the new role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// What notifies a member of a room: every message, only mentions of them, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotificationLevel {
    #[default]
    All,
    Mentions,
    Nothing,
}

impl NotificationLevel {
    /// The name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationLevel::All => "all",
            NotificationLevel::Mentions => "mentions",
            NotificationLevel::Nothing => "nothing",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<NotificationLevel> {
        match s {
            "all" => Some(NotificationLevel::All),
            "mentions" => Some(NotificationLevel::Mentions),
            "nothing" => Some(NotificationLevel::Nothing),
            _ => None,
        }
    }
}

/// `PUT /api/v1/rooms/{roomId}/notifications`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NotificationLevelRequest {
    pub level: NotificationLevel,
}

/// `POST /api/v1/messages/{messageId}/forward`: a copy of the message (its text and
/// media) sent to another room the caller is in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ForwardRequest {
    pub room_id: Uuid,
    /// The idempotency key of the new message, as in a send.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[\x21-\x7e]{1,64}$"))]
    pub client_msg_id: String,
}

/// Query of `GET /api/v1/messages/{messageId}/thread`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase")]
pub struct ThreadQuery {
    /// Only replies with a larger seq (the next page).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 0))]
    pub after: Option<i64>,
    /// 1–200, default 100.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<u32>,
}

/// Per-room change numbers a reconnecting client sends with `sync`: for each room, the
/// `changes` of the last `synced` it applied (docs/PROTOCOL.md, "Resume").
pub type ChangeCursors = BTreeMap<Uuid, i64>;
