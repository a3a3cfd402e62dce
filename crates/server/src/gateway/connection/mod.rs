//! One WebSocket connection: a reader (this task) that handles the client's frames, and
//! a writer task that owns the socket's sending half.
//!
//! The writer drains everything queued into one flush (many frames, one syscall), drops
//! message frames the connection already has (by room and seq), and repairs a gap in a
//! room's seq from the store before sending what follows it. Sends are pipelined: up to
//! `MAX_IN_FLIGHT` of one connection's messages wait for the group commit at once,
//! acknowledged in the order they were sent.
//!
//! The parts: `reader` (the client's frames), `writer` (the socket's sending half),
//! `frames` (reading a frame, and the `error` frames for refusals) and `auth` (a
//! connection that authenticates with its first frame); here, the connection's loop.

mod auth;
mod frames;
mod reader;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use futures::StreamExt;
use futures::stream::{FuturesOrdered, SplitSink};
use palaver_proto::{ChangeCursors, Cursors, ErrorCode, ServerFrame, close};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use auth::{MAX_AUTH_FRAME_BYTES, authenticate};
pub use frames::{BadFrame, decode_frame};

use super::hub::{ConnHandle, Hub};
use crate::service::{Core, Identity};
use reader::{InFlight, Reader};
use writer::Writer;

/// Sends of one connection waiting for their commit at once; past this the reader
/// stops reading until some are acknowledged.
const MAX_IN_FLIGHT: usize = 256;

/// Replies (acks, errors) queued for the writer; past this the reader waits.
const CONTROL_QUEUE: usize = 64;

enum Control {
    /// A reply or notice for this connection only.
    Frame(Box<ServerFrame>),
    /// Replay from these cursors, then go live.
    Sync {
        id: Option<String>,
        cursors: Cursors,
        changes: ChangeCursors,
    },
    /// The client's first frame was not `sync`: go live now.
    Start,
}

type Sink = SplitSink<WebSocket, WsMessage>;

/// Serves one authenticated connection until it closes.
pub async fn run(socket: WebSocket, core: Arc<Core>, hub: Arc<Hub>, who: Identity) {
    let conn_id = Uuid::now_v7();
    let (sink, mut stream) = socket.split();
    let (live_tx, live_rx) = mpsc::channel(core.config.outbound_queue);
    let (ctrl_tx, ctrl_rx) = mpsc::channel(CONTROL_QUEUE);
    let handle = ConnHandle {
        id: conn_id,
        session_id: who.session_id,
        tx: live_tx,
        kill: CancellationToken::new(),
        reason: Default::default(),
    };
    hub.register(who.user_id, handle.clone());
    if let Err(err) = core.connection_opened(who.user_id).await {
        tracing::warn!(%err, "presence update failed");
    }
    let heartbeat = Duration::from_secs(core.config.heartbeat_interval_secs);
    let writer = Writer {
        core: core.clone(),
        user: who.user_id,
        handle: handle.clone(),
        last_sent: HashMap::new(),
        started: false,
    };
    let mut writer = tokio::spawn(writer.run(sink, live_rx, ctrl_rx, heartbeat));
    let hello = ServerFrame::Hello {
        user_id: who.user_id,
        connection_id: conn_id,
        heartbeat_interval: heartbeat.as_secs(),
    };
    let _ = ctrl_tx.send(Control::Frame(Box::new(hello))).await;
    tracing::debug!(user = %who.user_id, conn = %conn_id, "connection opened");

    let mut reader = Reader {
        core: core.clone(),
        who,
        conn_id,
        ctrl: ctrl_tx,
        first: true,
    };
    // Kept outside `Reader`: its futures are Send but not Sync.
    let mut in_flight: FuturesOrdered<InFlight> = FuturesOrdered::new();
    let mut deadline = Instant::now() + heartbeat * 2;
    loop {
        tokio::select! {
            _ = handle.kill.cancelled() => break,
            _ = sleep_until(deadline) => {
                handle.close(close::HEARTBEAT_TIMEOUT, "heartbeat timeout");
                break;
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                reader.answer_send(done).await;
            }
            msg = stream.next(), if in_flight.len() < MAX_IN_FLIGHT => {
                deadline = Instant::now() + heartbeat * 2;
                match msg {
                    Some(Ok(WsMessage::Text(text))) => {
                        if let Some(pending) = reader.on_text(text).await {
                            in_flight.push_back(pending);
                        }
                    }
                    Some(Ok(WsMessage::Binary(_))) => {
                        let bad = BadFrame::new(ErrorCode::BadRequest, "frames are JSON text, not binary");
                        reader.reply_bad_frame(bad).await;
                    }
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                    Some(Err(err)) => {
                        if is_too_big(err) {
                            handle.close(close::TOO_BIG, "message too big");
                        }
                        break;
                    }
                    // The writer answers a Close with a Close (the stack queued it) as it
                    // ends.
                    Some(Ok(WsMessage::Close(_))) | None => break,
                }
            }
        }
    }
    // Sends already queued still get their ack if the socket is alive (graceful close).
    while let Some(done) = in_flight.next().await {
        reader.answer_send(done).await;
    }
    hub.unregister(who.user_id, conn_id);
    drop(reader);
    handle.kill.cancel();
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    if let Err(err) = core.connection_closed(who.user_id).await {
        tracing::warn!(%err, "presence update failed");
    }
    tracing::debug!(user = %who.user_id, conn = %conn_id, "connection closed");
}

/// Whether a read failed because the client's message exceeded the size limit.
fn is_too_big(err: axum::Error) -> bool {
    matches!(
        err.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}
