//! The `Store` contract, run on both engines.
//!
//! The two engines share one implementation of almost every statement (`store/sql/`), but
//! each case still runs on both: the same SQL meets two dialects and two drivers, and
//! the batch append, row locks, the user search and id lists are each engine's own.
//!
//! Every case runs against SQLite (the reference engine: a case that fails there is a
//! wrong case, not a wrong engine) and against a real PostgreSQL, each PostgreSQL test
//! in a fresh random schema that is dropped at the end. Cases about several nodes
//! (several `PostgresStore`s, i.e. several pools, on one schema) run on PostgreSQL only:
//! the SQLite engine is one process's store by design.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; not `PALAVER_*`, which is the server's
//! configuration and refuses unknown keys). If it does not answer, the PostgreSQL half
//! prints SKIPPED and passes, except under `CI=true`, where it fails.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use palaver_proto::{MemberState, MessageType, NotificationPreview, Role, User};
use palaver_server::clock::{now_ms, to_time};
use palaver_server::store::postgres::{PgPoolSettings, PostgresStore};
use palaver_server::store::sqlite::SqliteStore;
use palaver_server::store::{
    Appended, AuditEntry, AuditRecord, Block, Constraint, Entity, Markers, MediaRow, MembershipRow,
    NewMember, NewMessage, NewRoom, PushSubscriptionRow, RefreshOutcome, SeqOrder, Store,
    StoreError, Subscribed,
};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// One engine under test. For PostgreSQL, its own schema; `node()` opens another
/// store (another pool: another node) on the same schema.
struct Fixture {
    store: Arc<dyn Store>,
    pg: Option<PgSchema>,
    _dir: Option<tempfile::TempDir>,
}

struct PgSchema {
    url: String,
    name: String,
    nodes: Vec<Arc<PostgresStore>>,
    dropped: bool,
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("palaver.db"))
            .await
            .expect("open sqlite");
        Fixture {
            store: Arc::new(store),
            pg: None,
            _dir: Some(dir),
        }
    }

    /// A fresh schema, or `None` (after saying so) when PostgreSQL is not there.
    async fn postgres() -> Option<Fixture> {
        let url = database_url();
        let reachable =
            tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url)).await;
        match reachable {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_string(),
                };
                support::skip(
                    "the PostgreSQL store tests",
                    &format!("PostgreSQL at {url} is not reachable ({why})"),
                );
                return None;
            }
        }
        let mut pg = PgSchema {
            url,
            name: format!("palaver_test_{}", Uuid::new_v4().simple()),
            nodes: Vec::new(),
            dropped: false,
        };
        let store = pg.node().await;
        Some(Fixture {
            store,
            pg: Some(pg),
            _dir: None,
        })
    }

    /// Another node on the same schema.
    async fn node(&mut self) -> Arc<dyn Store> {
        self.pg.as_mut().expect("postgres fixture").node().await
    }

    async fn finish(mut self) {
        if let Some(pg) = self.pg.as_mut() {
            pg.drop_schema().await;
        }
    }
}

impl PgSchema {
    async fn node(&mut self) -> Arc<PostgresStore> {
        // Small pools: many tests run at once against one server (100 connections).
        let settings = PgPoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(30),
        };
        let store = PostgresStore::connect_with(&self.url, Some(&self.name), settings)
            .await
            .expect("connect to postgres");
        let store = Arc::new(store);
        self.nodes.push(store.clone());
        store
    }

    async fn drop_schema(&mut self) {
        for node in &self.nodes {
            node.close().await;
        }
        drop_schema(&self.url, &self.name).await;
        self.dropped = true;
    }
}

async fn drop_schema(url: &str, name: &str) {
    let mut conn = PgConnection::connect(url).await.expect("connect to drop");
    conn.execute(format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE").as_str())
        .await
        .expect("drop schema");
    let _ = conn.close().await;
}

impl Drop for PgSchema {
    /// A test that panicked never reached `finish`: drop its schema anyway, from a
    /// thread of its own (this may run inside the test's runtime, which cannot block).
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (url, name) = (self.url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_schema(&url, &name));
            }
        })
        .join();
    }
}

/// `name::sqlite` and `name::postgres`, both running `name(&mut Fixture)`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let mut fx = super::Fixture::sqlite().await;
                super::$name(&mut fx).await;
                fx.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(mut fx) = super::Fixture::postgres().await else { return };
                super::$name(&mut fx).await;
                fx.finish().await;
            }
        }
    )*};
}

/// `name::postgres` only: cases about several nodes.
macro_rules! postgres_only {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(mut fx) = super::Fixture::postgres().await else { return };
                super::$name(&mut fx).await;
                fx.finish().await;
            }
        }
    )*};
}

contract!(
    users_and_search,
    sessions_and_refresh,
    direct_rooms_are_unique_per_pair,
    groups_members_and_roles,
    append_assigns_seqs_and_is_idempotent,
    edit_and_delete,
    history_pages,
    markers_and_summary,
    invitations_and_blocks,
    room_list_order_and_unread,
    media_rows_and_orphans,
    media_usage_and_quota,
    push_settings_and_subscriptions,
    a_session_that_ends_takes_its_push_subscriptions,
    audit_log,
);

postgres_only!(
    concurrent_appends_from_two_nodes_are_gap_free,
    same_key_on_two_nodes_is_one_message,
    batches_over_shared_rooms_do_not_deadlock,
    one_refresh_token_on_two_nodes_rotates_once,
    one_pair_on_two_nodes_is_one_direct_room,
    schemas_are_isolated_and_migrations_rerun,
);

// --- helpers

async fn user(store: &dyn Store, name: &str) -> User {
    let user = User {
        id: Uuid::now_v7(),
        username: name.to_string(),
        display_name: format!("{name} display"),
        created_at: to_time(now_ms()),
    };
    store.create_user(&user, "hash").await.expect("create user");
    user
}

/// Members who join at once.
fn joined(members: &[(Uuid, Role)]) -> Vec<NewMember> {
    members
        .iter()
        .map(|(user, role)| NewMember::joined(*user, *role))
        .collect()
}

async fn group(store: &dyn Store, members: &[(Uuid, Role)]) -> Uuid {
    let (id, created) = store
        .create_room(&NewRoom {
            id: Uuid::now_v7(),
            name: "group".into(),
            is_group: true,
            direct_key: None,
            members: joined(members),
            now_ms: now_ms(),
        })
        .await
        .expect("create room");
    assert!(created);
    id
}

fn msg(room: Uuid, sender: Uuid, key: &str) -> NewMessage {
    NewMessage {
        id: Uuid::now_v7(),
        room_id: room,
        sender_id: sender,
        client_msg_id: key.to_string(),
        kind: MessageType::Text,
        content: format!("text of {key}"),
        media_id: None,
        media: None,
        now_ms: now_ms(),
    }
}

/// Appends one message each and returns the stored ones (all must be new).
/// Every message of a room, ascending (the rooms here hold at most a few thousand).
async fn whole_room(store: &dyn Store, room: Uuid) -> Vec<palaver_proto::Message> {
    store
        .messages(room, 0, i64::MAX, 5000, SeqOrder::Ascending)
        .await
        .expect("history")
}

async fn send(store: &dyn Store, batch: Vec<NewMessage>) -> Vec<palaver_proto::Message> {
    store
        .append_messages(&batch)
        .await
        .expect("append")
        .into_iter()
        .map(|a| match a {
            Appended::New(m) => m,
            other => panic!("expected New, got {other:?}"),
        })
        .collect()
}

fn seqs(messages: &[palaver_proto::Message]) -> Vec<i64> {
    messages.iter().map(|m| m.seq).collect()
}

/// A new session of `user`'s with one refresh token, valid until `expires_ms`.
async fn session(store: &dyn Store, user: Uuid, token: &[u8], expires_ms: i64) -> Uuid {
    let id = Uuid::now_v7();
    store
        .create_session(id, user, token, expires_ms, now_ms())
        .await
        .expect("session");
    id
}

// --- cases

async fn users_and_search(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let odd = user(s, "per%cent").await;
    s.set_display_name(bob.id, "Albert").await.expect("rename");

    let again = User {
        id: Uuid::now_v7(),
        ..alice.clone()
    };
    assert!(matches!(
        s.create_user(&again, "h").await,
        Err(StoreError::Conflict(Constraint::Username))
    ));

    assert_eq!(s.user(alice.id).await.expect("user"), Some(alice.clone()));
    assert_eq!(s.user(Uuid::now_v7()).await.expect("user"), None);
    let many = s
        .users(&[bob.id, Uuid::now_v7(), alice.id])
        .await
        .expect("users");
    assert_eq!(
        many.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![bob.id, alice.id]
    );

    let creds = s.credentials("alice").await.expect("creds").expect("some");
    assert_eq!(creds.user, alice);
    assert_eq!(creds.password_hash, "hash");
    assert!(s.credentials("nobody").await.expect("creds").is_none());

    // Username or display name, case-insensitively; ordered by username.
    let found = s.search_users("AL", 10).await.expect("search");
    assert_eq!(
        found
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        vec!["alice", "bob"]
    );
    assert_eq!(s.search_users("al", 1).await.expect("search").len(), 1);
    // Wildcards in the query match only themselves.
    let found = s.search_users("per%", 10).await.expect("search");
    assert_eq!(found.iter().map(|u| u.id).collect::<Vec<_>>(), vec![odd.id]);
    assert!(s.search_users("p_r", 10).await.expect("search").is_empty());

    assert!(matches!(
        s.set_display_name(Uuid::now_v7(), "x").await,
        Err(StoreError::NotFound(Entity::User))
    ));
    assert_eq!(s.last_seen(alice.id).await.expect("last seen"), None);
    s.set_last_seen(alice.id, 1234)
        .await
        .expect("set last seen");
    assert_eq!(s.last_seen(alice.id).await.expect("last seen"), Some(1234));
    assert_eq!(s.last_seen(Uuid::now_v7()).await.expect("last seen"), None);
    s.ping().await.expect("ping");
}

async fn sessions_and_refresh(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let alice = user(s, "alice").await;
    let now = now_ms();
    let session = Uuid::now_v7();
    s.create_session(session, alice.id, b"token-1", now + 60_000, now)
        .await
        .expect("session");
    assert_eq!(
        s.session_of_refresh(b"token-1").await.expect("lookup"),
        Some((session, alice.id))
    );
    assert_eq!(s.session_of_refresh(b"nope").await.expect("lookup"), None);

    let rotated = s
        .rotate_refresh(b"token-1", b"token-2", now + 60_000, now + 1)
        .await
        .expect("rotate");
    assert!(
        matches!(rotated, RefreshOutcome::Rotated { session_id, user_id } if session_id == session && user_id == alice.id)
    );
    // The old token again: stolen. The session ends, and its newer token dies with it.
    let reused = s
        .rotate_refresh(b"token-1", b"token-3", now + 60_000, now + 2)
        .await
        .expect("rotate");
    assert!(matches!(reused, RefreshOutcome::Reused { session_id, .. } if session_id == session));
    assert_eq!(
        s.revoked_sessions_since(now).await.expect("revoked"),
        vec![session]
    );
    assert!(matches!(
        s.rotate_refresh(b"token-2", b"token-4", now + 60_000, now + 3)
            .await
            .expect("rotate"),
        RefreshOutcome::Invalid
    ));
    assert!(matches!(
        s.rotate_refresh(b"unknown", b"token-5", now + 60_000, now + 3)
            .await
            .expect("rotate"),
        RefreshOutcome::Invalid
    ));

    // Expiry, and revocation by logout.
    let second = Uuid::now_v7();
    s.create_session(second, alice.id, b"short", now + 10, now)
        .await
        .expect("session");
    assert!(matches!(
        s.rotate_refresh(b"short", b"x", now + 60_000, now + 10)
            .await
            .expect("rotate"),
        RefreshOutcome::Invalid
    ));
    assert_eq!(
        s.revoke_session(second, now + 20).await.expect("revoke"),
        Some(alice.id)
    );
    assert_eq!(
        s.revoke_session(second, now + 21).await.expect("revoke"),
        None
    );
    assert_eq!(
        s.revoked_sessions_since(now + 15).await.expect("revoked"),
        vec![second]
    );
}

async fn direct_rooms_are_unique_per_pair(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let direct = |id: Uuid| NewRoom {
        id,
        name: String::new(),
        is_group: false,
        direct_key: Some(format!("{}:{}", a.id.min(b.id), a.id.max(b.id))),
        members: joined(&[(a.id, Role::Member), (b.id, Role::Member)]),
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

async fn groups_members_and_roles(fx: &mut Fixture) {
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

async fn append_assigns_seqs_and_is_idempotent(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let outsider = user(s, "mallory").await;
    let r1 = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    let r2 = group(s, &[(a.id, Role::Owner)]).await;

    let first = msg(r1, a.id, "k1");
    let batch = vec![
        first.clone(),
        msg(r2, a.id, "k1"), // same key, other room: another message
        msg(r1, b.id, "k1"), // same key, other sender: another message
        NewMessage {
            id: Uuid::now_v7(),
            ..first.clone()
        }, // a retry inside the batch
        msg(r1, outsider.id, "k9"),
        msg(Uuid::now_v7(), a.id, "k8"), // no such room
        msg(r1, a.id, "k2"),
    ];
    let out = s.append_messages(&batch).await.expect("append");
    let Appended::New(m1) = &out[0] else {
        panic!("{:?}", out[0])
    };
    assert_eq!(
        (m1.seq, m1.id, m1.content.as_str()),
        (1, first.id, "text of k1")
    );
    assert!(matches!(&out[1], Appended::New(m) if m.seq == 1 && m.room_id == r2));
    assert!(matches!(&out[2], Appended::New(m) if m.seq == 2 && m.sender_id == b.id));
    assert!(matches!(&out[3], Appended::Duplicate(m) if m.id == first.id && m.seq == 1));
    assert!(matches!(out[4], Appended::NotMember));
    assert!(matches!(out[5], Appended::NotMember));
    assert!(matches!(&out[6], Appended::New(m) if m.seq == 3));

    // A retry in a later batch answers with the stored message.
    let retry = NewMessage {
        id: Uuid::now_v7(),
        content: "changed".into(),
        ..first.clone()
    };
    let out = s
        .append_messages(&[retry, msg(r1, b.id, "k3")])
        .await
        .expect("append");
    assert!(
        matches!(&out[0], Appended::Duplicate(m) if m.id == first.id && m.content == "text of k1")
    );
    assert!(matches!(&out[1], Appended::New(m) if m.seq == 4));
    assert_eq!(
        s.message(first.id).await.expect("message").as_ref(),
        Some(m1)
    );
    assert!(s.append_messages(&[]).await.expect("empty").is_empty());

    // The room and the senders' markers followed.
    let room = s.room(r1).await.expect("room").expect("some");
    assert_eq!(room.last_seq, 4);
    let members = s.members(r1).await.expect("members");
    let marker = |u: Uuid| {
        let m = members.iter().find(|m| m.user_id == u).expect("member");
        (m.delivered_seq, m.read_seq)
    };
    assert_eq!(marker(a.id), (3, 3));
    assert_eq!(marker(b.id), (4, 4));
    assert_eq!(s.room(r2).await.expect("room").expect("some").last_seq, 1);
}

async fn edit_and_delete(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let room = group(s, &[(a.id, Role::Owner)]).await;
    let media = media_row(a.id, "aa", None, 0);
    assert!(s.insert_media(&media, None).await.expect("media"));
    let mut with_media = msg(room, a.id, "m");
    with_media.kind = MessageType::Image;
    with_media.media_id = Some(media.id);
    let [m] = send(s, vec![with_media]).await.try_into().expect("one");

    let edited = s.edit_message(m.id, "new text", 5_000).await.expect("edit");
    assert_eq!(edited.content, "new text");
    assert_eq!(edited.edited_at, Some(to_time(5_000)));
    assert_eq!(edited.seq, m.seq);
    assert_eq!(edited.kind, MessageType::Image);

    let deleted = s.delete_message(m.id, 6_000).await.expect("delete");
    assert!(deleted.deleted);
    assert_eq!(deleted.content, "");
    assert_eq!(deleted.media_id, None);
    assert_eq!(s.message(m.id).await.expect("read"), Some(deleted));
    assert!(matches!(
        s.edit_message(m.id, "again", 7_000).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    assert!(matches!(
        s.delete_message(m.id, 7_000).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    assert!(matches!(
        s.edit_message(Uuid::now_v7(), "x", 7_000).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    assert!(s.message(Uuid::now_v7()).await.expect("read").is_none());
}

async fn history_pages(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let room = group(s, &[(a.id, Role::Owner)]).await;
    let other = group(s, &[(a.id, Role::Owner)]).await;
    let batch: Vec<NewMessage> = (1..=10).map(|i| msg(room, a.id, &format!("{i}"))).collect();
    send(s, batch).await;
    send(s, vec![msg(other, a.id, "x")]).await;

    use SeqOrder::{Ascending, Descending};
    let page = |after, before, limit, order| s.messages(room, after, before, limit, order);
    // (after, before, limit, order) → seqs, in the order read: descending pages are the
    // highest seqs of the range, from the top down.
    let cases: [(i64, i64, u32, SeqOrder, &[i64]); 6] = [
        (0, i64::MAX, 3, Ascending, &[1, 2, 3]),
        (0, i64::MAX, 3, Descending, &[10, 9, 8]),
        (0, 5, 2, Descending, &[4, 3]),
        (7, i64::MAX, 50, Ascending, &[8, 9, 10]),
        (3, 6, 50, Descending, &[5, 4]),
        (10, i64::MAX, 5, Ascending, &[]),
    ];
    for (after, before, limit, order, want) in cases {
        let got = page(after, before, limit, order).await.expect("page");
        assert_eq!(
            seqs(&got),
            want,
            "{after} < seq < {before}, {limit} {order:?}"
        );
    }
    let all = page(0, i64::MAX, 100, Ascending).await.expect("page");
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|m| m.room_id == room));
    assert_eq!(all[0].content, "text of 1");
}

async fn invitations_and_blocks(fx: &mut Fixture) {
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

async fn markers_and_summary(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    send(
        s,
        (1..=5).map(|i| msg(room, a.id, &format!("{i}"))).collect(),
    )
    .await;
    let marks = |delivered_seq, read_seq| Markers {
        delivered_seq,
        read_seq,
    };
    assert_eq!(s.summary(room).await.expect("summary"), marks(0, 0));

    // Clamped to the room's last seq; a target of 0 leaves that marker alone.
    let moved = s
        .advance_markers(room, b.id, marks(100, 0))
        .await
        .expect("advance")
        .expect("member");
    assert_eq!((moved.markers, moved.moved), (marks(5, 0), true));
    assert_eq!(moved.summary_before, marks(0, 0));
    assert_eq!(moved.summary_after, marks(5, 0));

    // Never backwards.
    let same = s
        .advance_markers(room, b.id, marks(2, 0))
        .await
        .expect("advance")
        .expect("member");
    assert_eq!((same.markers, same.moved), (marks(5, 0), false));

    // Each marker on its own: read moves to 3, delivered stays at 5.
    let read = s
        .advance_markers(room, b.id, marks(3, 3))
        .await
        .expect("advance")
        .expect("member");
    assert_eq!((read.markers, read.moved), (marks(5, 3), true));
    assert_eq!(read.summary_before, marks(5, 0));
    assert_eq!(read.summary_after, marks(5, 3));
    assert_eq!(s.summary(room).await.expect("summary"), marks(5, 3));

    // Both at once, in one transaction.
    let c = user(s, "carol").await;
    let other = group(s, &[(a.id, Role::Owner), (c.id, Role::Member)]).await;
    send(s, vec![msg(other, a.id, "1"), msg(other, a.id, "2")]).await;
    let both = s
        .advance_markers(other, c.id, marks(2, 2))
        .await
        .expect("advance")
        .expect("member");
    assert_eq!((both.markers, both.moved), (marks(2, 2), true));
    assert_eq!(
        (both.summary_before, both.summary_after),
        (marks(0, 0), marks(2, 2))
    );

    let outsider = user(s, "dave").await;
    assert!(
        s.advance_markers(room, outsider.id, marks(1, 1))
            .await
            .expect("advance")
            .is_none()
    );
    assert!(
        s.advance_markers(Uuid::now_v7(), b.id, marks(1, 1))
            .await
            .expect("advance")
            .is_none()
    );
    assert_eq!(
        s.summary(Uuid::now_v7()).await.expect("summary"),
        marks(0, 0)
    );
}

async fn room_list_order_and_unread(fx: &mut Fixture) {
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

fn media_row(uploader: Uuid, sha: &str, thumb: Option<&str>, created_at_ms: i64) -> MediaRow {
    MediaRow {
        id: Uuid::now_v7(),
        uploader_id: uploader,
        sha256: sha.to_string(),
        kind: MessageType::Image,
        mime_type: "image/png".into(),
        size: 3_000_000_000,
        filename: "cat.png".into(),
        width: Some(4_000_000_000),
        height: Some(1),
        thumb_sha256: thumb.map(str::to_string),
        thumb_mime: thumb.map(|_| "image/webp".to_string()),
        thumb_size: thumb.map(|_| 2_000_000_000),
        created_at_ms,
    }
}

async fn media_rows_and_orphans(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let room = group(s, &[(a.id, Role::Owner)]).await;
    let used = media_row(a.id, "s-used", Some("t-used"), 100);
    let orphan = media_row(a.id, "s-orphan", None, 100);
    let recent = media_row(a.id, "s-recent", None, 10_000);
    let freed = media_row(a.id, "s-freed", None, 100);
    for m in [&used, &orphan, &recent, &freed] {
        assert!(s.insert_media(m, None).await.expect("insert"));
    }
    assert_eq!(s.media(used.id).await.expect("media"), Some(used.clone()));
    assert!(s.media(Uuid::now_v7()).await.expect("media").is_none());
    let mut many = s
        .media_many(&[used.id, orphan.id, Uuid::now_v7()])
        .await
        .expect("many");
    many.sort_by_key(|m| m.id);
    assert_eq!(many, vec![used.clone(), orphan.clone()]);

    let carry = |media: &MediaRow, key: &str| {
        let mut m = msg(room, a.id, key);
        m.kind = MessageType::Image;
        m.media_id = Some(media.id);
        m
    };
    let [_, to_delete] = send(s, vec![carry(&used, "1"), carry(&freed, "2")])
        .await
        .try_into()
        .expect("two");
    assert_eq!(s.media_rooms(used.id).await.expect("rooms"), vec![room]);
    s.delete_message(to_delete.id, 200).await.expect("delete");
    assert!(s.media_rooms(freed.id).await.expect("rooms").is_empty());

    let mut gone = s.delete_orphan_media(1_000).await.expect("orphans");
    gone.sort_by_key(|m| m.id);
    assert_eq!(gone, vec![orphan.clone(), freed.clone()]);
    assert!(s.media(orphan.id).await.expect("media").is_none());
    assert!(s.media(recent.id).await.expect("media").is_some());

    assert!(s.blob_in_use("s-used").await.expect("in use"));
    assert!(s.blob_in_use("t-used").await.expect("in use"));
    assert!(!s.blob_in_use("s-orphan").await.expect("in use"));
    s.delete_media(recent.id).await.expect("delete");
    assert!(!s.blob_in_use("s-recent").await.expect("in use"));
}

async fn media_usage_and_quota(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let sized = |uploader: Uuid, sha: &str, size: u64, thumb: Option<u64>| MediaRow {
        size,
        thumb_size: thumb,
        ..media_row(uploader, sha, thumb.map(|_| "thumb"), 100)
    };
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 0);
    // A file and its thumbnail count; the same bytes uploaded again count again.
    let first = sized(a.id, "same", 100, Some(20));
    assert!(s.insert_media(&first, Some(1_000)).await.expect("insert"));
    assert_eq!(s.media(first.id).await.expect("media"), Some(first.clone()));
    let again = sized(a.id, "same", 100, None);
    assert!(s.insert_media(&again, Some(1_000)).await.expect("insert"));
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 220);
    assert_eq!(s.media_usage(b.id).await.expect("usage"), 0);
    // Past the quota: refused, nothing stored. Up to it exactly: stored.
    let over = sized(a.id, "over", 781, None);
    assert!(!s.insert_media(&over, Some(1_000)).await.expect("insert"));
    assert!(s.media(over.id).await.expect("media").is_none());
    let exact = sized(a.id, "exact", 780, None);
    assert!(s.insert_media(&exact, Some(1_000)).await.expect("insert"));
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 1_000);
    // Without a quota anything goes; deleting gives the room back.
    assert!(s.insert_media(&over, None).await.expect("insert"));
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 1_781);
    let gone = s.delete_orphan_media(1_000).await.expect("orphans");
    assert_eq!(gone.len(), 4);
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 0);

    // Uploads side by side (on PostgreSQL, from two nodes): exactly what fits is stored.
    let other = match fx.pg {
        Some(_) => fx.node().await,
        None => fx.store.clone(),
    };
    let stores = [fx.store.clone(), other];
    let tries = (0..40).map(|i| {
        let store = stores[i % 2].clone();
        let row = sized(b.id, &format!("b{i}"), 10, Some(15));
        tokio::spawn(async move { store.insert_media(&row, Some(250)).await.expect("insert") })
    });
    let stored = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|done| *done.as_ref().expect("task"))
        .count();
    assert_eq!(stored, 10);
    assert_eq!(fx.store.media_usage(b.id).await.expect("usage"), 250);
}

async fn a_session_that_ends_takes_its_push_subscriptions(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let now = now_ms();
    let laptop = session(s, a.id, b"laptop-1", now + 60_000).await;
    let phone = session(s, a.id, b"phone-1", now + 60_000).await;
    let subscribe = |session: Uuid, endpoint: &str| PushSubscriptionRow {
        id: Uuid::now_v7(),
        user_id: a.id,
        endpoint: endpoint.into(),
        p256dh: vec![4; 65],
        auth: vec![7; 16],
        created_at_ms: now,
        session_id: Some(session),
    };
    for (session, endpoint) in [
        (laptop, "https://push.example/laptop"),
        (phone, "https://push.example/phone"),
        (phone, "https://push.example/phone-2"),
    ] {
        let sub = subscribe(session, endpoint);
        assert!(matches!(
            s.upsert_push_subscription(&sub, now).await.expect("upsert"),
            Subscribed::Created(_)
        ));
    }
    let endpoints = || async {
        let mut list: Vec<String> = s
            .push_subscriptions(a.id)
            .await
            .expect("subs")
            .into_iter()
            .map(|sub| sub.endpoint)
            .collect();
        list.sort();
        list
    };
    // Logout.
    assert_eq!(
        s.revoke_session(laptop, now).await.expect("revoke"),
        Some(a.id)
    );
    assert_eq!(
        endpoints().await,
        vec!["https://push.example/phone", "https://push.example/phone-2"]
    );
    // A reused refresh token.
    s.rotate_refresh(b"phone-1", b"phone-2", now + 60_000, now)
        .await
        .expect("rotate");
    let reused = s
        .rotate_refresh(b"phone-1", b"phone-3", now + 60_000, now)
        .await
        .expect("rotate");
    assert!(matches!(reused, RefreshOutcome::Reused { .. }));
    assert!(endpoints().await.is_empty());
}

async fn push_settings_and_subscriptions(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    let other = group(s, &[(a.id, Role::Owner)]).await;

    let now = now_ms();
    let a_session = session(s, a.id, b"a-1", now + 60_000).await;
    let sub = PushSubscriptionRow {
        id: Uuid::now_v7(),
        user_id: a.id,
        endpoint: "https://push.example/1".into(),
        p256dh: vec![4; 65],
        auth: vec![7; 16],
        created_at_ms: 10,
        session_id: Some(a_session),
    };
    let stored = match s.upsert_push_subscription(&sub, now).await.expect("upsert") {
        Subscribed::Created(stored) => stored,
        other => panic!("expected Created, got {other:?}"),
    };
    assert_eq!((stored.id, stored.session_id), (sub.id, Some(a_session)));
    // The same endpoint from b, whose session is live as a's is: a's it stays.
    let b_session = session(s, b.id, b"b-1", now + 60_000).await;
    let bs = PushSubscriptionRow {
        id: Uuid::now_v7(),
        user_id: b.id,
        p256dh: vec![5; 65],
        created_at_ms: 20,
        session_id: Some(b_session),
        ..sub.clone()
    };
    assert!(matches!(
        s.upsert_push_subscription(&bs, now).await.expect("upsert"),
        Subscribed::Taken
    ));
    assert!(s.push_subscriptions(b.id).await.expect("subs").is_empty());
    assert_eq!(
        s.push_subscriptions(a.id).await.expect("subs")[0].p256dh,
        vec![4; 65]
    );
    // From another session of a's: the row keeps its id and creation time, takes the new
    // keys, and moves to that session.
    let a_other = session(s, a.id, b"a-2", now + 60_000).await;
    let again = PushSubscriptionRow {
        id: Uuid::now_v7(),
        p256dh: vec![6; 65],
        created_at_ms: 30,
        session_id: Some(a_other),
        ..sub.clone()
    };
    let stored = match s
        .upsert_push_subscription(&again, now)
        .await
        .expect("upsert")
    {
        Subscribed::Updated(stored) => stored,
        other => panic!("expected Updated, got {other:?}"),
    };
    assert_eq!(
        (stored.id, stored.created_at_ms, stored.session_id),
        (sub.id, 10, Some(a_other))
    );
    assert_eq!(stored.p256dh, vec![6; 65]);
    // Once a_other can no longer be refreshed (its token expired), b may have it.
    let later = now + 60_001;
    let b_later = session(s, b.id, b"b-2", later + 60_000).await;
    let taken_over = PushSubscriptionRow {
        session_id: Some(b_later),
        ..bs.clone()
    };
    let stored = match s
        .upsert_push_subscription(&taken_over, later)
        .await
        .expect("upsert")
    {
        Subscribed::Updated(stored) => stored,
        other => panic!("expected Updated, got {other:?}"),
    };
    assert_eq!(
        (stored.id, stored.user_id, stored.session_id),
        (sub.id, b.id, Some(b_later))
    );
    assert!(s.push_subscriptions(a.id).await.expect("subs").is_empty());
    assert!(
        !s.delete_push_subscription(sub.id, Some(a.id))
            .await
            .expect("delete")
    );
    assert!(
        s.delete_push_subscription(sub.id, Some(b.id))
            .await
            .expect("delete")
    );
    let third = PushSubscriptionRow {
        id: Uuid::now_v7(),
        endpoint: "https://push.example/2".into(),
        ..sub.clone()
    };
    assert!(matches!(
        s.upsert_push_subscription(&third, now)
            .await
            .expect("upsert"),
        Subscribed::Created(_)
    ));
    assert!(
        s.delete_push_subscription(third.id, None)
            .await
            .expect("delete")
    );
    assert!(
        !s.delete_push_subscription(third.id, None)
            .await
            .expect("delete")
    );
    // Without a session, or from one that has ended, nothing is stored.
    let sessionless = PushSubscriptionRow {
        session_id: None,
        ..third.clone()
    };
    assert!(matches!(
        s.upsert_push_subscription(&sessionless, now).await,
        Err(StoreError::Invalid(_))
    ));
    s.revoke_session(a_other, now).await.expect("revoke");
    assert!(matches!(
        s.upsert_push_subscription(&again, now)
            .await
            .expect("upsert"),
        Subscribed::SessionEnded
    ));
    // Nor from a session of someone else's.
    let as_b = PushSubscriptionRow {
        session_id: Some(b_session),
        ..third.clone()
    };
    assert!(matches!(
        s.upsert_push_subscription(&as_b, now)
            .await
            .expect("upsert"),
        Subscribed::SessionEnded
    ));
    assert!(s.push_subscriptions(a.id).await.expect("subs").is_empty());

    assert_eq!(
        s.push_settings(a.id).await.expect("settings"),
        (NotificationPreview::Sender, vec![])
    );
    assert!(s.set_room_muted(room, a.id, true).await.expect("mute"));
    assert!(s.set_room_muted(other, a.id, true).await.expect("mute"));
    assert!(
        !s.set_room_muted(Uuid::now_v7(), a.id, true)
            .await
            .expect("mute")
    );
    s.set_notification_preview(a.id, NotificationPreview::None)
        .await
        .expect("preview");
    let (preview, mut muted) = s.push_settings(a.id).await.expect("settings");
    muted.sort();
    let mut expected = vec![room, other];
    expected.sort();
    assert_eq!((preview, muted), (NotificationPreview::None, expected));
    assert!(s.set_room_muted(other, a.id, false).await.expect("unmute"));
    assert_eq!(s.push_settings(a.id).await.expect("settings").1, vec![room]);
    assert!(matches!(
        s.push_settings(Uuid::now_v7()).await,
        Err(StoreError::NotFound(Entity::User))
    ));
    assert!(matches!(
        s.set_notification_preview(Uuid::now_v7(), NotificationPreview::Full)
            .await,
        Err(StoreError::NotFound(Entity::User))
    ));

    send(s, vec![msg(room, b.id, "1"), msg(room, b.id, "2")]).await;
    s.advance_markers(
        room,
        a.id,
        Markers {
            delivered_seq: 1,
            read_seq: 0,
        },
    )
    .await
    .expect("advance");
    let target = s
        .push_target(room, a.id)
        .await
        .expect("target")
        .expect("member");
    assert_eq!(target.delivered_seq, 1);
    assert!(target.muted);
    assert_eq!(target.preview, NotificationPreview::None);
    let target = s
        .push_target(room, b.id)
        .await
        .expect("target")
        .expect("member");
    assert_eq!((target.delivered_seq, target.muted), (2, false));
    assert_eq!(target.preview, NotificationPreview::Sender);
    assert!(s.push_target(other, b.id).await.expect("target").is_none());
}

async fn audit_log(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let actor = Uuid::now_v7();
    s.audit(
        AuditEntry {
            actor: Some(actor),
            action: "login",
            target: Some("alice".into()),
            detail: None,
        },
        100,
    )
    .await
    .expect("audit");
    s.audit(
        AuditEntry {
            actor: None,
            action: "login_failed",
            target: None,
            detail: Some("bad password".into()),
        },
        200,
    )
    .await
    .expect("audit");
    let tail = s.audit_tail(10).await.expect("tail");
    assert_eq!(
        tail,
        vec![
            AuditRecord {
                at_ms: 200,
                actor: None,
                action: "login_failed".into(),
                target: None,
            },
            AuditRecord {
                at_ms: 100,
                actor: Some(actor),
                action: "login".into(),
                target: Some("alice".into()),
            },
        ]
    );
    assert_eq!(s.audit_tail(1).await.expect("tail").len(), 1);
}

// --- several nodes (PostgreSQL only)

async fn concurrent_appends_from_two_nodes_are_gap_free(fx: &mut Fixture) {
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

async fn same_key_on_two_nodes_is_one_message(fx: &mut Fixture) {
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

async fn batches_over_shared_rooms_do_not_deadlock(fx: &mut Fixture) {
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

async fn one_refresh_token_on_two_nodes_rotates_once(fx: &mut Fixture) {
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

async fn one_pair_on_two_nodes_is_one_direct_room(fx: &mut Fixture) {
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

async fn schemas_are_isolated_and_migrations_rerun(fx: &mut Fixture) {
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
