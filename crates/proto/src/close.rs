//! WebSocket close codes the server sends (docs/PROTOCOL.md, "Close codes"). 1001, 1008,
//! 1009 and 1011 are RFC 6455's; the 4000s are Palaver's own.

/// The server is shutting down; reconnect elsewhere or later.
pub const GOING_AWAY: u16 = 1001;
/// The connection could not keep up with its traffic; reconnect and resume.
pub const SLOW_CONSUMER: u16 = 1008;
/// A WebSocket message was larger than `max_ws_message_bytes`.
pub const TOO_BIG: u16 = 1009;
/// The server could not read what it had to send (e.g. the store failed during a
/// replay); reconnect and resume.
pub const INTERNAL: u16 = 1011;
/// The session was ended (logout, or a stolen refresh token): do not reconnect with it.
pub const SESSION_ENDED: u16 = 4001;
/// Nothing was heard from the client for two heartbeat intervals.
pub const HEARTBEAT_TIMEOUT: u16 = 4002;
/// A connection opened without an `Authorization` header did not authenticate: its
/// first frame was not a valid `auth` (the `error` frame before the close says why).
pub const AUTH_FAILED: u16 = 4003;
/// No frame came within `ws_auth_timeout_ms` on a connection that had to send `auth`.
pub const AUTH_TIMEOUT: u16 = 4004;

/// Every code above with its name, for tables and checks (docs/PROTOCOL.md names them).
pub const ALL: [(&str, u16); 8] = [
    ("GOING_AWAY", GOING_AWAY),
    ("SLOW_CONSUMER", SLOW_CONSUMER),
    ("TOO_BIG", TOO_BIG),
    ("INTERNAL", INTERNAL),
    ("SESSION_ENDED", SESSION_ENDED),
    ("HEARTBEAT_TIMEOUT", HEARTBEAT_TIMEOUT),
    ("AUTH_FAILED", AUTH_FAILED),
    ("AUTH_TIMEOUT", AUTH_TIMEOUT),
];
