//! Store cases about several nodes (several `PostgresStore`s on one schema; PostgreSQL
//! only): gap-free concurrent appends, one message per key, no deadlocks, one refresh
//! rotation, one direct room per pair, and isolated schemas with migrations that rerun.

use std::sync::Arc;

use palaver_proto::Role;
use palaver_server::clock::now_ms;
use palaver_server::store::postgres::PostgresStore;
use palaver_server::store::{Appended, NewMessage, NewRoom, RefreshOutcome, Store};
use uuid::Uuid;

use super::{Fixture, database_url, group, joined, msg, send, seqs, user, whole_room};

pub(super) async fn concurrent_appends_from_two_nodes_are_gap_free(fx: &mut Fixture) {
    let one = fx.store.clone();
    let two = fx.node().await;
    let a = user(one.as_ref(), "alice").await;
    let b = user(one.as_ref(), "bob").await;
    let room = group(one.as_ref(), &[(a.id, Role::Owner), (b.id, Role::Member)]).await;

    // Each node sends 500 messages in batches of 25 (as a MessageWriter would, one
    // batch after another), both nodes at the same time.
    let node = |store: Arc<dyn Store>, sender: Uuid, tag: &'static str| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            for batch in 0..20 {
                let messages: Vec<NewMessage> = (0..25)
                    .map(|i| msg(room, sender, &format!("{tag}-{batch}-{i}")))
                    .collect();
                got.extend(send(store.as_ref(), messages).await);
            }
            got
        })
    };
    let (x, y) = tokio::join!(
        node(one.clone(), a.id, "one"),
        node(two.clone(), b.id, "two")
    );
    let (x, y) = (x.expect("node one"), y.expect("node two"));

    // How often the room's next seq went to the other node: a measure of how much the
    // two actually contended (informational; it depends on scheduling).
    let mut owner: Vec<(i64, bool)> = x.iter().map(|m| (m.seq, true)).collect();
    owner.extend(y.iter().map(|m| (m.seq, false)));
    owner.sort_unstable();
    let switches = owner.windows(2).filter(|w| w[0].1 != w[1].1).count();
    eprintln!("two nodes, one room: the writer changed {switches} times in 1000 seqs");

    // Within a node, seqs increase; across both, 1..=1000 each exactly once.
    assert!(x.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(y.windows(2).all(|w| w[0].seq < w[1].seq));
    let mut all: Vec<i64> = x.iter().chain(&y).map(|m| m.seq).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=1000).collect::<Vec<_>>());

    let stored = whole_room(one.as_ref(), room).await;
    assert_eq!(seqs(&stored), (1..=1000).collect::<Vec<_>>());
    assert_eq!(
        two.room(room).await.expect("room").expect("some").last_seq,
        1000
    );
    // What each node was told is what is stored.
    for m in x.iter().chain(&y) {
        assert_eq!(&stored[(m.seq - 1) as usize], m);
    }
}

pub(super) async fn same_key_on_two_nodes_is_one_message(fx: &mut Fixture) {
    let one = fx.store.clone();
    let two = fx.node().await;
    let a = user(one.as_ref(), "alice").await;
    let room = group(one.as_ref(), &[(a.id, Role::Owner)]).await;

    // The same clientMsgId (with different server-minted ids, as two nodes would mint
    // them) sent to both nodes at once, 50 times over.
    for round in 0..50 {
        let key = format!("retry-{round}");
        let (m1, m2) = (msg(room, a.id, &key), msg(room, a.id, &key));
        let (s1, s2) = (one.clone(), two.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { s1.append_messages(&[m1]).await }),
            tokio::spawn(async move { s2.append_messages(&[m2]).await }),
        );
        let r1 = r1.expect("task").expect("append").remove(0);
        let r2 = r2.expect("task").expect("append").remove(0);
        let (new, dup) = match (r1, r2) {
            (Appended::New(n), Appended::Duplicate(d))
            | (Appended::Duplicate(d), Appended::New(n)) => (n, d),
            other => panic!("round {round}: expected one New and one Duplicate, got {other:?}"),
        };
        assert_eq!(new, dup, "round {round}");
        assert_eq!(new.seq, round + 1);
    }
    let stored = whole_room(one.as_ref(), room).await;
    assert_eq!(seqs(&stored), (1..=50).collect::<Vec<_>>());
}

pub(super) async fn batches_over_shared_rooms_do_not_deadlock(fx: &mut Fixture) {
    let one = fx.store.clone();
    let two = fx.node().await;
    let a = user(one.as_ref(), "alice").await.id;
    let r1 = group(one.as_ref(), &[(a, Role::Owner)]).await;
    let r2 = group(one.as_ref(), &[(a, Role::Owner)]).await;

    // Node one's batches touch r1 then r2, node two's r2 then r1: locking in batch
    // order would deadlock (PostgreSQL would abort one); locking in id order does not.
    let node = |store: Arc<dyn Store>, first: Uuid, second: Uuid, tag: &'static str| {
        tokio::spawn(async move {
            for i in 0..50 {
                send(
                    store.as_ref(),
                    vec![
                        msg(first, a, &format!("{tag}-{i}-a")),
                        msg(second, a, &format!("{tag}-{i}-b")),
                    ],
                )
                .await;
            }
        })
    };
    let (x, y) = tokio::join!(node(one.clone(), r1, r2, "one"), node(two, r2, r1, "two"));
    x.expect("node one");
    y.expect("node two");
    for room in [r1, r2] {
        let stored = whole_room(one.as_ref(), room).await;
        assert_eq!(seqs(&stored), (1..=100).collect::<Vec<_>>());
    }
}

pub(super) async fn one_refresh_token_on_two_nodes_rotates_once(fx: &mut Fixture) {
    let one = fx.store.clone();
    let two = fx.node().await;
    let alice = user(one.as_ref(), "alice").await;
    let now = now_ms();
    // The same refresh token presented to both nodes at once, 20 times over: one
    // rotation wins, the other is reuse (and ends the session), never two rotations.
    for round in 0..20 {
        let session = Uuid::now_v7();
        let old = format!("old-{round}").into_bytes();
        one.create_session(session, alice.id, &old, now + 60_000, now)
            .await
            .expect("session");
        let (s1, s2, o1, o2) = (one.clone(), two.clone(), old.clone(), old.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move {
                s1.rotate_refresh(&o1, format!("a-{round}").as_bytes(), now + 60_000, now)
                    .await
            }),
            tokio::spawn(async move {
                s2.rotate_refresh(&o2, format!("b-{round}").as_bytes(), now + 60_000, now)
                    .await
            }),
        );
        let outcomes = [
            r1.expect("task").expect("rotate"),
            r2.expect("task").expect("rotate"),
        ];
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Rotated { .. }))
            .count();
        let reused = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Reused { .. }))
            .count();
        assert_eq!((rotated, reused), (1, 1), "round {round}: {outcomes:?}");
    }
}

pub(super) async fn one_pair_on_two_nodes_is_one_direct_room(fx: &mut Fixture) {
    let one = fx.store.clone();
    let two = fx.node().await;
    for round in 0..20 {
        let a = user(one.as_ref(), &format!("a{round}")).await.id;
        let b = user(one.as_ref(), &format!("b{round}")).await.id;
        let direct = move || NewRoom {
            id: Uuid::now_v7(),
            name: String::new(),
            is_group: false,
            direct_key: Some(format!("{}:{}", a.min(b), a.max(b))),
            members: joined(&[(a, Role::Member), (b, Role::Member)]),
            encrypted: false,
            now_ms: now_ms(),
        };
        let (n1, n2) = (direct(), direct());
        let (s1, s2) = (one.clone(), two.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { s1.create_room(&n1).await }),
            tokio::spawn(async move { s2.create_room(&n2).await }),
        );
        let (r1, r2) = (
            r1.expect("task").expect("create"),
            r2.expect("task").expect("create"),
        );
        assert_eq!(r1.0, r2.0, "round {round}: one room");
        assert!(r1.1 != r2.1, "round {round}: exactly one created it");
        assert_eq!(one.members(r1.0).await.expect("members").len(), 2);
    }
}

pub(super) async fn schemas_are_isolated_and_migrations_rerun(fx: &mut Fixture) {
    let s = fx.store.clone();
    let alice = user(s.as_ref(), "alice").await;
    // Opening the same schema again runs the migrations again: nothing to do.
    let again = fx.node().await;
    assert_eq!(
        again.user(alice.id).await.expect("user"),
        Some(alice.clone())
    );

    // Another schema sees none of it.
    let other = Fixture::postgres().await.expect("postgres is up");
    assert!(other.store.user(alice.id).await.expect("user").is_none());
    user(other.store.as_ref(), "alice").await; // no conflict across schemas
    other.finish().await;

    // A schema name is spliced into SQL, so only plain names are accepted.
    let refused = PostgresStore::connect(&database_url(), Some("x\"; DROP TABLE users; --")).await;
    assert!(refused.is_err());
}
