//! Notifications as they arrive: an encrypted, signed Web Push to an offline member, the
//! preview setting, no push to a member who acknowledged, muted rooms, bursts collapsed
//! into one, retries and a 410 that removes the subscription, and signed webhooks.

use std::time::Duration;

use hmac::{Hmac, Mac};
use palaver_proto::{ReceiptKind, WebhookEvent};
use reqwest::Method;
use serde_json::json;
use sha2::Sha256;

use crate::helpers::*;

use super::{
    Browser, FakePush, WEBHOOK_SECRET, call, push_config, subscribe, vapid_key, verify_web_push,
};

#[tokio::test]
async fn offline_member_gets_an_encrypted_signed_push() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let browser = Browser::new(fake.url("bob"));
    subscribe(&bob, &browser).await;
    let key = vapid_key(&bob).await;

    let sent = alice.send(room.id, "hello bob").await;
    let r = fake.next().await;
    assert_eq!(r.name, "bob");
    verify_web_push(&r, &fake.base, &key);
    let n = browser.decrypt(&r.body);
    assert_eq!(
        (n.kind.as_str(), n.room_id, n.count, n.last_seq),
        ("messages", room.id, 1, sent.seq)
    );
    // The default preview is `sender`: who, not what.
    assert_eq!(n.sender_id, Some(alice.id));
    assert_eq!(n.sender_name.as_deref(), Some("Alice"));
    assert_eq!(n.content, None);
    assert!(!String::from_utf8_lossy(&browser.decrypt_raw(&r.body)).contains("hello bob"));
    // Nobody else is notified: not the sender.
    fake.assert_silent(QUIET).await;
}

#[tokio::test]
async fn the_preview_setting_decides_what_a_push_shows() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let group = alice.group("Team", &[&bob, &carol]).await;
    let browser = Browser::new(fake.url("bob"));
    subscribe(&bob, &browser).await;

    let settings = |preview: &str| json!({ "preview": preview });
    let (status, body) = call(
        &bob,
        Method::PUT,
        "/api/v1/push/settings",
        Some(&settings("full")),
    )
    .await;
    assert_eq!(
        (status, body["preview"].as_str()),
        (200, Some("full")),
        "{body}"
    );
    alice.send(group.id, "the full text").await;
    let n = browser.decrypt(&fake.next().await.body);
    assert_eq!(n.content.as_deref(), Some("the full text"));
    assert_eq!(n.room_name.as_deref(), Some("Team"));
    assert_eq!(n.sender_name.as_deref(), Some("Alice"));

    let (status, _) = call(
        &bob,
        Method::PUT,
        "/api/v1/push/settings",
        Some(&settings("none")),
    )
    .await;
    assert_eq!(status, 200);
    alice.send(group.id, "secret plans").await;
    let r = fake.next().await;
    let plain = String::from_utf8_lossy(&browser.decrypt_raw(&r.body)).into_owned();
    assert!(
        !plain.contains("secret plans") && !plain.contains("Alice") && !plain.contains("Team"),
        "{plain}"
    );
    let n = browser.decrypt(&r.body);
    assert_eq!(
        (n.count, n.sender_id, n.sender_name, n.room_name, n.content),
        (1, None, None, None, None)
    );

    let (status, body) = call(&bob, Method::GET, "/api/v1/push/settings", None).await;
    assert_eq!((status, body["preview"].as_str()), (200, Some("none")));
}

#[tokio::test]
async fn a_connected_member_who_acknowledges_gets_no_push() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let browser = Browser::new(fake.url("bob"));
    subscribe(&bob, &browser).await;

    let mut socket = bob.connect().await;
    alice.send(room.id, "you are here").await;
    let m = next_message(&mut socket).await;
    receipt(&mut socket, room.id, m.seq, ReceiptKind::Delivered).await;
    // ack_delay_ms is 800: past it, still nothing.
    fake.assert_silent(Duration::from_millis(1500)).await;

    // Connected but silent devices are notified once the delay has passed.
    let second = alice.send(room.id, "are you there?").await;
    let _ = next_message(&mut socket).await;
    let n = browser.decrypt(&fake.next().await.body);
    assert_eq!(
        (n.count, n.last_seq),
        (1, second.seq),
        "only the unacknowledged message counts"
    );
    drop(socket);
}

#[tokio::test]
async fn a_muted_room_sends_no_push_until_unmuted() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let browser = Browser::new(fake.url("bob"));
    subscribe(&bob, &browser).await;

    let path = format!("/api/v1/rooms/{}/mute", room.id);
    let (status, _) = call(&bob, Method::PUT, &path, None).await;
    assert_eq!(status, 204);
    let (_, settings) = call(&bob, Method::GET, "/api/v1/push/settings", None).await;
    assert_eq!(settings["mutedRooms"], json!([room.id]));
    alice.send(room.id, "muted").await;
    fake.assert_silent(Duration::from_millis(600)).await;

    let (status, _) = call(&bob, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let sent = alice.send(room.id, "unmuted").await;
    let n = browser.decrypt(&fake.next().await.body);
    assert_eq!(n.last_seq, sent.seq);
}

#[tokio::test]
async fn a_room_set_to_mentions_pushes_only_what_mentions_the_member() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let browser = Browser::new(fake.url("bob"));
    subscribe(&bob, &browser).await;
    let path = format!("/api/v1/rooms/{}/notifications", room.id);
    let (status, _) = call(&bob, Method::PUT, &path, Some(&json!({"level": "mentions"}))).await;
    assert_eq!(status, 204);

    alice.send(room.id, "nothing for bob").await;
    fake.assert_silent(Duration::from_millis(600)).await;
    let sent = alice.send(room.id, "@bob are you coming?").await;
    let n = browser.decrypt(&fake.next().await.body);
    assert_eq!(n.last_seq, sent.seq);

    let (status, _) = call(&bob, Method::PUT, &path, Some(&json!({"level": "nothing"}))).await;
    assert_eq!(status, 204);
    alice.send(room.id, "@bob still?").await;
    fake.assert_silent(Duration::from_millis(600)).await;
}

#[tokio::test]
async fn a_burst_collapses_into_one_notification_with_a_count() {
    let mut fake = FakePush::start().await;
    // A window far longer than three sends take, so they fall into one.
    let app = spawn_app_with(|c| {
        push_config(c);
        c.push.collapse_ms = 1500;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let browser = Browser::new(fake.url("bob"));
    subscribe(&bob, &browser).await;

    let mut last = 0;
    for i in 0..3 {
        last = alice.send(room.id, &format!("burst {i}")).await.seq;
    }
    let n = browser.decrypt(&fake.next().await.body);
    assert_eq!((n.count, n.last_seq), (3, last));
    fake.assert_silent(QUIET).await;
}

#[tokio::test]
async fn a_500_is_retried_and_a_410_removes_the_subscription() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let browser = Browser::new(fake.url("bob"));
    subscribe(&bob, &browser).await;

    fake.answer("bob", &[500, 503]);
    alice.send(room.id, "try again").await;
    let first = browser.decrypt(&fake.next().await.body);
    let second = browser.decrypt(&fake.next().await.body);
    let third = browser.decrypt(&fake.next().await.body);
    assert_eq!(first, second, "a retry sends the same notification");
    assert_eq!(second, third);

    fake.answer("bob", &[410]);
    alice.send(room.id, "gone").await;
    fake.next().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = call(&bob, Method::GET, "/api/v1/push/subscriptions", None).await;
        if body["subscriptions"]
            .as_array()
            .is_some_and(|a| a.is_empty())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "subscription not removed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    alice.send(room.id, "nobody listens").await;
    fake.assert_silent(QUIET).await;
}

#[tokio::test]
async fn the_webhook_gets_signed_notifications() {
    let mut fake = FakePush::start().await;
    let hook = fake.url("hook");
    let app = spawn_app_with(|c| {
        push_config(c);
        c.push.webhook_url = Some(hook);
        c.push.webhook_secret = Some(WEBHOOK_SECRET.into());
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    fake.answer("hook", &[502]);
    alice.send(room.id, "to the gateway").await;

    let first = fake.next().await;
    let r = fake.next().await;
    assert_eq!(r.name, "hook");
    let header = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .expect(n)
            .to_owned()
    };
    assert_eq!(
        header("x-palaver-delivery"),
        first.headers["x-palaver-delivery"].to_str().expect("id")
    );
    let sig = header("x-palaver-signature");
    let (t, v1) = sig.split_once(',').expect("t=…,v1=…");
    let t = t.strip_prefix("t=").expect("t");
    let v1 = v1.strip_prefix("v1=").expect("v1");
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("hmac");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    mac.verify_slice(&hex::decode(v1).expect("hex"))
        .expect("signature verifies");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("now")
        .as_secs() as i64;
    assert!((now - t.parse::<i64>().expect("t")).abs() < 60);

    let event: WebhookEvent = serde_json::from_slice(&r.body).expect("event");
    assert_eq!(event.user_id, bob.id);
    assert_eq!(event.id.to_string(), header("x-palaver-delivery"));
    assert_eq!(
        (event.notification.room_id, event.notification.count),
        (room.id, 1)
    );
    assert_eq!(
        event.notification.content, None,
        "the webhook honours the preview too"
    );
}
