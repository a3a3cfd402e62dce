//! One WebSocket connection: a reader (this task) that handles the client's frames, and
//! a writer task that owns the socket's sending half.
//!
//! The writer drains everything queued into one flush (many frames, one syscall), drops
//! message frames the connection already has (by room and seq), and repairs a gap in a
//! room's seq from the store before sending what follows it. Sends are pipelined: up to
//! `MAX_IN_FLIGHT` of one connection's messages wait for the group commit at once,
//! acknowledged in the order they were sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures::stream::{FuturesOrdered, SplitSink};
use futures::{SinkExt, StreamExt};
use palaver_proto::{ClientEnvelope, ClientFrame, Cursors, ErrorCode, ServerFrame, close};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::hub::{ConnHandle, Hub, LiveFrame};
use crate::service::{Core, Identity, Sent, ServiceError, ServiceResult, encode};

/// Sends of one connection waiting for their commit at once; past this the reader
/// stops reading until some are acknowledged.
const MAX_IN_FLIGHT: usize = 256;
/// Replies (acks, errors) queued for the writer; past this the reader waits.
const CONTROL_QUEUE: usize = 64;
/// Live frames written per flush at most, so control replies are not starved.
const MAX_BATCH: usize = 256;
/// Messages fetched per page when replaying.
const REPLAY_PAGE: u32 = 200;
/// Most rooms in one `sync`.
const MAX_SYNC_ROOMS: usize = 10_000;

enum Control {
    /// A reply or notice for this connection only.
    Frame(Box<ServerFrame>),
    /// Replay from these cursors, then go live.
    Sync {
        id: Option<String>,
        cursors: Cursors,
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

/// A send waiting for its commit.
type InFlight = futures::future::BoxFuture<'static, SendDone>;

/// A send's outcome, with what its answer must carry to be matched.
struct SendDone {
    /// The `id` of the frame that asked for it.
    id: Option<String>,
    client_msg_id: String,
    result: ServiceResult<Sent>,
}

struct Reader {
    core: Arc<Core>,
    who: Identity,
    conn_id: Uuid,
    ctrl: mpsc::Sender<Control>,
    first: bool,
}

impl Reader {
    async fn reply(&self, frame: ServerFrame) {
        let _ = self.ctrl.send(Control::Frame(Box::new(frame))).await;
    }

    async fn reply_bad_frame(&self, bad: BadFrame) {
        self.reply(bad.into_frame()).await;
    }

    /// Answers a failed frame; `client_msg_id` is the `send`'s, for a send.
    async fn reply_service_error(
        &self,
        id: Option<String>,
        client_msg_id: Option<String>,
        err: ServiceError,
    ) {
        self.reply(service_error_frame(id, client_msg_id, &err))
            .await;
    }

    async fn answer_send(&self, done: SendDone) {
        match done.result {
            Ok(sent) => {
                self.reply(ServerFrame::Ack {
                    id: done.id,
                    message: Some(sent.message),
                    duplicate: sent.duplicate,
                })
                .await
            }
            Err(err) => {
                self.reply_service_error(done.id, Some(done.client_msg_id), err)
                    .await
            }
        }
    }

    /// Handles one text frame; a send comes back as a future to await in order.
    async fn on_text(&mut self, text: Utf8Bytes) -> Option<InFlight> {
        let first = std::mem::replace(&mut self.first, false);
        let envelope = match decode_frame(text.as_str(), self.core.config.max_frame_bytes) {
            Ok(envelope) => envelope,
            Err(bad) => {
                if first {
                    let _ = self.ctrl.send(Control::Start).await;
                }
                self.reply_bad_frame(bad).await;
                return None;
            }
        };
        let id = envelope.id;
        if first && !matches!(envelope.frame, ClientFrame::Sync { .. }) {
            let _ = self.ctrl.send(Control::Start).await;
        }
        let core = &self.core;
        let who = self.who;
        let outcome: ServiceResult<Option<ServerFrame>> = match envelope.frame {
            ClientFrame::Send { message } => {
                let client_msg_id = message.client_msg_id.clone();
                match core.submit_send(who, message, Some(self.conn_id)).await {
                    Ok(pending) => {
                        let core = core.clone();
                        return Some(Box::pin(async move {
                            let result = match pending.wait().await {
                                Ok(sent) => core.finish_send(sent).await,
                                Err(err) => Err(err),
                            };
                            SendDone {
                                id,
                                client_msg_id,
                                result,
                            }
                        }));
                    }
                    Err(err) => {
                        self.reply_service_error(id, echoable(&client_msg_id), err)
                            .await;
                        return None;
                    }
                }
            }
            ClientFrame::Auth { .. } => Err(ServiceError::BadRequest(
                "this connection is already authenticated".into(),
            )),
            ClientFrame::Edit {
                message_id,
                content,
            } => core
                .edit_message(who, message_id, &content, Some(self.conn_id))
                .await
                .map(|m| {
                    Some(ServerFrame::Ack {
                        id: id.clone(),
                        message: Some(m),
                        duplicate: false,
                    })
                }),
            ClientFrame::Delete { message_id } => core
                .delete_message(who, message_id, Some(self.conn_id))
                .await
                .map(|m| {
                    Some(ServerFrame::Ack {
                        id: id.clone(),
                        message: Some(m),
                        duplicate: false,
                    })
                }),
            ClientFrame::Receipt {
                room_id,
                seq,
                status,
            } => core.receipt(who, room_id, seq, status).await.map(|_| None),
            ClientFrame::Typing { room_id, active } => core
                .typing(who, room_id, active, Some(self.conn_id))
                .await
                .map(|_| None),
            ClientFrame::Presence { status } => core.set_presence(who, status).await.map(|_| None),
            ClientFrame::Sync { cursors } => {
                if cursors.len() > MAX_SYNC_ROOMS || cursors.values().any(|seq| *seq < 0) {
                    if first {
                        let _ = self.ctrl.send(Control::Start).await;
                    }
                    Err(ServiceError::Validation(format!(
                        "sync takes at most {MAX_SYNC_ROOMS} rooms with seq >= 0"
                    )))
                } else {
                    let _ = self.ctrl.send(Control::Sync { id, cursors }).await;
                    return None;
                }
            }
            ClientFrame::Ping => Ok(Some(ServerFrame::Pong { id: id.clone() })),
        };
        match outcome {
            Ok(Some(frame)) => self.reply(frame).await,
            // Frames with an id are always answered, so a client can wait for them.
            Ok(None) if id.is_some() => {
                self.reply(ServerFrame::Ack {
                    id,
                    message: None,
                    duplicate: false,
                })
                .await
            }
            Ok(None) => {}
            Err(err) => self.reply_service_error(id, None, err).await,
        }
        None
    }
}

/// The `error` frame for a refusal or failure; an internal failure is logged here and
/// reaches the client only as `internal`.
fn service_error_frame(
    id: Option<String>,
    client_msg_id: Option<String>,
    err: &ServiceError,
) -> ServerFrame {
    let (code, message) = if err.is_internal() {
        tracing::error!(%err, "frame failed");
        (ErrorCode::Internal, "internal error".to_owned())
    } else {
        (err.code(), err.to_string())
    };
    metrics::counter!("palaver_ws_frame_errors_total", "code" => code.as_str()).increment(1);
    ServerFrame::Error {
        id,
        client_msg_id,
        code,
        message,
        retry_after_ms: err.retry_after_ms(),
    }
}

/// Why a client's text frame was refused: the error frame to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// The frame's `id`, when one could be read from it.
    pub id: Option<String>,
    /// A `send` frame's `message.clientMsgId`, when one could be read from it.
    pub client_msg_id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

impl BadFrame {
    fn new(code: ErrorCode, message: impl Into<String>) -> BadFrame {
        BadFrame {
            id: None,
            client_msg_id: None,
            code,
            message: message.into(),
        }
    }

    fn into_frame(self) -> ServerFrame {
        metrics::counter!("palaver_ws_frame_errors_total", "code" => self.code.as_str())
            .increment(1);
        ServerFrame::Error {
            id: self.id,
            client_msg_id: self.client_msg_id,
            code: self.code,
            message: self.message,
            retry_after_ms: None,
        }
    }
}

/// Reads one client text frame as the gateway does: at most `max_bytes`, a JSON object
/// whose `type` is a string naming a known frame with valid fields, and an `id` of at
/// most 64 bytes.
pub fn decode_frame(text: &str, max_bytes: usize) -> Result<ClientEnvelope, BadFrame> {
    if text.len() > max_bytes {
        return Err(BadFrame::new(
            ErrorCode::PayloadTooLarge,
            format!("frame is larger than {max_bytes} bytes"),
        ));
    }
    // serde would read a numeric `type` as a variant index; only a string is a type.
    let typed = serde_json::from_str::<TypeProbe>(text).is_ok_and(|p| p.kind.is_some());
    let parsed = if typed {
        serde_json::from_str::<ClientEnvelope>(text)
    } else {
        Err(serde::de::Error::custom("a frame needs a string \"type\""))
    };
    let envelope = parsed.map_err(|err| explain_bad_frame(text, &err))?;
    if envelope.id.as_ref().is_some_and(|id| id.len() > 64) {
        let client_msg_id = match &envelope.frame {
            ClientFrame::Send { message } => echoable(&message.client_msg_id),
            _ => None,
        };
        return Err(BadFrame {
            client_msg_id,
            ..BadFrame::new(ErrorCode::BadRequest, "id is longer than 64 characters")
        });
    }
    Ok(envelope)
}

/// Just the `type` of a frame, to check it is a string.
#[derive(serde::Deserialize)]
struct TypeProbe<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// Whether a read failed because the client's message exceeded the size limit.
fn is_too_big(err: axum::Error) -> bool {
    matches!(
        err.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// A `clientMsgId` short enough to send back (the rules allow at most 64 characters).
fn echoable(client_msg_id: &str) -> Option<String> {
    (client_msg_id.len() <= 64).then(|| client_msg_id.to_owned())
}

/// Why a text frame could not be read, with its `id` (and a `send`'s `clientMsgId`) if
/// they can be found.
fn explain_bad_frame(text: &str, err: &serde_json::Error) -> BadFrame {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return BadFrame::new(ErrorCode::BadRequest, format!("malformed JSON: {err}"));
    };
    let id = match value.get("id") {
        Some(serde_json::Value::String(s)) if s.len() <= 64 => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    const KNOWN: &[&str] = &[
        "auth", "send", "edit", "delete", "receipt", "typing", "presence", "sync", "ping",
    ];
    let kind = value.get("type").and_then(|t| t.as_str());
    let client_msg_id = match kind {
        Some("send") => value
            .pointer("/message/clientMsgId")
            .and_then(|c| c.as_str())
            .and_then(echoable),
        _ => None,
    };
    let (code, message) = match kind {
        None => (
            ErrorCode::BadRequest,
            "a frame needs a string \"type\"".to_owned(),
        ),
        Some(kind) if !KNOWN.contains(&kind) => {
            let shown: String = kind.chars().take(32).collect();
            (
                ErrorCode::UnknownFrame,
                format!("unknown frame type {shown:?}"),
            )
        }
        Some(kind) => (
            ErrorCode::BadRequest,
            format!("invalid {kind} frame: {err}"),
        ),
    };
    BadFrame {
        id,
        client_msg_id,
        code,
        message,
    }
}

struct Writer {
    core: Arc<Core>,
    user: Uuid,
    handle: ConnHandle,
    /// The highest seq sent per room.
    last_sent: HashMap<Uuid, i64>,
    /// Live traffic flows once the client's first frame is handled (or the grace ends).
    started: bool,
}

/// The socket is gone.
struct Gone;

impl Writer {
    async fn run(
        mut self,
        mut sink: Sink,
        mut live: mpsc::Receiver<LiveFrame>,
        mut ctrl: mpsc::Receiver<Control>,
        heartbeat: Duration,
    ) {
        let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        let grace = sleep(Duration::from_millis(self.core.config.sync_grace_ms));
        tokio::pin!(grace);
        let kill = self.handle.kill.clone();
        loop {
            let step = tokio::select! {
                biased;
                _ = kill.cancelled() => break,
                c = ctrl.recv() => match c {
                    Some(c) => self.control(c, &mut sink).await,
                    None => break,
                },
                item = live.recv(), if self.started => match item {
                    Some(item) => self.live_batch(item, &mut live, &mut sink).await,
                    None => break,
                },
                _ = &mut grace, if !self.started => {
                    self.started = true;
                    Ok(())
                }
                _ = ping.tick() => sink.feed(WsMessage::Ping(bytes::Bytes::new())).await.map_err(|_| Gone),
            };
            if step.is_err() || sink.flush().await.is_err() {
                kill.cancel();
                break;
            }
        }
        let reason = self.handle.reason.lock().take();
        let Some((code, why)) = reason else {
            // The client closed (or the socket failed). After a client's Close the stack
            // has queued the answering Close (RFC 6455 §5.5.1, the client's code echoed):
            // closing the sink sends it, rather than dropping the connection, which the
            // client would see as 1006.
            let _ = sink.close().await;
            return;
        };
        if code == close::GOING_AWAY {
            // A graceful shutdown finishes what is queued first: live frames, then the
            // acks of sends still committing (the reader closes `ctrl` when done).
            while let Ok(item) = live.try_recv() {
                if self.live(item, &mut sink).await.is_err() {
                    return;
                }
            }
            let drain = async {
                while let Some(c) = ctrl.recv().await {
                    if self.control(c, &mut sink).await.is_err() {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        }
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(why),
        };
        let _ = sink.send(WsMessage::Close(Some(frame))).await;
    }

    async fn control(&mut self, c: Control, sink: &mut Sink) -> Result<(), Gone> {
        match c {
            Control::Frame(frame) => send_frame(sink, &frame).await,
            Control::Start => {
                self.started = true;
                Ok(())
            }
            Control::Sync { id, cursors } => {
                let mut rooms = Cursors::new();
                for (room, after) in cursors {
                    // A cursor past the end is clamped, so nothing new is skipped.
                    let after = match self.core.last_seq(self.user, room).await {
                        Ok(Some(last)) => after.min(last),
                        Ok(None) => continue,
                        Err(err) => {
                            tracing::warn!(%err, "sync failed");
                            let frame = ServerFrame::Error {
                                id,
                                client_msg_id: None,
                                code: ErrorCode::Internal,
                                message: "sync failed; retry".into(),
                                retry_after_ms: None,
                            };
                            self.started = true;
                            return send_frame(sink, &frame).await;
                        }
                    };
                    self.replay(room, after, i64::MAX, sink).await?;
                    let last = self.last_sent.entry(room).or_insert(after);
                    rooms.insert(room, *last);
                }
                self.started = true;
                send_frame(sink, &ServerFrame::Synced { id, rooms }).await
            }
        }
    }

    /// Sends one live item and whatever else is queued, up to a batch.
    async fn live_batch(
        &mut self,
        first: LiveFrame,
        live: &mut mpsc::Receiver<LiveFrame>,
        sink: &mut Sink,
    ) -> Result<(), Gone> {
        self.live(first, sink).await?;
        for _ in 1..MAX_BATCH {
            match live.try_recv() {
                Ok(item) => self.live(item, sink).await?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    async fn live(&mut self, item: LiveFrame, sink: &mut Sink) -> Result<(), Gone> {
        if let Some((room, seq)) = item.room_seq {
            match self.last_sent.get(&room).copied() {
                Some(last) if seq <= last => return Ok(()),
                Some(last) if seq > last + 1 => self.replay(room, last, seq, sink).await?,
                _ => {}
            }
            self.last_sent.insert(room, seq);
        }
        if item.skip_for == Some(self.handle.id) {
            // This connection sent it and has the ack; it only needed the seq.
            return Ok(());
        }
        sink.feed(WsMessage::Text(item.text))
            .await
            .map_err(|_| Gone)
    }

    /// Sends the room's stored messages with `after < seq < before`, in order.
    async fn replay(
        &mut self,
        room: Uuid,
        mut after: i64,
        before: i64,
        sink: &mut Sink,
    ) -> Result<(), Gone> {
        loop {
            let page = match self
                .core
                .replay(self.user, room, after, before, REPLAY_PAGE)
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(%err, %room, "replay failed");
                    return Ok(());
                }
            };
            let full = page.len() == REPLAY_PAGE as usize;
            for message in page {
                after = message.seq;
                let last = self.last_sent.entry(room).or_insert(0);
                *last = (*last).max(message.seq);
                send_frame(sink, &ServerFrame::Message { message }).await?;
            }
            sink.flush().await.map_err(|_| Gone)?;
            if !full {
                return Ok(());
            }
        }
    }
}

/// Queues a frame on the socket; the writer loop flushes.
async fn send_frame(sink: &mut Sink, frame: &ServerFrame) -> Result<(), Gone> {
    let text = Utf8Bytes::try_from(encode(frame)).map_err(|_| Gone)?;
    sink.feed(WsMessage::Text(text)).await.map_err(|_| Gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_decoded_or_explained() {
        let ping = decode_frame(r#"{"type":"ping","id":"a"}"#, 1024).expect("ping");
        assert!(matches!(ping.frame, ClientFrame::Ping));
        assert_eq!(ping.id.as_deref(), Some("a"));

        let big = decode_frame(&" ".repeat(1025), 1024).expect_err("too big");
        assert_eq!(big.code, ErrorCode::PayloadTooLarge);

        let numeric = decode_frame(r#"{"type":7,"id":"n"}"#, 1024).expect_err("numeric type");
        assert_eq!(numeric.code, ErrorCode::BadRequest);
        assert_eq!(numeric.id.as_deref(), Some("n"));

        let unknown = decode_frame(r#"{"type":"dance","id":3}"#, 1024).expect_err("unknown");
        assert_eq!(unknown.code, ErrorCode::UnknownFrame);
        assert_eq!(unknown.id.as_deref(), Some("3"));

        let long_id = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(65));
        let long = decode_frame(&long_id, 1024).expect_err("long id");
        assert_eq!((long.id, long.code), (None, ErrorCode::BadRequest));

        let junk = decode_frame("{not json", 1024).expect_err("junk");
        assert_eq!((junk.id, junk.code), (None, ErrorCode::BadRequest));
    }
}
