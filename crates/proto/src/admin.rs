//! Server administration (`/api/v1/admin/*`) and moderation reports: the bodies an
//! administrator's client (the web panel, `palaver admin --server`) sends and reads.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::User;

#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

/// `GET /api/v1/users/me`: the caller's profile, and whether they administer the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    /// A server administrator may use `/api/v1/admin/*`.
    pub is_admin: bool,
}

/// An account as administrators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdminUser {
    #[serde(flatten)]
    pub user: User,
    pub is_admin: bool,
    /// A disabled account cannot log in and has no live session.
    pub disabled: bool,
}

/// `GET /api/v1/admin/users`: accounts in username order, a page at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdminUserList {
    pub users: Vec<AdminUser>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Query of `GET /api/v1/admin/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase")]
pub struct AdminUserQuery {
    /// Username or display-name prefix, at most 64 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 64))]
    pub q: Option<String>,
    /// Only disabled (true) or only enabled (false) accounts.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// The `next` of the previous page: accounts after this username.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 64))]
    pub after: Option<String>,
    /// At most 200; default 50.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<u32>,
}

/// `POST /api/v1/admin/users`: an account made by an administrator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdminCreateUserRequest {
    /// As at registration: 3–32 characters, letters, digits, `_`, `.`, `-`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_.-]{3,32}$"))]
    pub username: String,
    /// 8–256 characters, hard enough to guess.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 256))]
    pub password: String,
    /// 1–64 visible characters; defaults to the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::display_name))]
    pub display_name: Option<String>,
    /// Make the new account an administrator too.
    #[serde(default)]
    pub is_admin: bool,
}

/// `PUT /api/v1/admin/users/{userId}/password`: the account's new password. Every
/// session of the account ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdminPasswordRequest {
    /// 8–256 characters, hard enough to guess.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 256))]
    pub password: String,
}

/// How many sessions an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionsEnded {
    pub sessions: u32,
}

/// A room as administrators see it (whoever is in it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdminRoom {
    pub id: Uuid,
    /// Empty for 1:1 rooms.
    pub name: String,
    pub is_group: bool,
    pub member_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When an administrator deleted it; absent while it is open.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted_at: Option<OffsetDateTime>,
}

/// `GET /api/v1/admin/rooms`: rooms oldest first, a page at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdminRoomList {
    pub rooms: Vec<AdminRoom>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Uuid>,
}

/// Query of `GET /api/v1/admin/rooms`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase")]
pub struct AdminRoomQuery {
    /// The `next` of the previous page: rooms after this one.
    #[serde(default)]
    pub after: Option<Uuid>,
    /// At most 200; default 50.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<u32>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditLogEntry {
    /// Increases with every entry: `before` pages by it.
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who did it; absent for the server itself, the command line against the data
    /// directory, or a failed login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Uuid>,
    /// What was done, e.g. `admin.user_disable`, `auth.login`, `room.member_remove`.
    pub action: String,
    /// What it was done to (a user, room, message or session id, or a username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /api/v1/admin/audit`: entries newest first, a page at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditLog {
    pub entries: Vec<AuditLogEntry>,
    /// Pass as `before` for the next (older) page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// Query of `GET /api/v1/admin/audit`: every filter given must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase")]
pub struct AuditQuery {
    /// Entries by this user.
    #[serde(default)]
    pub actor: Option<Uuid>,
    /// Entries with this action (exactly, e.g. `auth.login`), at most 64 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 64))]
    pub action: Option<String>,
    /// Entries about this target (exactly), at most 128 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 128))]
    pub target: Option<String>,
    /// Entries at or after this instant (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    pub since: Option<OffsetDateTime>,
    /// Entries before this instant (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    pub until: Option<OffsetDateTime>,
    /// The `next` of the previous page: entries older than this id.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub before: Option<i64>,
    /// At most 500; default 100.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub limit: Option<u32>,
}

/// `POST /api/v1/messages/{messageId}/report`: why a message should be looked at by the
/// server's administrators.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReportRequest {
    /// 1 to 500 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500))]
    pub reason: String,
}

/// Where a report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// Waiting for an administrator.
    Open,
    /// An administrator acted on it.
    Resolved,
    /// An administrator found nothing to do.
    Dismissed,
}

impl ReportStatus {
    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Open => "open",
            ReportStatus::Resolved => "resolved",
            ReportStatus::Dismissed => "dismissed",
        }
    }
}

/// A user's report of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub id: Uuid,
    pub message_id: Uuid,
    pub room_id: Uuid,
    pub reporter_id: Uuid,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub status: ReportStatus,
    /// The administrator who resolved or dismissed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<Uuid>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub closed_at: Option<OffsetDateTime>,
    /// The message as it is now (blank if deleted), for administrators; absent in the
    /// reporter's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<crate::model::Message>,
}

/// `GET /api/v1/admin/reports`: newest first, a page at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReportList {
    pub reports: Vec<Report>,
    /// Pass as `before` for the next (older) page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Uuid>,
}

/// Query of `GET /api/v1/admin/reports`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase")]
pub struct ReportQuery {
    /// Only reports in this state; default all.
    #[serde(default)]
    pub status: Option<ReportStatus>,
    /// The `next` of the previous page: reports older than this one.
    #[serde(default)]
    pub before: Option<Uuid>,
    /// At most 200; default 50.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<u32>,
}

/// `PUT /api/v1/rooms/{roomId}/members/{userId}/mute`: how long the member may not send.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MuteRequest {
    /// 1 second to 30 days.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2592000))]
    #[serde(deserialize_with = "crate::integral::u64")]
    pub duration_secs: u64,
}

/// Someone banned from a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Ban {
    pub user_id: Uuid,
    pub banned_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/v1/rooms/{roomId}/bans`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BanList {
    pub bans: Vec<Ban>,
}
