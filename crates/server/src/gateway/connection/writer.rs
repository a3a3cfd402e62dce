//! The writer: owns the socket's sending half, flushes what is queued in batches, replays
//! a `sync`'s rooms, drops message frames already sent and repairs gaps in a room's seq
//! from the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes};
use futures::SinkExt;
use palaver_proto::{ChangeCursors, Cursors, ErrorCode, ServerFrame, close};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};
use uuid::Uuid;

use super::{Control, Sink};
use crate::gateway::hub::{ConnHandle, LiveFrame};
use crate::service::{Core, ServiceResult, encode};

/// Live frames written per flush at most, so control replies are not starved.
const MAX_BATCH: usize = 256;

/// Messages fetched per page when replaying.
const REPLAY_PAGE: u32 = 200;

pub(super) struct Writer {
    pub(super) core: Arc<Core>,
    pub(super) user: Uuid,
    pub(super) handle: ConnHandle,
    /// The highest seq sent per room.
    pub(super) last_sent: HashMap<Uuid, i64>,
    /// Live traffic flows once the client's first frame is handled (or the grace ends).
    pub(super) started: bool,
}

/// The socket is gone.
struct Gone;

impl Writer {
    pub(super) async fn run(
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
            Control::Sync {
                id,
                cursors,
                changes,
            } => {
                let outcome = self.sync(&cursors, &changes, sink).await?;
                self.started = true;
                let frame = match outcome {
                    Ok((rooms, changes)) => ServerFrame::Synced { id, rooms, changes },
                    Err(err) => {
                        tracing::warn!(%err, "sync failed");
                        ServerFrame::Error {
                            id,
                            client_msg_id: None,
                            code: ErrorCode::Internal,
                            message: "sync failed; retry".into(),
                            retry_after_ms: None,
                        }
                    }
                };
                send_frame(sink, &frame).await
            }
        }
    }

    /// Replays what a reconnecting client missed (docs/PROTOCOL.md, "Resume"): per room
    /// of `cursors`, the newer messages in order, then, if `changes` names the room, every
    /// other change since (service/sync.rs); `room.updated` for each room of the user the
    /// cursors do not name. Answers the last seq and the change number to resume from,
    /// per room the user is in.
    async fn sync(
        &mut self,
        cursors: &Cursors,
        changes: &ChangeCursors,
        sink: &mut Sink,
    ) -> Result<ServiceResult<(Cursors, ChangeCursors)>, Gone> {
        let mut rooms = Cursors::new();
        let mut numbers = ChangeCursors::new();
        for (&room, &after) in cursors {
            let point = match self.core.sync_point(self.user, room).await {
                Ok(Some(point)) => point,
                // Not a member: `synced` leaves the room out, which tells the client it
                // is gone (a frame naming it would tell a stranger the id is a room).
                Ok(None) => continue,
                Err(err) => return Ok(Err(err)),
            };
            // A cursor past the end is clamped, so nothing new is skipped.
            let after = after.min(point.last_seq);
            self.replay(room, after, i64::MAX, sink).await?;
            if let Some(&since) = changes.get(&room)
                && let Err(err) = self.replay_changes(room, since, after, sink).await?
            {
                return Ok(Err(err));
            }
            let last = self.last_sent.entry(room).or_insert(after);
            rooms.insert(room, *last);
            numbers.insert(room, point.version);
        }
        match self.core.rooms_not_in(self.user, cursors).await {
            Ok(new) => {
                for (frame, room, version) in new {
                    send_frame(sink, &frame).await?;
                    numbers.insert(room, version);
                }
            }
            Err(err) => return Ok(Err(err)),
        }
        Ok(Ok((rooms, numbers)))
    }

    /// Sends the room's changes after change number `since` to messages up to seq
    /// `max_seq` (those after it were just sent whole), then its own state.
    async fn replay_changes(
        &mut self,
        room: Uuid,
        since: i64,
        max_seq: i64,
        sink: &mut Sink,
    ) -> Result<ServiceResult<()>, Gone> {
        let mut after = since;
        loop {
            let page = match self
                .core
                .changed_since(self.user, room, after, max_seq, REPLAY_PAGE)
                .await
            {
                Ok(page) => page,
                Err(err) => return Ok(Err(err)),
            };
            let full = page.len() == REPLAY_PAGE as usize;
            for message in page {
                after = message.version;
                let frame = if message.deleted {
                    ServerFrame::MessageDeleted { message }
                } else {
                    ServerFrame::MessageUpdated { message }
                };
                send_frame(sink, &frame).await?;
            }
            sink.flush().await.map_err(|_| Gone)?;
            if !full {
                break;
            }
        }
        let frames = match self.core.room_state_since(self.user, room, since).await {
            Ok(frames) => frames,
            Err(err) => return Ok(Err(err)),
        };
        for frame in &frames {
            send_frame(sink, frame).await?;
        }
        Ok(Ok(()))
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
