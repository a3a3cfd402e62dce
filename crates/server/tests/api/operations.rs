//! Operations: health, readiness, metrics, the OpenAPI document, graceful shutdown and
//! restart, TLS, presence and heartbeats.

use std::time::Duration;

use palaver_client::{ClientError, Socket};
use palaver_proto::{ClientFrame, LastSeen, Presence, PresenceStatus, Room, ServerFrame, close};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::*;

/// Waits for a `presence` frame about `user` with `status`; returns its `lastSeen`.
async fn presence_frame(
    socket: &mut Socket,
    user: Uuid,
    status: PresenceStatus,
    within: Duration,
) -> Option<OffsetDateTime> {
    match socket
        .wait_for(within, |f| {
            matches!(f, ServerFrame::Presence { user_id, status: s, .. } if *user_id == user && *s == status)
        })
        .await
    {
        Ok(ServerFrame::Presence { last_seen, .. }) => last_seen,
        Ok(_) => unreachable!(),
        Err(err) => panic!("no presence {status:?} for {user} within {within:?}: {err}"),
    }
}

/// `GET` as `user`, decoded, with the status.
async fn get<T: serde::de::DeserializeOwned>(user: &TestUser, path: &str) -> T {
    user.api
        .call::<(), T>(Method::GET, path, None)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .1
}

/// Asserts that lastSeen is within the last minute (and not in the future).
#[track_caller]
fn recent(at: Option<OffsetDateTime>) {
    let at = at.expect("lastSeen is set");
    let now = OffsetDateTime::now_utc();
    assert!(
        at <= now + time::Duration::seconds(2) && at >= now - time::Duration::minutes(1),
        "lastSeen {at} is not within the last minute of {now}"
    );
}

/// Reads until the socket closes; returns the close code and reason.
async fn read_until_closed(socket: &mut Socket) -> Option<(u16, String)> {
    loop {
        match socket.next_within(WAIT).await {
            Ok(_) => continue,
            Err(ClientError::Closed(frame)) => return frame,
            Err(other) => panic!("expected the socket to close, got {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Health, readiness, metrics

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = spawn_app().await;
    let client = app.client();

    let (status, body) = client
        .raw(Method::GET, "/healthz", None)
        .await
        .expect("healthz");
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "status": "ok" }));

    let (status, body) = client
        .raw(Method::GET, "/readyz", None)
        .await
        .expect("readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let dm = alice.dm(&bob).await;
    let _bob_ws = bob.connect().await;
    alice.send(dm.id, "counted").await;

    let response = reqwest::get(format!("{}/metrics", app.metrics_base))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain"),
        "content type {content_type:?}"
    );
    let text = response.text().await.expect("body");

    // Every non-comment line is `name{labels} value`.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(
            value.parse::<f64>().is_ok(),
            "not a Prometheus sample line: {line:?}"
        );
    }
    let sample = |name: &str| -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let messages = sample("palaver_messages_total")
        .unwrap_or_else(|| panic!("palaver_messages_total in\n{text}"));
    assert!(messages >= 1.0, "palaver_messages_total = {messages}");
    assert!(
        sample("palaver_ws_connections").is_some(),
        "palaver_ws_connections in\n{text}"
    );
    assert!(
        text.contains("# TYPE palaver_messages_total counter"),
        "palaver_messages_total is a counter"
    );
    assert!(
        text.contains("# TYPE palaver_ws_connections gauge"),
        "palaver_ws_connections is a gauge"
    );

    // Not on the public listener.
    assert_ne!(app.metrics_base, app.base);
    let public = reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("GET /metrics on the main listener");
    assert_eq!(public.status().as_u16(), 404);
    let body: Value = public.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn metrics_can_stay_on_the_main_listener() {
    let app = spawn_app_with(|c| c.metrics_on_main_listener = true).await;
    assert_eq!(app.metrics_base, app.base);
    let response = reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("text");
    assert!(text.contains("# TYPE"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Caching

/// The `Cache-Control` of an answer.
fn cache_control(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn tokens_and_private_answers_are_not_stored_by_caches() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1{path}", app.base);
    let credentials = json!({ "username": "alice", "password": PASSWORD, "displayName": "Alice" });

    let registered = http
        .post(api("/auth/register"))
        .json(&credentials)
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status().as_u16(), 201);
    assert_eq!(cache_control(&registered).as_deref(), Some("no-store"));
    let auth: Value = registered.json().await.expect("json");

    let login = http
        .post(api("/auth/login"))
        .json(&credentials)
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 200);
    assert_eq!(cache_control(&login).as_deref(), Some("no-store"));

    let refreshed = http
        .post(api("/auth/refresh"))
        .json(&json!({ "refreshToken": auth["refreshToken"] }))
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status().as_u16(), 200);
    assert_eq!(cache_control(&refreshed).as_deref(), Some("no-store"));
    let auth: Value = refreshed.json().await.expect("json");
    let token = auth["accessToken"].as_str().expect("token");

    for path in ["/users/me", "/rooms", "/push/settings"] {
        let answer = http
            .get(api(path))
            .bearer_auth(token)
            .send()
            .await
            .expect(path);
        assert_eq!(answer.status().as_u16(), 200, "{path}");
        assert_eq!(
            cache_control(&answer).as_deref(),
            Some("no-store"),
            "{path}"
        );
    }
    // Errors too: they may name private things.
    let refused = http.get(api("/users/me")).send().await.expect("no token");
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(cache_control(&refused).as_deref(), Some("no-store"));
    // Plain HTTP: no HSTS.
    assert!(refused.headers().get("strict-transport-security").is_none());
}

// ---------------------------------------------------------------------------------------
// OpenAPI

/// Every REST path the server routes (crates/server/src/http), with its methods.
const REST_PATHS: &[(&str, &[&str])] = &[
    ("/api/v1/auth/register", &["post"]),
    ("/api/v1/auth/login", &["post"]),
    ("/api/v1/auth/refresh", &["post"]),
    ("/api/v1/auth/logout", &["post"]),
    ("/api/v1/users", &["get"]),
    ("/api/v1/users/me", &["get", "patch"]),
    ("/api/v1/users/{userId}", &["get"]),
    ("/api/v1/users/me/blocks", &["get"]),
    ("/api/v1/users/me/blocks/{userId}", &["put", "delete"]),
    ("/api/v1/rooms", &["get"]),
    ("/api/v1/rooms/create", &["post"]),
    ("/api/v1/rooms/{roomId}", &["get", "patch"]),
    ("/api/v1/rooms/{roomId}/members", &["post"]),
    (
        "/api/v1/rooms/{roomId}/members/{userId}",
        &["patch", "delete"],
    ),
    ("/api/v1/rooms/{roomId}/leave", &["post"]),
    ("/api/v1/rooms/{roomId}/accept", &["post"]),
    ("/api/v1/rooms/{roomId}/decline", &["post"]),
    ("/api/v1/rooms/{roomId}/receipts", &["get", "post"]),
    ("/api/v1/messages/send", &["post"]),
    ("/api/v1/messages/history", &["get"]),
    ("/api/v1/messages/{messageId}", &["get", "patch", "delete"]),
    ("/api/v1/chat/{conversationId}", &["get", "post"]),
    ("/api/v1/chat/status/{userId}", &["get"]),
    ("/api/v1/lastseen/{userId}", &["get"]),
    ("/api/v1/presence/{userId}", &["get"]),
    ("/api/v1/media/upload", &["post"]),
    ("/api/v1/media/usage", &["get"]),
    ("/api/v1/media/{mediaId}", &["get"]),
    ("/api/v1/media/{mediaId}/thumbnail", &["get"]),
    ("/api/v1/push/vapid-public-key", &["get"]),
    ("/api/v1/push/subscriptions", &["get", "post"]),
    ("/api/v1/push/subscriptions/{subscriptionId}", &["delete"]),
    ("/api/v1/push/settings", &["get", "put"]),
    ("/api/v1/rooms/{roomId}/mute", &["put", "delete"]),
    ("/api/v1/openapi.json", &["get"]),
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
];

#[tokio::test]
async fn the_openapi_document_lists_every_rest_path() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .expect("GET openapi.json");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("body");
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");

    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "OpenAPI 3.x, got {version}");
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, methods) in REST_PATHS {
        match paths.get(*path) {
            None => missing.push(format!("{path} (all)")),
            Some(item) => {
                for method in *methods {
                    if item.get(*method).is_none() {
                        missing.push(format!("{} {path}", method.to_uppercase()));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "missing from openapi.json: {missing:?}");
    // And the list here is complete: a new route needs a row.
    let unlisted: Vec<&String> = paths
        .keys()
        .filter(|p| !REST_PATHS.iter().any(|(known, _)| known == p))
        .collect();
    assert!(unlisted.is_empty(), "add these to REST_PATHS: {unlisted:?}");

    // Bearer authentication is described, and protected operations use it.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(
        paths["/api/v1/rooms"]["get"]["security"].is_array(),
        "GET /rooms needs a bearer token"
    );
    // The wire types are described as schemas.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in ["Room", "Message", "ErrorBody", "AuthResponse", "Presence"] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
}

/// Each documented operation as `(METHOD path, operation)`.
fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((format!("{} {path}", method.to_uppercase()), op));
        }
    }
    out
}

async fn openapi(app: &TestApp) -> Value {
    reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .expect("GET openapi.json")
        .json()
        .await
        .expect("the document is JSON")
}

// Found by schema fuzzing (tests/schema.rs): the query parameters of history, chat pages,
// user search and raw uploads were documented as required path parameters, so a client
// built from the document could not call them.
#[tokio::test]
async fn the_openapi_document_puts_each_parameter_where_it_goes() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    for (name, op) in operations(&doc) {
        let path = name.split(' ').nth(1).expect("path");
        for p in op["parameters"].as_array().into_iter().flatten() {
            let pname = p["name"].as_str().expect("parameter name");
            let templated = path.contains(&format!("{{{pname}}}"));
            match p["in"].as_str() {
                Some("path") => assert!(templated, "{name}: {pname} is not in the path"),
                Some("query") => assert!(!templated, "{name}: {pname} is in the path"),
                other => panic!("{name}: {pname} in {other:?}"),
            }
        }
    }
    let params = |path: &str, method: &str| -> Vec<(String, String, bool)> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or_default().to_owned(),
                    p["in"].as_str().unwrap_or_default().to_owned(),
                    p["required"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let q = |name: &str, required: bool| (name.to_owned(), "query".to_owned(), required);
    assert_eq!(
        params("/api/v1/messages/history", "get"),
        [
            q("roomId", true),
            q("before", false),
            q("after", false),
            q("limit", false)
        ]
    );
    assert_eq!(
        params("/api/v1/users", "get"),
        [q("q", true), q("limit", false)]
    );
    assert_eq!(
        params("/api/v1/media/upload", "post"),
        [q("filename", false)]
    );
    // And the server reads them from the query, as documented.
    let alice = app.user("alice").await;
    let (status, body) = alice
        .api
        .raw(reqwest::Method::GET, "/api/v1/users?q=ali", None)
        .await
        .expect("search");
    assert_eq!(status, 200, "{body}");
}

// Found by schema fuzzing: the answers the extractors and the auth layer give before any
// handler runs (400, 401, 413) were missing from most operations, and logout's body was
// documented as required although an empty one is accepted.
#[tokio::test]
async fn the_openapi_document_lists_the_common_error_answers() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    for (name, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        let has = |status: &str| responses.contains_key(status);
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            assert!(has("401"), "{name} needs a token but does not document 401");
        }
        let has_params = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
        let has_body = op.get("requestBody").is_some();
        if has_params || has_body {
            assert!(has("400"), "{name} takes input but does not document 400");
        }
        if has_body {
            assert!(has("413"), "{name} takes a body but does not document 413");
            assert!(has("408"), "{name} takes a body but does not document 408");
        }
        for (status, response) in responses {
            // 416 answers a byte range with `Content-Range: bytes */size` and no body.
            if (status.starts_with('4') || status.starts_with('5')) && status != "416" {
                let content = &response["content"];
                assert!(
                    content.get("application/json").is_some(),
                    "{name} {status}: errors have the one error shape"
                );
            }
        }
    }
    assert_eq!(
        doc["paths"]["/api/v1/auth/logout"]["post"]["requestBody"]["required"],
        Value::Null,
        "an empty logout body is accepted, so it is not required"
    );
}

// ---------------------------------------------------------------------------------------
// Graceful shutdown and restart

#[tokio::test]
async fn shutdown_says_going_away_and_a_restart_keeps_everything() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dm = alice.dm(&bob).await;
    let group = alice.group("Team", &[&bob, &carol]).await;
    for i in 0..5 {
        alice.send(dm.id, &format!("dm {i}")).await;
        bob.send(group.id, &format!("group {i}")).await;
    }
    // Some receipts, so markers are part of what must survive.
    let receipt = bob
        .api
        .raw(
            Method::POST,
            &format!("/api/v1/rooms/{}/receipts", dm.id),
            Some(&json!({ "seq": 3, "status": "read" })),
        )
        .await
        .expect("receipt");
    assert_eq!(receipt.0, 200, "{}", receipt.1);

    let rooms_before: Vec<(String, Vec<Room>)> = {
        let mut out = Vec::new();
        for user in [&alice, &bob, &carol] {
            out.push((user.name.clone(), user.api.rooms().await.expect("rooms")));
        }
        out
    };
    let dm_history = alice
        .api
        .history(dm.id, None, None, None)
        .await
        .expect("history")
        .messages;
    let group_history = carol
        .api
        .history(group.id, None, None, None)
        .await
        .expect("history")
        .messages;
    assert_eq!(dm_history.len(), 5);
    assert_eq!(group_history.len(), 5);

    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;

    // Stop while both sockets are open: each is closed with 1001 "going away".
    let stopping = tokio::spawn(app.stop());
    for (who, socket) in [("alice", &mut alice_ws), ("bob", &mut bob_ws)] {
        let closed = tokio::time::timeout(Duration::from_secs(20), read_until_closed(socket))
            .await
            .unwrap_or_else(|_| panic!("{who}'s socket was not closed"));
        let (code, _reason) =
            closed.unwrap_or_else(|| panic!("{who}'s socket closed without a close frame"));
        assert_eq!(
            code,
            close::GOING_AWAY,
            "{who}'s socket closed with going away"
        );
    }
    let dir = stopping.await.expect("stop task");

    // A new server over the same directory has everything.
    let app = spawn_in(dir, |_| {}).await;
    let mut again = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let auth = app
            .client()
            .login(name, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("{name} logs in after a restart: {e}"));
        again.push(app.client().with_token(&auth.access_token));
    }
    for ((name, before), api) in rooms_before.iter().zip(&again) {
        let after = api.rooms().await.expect("rooms after restart");
        assert_eq!(&after, before, "{name}'s rooms after a restart");
    }
    let (alice_api, carol_api) = (&again[0], &again[2]);
    let dm_after = alice_api
        .history(dm.id, None, None, None)
        .await
        .expect("history")
        .messages;
    assert_eq!(dm_after, dm_history, "the dm's history after a restart");
    let group_after = carol_api
        .history(group.id, None, None, None)
        .await
        .expect("history")
        .messages;
    assert_eq!(
        group_after, group_history,
        "the group's history after a restart"
    );

    // The routing table is back: a socket gets live messages of the old rooms.
    let mut bob_ws = again[1].connect().await.expect("connect after restart");
    // And it keeps working: seqs continue where they stopped.
    let next = alice_api
        .send(dm.id, "after-restart", "still here")
        .await
        .expect("send after restart")
        .1;
    assert_eq!(next.seq, 6);
    let live = bob_ws
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::Message { message } if message.id == next.id),
        )
        .await
        .expect("bob gets the new message live");
    assert!(matches!(live, ServerFrame::Message { message } if message.seq == 6));
    // A retry of a message sent before the restart is still recognised.
    let retry = alice_api
        .send(dm.id, &dm_history[0].client_msg_id, "dm 0")
        .await
        .expect("retry after restart");
    assert_eq!(retry.0, 200, "an idempotent retry survives a restart");
    assert_eq!(retry.1.id, dm_history[0].id);
}

// ---------------------------------------------------------------------------------------
// TLS

#[tokio::test]
async fn tls_serves_https() {
    let certs = tempfile::tempdir().expect("tempdir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let cert_pem = generated.cert.pem();
    let cert_path = certs.path().join("cert.pem");
    let key_path = certs.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).expect("write cert");
    std::fs::write(&key_path, generated.key_pair.serialize_pem()).expect("write key");

    let app = spawn_app_with(|c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;
    let port = app.addr.port();
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem certificate"),
        )
        .resolve("localhost", app.addr)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("https client");
    let base = format!("https://localhost:{port}");

    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("GET /healthz over https");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        health
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000"),
        "HSTS when the server speaks TLS itself"
    );
    let body: Value = health.json().await.expect("json");
    assert_eq!(body, json!({ "status": "ok" }));

    let registered = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({ "username": "alice", "password": PASSWORD, "displayName": "Alice" }))
        .send()
        .await
        .expect("register over https");
    assert_eq!(registered.status().as_u16(), 201);
    let auth: palaver_proto::AuthResponse = registered.json().await.expect("auth response");
    assert_eq!(auth.user.username, "alice");

    let me = http
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&auth.access_token)
        .send()
        .await
        .expect("GET /users/me over https");
    assert_eq!(me.status().as_u16(), 200);
    let me: palaver_proto::User = me.json().await.expect("user");
    assert_eq!(me.id, auth.user.id);

    // Plain HTTP to a TLS port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served on the TLS port"
    );
}

// ---------------------------------------------------------------------------------------
// Presence

#[tokio::test]
async fn presence_follows_connections() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    alice.dm(&bob).await;
    let mut alice_ws = alice.connect().await;

    // Before bob ever connects: offline, never seen.
    let never: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(never.user_id, bob.id);
    assert_eq!(never.status, PresenceStatus::Offline);
    assert_eq!(never.last_seen, None, "never connected");

    // Bob connects: alice hears he is online.
    let mut bob_ws = bob.connect().await;
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;
    for path in ["presence", "chat/status"] {
        let p: Presence = get(&alice, &format!("/api/v1/{path}/{}", bob.id)).await;
        assert_eq!(p.user_id, bob.id);
        assert_eq!(p.status, PresenceStatus::Online, "{path}");
        recent(p.last_seen);
    }
    let raw = alice
        .api
        .raw(Method::GET, &format!("/api/v1/presence/{}", bob.id), None)
        .await
        .expect("presence");
    assert_eq!(raw.1["status"], "online");
    assert_eq!(raw.1["userId"], bob.id.to_string());

    // Away, then back.
    let id = bob_ws
        .send_frame(ClientFrame::Presence {
            status: PresenceStatus::Away,
        })
        .await
        .expect("presence frame");
    bob_ws.answer(&id, WAIT).await.expect("presence accepted");
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Away, WAIT).await;
    let p: Presence = get(&alice, &format!("/api/v1/chat/status/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Away);
    bob_ws
        .send_text(r#"{"type":"presence","status":"online"}"#.into())
        .await
        .expect("presence frame");
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;
    // Offline is not something one says; one closes the socket.
    let id = bob_ws
        .send_frame(ClientFrame::Presence {
            status: PresenceStatus::Offline,
        })
        .await
        .expect("presence frame");
    let refused = bob_ws
        .answer(&id, WAIT)
        .await
        .expect_err("offline is refused");
    assert_eq!(
        refused.code(),
        Some(palaver_proto::ErrorCode::ValidationFailed)
    );

    // Bob disconnects: offline, with a recent lastSeen.
    bob_ws.close().await.expect("close");
    let seen = presence_frame(&mut alice_ws, bob.id, PresenceStatus::Offline, WAIT).await;
    recent(seen);
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Offline);
    recent(p.last_seen);
    let last: LastSeen = get(&alice, &format!("/api/v1/lastseen/{}", bob.id)).await;
    assert_eq!(last.user_id, bob.id);
    recent(last.last_seen);
    let raw = alice
        .api
        .raw(Method::GET, &format!("/api/v1/lastseen/{}", bob.id), None)
        .await
        .expect("lastseen");
    assert_eq!(raw.0, 200);
    assert!(raw.1["lastSeen"].is_string(), "{}", raw.1);

    // One's own presence is visible.
    let own: Presence = get(&alice, &format!("/api/v1/presence/{}", alice.id)).await;
    assert_eq!(own.status, PresenceStatus::Online);

    // Someone who shares no room with alice is as invisible as someone who does not exist.
    for path in ["presence", "chat/status", "lastseen"] {
        for target in [carol.id, Uuid::now_v7()] {
            let (status, body) = alice
                .api
                .raw(Method::GET, &format!("/api/v1/{path}/{target}"), None)
                .await
                .expect("request");
            assert_eq!(status, 404, "{path}: {body}");
            assert_eq!(body["error"]["code"], "user_not_found", "{path}");
        }
    }
    // And carol's own socket hears nothing about bob or alice.
    let mut carol_ws = carol.connect().await;
    let _bob_again = bob.connect().await;
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;
    assert_no_frame(&mut carol_ws, "presence of a stranger", |f| {
        matches!(f, ServerFrame::Presence { .. })
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_noticed() {
    let app = spawn_app_with(|c| c.heartbeat_interval_secs = 1).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    alice.dm(&bob).await;
    let mut alice_ws = alice.connect().await;

    // Bob's socket reads its hello and then nothing more, so it never answers a ping.
    let started = tokio::time::Instant::now();
    let mut bob_ws = bob.api.connect().await.expect("connect");
    match bob_ws.next_within(WAIT).await.expect("hello") {
        ServerFrame::Hello {
            heartbeat_interval, ..
        } => assert_eq!(heartbeat_interval, 1),
        other => panic!("expected hello, got {other:?}"),
    }
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;

    let seen = presence_frame(
        &mut alice_ws,
        bob.id,
        PresenceStatus::Offline,
        Duration::from_secs(6),
    )
    .await;
    recent(seen);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500),
        "bob was dropped after {elapsed:?}, before two heartbeat intervals"
    );
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Offline);

    // Alice, who answers pings as she reads, is still connected and served.
    let id = alice_ws.send_frame(ClientFrame::Ping).await.expect("ping");
    alice_ws.answer(&id, WAIT).await.expect("pong");
    drop(bob_ws);
}

#[tokio::test]
async fn a_heartbeat_timeout_closes_with_4002() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| c.heartbeat_interval_secs = 1).await;
    let bob = app.user("bob").await;
    // A socket that never says anything, pongs included: a raw client after the upgrade.
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let handshake = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        app.addr, bob.auth.access_token
    );
    stream
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got))
        .await
        .expect("the socket was closed")
        .expect("read");
    assert!(got.starts_with(b"HTTP/1.1 101"));
    // Server frames are unmasked: a close frame is 0x88, its length, then the code.
    let closed_with_4002 = got
        .windows(4)
        .any(|w| w[0] == 0x88 && w[1] >= 2 && w[2..4] == close::HEARTBEAT_TIMEOUT.to_be_bytes());
    assert!(closed_with_4002, "no close frame with 4002 in {got:?}");
}

#[tokio::test]
async fn presence_counts_every_device() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    alice.dm(&bob).await;
    let mut alice_ws = alice.connect().await;

    let phone = bob.connect().await;
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Online, WAIT).await;
    let laptop = bob.connect().await;
    assert_no_frame(&mut alice_ws, "presence for a second device", |f| {
        matches!(f, ServerFrame::Presence { .. })
    })
    .await;

    // One device gone: still online.
    phone.close().await.expect("close");
    assert_no_frame(&mut alice_ws, "offline while a device is connected", |f| {
        matches!(
            f,
            ServerFrame::Presence {
                status: PresenceStatus::Offline,
                ..
            }
        )
    })
    .await;
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Online);

    // The last one gone: offline.
    laptop.close().await.expect("close");
    presence_frame(&mut alice_ws, bob.id, PresenceStatus::Offline, WAIT).await;
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Offline);
}

#[tokio::test]
async fn presence_is_hidden_once_no_room_is_shared() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let group = alice.group("Team", &[&bob]).await;
    let _bob_ws = bob.connect().await;
    let p: Presence = get(&alice, &format!("/api/v1/presence/{}", bob.id)).await;
    assert_eq!(p.status, PresenceStatus::Online);

    let left = bob
        .api
        .raw(
            Method::POST,
            &format!("/api/v1/rooms/{}/leave", group.id),
            None,
        )
        .await
        .expect("leave");
    assert_eq!(left.0, 204, "{}", left.1);
    for path in ["presence", "chat/status", "lastseen"] {
        let (status, body) = alice
            .api
            .raw(Method::GET, &format!("/api/v1/{path}/{}", bob.id), None)
            .await
            .expect("request");
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "user_not_found");
    }
}

// Found by schema fuzzing with real ids: these answers were given but not documented.
#[tokio::test]
async fn the_answers_found_by_fuzzing_are_documented() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let group = alice.group("Team", &[&bob]).await.id;
    let message = alice.send(group, "hello").await.id;
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let api = alice.api.clone();
        async move {
            api.raw(method, &path, body.as_ref())
                .await
                .expect("request")
        }
    };
    let documented = |template: &str, method: &str, status: u16| {
        doc["paths"][template][method]["responses"]
            .get(status.to_string())
            .is_some()
    };
    use reqwest::Method;
    let cases = [
        (
            Method::DELETE,
            format!("/api/v1/messages/{message}"),
            None,
            "/api/v1/messages/{messageId}",
            200,
        ),
        // Deleted already.
        (
            Method::DELETE,
            format!("/api/v1/messages/{message}"),
            None,
            "/api/v1/messages/{messageId}",
            409,
        ),
        (
            Method::PATCH,
            format!("/api/v1/messages/{message}"),
            Some(json!({"content": "too late"})),
            "/api/v1/messages/{messageId}",
            409,
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{group}/members"),
            Some(json!({"userIds": []})),
            "/api/v1/rooms/{roomId}/members",
            422,
        ),
        (
            Method::PATCH,
            format!("/api/v1/rooms/{group}"),
            Some(json!({"name": " "})),
            "/api/v1/rooms/{roomId}",
            422,
        ),
        // The owner stepping down without handing ownership on.
        (
            Method::PATCH,
            format!("/api/v1/rooms/{group}/members/{}", alice.id),
            Some(json!({"role": "member"})),
            "/api/v1/rooms/{roomId}/members/{userId}",
            422,
        ),
        (
            Method::POST,
            format!("/api/v1/chat/{group}"),
            Some(json!({"clientMsgId": ""})),
            "/api/v1/chat/{conversationId}",
            422,
        ),
    ];
    for (method, path, body, template, status) in cases {
        let name = format!("{method} {path}");
        let (got, answer) = call(method.clone(), path, body).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert!(
            documented(template, &method.as_str().to_lowercase(), got),
            "{name} answers {got}, which {template} does not document"
        );
    }
}

// Links say which ids an answer carries and where they go next; schema fuzzing follows
// them to reach real rooms, messages and media. Each must name a real operation and only
// parameters that operation has.
#[tokio::test]
async fn the_openapi_links_lead_to_real_operations_and_parameters() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    let ops = operations(&doc);
    let by_id = |id: &str| {
        ops.iter()
            .find(|(_, op)| op["operationId"] == id)
            .map(|(_, op)| *op)
            .unwrap_or_else(|| panic!("no operation {id}"))
    };
    let mut count = 0;
    for (name, op) in &ops {
        for (status, response) in op["responses"].as_object().expect("responses") {
            for (link_name, link) in response["links"].as_object().into_iter().flatten() {
                count += 1;
                let target = by_id(link["operationId"].as_str().expect("operationId"));
                for (param, expression) in link["parameters"].as_object().into_iter().flatten() {
                    assert!(
                        target["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["name"] == param.as_str()),
                        "{name} {status} {link_name}: {param} is not a parameter of the target"
                    );
                    assert!(
                        expression
                            .as_str()
                            .is_some_and(|e| e.starts_with("$response.body#/")),
                        "{name} {status} {link_name}: {expression}"
                    );
                }
            }
        }
    }
    assert!(count >= 20, "only {count} links");
    // The room a create answers with is where its messages go.
    assert_eq!(
        doc["paths"]["/api/v1/rooms/create"]["post"]["responses"]["201"]["links"]["GetRoom"]["parameters"]
            ["roomId"],
        "$response.body#/id"
    );
    // Bodies too, in the document's camelCase.
    let create = &doc["paths"]["/api/v1/rooms/create"]["post"]["responses"]["201"]["links"];
    assert_eq!(create["Send"]["operationId"], "send");
    assert_eq!(
        create["Send"]["requestBody"]["roomId"],
        "$response.body#/id"
    );
    let register = &doc["paths"]["/api/v1/auth/register"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        register["CreateRoomWith"]["requestBody"]["memberIds"][0],
        "$response.body#/user/id"
    );
}

// ---------------------------------------------------------------------------------------
// The data directory

/// Permission bits of a path.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` and `dir` itself, with what its mode should be.
#[cfg(unix)]
fn everything_in(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u32)>) {
    out.push((dir.to_path_buf(), 0o700));
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_dir() {
            everything_in(&entry.path(), out);
        } else {
            out.push((entry.path(), 0o600));
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private_to_the_server() {
    use std::os::unix::fs::PermissionsExt;
    // An operator's directory made with a lax umask, holding a secret an older version
    // left readable.
    let dir = DataDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let secret = dir.path().join("jwt-secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").expect("write");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let app = spawn_in(dir, |_| {}).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let dm = alice.dm(&bob).await;
    alice.send(dm.id, "written to the database").await;
    let mut png = Vec::new();
    image::DynamicImage::new_rgb8(64, 48)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let media = alice
        .api
        .upload("pic.png", "image/png", png)
        .await
        .expect("upload");
    let thumbnail = alice
        .api
        .raw(
            reqwest::Method::GET,
            &format!("/api/v1/media/{}/thumbnail", media.id),
            None,
        )
        .await;
    assert!(thumbnail.is_ok());

    let data = app.data_dir().to_path_buf();
    let mut all = Vec::new();
    everything_in(&data, &mut all);
    let names: Vec<String> = all
        .iter()
        .map(|(p, _)| p.strip_prefix(&data).unwrap_or(p).display().to_string())
        .collect();
    for expected in ["jwt-secret", "vapid-private.pem", "media/objects"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    if !crate::CLUSTER_ENGINES {
        for expected in ["palaver.db", "palaver.db-wal", "palaver.db-shm"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }
    let objects = all
        .iter()
        .filter(|(p, want)| *want == 0o600 && p.starts_with(data.join("media/objects")))
        .count();
    assert!(objects >= 1, "an uploaded object in {names:?}");
    let loose: Vec<String> = all
        .iter()
        .filter(|(p, want)| mode(p) != *want)
        .map(|(p, want)| format!("{} is {:o}, not {want:o}", p.display(), mode(p)))
        .collect();
    assert!(loose.is_empty(), "{loose:#?}");
}

#[cfg(unix)]
#[tokio::test]
async fn an_upload_on_its_way_in_is_private_too() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // Half a multipart upload, then a pause: the server is buffering it.
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/media/upload HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 100000\r\n\r\n\
         --XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n",
        app.addr, alice.auth.access_token
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&[7u8; 20_000]).await.expect("some bytes");
    let tmp = app.data_dir().join("media/tmp");
    let deadline = tokio::time::Instant::now() + WAIT;
    let part = loop {
        let found = std::fs::read_dir(&tmp)
            .expect("media/tmp")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .next();
        if let Some(path) = found {
            break path;
        }
        assert!(tokio::time::Instant::now() < deadline, "no temporary file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(mode(&tmp), 0o700);
    assert_eq!(mode(&part), 0o600, "{}", part.display());
}
