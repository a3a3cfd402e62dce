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
//!
//! This file holds the fixtures, the two macros that make each case a test per engine, the
//! list of cases and the helpers they share; the cases live in `store_contract/` by area:
//! `accounts`, `rooms`, `messages`, `media`, `pictures`, `previews`, `push`, `search` and `nodes` (several nodes, PostgreSQL
//! only). A test keeps its name: `users_and_search::sqlite`, `users_and_search::postgres`.

use std::sync::Arc;
use std::time::Duration;

use palaver_proto::{MessageType, Role, User};
use palaver_server::clock::{now_ms, to_time};
use palaver_server::store::postgres::{PgPoolSettings, PostgresStore};
use palaver_server::store::sqlite::SqliteStore;
use palaver_server::store::{Appended, MediaRow, NewMember, NewMessage, NewRoom, SeqOrder, Store};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use accounts::{
    administrators_and_disabled_accounts, audit_log, reports_mutes_and_bans, sessions_and_refresh,
    users_and_search,
};
use media::{media_rows_and_orphans, media_usage_and_quota};
use messages::{
    append_assigns_seqs_and_is_idempotent, edit_and_delete, history_pages, markers_and_summary,
};
use nodes::{
    batches_over_shared_rooms_do_not_deadlock, concurrent_appends_from_two_nodes_are_gap_free,
    one_pair_on_two_nodes_is_one_direct_room, one_refresh_token_on_two_nodes_rotates_once,
    same_key_on_two_nodes_is_one_message, schemas_are_isolated_and_migrations_rerun,
};
use pictures::pictures_keep_their_media;
use previews::link_previews_cache_and_messages;
use push::{a_session_that_ends_takes_its_push_subscriptions, push_settings_and_subscriptions};
use rooms::{
    direct_rooms_are_unique_per_pair, groups_members_and_roles, invitations_and_blocks,
    room_list_order_and_unread,
};
use search::{search_index_follows_appends_edits_and_deletions, search_pages_in_windows};

#[path = "store_contract/accounts.rs"]
mod accounts;
#[path = "store_contract/media.rs"]
mod media;
#[path = "store_contract/messages.rs"]
mod messages;
#[path = "store_contract/nodes.rs"]
mod nodes;
#[path = "store_contract/pictures.rs"]
mod pictures;
#[path = "store_contract/previews.rs"]
mod previews;
#[path = "store_contract/push.rs"]
mod push;
#[path = "store_contract/rooms.rs"]
mod rooms;
#[path = "store_contract/search.rs"]
mod search;

mod support;

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
        let store = SqliteStore::open(&dir.path().join("palaver.db"), None)
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
    pictures_keep_their_media,
    link_previews_cache_and_messages,
    push_settings_and_subscriptions,
    a_session_that_ends_takes_its_push_subscriptions,
    audit_log,
    administrators_and_disabled_accounts,
    reports_mutes_and_bans,
    search_index_follows_appends_edits_and_deletions,
    search_pages_in_windows,
);

postgres_only!(
    concurrent_appends_from_two_nodes_are_gap_free,
    same_key_on_two_nodes_is_one_message,
    batches_over_shared_rooms_do_not_deadlock,
    one_refresh_token_on_two_nodes_rotates_once,
    one_pair_on_two_nodes_is_one_direct_room,
    schemas_are_isolated_and_migrations_rerun,
);

async fn user(store: &dyn Store, name: &str) -> User {
    let user = User {
        id: Uuid::now_v7(),
        username: name.to_string(),
        display_name: format!("{name} display"),
        created_at: to_time(now_ms()),
        avatar_url: None,
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
            encrypted: false,
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
        reply_to: None,
        thread_root_id: None,
        also_in_room: false,
        mentions: Vec::new(),
        mentions_room: false,
        event: None,
        forwarded: false,
        system: false,
        mls: None,
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
