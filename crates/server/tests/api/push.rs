//! Push notifications, end to end: a fake push service on a loopback port decrypts each
//! Web Push payload with the subscription's private key and verifies the VAPID token;
//! a fake webhook receiver verifies the signature. Also the SSRF guard and every new
//! endpoint's answers to bad input.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use palaver_proto::{ErrorCode, PushNotification, PushSubscription, ReceiptKind, WebhookEvent};
use palaver_server::Config;
use palaver_server::push::guard::{AllowList, Outbound, OutboundError};
use parking_lot::Mutex;
use rand::RngCore;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;
use uuid::Uuid;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256PublicKey};
use web_push_native::jwt_simple::claims::NoCustomClaims;
use web_push_native::jwt_simple::common::VerificationOptions;
use web_push_native::p256::SecretKey;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::helpers::*;

const SUBJECT: &str = "mailto:ops@palaver.test";
const WEBHOOK_SECRET: &str = "webhook-secret-0123456789";

/// One request the fake service received.
struct Received {
    name: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone)]
struct FakeState {
    tx: mpsc::UnboundedSender<Received>,
    /// Statuses to answer, per endpoint name, in order; 201 once a queue is empty.
    script: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
}

/// A push service and webhook receiver on a random loopback port.
struct FakePush {
    base: String,
    rx: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
}

async fn record(
    State(s): State<FakeState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = s
        .script
        .lock()
        .get_mut(&name)
        .and_then(|q| q.pop_front())
        .unwrap_or(201);
    let _ = s.tx.send(Received {
        name,
        headers,
        body: body.to_vec(),
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED)
}

/// `/redirect?to=URL` answers 307 to URL.
async fn redirect(Query(q): Query<HashMap<String, String>>) -> Response {
    let to = q.get("to").cloned().unwrap_or_default();
    (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response()
}

impl FakePush {
    async fn start() -> FakePush {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(HashMap::new()));
        let state = FakeState {
            tx,
            script: script.clone(),
        };
        let app = Router::new()
            .route("/push/{name}", post(record))
            .route("/redirect", any(redirect))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake push");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePush { base, rx, script }
    }

    fn url(&self, name: &str) -> String {
        format!("{}/push/{name}", self.base)
    }

    /// Answers the next requests to `name` with these statuses.
    fn answer(&self, name: &str, statuses: &[u16]) {
        self.script
            .lock()
            .entry(name.into())
            .or_default()
            .extend(statuses);
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a request to the fake push service")
            .expect("fake push service running")
    }

    /// Asserts nothing arrives for `quiet`.
    async fn assert_silent(&mut self, quiet: Duration) {
        if let Ok(Some(r)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            panic!(
                "unexpected request to {}: {}",
                r.name,
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}

/// A browser's side of a subscription: its key pair and auth secret.
struct Browser {
    secret: SecretKey,
    auth: [u8; 16],
    endpoint: String,
}

impl Browser {
    fn new(endpoint: String) -> Browser {
        let secret = loop {
            let mut raw = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut raw);
            if let Ok(k) = SecretKey::from_slice(&raw) {
                break k;
            }
        };
        let mut auth = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut auth);
        Browser {
            secret,
            auth,
            endpoint,
        }
    }

    /// `PushSubscription.toJSON()` as a browser sends it.
    fn json(&self) -> Value {
        let public = self.secret.public_key().to_encoded_point(false);
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            }
        })
    }

    /// Decrypts a push body (RFC 8291, aes128gcm) with the subscription's private key.
    fn decrypt_raw(&self, body: &[u8]) -> Vec<u8> {
        let auth = web_push_native::Auth::clone_from_slice(&self.auth);
        web_push_native::decrypt(body.to_vec(), &self.secret, &auth).expect("decrypt push payload")
    }

    /// Decrypts a push into the notification.
    fn decrypt(&self, body: &[u8]) -> PushNotification {
        serde_json::from_slice(&self.decrypt_raw(body)).expect("notification JSON")
    }
}

fn push_config(c: &mut Config) {
    c.push.outbound_allow = vec!["127.0.0.1".into()];
    c.push.vapid_subject = SUBJECT.into();
    c.push.collapse_ms = 100;
    c.push.ack_delay_ms = 800;
    c.push.backoff_base_ms = 50;
}

async fn subscribe(user: &TestUser, browser: &Browser) -> PushSubscription {
    let (status, body) = call(
        user,
        Method::POST,
        "/api/v1/push/subscriptions",
        Some(&browser.json()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_value(body).expect("subscription")
}

async fn vapid_key(user: &TestUser) -> String {
    let (status, body) = call(user, Method::GET, "/api/v1/push/vapid-public-key", None).await;
    assert_eq!(status, 200, "{body}");
    body["publicKey"].as_str().expect("publicKey").to_owned()
}

/// Checks a Web Push request as a push service would: headers, and the VAPID token
/// (signature with the server's key, `aud` = the endpoint's origin, `exp`, `sub`).
fn verify_web_push(r: &Received, endpoint_origin: &str, server_key: &str) {
    let header = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-encoding"), "aes128gcm");
    assert_eq!(header("ttl"), "86400");
    assert_eq!(header("urgency"), "normal");
    assert!(
        !header("topic").is_empty() && header("topic").len() <= 32,
        "topic"
    );
    let auth = header("authorization");
    let rest = auth.strip_prefix("vapid ").expect("vapid scheme");
    let mut parts = HashMap::new();
    for p in rest.split(',') {
        let (k, v) = p.trim().split_once('=').expect("k=v");
        parts.insert(k.to_owned(), v.to_owned());
    }
    assert_eq!(parts["k"], server_key, "k is the server's public key");
    let key =
        ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(server_key).expect("b64")).expect("key");
    let options = VerificationOptions {
        allowed_audiences: Some(HashSet::from([endpoint_origin.to_owned()])),
        required_subject: Some(SUBJECT.into()),
        time_tolerance: None,
        ..Default::default()
    };
    let claims = key
        .verify_token::<NoCustomClaims>(&parts["t"], Some(options))
        .expect("valid VAPID token");
    let exp = claims.expires_at.expect("exp").as_secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("now")
        .as_secs();
    assert!(
        exp > now && exp <= now + 24 * 3600,
        "exp within 24 h (RFC 8292)"
    );
}

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

/// An app that allows only the test name `push.palaver.test` past the guard.
async fn strict_app() -> TestApp {
    spawn_app_with(|c| c.push.outbound_allow = vec!["push.palaver.test".into()]).await
}

/// A request as `user`, answered as `(status, JSON body)`.
async fn call(user: &TestUser, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    user.api.raw(method, path, body).await.expect("request")
}

#[track_caller]
fn assert_error(got: (u16, Value), status: u16, code: ErrorCode) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code.as_str(), "{}", got.1);
}

#[tokio::test]
async fn subscriptions_refuse_internal_endpoints() {
    let app = strict_app().await;
    let bob = app.user("bob").await;
    for endpoint in [
        "https://127.0.0.1/push",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/push",
        "https://10.1.2.3/push",
        "https://[::1]/push",
        "https://[fd00::1]/push",
        "https://localhost/push",
        "http://push.example.com/push",
        "ftp://push.example.com/push",
        "not a url",
    ] {
        let mut sub = Browser::new(endpoint.into()).json();
        sub["endpoint"] = json!(endpoint);
        let got = call(&bob, Method::POST, "/api/v1/push/subscriptions", Some(&sub)).await;
        assert_error(got, 422, ErrorCode::ValidationFailed);
    }
    let (_, body) = call(&bob, Method::GET, "/api/v1/push/subscriptions", None).await;
    assert_eq!(body["subscriptions"], json!([]));
}

#[tokio::test]
async fn the_guarded_client_refuses_internal_addresses_and_redirects_to_them() {
    let fake = FakePush::start().await;
    let timeout = Duration::from_secs(5);
    let strict = Outbound::new(AllowList::default(), timeout).expect("client");
    let post = |o: &Outbound, url: String| {
        let o = o.clone();
        async move {
            o.post(
                &url::Url::parse(&url).expect("url"),
                Default::default(),
                Vec::new(),
            )
            .await
        }
    };
    // Straight to an internal address, by literal or by a name that resolves to one.
    for url in [
        fake.url("x"),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[::ffff:127.0.0.1]/".into(),
        "http://10.0.0.1/".into(),
        fake.url("x")
            .replace("127.0.0.1", "localhost")
            .replace("http:", "https:"),
    ] {
        let got = post(&strict, url.clone()).await;
        assert!(
            matches!(got, Err(OutboundError::Refused(_))),
            "{url}: {got:?}"
        );
    }
    // Allowed: the fake service itself. Not allowed: where it redirects.
    let allowed = Outbound::new(
        AllowList::parse(&["127.0.0.1".into()]).expect("allow"),
        timeout,
    )
    .expect("client");
    assert_eq!(
        post(&allowed, fake.url("x"))
            .await
            .expect("allowed")
            .status(),
        201
    );
    let port = fake.base.rsplit(':').next().expect("port");
    for target in [
        format!("http://127.0.0.2:{port}/push/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/push/x"),
        format!("http://[::1]:{port}/push/x"),
        "http://169.254.169.254/".into(),
    ] {
        let url = format!(
            "{}/redirect?to={}",
            fake.base,
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        );
        let got = post(&allowed, url).await;
        assert!(
            matches!(got, Err(OutboundError::Refused(_))),
            "redirect to {target}: {got:?}"
        );
    }
}

/// How many deliveries the SSRF guard refused so far (process-wide: the metrics recorder
/// is shared by every server in this test binary).
async fn refused_deliveries(app: &TestApp) -> u64 {
    let text = reqwest::get(format!("{}/metrics", app.metrics_base))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find(|l| l.starts_with(r#"palaver_push_failed_total{reason="refused"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_webhook_goes_through_the_same_guard() {
    let mut fake = FakePush::start().await;
    let port = fake.base.rsplit(':').next().expect("port").to_owned();
    let via_redirect = |target: &str| {
        format!(
            "{}/redirect?to={}",
            fake.base,
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        )
    };
    for (allow, hook) in [
        // Straight to loopback, which the operator did not allow.
        (vec![], fake.url("hook")),
        // Loopback allowed, but the allowed host redirects to an address spelled
        // differently (IPv4-mapped IPv6) that reaches the same listener.
        (
            vec!["127.0.0.1".to_owned()],
            via_redirect(&format!("http://[::ffff:127.0.0.1]:{port}/push/hook")),
        ),
        // ... or to the cloud metadata address.
        (
            vec!["127.0.0.1".to_owned()],
            via_redirect("http://169.254.169.254/latest/meta-data/"),
        ),
    ] {
        let app = spawn_app_with(|c| {
            push_config(c);
            c.push.outbound_allow = allow.clone();
            c.push.max_attempts = 1;
            c.push.webhook_url = Some(hook.clone());
            c.push.webhook_secret = Some(WEBHOOK_SECRET.into());
        })
        .await;
        let (alice, bob) = (app.user("alice").await, app.user("bob").await);
        let room = alice.dm(&bob).await;
        let before = refused_deliveries(&app).await;
        alice.send(room.id, "to the gateway").await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while refused_deliveries(&app).await <= before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{hook}: no refused delivery counted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        fake.assert_silent(QUIET).await;
    }
}

#[tokio::test]
async fn push_endpoints_answer_bad_input_in_the_error_shape() {
    let app = strict_app().await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let room = alice.dm(&bob).await;
    let good = Browser::new("https://push.palaver.test/sub/1".into());
    let anonymous = app.client();

    // Every endpoint wants a token.
    let id = Uuid::now_v7();
    for (method, path) in [
        (Method::GET, "/api/v1/push/vapid-public-key".to_owned()),
        (Method::GET, "/api/v1/push/subscriptions".to_owned()),
        (Method::POST, "/api/v1/push/subscriptions".to_owned()),
        (Method::DELETE, format!("/api/v1/push/subscriptions/{id}")),
        (Method::GET, "/api/v1/push/settings".to_owned()),
        (Method::PUT, "/api/v1/push/settings".to_owned()),
        (Method::PUT, format!("/api/v1/rooms/{}/mute", room.id)),
        (Method::DELETE, format!("/api/v1/rooms/{}/mute", room.id)),
    ] {
        let got = anonymous
            .raw(method.clone(), &path, Some(&good.json()))
            .await
            .expect("request");
        assert_error(got, 401, ErrorCode::Unauthorized);
    }

    // Malformed and oversized bodies.
    let post_raw = |body: String| {
        let (base, token) = (app.base.clone(), bob.auth.access_token.clone());
        async move {
            let resp = reqwest::Client::new()
                .post(format!("{base}/api/v1/push/subscriptions"))
                .header("content-type", "application/json")
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .expect("post");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_error(
        post_raw("{\"endpoint\": ".into()).await,
        400,
        ErrorCode::BadRequest,
    );
    assert_error(
        post_raw("{\"endpoint\": \"https://push.palaver.test/x\"}".into()).await,
        400,
        ErrorCode::BadRequest,
    );
    assert_error(
        post_raw(format!("{{\"endpoint\": \"{}\"}}", "x".repeat(70_000))).await,
        413,
        ErrorCode::PayloadTooLarge,
    );
    let mut long = good.json();
    long["endpoint"] = json!(format!("https://push.palaver.test/{}", "a".repeat(3000)));
    assert_error(
        post_raw(long.to_string()).await,
        413,
        ErrorCode::PayloadTooLarge,
    );
    let mut bad_key = good.json();
    bad_key["keys"]["p256dh"] = json!(URL_SAFE_NO_PAD.encode([4u8; 65]));
    assert_error(
        post_raw(bad_key.to_string()).await,
        422,
        ErrorCode::ValidationFailed,
    );
    let mut bad_auth = good.json();
    bad_auth["keys"]["auth"] = json!(URL_SAFE_NO_PAD.encode([1u8; 8]));
    assert_error(
        post_raw(bad_auth.to_string()).await,
        422,
        ErrorCode::ValidationFailed,
    );
    let mut not_b64 = good.json();
    not_b64["keys"]["auth"] = json!("*not base64*");
    assert_error(
        post_raw(not_b64.to_string()).await,
        422,
        ErrorCode::ValidationFailed,
    );

    // Idempotent on the endpoint.
    let created = subscribe(&bob, &good).await;
    let (status, again) = call(
        &bob,
        Method::POST,
        "/api/v1/push/subscriptions",
        Some(&good.json()),
    )
    .await;
    assert_eq!(
        (status, again["id"].as_str()),
        (200, Some(created.id.to_string().as_str()))
    );
    let (_, list) = call(&bob, Method::GET, "/api/v1/push/subscriptions", None).await;
    assert_eq!(list["subscriptions"].as_array().map(Vec::len), Some(1));
    assert!(
        list["subscriptions"][0].get("keys").is_none(),
        "keys are never sent back"
    );

    // Someone else's subscription, an unknown one, a malformed id.
    let path = format!("/api/v1/push/subscriptions/{}", created.id);
    assert_error(
        call(&carol, Method::DELETE, &path, None).await,
        404,
        ErrorCode::SubscriptionNotFound,
    );
    let unknown = format!("/api/v1/push/subscriptions/{}", Uuid::now_v7());
    assert_error(
        call(&bob, Method::DELETE, &unknown, None).await,
        404,
        ErrorCode::SubscriptionNotFound,
    );
    assert_error(
        call(
            &bob,
            Method::DELETE,
            "/api/v1/push/subscriptions/nope",
            None,
        )
        .await,
        400,
        ErrorCode::BadRequest,
    );
    assert_eq!(call(&bob, Method::DELETE, &path, None).await.0, 204);
    assert_error(
        call(&bob, Method::DELETE, &path, None).await,
        404,
        ErrorCode::SubscriptionNotFound,
    );

    // Muting a room one is not in, or that does not exist.
    let foreign = format!("/api/v1/rooms/{}/mute", room.id);
    assert_error(
        call(&carol, Method::PUT, &foreign, None).await,
        404,
        ErrorCode::RoomNotFound,
    );
    assert_error(
        call(&carol, Method::DELETE, &foreign, None).await,
        404,
        ErrorCode::RoomNotFound,
    );
    let missing = format!("/api/v1/rooms/{}/mute", Uuid::now_v7());
    assert_error(
        call(&bob, Method::PUT, &missing, None).await,
        404,
        ErrorCode::RoomNotFound,
    );

    // An unknown preview value.
    let got = call(
        &bob,
        Method::PUT,
        "/api/v1/push/settings",
        Some(&json!({"preview": "everything"})),
    )
    .await;
    assert_error(got, 400, ErrorCode::BadRequest);
}

#[tokio::test]
async fn push_can_be_switched_off() {
    let app = spawn_app_with(|c| c.push.enabled = false).await;
    let bob = app.user("bob").await;
    let got = call(&bob, Method::GET, "/api/v1/push/vapid-public-key", None).await;
    assert_error(got, 503, ErrorCode::Unavailable);
    assert!(!app.data_dir().join("vapid-private.pem").exists());
}

#[tokio::test]
async fn the_vapid_key_is_generated_once_and_kept_private() {
    let app = spawn_app().await;
    let bob = app.user("bob").await;
    let key = vapid_key(&bob).await;
    assert_eq!(URL_SAFE_NO_PAD.decode(&key).expect("b64").len(), 65);
    let path = app.data_dir().join("vapid-private.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path)
                .expect("key file")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}).await;
    let bob = app.client().login("bob", PASSWORD).await.expect("login");
    let bob_api = app.client().with_token(&bob.access_token);
    let (_, body) = bob_api
        .raw(Method::GET, "/api/v1/push/vapid-public-key", None)
        .await
        .expect("key");
    assert_eq!(
        body["publicKey"].as_str(),
        Some(key.as_str()),
        "the same key after a restart"
    );
}

/// Another session of `user`'s (a login on another device).
async fn second_session(app: &TestApp, user: &TestUser) -> TestUser {
    let auth = app
        .client()
        .login(&user.name, PASSWORD)
        .await
        .expect("login");
    TestUser {
        api: app.client().with_token(&auth.access_token),
        id: user.id,
        name: user.name.clone(),
        auth,
    }
}

async fn endpoints(user: &TestUser) -> Vec<String> {
    let (status, list) = call(user, Method::GET, "/api/v1/push/subscriptions", None).await;
    assert_eq!(status, 200, "{list}");
    list["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .map(|s| s["endpoint"].as_str().expect("endpoint").to_owned())
        .collect()
}

#[tokio::test]
async fn another_account_cannot_take_over_a_subscription() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob, mallory) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("mallory").await,
    );
    let room = alice.dm(&bob).await;
    let browser = Browser::new(fake.url("bob"));
    subscribe(&bob, &browser).await;

    // Mallory has learned bob's endpoint and registers it with keys of her own, which
    // would silence bob's notifications (or hand them to her, with the endpoint's help).
    let hers = Browser::new(browser.endpoint.clone());
    let got = call(
        &mallory,
        Method::POST,
        "/api/v1/push/subscriptions",
        Some(&hers.json()),
    )
    .await;
    assert_error(got, 409, ErrorCode::Conflict);
    assert!(endpoints(&mallory).await.is_empty());
    assert_eq!(endpoints(&bob).await, vec![browser.endpoint.clone()]);

    // Bob's notifications still reach bob's browser, under bob's keys.
    let sent = alice.send(room.id, "hello bob").await;
    let r = fake.next().await;
    assert_eq!(r.name, "bob");
    assert_eq!(browser.decrypt(&r.body).last_seq, sent.seq);
    fake.assert_silent(QUIET).await;
}

#[tokio::test]
async fn a_session_that_ends_takes_its_subscriptions_along() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let room = alice.dm(&bob).await;
    let laptop = Browser::new(fake.url("laptop"));
    subscribe(&bob, &laptop).await;
    let phone_session = second_session(&app, &bob).await;
    let phone = Browser::new(fake.url("phone"));
    subscribe(&phone_session, &phone).await;
    let mut both = endpoints(&bob).await;
    both.sort();
    assert_eq!(both, vec![laptop.endpoint.clone(), phone.endpoint.clone()]);

    // Bob logs out on the laptop: its subscription goes, the phone's stays.
    let (status, body) = call(&bob, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        endpoints(&phone_session).await,
        vec![phone.endpoint.clone()]
    );
    alice.send(room.id, "after logout").await;
    assert_eq!(fake.next().await.name, "phone");
    fake.assert_silent(QUIET).await;
    // The laptop's endpoint is free now: whoever uses that browser next may register it.
    subscribe(&carol, &laptop).await;

    // A reused refresh token ends the phone's session, and its subscription with it.
    let rotated = phone_session
        .api
        .refresh(&phone_session.auth.refresh_token)
        .await
        .expect("refresh");
    let reused = app
        .client()
        .refresh(&phone_session.auth.refresh_token)
        .await;
    assert!(reused.is_err(), "reuse is refused");
    let fresh = second_session(&app, &bob).await;
    assert!(endpoints(&fresh).await.is_empty());
    assert!(
        app.client()
            .with_token(&rotated.access_token)
            .me()
            .await
            .is_err(),
        "the session ended"
    );
}

#[tokio::test]
async fn registering_ones_own_endpoint_again_moves_it_to_the_new_session() {
    let app = strict_app().await;
    let bob = app.user("bob").await;
    let browser = Browser::new("https://push.palaver.test/sub/bob".into());
    let first = subscribe(&bob, &browser).await;
    // Bob logs in again in the same browser (without logging out) and registers again.
    let again = second_session(&app, &bob).await;
    let (status, body) = call(
        &again,
        Method::POST,
        "/api/v1/push/subscriptions",
        Some(&browser.json()),
    )
    .await;
    assert_eq!(
        (status, body["id"].clone()),
        (200, json!(first.id)),
        "{body}"
    );
    // It now lives with the new session: ending the old one leaves it.
    let (status, _) = call(&bob, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    assert_eq!(endpoints(&again).await, vec![browser.endpoint.clone()]);
    let (status, _) = call(&again, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    let fresh = second_session(&app, &bob).await;
    assert!(endpoints(&fresh).await.is_empty());
}
