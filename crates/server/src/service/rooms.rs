//! 1:1 rooms (exactly one per pair) and groups with owner / admin / member roles.

use palaver_proto::{CreateRoomRequest, Role, Room, RoomMember, ServerFrame};
use uuid::Uuid;

use super::{Core, Identity, ServiceError, ServiceResult};
use crate::bus::{Audience, Event};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::domain::room_name;
use crate::store::{Markers, MemberRow, NewRoom, RoomRow, SeqOrder};

fn member_view(m: &MemberRow) -> RoomMember {
    RoomMember {
        user_id: m.user_id,
        username: m.username.clone(),
        display_name: m.display_name.clone(),
        role: m.role,
        delivered_seq: m.delivered_seq,
        read_seq: m.read_seq,
        joined_at: to_time(m.joined_at_ms),
    }
}

/// The room's receipt summary: the lowest markers over the members.
fn summary_of(members: &[MemberRow]) -> Markers {
    let min = |f: fn(&MemberRow) -> i64| members.iter().map(f).min().unwrap_or(0);
    Markers {
        delivered_seq: min(|m| m.delivered_seq),
        read_seq: min(|m| m.read_seq),
    }
}

/// Whether `actor` may manage members of a group, and change the given member.
fn outranks(actor: Role, target: Role) -> bool {
    matches!(
        (actor, target),
        (Role::Owner, Role::Admin | Role::Member) | (Role::Admin, Role::Member)
    )
}

impl Core {
    /// The room as `viewer` sees it: a 1:1 room is named after the other person.
    fn room_view(&self, row: &RoomRow, members: &[MemberRow], viewer: Uuid) -> Room {
        let name = if row.is_group {
            row.name.clone()
        } else {
            members
                .iter()
                .find(|m| m.user_id != viewer)
                .map(|m| m.display_name.clone())
                .unwrap_or_else(|| row.name.clone())
        };
        Room {
            id: row.id,
            name,
            is_group: row.is_group,
            created_at: to_time(row.created_at_ms),
            last_seq: row.last_seq,
            members: members.iter().map(member_view).collect(),
            last_message: None,
            unread_count: 0,
        }
    }

    /// The room and the caller's role, if the caller is a member.
    async fn member_room(
        &self,
        who: Identity,
        room: Uuid,
    ) -> ServiceResult<(RoomRow, Vec<MemberRow>, Role)> {
        if !self.membership.is_member(room, who.user_id) {
            return Err(ServiceError::RoomNotFound);
        }
        let row = self
            .store
            .room(room)
            .await?
            .ok_or(ServiceError::RoomNotFound)?;
        let members = self.store.members(room).await?;
        let role = members
            .iter()
            .find(|m| m.user_id == who.user_id)
            .map(|m| m.role)
            .ok_or(ServiceError::RoomNotFound)?;
        Ok((row, members, role))
    }

    /// Tells every member about the room as it is now.
    async fn announce_room(&self, room: Uuid) -> ServiceResult<()> {
        let Some(row) = self.store.room(room).await? else {
            return Ok(());
        };
        let members = self.store.members(room).await?;
        if row.is_group {
            // One view serves every member of a group: serialize once.
            let Some(first) = members.first() else {
                return Ok(());
            };
            let frame = ServerFrame::RoomUpdated {
                room: self.room_view(&row, &members, first.user_id),
            };
            let users = members.iter().map(|m| m.user_id).collect();
            self.deliver(Audience::Users(users), &frame, None).await
        } else {
            for m in &members {
                let frame = ServerFrame::RoomUpdated {
                    room: self.room_view(&row, &members, m.user_id),
                };
                self.deliver(Audience::Users(vec![m.user_id]), &frame, None)
                    .await?;
            }
            Ok(())
        }
    }

    /// Updates the routing table here and on every other node.
    async fn membership_changed(
        &self,
        room: Uuid,
        added: Vec<Uuid>,
        removed: Vec<Uuid>,
    ) -> ServiceResult<()> {
        self.membership.apply(room, &added, &removed);
        self.bus
            .publish(Event::Membership {
                origin: self.node_id,
                room_id: room,
                added,
                removed,
            })
            .await?;
        Ok(())
    }

    async fn check_users_exist(&self, ids: &[Uuid]) -> ServiceResult<()> {
        let found = self.store.users(ids).await?;
        if found.len() != ids.len() {
            Err(ServiceError::UserNotFound)
        } else {
            Ok(())
        }
    }

    /// Creates a group, or finds or creates the 1:1 room with one other person. Returns
    /// the room and whether it was created now.
    pub async fn create_room(
        &self,
        who: Identity,
        req: CreateRoomRequest,
    ) -> ServiceResult<(Room, bool)> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let mut others: Vec<Uuid> = req
            .member_ids
            .iter()
            .copied()
            .filter(|id| *id != who.user_id)
            .collect();
        others.sort();
        others.dedup();
        let now = now_ms();
        let new = if req.is_group {
            let name = room_name(req.name.as_deref().unwrap_or(""))?;
            if others.len() + 1 > self.config.max_room_members {
                return Err(ServiceError::Validation(format!(
                    "a group has at most {} members",
                    self.config.max_room_members
                )));
            }
            self.check_users_exist(&others).await?;
            let mut members = vec![(who.user_id, Role::Owner)];
            members.extend(others.iter().map(|id| (*id, Role::Member)));
            NewRoom {
                id: Uuid::now_v7(),
                name,
                is_group: true,
                direct_key: None,
                members,
                now_ms: now,
            }
        } else {
            let [other] = others[..] else {
                return Err(ServiceError::Validation(
                    "a 1:1 room needs exactly one other memberId".into(),
                ));
            };
            self.check_users_exist(&[other]).await?;
            let (a, b) = if who.user_id < other {
                (who.user_id, other)
            } else {
                (other, who.user_id)
            };
            NewRoom {
                id: Uuid::now_v7(),
                name: String::new(),
                is_group: false,
                direct_key: Some(format!("{a}:{b}")),
                members: vec![(who.user_id, Role::Member), (other, Role::Member)],
                now_ms: now,
            }
        };
        let (room_id, created) = self.store.create_room(&new).await?;
        if created {
            let ids: Vec<Uuid> = new.members.iter().map(|(id, _)| *id).collect();
            self.membership_changed(room_id, ids, Vec::new()).await?;
            self.audit(
                Some(who.user_id),
                "room.create",
                Some(room_id.to_string()),
                Some(format!("{} members", new.members.len())),
            )
            .await;
            self.announce_room(room_id).await?;
        } else {
            // The pair's room already exists, perhaps created a moment ago by a request on
            // another node whose membership event has not reached this one yet: the store
            // is the truth, so the answer does not depend on that event's timing.
            let members: Vec<Uuid> = (self.store.members(room_id).await?)
                .iter()
                .map(|m| m.user_id)
                .collect();
            self.membership.apply(room_id, &members, &[]);
        }
        Ok((self.room(who, room_id).await?, created))
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
        let mine = self.store.rooms_of(who.user_id, only).await?;
        let mut out = Vec::with_capacity(mine.len());
        for my in mine {
            let members = self.store.members(my.room.id).await?;
            let mut room = self.room_view(&my.room, &members, who.user_id);
            room.unread_count = my.unread;
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
                self.attach_media(&mut last).await?;
                let summary = summary_of(&members);
                room.last_message = last.into_iter().next().map(|mut m| {
                    m.status = super::messages::status_for(m.seq, summary);
                    m
                });
            }
            out.push(room);
        }
        Ok(out)
    }

    /// Renames a group (owner or admin).
    pub async fn rename_room(&self, who: Identity, room: Uuid, name: &str) -> ServiceResult<Room> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let (row, _, role) = self.member_room(who, room).await?;
        if !row.is_group {
            return Err(ServiceError::Forbidden("a 1:1 room has no name to change"));
        }
        if role == Role::Member {
            return Err(ServiceError::Forbidden(
                "only an owner or admin may rename the group",
            ));
        }
        let name = room_name(name)?;
        self.store.rename_room(room, &name).await?;
        self.audit(
            Some(who.user_id),
            "room.rename",
            Some(room.to_string()),
            Some(name),
        )
        .await;
        self.announce_room(room).await?;
        self.room(who, room).await
    }

    /// Adds people to a group (owner or admin); they join as members.
    pub async fn add_members(
        &self,
        who: Identity,
        room: Uuid,
        user_ids: &[Uuid],
    ) -> ServiceResult<Room> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let (row, members, role) = self.member_room(who, room).await?;
        if !row.is_group {
            return Err(ServiceError::Forbidden(
                "a 1:1 room cannot have more members; create a group",
            ));
        }
        if role == Role::Member {
            return Err(ServiceError::Forbidden(
                "only an owner or admin may add members",
            ));
        }
        if user_ids.is_empty() {
            return Err(ServiceError::Validation("userIds must not be empty".into()));
        }
        // Only people not already in the group count against its size.
        let mut ids: Vec<Uuid> = user_ids
            .iter()
            .copied()
            .filter(|id| !members.iter().any(|m| m.user_id == *id))
            .collect();
        ids.sort();
        ids.dedup();
        if members.len() + ids.len() > self.config.max_room_members {
            return Err(ServiceError::Validation(format!(
                "a group has at most {} members",
                self.config.max_room_members
            )));
        }
        self.check_users_exist(&ids).await?;
        let new: Vec<(Uuid, Role)> = ids.iter().map(|id| (*id, Role::Member)).collect();
        let added = self.store.add_members(room, &new, now_ms()).await?;
        if !added.is_empty() {
            self.audit(
                Some(who.user_id),
                "room.member_add",
                Some(room.to_string()),
                Some(format!("{added:?}")),
            )
            .await;
            self.membership_changed(room, added, Vec::new()).await?;
            self.announce_room(room).await?;
        }
        self.room(who, room).await
    }

    /// Removes a member (an owner removes admins and members, an admin removes members),
    /// or, when the target is the caller, leaves. Takes effect at once: the removed
    /// member's open sockets get `room.left` and nothing more from the room.
    pub async fn remove_member(
        &self,
        who: Identity,
        room: Uuid,
        target: Uuid,
    ) -> ServiceResult<()> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let (row, members, role) = self.member_room(who, room).await?;
        if !row.is_group {
            return Err(ServiceError::Forbidden(
                "nobody can leave or be removed from a 1:1 room",
            ));
        }
        let target_role = members
            .iter()
            .find(|m| m.user_id == target)
            .map(|m| m.role)
            .ok_or(ServiceError::UserNotFound)?;
        let leaving = target == who.user_id;
        if !leaving && !outranks(role, target_role) {
            return Err(ServiceError::Forbidden("not allowed to remove this member"));
        }
        // An owner who leaves hands the group to the longest-standing admin, else member.
        let heir = if leaving && role == Role::Owner {
            members
                .iter()
                .filter(|m| m.user_id != who.user_id)
                .min_by_key(|m| (m.role != Role::Admin, m.joined_at_ms))
                .map(|m| m.user_id)
        } else {
            None
        };
        self.store.remove_member(room, target, heir).await?;
        self.membership_changed(room, Vec::new(), vec![target])
            .await?;
        if let Some(heir) = heir {
            let detail = Some(format!("{heir} owner"));
            self.audit(
                Some(who.user_id),
                "room.role_change",
                Some(room.to_string()),
                detail,
            )
            .await;
        }
        // The removed member may have held the room-wide minimum back.
        let before = summary_of(&members);
        let after = self.store.summary(room).await?;
        if after != before {
            self.announce_summary(room, after).await?;
        }
        let action = if leaving {
            "room.leave"
        } else {
            "room.member_remove"
        };
        self.audit(
            Some(who.user_id),
            action,
            Some(room.to_string()),
            Some(target.to_string()),
        )
        .await;
        let frame = ServerFrame::RoomLeft { room_id: room };
        self.deliver(Audience::Users(vec![target]), &frame, None)
            .await?;
        self.announce_room(room).await
    }

    /// Changes a member's role. Only the owner may; making someone owner hands the group
    /// over (the old owner becomes an admin).
    pub async fn set_role(
        &self,
        who: Identity,
        room: Uuid,
        target: Uuid,
        new_role: Role,
    ) -> ServiceResult<Room> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let (row, members, role) = self.member_room(who, room).await?;
        if !row.is_group {
            return Err(ServiceError::Forbidden("a 1:1 room has no roles"));
        }
        if role != Role::Owner {
            return Err(ServiceError::Forbidden("only the owner may change roles"));
        }
        if !members.iter().any(|m| m.user_id == target) {
            return Err(ServiceError::UserNotFound);
        }
        if target == who.user_id {
            return Err(ServiceError::Validation(
                "hand ownership to someone else instead".into(),
            ));
        }
        let mut roles = vec![(target, new_role)];
        if new_role == Role::Owner {
            roles.push((who.user_id, Role::Admin));
        }
        self.store.set_roles(room, &roles).await?;
        self.audit(
            Some(who.user_id),
            "room.role_change",
            Some(room.to_string()),
            Some(format!("{target} {}", new_role.as_str())),
        )
        .await;
        self.announce_room(room).await?;
        self.room(who, room).await
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
            members: members.iter().map(member_view).collect(),
        })
    }
}
