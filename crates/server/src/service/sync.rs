//! What `sync` replays besides new messages: every other change to a room that a client
//! missed, so that what it held plus what it is sent equals what a fresh client fetches.
//!
//! The cursor of a room is its change number (store/conversation.rs). A client that
//! applied everything up to number N is sent: each older message changed after N, as it
//! is now (`message.updated`, or `message.deleted`); `room.updated` if the room's name,
//! picture or members changed after N; the markers of each member whose markers moved at
//! or after N (`receipt`, a stamp is the room's number when they moved, which a later
//! change may share); and the room's receipt summary. Every frame is a state, not a
//! delta, so sending one twice changes nothing.

use palaver_proto::{Cursors, Message, ReceiptKind, ServerFrame};
use uuid::Uuid;

use super::rooms::view::summary_of;
use super::{Core, ServiceResult};

/// Where a room stands for `sync`.
#[derive(Debug, Clone, Copy)]
pub struct SyncPoint {
    /// The seq of its newest message.
    pub last_seq: i64,
    /// Its change number: read before anything is replayed, so nothing changed after it
    /// is lost, whatever the replay sees.
    pub version: i64,
}

/// Rooms a `sync` describes that its cursors did not name, at most.
pub const MAX_NEW_ROOMS: usize = 1000;

impl Core {
    /// The room's last seq and change number, if the user is a member.
    pub async fn sync_point(&self, user: Uuid, room: Uuid) -> ServiceResult<Option<SyncPoint>> {
        if !self.membership.is_member(room, user) {
            return Ok(None);
        }
        Ok(self.store.room(room).await?.map(|r| SyncPoint {
            last_seq: r.last_seq,
            version: r.version,
        }))
    }

    /// Messages of the room with `seq <= max_seq` changed after change number `after`,
    /// as they are now, in the order of their changes; empty if the user is no longer a
    /// member.
    pub async fn changed_since(
        &self,
        user: Uuid,
        room: Uuid,
        after: i64,
        max_seq: i64,
        limit: u32,
    ) -> ServiceResult<Vec<Message>> {
        if !self.membership.is_member(room, user) {
            return Ok(Vec::new());
        }
        let changed = self
            .store
            .changed_messages(room, after, max_seq, limit)
            .await?;
        self.with_status(room, changed).await
    }

    /// The room's own state for a client at change number `after`: `room.updated` if
    /// its name, picture or members changed since, the markers that moved, and the
    /// receipt summary.
    pub async fn room_state_since(
        &self,
        user: Uuid,
        room: Uuid,
        after: i64,
    ) -> ServiceResult<Vec<ServerFrame>> {
        let Some(row) = self.store.room(room).await? else {
            return Ok(Vec::new());
        };
        let members = self.store.members(room).await?;
        let Some(me) = members.iter().find(|m| m.user_id == user) else {
            return Ok(Vec::new());
        };
        let viewer_state = me.state;
        let mut frames = Vec::new();
        if row.state_version > after {
            let named = self.named(row, &members).await?;
            frames.push(ServerFrame::RoomUpdated {
                room: self.room_view(&named, &members, user),
            });
        }
        for m in members.iter().filter(|m| {
            m.receipt_version >= after && !self.markers_hidden(user, viewer_state, m.user_id)
        }) {
            for (status, seq) in [
                (ReceiptKind::Delivered, m.delivered_seq),
                (ReceiptKind::Read, m.read_seq),
            ] {
                frames.push(ServerFrame::Receipt {
                    room_id: room,
                    user_id: m.user_id,
                    status,
                    seq,
                });
            }
        }
        let summary = summary_of(&members);
        frames.push(ServerFrame::ReceiptSummary {
            room_id: room,
            delivered_seq: summary.delivered_seq,
            read_seq: summary.read_seq,
        });
        Ok(frames)
    }

    /// `room.updated` for each of the user's rooms that `known` does not name (rooms they
    /// joined or were invited to while away), with each room's change number.
    pub async fn rooms_not_in(
        &self,
        user: Uuid,
        known: &Cursors,
    ) -> ServiceResult<Vec<(ServerFrame, Uuid, i64)>> {
        let mut out = Vec::new();
        for room in self
            .membership
            .rooms_of(user)
            .into_iter()
            .filter(|r| !known.contains_key(r))
            .take(MAX_NEW_ROOMS)
        {
            let Some(row) = self.store.room(room).await? else {
                continue;
            };
            let version = row.version;
            let members = self.store.members(room).await?;
            if !members.iter().any(|m| m.user_id == user) {
                continue;
            }
            let named = self.named(row, &members).await?;
            let frame = ServerFrame::RoomUpdated {
                room: self.room_view(&named, &members, user),
            };
            out.push((frame, room, version));
        }
        Ok(out)
    }
}
