//! REST bodies and the objects (users, rooms, messages, presence) they carry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::conversation::{NotificationLevel, Reaction, ReplyTo, RoomEvent, ThreadSummary};
use crate::role::Role;

#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

/// A person with an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The profile picture (its thumbnail), a signed link like `Media.url`; absent when
    /// the user has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

/// `PUT /api/v1/users/me/avatar` and `PUT /api/v1/rooms/{roomId}/picture`: the picture
/// to use, an image the caller uploaded (`POST /api/v1/media/upload`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SetPictureRequest {
    pub media_id: Uuid,
}

/// `POST /api/v1/auth/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// 3–32 characters: lowercase letters, digits, `_`, `.`, `-`; case-insensitive.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_.-]{3,32}$"))]
    pub username: String,
    /// 8–256 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 256))]
    pub password: String,
    /// 1–64 visible characters; defaults to the username.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::display_name))]
    pub display_name: Option<String>,
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Tokens and the user they belong to, from register, login and refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    /// JWT for `Authorization: Bearer …`, short-lived.
    pub access_token: String,
    /// Opaque, single-use: each refresh returns a new one and retires the old.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: User,
}

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /api/v1/auth/logout`: ends the session of the access token (and of the refresh
/// token, if given).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LogoutRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// `PATCH /api/v1/users/me`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UpdateProfileRequest {
    /// 1–64 visible characters, no control characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::display_name))]
    pub display_name: Option<String>,
}

/// `GET /api/v1/users?q=prefix`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UserList {
    pub users: Vec<User>,
}

/// Query of `GET /api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase")]
pub struct UserSearchQuery {
    /// Username or display-name prefix, 1–64 characters.
    #[cfg_attr(feature = "openapi", param(min_length = 1, max_length = 64))]
    pub q: String,
    /// At most 50; default 20.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Where a member stands: in the room, or asked to join and not yet answering.
///
/// An invited member (a 1:1 request from someone they share no room with, or a group
/// they were added to by a stranger) reads the room's messages but sends nothing, and no
/// presence, typing or receipts flow between them and the room until they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    #[default]
    Joined,
    Invited,
}

impl MemberState {
    /// The name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Joined => "joined",
            MemberState::Invited => "invited",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<MemberState> {
        match s {
            "joined" => Some(MemberState::Joined),
            "invited" => Some(MemberState::Invited),
            _ => None,
        }
    }
}

/// A member of a room, with the receipts they have given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RoomMember {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Every message with `seq` up to this has reached one of the member's devices.
    pub delivered_seq: i64,
    /// Every message with `seq` up to this has been read by the member. Both markers are
    /// 0 in the answers an invited caller gets: receipts are for members who accepted.
    pub read_seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
    /// `invited` until the member accepts (absent from older servers: joined).
    #[serde(default)]
    pub state: MemberState,
    /// The member's profile picture, as `User.avatarUrl`; absent when they have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

/// A conversation: 1:1 (`isGroup: false`, exactly one per pair) or a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub id: Uuid,
    /// The group's name; for a 1:1 room, the other person's display name.
    pub name: String,
    pub is_group: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The seq of the newest message (0 when empty).
    pub last_seq: i64,
    pub members: Vec<RoomMember>,
    /// The newest message, if any.
    #[serde(default)]
    pub last_message: Option<Message>,
    /// Messages from others after the caller's read marker.
    #[serde(default)]
    pub unread_count: i64,
    /// The caller's own state: `invited` is a request (1:1) or an invitation (group) to
    /// accept or decline.
    #[serde(default)]
    pub state: MemberState,
    /// Who asked the caller in, while the caller is `invited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<Uuid>,
    /// Messages from others after the caller's read marker that mention the caller (or
    /// `@room`).
    #[serde(default)]
    pub mention_count: i64,
    /// What notifies the caller of this room (absent from `room.updated`, which is not
    /// addressed to one member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_level: Option<NotificationLevel>,
    /// The group's picture; for a 1:1 room, the other person's `avatarUrl`. A signed link
    /// (the thumbnail) like `Media.url`; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    /// End-to-end encrypted (MLS): set at creation, never turned off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    /// For an encrypted room: the MLS group's current epoch, which the next commit must
    /// be made in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mls_epoch: Option<u64>,
}

/// `POST /api/v1/rooms/create`.
/// Its OpenAPI schema is written by hand (`crate::schema`): its rules need `oneOf`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRoomRequest {
    /// Required for a group (1–100 characters); ignored for 1:1.
    #[serde(default)]
    pub name: Option<String>,
    pub is_group: bool,
    /// The other people: exactly one for 1:1, up to 1000 for a group.
    #[serde(default)]
    pub member_ids: Vec<Uuid>,
    /// End-to-end encrypted with MLS; cannot be turned off. A pair may have one plain
    /// and one encrypted 1:1 room.
    #[serde(default)]
    pub encrypted: bool,
}

/// `PATCH /api/v1/rooms/{roomId}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UpdateRoomRequest {
    /// 1–100 visible characters, no control characters.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::group_name))]
    pub name: String,
}

/// `POST /api/v1/rooms/{roomId}/members`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AddMembersRequest {
    /// At least one.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub user_ids: Vec<Uuid>,
}

/// `PATCH /api/v1/rooms/{roomId}/members/{userId}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UpdateMemberRequest {
    pub role: Role,
}

/// `GET /api/v1/rooms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RoomList {
    pub rooms: Vec<Room>,
}

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    #[default]
    Text,
    Image,
    Video,
    Audio,
    File,
    /// Something that happened to the room (`event` says what); sent by the server only.
    Event,
    /// An MLS message of an end-to-end encrypted room (`mls` holds it); the only type such
    /// a room takes from clients. Its `content` is empty.
    Mls,
}

impl MessageType {
    /// The name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::Image => "image",
            MessageType::Video => "video",
            MessageType::Audio => "audio",
            MessageType::File => "file",
            MessageType::Event => "event",
            MessageType::Mls => "mls",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<MessageType> {
        match s {
            "text" => Some(MessageType::Text),
            "image" => Some(MessageType::Image),
            "video" => Some(MessageType::Video),
            "audio" => Some(MessageType::Audio),
            "file" => Some(MessageType::File),
            "event" => Some(MessageType::Event),
            "mls" => Some(MessageType::Mls),
            _ => None,
        }
    }
}

/// Where a message is on its way, as its sender sees it. In a group the status is the
/// summary over all other members: `delivered` once every one has it, `read` once every
/// one has read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Sent,
    Delivered,
    Read,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    pub room_id: Uuid,
    pub sender_id: Uuid,
    /// Position in the room: 1, 2, 3… with no gaps.
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Text, or the caption of a media message. Empty once deleted.
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<Uuid>,
    /// What `mediaId` names: type, size, dimensions and where to fetch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
    /// The sender's idempotency key.
    pub client_msg_id: String,
    /// When the server stored it.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub status: MessageStatus,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub edited_at: Option<OffsetDateTime>,
    /// True once the sender deleted it; the content is gone, the seq stays.
    #[serde(default)]
    pub deleted: bool,
    /// The message this one replies to, as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyTo>,
    /// The thread this message replies in: the id of the thread's first message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_root_id: Option<Uuid>,
    /// A thread reply that was also sent to the room (shown in the room's timeline).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub also_in_room: bool,
    /// On a thread's root: how many replies, when the last came, and who replied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadSummary>,
    /// Each emoji added to the message, in the order first added.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// The users the text mentions (`@username`), resolved by the server.
    #[serde(default)]
    pub mentions: Vec<Uuid>,
    /// The text mentions `@room`: everyone in it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mentions_room: bool,
    #[serde(default)]
    pub pinned: bool,
    /// A copy of a message forwarded from another room.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// For a message of type `event`: what happened to the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<RoomEvent>,
    /// The room's change number of the message's last change (0: never changed). Of two
    /// copies of a message, the one with the larger number is the newer.
    #[serde(default)]
    pub version: i64,
    /// A card for the message's first link, once the server has read the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_preview: Option<crate::LinkPreview>,
    /// For a message of type `mls`: the MLS message, and what the server read of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mls: Option<crate::MlsContent>,
}

/// An uploaded file: `POST /api/v1/media/upload` answers with one, and messages of type
/// image/video/audio/file carry one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Media {
    pub id: Uuid,
    /// Serves the bytes (`GET`, with Range support), relative to the server: a signed link
    /// (`?exp=…&sig=…`) that opens this file, without a header, until `exp` (unix
    /// seconds). With `Authorization: Bearer` the path serves the uploader and members of
    /// rooms where it was shared.
    pub url: String,
    /// A small JPEG or PNG preview (images only); a signed link like `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// Decided by the server from the bytes, not from what the client said.
    pub mime_type: String,
    /// Which message type may carry it (`file` may carry any).
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Bytes as stored (images: after their metadata was removed).
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// The name the uploader gave it, without any directory.
    pub filename: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/v1/media/usage`: what the caller's uploads occupy, against their quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MediaUsage {
    /// Bytes the caller's uploads occupy: each upload's `size` and its thumbnail's, as
    /// long as the upload exists (a file uploaded twice counts twice).
    pub used_bytes: u64,
    /// The most the caller's uploads may occupy; `null` when the server sets no quota.
    pub quota_bytes: Option<u64>,
}

/// Query of `POST /api/v1/media/upload` when the body is the raw file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(ToSchema, IntoParams),
    into_params(parameter_in = Query)
)]
#[serde(rename_all = "camelCase")]
pub struct UploadQuery {
    /// The file's name (a multipart upload takes it from the `file` part instead).
    #[serde(default)]
    pub filename: Option<String>,
}

/// `POST /api/v1/messages/send`.
/// Its OpenAPI schema is written by hand (`crate::schema`): its rules need `oneOf`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageRequest {
    pub room_id: Uuid,
    /// 1–64 printable ASCII characters, unique per sender and room; a retry with the
    /// same value returns the stored message instead of a duplicate.
    pub client_msg_id: String,
    /// Up to 16 KiB of UTF-8 (may be empty for media).
    #[serde(default)]
    pub content: String,
    #[serde(rename = "type", default)]
    pub kind: MessageType,
    #[serde(default)]
    pub media_id: Option<Uuid>,
    /// A message of the same room to quote.
    #[serde(default)]
    pub reply_to_id: Option<Uuid>,
    /// Reply in this message's thread (a message of the same room that is not itself a
    /// thread reply).
    #[serde(default)]
    pub thread_root_id: Option<Uuid>,
    /// With `threadRootId`: show the reply in the room's timeline too.
    #[serde(default)]
    pub also_in_room: bool,
    /// No link preview for this message.
    #[serde(default)]
    pub no_preview: bool,
    /// With `type: "mls"`: the MLS message (an `MLSMessage`, base64), the whole of what
    /// an encrypted room's message carries besides `mediaId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mls: Option<String>,
    /// With a commit that adds devices: the `MLSMessage` holding their `Welcome`
    /// (base64). The server hands it to those devices only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<String>,
}

/// `POST /api/v1/chat/{conversationId}`: a send whose room is in the path.
/// Its OpenAPI schema is written by hand (`crate::schema`): its rules need `oneOf`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatSendRequest {
    /// As in `SendMessageRequest`.
    pub client_msg_id: String,
    #[serde(default)]
    pub content: String,
    #[serde(rename = "type", default)]
    pub kind: MessageType,
    #[serde(default)]
    pub media_id: Option<Uuid>,
}

/// `PATCH /api/v1/messages/{messageId}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EditMessageRequest {
    /// The new text: no NUL; not blank for a text message.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::edit_content))]
    pub content: String,
    /// No link preview: the message loses the one it has. Otherwise a preview follows
    /// the first link, as on a send.
    #[serde(default)]
    pub no_preview: bool,
}

/// Query of `GET /api/v1/messages/history`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase")]
pub struct HistoryQuery {
    pub room_id: Uuid,
    /// Only messages with a smaller seq (the page just before it).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub before: Option<i64>,
    /// Only messages with a larger seq (the page just after it).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 0))]
    pub after: Option<i64>,
    /// 1–200, default 50.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<u32>,
}

/// Query of `GET /api/v1/chat/{conversationId}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    /// As in `GET /api/v1/messages/history`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub before: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 0))]
    pub after: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<u32>,
}

/// A page of messages in ascending `seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HistoryResponse {
    pub messages: Vec<Message>,
    /// True when more messages lie beyond this page in the direction asked.
    pub has_more: bool,
}

/// `GET /api/v1/messages/{messageId}/thread` and `GET /api/v1/rooms/{roomId}/pins`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MessageList {
    pub messages: Vec<Message>,
}

/// Whether someone is around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Away,
    Offline,
}

/// `GET /api/v1/presence/{userId}` and `/api/v1/chat/status/{userId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub user_id: Uuid,
    pub status: PresenceStatus,
    /// When the user was last connected (now, while online); null if never.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
}

/// `GET /api/v1/lastseen/{userId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LastSeen {
    pub user_id: Uuid,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
}

/// Which receipt a client gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    Delivered,
    Read,
}

/// `POST /api/v1/rooms/{roomId}/receipts`: the same as the socket's `receipt` frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReceiptRequest {
    /// At least 1. An integral number written with a fraction (`7.0`) is read as that
    /// integer.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    #[serde(deserialize_with = "crate::integral::i64")]
    pub seq: i64,
    pub status: ReceiptKind,
}

/// `GET /api/v1/rooms/{roomId}/receipts`: per member, and the summary over all members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReceiptsResponse {
    pub room_id: Uuid,
    /// Every message up to this seq has reached every member.
    pub delivered_seq: i64,
    /// Every message up to this seq has been read by every member.
    pub read_seq: i64,
    pub members: Vec<RoomMember>,
}

/// Liveness and readiness answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HealthResponse {
    pub status: String,
}

/// Per-room cursors a reconnecting client sends: the highest seq it holds for each room.
pub type Cursors = BTreeMap<Uuid, i64>;

/// Someone the caller has blocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BlockedUser {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub blocked_at: OffsetDateTime,
}

/// `GET /api/v1/users/me/blocks`: the people the caller blocked, most recent first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BlockList {
    pub blocks: Vec<BlockedUser>,
}
