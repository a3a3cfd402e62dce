//! WebSocket frames: JSON text frames, each an object with a `type`.
//!
//! A client frame may carry an `id` (any string up to 64 characters); the server's answer
//! to that frame (`ack`, `synced`, `pong` or `error`) carries the same `id`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::conversation::ChangeCursors;
use crate::error::ErrorCode;
use crate::model::{Cursors, Message, PresenceStatus, ReceiptKind, Room, SendMessageRequest};

/// A client frame with its optional correlation id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientEnvelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub frame: ClientFrame,
}

/// What a client can say on the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ClientFrame {
    /// The first frame of a connection opened without an `Authorization` header (a
    /// browser cannot set one): the access token. Answered by `hello`, or by `error` and
    /// close code 4003. Refused (`bad_request`) on a connection already authenticated.
    Auth { token: String },
    /// Send a message (the body of `POST /api/v1/messages/send`); answered by `ack`.
    Send { message: SendMessageRequest },
    /// Replace the text of one's own message; answered by `ack`. `noPreview` as in
    /// `EditMessageRequest`.
    Edit {
        message_id: Uuid,
        content: String,
        #[serde(default)]
        no_preview: bool,
    },
    /// Delete one's own message; answered by `ack`.
    Delete { message_id: Uuid },
    /// Everything in the room up to `seq` has reached this device (`delivered`) or been
    /// read (`read`). Markers only move forward. No answer unless it fails.
    Receipt {
        room_id: Uuid,
        #[serde(deserialize_with = "crate::integral::i64")]
        seq: i64,
        status: ReceiptKind,
    },
    /// The user is typing (or stopped). Relayed to the other members, not stored.
    Typing {
        room_id: Uuid,
        #[serde(default = "yes")]
        active: bool,
    },
    /// Set one's own presence (`online` or `away`); going offline is closing the socket.
    Presence { status: PresenceStatus },
    /// Resume: the highest seq held per room, and the change number of the last `synced`
    /// per room. The server sends every newer message in order, then the current state
    /// of every older message and of every room that changed since, then `synced`, then
    /// live traffic, with no gap and no duplicate.
    Sync {
        #[serde(deserialize_with = "crate::integral::cursors")]
        cursors: Cursors,
        #[serde(default, deserialize_with = "crate::integral::cursors")]
        changes: ChangeCursors,
    },
    /// Application-level heartbeat; answered by `pong`.
    Ping,
}

fn yes() -> bool {
    true
}

/// Why a user is no longer in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// They left.
    Left,
    /// An owner or admin removed them.
    Removed,
    /// They declined the invitation.
    Declined,
}

/// What the server says on the socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ServerFrame {
    /// First frame on every connection.
    Hello {
        user_id: Uuid,
        connection_id: Uuid,
        /// Seconds between the server's pings; a peer silent for two of these is closed.
        heartbeat_interval: u64,
    },
    /// The frame with this `id` succeeded; for `send`, `edit` and `delete` it carries the
    /// stored message. `duplicate` is true when a `send` was a retry of a stored message.
    Ack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<Message>,
        #[serde(default)]
        duplicate: bool,
    },
    /// A new message in one of the user's rooms (live, or replayed by `sync`).
    #[serde(rename = "message")]
    Message { message: Message },
    /// A message was edited.
    #[serde(rename = "message.updated")]
    MessageUpdated { message: Message },
    /// A message was deleted; `message.content` is empty and `deleted` true.
    #[serde(rename = "message.deleted")]
    MessageDeleted { message: Message },
    /// A member moved their delivered or read marker in a room.
    Receipt {
        room_id: Uuid,
        user_id: Uuid,
        status: ReceiptKind,
        seq: i64,
    },
    /// The room-wide summary moved: every message up to `deliveredSeq` has reached every
    /// member, every message up to `readSeq` has been read by every member.
    #[serde(rename = "receipt.summary")]
    ReceiptSummary {
        room_id: Uuid,
        delivered_seq: i64,
        read_seq: i64,
    },
    /// Someone is typing in a room (or stopped).
    Typing {
        room_id: Uuid,
        user_id: Uuid,
        active: bool,
    },
    /// Someone who shares a room with the user changed presence.
    Presence {
        user_id: Uuid,
        status: PresenceStatus,
        #[serde(default, with = "time::serde::rfc3339::option")]
        last_seen: Option<OffsetDateTime>,
    },
    /// A room the user is in was created, renamed, or its members changed.
    #[serde(rename = "room.updated")]
    RoomUpdated { room: Room },
    /// The user left or was removed from a room; nothing more will come from it.
    #[serde(rename = "room.left")]
    RoomLeft {
        room_id: Uuid,
        /// Why, when known: `left`, `removed` or `declined`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<LeftReason>,
        /// Who removed the user, for `removed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Uuid>,
    },
    /// The replay asked for by `sync` is complete; `rooms` holds the last seq per room,
    /// `changes` the change number to send with the next `sync`.
    Synced {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        rooms: Cursors,
        #[serde(default)]
        changes: ChangeCursors,
    },
    /// A welcome into an encrypted room for one of the user's devices (`welcome.deviceId`);
    /// it stays listed at `GET /api/v1/mls/devices/{deviceId}/welcomes` until taken.
    #[serde(rename = "mls.welcome")]
    MlsWelcome { welcome: crate::mls::Welcome },
    /// Answer to `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// The frame with this `id` failed; nothing was changed. The connection stays open.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// For a failed `send`: its `clientMsgId`, so a send without `id` can be matched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        code: ErrorCode,
        message: String,
        /// For `rate_limited`: milliseconds to wait before retrying.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

/// The `type` of each client frame, as sent. Part of the contract: a client matches on
/// these, and `ClientFrame::kind` returns them (a test holds them to serde's names).
pub mod client_type {
    pub const AUTH: &str = "auth";
    pub const SEND: &str = "send";
    pub const EDIT: &str = "edit";
    pub const DELETE: &str = "delete";
    pub const RECEIPT: &str = "receipt";
    pub const TYPING: &str = "typing";
    pub const PRESENCE: &str = "presence";
    pub const SYNC: &str = "sync";
    pub const PING: &str = "ping";
}

/// The `type` of each server frame, as sent; `ServerFrame::kind` returns them.
pub mod server_type {
    pub const HELLO: &str = "hello";
    pub const ACK: &str = "ack";
    pub const MESSAGE: &str = "message";
    pub const MESSAGE_UPDATED: &str = "message.updated";
    pub const MESSAGE_DELETED: &str = "message.deleted";
    pub const RECEIPT: &str = "receipt";
    pub const RECEIPT_SUMMARY: &str = "receipt.summary";
    pub const TYPING: &str = "typing";
    pub const PRESENCE: &str = "presence";
    pub const ROOM_UPDATED: &str = "room.updated";
    pub const ROOM_LEFT: &str = "room.left";
    pub const SYNCED: &str = "synced";
    pub const MLS_WELCOME: &str = "mls.welcome";
    pub const PONG: &str = "pong";
    pub const ERROR: &str = "error";
}

impl ClientFrame {
    /// Every client frame type, in declaration order.
    pub const TYPES: [&'static str; 9] = {
        use client_type::*;
        [
            AUTH, SEND, EDIT, DELETE, RECEIPT, TYPING, PRESENCE, SYNC, PING,
        ]
    };

    /// This frame's `type`.
    pub fn kind(&self) -> &'static str {
        use client_type::*;
        match self {
            ClientFrame::Auth { .. } => AUTH,
            ClientFrame::Send { .. } => SEND,
            ClientFrame::Edit { .. } => EDIT,
            ClientFrame::Delete { .. } => DELETE,
            ClientFrame::Receipt { .. } => RECEIPT,
            ClientFrame::Typing { .. } => TYPING,
            ClientFrame::Presence { .. } => PRESENCE,
            ClientFrame::Sync { .. } => SYNC,
            ClientFrame::Ping => PING,
        }
    }
}

impl ServerFrame {
    /// Every server frame type, in declaration order.
    pub const TYPES: [&'static str; 15] = {
        use server_type::*;
        [
            HELLO,
            ACK,
            MESSAGE,
            MESSAGE_UPDATED,
            MESSAGE_DELETED,
            RECEIPT,
            RECEIPT_SUMMARY,
            TYPING,
            PRESENCE,
            ROOM_UPDATED,
            ROOM_LEFT,
            SYNCED,
            MLS_WELCOME,
            PONG,
            ERROR,
        ]
    };

    /// This frame's `type`.
    pub fn kind(&self) -> &'static str {
        use server_type::*;
        match self {
            ServerFrame::Hello { .. } => HELLO,
            ServerFrame::Ack { .. } => ACK,
            ServerFrame::Message { .. } => MESSAGE,
            ServerFrame::MessageUpdated { .. } => MESSAGE_UPDATED,
            ServerFrame::MessageDeleted { .. } => MESSAGE_DELETED,
            ServerFrame::Receipt { .. } => RECEIPT,
            ServerFrame::ReceiptSummary { .. } => RECEIPT_SUMMARY,
            ServerFrame::Typing { .. } => TYPING,
            ServerFrame::Presence { .. } => PRESENCE,
            ServerFrame::RoomUpdated { .. } => ROOM_UPDATED,
            ServerFrame::RoomLeft { .. } => ROOM_LEFT,
            ServerFrame::Synced { .. } => SYNCED,
            ServerFrame::MlsWelcome { .. } => MLS_WELCOME,
            ServerFrame::Pong { .. } => PONG,
            ServerFrame::Error { .. } => ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_with_and_without_id() {
        let room = Uuid::now_v7();
        let raw = format!(
            r#"{{"type":"send","id":"7","message":{{"roomId":"{room}","clientMsgId":"c1","content":"hi"}}}}"#
        );
        let env: ClientEnvelope = serde_json::from_str(&raw).expect("parse");
        assert_eq!(env.id.as_deref(), Some("7"));
        match env.frame {
            ClientFrame::Send { message } => {
                assert_eq!(message.room_id, room);
                assert_eq!(message.kind, crate::MessageType::Text);
            }
            other => panic!("unexpected {other:?}"),
        }
        let env: ClientEnvelope = serde_json::from_str(r#"{"type":"ping"}"#).expect("parse");
        assert!(env.id.is_none());
        assert!(matches!(env.frame, ClientFrame::Ping));
        let raw = format!(r#"{{"type":"receipt","roomId":"{room}","seq":5,"status":"read"}}"#);
        let env: ClientEnvelope = serde_json::from_str(&raw).expect("parse");
        assert!(matches!(
            env.frame,
            ClientFrame::Receipt {
                seq: 5,
                status: ReceiptKind::Read,
                ..
            }
        ));
    }

    #[test]
    fn server_frames_use_dotted_names() {
        let frame = ServerFrame::RoomLeft {
            room_id: Uuid::nil(),
            reason: None,
            by: None,
        };
        let json = serde_json::to_value(&frame).expect("serialize");
        assert_eq!(json["type"], "room.left");
        assert_eq!(json["roomId"], Uuid::nil().to_string());
        let frame = ServerFrame::Error {
            id: Some("1".into()),
            client_msg_id: None,
            code: ErrorCode::RoomNotFound,
            message: "x".into(),
            retry_after_ms: None,
        };
        let json = serde_json::to_value(&frame).expect("serialize");
        assert_eq!(json["code"], "room_not_found");
        assert!(json.get("clientMsgId").is_none() && json.get("retryAfterMs").is_none());
        let frame = ServerFrame::Error {
            id: None,
            client_msg_id: Some("c1".into()),
            code: ErrorCode::RateLimited,
            message: "x".into(),
            retry_after_ms: Some(1500),
        };
        let json = serde_json::to_value(&frame).expect("serialize");
        assert_eq!(json["clientMsgId"], "c1");
        assert_eq!(json["retryAfterMs"], 1500);
    }

    /// One frame of every type; the `match` fails to compile when a variant is added
    /// without a sample here (and so without a name checked below).
    fn client_samples() -> Vec<ClientFrame> {
        let room = Uuid::nil();
        let all = vec![
            ClientFrame::Auth { token: "t".into() },
            ClientFrame::Send {
                message: serde_json::from_value(serde_json::json!({
                    "roomId": room, "clientMsgId": "c", "content": "x"
                }))
                .expect("send body"),
            },
            ClientFrame::Edit {
                message_id: room,
                content: "x".into(),
                no_preview: false,
            },
            ClientFrame::Delete { message_id: room },
            ClientFrame::Receipt {
                room_id: room,
                seq: 1,
                status: ReceiptKind::Read,
            },
            ClientFrame::Typing {
                room_id: room,
                active: true,
            },
            ClientFrame::Presence {
                status: PresenceStatus::Away,
            },
            ClientFrame::Sync {
                cursors: Cursors::default(),
                changes: ChangeCursors::default(),
            },
            ClientFrame::Ping,
        ];
        for f in &all {
            match f {
                ClientFrame::Auth { .. }
                | ClientFrame::Send { .. }
                | ClientFrame::Edit { .. }
                | ClientFrame::Delete { .. }
                | ClientFrame::Receipt { .. }
                | ClientFrame::Typing { .. }
                | ClientFrame::Presence { .. }
                | ClientFrame::Sync { .. }
                | ClientFrame::Ping => {}
            }
        }
        all
    }

    #[test]
    fn type_names_are_serdes() {
        let samples = client_samples();
        let kinds: Vec<&str> = samples.iter().map(ClientFrame::kind).collect();
        assert_eq!(kinds, ClientFrame::TYPES, "one sample per type, in order");
        for f in &samples {
            assert_eq!(serde_json::to_value(f).expect("frame")["type"], f.kind());
        }
        // serde's own list of variant names, from its error for an unknown type.
        let err = serde_json::from_str::<ClientFrame>(r#"{"type":"?"}"#)
            .expect_err("unknown")
            .to_string();
        for kind in ClientFrame::TYPES {
            assert!(err.contains(&format!("`{kind}`")), "{kind}: {err}");
        }
        let err = serde_json::from_str::<ServerFrame>(r#"{"type":"?"}"#)
            .expect_err("unknown")
            .to_string();
        let listed = err.matches('`').count() / 2 - 1; // minus the `?` it quotes
        assert_eq!(listed, ServerFrame::TYPES.len(), "{err}");
        for kind in ServerFrame::TYPES {
            assert!(err.contains(&format!("`{kind}`")), "{kind}: {err}");
        }
        let frame = ServerFrame::RoomLeft {
            room_id: Uuid::nil(),
            reason: None,
            by: None,
        };
        assert_eq!(
            serde_json::to_value(&frame).expect("frame")["type"],
            frame.kind()
        );
    }
}
