//! The matrix itself: the callers (columns), the cells, the `REST` and `FRAMES` rows, and
//! `Got`, what one caller got, compared with its cell.

use std::fmt;

use palaver_client::ClientError;
use palaver_proto::{
    ClientFrame, Cursors, MessageType, PresenceStatus, ReceiptKind, SendMessageRequest,
    client_type, close,
};
use serde_json::Value;
use uuid::Uuid;

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Actor {
    Owner,
    Admin,
    Member,
    Stranger,
    Removed,
    Invited,
    Blocked,
    Anonymous,
    Expired,
    Revoked,
}

/// The columns, in table order.
pub(super) const ACTORS: [Actor; 10] = [
    Actor::Owner,
    Actor::Admin,
    Actor::Member,
    Actor::Stranger,
    Actor::Removed,
    Actor::Invited,
    Actor::Blocked,
    Actor::Anonymous,
    Actor::Expired,
    Actor::Revoked,
];

/// What one caller gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cell {
    /// Allowed, with this status; an answer that lists things shows the room.
    Ok(u16),
    /// Allowed, with this status, but the room (or the owner's object) is not in the answer.
    Hidden(u16),
    /// Refused with this status and error code.
    No(u16, &'static str),
    /// A socket that was closed with this code without ever being authenticated.
    Closed(u16),
}

const OK: Cell = Cell::Ok(200);
const NEW: Cell = Cell::Ok(201);
const DONE: Cell = Cell::Ok(204);
/// The WebSocket handshake succeeded.
const UPGRADE: Cell = Cell::Ok(101);
/// A frame answered by `ack`, `pong` or `synced`.
const ACK: Cell = Cell::Ok(200);
const HIDDEN: Cell = Cell::Hidden(200);
const FORBID: Cell = Cell::No(403, "forbidden");
/// One of the two blocked the other.
const BLOCKED: Cell = Cell::No(403, "blocked");
/// The request is not for this caller's state (declining what one has joined).
const CONFLICT: Cell = Cell::No(409, "conflict");
/// The caller named themselves where someone else is needed.
const INVALID: Cell = Cell::No(422, "validation_failed");
const NO_ROOM: Cell = Cell::No(404, "room_not_found");
const NO_MSG: Cell = Cell::No(404, "message_not_found");
const NO_USER: Cell = Cell::No(404, "user_not_found");
const NO_MEDIA: Cell = Cell::No(404, "media_not_found");
const NO_SUB: Cell = Cell::No(404, "subscription_not_found");
const NO_DEVICE: Cell = Cell::No(404, "device_not_found");
/// A welcome that is not there (made up), for the device's own session.
const NO_WELCOME: Cell = Cell::No(404, "not_found");
/// Someone else's push endpoint, registered in a live session.
const TAKEN: Cell = Cell::No(409, "conflict");
const ANON: Cell = Cell::No(401, "unauthorized");
const EXPIRED: Cell = Cell::No(401, "token_expired");
/// A made-up challenge, or a code that is not the authenticator's.
const BAD2FA: Cell = Cell::No(401, "invalid_second_factor");
/// No single sign-on provider of that name.
const NO_IDP: Cell = Cell::No(404, "not_found");
/// A socket opened without a header that never sent `auth`: closed after the timeout.
const UNAUTHENTICATED: Cell = Cell::Closed(close::AUTH_TIMEOUT);
/// Not served on the public listener.
const GONE: Cell = Cell::No(404, "not_found");

/// Which member a `{userId}` in the path names.
#[derive(Clone, Copy, Debug)]
pub(super) enum Target {
    Owner,
    Admin,
    Member,
    /// Someone in no room with anyone: blocking them changes nothing else.
    Nobody,
}

/// How a row's request carries its credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Via {
    /// `Authorization: Bearer`, or nothing for the anonymous caller.
    Header,
    /// The token in `?access_token=` (a garbage one for the anonymous caller), as the
    /// socket and media once accepted; refused now.
    Query,
    /// No token: a signed media link (`Media.url` or `thumbnailUrl`).
    Link(Link),
}

/// Which signed link a `Via::Link` row uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// The one the caller is issued: from the picture's message, fetched with their own
    /// token (callers who cannot fetch it get that refusal).
    Issued,
    /// The owner's link, signed properly but expired an hour ago.
    Expired,
    /// The owner's link to another of their pictures, on this picture's path.
    OtherObject,
    /// The owner's link to the other file of this picture (thumbnail ↔ original).
    OtherFile,
    /// The owner's link with one byte of its signature changed.
    Tampered,
}

/// One REST row.
pub(super) struct Row {
    /// `METHOD /path`, the path as in openapi.json.
    pub(super) op: &'static str,
    pub(super) target: Target,
    /// Each caller gets a fixture of its own: the call changes roles or membership.
    pub(super) fresh: bool,
    pub(super) via: Via,
    /// The request names the owner's object where it would otherwise be the caller's own
    /// new one: `POST /push/subscriptions` with the owner's registered endpoint; or the
    /// owner's room where it would otherwise be all of the caller's: `GET /search` with
    /// `roomId`.
    pub(super) owners: bool,
    pub(super) expect: [Cell; 10],
}

const fn row(op: &'static str, expect: [Cell; 10]) -> Row {
    Row {
        op,
        target: Target::Owner,
        fresh: false,
        via: Via::Header,
        owners: false,
        expect,
    }
}

const fn fresh(op: &'static str, target: Target, expect: [Cell; 10]) -> Row {
    Row {
        op,
        target,
        fresh: true,
        via: Via::Header,
        owners: false,
        expect,
    }
}

/// A row on the shared fixture whose `{userId}` is `target`.
const fn aimed(op: &'static str, target: Target, expect: [Cell; 10]) -> Row {
    Row {
        target,
        ..row(op, expect)
    }
}

const fn by_query(op: &'static str, expect: [Cell; 10]) -> Row {
    Row {
        op,
        target: Target::Owner,
        fresh: false,
        via: Via::Query,
        owners: false,
        expect,
    }
}

const fn linked(op: &'static str, link: Link, expect: [Cell; 10]) -> Row {
    Row {
        op,
        target: Target::Owner,
        fresh: false,
        via: Via::Link(link),
        owners: false,
        expect,
    }
}

const fn owners(op: &'static str, expect: [Cell; 10]) -> Row {
    Row {
        owners: true,
        ..row(op, expect)
    }
}

/// Every caller refused alike: the credential, not the caller, decides.
const NOBODY: [Cell; 10] = [ANON; 10];

// `{userId}` is the owner unless a row says otherwise; `{messageId}` is the owner's message
// and `{mediaId}` the owner's picture, both shared in the room before the removal;
// `{subscriptionId}` is one of the owner's push subscriptions.
#[rustfmt::skip] // one line per row keeps the columns aligned
pub(super) const REST: &[Row] = &[
    //                                                                            owner    admin    member   stranger  removed   invited  blocked  anon  expired  revoked
    // Accounts: open to anyone, or about the caller only.
    row("POST /api/v1/auth/register",                                            [NEW,     NEW,     NEW,     NEW,      NEW,      NEW,     NEW,     NEW,  NEW,     NEW ]),
    row("POST /api/v1/auth/login",                                               [OK,      OK,      OK,      OK,       OK,       OK,      OK,      OK,   OK,      OK  ]),
    row("POST /api/v1/auth/refresh",                                             [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, OK,      ANON]),
    row("POST /api/v1/auth/logout",                                              [DONE,    DONE,    DONE,    DONE,     DONE,     DONE,    DONE,    ANON, EXPIRED, ANON]),
    // Two-factor login: the second step carries its own credential (the challenge: a
    // made-up one here), the rest is about the caller's own authenticator.
    row("POST /api/v1/auth/login/second-factor",                                 [BAD2FA,  BAD2FA,  BAD2FA,  BAD2FA,   BAD2FA,   BAD2FA,  BAD2FA,  BAD2FA, BAD2FA, BAD2FA]),
    row("GET /api/v1/auth/totp",                                                 [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("POST /api/v1/auth/totp/enrol",                                          [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("POST /api/v1/auth/totp/confirm",                                        [BAD2FA,  BAD2FA,  BAD2FA,  BAD2FA,   BAD2FA,   BAD2FA,  BAD2FA,  ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/auth/totp",                                              [DONE,    DONE,    DONE,    DONE,     DONE,     DONE,    DONE,    ANON, EXPIRED, ANON]),
    // Single sign-on: the login screen's choices are public; with no provider configured
    // every provider is unknown (tests/api/sso.rs covers real ones); a made-up one-time
    // code logs nobody in; linking is for the logged-in.
    row("GET /api/v1/auth/methods",                                              [OK,      OK,      OK,      OK,       OK,       OK,      OK,      OK,   OK,      OK  ]),
    row("GET /api/v1/auth/sso/{provider}/start",                                 [NO_IDP,  NO_IDP,  NO_IDP,  NO_IDP,   NO_IDP,   NO_IDP,  NO_IDP,  NO_IDP,NO_IDP,  NO_IDP]),
    row("GET /api/v1/auth/sso/{provider}/callback",                              [NO_IDP,  NO_IDP,  NO_IDP,  NO_IDP,   NO_IDP,   NO_IDP,  NO_IDP,  NO_IDP,NO_IDP,  NO_IDP]),
    row("POST /api/v1/auth/sso/{provider}/link",                                 [NO_IDP,  NO_IDP,  NO_IDP,  NO_IDP,   NO_IDP,   NO_IDP,  NO_IDP,  ANON, EXPIRED, ANON]),
    row("POST /api/v1/auth/sso/exchange",                                        NOBODY),
    row("GET /api/v1/users",                                                     [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("GET /api/v1/users/me",                                                  [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("PATCH /api/v1/users/me",                                                [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    // One's own avatar, from one's own upload.
    row("PUT /api/v1/users/me/avatar",                                           [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/users/me/avatar",                                        [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    // One's own data out, and one's own account deleted (here with a wrong password: the
    // account must live on for the other rows; tests/api/accounts/deletion.rs deletes).
    row("GET /api/v1/users/me/export",                                           [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("POST /api/v1/users/me/delete",                                          [FORBID,  FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    // Blocks are one's own: the owner's block of the blocked member is listed to the owner
    // only. Blocking someone in no room (then lifting it) is anyone's right.
    row("GET /api/v1/users/me/blocks",                                           [OK,      HIDDEN,  HIDDEN,  HIDDEN,   HIDDEN,   HIDDEN,  HIDDEN,  ANON, EXPIRED, ANON]),
    aimed("PUT /api/v1/users/me/blocks/{userId}", Target::Nobody,                [DONE,    DONE,    DONE,    DONE,     DONE,     DONE,    DONE,    ANON, EXPIRED, ANON]),
    aimed("DELETE /api/v1/users/me/blocks/{userId}", Target::Nobody,             [DONE,    DONE,    DONE,    DONE,     DONE,     DONE,    DONE,    ANON, EXPIRED, ANON]),
    row("GET /api/v1/users/{userId}",                                            [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    // Encrypted rooms' directory: a device is its own session's (`{deviceId}` is the
    // owner's, of the owner's session); anyone may list or claim the devices of someone
    // who has not blocked them.
    row("POST /api/v1/mls/devices",                                              [NEW,     NEW,     NEW,     NEW,      NEW,      NEW,     NEW,     ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/mls/devices/{deviceId}",                                 [DONE,    NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,ANON, EXPIRED, ANON]),
    row("POST /api/v1/mls/devices/{deviceId}/key-packages",                      [OK,      NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,ANON, EXPIRED, ANON]),
    row("GET /api/v1/mls/devices/{deviceId}/key-packages",                       [OK,      NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,ANON, EXPIRED, ANON]),
    row("GET /api/v1/mls/devices/{deviceId}/welcomes",                           [OK,      NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/mls/devices/{deviceId}/welcomes/{welcomeId}",            [NO_WELCOME,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,NO_DEVICE,ANON, EXPIRED, ANON]),
    row("POST /api/v1/mls/key-packages/claim",                                   [OK,      OK,      OK,      OK,       OK,       OK,      NO_USER, ANON, EXPIRED, ANON]),
    row("GET /api/v1/users/{userId}/devices",                                    [OK,      OK,      OK,      OK,       OK,       OK,      NO_USER, ANON, EXPIRED, ANON]),
    // Server administration: the owner registered first, so administers the server;
    // nobody else does, whatever their role in the room. Accounts aimed at `nobody`
    // (disabled, then enabled again); a deleted room is a fixture of its own.
    row("GET /api/v1/admin/users",                                               [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("POST /api/v1/admin/users",                                              [NEW,     FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    aimed("GET /api/v1/admin/users/{userId}", Target::Nobody,                    [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    aimed("POST /api/v1/admin/users/{userId}/disable", Target::Nobody,           [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    aimed("POST /api/v1/admin/users/{userId}/enable", Target::Nobody,            [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    aimed("PUT /api/v1/admin/users/{userId}/password", Target::Nobody,           [DONE,    FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    aimed("POST /api/v1/admin/users/{userId}/sessions/revoke", Target::Nobody,   [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    aimed("PUT /api/v1/admin/users/{userId}/admin", Target::Nobody,              [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    aimed("DELETE /api/v1/admin/users/{userId}/admin", Target::Nobody,           [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("GET /api/v1/admin/rooms",                                               [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("DELETE /api/v1/admin/rooms/{roomId}", Target::Owner,                  [DONE,    FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("GET /api/v1/admin/audit",                                               [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("GET /api/v1/admin/reports",                                             [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("POST /api/v1/admin/reports/{reportId}/resolve",                         [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("POST /api/v1/admin/reports/{reportId}/dismiss",                         [OK,      FORBID,  FORBID,  FORBID,   FORBID,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    // Push: one's own subscriptions and settings; another's subscription is not there.
    row("GET /api/v1/push/vapid-public-key",                                     [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("GET /api/v1/push/subscriptions",                                        [OK,      HIDDEN,  HIDDEN,  HIDDEN,   HIDDEN,   HIDDEN,  HIDDEN,  ANON, EXPIRED, ANON]),
    row("POST /api/v1/push/subscriptions",                                       [NEW,     NEW,     NEW,     NEW,      NEW,      NEW,     NEW,     ANON, EXPIRED, ANON]),
    // Knowing someone's endpoint does not make it yours: only its user may register it again.
    owners("POST /api/v1/push/subscriptions",                                    [OK,      TAKEN,   TAKEN,   TAKEN,    TAKEN,    TAKEN,   TAKEN,   ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/push/subscriptions/{subscriptionId}",                    [DONE,    NO_SUB,  NO_SUB,  NO_SUB,   NO_SUB,   NO_SUB,  NO_SUB,  ANON, EXPIRED, ANON]),
    row("GET /api/v1/push/settings",                                             [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("PUT /api/v1/push/settings",                                             [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    // Rooms: a room one is not in does not exist; roles decide the rest.
    row("GET /api/v1/rooms",                                                     [OK,      OK,      OK,      HIDDEN,   HIDDEN,   OK,      OK,      ANON, EXPIRED, ANON]),
    // A 1:1 room with the owner: a request from anyone the owner does not know; refused
    // to the member the owner blocked, and to the owner (it needs someone else).
    owners("POST /api/v1/rooms/create",                                          [INVALID, NEW,     NEW,     NEW,      NEW,      NEW,     BLOCKED, ANON, EXPIRED, ANON]),
    row("POST /api/v1/rooms/create",                                             [NEW,     NEW,     NEW,     NEW,      NEW,      NEW,     NEW,     ANON, EXPIRED, ANON]),
    row("GET /api/v1/rooms/{roomId}",                                            [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  OK,      OK,      ANON, EXPIRED, ANON]),
    row("PATCH /api/v1/rooms/{roomId}",                                          [OK,      OK,      FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    // The group's picture, from the caller's own upload: as renaming.
    row("PUT /api/v1/rooms/{roomId}/picture",                                    [OK,      OK,      FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/rooms/{roomId}/picture",                                 [OK,      OK,      FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("POST /api/v1/rooms/{roomId}/members", Target::Owner,                  [OK,      OK,      FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("PATCH /api/v1/rooms/{roomId}/members/{userId}", Target::Member,       [OK,      FORBID,  FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("DELETE /api/v1/rooms/{roomId}/members/{userId}", Target::Member,      [DONE,    DONE,    DONE,    NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("DELETE /api/v1/rooms/{roomId}/members/{userId}", Target::Admin,       [DONE,    DONE,    FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("DELETE /api/v1/rooms/{roomId}/members/{userId}", Target::Owner,       [DONE,    FORBID,  FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    // Moderation: a group's owner and admins mute and ban those they outrank.
    fresh("PUT /api/v1/rooms/{roomId}/members/{userId}/mute", Target::Member,  [DONE,    DONE,    FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("DELETE /api/v1/rooms/{roomId}/members/{userId}/mute", Target::Member,[DONE,   DONE,    FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("GET /api/v1/rooms/{roomId}/bans",                                       [OK,      OK,      FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("PUT /api/v1/rooms/{roomId}/bans/{userId}", Target::Member,            [DONE,    DONE,    FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("DELETE /api/v1/rooms/{roomId}/bans/{userId}", Target::Member,         [DONE,    DONE,    FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("POST /api/v1/rooms/{roomId}/leave", Target::Owner,                    [DONE,    DONE,    DONE,    NO_ROOM,  NO_ROOM,  DONE,    DONE,    ANON, EXPIRED, ANON]),
    // Accepting is for the invited (joined members get the room as it is); declining too.
    fresh("POST /api/v1/rooms/{roomId}/accept", Target::Owner,                   [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  OK,      OK,      ANON, EXPIRED, ANON]),
    fresh("POST /api/v1/rooms/{roomId}/decline", Target::Owner,                  [CONFLICT,CONFLICT,CONFLICT,NO_ROOM,  NO_ROOM,  DONE,    CONFLICT,ANON, EXPIRED, ANON]),
    row("GET /api/v1/rooms/{roomId}/receipts",                                   [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  FORBID,  OK,      ANON, EXPIRED, ANON]),
    row("POST /api/v1/rooms/{roomId}/receipts",                                  [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  FORBID,  OK,      ANON, EXPIRED, ANON]),
    // What notifies a member is theirs to set, invited or not.
    row("PUT /api/v1/rooms/{roomId}/notifications",                              [DONE,    DONE,    DONE,    NO_ROOM,  NO_ROOM,  DONE,    DONE,    ANON, EXPIRED, ANON]),
    // Pins: members read them; a group's owners and admins pin.
    row("GET /api/v1/rooms/{roomId}/pins",                                       [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  OK,      OK,      ANON, EXPIRED, ANON]),
    row("PUT /api/v1/rooms/{roomId}/pins/{messageId}",                           [OK,      OK,      FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/rooms/{roomId}/pins/{messageId}",                        [OK,      OK,      FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("PUT /api/v1/rooms/{roomId}/mute",                                       [DONE,    DONE,    DONE,    NO_ROOM,  NO_ROOM,  DONE,    DONE,    ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/rooms/{roomId}/mute",                                    [DONE,    DONE,    DONE,    NO_ROOM,  NO_ROOM,  DONE,    DONE,    ANON, EXPIRED, ANON]),
    // Messages: members read and write; only the sender changes a message.
    row("POST /api/v1/messages/send",                                            [NEW,     NEW,     NEW,     NO_ROOM,  NO_ROOM,  FORBID,  NEW,     ANON, EXPIRED, ANON]),
    row("GET /api/v1/messages/history",                                          [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  OK,      OK,      ANON, EXPIRED, ANON]),
    row("GET /api/v1/messages/{messageId}",                                      [OK,      OK,      OK,      NO_MSG,   NO_MSG,   OK,      OK,      ANON, EXPIRED, ANON]),
    row("PATCH /api/v1/messages/{messageId}",                                    [OK,      FORBID,  FORBID,  NO_MSG,   NO_MSG,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    // Moderation: a group's owner and admins delete anyone's message there.
    row("DELETE /api/v1/messages/{messageId}",                                   [OK,      OK,      FORBID,  NO_MSG,   NO_MSG,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    // Anyone who reads a message reports it, once while the report is open.
    row("POST /api/v1/messages/{messageId}/report",                              [NEW,     NEW,     NEW,     NO_MSG,   NO_MSG,   NEW,     NEW,     ANON, EXPIRED, ANON]),
    // Reactions, threads and forwards: joined members react and forward (the owner's
    // message, here into the same room); anyone who reads the room reads its threads.
    row("PUT /api/v1/messages/{messageId}/reactions/{emoji}",                    [OK,      OK,      OK,      NO_MSG,   NO_MSG,   FORBID,  OK,      ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/messages/{messageId}/reactions/{emoji}",                 [OK,      OK,      OK,      NO_MSG,   NO_MSG,   FORBID,  OK,      ANON, EXPIRED, ANON]),
    row("GET /api/v1/messages/{messageId}/thread",                               [OK,      OK,      OK,      NO_MSG,   NO_MSG,   OK,      OK,      ANON, EXPIRED, ANON]),
    row("POST /api/v1/messages/{messageId}/forward",                             [NEW,     NEW,     NEW,     NO_MSG,   NO_MSG,   FORBID,  NEW,     ANON, EXPIRED, ANON]),
    row("POST /api/v1/chat/{conversationId}",                                    [NEW,     NEW,     NEW,     NO_ROOM,  NO_ROOM,  FORBID,  NEW,     ANON, EXPIRED, ANON]),
    row("GET /api/v1/chat/{conversationId}",                                     [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  OK,      OK,      ANON, EXPIRED, ANON]),
    // Search (a word the owner just said in the room): members in any state find it; a
    // stranger and a removed member find nothing of the room, and naming it (`roomId`, the
    // owner's row) is answered as history answers it.
    row("GET /api/v1/search",                                                    [OK,      OK,      OK,      HIDDEN,   HIDDEN,   OK,      OK,      ANON, EXPIRED, ANON]),
    owners("GET /api/v1/search",                                                 [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  OK,      OK,      ANON, EXPIRED, ANON]),
    // Presence (the owner's): only for oneself and people who share a room.
    row("GET /api/v1/presence/{userId}",                                         [OK,      OK,      OK,      NO_USER,  NO_USER,  NO_USER, NO_USER, ANON, EXPIRED, ANON]),
    row("GET /api/v1/chat/status/{userId}",                                      [OK,      OK,      OK,      NO_USER,  NO_USER,  NO_USER, NO_USER, ANON, EXPIRED, ANON]),
    row("GET /api/v1/lastseen/{userId}",                                         [OK,      OK,      OK,      NO_USER,  NO_USER,  NO_USER, NO_USER, ANON, EXPIRED, ANON]),
    // Media (the owner's picture): the uploader and members of rooms where it was shared;
    // a signed link opens its one file until it expires, and is issued only to them.
    row("POST /api/v1/media/upload",                                             [NEW,     NEW,     NEW,     NEW,      NEW,      NEW,     NEW,     ANON, EXPIRED, ANON]),
    row("GET /api/v1/media/usage",                                               [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("GET /api/v1/media/{mediaId}",                                           [OK,      OK,      OK,      NO_MEDIA, NO_MEDIA, OK,      OK,      ANON, EXPIRED, ANON]),
    linked("GET /api/v1/media/{mediaId}", Link::Issued,                          [OK,      OK,      OK,      NO_MSG,   NO_MSG,   OK,      OK,      ANON, EXPIRED, ANON]),
    linked("GET /api/v1/media/{mediaId}", Link::Expired,                         NOBODY),
    linked("GET /api/v1/media/{mediaId}", Link::OtherObject,                     NOBODY),
    linked("GET /api/v1/media/{mediaId}", Link::OtherFile,                       NOBODY),
    linked("GET /api/v1/media/{mediaId}", Link::Tampered,                        NOBODY),
    by_query("GET /api/v1/media/{mediaId}",                                      NOBODY),
    row("GET /api/v1/media/{mediaId}/thumbnail",                                 [OK,      OK,      OK,      NO_MEDIA, NO_MEDIA, OK,      OK,      ANON, EXPIRED, ANON]),
    linked("GET /api/v1/media/{mediaId}/thumbnail", Link::Issued,                [OK,      OK,      OK,      NO_MSG,   NO_MSG,   OK,      OK,      ANON, EXPIRED, ANON]),
    linked("GET /api/v1/media/{mediaId}/thumbnail", Link::Expired,               NOBODY),
    linked("GET /api/v1/media/{mediaId}/thumbnail", Link::OtherObject,           NOBODY),
    linked("GET /api/v1/media/{mediaId}/thumbnail", Link::OtherFile,             NOBODY),
    linked("GET /api/v1/media/{mediaId}/thumbnail", Link::Tampered,              NOBODY),
    by_query("GET /api/v1/media/{mediaId}/thumbnail",                            NOBODY),
    // The socket: any valid session may open one (with the header here; with the `auth`
    // frame in FRAMES); what it may do is in FRAMES. Without a header it opens, but is
    // closed unless it authenticates; a token in the URL is refused.
    row("GET /api/v1/ws",                                                        [UPGRADE, UPGRADE, UPGRADE, UPGRADE,  UPGRADE,  UPGRADE, UPGRADE, UNAUTHENTICATED,EXPIRED, ANON]),
    by_query("GET /api/v1/ws",                                                   NOBODY),
    // Operations and the web client: public.
    row("GET /api/v1/openapi.json",                                              [OK,      OK,      OK,      OK,       OK,       OK,      OK,      OK,   OK,      OK  ]),
    row("GET /healthz",                                                          [OK,      OK,      OK,      OK,       OK,       OK,      OK,      OK,   OK,      OK  ]),
    row("GET /readyz",                                                           [OK,      OK,      OK,      OK,       OK,       OK,      OK,      OK,   OK,      OK  ]),
    // Metrics are served on their own listener (metrics_listen), to nobody here.
    row("GET /metrics",                                                          [GONE,    GONE,    GONE,    GONE,     GONE,     GONE,    GONE,    GONE, GONE,    GONE]),
    row("GET /",                                                                 [OK,      OK,      OK,      OK,       OK,       OK,      OK,      OK,   OK,      OK  ]),
];

/// One client-frame row: the frame's wire `type` and the answers.
pub(super) struct FrameRow {
    pub(super) kind: &'static str,
    pub(super) expect: [Cell; 10],
}

const fn frame(kind: &'static str, expect: [Cell; 10]) -> FrameRow {
    FrameRow { kind, expect }
}

// The callers without a valid token never get a socket: their cell is the handshake's
// answer (the anonymous caller, whose handshake has no header, sends the row's frame as its
// first, which is refused). The `auth` row opens a socket without a header and sends the
// caller's token (an empty one for the anonymous caller) as the first frame.
#[rustfmt::skip] // one line per row keeps the columns aligned
pub(super) const FRAMES: &[FrameRow] = &[
    //                            owner  admin   member  stranger  removed   invited blocked anon  expired  revoked
    frame(client_type::AUTH,     [ACK,  ACK,    ACK,    ACK,      ACK,      ACK,    ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::SEND,     [ACK,  ACK,    ACK,    NO_ROOM,  NO_ROOM,  FORBID, ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::EDIT,     [ACK,  FORBID, FORBID, NO_MSG,   NO_MSG,   FORBID, FORBID, ANON, EXPIRED, ANON]),
    frame(client_type::DELETE,   [ACK,  ACK,    FORBID, NO_MSG,   NO_MSG,   FORBID, FORBID, ANON, EXPIRED, ANON]),
    frame(client_type::RECEIPT,  [ACK,  ACK,    ACK,    NO_ROOM,  NO_ROOM,  FORBID, ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::TYPING,   [ACK,  ACK,    ACK,    NO_ROOM,  NO_ROOM,  FORBID, ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::PRESENCE, [ACK,  ACK,    ACK,    ACK,      ACK,      ACK,    ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::SYNC,     [ACK,  ACK,    ACK,    HIDDEN,   HIDDEN,   ACK,    ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::PING,     [ACK,  ACK,    ACK,    ACK,      ACK,      ACK,    ACK,    ANON, EXPIRED, ANON]),
];

/// The frame a row sends: `message` is the owner's.
pub(super) fn frame_for(kind: &str, room: Uuid, message: Uuid) -> ClientFrame {
    match kind {
        "send" => ClientFrame::Send {
            message: SendMessageRequest {
                room_id: room,
                client_msg_id: Uuid::now_v7().to_string(),
                content: "over the socket".into(),
                kind: MessageType::Text,
                media_id: None,
                ..Default::default()
            },
        },
        "edit" => ClientFrame::Edit {
            message_id: message,
            content: "edited over the socket".into(),
            no_preview: false,
        },
        "delete" => ClientFrame::Delete {
            message_id: message,
        },
        "receipt" => ClientFrame::Receipt {
            room_id: room,
            seq: 1_000_000,
            status: ReceiptKind::Delivered,
        },
        "typing" => ClientFrame::Typing {
            room_id: room,
            active: true,
        },
        "presence" => ClientFrame::Presence {
            status: PresenceStatus::Away,
        },
        "sync" => ClientFrame::Sync {
            cursors: Cursors::from([(room, 0)]),
            changes: Default::default(),
        },
        "ping" => ClientFrame::Ping,
        // Built where the caller's token is known (`auth_cell`).
        other => panic!("no frame is built for the row {other:?}"),
    }
}

/// The wire `type` of a client frame. No wildcard on purpose: a new frame type does not
/// compile until it is named here, and `every_route_and_frame_has_a_row` then wants a row.
pub(super) fn frame_type(frame: &ClientFrame) -> &'static str {
    match frame {
        ClientFrame::Auth { .. } => "auth",
        ClientFrame::Send { .. } => "send",
        ClientFrame::Edit { .. } => "edit",
        ClientFrame::Delete { .. } => "delete",
        ClientFrame::Receipt { .. } => "receipt",
        ClientFrame::Typing { .. } => "typing",
        ClientFrame::Presence { .. } => "presence",
        ClientFrame::Sync { .. } => "sync",
        ClientFrame::Ping => "ping",
    }
}

/// One caller's answer.
pub(super) struct Got {
    pub(super) status: u16,
    pub(super) code: Option<String>,
    /// Whether the room (or the owner's object) is in the answer, for rows that list.
    pub(super) sees: Option<bool>,
    /// A socket closed with this code before it was authenticated.
    pub(super) closed: Option<u16>,
    pub(super) body: String,
}

impl Got {
    pub(super) fn status(status: u16) -> Got {
        Got {
            status,
            code: None,
            sees: None,
            closed: None,
            body: String::new(),
        }
    }

    pub(super) fn refused(err: ClientError) -> Got {
        match err {
            ClientError::Api {
                status,
                code,
                message,
            } => Got {
                status,
                code: Some(code.as_str().to_owned()),
                sees: None,
                closed: None,
                body: message,
            },
            ClientError::Closed(Some((code, reason))) => Got {
                closed: Some(code),
                body: reason,
                ..Got::status(0)
            },
            other => panic!("expected an answer in the error shape, got {other}"),
        }
    }
}

impl Cell {
    pub(super) fn accepts(self, got: &Got) -> bool {
        match self {
            Cell::Ok(status) => got.status == status && got.sees != Some(false),
            Cell::Hidden(status) => got.status == status && got.sees == Some(false),
            Cell::No(status, code) => got.status == status && got.code.as_deref() == Some(code),
            Cell::Closed(code) => got.closed == Some(code),
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Ok(s) => write!(f, "{s}"),
            Cell::Hidden(s) => write!(f, "{s} without the room"),
            Cell::No(s, code) => write!(f, "{s} {code}"),
            Cell::Closed(code) => write!(f, "closed {code} without authenticating"),
        }
    }
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.closed {
            return write!(f, "closed {code} ({})", self.body);
        }
        write!(f, "{}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        match self.sees {
            Some(true) => write!(f, " with the room")?,
            Some(false) => write!(f, " without the room")?,
            None => {}
        }
        // JSON answers are shown (cut short); media bytes only by their length.
        if serde_json::from_str::<Value>(&self.body).is_ok() || self.body.is_empty() {
            let body: String = self.body.chars().take(200).collect();
            write!(f, " ({body})")
        } else {
            write!(f, " ({} bytes)", self.body.len())
        }
    }
}
