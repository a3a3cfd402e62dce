//! Push notifications, end to end: a fake push service on a loopback port decrypts each
//! Web Push payload with the subscription's private key and verifies the VAPID token;
//! a fake webhook receiver verifies the signature. Also the SSRF guard and every new
//! endpoint's answers to bad input.
//!
//! The parts: `delivery` (Web Push and webhook notifications as they arrive), `guard` (the
//! SSRF guard), `endpoints` (the push endpoints' answers, switching push off, the VAPID
//! key) and `sessions` (whose session a subscription belongs to). The fake push service,
//! the browser side and the helpers they share are here.

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
use palaver_proto::{ErrorCode, PushNotification, PushSubscription};
use palaver_server::Config;
use parking_lot::Mutex;
use rand::RngCore;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256PublicKey};
use web_push_native::jwt_simple::claims::NoCustomClaims;
use web_push_native::jwt_simple::common::VerificationOptions;
use web_push_native::p256::SecretKey;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::helpers::*;

mod delivery;
mod endpoints;
mod guard;
mod sessions;

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
