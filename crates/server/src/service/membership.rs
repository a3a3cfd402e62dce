//! The in-memory routing table: who is in which room. Fan-out reads it for every
//! message, so it never touches the database; every membership change updates it in the
//! same request that stored the change, before anything more is delivered.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;

#[derive(Default)]
struct Tables {
    /// Room → members. Shared slices, so fan-out iterates without holding the lock.
    rooms: HashMap<Uuid, Arc<[Uuid]>>,
    /// User → rooms, for presence (who shares a room with whom).
    users: HashMap<Uuid, HashSet<Uuid>>,
}

/// Room membership, in memory.
#[derive(Default)]
pub struct Membership {
    tables: RwLock<Tables>,
}

impl Membership {
    /// Replaces the table with the given (room, user) pairs.
    pub fn load(&self, pairs: Vec<(Uuid, Uuid)>) {
        let mut rooms: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        let mut users: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
        for (room, user) in pairs {
            rooms.entry(room).or_default().push(user);
            users.entry(user).or_default().insert(room);
        }
        let mut t = self.tables.write();
        t.rooms = rooms.into_iter().map(|(k, v)| (k, Arc::from(v))).collect();
        t.users = users;
    }

    /// Applies a change; adding a present member or removing an absent one does nothing.
    pub fn apply(&self, room: Uuid, added: &[Uuid], removed: &[Uuid]) {
        let mut t = self.tables.write();
        let mut members: Vec<Uuid> = t.rooms.get(&room).map(|m| m.to_vec()).unwrap_or_default();
        for user in added {
            if !members.contains(user) {
                members.push(*user);
            }
            t.users.entry(*user).or_default().insert(room);
        }
        members.retain(|m| !removed.contains(m));
        for user in removed {
            if let Some(rooms) = t.users.get_mut(user) {
                rooms.remove(&room);
                if rooms.is_empty() {
                    t.users.remove(user);
                }
            }
        }
        t.rooms.insert(room, Arc::from(members));
    }

    /// The room's members, if it has any.
    pub fn members(&self, room: Uuid) -> Option<Arc<[Uuid]>> {
        self.tables.read().rooms.get(&room).cloned()
    }

    /// Whether the user is in the room.
    pub fn is_member(&self, room: Uuid, user: Uuid) -> bool {
        self.tables
            .read()
            .users
            .get(&user)
            .is_some_and(|rooms| rooms.contains(&room))
    }

    /// The user's rooms.
    pub fn rooms_of(&self, user: Uuid) -> Vec<Uuid> {
        self.tables
            .read()
            .users
            .get(&user)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Everyone who shares at least one room with the user, not counting the user.
    pub fn peers_of(&self, user: Uuid) -> HashSet<Uuid> {
        let t = self.tables.read();
        let mut peers = HashSet::new();
        if let Some(rooms) = t.users.get(&user) {
            for room in rooms {
                if let Some(members) = t.rooms.get(room) {
                    peers.extend(members.iter().copied().filter(|m| *m != user));
                }
            }
        }
        peers
    }

    /// Whether two users share a room.
    pub fn share_room(&self, a: Uuid, b: Uuid) -> bool {
        let t = self.tables.read();
        match (t.users.get(&a), t.users.get(&b)) {
            (Some(ra), Some(rb)) => ra.intersection(rb).next().is_some(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_remove_and_peers() {
        let m = Membership::default();
        let (r1, r2) = (Uuid::now_v7(), Uuid::now_v7());
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        m.load(vec![(r1, a), (r1, b)]);
        m.apply(r2, &[a, c], &[]);
        assert!(m.is_member(r2, c));
        assert_eq!(m.peers_of(a).len(), 2);
        assert!(m.share_room(b, a) && !m.share_room(b, c));
        m.apply(r2, &[], &[c]);
        assert!(!m.is_member(r2, c));
        assert!(m.peers_of(c).is_empty());
        assert_eq!(m.members(r2).map(|x| x.len()), Some(1));
        m.apply(r2, &[a], &[]);
        assert_eq!(
            m.members(r2).map(|x| x.len()),
            Some(1),
            "adding twice is a no-op"
        );
    }
}
