//! Changes of membership: adding people to a group, removing them or leaving, roles, and
//! accepting or declining a request or an invitation.

use palaver_proto::{LeftReason, MemberState, Role, Room, RoomEventKind, ServerFrame};
use uuid::Uuid;

use super::own_row;
use super::view::summary_of;
use crate::bus::Audience;
use crate::cache::RateBucket;
use crate::clock::now_ms;
use crate::service::conversation::GroupChange;
use crate::service::{Core, Identity, NOT_ACCEPTED, ServiceError, ServiceResult};
use crate::store::{MemberRow, NewMember, RoomRow};

/// Whether `actor` may manage members of a group, and change the given member.
pub(in crate::service) fn outranks(actor: Role, target: Role) -> bool {
    matches!(
        (actor, target),
        (Role::Owner, Role::Admin | Role::Member) | (Role::Admin, Role::Member)
    )
}

impl Core {
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
        if !self.store.banned_among(room, &ids).await?.is_empty() {
            return Err(ServiceError::Banned);
        }
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
            let change = GroupChange {
                kind: RoomEventKind::MembersAdded,
                users: &added,
                ..GroupChange::of(RoomEventKind::MembersAdded)
            };
            self.group_event(room, true, who.user_id, change).await;
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
        self.remove_member_unlimited(who, room, target).await
    }

    /// `remove_member` without the rate limit, for the server's own removals (an account
    /// being deleted leaves every room at once).
    pub(in crate::service) async fn remove_member_unlimited(
        &self,
        who: Identity,
        room: Uuid,
        target: Uuid,
    ) -> ServiceResult<()> {
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
    pub(in crate::service) async fn drop_member(
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
        let reason = match action {
            "room.decline" => LeftReason::Declined,
            "room.leave" => LeftReason::Left,
            _ => LeftReason::Removed,
        };
        // A declined invitation was never a membership the room saw.
        let event = match reason {
            LeftReason::Left => Some((RoomEventKind::MemberLeft, Vec::new())),
            LeftReason::Removed => Some((RoomEventKind::MemberRemoved, vec![target])),
            LeftReason::Declined => None,
        };
        if let Some((kind, users)) = event {
            let change = GroupChange {
                users: &users,
                ..GroupChange::of(kind)
            };
            self.group_event(room, row.is_group, actor, change).await;
        }
        let frame = ServerFrame::RoomLeft {
            room_id: room,
            reason: Some(reason),
            by: (reason == LeftReason::Removed).then_some(actor),
        };
        self.deliver(Audience::Users(vec![target]), &frame, None)
            .await?;
        self.announce_room(room).await?;
        Ok(())
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
        let change = GroupChange {
            kind: RoomEventKind::RoleChanged,
            users: &[target],
            role: Some(new_role),
            ..GroupChange::of(RoomEventKind::RoleChanged)
        };
        self.group_event(room, true, who.user_id, change).await;
        self.announce_room(room).await?;
        self.room(who, room).await
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
                let change = GroupChange::of(RoomEventKind::Joined);
                self.group_event(room, row.is_group, who.user_id, change)
                    .await;
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
