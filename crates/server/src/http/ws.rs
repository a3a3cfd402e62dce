//! `GET /api/v1/ws`: the WebSocket handshake (Origin and token checks, socket buffer
//! sizes, message limits), after which the connection belongs to the gateway.
//!
//! A client authenticates with `Authorization: Bearer` on the handshake, or, when it
//! cannot set that header (a browser), with an `auth` frame as its first frame
//! (`gateway::connection::authenticate`). No token is ever taken from the URL: URLs end
//! up in logs, proxies and browser history.

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use axum::response::Response;

use bytes::Bytes;

use super::AppState;
use super::error::ApiError;
use super::extract::{bearer_token, refuse_token_in_url};
use crate::gateway::connection;
use crate::transport::ConnTimer;
use palaver_proto::ErrorCode;

/// Per-connection socket buffers: small, so an idle connection costs little (client frames
/// are small; the read buffer grows for a large one). 4 KiB → 1 KiB took 3 KiB off each
/// idle connection (docs/BENCHMARKS.md).
const READ_BUFFER: usize = 1024;
const WRITE_BUFFER: usize = 16 * 1024;

/// Whether a browser page at `Origin` may open a socket: no Origin (not a browser), the
/// server's own origin, or one on the allow-list.
pub fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// `GET /api/v1/ws`: check the Origin and any bearer token, then upgrade; without a
/// header, the connection authenticates with its first frame.
pub async fn upgrade(
    State(app): State<AppState>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    if !origin_allowed(&app.core.config.allowed_origins, &headers) {
        metrics::counter!("palaver_ws_origin_refused_total").increment(1);
        return Err(ApiError::new(
            ErrorCode::OriginForbidden,
            "this origin may not open a WebSocket",
        ));
    }
    let (mut parts, _) = req.into_parts();
    refuse_token_in_url(&parts.uri)?;
    let who = match bearer_token(&parts.headers)? {
        Some(token) => Some(app.core.authenticate(token).await?),
        None => None,
    };
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &app)
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("not a WebSocket handshake: {e}"),
            )
        })?;
    let config = &app.core.config;
    let (core, hub, connections) = (app.core.clone(), app.hub.clone(), app.connections.clone());
    let handshake = std::time::Duration::from_secs(config.ws_handshake_timeout_secs);
    let timer = parts.extensions.get::<ConnTimer>().cloned();
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + config.max_ws_message_bytes)
        .max_message_size(config.max_ws_message_bytes)
        .max_frame_size(config.max_ws_message_bytes)
        .on_upgrade(move |mut socket| {
            connections.track_future(async move {
                // A peer that does not answer this ping (any frame counts, the `auth` frame
                // too) within `ws_handshake_timeout_secs` is closed by its connection's timer.
                if let Some(timer) = timer {
                    timer.expect_read_within(handshake);
                }
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
                let (socket, who) = match who {
                    Some(who) => (socket, who),
                    None => match connection::authenticate(socket, &core).await {
                        Some(authenticated) => authenticated,
                        None => return,
                    },
                };
                connection::run(socket, core, hub, who).await
            })
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, host.parse().expect("host"));
        if let Some(o) = origin {
            h.insert(ORIGIN, o.parse().expect("origin"));
        }
        h
    }

    #[test]
    fn origins() {
        assert!(origin_allowed(&[], &headers(None, "127.0.0.1:8080")));
        assert!(origin_allowed(
            &[],
            &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080")
        ));
        assert!(!origin_allowed(
            &[],
            &headers(Some("http://evil.example"), "127.0.0.1:8080")
        ));
        assert!(origin_allowed(
            &["http://app.example".into()],
            &headers(Some("http://app.example"), "127.0.0.1:8080")
        ));
        assert!(origin_allowed(
            &["*".into()],
            &headers(Some("http://evil.example"), "127.0.0.1:8080")
        ));
    }
}
