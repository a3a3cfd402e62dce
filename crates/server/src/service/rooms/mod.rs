//! 1:1 rooms (exactly one per pair) and groups with owner / admin / member roles, and
//! consent: someone the caller does not know (shares no room with, both joined) is
//! invited, not added, and a 1:1 room from a stranger is a request until its invitee
//! accepts it.
//!
//! The parts: `view` (a room as one viewer sees it, and the receipt summary) and
//! `members` (adding, removing, roles, accepting and declining); here, what both use
//! (who is a member, announcing a room, consent) and creating, renaming and picturing
//! rooms.

mod members;
pub(super) use members::outranks;
pub(super) mod view;

use palaver_proto::{CreateRoomRequest, MemberState, Role, Room, RoomEventKind, ServerFrame};
use uuid::Uuid;

use super::conversation::GroupChange;
use super::{Core, Identity, NOT_ACCEPTED, ServiceError, ServiceResult};
use crate::bus::{Audience, Event};
use crate::cache::RateBucket;
use crate::clock::now_ms;
use crate::domain::room_name;
use crate::store::{MemberRow, NewMember, NewRoom, RoomRow};

/// The caller's row among the members.
fn own_row(members: &[MemberRow], user: Uuid) -> Option<&MemberRow> {
    members.iter().find(|m| m.user_id == user)
}

impl Core {
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
    pub(in crate::service) async fn member_room(
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

    pub(in crate::service) async fn check_users_exist(&self, ids: &[Uuid]) -> ServiceResult<()> {
        let found = self.store.users(ids).await?;
        // A deleted account is nobody to add.
        let live = found.iter().filter(|u| !super::account::is_tombstone(u));
        if live.count() != ids.len() {
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
                encrypted: req.encrypted,
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
                // A pair has one plain and one encrypted 1:1 room.
                direct_key: Some(if req.encrypted {
                    format!("{a}:{b}:mls")
                } else {
                    format!("{a}:{b}")
                }),
                members: vec![NewMember::joined(who.user_id, Role::Member), them],
                encrypted: req.encrypted,
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
            let change = GroupChange {
                kind: RoomEventKind::Created,
                users: &others,
                name: Some(new.name.clone()),
                ..GroupChange::of(RoomEventKind::Created)
            };
            self.group_event(room_id, new.is_group, who.user_id, change)
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
            Some(name.clone()),
        )
        .await;
        let change = GroupChange {
            kind: RoomEventKind::Renamed,
            name: Some(name),
            ..GroupChange::of(RoomEventKind::Renamed)
        };
        self.group_event(room, true, who.user_id, change).await;
        self.announce_room(room).await?;
        self.room(who, room).await
    }

    /// Sets a group's picture to an image the caller uploaded, or with `None` removes it
    /// (owner or admin). A 1:1 room has none of its own (`not_a_group`): it shows the
    /// other person's avatar.
    pub async fn set_room_picture(
        &self,
        who: Identity,
        room: Uuid,
        media: Option<Uuid>,
    ) -> ServiceResult<Room> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let (row, _, role) = self.member_room(who, room).await?;
        if !row.is_group {
            return Err(ServiceError::NotAGroup(
                "a 1:1 room has no picture of its own: it shows the other person's avatar",
            ));
        }
        if role == Role::Member {
            return Err(ServiceError::Forbidden(
                "only an owner or admin may change the group's picture",
            ));
        }
        // Held until the record is named: the sweep on this node cannot take it meanwhile.
        let sweep = self.media_sweep.read().await;
        if let Some(id) = media {
            self.check_own_image(who, id).await?;
        }
        let old = self.store.set_room_picture(room, media).await?;
        drop(sweep);
        if old != media {
            self.audit(
                Some(who.user_id),
                "room.picture",
                Some(room.to_string()),
                Some(media.map_or_else(|| "removed".into(), |id| format!("media {id}"))),
            )
            .await;
            let change = GroupChange::of(RoomEventKind::PictureChanged);
            self.group_event(room, true, who.user_id, change).await;
            self.announce_room(room).await?;
        }
        self.room(who, room).await
    }
}
