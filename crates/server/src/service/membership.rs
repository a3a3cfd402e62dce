//! The in-memory routing table: who is in which room, in which state, and who blocked
//! whom. Fan-out reads it for every message, so it never touches the database; every
//! membership change and every block updates it in the same request that stored the
//! change, before anything more is delivered, and on other nodes through the bus.
//!
//! It is also the one place that says who may see whom: presence, last seen, typing and
//! receipts go only between two people who are both `joined` in a shared room and neither
//! of whom blocked the other ([`Membership::peers_of`], [`Membership::can_see`],
//! [`Membership::joined_audience`]). Messages go to every member, invited ones included
//! ([`Membership::members`]): an invitee reads what they are asked to accept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use palaver_proto::MemberState;
use parking_lot::RwLock;
use uuid::Uuid;

use crate::store::{Block, MembershipRow};

#[derive(Default)]
struct RoomEntry {
    /// Every member, invited ones included. Shared, so fan-out iterates without the lock.
    members: Arc<[Uuid]>,
    /// The members who have not accepted yet.
    invited: HashSet<Uuid>,
    /// A 1:1 room.
    direct: bool,
}

#[derive(Default)]
struct Tables {
    rooms: HashMap<Uuid, RoomEntry>,
    /// User → rooms (in any state).
    users: HashMap<Uuid, HashSet<Uuid>>,
    /// Every block, as (blocker, blocked).
    blocks: HashSet<Block>,
}

impl Tables {
    fn blocked_either(&self, a: Uuid, b: Uuid) -> bool {
        self.blocks.contains(&Block {
            blocker: a,
            blocked: b,
        }) || self.blocks.contains(&Block {
            blocker: b,
            blocked: a,
        })
    }

    fn is_joined(&self, room: Uuid, user: Uuid) -> bool {
        self.rooms
            .get(&room)
            .is_some_and(|r| r.members.contains(&user) && !r.invited.contains(&user))
    }

    /// Whether `a` and `b` are both joined in at least one room.
    fn share_joined(&self, a: Uuid, b: Uuid) -> bool {
        match (self.users.get(&a), self.users.get(&b)) {
            (Some(ra), Some(rb)) => ra
                .intersection(rb)
                .any(|room| self.is_joined(*room, a) && self.is_joined(*room, b)),
            _ => false,
        }
    }
}

/// What a 1:1 room looks like from one of its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// Not a 1:1 room.
    Group,
    /// The other person is still in it (joined or invited).
    With(Uuid),
    /// The other person left: nothing can be sent until the room is opened again.
    Alone,
}

/// Room membership and blocks, in memory.
#[derive(Default)]
pub struct Membership {
    tables: RwLock<Tables>,
}

impl Membership {
    /// Replaces the table with the stored memberships and blocks.
    pub fn load(&self, memberships: Vec<MembershipRow>, blocks: Vec<Block>) {
        let mut rooms: HashMap<Uuid, (Vec<Uuid>, HashSet<Uuid>, bool)> = HashMap::new();
        let mut users: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
        for m in memberships {
            let entry = rooms.entry(m.room_id).or_default();
            entry.0.push(m.user_id);
            if m.state == MemberState::Invited {
                entry.1.insert(m.user_id);
            }
            entry.2 = m.direct;
            users.entry(m.user_id).or_default().insert(m.room_id);
        }
        let mut t = self.tables.write();
        t.rooms = rooms
            .into_iter()
            .map(|(id, (members, invited, direct))| {
                let entry = RoomEntry {
                    members: Arc::from(members),
                    invited,
                    direct,
                };
                (id, entry)
            })
            .collect();
        t.users = users;
        t.blocks = blocks.into_iter().collect();
    }

    /// Applies a change: `joined` are members now (new, or invited before), `invited` are
    /// invited now, `removed` are gone. Repeating a change does nothing more.
    pub fn apply(
        &self,
        room: Uuid,
        direct: bool,
        joined: &[Uuid],
        invited: &[Uuid],
        removed: &[Uuid],
    ) {
        let mut t = self.tables.write();
        let entry = t.rooms.entry(room).or_default();
        entry.direct = direct;
        let mut members = entry.members.to_vec();
        for user in joined.iter().chain(invited) {
            if !members.contains(user) {
                members.push(*user);
            }
        }
        for user in joined {
            entry.invited.remove(user);
        }
        entry.invited.extend(invited.iter().copied());
        members.retain(|m| !removed.contains(m));
        for user in removed {
            entry.invited.remove(user);
        }
        entry.members = Arc::from(members);
        for user in joined.iter().chain(invited) {
            t.users.entry(*user).or_default().insert(room);
        }
        for user in removed {
            if let Some(rooms) = t.users.get_mut(user) {
                rooms.remove(&room);
                if rooms.is_empty() {
                    t.users.remove(user);
                }
            }
        }
    }

    /// Records a block (`active`) or its end.
    pub fn set_block(&self, block: Block, active: bool) {
        let mut t = self.tables.write();
        if active {
            t.blocks.insert(block);
        } else {
            t.blocks.remove(&block);
        }
    }

    /// Every member of the room, invited ones included: who gets its messages.
    pub fn members(&self, room: Uuid) -> Option<Arc<[Uuid]>> {
        self.tables
            .read()
            .rooms
            .get(&room)
            .map(|r| r.members.clone())
    }

    /// Who gets a room's typing, receipts and receipt summaries: its joined members,
    /// without anyone who blocked `from` or whom `from` blocked.
    pub fn joined_audience(&self, room: Uuid, from: Option<Uuid>) -> Vec<Uuid> {
        let t = self.tables.read();
        let Some(entry) = t.rooms.get(&room) else {
            return Vec::new();
        };
        entry
            .members
            .iter()
            .copied()
            .filter(|m| !entry.invited.contains(m))
            .filter(|m| from.is_none_or(|from| !t.blocked_either(from, *m)))
            .collect()
    }

    /// Whether the user is in the room, joined or invited.
    pub fn is_member(&self, room: Uuid, user: Uuid) -> bool {
        self.state(room, user).is_some()
    }

    /// The user's state in the room, if they are in it.
    pub fn state(&self, room: Uuid, user: Uuid) -> Option<MemberState> {
        let t = self.tables.read();
        let entry = t.rooms.get(&room)?;
        if !entry.members.contains(&user) {
            None
        } else if entry.invited.contains(&user) {
            Some(MemberState::Invited)
        } else {
            Some(MemberState::Joined)
        }
    }

    /// The room as `user` sees its other side, if it is a 1:1 room.
    pub fn direct(&self, room: Uuid, user: Uuid) -> Direct {
        let t = self.tables.read();
        match t.rooms.get(&room) {
            Some(entry) if entry.direct => entry
                .members
                .iter()
                .find(|m| **m != user)
                .map_or(Direct::Alone, |other| Direct::With(*other)),
            _ => Direct::Group,
        }
    }

    /// The user's rooms, in any state.
    pub fn rooms_of(&self, user: Uuid) -> Vec<Uuid> {
        self.tables
            .read()
            .users
            .get(&user)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Everyone who may see the user's presence and last seen: joined with them in at
    /// least one room, and not blocked either way. Not the user.
    pub fn peers_of(&self, user: Uuid) -> HashSet<Uuid> {
        let t = self.tables.read();
        let mut peers = HashSet::new();
        for room in t.users.get(&user).into_iter().flatten() {
            let Some(entry) = t.rooms.get(room) else {
                continue;
            };
            if entry.invited.contains(&user) {
                continue;
            }
            peers.extend(
                entry
                    .members
                    .iter()
                    .copied()
                    .filter(|m| *m != user && !entry.invited.contains(m)),
            );
        }
        peers.retain(|p| !t.blocked_either(user, *p));
        peers
    }

    /// Whether `viewer` may see `user`'s presence: themselves, or one of its peers.
    pub fn can_see(&self, viewer: Uuid, user: Uuid) -> bool {
        if viewer == user {
            return true;
        }
        let t = self.tables.read();
        t.share_joined(viewer, user) && !t.blocked_either(viewer, user)
    }

    /// Whether the two know each other: both joined in a shared room. Someone one knows
    /// joins a new room directly; anyone else is invited.
    pub fn knows(&self, a: Uuid, b: Uuid) -> bool {
        self.tables.read().share_joined(a, b)
    }

    /// Whether either of the two blocked the other.
    pub fn blocked_either(&self, a: Uuid, b: Uuid) -> bool {
        self.tables.read().blocked_either(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(room: Uuid, user: Uuid, state: MemberState) -> MembershipRow {
        MembershipRow {
            room_id: room,
            user_id: user,
            state,
            direct: false,
        }
    }

    #[test]
    fn add_remove_and_peers() {
        let m = Membership::default();
        let (r1, r2) = (Uuid::now_v7(), Uuid::now_v7());
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let joined = MemberState::Joined;
        m.load(vec![row(r1, a, joined), row(r1, b, joined)], Vec::new());
        m.apply(r2, false, &[a, c], &[], &[]);
        assert!(m.is_member(r2, c));
        assert_eq!(m.peers_of(a).len(), 2);
        assert!(m.can_see(b, a) && !m.can_see(b, c));
        m.apply(r2, false, &[], &[], &[c]);
        assert!(!m.is_member(r2, c));
        assert!(m.peers_of(c).is_empty());
        assert_eq!(m.members(r2).map(|x| x.len()), Some(1));
        m.apply(r2, false, &[a], &[], &[]);
        assert_eq!(
            m.members(r2).map(|x| x.len()),
            Some(1),
            "adding twice is a no-op"
        );
    }

    #[test]
    fn invited_members_get_messages_but_are_nobodys_peer_until_they_join() {
        let m = Membership::default();
        let room = Uuid::now_v7();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        m.apply(room, true, &[a], &[b], &[]);
        assert_eq!(m.members(room).map(|x| x.len()), Some(2));
        assert_eq!(m.state(room, b), Some(MemberState::Invited));
        assert!(m.peers_of(a).is_empty() && m.peers_of(b).is_empty());
        assert!(!m.can_see(a, b) && !m.can_see(b, a) && !m.knows(a, b));
        assert_eq!(m.joined_audience(room, None), vec![a]);
        assert_eq!(m.direct(room, a), Direct::With(b));
        m.apply(room, true, &[b], &[], &[]);
        assert_eq!(m.state(room, b), Some(MemberState::Joined));
        assert!(m.can_see(a, b) && m.knows(a, b));
        m.apply(room, true, &[], &[], &[b]);
        assert_eq!(m.direct(room, a), Direct::Alone);
    }

    #[test]
    fn a_block_hides_both_ways() {
        let m = Membership::default();
        let room = Uuid::now_v7();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        m.apply(room, false, &[a, b, c], &[], &[]);
        let block = Block {
            blocker: a,
            blocked: b,
        };
        m.set_block(block, true);
        assert!(!m.can_see(a, b) && !m.can_see(b, a));
        assert!(!m.peers_of(b).contains(&a) && m.peers_of(b).contains(&c));
        let mut heard = m.joined_audience(room, Some(b));
        heard.sort();
        let mut expected = vec![b, c];
        expected.sort();
        assert_eq!(heard, expected, "a does not hear b's typing");
        assert!(m.knows(a, b), "a block is not forgetting");
        m.set_block(block, false);
        assert!(m.can_see(b, a));
    }
}
