//! The cluster engines against real services: `NatsBus` on NATS JetStream and
//! `RedisCache` on Redis, each test with its own subject/key prefix (a random suffix), two
//! instances standing in for two nodes.
//!
//! `TEST_NATS_URL` (default nats://127.0.0.1:4222) and `TEST_REDIS_URL` (default
//! redis://127.0.0.1:6379) say where. Not `PALAVER_*`: that prefix is the server's
//! configuration, which refuses unknown keys. A service that does not answer makes its
//! tests print SKIPPED and pass, except with `CI=true`, where they fail.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use palaver_proto::PresenceStatus;
use palaver_server::bus::nats::NatsBus;
use palaver_server::bus::{Audience, Bus, Class, Delivery, Event, EventStream};
use palaver_server::cache::redis::RedisCache;
use palaver_server::cache::{Cache, RateBucket};
use palaver_server::config::{RateLimit, RateLimits};
use uuid::Uuid;

/// Reports an unreachable service: the tests that need it do not run.
fn unreachable(service: &str, url: &str, err: &dyn std::fmt::Display) {
    support::skip(
        &format!("the {service} engine tests"),
        &format!("{service} at {url} is unreachable ({err})"),
    );
}

/// A prefix of its own for each test, so runs never hear each other.
fn run_prefix() -> String {
    format!("t{}", Uuid::new_v4().simple())
}

fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

// ---------------------------------------------------------------- NATS

/// Two nodes on one prefix, or `None` (skipped) when NATS does not answer.
async fn two_buses() -> Option<(NatsBus, NatsBus)> {
    let url = nats_url();
    let prefix = run_prefix();
    let a = match NatsBus::connect(&url, &prefix).await {
        Ok(bus) => bus,
        Err(err) => {
            unreachable("NATS", &url, &err);
            return None;
        }
    };
    let b = NatsBus::connect(&url, &prefix).await.expect("second node");
    Some((a, b))
}

async fn next(events: &mut EventStream) -> Arc<Event> {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream is open")
}

/// Asserts nothing more arrives for a short while.
async fn quiet(events: &mut EventStream) {
    if let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(300), events.next()).await {
        panic!("unexpected event {event:?}");
    }
}

fn message(room: Uuid, seq: i64) -> Event {
    Event::Deliver(Delivery {
        audience: Audience::Room(room),
        frame: Bytes::from(format!(
            r#"{{"type":"message","message":{{"roomId":"{room}","seq":{seq}}}}}"#
        )),
        room_seq: Some((room, seq)),
        exclude_conn: None,
        class: Class::Change,
    })
}

fn typing(room: Uuid, n: i64) -> Event {
    Event::Deliver(Delivery {
        audience: Audience::Room(room),
        frame: Bytes::from(format!(
            r#"{{"type":"typing","roomId":"{room}","n":{n},"active":true}}"#
        )),
        room_seq: None,
        exclude_conn: None,
        class: Class::Ephemeral,
    })
}

fn seq_of(event: &Event) -> i64 {
    match event {
        Event::Deliver(d) => d.room_seq.map(|(_, s)| s).expect("a message"),
        other => panic!("expected a message, got {other:?}"),
    }
}

fn frame_of(event: &Event) -> serde_json::Value {
    match event {
        Event::Deliver(d) => serde_json::from_slice(&d.frame).expect("JSON frame"),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

/// Nodes start while other deployments' streams come and go: nats-server 2.9 removes an
/// account's stream directory with its last stream, and a create racing that failed once
/// in the api_cluster suite (JetStream error 10049). Starting must ride over it.
#[tokio::test]
async fn nats_streams_are_created_while_others_are_deleted() {
    let url = nats_url();
    if let Err(err) = async_nats::connect(&url).await {
        unreachable("NATS", &url, &err);
        return;
    }
    for _ in 0..25 {
        let nodes = (0..4).map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let bus = NatsBus::connect(&url, &run_prefix()).await?;
                bus.delete_stream().await
            })
        });
        for node in futures::future::join_all(nodes).await {
            node.expect("task")
                .expect("a node starts and removes its stream");
        }
    }
}

#[tokio::test]
async fn nats_nodes_see_each_others_events() {
    let Some((a, b)) = two_buses().await else {
        return;
    };
    let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
    let room = Uuid::now_v7();

    // A stored message: both nodes get it, the publisher included (its hub delivers to
    // its own connections from the bus).
    a.publish(message(room, 1)).await.expect("publish");
    for events in [&mut on_a, &mut on_b] {
        let event = next(events).await;
        assert_eq!(seq_of(&event), 1);
        assert_eq!(frame_of(&event)["message"]["roomId"], room.to_string());
    }

    // Typing goes over core NATS, and still reaches both.
    b.publish(typing(room, 1)).await.expect("publish");
    for events in [&mut on_a, &mut on_b] {
        assert_eq!(frame_of(&*next(events).await)["type"], "typing");
    }

    // Control events.
    let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
    let invitee = Uuid::now_v7();
    b.publish(Event::Membership {
        origin: Uuid::now_v7(),
        room_id: room,
        direct: true,
        added: vec![user],
        invited: vec![invitee],
        removed: vec![],
    })
    .await
    .expect("publish membership");
    b.publish(Event::Block {
        origin: Uuid::now_v7(),
        blocker: user,
        blocked: invitee,
        active: true,
    })
    .await
    .expect("publish block");
    a.publish(Event::EndSession {
        session_id: session,
    })
    .await
    .expect("publish end session");
    for events in [&mut on_a, &mut on_b] {
        match &*next(events).await {
            Event::Membership {
                room_id,
                added,
                invited,
                direct,
                ..
            } => {
                assert_eq!((*room_id, added.as_slice()), (room, &[user][..]));
                assert_eq!((invited.as_slice(), *direct), (&[invitee][..], true));
            }
            other => panic!("expected membership, got {other:?}"),
        }
        match &*next(events).await {
            Event::Block {
                blocker,
                blocked,
                active,
                ..
            } => assert_eq!((*blocker, *blocked, *active), (user, invitee, true)),
            other => panic!("expected block, got {other:?}"),
        }
        match &*next(events).await {
            Event::EndSession { session_id } => assert_eq!(*session_id, session),
            other => panic!("expected end session, got {other:?}"),
        }
    }
    quiet(&mut on_b).await;
    a.delete_stream().await.expect("delete stream");
}

#[tokio::test]
async fn nats_stores_a_message_once_however_often_it_is_published() {
    let Some((a, b)) = two_buses().await else {
        return;
    };
    let mut on_b = b.subscribe();
    let room = Uuid::now_v7();
    a.publish(message(room, 1)).await.expect("publish");
    // A retry of the same stored message, from the same node and from another.
    a.publish(message(room, 1)).await.expect("publish again");
    b.publish(message(room, 1)).await.expect("publish from b");
    a.publish(message(room, 2)).await.expect("publish next");
    assert_eq!(seq_of(&*next(&mut on_b).await), 1);
    assert_eq!(seq_of(&*next(&mut on_b).await), 2);
    quiet(&mut on_b).await;

    // Identical membership changes are two changes (add, remove, add again), not one.
    let user = Uuid::now_v7();
    let change = |added: Vec<Uuid>, removed: Vec<Uuid>| Event::Membership {
        origin: Uuid::nil(),
        room_id: room,
        direct: false,
        added,
        invited: vec![],
        removed,
    };
    a.publish(change(vec![user], vec![])).await.expect("add");
    a.publish(change(vec![], vec![user])).await.expect("remove");
    a.publish(change(vec![user], vec![]))
        .await
        .expect("add again");
    for want_added in [true, false, true] {
        match &*next(&mut on_b).await {
            Event::Membership { added, .. } => assert_eq!(!added.is_empty(), want_added),
            other => panic!("expected membership, got {other:?}"),
        }
    }
    a.delete_stream().await.expect("delete stream");
}

/// Messages the node's stream holds.
async fn stored(bus: &NatsBus) -> u64 {
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.expect("NATS"));
    let mut stream = js.get_stream(bus.stream_name()).await.expect("stream");
    stream.info().await.expect("stream info").state.messages
}

/// The class the service gave a delivery decides how NATS carries it, whatever its frame
/// says: a bus that read the frame's `type` instead (or dropped the class on the way)
/// would store the first, drop the repeat of the third, or store only one of the fourth.
#[tokio::test]
async fn nats_carries_each_delivery_as_its_class_says() {
    let Some((a, b)) = two_buses().await else {
        return;
    };
    let mut on_b = b.subscribe();
    let room = Uuid::now_v7();
    let delivery = |kind: &str, class: Class| {
        Event::Deliver(Delivery {
            audience: Audience::Room(room),
            frame: Bytes::from(format!(r#"{{"type":"{kind}","roomId":"{room}"}}"#)),
            room_seq: None,
            exclude_conn: None,
            class,
        })
    };
    let before = stored(&a).await;
    // Ephemeral, with a frame type that is stored otherwise: core NATS, not the stream.
    a.publish(delivery("message.updated", Class::Ephemeral))
        .await
        .expect("ephemeral");
    match &*next(&mut on_b).await {
        Event::Deliver(d) => assert_eq!(d.class, Class::Ephemeral),
        other => panic!("expected a delivery, got {other:?}"),
    }
    assert_eq!(stored(&a).await, before, "an ephemeral delivery was stored");
    // A change, with a frame type that is ephemeral otherwise: stored, and its repeat
    // (the same bytes) is the same change.
    a.publish(delivery("typing", Class::Change))
        .await
        .expect("change");
    a.publish(delivery("typing", Class::Change))
        .await
        .expect("repeat");
    match &*next(&mut on_b).await {
        Event::Deliver(d) => assert_eq!(d.class, Class::Change),
        other => panic!("expected a delivery, got {other:?}"),
    }
    quiet(&mut on_b).await;
    // A state: every publish counts, the same bytes included.
    a.publish(delivery("room.updated", Class::State))
        .await
        .expect("state");
    a.publish(delivery("room.updated", Class::State))
        .await
        .expect("again");
    for _ in 0..2 {
        match &*next(&mut on_b).await {
            Event::Deliver(d) => assert_eq!(d.class, Class::State),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }
    quiet(&mut on_b).await;
    assert_eq!(
        stored(&a).await,
        before + 3,
        "one change and two states stored"
    );
    a.delete_stream().await.expect("delete stream");
}

#[tokio::test]
async fn nats_keeps_each_publishers_order() {
    let Some((a, b)) = two_buses().await else {
        return;
    };
    let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
    let (room_a, room_b) = (Uuid::now_v7(), Uuid::now_v7());
    const N: i64 = 300;
    // Both nodes publish at once; each one's events must arrive in its order.
    let (ra, rb) = tokio::join!(
        async {
            for seq in 1..=N {
                a.publish(message(room_a, seq)).await?;
                a.publish(typing(room_a, seq)).await?;
            }
            Ok::<_, palaver_server::bus::BusError>(())
        },
        async {
            for seq in 1..=N {
                b.publish(message(room_b, seq)).await?;
            }
            Ok::<_, palaver_server::bus::BusError>(())
        }
    );
    ra.expect("node a publishes");
    rb.expect("node b publishes");
    for events in [&mut on_a, &mut on_b] {
        let (mut last_a, mut last_b, mut last_typing) = (0, 0, 0);
        for _ in 0..3 * N {
            let event = next(events).await;
            let Event::Deliver(d) = &*event else {
                panic!("unexpected {event:?}");
            };
            match d.room_seq {
                Some((room, seq)) if room == room_a => {
                    assert_eq!(seq, last_a + 1, "node a's messages out of order");
                    last_a = seq;
                }
                Some((_, seq)) => {
                    assert_eq!(seq, last_b + 1, "node b's messages out of order");
                    last_b = seq;
                }
                None => {
                    let n = frame_of(&event)["n"].as_i64().expect("n");
                    assert_eq!(n, last_typing + 1, "typing out of order");
                    last_typing = n;
                }
            }
        }
        assert_eq!((last_a, last_b, last_typing), (N, N, N));
    }
    a.delete_stream().await.expect("delete stream");
}

// ---------------------------------------------------------------- Redis

const TTL: Duration = Duration::from_secs(30);

/// Deletes every key of a test's prefix.
async fn clean_redis(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("palaver:{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// A cache for a new node on `prefix`, or `None` (skipped) when Redis does not answer.
async fn node(prefix: &str, limits: &RateLimits, ttl: Duration) -> Option<RedisCache> {
    let url = redis_url();
    match RedisCache::connect(&url, prefix, Uuid::now_v7(), limits, ttl).await {
        Ok(cache) => Some(cache),
        Err(err) => {
            unreachable("Redis", &url, &err);
            None
        }
    }
}

async fn status(cache: &RedisCache, user: Uuid) -> PresenceStatus {
    cache.presence(user).await.expect("presence known").status
}

#[tokio::test]
async fn redis_presence_counts_connections_on_every_node() {
    let prefix = run_prefix();
    let limits = RateLimits::default();
    let Some(one) = node(&prefix, &limits, TTL).await else {
        return;
    };
    let two = node(&prefix, &limits, TTL).await.expect("second node");
    let user = Uuid::now_v7();
    assert!(two.presence(user).await.is_none(), "never seen");

    assert!(
        one.connected(user, 1_000).await,
        "first connection anywhere"
    );
    assert!(
        !two.connected(user, 2_000).await,
        "already online via node one"
    );
    assert!(
        !one.connected(user, 2_500).await,
        "a second connection on node one"
    );
    assert_eq!(status(&two, user).await, PresenceStatus::Online);

    // Away is shared too.
    assert_eq!(
        two.set_away(user, true, 3_000).await,
        Some(PresenceStatus::Away)
    );
    assert_eq!(two.set_away(user, true, 3_100).await, None, "no change");
    assert_eq!(status(&one, user).await, PresenceStatus::Away);
    assert_eq!(
        one.set_away(user, false, 3_200).await,
        Some(PresenceStatus::Online)
    );

    assert!(!one.disconnected(user, 4_000).await);
    assert!(
        !one.disconnected(user, 4_500).await,
        "node two still holds one"
    );
    assert_eq!(status(&one, user).await, PresenceStatus::Online);
    assert!(two.disconnected(user, 5_000).await, "the last connection");
    let entry = one.presence(user).await.expect("presence known");
    assert_eq!(entry.status, PresenceStatus::Offline);
    assert_eq!(entry.last_seen_ms, Some(5_000));
    assert_eq!(one.set_away(user, true, 6_000).await, None, "offline");
    clean_redis(&prefix).await;
}

#[tokio::test]
async fn redis_presence_of_a_dead_node_expires() {
    let prefix = run_prefix();
    let limits = RateLimits::default();
    let ttl = Duration::from_secs(1);
    let Some(dying) = node(&prefix, &limits, ttl).await else {
        return;
    };
    let survivor = node(&prefix, &limits, ttl).await.expect("second node");
    let user = Uuid::now_v7();
    assert!(dying.connected(user, 1_000).await);
    // Heartbeats keep it alive well past the TTL.
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(status(&survivor, user).await, PresenceStatus::Online);

    // The node dies: no disconnect, no more heartbeats.
    let died = std::time::Instant::now();
    drop(dying);
    loop {
        if status(&survivor, user).await == PresenceStatus::Offline {
            break;
        }
        assert!(
            died.elapsed() < ttl + Duration::from_secs(1),
            "a dead node's user still online after {:?}",
            died.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One node (whichever asks first) is told, once, to announce the user offline.
    let other = node(&prefix, &limits, ttl).await.expect("third node");
    let (a, b) = tokio::join!(
        survivor.reap_dead_nodes(7_000),
        other.reap_dead_nodes(7_000)
    );
    let reaped: Vec<_> = a.into_iter().chain(b).collect();
    assert_eq!(reaped, vec![(user, 7_000)]);
    assert!(
        survivor.reap_dead_nodes(8_000).await.is_empty(),
        "only once"
    );
    assert_eq!(
        survivor.presence(user).await.expect("known").last_seen_ms,
        Some(7_000)
    );
    // Their next connection is a fresh "online".
    assert!(survivor.connected(user, 9_000).await);
    clean_redis(&prefix).await;
}

#[tokio::test]
async fn redis_presence_heals_after_redis_forgets_everything() {
    let prefix = run_prefix();
    let limits = RateLimits::default();
    let ttl = Duration::from_millis(900);
    let Some(holder) = node(&prefix, &limits, ttl).await else {
        return;
    };
    let observer = node(&prefix, &limits, ttl).await.expect("second node");
    let (stays, leaves) = (Uuid::now_v7(), Uuid::now_v7());
    assert!(holder.connected(stays, 1_000).await);
    assert!(holder.connected(leaves, 1_000).await);
    // Redis restarts empty (here: this prefix's keys vanish, as they would).
    clean_redis(&prefix).await;
    assert!(
        observer.presence(stays).await.is_none(),
        "Redis forgot the user"
    );
    // The holder notices its own key is gone and writes its users back.
    let forgot = std::time::Instant::now();
    loop {
        if observer.presence(stays).await.map(|p| p.status) == Some(PresenceStatus::Online) {
            break;
        }
        assert!(
            forgot.elapsed() < ttl * 2,
            "presence not restored after {:?}",
            forgot.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(status(&observer, leaves).await, PresenceStatus::Online);
    // Counts restored, not guessed: one disconnect takes the user offline.
    assert!(holder.disconnected(leaves, 2_000).await);
    assert_eq!(status(&observer, leaves).await, PresenceStatus::Offline);
    assert_eq!(status(&observer, stays).await, PresenceStatus::Online);
    clean_redis(&prefix).await;
}

#[tokio::test]
async fn redis_rate_limits_are_shared_by_nodes() {
    let prefix = run_prefix();
    let mut limits = RateLimits::default();
    limits[RateBucket::Send] = RateLimit::new(60, 3);
    let Some(one) = node(&prefix, &limits, TTL).await else {
        return;
    };
    let two = node(&prefix, &limits, TTL).await.expect("second node");
    let user = Uuid::now_v7().to_string();
    one.rate_limit(RateBucket::Send, &user).await.expect("1");
    two.rate_limit(RateBucket::Send, &user).await.expect("2");
    one.rate_limit(RateBucket::Send, &user).await.expect("3");
    let retry = two
        .rate_limit(RateBucket::Send, &user)
        .await
        .expect_err("the burst of 3 is spent across both nodes");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(1),
        "{retry:?}"
    );
    // Other keys and other buckets are separate.
    two.rate_limit(RateBucket::Send, "someone-else")
        .await
        .expect("another key");
    two.rate_limit(RateBucket::Actions, &user)
        .await
        .expect("another bucket");
    // One token comes back per second.
    tokio::time::sleep(retry + Duration::from_millis(20)).await;
    one.rate_limit(RateBucket::Send, &user)
        .await
        .expect("refilled");
    assert!(two.rate_limit(RateBucket::Send, &user).await.is_err());
    clean_redis(&prefix).await;
}

#[tokio::test]
async fn redis_login_failures_are_reset_per_key_and_keys_stay_small() {
    let prefix = run_prefix();
    let mut limits = RateLimits::default();
    limits[RateBucket::LoginFailure] = RateLimit::new(1, 2);
    let Some(one) = node(&prefix, &limits, TTL).await else {
        return;
    };
    let two = node(&prefix, &limits, TTL).await.expect("second node");
    let long = format!("alice@{}", "x".repeat(60_000));
    for key in ["alice@192.0.2.1", "bob@192.0.2.1", long.as_str()] {
        one.rate_limit(RateBucket::LoginFailure, key)
            .await
            .expect("1");
        two.rate_limit(RateBucket::LoginFailure, key)
            .await
            .expect("2");
        let wait = one
            .rate_limit(RateBucket::LoginFailure, key)
            .await
            .expect_err("a burst of 2 per hour");
        assert!(wait > Duration::from_secs(3000), "{wait:?}");
    }
    // A success on one node clears that key for every node, and only that key.
    two.rate_reset(RateBucket::LoginFailure, "alice@192.0.2.1")
        .await;
    one.rate_limit(RateBucket::LoginFailure, "alice@192.0.2.1")
        .await
        .expect("full again");
    assert!(
        one.rate_limit(RateBucket::LoginFailure, "bob@192.0.2.1")
            .await
            .is_err()
    );
    one.rate_reset(RateBucket::LoginFailure, &long).await;
    two.rate_limit(RateBucket::LoginFailure, &long)
        .await
        .expect("a long key resets too");
    // No key in Redis is larger than a digest, whatever the client sent.
    let client = redis::Client::open(redis_url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("palaver:{prefix}:rl:*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.iter().all(|k| k.len() < 200), "{keys:?}");
    clean_redis(&prefix).await;
}

#[tokio::test]
async fn redis_revoked_sessions_are_seen_by_every_node() {
    let prefix = run_prefix();
    let limits = RateLimits::default();
    let Some(one) = node(&prefix, &limits, TTL).await else {
        return;
    };
    let two = node(&prefix, &limits, TTL).await.expect("second node");
    let (revoked, live, expired) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let now = palaver_server::clock::now_ms();
    one.revoke_session(revoked, now + 60_000).await;
    one.revoke_session(expired, now - 1).await;
    assert!(two.is_revoked(revoked).await);
    assert!(one.is_revoked(revoked).await);
    assert!(!two.is_revoked(live).await);
    assert!(
        !two.is_revoked(expired).await,
        "its tokens have expired anyway"
    );
    clean_redis(&prefix).await;
}
