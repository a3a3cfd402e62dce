//! 1:1 rooms (exactly one per pair) and groups with owner / admin / member roles, and
//! consent: someone the caller does not know (shares no room with, both joined) is
//! invited, not added, and a 1:1 room from a stranger is a request until its invitee
//! accepts it.

use palaver_proto::{CreateRoomRequest, MemberState, Role, Room, RoomMember, ServerFrame};
use uuid::Uuid;

use super::{Core, Identity, ServiceError, ServiceResult};
use crate::bus::{Audience, Event};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::domain::room_name;
use crate::store::{Markers, MemberRow, NewMember, NewRoom, RoomRow, SeqOrder};

/// A member as a viewer sees them; `hidden` hides their receipt markers (0): from an
/// invited viewer, and between two people one of whom blocked the other.
fn member_view(m: &MemberRow, hidden: bool) -> RoomMember {
    RoomMember {
        user_id: m.user_id,
        username: m.username.clone(),
        display_name: m.display_name.clone(),
        role: m.role,
        delivered_seq: if hidden { 0 } else { m.delivered_seq },
        read_seq: if hidden { 0 } else { m.read_seq },
        joined_at: to_time(m.joined_at_ms),
        state: m.state,
    }
}

/// The room's receipt summary: the lowest markers over its joined members, or over
/// everyone while fewer than two have joined (the SQL `SUMMARY` in store/sql/receipts.rs
/// says the same: see there why).
fn summary_of(members: &[MemberRow]) -> Markers {
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

/// The caller's row among the members.
fn own_row(members: &[MemberRow], user: Uuid) -> Option<&MemberRow> {
    members.iter().find(|m| m.user_id == user)
}

/// What an invited member is told when they try what only joined members may do.
pub(super) const NOT_ACCEPTED: &str = "accept the invitation first";

/// Whether `actor` may manage members of a group, and change the given member.
fn outranks(actor: Role, target: Role) -> bool {
    matches!(
        (actor, target),
        (Role::Owner, Role::Admin | Role::Member) | (Role::Admin, Role::Member)
    )
}

impl Core {
    /// Whether `viewer` (in `viewer_state`) is shown `member`'s receipt markers as 0:
    /// receipts flow only between joined members, and not between two people one of
    /// whom blocked the other.
    fn markers_hidden(&self, viewer: Uuid, viewer_state: MemberState, member: Uuid) -> bool {
        member != viewer
            && (viewer_state == MemberState::Invited
                || self.membership.blocked_either(viewer, member))
    }

    /// The room as `viewer` sees it: a 1:1 room is named after the other person; an
    /// invited viewer sees their state, who invited them, and no one's receipts.
    fn room_view(&self, row: &RoomRow, members: &[MemberRow], viewer: Uuid) -> Room {
        let me = own_row(members, viewer);
        let state = me.map_or(MemberState::Joined, |m| m.state);
        let invited_by = me
            .filter(|m| m.state == MemberState::Invited)
            .and_then(|m| m.invited_by);
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
            members: members
                .iter()
                .map(|m| member_view(m, self.markers_hidden(viewer, state, m.user_id)))
                .collect(),
            last_message: None,
            unread_count: 0,
            state,
            invited_by,
        }
    }

    /// The row, with a 1:1 room the other person left named after them (a 1:1 room has no
    /// name of its own; while both are in it, `room_view` names it after the other).
    async fn named(&self, mut row: RoomRow, members: &[MemberRow]) -> ServiceResult<RoomRow> {
        if row.is_group || members.len() > 1 {
            return Ok(row);
        }
        let pair = row.direct_key.as_deref().and_then(|k| k.split_once(':'));
        let ids: Vec<Uuid> = pair
            .into_iter()
            .flat_map(|(a, b)| [a, b])
            .filter_map(|id| id.parse().ok())
            .filter(|id| !members.iter().any(|m| m.user_id == *id))
            .collect();
        if let Some(other) = ids.first()
            && let Some(user) = self.store.user(*other).await?
        {
            row.name = user.display_name;
        }
        Ok(row)
    }

    /// The room and the caller's role, if the caller is a member (joined or invited).
    async fn any_member_room(
        &self,
        who: Identity,
        room: Uuid,
    ) -> ServiceResult<(RoomRow, Vec<MemberRow>, Role, MemberState)> {
        if !self.membership.is_member(room, who.user_id) {
            return Err(ServiceError::RoomNotFound);
        }
        let row = self
            .store
            .room(room)
            .await?
            .ok_or(ServiceError::RoomNotFound)?;
        let members = self.store.members(room).await?;
        let (role, state) = own_row(&members, who.user_id)
            .map(|m| (m.role, m.state))
            .ok_or(ServiceError::RoomNotFound)?;
        Ok((row, members, role, state))
    }

    /// The room and the caller's role, if the caller is a joined member; an invited one
    /// is refused until they accept.
    async fn member_room(
        &self,
        who: Identity,
        room: Uuid,
    ) -> ServiceResult<(RoomRow, Vec<MemberRow>, Role)> {
        let (row, members, role, state) = self.any_member_room(who, room).await?;
        if state == MemberState::Invited {
            return Err(ServiceError::Forbidden(NOT_ACCEPTED));
        }
        Ok((row, members, role))
    }

    /// Tells every member about the room as it is now (an invitee hears of their request
    /// or invitation this way).
    async fn announce_room(&self, room: Uuid) -> ServiceResult<()> {
        let Some(row) = self.store.room(room).await? else {
            return Ok(());
        };
        let members = self.store.members(room).await?;
        let row = self.named(row, &members).await?;
        if row.is_group {
            // One view serves every joined member of a group: serialize once. Each
            // invited member's view is their own (their state and inviter).
            let (joined, invited): (Vec<&MemberRow>, Vec<&MemberRow>) =
                members.iter().partition(|m| m.state == MemberState::Joined);
            if let Some(first) = joined.first() {
                let frame = ServerFrame::RoomUpdated {
                    room: self.room_view(&row, &members, first.user_id),
                };
                let users = joined.iter().map(|m| m.user_id).collect();
                self.deliver(Audience::Users(users), &frame, None).await?;
            }
            for m in invited {
                let frame = ServerFrame::RoomUpdated {
                    room: self.room_view(&row, &members, m.user_id),
                };
                self.deliver(Audience::Users(vec![m.user_id]), &frame, None)
                    .await?;
            }
            Ok(())
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

    /// Updates the routing table here and on every other node: `joined` are members
    /// now, `invited` invited now, `removed` gone.
    async fn membership_changed(
        &self,
        room: Uuid,
        direct: bool,
        joined: Vec<Uuid>,
        invited: Vec<Uuid>,
        removed: Vec<Uuid>,
    ) -> ServiceResult<()> {
        self.membership
            .apply(room, direct, &joined, &invited, &removed);
        self.bus
            .publish(Event::Membership {
                origin: self.node_id,
                room_id: room,
                direct,
                added: joined,
                invited,
                removed,
            })
            .await?;
        Ok(())
    }

    /// How `inviter` brings `user` into a room: refused if either blocked the other;
    /// joined at once if they know each other; otherwise invited, to accept or decline.
    fn consent_for(&self, inviter: Uuid, user: Uuid, role: Role) -> ServiceResult<NewMember> {
        if self.membership.blocked_either(inviter, user) {
            return Err(ServiceError::Blocked);
        }
        Ok(NewMember {
            user_id: user,
            role,
            invited_by: (!self.membership.knows(inviter, user)).then_some(inviter),
        })
    }

    /// Announces a change of members to the routing table, split by state.
    async fn members_added(
        &self,
        room: Uuid,
        direct: bool,
        new: &[NewMember],
        added: &[Uuid],
    ) -> ServiceResult<()> {
        let (invited, joined): (Vec<&NewMember>, Vec<&NewMember>) = new
            .iter()
            .filter(|m| added.contains(&m.user_id))
            .partition(|m| m.invited_by.is_some());
        let ids = |list: Vec<&NewMember>| list.iter().map(|m| m.user_id).collect();
        self.membership_changed(room, direct, ids(joined), ids(invited), Vec::new())
            .await
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
    /// the room and whether it was created now. Someone the caller does not know is
    /// invited (a 1:1 room with them is a request); someone who blocked the caller, or
    /// whom the caller blocked, is refused with `blocked`. Opening a 1:1 room one of the
    /// two left brings them back into the same room, history kept, as a new request.
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
            let mut members = vec![NewMember::joined(who.user_id, Role::Owner)];
            for id in &others {
                members.push(self.consent_for(who.user_id, *id, Role::Member)?);
            }
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
            let them = self.consent_for(who.user_id, other, Role::Member)?;
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
                members: vec![NewMember::joined(who.user_id, Role::Member), them],
                now_ms: now,
            }
        };
        let (room_id, created) = self.store.create_room(&new).await?;
        if created {
            let ids: Vec<Uuid> = new.members.iter().map(|m| m.user_id).collect();
            self.members_added(room_id, !new.is_group, &new.members, &ids)
                .await?;
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
            let stored = self.store.members(room_id).await?;
            if own_row(&stored, who.user_id).is_some_and(|m| m.state == MemberState::Invited) {
                // Opening the 1:1 room one was asked into is answering yes.
                return Ok((self.accept(who, room_id).await?, false));
            }
            let (joined, invited): (Vec<&MemberRow>, Vec<&MemberRow>) =
                stored.iter().partition(|m| m.state == MemberState::Joined);
            let ids = |list: Vec<&MemberRow>| list.iter().map(|m| m.user_id).collect::<Vec<_>>();
            self.membership
                .apply(room_id, true, &ids(joined), &ids(invited), &[]);
            // One of the two left: the room opens again. The caller comes back joined;
            // the other person comes back as `new` says (invited, unless known).
            let missing: Vec<NewMember> = new
                .members
                .iter()
                .filter(|m| !stored.iter().any(|s| s.user_id == m.user_id))
                .copied()
                .collect();
            if !missing.is_empty() {
                let added = self.store.add_members(room_id, &missing, now).await?;
                if !added.is_empty() {
                    self.members_added(room_id, true, &missing, &added).await?;
                    self.audit(
                        Some(who.user_id),
                        "room.reopen",
                        Some(room_id.to_string()),
                        Some(format!("{added:?}")),
                    )
                    .await;
                    self.announce_room(room_id).await?;
                }
            }
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
        // The statuses an invited member sees are the room's, as any reader of its
        // history sees them; only per-member markers are hidden from them.
        let mine = self.store.rooms_of(who.user_id, only).await?;
        let mut out = Vec::with_capacity(mine.len());
        for my in mine {
            let members = self.store.members(my.room.id).await?;
            let named = self.named(my.room.clone(), &members).await?;
            let mut room = self.room_view(&named, &members, who.user_id);
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

    /// Adds people to a group (owner or admin): people the caller knows join as members,
    /// anyone else is invited; someone blocked either way refuses the whole request.
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
        let new = ids
            .iter()
            .map(|id| self.consent_for(who.user_id, *id, Role::Member))
            .collect::<ServiceResult<Vec<NewMember>>>()?;
        let added = self.store.add_members(room, &new, now_ms()).await?;
        if !added.is_empty() {
            self.audit(
                Some(who.user_id),
                "room.member_add",
                Some(room.to_string()),
                Some(format!("{added:?}")),
            )
            .await;
            self.members_added(room, false, &new, &added).await?;
            self.announce_room(room).await?;
        }
        self.room(who, room).await
    }

    /// Removes a member (an owner removes admins and members, an admin removes members),
    /// or, when the target is the caller, leaves (an invited caller declines). Takes
    /// effect at once: the removed member's open sockets get `room.left` and nothing more
    /// from the room. Either person may leave a 1:1 room, which closes it for the other
    /// (`direct_closed`) until one of them opens it again; nobody is removed from one.
    pub async fn remove_member(
        &self,
        who: Identity,
        room: Uuid,
        target: Uuid,
    ) -> ServiceResult<()> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let (row, members, role, state) = self.any_member_room(who, room).await?;
        if target != who.user_id && state == MemberState::Invited {
            return Err(ServiceError::Forbidden(NOT_ACCEPTED));
        }
        if !row.is_group && target != who.user_id {
            return Err(ServiceError::Forbidden(
                "nobody can be removed from a 1:1 room; it can be left",
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
        // An owner who leaves hands the group to the longest-standing joined admin, else
        // joined member (an invitation is not a membership to hand a group to).
        let heir = if leaving && role == Role::Owner {
            members
                .iter()
                .filter(|m| m.user_id != who.user_id)
                .min_by_key(|m| {
                    (
                        m.state != MemberState::Joined,
                        m.role != Role::Admin,
                        m.joined_at_ms,
                    )
                })
                .map(|m| m.user_id)
        } else {
            None
        };
        let action = match (leaving, state) {
            (true, MemberState::Invited) => "room.decline",
            (true, MemberState::Joined) => "room.leave",
            (false, _) => "room.member_remove",
        };
        self.drop_member(who.user_id, &row, &members, target, heir, action)
            .await
    }

    /// Takes `target` out of the room (the caller checked who may), hands it to `heir`
    /// if the owner leaves, and tells everyone: the target gets `room.left`, the others
    /// `room.updated`, and `receipt.summary` if the target held the summary back.
    pub(super) async fn drop_member(
        &self,
        actor: Uuid,
        row: &RoomRow,
        members: &[MemberRow],
        target: Uuid,
        heir: Option<Uuid>,
        action: &'static str,
    ) -> ServiceResult<()> {
        let room = row.id;
        self.store.remove_member(room, target, heir).await?;
        self.membership_changed(room, !row.is_group, Vec::new(), Vec::new(), vec![target])
            .await?;
        if let Some(heir) = heir {
            let detail = Some(format!("{heir} owner"));
            self.audit(
                Some(actor),
                "room.role_change",
                Some(room.to_string()),
                detail,
            )
            .await;
        }
        // The removed member may have held the room-wide minimum back.
        let before = summary_of(members);
        let after = self.store.summary(room).await?;
        if after != before {
            self.announce_summary(room, after).await?;
        }
        self.audit(
            Some(actor),
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
            members: members
                .iter()
                .map(|m| {
                    let hidden = self.markers_hidden(who.user_id, MemberState::Joined, m.user_id);
                    member_view(m, hidden)
                })
                .collect(),
        })
    }

    /// Accepts a request or an invitation: the caller joins, and from now on presence,
    /// typing and receipts flow between them and the room's other joined members.
    /// Accepting a room one has joined already changes nothing.
    pub async fn accept(&self, who: Identity, room: Uuid) -> ServiceResult<Room> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let (row, members, _, state) = self.any_member_room(who, room).await?;
        if state == MemberState::Invited {
            // The inviter may have been blocked since (which declines the invitation, but
            // a block on another node may race this request).
            let inviter = own_row(&members, who.user_id).and_then(|m| m.invited_by);
            if inviter.is_some_and(|by| self.membership.blocked_either(who.user_id, by)) {
                return Err(ServiceError::Blocked);
            }
            if self.store.accept_invitation(room, who.user_id).await? {
                self.membership_changed(
                    room,
                    !row.is_group,
                    vec![who.user_id],
                    Vec::new(),
                    Vec::new(),
                )
                .await?;
                self.audit(
                    Some(who.user_id),
                    "room.accept",
                    Some(room.to_string()),
                    None,
                )
                .await;
                // Everyone's markers now count the new member (or stop counting only them).
                let before = summary_of(&members);
                let after = self.store.summary(room).await?;
                if after != before {
                    self.announce_summary(room, after).await?;
                }
                self.announce_room(room).await?;
            }
        }
        self.room(who, room).await
    }

    /// Declines a request or an invitation: the caller leaves the room, which disappears
    /// for them. Only an invited member declines; a joined one leaves.
    pub async fn decline(&self, who: Identity, room: Uuid) -> ServiceResult<()> {
        if self.membership.state(room, who.user_id) == Some(MemberState::Joined) {
            return Err(ServiceError::Conflict(
                "there is no invitation to decline; leave the room instead",
            ));
        }
        self.remove_member(who, room, who.user_id).await
    }
}
