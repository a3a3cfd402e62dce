//! A connection opened without an `Authorization` header authenticates with its first
//! frame, which must be `auth`; a refusal is answered and the socket closed cleanly.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures::SinkExt;
use palaver_proto::{ClientEnvelope, ClientFrame, ErrorCode, close};
use tokio::time::sleep;

use super::frames::{BadFrame, decode_frame, service_error_frame};
use crate::service::{Core, Identity, encode};

/// Most bytes of an `auth` frame: an access token is a few hundred.
pub const MAX_AUTH_FRAME_BYTES: usize = 4096;

/// Authenticates a connection opened without an `Authorization` header (a browser cannot
/// set one) from its first frame, which must be `auth`. Until then nothing is registered
/// and nothing else is read; the phase is bounded in time (`ws_auth_timeout_ms`, then close
/// 4004) and in what is handled (one frame of at most `MAX_AUTH_FRAME_BYTES`). A failure
/// is answered by an `error` frame and close 4003.
pub async fn authenticate(mut socket: WebSocket, core: &Core) -> Option<(WebSocket, Identity)> {
    let refused = |reason: &'static str| {
        metrics::counter!("palaver_ws_auth_refused_total", "reason" => reason).increment(1);
    };
    let deadline = sleep(Duration::from_millis(core.config.ws_auth_timeout_ms));
    tokio::pin!(deadline);
    let text = loop {
        let msg = tokio::select! {
            _ = &mut deadline => {
                refused("timeout");
                let frame = CloseFrame {
                    code: close::AUTH_TIMEOUT,
                    reason: Utf8Bytes::from_static("no auth frame in time"),
                };
                close_and_wait(socket, frame).await;
                return None;
            }
            msg = socket.recv() => msg,
        };
        match msg {
            Some(Ok(WsMessage::Text(text))) => break Some(text),
            Some(Ok(WsMessage::Binary(_))) => break None,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            Some(Ok(WsMessage::Close(_))) => {
                // Sends the Close the stack queued in answer (RFC 6455 §5.5.1).
                let _ = socket.close().await;
                return None;
            }
            Some(Err(_)) | None => return None,
        }
    };
    let refusal = match text
        .as_deref()
        .map(|t| decode_frame(t, MAX_AUTH_FRAME_BYTES))
    {
        None => BadFrame::new(
            ErrorCode::BadRequest,
            "the first frame must be auth, as JSON text",
        )
        .into_frame(),
        Some(Err(bad)) => bad.into_frame(),
        Some(Ok(ClientEnvelope {
            id,
            frame: ClientFrame::Auth { token },
        })) => match core.authenticate(token.trim()).await {
            Ok(who) => return Some((socket, who)),
            Err(err) => service_error_frame(id, None, &err),
        },
        Some(Ok(envelope)) => BadFrame {
            id: envelope.id,
            ..BadFrame::new(
                ErrorCode::Unauthorized,
                "authenticate first: the first frame must be auth",
            )
        }
        .into_frame(),
    };
    refused("refused");
    if let Ok(text) = Utf8Bytes::try_from(encode(&refusal)) {
        let _ = socket.feed(WsMessage::Text(text)).await;
    }
    let frame = CloseFrame {
        code: close::AUTH_FAILED,
        reason: Utf8Bytes::from_static("authentication failed"),
    };
    close_and_wait(socket, frame).await;
    None
}

/// How long a connection the server closes may take to answer its Close.
const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// Sends Close and waits briefly for the peer's answering Close (RFC 6455 §5.5.1) before
/// the connection is dropped. Dropping at once made a peer that still had a frame to send
/// (the pong to the handshake's ping, say) write into a reset connection and see a
/// broken pipe instead of the close code.
async fn close_and_wait(mut socket: WebSocket, frame: CloseFrame) {
    if socket.send(WsMessage::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_ANSWER_WAIT, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}
