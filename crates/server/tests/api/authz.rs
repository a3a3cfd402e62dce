//! The authorisation matrix: every REST route and every client socket frame, tried by
//! each kind of caller, every answer checked against one table.
//!
//! The columns are the callers: the group's owner, an admin, a plain member, a stranger
//! (registered, never in the room), a removed member (in the room until the owner removed
//! them), an invited member (the owner added them, a stranger to the owner, and they have
//! not accepted), a blocked member (joined, then blocked by the owner), an anonymous
//! caller (no token), a member whose access token has expired, and a member whose session
//! ended with logout. `REST` has a row per (method, path) of the
//! live OpenAPI document plus the routes it does not list (the WebSocket handshake, the
//! web client); a route has more rows where the target changes the answer (removing the
//! owner, an admin or a member). `FRAMES` has a row per client frame type. A cell is the
//! status and error code the caller gets (for a frame: `ack`, `pong` or `synced` when
//! allowed, else the `error` frame's code), and, for answers that list things, whether the
//! room (or the owner's subscription) is in them. Rows that change who may do what
//! (roles, removals, leaving) give each caller a fixture of its own. Some rows carry the
//! credential another way: the token in the URL (refused for everyone), or a signed
//! media link instead of a token (one the caller was issued, or one that is expired, for
//! another object or file, or tampered with). The `auth` frame row opens a socket without
//! a header and authenticates with its first frame.
//!
//! While the matrix runs, the stranger and the removed member keep sockets open and every
//! frame they get is checked: nothing about the room, nobody's presence. An admin's socket
//! hears every kind of event meanwhile, so their silence means something; a push service
//! on loopback checks the same for notifications. The removed member's frame cells use the
//! socket that was open when they were removed. `every_route_and_frame_has_a_row` fails
//! when a route (in the OpenAPI document or in the router's source) or a frame type has
//! no row. `removal_is_immediate_on_an_open_socket` and `a_removed_member_gets_no_push`
//! follow one removal closely: frames, events, presence, media and notifications.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use palaver_client::{ClientError, Socket};
use palaver_proto::{
    ClientFrame, Cursors, Media, MessageType, PresenceStatus, ReceiptKind, SendMessageRequest,
    ServerFrame, client_type, close, server_type,
};
use palaver_server::service::links::{LinkSigner, MediaFile};
use parking_lot::Mutex;
use rand::RngCore;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;
use web_push_native::p256::SecretKey;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::helpers::*;

// ---------------------------------------------------------------------------------------
// The table

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Actor {
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
const ACTORS: [Actor; 10] = [
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
enum Cell {
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
/// Someone else's push endpoint, registered in a live session.
const TAKEN: Cell = Cell::No(409, "conflict");
const ANON: Cell = Cell::No(401, "unauthorized");
const EXPIRED: Cell = Cell::No(401, "token_expired");
/// A socket opened without a header that never sent `auth`: closed after the timeout.
const UNAUTHENTICATED: Cell = Cell::Closed(close::AUTH_TIMEOUT);
/// Not served on the public listener.
const GONE: Cell = Cell::No(404, "not_found");

/// Which member a `{userId}` in the path names.
#[derive(Clone, Copy, Debug)]
enum Target {
    Owner,
    Admin,
    Member,
    /// Someone in no room with anyone: blocking them changes nothing else.
    Nobody,
}

/// How a row's request carries its credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
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
enum Link {
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
struct Row {
    /// `METHOD /path`, the path as in openapi.json.
    op: &'static str,
    target: Target,
    /// Each caller gets a fixture of its own: the call changes roles or membership.
    fresh: bool,
    via: Via,
    /// The request names the owner's object where it would otherwise be the caller's own
    /// new one: `POST /push/subscriptions` with the owner's registered endpoint.
    owners: bool,
    expect: [Cell; 10],
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
const REST: &[Row] = &[
    //                                                                            owner    admin    member   stranger  removed   invited  blocked  anon  expired  revoked
    // Accounts: open to anyone, or about the caller only.
    row("POST /api/v1/auth/register",                                            [NEW,     NEW,     NEW,     NEW,      NEW,      NEW,     NEW,     NEW,  NEW,     NEW ]),
    row("POST /api/v1/auth/login",                                               [OK,      OK,      OK,      OK,       OK,       OK,      OK,      OK,   OK,      OK  ]),
    row("POST /api/v1/auth/refresh",                                             [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, OK,      ANON]),
    row("POST /api/v1/auth/logout",                                              [DONE,    DONE,    DONE,    DONE,     DONE,     DONE,    DONE,    ANON, EXPIRED, ANON]),
    row("GET /api/v1/users",                                                     [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("GET /api/v1/users/me",                                                  [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    row("PATCH /api/v1/users/me",                                                [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
    // Blocks are one's own: the owner's block of the blocked member is listed to the owner
    // only. Blocking someone in no room (then lifting it) is anyone's right.
    row("GET /api/v1/users/me/blocks",                                           [OK,      HIDDEN,  HIDDEN,  HIDDEN,   HIDDEN,   HIDDEN,  HIDDEN,  ANON, EXPIRED, ANON]),
    aimed("PUT /api/v1/users/me/blocks/{userId}", Target::Nobody,                [DONE,    DONE,    DONE,    DONE,     DONE,     DONE,    DONE,    ANON, EXPIRED, ANON]),
    aimed("DELETE /api/v1/users/me/blocks/{userId}", Target::Nobody,             [DONE,    DONE,    DONE,    DONE,     DONE,     DONE,    DONE,    ANON, EXPIRED, ANON]),
    row("GET /api/v1/users/{userId}",                                            [OK,      OK,      OK,      OK,       OK,       OK,      OK,      ANON, EXPIRED, ANON]),
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
    fresh("POST /api/v1/rooms/{roomId}/members", Target::Owner,                  [OK,      OK,      FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("PATCH /api/v1/rooms/{roomId}/members/{userId}", Target::Member,       [OK,      FORBID,  FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("DELETE /api/v1/rooms/{roomId}/members/{userId}", Target::Member,      [DONE,    DONE,    DONE,    NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("DELETE /api/v1/rooms/{roomId}/members/{userId}", Target::Admin,       [DONE,    DONE,    FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("DELETE /api/v1/rooms/{roomId}/members/{userId}", Target::Owner,       [DONE,    FORBID,  FORBID,  NO_ROOM,  NO_ROOM,  FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    fresh("POST /api/v1/rooms/{roomId}/leave", Target::Owner,                    [DONE,    DONE,    DONE,    NO_ROOM,  NO_ROOM,  DONE,    DONE,    ANON, EXPIRED, ANON]),
    // Accepting is for the invited (joined members get the room as it is); declining too.
    fresh("POST /api/v1/rooms/{roomId}/accept", Target::Owner,                   [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  OK,      OK,      ANON, EXPIRED, ANON]),
    fresh("POST /api/v1/rooms/{roomId}/decline", Target::Owner,                  [CONFLICT,CONFLICT,CONFLICT,NO_ROOM,  NO_ROOM,  DONE,    CONFLICT,ANON, EXPIRED, ANON]),
    row("GET /api/v1/rooms/{roomId}/receipts",                                   [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  FORBID,  OK,      ANON, EXPIRED, ANON]),
    row("POST /api/v1/rooms/{roomId}/receipts",                                  [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  FORBID,  OK,      ANON, EXPIRED, ANON]),
    row("PUT /api/v1/rooms/{roomId}/mute",                                       [DONE,    DONE,    DONE,    NO_ROOM,  NO_ROOM,  DONE,    DONE,    ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/rooms/{roomId}/mute",                                    [DONE,    DONE,    DONE,    NO_ROOM,  NO_ROOM,  DONE,    DONE,    ANON, EXPIRED, ANON]),
    // Messages: members read and write; only the sender changes a message.
    row("POST /api/v1/messages/send",                                            [NEW,     NEW,     NEW,     NO_ROOM,  NO_ROOM,  FORBID,  NEW,     ANON, EXPIRED, ANON]),
    row("GET /api/v1/messages/history",                                          [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  OK,      OK,      ANON, EXPIRED, ANON]),
    row("GET /api/v1/messages/{messageId}",                                      [OK,      OK,      OK,      NO_MSG,   NO_MSG,   OK,      OK,      ANON, EXPIRED, ANON]),
    row("PATCH /api/v1/messages/{messageId}",                                    [OK,      FORBID,  FORBID,  NO_MSG,   NO_MSG,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("DELETE /api/v1/messages/{messageId}",                                   [OK,      FORBID,  FORBID,  NO_MSG,   NO_MSG,   FORBID,  FORBID,  ANON, EXPIRED, ANON]),
    row("POST /api/v1/chat/{conversationId}",                                    [NEW,     NEW,     NEW,     NO_ROOM,  NO_ROOM,  FORBID,  NEW,     ANON, EXPIRED, ANON]),
    row("GET /api/v1/chat/{conversationId}",                                     [OK,      OK,      OK,      NO_ROOM,  NO_ROOM,  OK,      OK,      ANON, EXPIRED, ANON]),
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
struct FrameRow {
    kind: &'static str,
    expect: [Cell; 10],
}

const fn frame(kind: &'static str, expect: [Cell; 10]) -> FrameRow {
    FrameRow { kind, expect }
}

// The callers without a valid token never get a socket: their cell is the handshake's
// answer (the anonymous caller, whose handshake has no header, sends the row's frame as its
// first, which is refused). The `auth` row opens a socket without a header and sends the
// caller's token (an empty one for the anonymous caller) as the first frame.
#[rustfmt::skip] // one line per row keeps the columns aligned
const FRAMES: &[FrameRow] = &[
    //                            owner  admin   member  stranger  removed   invited blocked anon  expired  revoked
    frame(client_type::AUTH,     [ACK,  ACK,    ACK,    ACK,      ACK,      ACK,    ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::SEND,     [ACK,  ACK,    ACK,    NO_ROOM,  NO_ROOM,  FORBID, ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::EDIT,     [ACK,  FORBID, FORBID, NO_MSG,   NO_MSG,   FORBID, FORBID, ANON, EXPIRED, ANON]),
    frame(client_type::DELETE,   [ACK,  FORBID, FORBID, NO_MSG,   NO_MSG,   FORBID, FORBID, ANON, EXPIRED, ANON]),
    frame(client_type::RECEIPT,  [ACK,  ACK,    ACK,    NO_ROOM,  NO_ROOM,  FORBID, ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::TYPING,   [ACK,  ACK,    ACK,    NO_ROOM,  NO_ROOM,  FORBID, ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::PRESENCE, [ACK,  ACK,    ACK,    ACK,      ACK,      ACK,    ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::SYNC,     [ACK,  ACK,    ACK,    HIDDEN,   HIDDEN,   ACK,    ACK,    ANON, EXPIRED, ANON]),
    frame(client_type::PING,     [ACK,  ACK,    ACK,    ACK,      ACK,      ACK,    ACK,    ANON, EXPIRED, ANON]),
];

/// The frame a row sends: `message` is the owner's.
fn frame_for(kind: &str, room: Uuid, message: Uuid) -> ClientFrame {
    match kind {
        "send" => ClientFrame::Send {
            message: SendMessageRequest {
                room_id: room,
                client_msg_id: Uuid::now_v7().to_string(),
                content: "over the socket".into(),
                kind: MessageType::Text,
                media_id: None,
            },
        },
        "edit" => ClientFrame::Edit {
            message_id: message,
            content: "edited over the socket".into(),
        },
        "delete" => ClientFrame::Delete {
            message_id: message,
        },
        "receipt" => ClientFrame::Receipt {
            room_id: room,
            seq: 1,
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
        },
        "ping" => ClientFrame::Ping,
        // Built where the caller's token is known (`auth_cell`).
        other => panic!("no frame is built for the row {other:?}"),
    }
}

/// The wire `type` of a client frame. No wildcard on purpose: a new frame type does not
/// compile until it is named here, and `every_route_and_frame_has_a_row` then wants a row.
fn frame_type(frame: &ClientFrame) -> &'static str {
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

// ---------------------------------------------------------------------------------------
// What came back

/// One caller's answer.
struct Got {
    status: u16,
    code: Option<String>,
    /// Whether the room (or the owner's object) is in the answer, for rows that list.
    sees: Option<bool>,
    /// A socket closed with this code before it was authenticated.
    closed: Option<u16>,
    body: String,
}

impl Got {
    fn status(status: u16) -> Got {
        Got {
            status,
            code: None,
            sees: None,
            closed: None,
            body: String::new(),
        }
    }

    fn refused(err: ClientError) -> Got {
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
    fn accepts(self, got: &Got) -> bool {
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

// ---------------------------------------------------------------------------------------
// The world the matrix runs in

/// At least 32 bytes, as the server requires; known here so an expired token (and an
/// expired media link) can be signed.
const JWT_SECRET: &str = "authorisation-matrix-secret-0123456789";
/// How long a socket without a header has to authenticate: short, so the cells that wait
/// for it do not hold the matrix up.
const AUTH_TIMEOUT_MS: u64 = 300;
/// How long a connected member's devices have to acknowledge a message before a push.
const ACK_DELAY_MS: u64 = 3000;

/// The server, the people, and tokens that no longer work.
struct World {
    app: TestApp,
    http: reqwest::Client,
    owner: TestUser,
    admin: TestUser,
    member: TestUser,
    stranger: TestUser,
    removed: TestUser,
    /// Invited to every fixture room by the owner, who does not know them; never accepts
    /// (but in the rows that test accepting and declining, on a fixture of their own).
    invited: TestUser,
    /// A member of every fixture room whom the owner blocked.
    blocked: TestUser,
    /// Someone to add to rooms; never a caller.
    extra: TestUser,
    /// In no room at all: the one blocked and unblocked by the block rows.
    nobody: TestUser,
    /// 1:1 rooms the callers opened with the owner themselves: what the observers are told
    /// about those is theirs to hear.
    asked: Mutex<Vec<Uuid>>,
    /// The member's access token, signed with the right key but expired.
    expired: String,
    /// The refresh token of that token's session, which is still open.
    expired_refresh: String,
    /// An access token of the member's session that ended with logout, and its refresh token.
    revoked: String,
    revoked_refresh: String,
    push: PushSink,
    /// Every fixture room so far.
    rooms: Mutex<Vec<Uuid>>,
    /// When the removed member was last in a room that had new messages.
    last_fixture: Mutex<Instant>,
    counter: AtomicU64,
    /// Another picture of the owner's, never shared: its links, for `Link::OtherObject`.
    other_picture: Media,
}

/// A group as the matrix needs it: the owner, an admin, a member, and a removed member.
struct Fixture {
    room: Uuid,
    /// The owner's text message, sent before the removal.
    message: Uuid,
    /// The owner's picture, shared in the room before the removal, as uploaded (with the
    /// owner's signed links).
    picture: Media,
    /// The message that shared it.
    picture_message: Uuid,
}

/// What a request carries.
enum Payload {
    Empty,
    Json(Value),
    /// A multipart form with a small PNG as its `file` part.
    Picture,
}

impl World {
    async fn new() -> World {
        let push = PushSink::start().await;
        let app = spawn_app_with(|c| {
            c.jwt_secret = Some(JWT_SECRET.into());
            c.ws_auth_timeout_ms = AUTH_TIMEOUT_MS;
            c.insecure_fast_password_hashing = true;
            c.push.outbound_allow = vec!["127.0.0.1".into()];
            c.push.collapse_ms = 100;
            c.push.ack_delay_ms = ACK_DELAY_MS;
        })
        .await;
        let mut users = app
            .users(&[
                "owner", "admin", "member", "stranger", "removed", "invited", "blocked", "extra",
                "nobody",
            ])
            .await
            .into_iter();
        let mut next = || users.next().expect("user");
        let (owner, admin, member, stranger, removed) = (next(), next(), next(), next(), next());
        let (invited, blocked, extra, nobody) = (next(), next(), next(), next());

        let session = app
            .client()
            .login(&member.name, PASSWORD)
            .await
            .expect("login");
        let expired = expired_token(&member, &session.access_token);
        let ended = app
            .client()
            .login(&member.name, PASSWORD)
            .await
            .expect("login");
        let (status, body) = app
            .client()
            .with_token(&ended.access_token)
            .raw(Method::POST, "/api/v1/auth/logout", None)
            .await
            .expect("logout");
        assert_eq!(status, 204, "{body}");
        let other_picture = owner
            .api
            .upload("other.png", "image/png", png())
            .await
            .expect("upload");

        World {
            http: reqwest::Client::new(),
            owner,
            admin,
            member,
            stranger,
            removed,
            invited,
            blocked,
            extra,
            nobody,
            asked: Mutex::new(Vec::new()),
            expired,
            expired_refresh: session.refresh_token,
            revoked: ended.access_token,
            revoked_refresh: ended.refresh_token,
            push,
            rooms: Mutex::new(Vec::new()),
            last_fixture: Mutex::new(Instant::now()),
            counter: AtomicU64::new(0),
            other_picture,
            app,
        }
    }

    /// The caller's own account, for the seven who have a working token.
    fn user(&self, actor: Actor) -> Option<&TestUser> {
        match actor {
            Actor::Owner => Some(&self.owner),
            Actor::Admin => Some(&self.admin),
            Actor::Member => Some(&self.member),
            Actor::Stranger => Some(&self.stranger),
            Actor::Removed => Some(&self.removed),
            Actor::Invited => Some(&self.invited),
            Actor::Blocked => Some(&self.blocked),
            Actor::Anonymous | Actor::Expired | Actor::Revoked => None,
        }
    }

    /// The token the caller sends, if any.
    fn token(&self, actor: Actor) -> Option<String> {
        match actor {
            Actor::Anonymous => None,
            Actor::Expired => Some(self.expired.clone()),
            Actor::Revoked => Some(self.revoked.clone()),
            other => self.user(other).map(|u| u.auth.access_token.clone()),
        }
    }

    fn unique(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    fn rooms(&self) -> Vec<Uuid> {
        self.rooms.lock().clone()
    }

    /// The ids of everyone a stranger must never hear about.
    fn insiders(&self) -> Vec<String> {
        [
            &self.owner,
            &self.admin,
            &self.member,
            &self.removed,
            &self.invited,
            &self.blocked,
            &self.extra,
        ]
        .iter()
        .map(|u| u.id.to_string())
        .collect()
    }

    /// A request that must succeed with `status`; returns the body.
    async fn expect(
        &self,
        user: &TestUser,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, body) = user
            .api
            .raw(method.clone(), path, body.as_ref())
            .await
            .expect("request");
        assert_eq!(got, status, "{method} {path}: {body}");
        body
    }

    /// A new group: the owner made it with an admin, a member, the blocked member (the
    /// owner lifts the block for that, and blocks again at the end) and the removed member,
    /// who all accepted, and invited the invited member; the owner shared a text and a
    /// picture; then the owner removed the removed member.
    async fn fixture(&self) -> Fixture {
        self.owner
            .api
            .unblock(self.blocked.id)
            .await
            .expect("unblock");
        let room = self
            .owner
            .group(
                "matrix",
                &[&self.admin, &self.member, &self.blocked, &self.removed],
            )
            .await
            .id;
        let invite = format!("/api/v1/rooms/{room}/members");
        let invited = json!({"userIds": [self.invited.id]});
        let answer = self
            .expect(&self.owner, Method::POST, &invite, Some(invited), 200)
            .await;
        assert!(
            answer["members"]
                .as_array()
                .expect("members")
                .iter()
                .any(|m| m["userId"] == json!(self.invited.id) && m["state"] == "invited"),
            "the owner does not know the invited member: {answer}"
        );
        let admin = format!("/api/v1/rooms/{room}/members/{}", self.admin.id);
        let role = json!({"role": "admin"});
        self.expect(&self.owner, Method::PATCH, &admin, Some(role), 200)
            .await;
        let message = self.owner.send(room, "the owner's message").await.id;
        let picture = self
            .owner
            .api
            .upload("picture.png", "image/png", png())
            .await
            .expect("upload");
        let shared = json!({"roomId": room, "clientMsgId": Uuid::now_v7().to_string(),
            "type": "image", "mediaId": picture.id, "content": "a picture"});
        let sent = self
            .expect(
                &self.owner,
                Method::POST,
                "/api/v1/messages/send",
                Some(shared),
                201,
            )
            .await;
        let picture_message = sent["id"].as_str().and_then(|id| id.parse().ok());
        let removed = format!("/api/v1/rooms/{room}/members/{}", self.removed.id);
        self.expect(&self.owner, Method::DELETE, &removed, None, 204)
            .await;
        self.owner.api.block(self.blocked.id).await.expect("block");
        self.rooms.lock().push(room);
        *self.last_fixture.lock() = Instant::now();
        Fixture {
            room,
            message,
            picture,
            picture_message: picture_message.expect("the message's id"),
        }
    }

    /// Subscribes `user` to the push sink under `name`; returns the subscription's id.
    async fn subscribe(&self, user: &TestUser, name: &str) -> Uuid {
        let body = subscription(&self.push.url(name));
        let (status, body) = user
            .api
            .raw(Method::POST, "/api/v1/push/subscriptions", Some(&body))
            .await
            .expect("subscribe");
        assert!(status == 201 || status == 200, "subscribe: {status} {body}");
        body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("subscription id")
    }

    /// Any request, as `(status, body text)`.
    async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        in_query: bool,
        payload: Payload,
    ) -> (u16, String) {
        let mut url = format!("{}{path}", self.app.base);
        if let (Some(token), true) = (token, in_query) {
            let sep = if url.contains('?') { '&' } else { '?' };
            url.push_str(&format!("{sep}access_token={token}"));
        }
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, url);
        if let (Some(token), false) = (token, in_query) {
            req = req.bearer_auth(token);
        }
        req = match payload {
            Payload::Empty => req,
            Payload::Json(body) => req.json(&body),
            Payload::Picture => {
                let part = reqwest::multipart::Part::bytes(png())
                    .file_name("picture.png")
                    .mime_str("image/png")
                    .expect("mime");
                req.multipart(reqwest::multipart::Form::new().part("file", part))
            }
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A signed link to `file` of object `id` that expired an hour ago, signed with the
/// server's key (derived from the secret as the server does).
fn expired_link(id: Uuid, file: MediaFile) -> String {
    let signer = LinkSigner::new(JWT_SECRET.as_bytes(), 60);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    signer.link(id, file, now - 3600)
}

/// `path` with the query (`?exp=…&sig=…`) of `link`.
fn with_query_of(path: &str, link: &str) -> String {
    let query = link.split_once('?').expect("a signed link has a query").1;
    format!("{path}?{query}")
}

/// `link` with one byte of its signature changed.
fn tampered(link: &str) -> String {
    let (head, sig) = link.split_once("&sig=").expect("a signature");
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).expect("base64url");
    bytes[0] ^= 0x01;
    format!("{head}&sig={}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The member's identity, signed with the server's key, expired an hour ago.
fn expired_token(user: &TestUser, live: &str) -> String {
    let payload = live.split('.').nth(1).expect("payload part");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("claims");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = json!({
        "sub": user.id, "sid": claims["sid"], "iat": now - 7200, "exp": now - 3600,
        "aud": "palaver", "iss": "palaver",
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &expired,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

/// A small PNG (so it gets a thumbnail).
fn png() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// `PushSubscription.toJSON()` for `endpoint`, with a real P-256 key.
fn subscription(endpoint: &str) -> Value {
    let secret = loop {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        if let Ok(key) = SecretKey::from_slice(&raw) {
            break key;
        }
    };
    let mut auth = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut auth);
    let public = secret.public_key().to_encoded_point(false);
    json!({
        "endpoint": endpoint,
        "expirationTime": null,
        "keys": {"p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()), "auth": URL_SAFE_NO_PAD.encode(auth)},
    })
}

/// A push service on loopback that accepts everything and remembers who it was for.
struct PushSink {
    base: String,
    hits: Arc<Mutex<Vec<String>>>,
}

impl PushSink {
    async fn start() -> PushSink {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(
                "/push/{name}",
                post(
                    |State(hits): State<Arc<Mutex<Vec<String>>>>,
                     axum::extract::Path(name): axum::extract::Path<String>| async move {
                        hits.lock().push(name);
                        StatusCode::CREATED
                    },
                ),
            )
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the push sink");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PushSink { base, hits }
    }

    fn url(&self, name: &str) -> String {
        format!("{}/push/{name}", self.base)
    }

    /// The endpoint names that received a notification, one per notification.
    fn hits(&self) -> Vec<String> {
        self.hits.lock().clone()
    }
}

// ---------------------------------------------------------------------------------------
// Sockets that watch while the matrix runs

#[derive(Debug, PartialEq, Eq)]
enum Rule {
    /// Hears everything in the rooms (so the others' silence means something).
    Witness,
    /// Never in any fixture room: nothing about them or their people, no presence.
    Stranger,
    /// Removed from every fixture room: nothing about a room after its `room.left`, no
    /// presence (they share no room with anyone whenever presence changes).
    Removed,
}

/// An open socket and what it has been sent.
struct Observer {
    rule: Rule,
    socket: Socket,
    left: HashSet<String>,
    kinds: BTreeSet<String>,
    leaks: Vec<String>,
}

/// The wire `type` of a server frame.
fn kind_of(frame: &ServerFrame) -> String {
    frame.kind().to_owned()
}

impl Observer {
    async fn open(user: &TestUser, rule: Rule) -> Observer {
        let mut socket = user.connect().await;
        // The first frame starts live traffic at once instead of after the sync grace.
        let id = socket.send_frame(ClientFrame::Ping).await.expect("ping");
        socket.answer(&id, WAIT).await.expect("pong");
        Observer {
            rule,
            socket,
            left: HashSet::new(),
            kinds: BTreeSet::new(),
            leaks: Vec::new(),
        }
    }

    fn inspect(
        &mut self,
        frame: &ServerFrame,
        rooms: &[String],
        insiders: &[String],
        asked: &[Uuid],
    ) {
        let text = serde_json::to_string(frame).expect("frame");
        self.kinds.insert(kind_of(frame));
        // The 1:1 room the observer opened with the owner in the row that tests it.
        let room = match frame {
            ServerFrame::RoomUpdated { room } => Some(room.id),
            ServerFrame::RoomLeft { room_id } => Some(*room_id),
            _ => None,
        };
        if room.is_some_and(|id| asked.contains(&id)) {
            return;
        }
        let presence = matches!(frame, ServerFrame::Presence { .. });
        let leak = match self.rule {
            Rule::Witness => false,
            Rule::Stranger => presence || rooms.iter().chain(insiders).any(|id| text.contains(id)),
            Rule::Removed => {
                if let ServerFrame::RoomLeft { room_id } = frame {
                    self.left.insert(room_id.to_string());
                    false
                } else {
                    presence || self.left.iter().any(|id| text.contains(id))
                }
            }
        };
        if leak {
            self.leaks.push(text);
        }
    }

    /// Reads everything that arrives until the socket is quiet for `quiet`.
    async fn drain(
        &mut self,
        rooms: &[String],
        insiders: &[String],
        asked: &[Uuid],
        quiet: Duration,
    ) {
        loop {
            match self.socket.next_within(quiet).await {
                Ok(frame) => self.inspect(&frame, rooms, insiders, asked),
                Err(ClientError::Timeout) => return,
                Err(err) => panic!("the {:?} socket failed: {err}", self.rule),
            }
        }
    }
}

/// The three observers.
struct Watch {
    witness: Observer,
    stranger: Observer,
    removed: Observer,
}

impl Watch {
    async fn open(w: &World) -> Watch {
        Watch {
            witness: Observer::open(&w.admin, Rule::Witness).await,
            stranger: Observer::open(&w.stranger, Rule::Stranger).await,
            removed: Observer::open(&w.removed, Rule::Removed).await,
        }
    }

    async fn drain(&mut self, w: &World, quiet: Duration) {
        let rooms: Vec<String> = w.rooms().iter().map(Uuid::to_string).collect();
        let insiders = w.insiders();
        let asked = w.asked.lock().clone();
        for o in [&mut self.witness, &mut self.stranger, &mut self.removed] {
            o.drain(&rooms, &insiders, &asked, quiet).await;
        }
    }

    /// After the owner's or the member's only socket closed: waits until the witness hears
    /// they are offline, so the announcement cannot land while the next fixture briefly has
    /// the removed member in it (which would be a legitimate delivery).
    async fn settle(&mut self, w: &World, actor: Actor) {
        let user = match actor {
            Actor::Owner => w.owner.id,
            Actor::Member => w.member.id,
            Actor::Blocked => w.blocked.id,
            _ => return,
        };
        self.witness
            .socket
            .wait_for(WAIT, |f| {
                matches!(f, ServerFrame::Presence { user_id, status: PresenceStatus::Offline, .. } if *user_id == user)
            })
            .await
            .unwrap_or_else(|e| panic!("the witness hears that {actor:?} went offline: {e}"));
        self.witness.kinds.insert("presence".into());
    }
}

/// Opens a socket as the caller (with the `Authorization` header), or the handshake's
/// refusal. The anonymous caller's handshake has no header, so the server waits for an
/// `auth` frame: its socket is handed back before any `hello`.
async fn handshake(w: &World, actor: Actor) -> Result<Socket, Got> {
    let client = match w.token(actor) {
        Some(token) => w.app.client().with_token(token),
        None => return w.app.client().connect().await.map_err(Got::refused),
    };
    match client.connect().await {
        Ok(mut socket) => match socket.next_within(WAIT).await.expect("hello") {
            ServerFrame::Hello { .. } => Ok(socket),
            other => panic!("expected hello, got {other:?}"),
        },
        Err(err) => Err(Got::refused(err)),
    }
}

/// The handshake with the token in the URL: the answer's status and code.
async fn handshake_in_query(w: &World, token: &str) -> Got {
    let url = format!("ws://{}/api/v1/ws?access_token={token}", w.app.addr);
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => Got::status(101),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            Got {
                code: json["error"]["code"].as_str().map(str::to_owned),
                body,
                ..Got::status(resp.status().as_u16())
            }
        }
        Err(other) => panic!("handshake: {other}"),
    }
}

/// The signed link a `Via::Link` row fetches for `file`, or the refusal the caller got
/// asking for one.
async fn link_for(
    w: &World,
    fx: &Fixture,
    actor: Actor,
    link: Link,
    file: MediaFile,
) -> Result<String, Got> {
    let pick = |media: &Media, file: MediaFile| match file {
        MediaFile::Original => media.url.clone(),
        MediaFile::Thumbnail => media.thumbnail_url.clone().expect("a thumbnail"),
    };
    let other = match file {
        MediaFile::Original => MediaFile::Thumbnail,
        MediaFile::Thumbnail => MediaFile::Original,
    };
    let path = file.path(fx.picture.id);
    Ok(match link {
        Link::Issued => {
            let path = format!("/api/v1/messages/{}", fx.picture_message);
            let token = w.token(actor);
            let (status, body) = w
                .request("GET", &path, token.as_deref(), false, Payload::Empty)
                .await;
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if status != 200 {
                return Err(Got {
                    code: json["error"]["code"].as_str().map(str::to_owned),
                    body,
                    ..Got::status(status)
                });
            }
            let media: Media = serde_json::from_value(json["media"].clone()).expect("media");
            pick(&media, file)
        }
        Link::Expired => expired_link(fx.picture.id, file),
        Link::OtherObject => with_query_of(&path, &pick(&w.other_picture, file)),
        Link::OtherFile => with_query_of(&path, &pick(&fx.picture, other)),
        Link::Tampered => tampered(&pick(&fx.picture, file)),
    })
}

// ---------------------------------------------------------------------------------------
// Running a cell

async fn rest_cell(w: &World, watch: &mut Watch, fx: &Fixture, row: &Row, actor: Actor) -> Got {
    let (method, template) = row.op.split_once(' ').expect("METHOD /path");
    let me = w.user(actor);
    // Who a caller without a working token says they are, where a body names someone.
    let identity = me.unwrap_or(&w.member);
    let mut token = w.token(actor);
    let mut payload = Payload::Empty;
    let mut query = String::new();
    let mut probe = None;
    let mut message = fx.message;
    let mut subscription_id = Uuid::nil();
    // A token in the URL: any token, so the anonymous caller sends one too.
    let url_token = || w.token(actor).unwrap_or_else(|| "not-a-token".into());
    match (row.op, row.via) {
        ("GET /api/v1/ws", Via::Query) => return handshake_in_query(w, &url_token()).await,
        ("GET /api/v1/ws", _) => {
            return match handshake(w, actor).await {
                Ok(mut socket) if actor == Actor::Anonymous => {
                    // Nothing sent: the server gives up on it after the timeout.
                    match socket.next_within(WAIT).await {
                        Err(err @ ClientError::Closed(Some(_))) => Got::refused(err),
                        other => panic!("expected a close without hello, got {other:?}"),
                    }
                }
                Ok(socket) => {
                    socket.close().await.expect("close");
                    watch.settle(w, actor).await;
                    Got::status(101)
                }
                Err(got) => got,
            };
        }
        (op, Via::Link(link)) => {
            let file = if op.ends_with("/thumbnail") {
                MediaFile::Thumbnail
            } else {
                MediaFile::Original
            };
            let url = match link_for(w, fx, actor, link, file).await {
                Ok(url) => url,
                Err(got) => return got,
            };
            let (status, body) = w.request(method, &url, None, false, Payload::Empty).await;
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            return Got {
                code: json["error"]["code"].as_str().map(str::to_owned),
                body,
                ..Got::status(status)
            };
        }
        (_, Via::Query) => token = Some(url_token()),
        _ => {}
    }
    match row.op {
        "POST /api/v1/auth/register" => {
            payload = Payload::Json(json!({"username": w.unique("new"), "password": PASSWORD}));
        }
        "POST /api/v1/auth/login" => {
            payload = Payload::Json(json!({"username": identity.name, "password": PASSWORD}));
        }
        "POST /api/v1/auth/refresh" => {
            let refresh = match actor {
                Actor::Anonymous => "not-a-refresh-token".to_owned(),
                Actor::Expired => w.expired_refresh.clone(),
                Actor::Revoked => w.revoked_refresh.clone(),
                _ => identity.auth.refresh_token.clone(),
            };
            payload = Payload::Json(json!({ "refreshToken": refresh }));
        }
        "POST /api/v1/auth/logout" => {
            // A session of its own, so the caller's main one lives on.
            if let Some(user) = me {
                let session = w
                    .app
                    .client()
                    .login(&user.name, PASSWORD)
                    .await
                    .expect("login");
                token = Some(session.access_token);
            }
        }
        "GET /api/v1/users" => query = "?q=o".into(),
        "PATCH /api/v1/users/me" => {
            let same = identity.auth.user.display_name.clone();
            payload = Payload::Json(json!({ "displayName": same }));
        }
        "GET /api/v1/push/subscriptions" => {
            w.subscribe(&w.owner, "owner-listed").await;
            probe = Some(w.push.url("owner-listed"));
        }
        "POST /api/v1/push/subscriptions" if row.owners => {
            w.subscribe(&w.owner, "owner-taken").await;
            payload = Payload::Json(subscription(&w.push.url("owner-taken")));
        }
        "POST /api/v1/push/subscriptions" => {
            let name = w.unique(&format!("{actor:?}").to_lowercase());
            payload = Payload::Json(subscription(&w.push.url(&name)));
        }
        "DELETE /api/v1/push/subscriptions/{subscriptionId}" => {
            subscription_id = w.subscribe(&w.owner, &w.unique("owner")).await;
        }
        "PUT /api/v1/push/settings" => payload = Payload::Json(json!({"preview": "sender"})),
        "GET /api/v1/rooms" => probe = Some(fx.room.to_string()),
        "GET /api/v1/users/me/blocks" => probe = Some(w.blocked.id.to_string()),
        "POST /api/v1/rooms/create" if row.owners => {
            payload = Payload::Json(json!({"isGroup": false, "memberIds": [w.owner.id]}));
        }
        "POST /api/v1/rooms/create" => {
            // A group of one: a room with others would make the stranger their peer.
            payload = Payload::Json(json!({"name": "solo", "isGroup": true, "memberIds": []}));
        }
        "PATCH /api/v1/rooms/{roomId}" => {
            payload = Payload::Json(json!({ "name": format!("renamed by {actor:?}") }));
        }
        "POST /api/v1/rooms/{roomId}/members" => {
            payload = Payload::Json(json!({ "userIds": [w.extra.id] }));
        }
        "PATCH /api/v1/rooms/{roomId}/members/{userId}" => {
            payload = Payload::Json(json!({"role": "admin"}));
        }
        "POST /api/v1/rooms/{roomId}/receipts" => {
            payload = Payload::Json(json!({"seq": 1, "status": "read"}));
        }
        "POST /api/v1/messages/send" => {
            payload = Payload::Json(json!({"roomId": fx.room,
                "clientMsgId": Uuid::now_v7().to_string(), "content": "over REST"}));
        }
        "GET /api/v1/messages/history" => query = format!("?roomId={}", fx.room),
        "PATCH /api/v1/messages/{messageId}" => {
            payload = Payload::Json(json!({"content": "edited over REST"}));
        }
        "DELETE /api/v1/messages/{messageId}" => {
            message = w.owner.send(fx.room, "to delete over REST").await.id;
        }
        "POST /api/v1/chat/{conversationId}" => {
            payload = Payload::Json(
                json!({"clientMsgId": Uuid::now_v7().to_string(), "content": "over the alias"}),
            );
        }
        "POST /api/v1/media/upload" => payload = Payload::Picture,
        _ => {}
    }
    let target = match row.target {
        Target::Owner => w.owner.id,
        Target::Admin => w.admin.id,
        Target::Member => w.member.id,
        Target::Nobody => w.nobody.id,
    };
    let path = template
        .replace("{roomId}", &fx.room.to_string())
        .replace("{conversationId}", &fx.room.to_string())
        .replace("{messageId}", &message.to_string())
        .replace("{mediaId}", &fx.picture.id.to_string())
        .replace("{userId}", &target.to_string())
        .replace("{subscriptionId}", &subscription_id.to_string())
        + &query;
    let (status, body) = w
        .request(
            method,
            &path,
            token.as_deref(),
            row.via == Via::Query,
            payload,
        )
        .await;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    // The invited member who accepted a fixture of their own leaves it again: knowing the
    // owner from a shared room would make them joined, not invited, in later fixtures.
    if row.op == "POST /api/v1/rooms/{roomId}/accept" && actor == Actor::Invited && status == 200 {
        let leave = format!("/api/v1/rooms/{}/leave", fx.room);
        w.expect(&w.invited, Method::POST, &leave, None, 204).await;
    }
    if row.owners
        && row.op == "POST /api/v1/rooms/create"
        && let Some(id) = json["id"].as_str().and_then(|id| id.parse().ok())
    {
        w.asked.lock().push(id);
    }
    Got {
        code: json["error"]["code"].as_str().map(str::to_owned),
        sees: probe.map(|p| body.contains(&p)),
        body,
        ..Got::status(status)
    }
}

/// Sends a frame and reads its answer.
async fn exchange(socket: &mut Socket, frame: ClientFrame, room: Uuid) -> Got {
    let id = socket.send_frame(frame).await.expect("send frame");
    match socket.answer(&id, WAIT).await {
        Ok(ServerFrame::Synced { rooms, .. }) => Got {
            sees: Some(rooms.contains_key(&room)),
            ..Got::status(200)
        },
        Ok(_) => Got::status(200),
        Err(err) => Got::refused(err),
    }
}

/// Opens a socket without a header and authenticates with an `auth` frame carrying the
/// caller's token (an empty one for the anonymous caller): `hello`, or the refusal.
async fn auth_cell(w: &World, watch: &mut Watch, actor: Actor) -> Got {
    let token = w.token(actor).unwrap_or_default();
    let frame = ClientFrame::Auth {
        token: token.clone(),
    };
    assert_eq!(frame_type(&frame), "auth");
    let mut socket = w
        .app
        .client()
        .connect()
        .await
        .expect("a handshake without a header opens");
    let id = socket.send_frame(frame).await.expect("auth frame");
    match socket.next_within(WAIT).await {
        Ok(ServerFrame::Hello { .. }) => {
            socket.close().await.expect("close");
            watch.settle(w, actor).await;
            Got::status(200)
        }
        Ok(ServerFrame::Error {
            id: Some(i),
            code,
            message,
            ..
        }) if i == id => {
            // The refusal is followed by close 4003.
            match socket.next_within(WAIT).await {
                Err(ClientError::Closed(Some((close::AUTH_FAILED, _)))) => {}
                other => panic!("expected close 4003 after the refusal, got {other:?}"),
            }
            Got::refused(ClientError::Api {
                status: code.http_status(),
                code,
                message,
            })
        }
        other => panic!("expected hello or an error, got {other:?}"),
    }
}

async fn frame_cell(
    w: &World,
    watch: &mut Watch,
    fx: &Fixture,
    row: &FrameRow,
    actor: Actor,
) -> Got {
    if row.kind == client_type::AUTH {
        return auth_cell(w, watch, actor).await;
    }
    let message = if row.kind == client_type::DELETE {
        w.owner.send(fx.room, "to delete over the socket").await.id
    } else {
        fx.message
    };
    let frame = frame_for(row.kind, fx.room, message);
    assert_eq!(frame_type(&frame), row.kind, "the row sends its own frame");
    match actor {
        // The sockets that were open before the removal (and before the stranger was
        // anywhere near the room).
        Actor::Stranger => exchange(&mut watch.stranger.socket, frame, fx.room).await,
        Actor::Removed => exchange(&mut watch.removed.socket, frame, fx.room).await,
        _ => match handshake(w, actor).await {
            // Refused as a first frame that is not `auth`: the server has closed (4003).
            Ok(mut socket) if actor == Actor::Anonymous => {
                exchange(&mut socket, frame, fx.room).await
            }
            Ok(mut socket) => {
                let got = exchange(&mut socket, frame, fx.room).await;
                socket.close().await.expect("close");
                watch.settle(w, actor).await;
                got
            }
            Err(got) => got,
        },
    }
}

// ---------------------------------------------------------------------------------------
// The tests

#[tokio::test]
async fn every_caller_gets_what_the_matrix_says() {
    let w = World::new().await;
    let mut watch = Watch::open(&w).await;
    let shared = w.fixture().await;
    let mut wrong = Vec::new();
    let mut cells = 0;

    for row in REST {
        for (actor, cell) in ACTORS.iter().zip(row.expect) {
            let own;
            let fx = if row.fresh {
                own = w.fixture().await;
                &own
            } else {
                &shared
            };
            let got = rest_cell(&w, &mut watch, fx, row, *actor).await;
            cells += 1;
            if !cell.accepts(&got) {
                let target = match row.via {
                    _ if row.op.contains("{userId}") => {
                        format!(" [{{userId}} = {:?}]", row.target)
                    }
                    Via::Query => " [?access_token=]".to_owned(),
                    Via::Link(link) => format!(" [signed link: {link:?}]"),
                    Via::Header if row.owners => " [the owner's]".to_owned(),
                    Via::Header => String::new(),
                };
                wrong.push(format!(
                    "{}{target} as {actor:?}: expected {cell}, got {got}",
                    row.op
                ));
            }
        }
        watch.drain(&w, Duration::from_millis(20)).await;
    }
    for row in FRAMES {
        for (actor, cell) in ACTORS.iter().zip(row.expect) {
            let got = frame_cell(&w, &mut watch, &shared, row, *actor).await;
            cells += 1;
            if !cell.accepts(&got) {
                wrong.push(format!(
                    "frame {} as {actor:?}: expected {cell}, got {got}",
                    row.kind
                ));
            }
        }
        watch.drain(&w, Duration::from_millis(20)).await;
    }
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells differ from the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Notifications that were pending for the removed member fall due after the ack delay.
    let since = w.last_fixture.lock().elapsed();
    let due = Duration::from_millis(ACK_DELAY_MS + 1000);
    tokio::time::sleep(due.saturating_sub(since)).await;
    watch.drain(&w, QUIET).await;

    // The events happened (the admin heard every kind)...
    for kind in [
        server_type::MESSAGE,
        server_type::MESSAGE_UPDATED,
        server_type::MESSAGE_DELETED,
        server_type::RECEIPT,
        server_type::TYPING,
        server_type::PRESENCE,
        server_type::ROOM_UPDATED,
    ] {
        assert!(
            watch.witness.kinds.contains(kind),
            "the admin heard no {kind}: {:?}",
            watch.witness.kinds
        );
    }
    // ...and reached neither the stranger nor the removed member.
    assert!(
        watch.stranger.leaks.is_empty() && watch.removed.leaks.is_empty(),
        "the stranger was sent: {:#?}\nthe removed member was sent, after being removed: {:#?}",
        watch.stranger.leaks,
        watch.removed.leaks
    );
    assert_eq!(
        watch.removed.left.len(),
        w.rooms().len(),
        "a room.left for every fixture room"
    );
    // The same for notifications: members were notified, the other two never.
    let hits = w.push.hits();
    assert!(
        hits.iter()
            .any(|h| h.starts_with("member-") || h.starts_with("admin-")),
        "no member was notified at all: {hits:?}"
    );
    let leaked: Vec<&String> = hits
        .iter()
        .filter(|h| h.starts_with("stranger-") || h.starts_with("removed-"))
        .collect();
    assert!(leaked.is_empty(), "notified: {leaked:?}");
}

/// Every client frame type the protocol defines (the wire crate's list), so a frame type
/// added to the protocol shows up here.
fn client_frame_types() -> BTreeSet<String> {
    ClientFrame::TYPES.iter().map(|t| (*t).to_owned()).collect()
}

/// Every `METHOD /path` the router's source declares with `.route(…)`. Resource modules
/// are merged into the `/api/v1` router; in `mod.rs` only the routes inside
/// `let api = Router::new() … ;` are, the rest are at the root.
fn routes_in_source() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src/http") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("source");
        let api = if path.ends_with("mod.rs") {
            assert!(
                text.contains(".nest(\"/api/v1\", api)"),
                "src/http/mod.rs no longer nests `api` under /api/v1; update routes_in_source"
            );
            let start = text
                .find("let api = Router::new()")
                .expect("the api router");
            start..start + text[start..].find(';').expect("end of the api router")
        } else {
            0..text.len()
        };
        let mut at = 0;
        while let Some(found) = text[at..].find(".route(") {
            let start = at + found + ".route(".len();
            let mut depth = 1;
            let end = text[start..]
                .char_indices()
                .find_map(|(i, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    (depth == 0).then_some(start + i)
                })
                .expect("a closed .route(…)");
            let call = &text[start..end];
            let route = call.split('"').nth(1).expect("a path literal");
            let prefix = if api.contains(&start) { "/api/v1" } else { "" };
            for method in ["get", "post", "put", "patch", "delete"] {
                let named = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !call[..i]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if named {
                    out.insert(format!("{} {prefix}{route}", method.to_uppercase()));
                }
            }
            at = end;
        }
    }
    out
}

#[tokio::test]
async fn every_route_and_frame_has_a_row() {
    let app = spawn_app().await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .expect("GET openapi.json")
        .json()
        .await
        .expect("JSON");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let routed = routes_in_source();
    // The scan is sound: it finds every documented route, and the undocumented socket.
    let unseen: Vec<&String> = documented.difference(&routed).collect();
    assert!(
        unseen.is_empty(),
        "routes_in_source missed documented routes: {unseen:?}"
    );
    assert!(routed.contains("GET /api/v1/ws"), "{routed:?}");

    let rows: BTreeSet<String> = REST.iter().map(|r| r.op.to_owned()).collect();
    let missing: Vec<&String> = routed.iter().filter(|op| !rows.contains(*op)).collect();
    assert!(
        missing.is_empty(),
        "routes with no row in authz::REST: {missing:?}"
    );
    let stale: Vec<&String> = rows.iter().filter(|op| !routed.contains(*op)).collect();
    assert!(
        stale.is_empty(),
        "rows for routes that do not exist: {stale:?}"
    );

    let types = client_frame_types();
    assert!(
        types.contains("send") && types.contains("ping"),
        "{types:?}"
    );
    let framed: BTreeSet<String> = FRAMES.iter().map(|r| r.kind.to_owned()).collect();
    assert_eq!(
        types, framed,
        "every client frame type has exactly one row in authz::FRAMES"
    );
}

/// Waits for a frame of this wire type (about `room`, when given) on a member's socket.
async fn hears(socket: &mut Socket, kind: &str, about: Option<Uuid>) {
    let about = about.map(|id| id.to_string());
    socket
        .wait_for(WAIT, |f| {
            kind_of(f) == kind
                && about.as_ref().is_none_or(|id| {
                    serde_json::to_string(f).is_ok_and(|text| text.contains(id.as_str()))
                })
        })
        .await
        .unwrap_or_else(|e| panic!("no {kind} frame: {e}"));
}

/// Sends a frame and returns the error code it was refused with.
async fn refused(socket: &mut Socket, frame: ClientFrame) -> String {
    let id = socket.send_frame(frame).await.expect("send frame");
    match socket.answer(&id, WAIT).await {
        Err(err) => err.code().expect("an error code").as_str().to_owned(),
        Ok(answer) => panic!("expected a refusal, got {answer:?}"),
    }
}

#[tokio::test]
async fn removal_is_immediate_on_an_open_socket() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let removed = app.user("removed").await;
    let room = owner.group("team", &[&member, &removed]).await.id;
    let send_picture = |user: &TestUser, media: Uuid| {
        let body = json!({"roomId": room, "clientMsgId": Uuid::now_v7().to_string(),
            "type": "image", "mediaId": media, "content": "a picture"});
        let api = user.api.clone();
        async move {
            let (status, body) = api
                .raw(Method::POST, "/api/v1/messages/send", Some(&body))
                .await
                .expect("send");
            assert_eq!(status, 201, "{body}");
        }
    };
    let picture = owner
        .api
        .upload("picture.png", "image/png", png())
        .await
        .expect("upload");
    send_picture(&owner, picture.id).await;
    let mine = removed
        .api
        .upload("mine.png", "image/png", png())
        .await
        .expect("upload");
    send_picture(&removed, mine.id).await;
    let own = removed.send(room, "said before removal").await;
    let target = owner.send(room, "to change later").await;

    let mut removed_ws = removed.connect().await;
    let mut member_ws = member.connect().await;
    let mut owner_ws = owner.connect().await;
    let get = |user: &TestUser, path: String| {
        let api = user.api.clone();
        async move { api.raw(Method::GET, &path, None).await.expect("request") }
    };

    // Before: the room's events, presence and media reach the member-to-be-removed.
    let typing = ClientFrame::Typing {
        room_id: room,
        active: true,
    };
    owner_ws.send_frame(typing.clone()).await.expect("typing");
    hears(&mut removed_ws, server_type::TYPING, Some(room)).await;
    let away = ClientFrame::Presence {
        status: PresenceStatus::Away,
    };
    member_ws.send_frame(away.clone()).await.expect("away");
    hears(&mut removed_ws, server_type::PRESENCE, Some(member.id)).await;
    assert_eq!(get(&removed, picture.url.clone()).await.0, 200);
    assert_eq!(
        get(&removed, format!("/api/v1/presence/{}", owner.id))
            .await
            .0,
        200
    );

    // The owner removes them; their open socket is told.
    let (status, body) = owner
        .api
        .raw(
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/members/{}", removed.id),
            None,
        )
        .await
        .expect("remove");
    assert_eq!(status, 204, "{body}");
    // Read in order up to `room.left`: what came before it was allowed.
    loop {
        match removed_ws.next_within(WAIT).await.expect("room.left") {
            ServerFrame::RoomLeft { room_id } if room_id == room => break,
            _ => {}
        }
    }

    // At once, on the same socket, every frame about the room is refused, their own
    // messages included.
    let send = ClientFrame::Send {
        message: SendMessageRequest {
            room_id: room,
            client_msg_id: Uuid::now_v7().to_string(),
            content: "still here?".into(),
            kind: MessageType::Text,
            media_id: None,
        },
    };
    let edit = ClientFrame::Edit {
        message_id: own.id,
        content: "rewritten".into(),
    };
    let delete = ClientFrame::Delete { message_id: own.id };
    let mark_read = ClientFrame::Receipt {
        room_id: room,
        seq: target.seq,
        status: ReceiptKind::Read,
    };
    for (frame, code) in [
        (send, "room_not_found"),
        (edit, "message_not_found"),
        (delete, "message_not_found"),
        (mark_read, "room_not_found"),
        (typing.clone(), "room_not_found"),
    ] {
        let kind = frame_type(&frame);
        assert_eq!(refused(&mut removed_ws, frame).await, code, "{kind}");
    }
    let id = removed_ws
        .send_frame(ClientFrame::Sync {
            cursors: Cursors::from([(room, 0)]),
        })
        .await
        .expect("sync");
    match removed_ws.answer(&id, WAIT).await.expect("synced") {
        ServerFrame::Synced { rooms, .. } => assert!(!rooms.contains_key(&room), "{rooms:?}"),
        other => panic!("expected synced, got {other:?}"),
    }
    // The room's media is gone for them; what they uploaded themselves stays theirs.
    for path in [
        picture.url.clone(),
        picture.thumbnail_url.clone().expect("thumbnail"),
    ] {
        assert_error(&get(&removed, path).await, 404, "media_not_found");
    }
    assert_eq!(get(&removed, mine.url.clone()).await.0, 200);
    // Presence, both ways: they share no room any more.
    assert_error(
        &get(&removed, format!("/api/v1/presence/{}", owner.id)).await,
        404,
        "user_not_found",
    );
    assert_error(
        &get(&owner, format!("/api/v1/lastseen/{}", removed.id)).await,
        404,
        "user_not_found",
    );

    // The others carry on: the member hears every kind of event, the removed member none.
    owner_ws
        .send_message(room, "after", "after the removal")
        .await
        .expect("send");
    hears(&mut member_ws, server_type::MESSAGE, Some(room)).await;
    let path = format!("/api/v1/messages/{}", target.id);
    let edited = json!({"content": "changed"});
    let (status, _) = owner
        .api
        .raw(Method::PATCH, &path, Some(&edited))
        .await
        .expect("edit");
    assert_eq!(status, 200);
    hears(&mut member_ws, server_type::MESSAGE_UPDATED, Some(room)).await;
    let (status, _) = owner
        .api
        .raw(Method::DELETE, &path, None)
        .await
        .expect("delete");
    assert_eq!(status, 200);
    hears(&mut member_ws, server_type::MESSAGE_DELETED, Some(room)).await;
    receipt(&mut member_ws, room, target.seq + 1, ReceiptKind::Read).await;
    hears(&mut member_ws, server_type::RECEIPT, Some(room)).await;
    owner_ws.send_frame(typing).await.expect("typing");
    hears(&mut member_ws, server_type::TYPING, Some(room)).await;
    let renamed = json!({"name": "team, smaller"});
    let (status, _) = owner
        .api
        .raw(
            Method::PATCH,
            &format!("/api/v1/rooms/{room}"),
            Some(&renamed),
        )
        .await
        .expect("rename");
    assert_eq!(status, 200);
    hears(&mut member_ws, server_type::ROOM_UPDATED, Some(room)).await;
    owner_ws.send_frame(away.clone()).await.expect("away");
    hears(&mut member_ws, server_type::PRESENCE, Some(owner.id)).await;
    // And their own presence no longer reaches the room's members.
    removed_ws.send_frame(away).await.expect("away");

    let room_text = room.to_string();
    assert_no_frame(&mut removed_ws, "an event of the room", |f| {
        matches!(f, ServerFrame::Presence { .. })
            || serde_json::to_string(f).is_ok_and(|t| t.contains(&room_text))
    })
    .await;
    let removed_text = removed.id.to_string();
    assert_no_frame(&mut owner_ws, "the removed member's presence", |f| {
        matches!(f, ServerFrame::Presence { user_id, .. } if user_id.to_string() == removed_text)
    })
    .await;
}

#[tokio::test]
async fn a_removed_member_gets_no_push() {
    let sink = PushSink::start().await;
    let app = spawn_app_with(|c| {
        c.push.outbound_allow = vec!["127.0.0.1".into()];
        c.push.collapse_ms = 100;
    })
    .await;
    let owner = app.user("owner").await;
    let removed = app.user("removed").await;
    let room = owner.group("team", &[&removed]).await.id;
    let body = subscription(&sink.url("removed"));
    let (status, body) = removed
        .api
        .raw(Method::POST, "/api/v1/push/subscriptions", Some(&body))
        .await
        .expect("subscribe");
    assert_eq!(status, 201, "{body}");

    // While a member (and offline), they are notified.
    owner.send(room, "while a member").await;
    let deadline = Instant::now() + WAIT;
    while sink.hits().is_empty() {
        assert!(Instant::now() < deadline, "no notification while a member");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Removed: nothing more, however long one waits.
    let (status, body) = owner
        .api
        .raw(
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/members/{}", removed.id),
            None,
        )
        .await
        .expect("remove");
    assert_eq!(status, 204, "{body}");
    let before = sink.hits().len();
    for i in 0..3 {
        owner.send(room, &format!("after the removal {i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        sink.hits().len(),
        before,
        "notified after the removal: {:?}",
        sink.hits()
    );
}
