//! The one error shape: `{"error": {"code": "room_not_found", "message": "…"}}` over HTTP,
//! and an `error` frame carrying the same code on the socket.

use serde::{Deserialize, Serialize};

/// Machine-readable error codes. Clients branch on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body or frame is not valid JSON or lacks required fields.
    BadRequest,
    /// A field has a value outside its rules (length, characters, range).
    ValidationFailed,
    /// The body, frame or field is larger than allowed.
    PayloadTooLarge,
    /// No credentials, or credentials that are not valid.
    Unauthorized,
    /// The access token has expired; refresh it.
    TokenExpired,
    /// Wrong username or password.
    InvalidCredentials,
    /// Authenticated, but not allowed to do this (e.g. not an admin of the room).
    Forbidden,
    /// The WebSocket handshake came from an Origin that is not allowed.
    OriginForbidden,
    /// The user does not exist, or is not visible to the caller.
    UserNotFound,
    /// The room does not exist, or the caller is not a member.
    RoomNotFound,
    /// The message does not exist, or is not visible to the caller.
    MessageNotFound,
    /// The media object does not exist, or is not visible to the caller.
    MediaNotFound,
    /// The username is already taken.
    UsernameTaken,
    /// The request conflicts with the current state.
    Conflict,
    /// Too many requests; slow down and retry after a while.
    RateLimited,
    /// The message could not be stored or delivered; retry with the same clientMsgId.
    MessageDeliveryFailed,
    /// The upload failed; the client may retry.
    MediaUploadFailed,
    /// The socket frame has a `type` the server does not know.
    UnknownFrame,
    /// No such route.
    NotFound,
    /// The server is starting or stopping.
    Unavailable,
    /// Something went wrong on the server; details are in its logs, not here.
    Internal,
    /// The push subscription does not exist, or belongs to someone else.
    SubscriptionNotFound,
    /// The request body stopped arriving for longer than the server waits.
    RequestTimeout,
    /// The upload would take the caller's stored media past their quota (413); waiting
    /// does not help, deleting does (see `GET /api/v1/media/usage`).
    QuotaExceeded,
    /// The server is short of disk space and stores no uploads for now (507); retry after
    /// `Retry-After` (`retryAfterMs`).
    InsufficientStorage,
    /// One of the two people blocked the other: no 1:1 room, invitation or message
    /// between them (403). It tells the caller of the block, as every chat product does.
    Blocked,
    /// The 1:1 room's other person left; open the 1:1 room with them again to send a new
    /// request (409).
    DirectClosed,
    /// A reply or thread reply names a message of another room.
    CrossRoom,
    /// A thread reply names a message that is itself a thread reply.
    NestedThread,
    /// A reaction that is not one emoji.
    InvalidEmoji,
    /// A message carries as many distinct reactions, or a room as many pins, as allowed.
    LimitReached,
    /// The request is for groups, and the room is a 1:1 room (403): a 1:1 room has no
    /// picture of its own, it shows the other person's avatar.
    NotAGroup,
    /// The account was disabled by an administrator: no login, no session (403).
    AccountDisabled,
    /// A room owner or admin muted the caller in this room until `retryAfterMs` (403).
    Muted,
    /// The user is banned from the room: nobody can add them back until unbanned (403).
    Banned,
    /// The report does not exist.
    ReportNotFound,
    /// The second step of a login failed: a wrong, used or expired code, or an expired
    /// challenge (401).
    InvalidSecondFactor,
    /// The caller must turn on two-factor login before this (an administrator, when
    /// `auth.require_second_factor_for_admins` is on) (403).
    SecondFactorRequired,
    /// Login and registration with a password are turned off on this server; use single
    /// sign-on (403).
    PasswordLoginDisabled,
    /// The room is end-to-end encrypted, and this needs the plaintext: a message that is
    /// not MLS, an edit, a link preview (422).
    EncryptedRoom,
    /// MLS data for a room that is not end-to-end encrypted (422).
    NotEncrypted,
    /// Bytes that are not an MLS structure of the kind expected, or not for this room or
    /// device: a malformed message, a key package with the wrong key or ciphersuite (422).
    InvalidMls,
    /// A commit or proposal not made in the group's current epoch: another commit came
    /// first. Process the room's newer messages, then retry on the new epoch (409).
    WrongEpoch,
    /// The device does not exist, was revoked, or is not the caller's (404).
    DeviceNotFound,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadRequest | UnknownFrame => 400,
            ValidationFailed => 422,
            PayloadTooLarge => 413,
            Unauthorized | TokenExpired | InvalidCredentials | InvalidSecondFactor => 401,
            Forbidden
            | OriginForbidden
            | Blocked
            | NotAGroup
            | AccountDisabled
            | Muted
            | Banned
            | SecondFactorRequired
            | PasswordLoginDisabled => 403,
            UserNotFound | RoomNotFound | MessageNotFound | MediaNotFound | NotFound
            | SubscriptionNotFound | ReportNotFound | DeviceNotFound => 404,
            UsernameTaken | Conflict | DirectClosed | LimitReached | WrongEpoch => 409,
            CrossRoom | NestedThread | InvalidEmoji | EncryptedRoom | NotEncrypted | InvalidMls => {
                422
            }
            QuotaExceeded => 413,
            InsufficientStorage => 507,
            RateLimited => 429,
            RequestTimeout => 408,
            MessageDeliveryFailed | Unavailable => 503,
            MediaUploadFailed | Internal => 500,
        }
    }

    /// The snake_case name, as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "bad_request",
            ValidationFailed => "validation_failed",
            PayloadTooLarge => "payload_too_large",
            Unauthorized => "unauthorized",
            TokenExpired => "token_expired",
            InvalidCredentials => "invalid_credentials",
            Forbidden => "forbidden",
            OriginForbidden => "origin_forbidden",
            UserNotFound => "user_not_found",
            RoomNotFound => "room_not_found",
            MessageNotFound => "message_not_found",
            MediaNotFound => "media_not_found",
            UsernameTaken => "username_taken",
            Conflict => "conflict",
            RateLimited => "rate_limited",
            MessageDeliveryFailed => "message_delivery_failed",
            MediaUploadFailed => "media_upload_failed",
            UnknownFrame => "unknown_frame",
            NotFound => "not_found",
            Unavailable => "unavailable",
            Internal => "internal",
            SubscriptionNotFound => "subscription_not_found",
            RequestTimeout => "request_timeout",
            QuotaExceeded => "quota_exceeded",
            InsufficientStorage => "insufficient_storage",
            Blocked => "blocked",
            DirectClosed => "direct_closed",
            CrossRoom => "cross_room",
            NestedThread => "nested_thread",
            InvalidEmoji => "invalid_emoji",
            LimitReached => "limit_reached",
            NotAGroup => "not_a_group",
            AccountDisabled => "account_disabled",
            Muted => "muted",
            Banned => "banned",
            ReportNotFound => "report_not_found",
            InvalidSecondFactor => "invalid_second_factor",
            SecondFactorRequired => "second_factor_required",
            PasswordLoginDisabled => "password_login_disabled",
            EncryptedRoom => "encrypted_room",
            NotEncrypted => "not_encrypted",
            InvalidMls => "invalid_mls",
            WrongEpoch => "wrong_epoch",
            DeviceNotFound => "device_not_found",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every HTTP error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// For `rate_limited`: milliseconds to wait before retrying (the `Retry-After` header
    /// says the same in whole seconds, rounded up).
    #[serde(
        default,
        rename = "retryAfterMs",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [
            ErrorCode::RoomNotFound,
            ErrorCode::MessageDeliveryFailed,
            ErrorCode::UnknownFrame,
        ] {
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
