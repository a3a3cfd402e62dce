//! The writer: owns the socket's sending half, flushes what is queued in batches, replays
//! a `sync`'s rooms, drops message frames already sent and repairs gaps in a room's seq
//! from the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes};
use futures::SinkExt;
use palaver_proto::{Cursors, ErrorCode, ServerFrame, close};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};
use uuid::Uuid;

use super::{Control, Sink};
use crate::gateway::hub::{ConnHandle, LiveFrame};
use crate::service::{Core, encode};

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
