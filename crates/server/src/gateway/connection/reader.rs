//! The reader: handles the client's frames in order, pipelining sends (each comes back
//! as a future the connection's loop awaits in order) and answering everything else.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use palaver_proto::{ClientFrame, ServerFrame};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Control;
use super::frames::{BadFrame, decode_frame, echoable, service_error_frame};
use crate::service::{Core, Identity, Sent, ServiceError, ServiceResult};

/// Most rooms in one `sync`.
const MAX_SYNC_ROOMS: usize = 10_000;

/// A send waiting for its commit.
pub(super) type InFlight = futures::future::BoxFuture<'static, SendDone>;

/// A send's outcome, with what its answer must carry to be matched.
pub(super) struct SendDone {
    /// The `id` of the frame that asked for it.
    id: Option<String>,
    client_msg_id: String,
    result: ServiceResult<Sent>,
}

pub(super) struct Reader {
    pub(super) core: Arc<Core>,
    pub(super) who: Identity,
    pub(super) conn_id: Uuid,
    pub(super) ctrl: mpsc::Sender<Control>,
    pub(super) first: bool,
}

impl Reader {
    async fn reply(&self, frame: ServerFrame) {
        let _ = self.ctrl.send(Control::Frame(Box::new(frame))).await;
    }

    pub(super) async fn reply_bad_frame(&self, bad: BadFrame) {
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

    pub(super) async fn answer_send(&self, done: SendDone) {
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
    pub(super) async fn on_text(&mut self, text: Utf8Bytes) -> Option<InFlight> {
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
                no_preview,
            } => core
                .edit_message(who, message_id, &content, no_preview, Some(self.conn_id))
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
            ClientFrame::Sync { cursors, changes } => {
                if cursors.len() > MAX_SYNC_ROOMS
                    || changes.len() > MAX_SYNC_ROOMS
                    || cursors.values().chain(changes.values()).any(|n| *n < 0)
                {
                    if first {
                        let _ = self.ctrl.send(Control::Start).await;
                    }
                    Err(ServiceError::Validation(format!(
                        "sync takes at most {MAX_SYNC_ROOMS} rooms with seq and change numbers >= 0"
                    )))
                } else {
                    let sync = Control::Sync {
                        id,
                        cursors,
                        changes,
                    };
                    let _ = self.ctrl.send(sync).await;
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
