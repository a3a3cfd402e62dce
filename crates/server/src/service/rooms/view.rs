//! A room as one viewer sees it: its name, their state and inviter, each member's receipt
//! markers (hidden where receipts do not flow), the last message and the unread count;
//! and the room-wide receipt summary.

use palaver_proto::{MemberState, Room, RoomMember};
use uuid::Uuid;

use super::own_row;
use crate::clock::to_time;
use crate::service::{Core, Identity, ServiceError, ServiceResult};
use crate::store::{Markers, MemberRow, RoomRow, SeqOrder};

/// A member as a viewer sees them; `hidden` hides their receipt markers (0): from an
/// invited viewer, and between two people one of whom blocked the other.
fn member_view(m: &MemberRow, hidden: bool, avatar_url: Option<String>) -> RoomMember {
    RoomMember {
        user_id: m.user_id,
        username: m.username.clone(),
        display_name: m.display_name.clone(),
        role: m.role,
        delivered_seq: if hidden { 0 } else { m.delivered_seq },
        read_seq: if hidden { 0 } else { m.read_seq },
        joined_at: to_time(m.joined_at_ms),
        state: m.state,
        avatar_url,
    }
}

/// The room's receipt summary: the lowest markers over its joined members, or over
/// everyone while fewer than two have joined (the SQL `SUMMARY` in store/sql/receipts.rs
/// says the same: see there why).
pub(in crate::service) fn summary_of(members: &[MemberRow]) -> Markers {
    let joined: Vec<&MemberRow> = members
        .iter()
        .filter(|m| m.state == MemberState::Joined)
        .collect();
    let counted: Vec<&MemberRow> = if joined.len() >= 2 {
        joined
    } else {
        members.iter().collect()
    };
    let min = |f: fn(&MemberRow) -> i64| counted.iter().map(|m| f(m)).min().unwrap_or(0);
    Markers {
        delivered_seq: min(|m| m.delivered_seq),
        read_seq: min(|m| m.read_seq),
    }
}

impl Core {
    /// Whether `viewer` (in `viewer_state`) is shown `member`'s receipt markers as 0:
    /// receipts flow only between joined members, and not between two people one of
    /// whom blocked the other.
    pub(in crate::service) fn markers_hidden(
        &self,
        viewer: Uuid,
        viewer_state: MemberState,
        member: Uuid,
    ) -> bool {
        member != viewer
            && (viewer_state == MemberState::Invited
                || self.membership.blocked_either(viewer, member))
    }

    /// The room as `viewer` sees it: a 1:1 room is named and pictured after the other
    /// person; an invited viewer sees their state, who invited them, and no one's receipts.
    pub(in crate::service) fn room_view(
        &self,
        row: &RoomRow,
        members: &[MemberRow],
        viewer: Uuid,
    ) -> Room {
        let me = own_row(members, viewer);
        let state = me.map_or(MemberState::Joined, |m| m.state);
        let invited_by = me
            .filter(|m| m.state == MemberState::Invited)
            .and_then(|m| m.invited_by);
        let other = members.iter().find(|m| m.user_id != viewer);
        let (name, picture) = match other {
            Some(other) if !row.is_group => (other.display_name.clone(), other.avatar),
            _ => (row.name.clone(), row.picture),
        };
        Room {
            id: row.id,
            name,
            is_group: row.is_group,
            created_at: to_time(row.created_at_ms),
            last_seq: row.last_seq,
            members: members
                .iter()
                .map(|m| {
                    let hidden = self.markers_hidden(viewer, state, m.user_id);
                    member_view(m, hidden, self.picture_url(m.avatar))
                })
                .collect(),
            last_message: None,
            unread_count: 0,
            state,
            invited_by,
            picture_url: self.picture_url(picture),
            mention_count: 0,
            notification_level: None,
            encrypted: row.mls_epoch.is_some(),
            mls_epoch: row.mls_epoch,
        }
    }

    /// The row, with a 1:1 room the other person left named and pictured after them (a
    /// 1:1 room has no name or picture of its own; while both are in it, `room_view` takes
    /// them from the other).
    pub(in crate::service) async fn named(
        &self,
        mut row: RoomRow,
        members: &[MemberRow],
    ) -> ServiceResult<RoomRow> {
        if row.is_group || members.len() > 1 {
            return Ok(row);
        }
        // The key is "a:b" (":mls" after it for an encrypted pair's room).
        let ids: Vec<Uuid> = row
            .direct_key
            .as_deref()
            .into_iter()
            .flat_map(|k| k.split(':'))
            .filter_map(|id| id.parse().ok())
            .filter(|id| !members.iter().any(|m| m.user_id == *id))
            .collect();
        if let Some(other) = ids.first()
            && let Some(user) = self.store.user(*other).await?
        {
            row.name = user.display_name;
            row.picture = self.store.avatars(&[user.id]).await?.remove(&user.id);
        }
        Ok(row)
    }

    /// One room with its members, last message and the caller's unread count.
    pub async fn room(&self, who: Identity, room: Uuid) -> ServiceResult<Room> {
        if !self.membership.is_member(room, who.user_id) {
            return Err(ServiceError::RoomNotFound);
        }
        self.rooms_where(who, Some(room))
            .await?
            .pop()
            .ok_or(ServiceError::RoomNotFound)
    }

    /// The caller's rooms, most recently active first.
    pub async fn rooms(&self, who: Identity) -> ServiceResult<Vec<Room>> {
        self.rooms_where(who, None).await
    }

    async fn rooms_where(&self, who: Identity, only: Option<Uuid>) -> ServiceResult<Vec<Room>> {
        // The statuses an invited member sees are the room's, as any reader of its
        // history sees them; only per-member markers are hidden from them.
        let mine = self.store.rooms_of(who.user_id, only).await?;
        let mut out = Vec::with_capacity(mine.len());
        for my in mine {
            let members = self.store.members(my.room.id).await?;
            let named = self.named(my.room.clone(), &members).await?;
            let mut room = self.room_view(&named, &members, who.user_id);
            room.unread_count = my.unread;
            room.mention_count = my.mentions;
            room.notification_level = Some(my.notification_level);
            if my.room.last_seq > 0 {
                let mut last = self
                    .store
                    .messages(
                        my.room.id,
                        my.room.last_seq - 1,
                        my.room.last_seq + 1,
                        1,
                        SeqOrder::Descending,
                    )
                    .await?;
                self.complete(&mut last).await?;
                let summary = summary_of(&members);
                room.last_message = last.into_iter().next().map(|mut m| {
                    m.status = crate::service::messages::status_for(m.seq, summary);
                    m
                });
            }
            out.push(room);
        }
        Ok(out)
    }

    /// Receipt markers of every member, and the room-wide summary.
    pub async fn receipts(
        &self,
        who: Identity,
        room: Uuid,
    ) -> ServiceResult<palaver_proto::ReceiptsResponse> {
        let (_, members, _) = self.member_room(who, room).await?;
        let summary = summary_of(&members);
        Ok(palaver_proto::ReceiptsResponse {
            room_id: room,
            delivered_seq: summary.delivered_seq,
            read_seq: summary.read_seq,
            members: members
                .iter()
                .map(|m| {
                    let hidden = self.markers_hidden(who.user_id, MemberState::Joined, m.user_id);
                    member_view(m, hidden, self.picture_url(m.avatar))
                })
                .collect(),
        })
    }
}
