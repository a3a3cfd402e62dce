//! Store cases about rooms: one direct room per pair, groups with members and roles,
//! invitations and blocks, and the room list's order and unread counts.

use std::collections::HashSet;

use palaver_proto::{MemberState, Role};
use palaver_server::clock::now_ms;
use palaver_server::store::{
    Block, Entity, Markers, MembershipRow, NewMember, NewMessage, NewRoom, StoreError,
};
use uuid::Uuid;

use super::{Fixture, group, joined, msg, send, user};

pub(super) async fn direct_rooms_are_unique_per_pair(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let direct = |id: Uuid| NewRoom {
        id,
        name: String::new(),
        is_group: false,
        direct_key: Some(format!("{}:{}", a.id.min(b.id), a.id.max(b.id))),
        members: joined(&[(a.id, Role::Member), (b.id, Role::Member)]),
        encrypted: false,
        now_ms: now_ms(),
    };
    let first = Uuid::now_v7();
    assert_eq!(
        s.create_room(&direct(first)).await.expect("create"),
        (first, true)
    );
    assert_eq!(
        s.create_room(&direct(Uuid::now_v7())).await.expect("again"),
        (first, false)
    );
    let room = s.room(first).await.expect("room").expect("exists");
    assert!(!room.is_group);
    assert_eq!(room.last_seq, 0);
    assert_eq!(s.members(first).await.expect("members").len(), 2);
    assert!(s.room(Uuid::now_v7()).await.expect("room").is_none());
}

pub(super) async fn groups_members_and_roles(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let c = user(s, "carol").await;
    let d = user(s, "dave").await;
    let room = group(s, &[(a.id, Role::Owner), (b.id, Role::Admin)]).await;
    send(s, vec![msg(room, a.id, "1"), msg(room, b.id, "2")]).await;

    // Existing members are left alone; new ones start at the room's last seq.
    let added = s
        .add_members(
            room,
            &joined(&[(b.id, Role::Member), (c.id, Role::Member)]),
            now_ms(),
        )
        .await
        .expect("add");
    assert_eq!(added, vec![c.id]);
    let members = s.members(room).await.expect("members");
    let by_user = |id: Uuid| {
        members
            .iter()
            .find(|m| m.user_id == id)
            .cloned()
            .expect("member")
    };
    assert_eq!(by_user(b.id).role, Role::Admin);
    assert_eq!(
        (by_user(c.id).delivered_seq, by_user(c.id).read_seq),
        (2, 2)
    );
    assert_eq!(by_user(c.id).username, "carol");
    assert!(matches!(
        s.add_members(Uuid::now_v7(), &joined(&[(d.id, Role::Member)]), now_ms())
            .await,
        Err(StoreError::NotFound(Entity::Room))
    ));

    // The owner leaves; the heir becomes owner in the same transaction.
    assert!(
        s.remove_member(room, a.id, Some(b.id))
            .await
            .expect("remove")
    );
    assert!(!s.remove_member(room, a.id, None).await.expect("remove"));
    let members = s.members(room).await.expect("members");
    assert_eq!(members.len(), 2);
    assert!(
        members
            .iter()
            .any(|m| m.user_id == b.id && m.role == Role::Owner)
    );

    s.set_roles(room, &[(b.id, Role::Member), (c.id, Role::Owner)])
        .await
        .expect("roles");
    let roles: Vec<(Uuid, Role)> = s
        .members(room)
        .await
        .expect("members")
        .iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    assert!(roles.contains(&(b.id, Role::Member)) && roles.contains(&(c.id, Role::Owner)));

    s.rename_room(room, "renamed").await.expect("rename");
    assert_eq!(
        s.room(room).await.expect("room").expect("some").name,
        "renamed"
    );

    let all: HashSet<(Uuid, Uuid)> = s
        .all_memberships()
        .await
        .expect("all")
        .into_iter()
        .map(|m| (m.room_id, m.user_id))
        .collect();
    assert_eq!(all, HashSet::from([(room, b.id), (room, c.id)]));
}

pub(super) async fn invitations_and_blocks(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let c = user(s, "carol").await;
    // A 1:1 request: alice joined, bob invited by her.
    let dm = Uuid::now_v7();
    let request = NewRoom {
        id: dm,
        name: String::new(),
        is_group: false,
        direct_key: Some(format!("{}:{}", a.id.min(b.id), a.id.max(b.id))),
        members: vec![
            NewMember::joined(a.id, Role::Member),
            NewMember {
                user_id: b.id,
                role: Role::Member,
                invited_by: Some(a.id),
            },
        ],
        encrypted: false,
        now_ms: now_ms(),
    };
    assert_eq!(s.create_room(&request).await.expect("create"), (dm, true));
    let state = |members: &[palaver_server::store::MemberRow], user: Uuid| {
        let m = members.iter().find(|m| m.user_id == user).expect("member");
        (m.state, m.invited_by)
    };
    let members = s.members(dm).await.expect("members");
    assert_eq!(state(&members, a.id), (MemberState::Joined, None));
    assert_eq!(state(&members, b.id), (MemberState::Invited, Some(a.id)));
    let all = s.all_memberships().await.expect("all");
    assert!(all.contains(&MembershipRow {
        room_id: dm,
        user_id: b.id,
        state: MemberState::Invited,
        direct: true,
    }));
    assert_eq!(s.invitations_from(b.id, a.id).await.expect("inv"), vec![dm]);
    assert!(
        s.invitations_from(a.id, b.id)
            .await
            .expect("inv")
            .is_empty()
    );

    // While only alice has joined, the summary counts bob too: her message is not read.
    send(s, vec![msg(dm, a.id, "hello?")]).await;
    let zero = Markers {
        delivered_seq: 0,
        read_seq: 0,
    };
    assert_eq!(s.summary(dm).await.expect("summary"), zero);

    // Accepting once joins; twice changes nothing.
    assert!(s.accept_invitation(dm, b.id).await.expect("accept"));
    assert!(!s.accept_invitation(dm, b.id).await.expect("again"));
    let members = s.members(dm).await.expect("members");
    assert_eq!(state(&members, b.id), (MemberState::Joined, Some(a.id)));
    assert!(
        s.invitations_from(b.id, a.id)
            .await
            .expect("inv")
            .is_empty()
    );

    // In a group with two joined members, a pending invitation does not hold the summary.
    let room = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    send(s, vec![msg(room, a.id, "1"), msg(room, a.id, "2")]).await;
    let invite = NewMember {
        user_id: c.id,
        role: Role::Member,
        invited_by: Some(a.id),
    };
    assert_eq!(
        s.add_members(room, &[invite], now_ms()).await.expect("add"),
        vec![c.id]
    );
    send(s, vec![msg(room, a.id, "3")]).await;
    s.advance_markers(
        room,
        b.id,
        Markers {
            delivered_seq: 3,
            read_seq: 3,
        },
    )
    .await
    .expect("advance")
    .expect("member");
    let all_read = Markers {
        delivered_seq: 3,
        read_seq: 3,
    };
    assert_eq!(s.summary(room).await.expect("summary"), all_read);

    // Blocks: once per pair and direction, listed newest first, lifted once.
    let ab = Block {
        blocker: a.id,
        blocked: b.id,
    };
    let ac = Block {
        blocker: a.id,
        blocked: c.id,
    };
    assert!(s.block(ab, now_ms()).await.expect("block"));
    assert!(!s.block(ab, now_ms()).await.expect("again"));
    assert!(s.block(ac, now_ms() + 1).await.expect("block"));
    let listed: Vec<Uuid> = (s.blocks_of(a.id).await.expect("list"))
        .iter()
        .map(|b| b.user_id)
        .collect();
    assert_eq!(listed, vec![c.id, b.id]);
    assert!(s.blocks_of(b.id).await.expect("list").is_empty());
    let all: HashSet<Block> = s.all_blocks().await.expect("all").into_iter().collect();
    assert_eq!(all, HashSet::from([ab, ac]));
    assert!(s.unblock(ab).await.expect("unblock"));
    assert!(!s.unblock(ab).await.expect("again"));
    assert_eq!(s.all_blocks().await.expect("all"), vec![ac]);
}

pub(super) async fn room_list_order_and_unread(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let quiet = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    let busy = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    // Explicit instants, so the order does not depend on the clock's resolution.
    let at = |mut m: NewMessage, ms: i64| {
        m.now_ms = ms;
        m
    };
    let early = send(
        s,
        vec![
            at(msg(quiet, b.id, "q1"), 1_000),
            at(msg(quiet, b.id, "q2"), 1_001),
        ],
    )
    .await;
    s.delete_message(early[0].id, 1_002).await.expect("delete");
    let later = now_ms();
    send(
        s,
        (0..3)
            .map(|i| at(msg(busy, b.id, &format!("{i}")), later))
            .collect(),
    )
    .await;
    send(s, vec![at(msg(busy, a.id, "mine"), later + 1)]).await;

    let rooms = s.rooms_of(a.id, None).await.expect("rooms");
    let ids: Vec<Uuid> = rooms.iter().map(|r| r.room.id).collect();
    assert_eq!(ids, vec![busy, quiet]);
    assert_eq!(rooms[0].room.last_activity_ms, later + 1);
    assert_eq!(rooms[1].room.last_activity_ms, 1_001);
    // Sending moved a's read marker to its own message: nothing in busy is unread. In
    // quiet one of b's two messages is unread; the deleted one does not count.
    assert_eq!((rooms[0].read_seq, rooms[0].unread), (4, 0));
    assert_eq!((rooms[1].read_seq, rooms[1].unread), (0, 1));
    // For b, its own messages never count; a's one does.
    let rooms = s.rooms_of(b.id, Some(busy)).await.expect("rooms");
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].room.id, busy);
    assert_eq!(rooms[0].room.last_seq, 4);
    assert_eq!((rooms[0].read_seq, rooms[0].unread), (3, 1));
    assert!(rooms[0].room.is_group);
    assert!(
        s.rooms_of(b.id, Some(Uuid::now_v7()))
            .await
            .expect("rooms")
            .is_empty()
    );
}
