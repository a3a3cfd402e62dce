//! Health, readiness and Prometheus metrics (on their own listener or the main one), and
//! the `Cache-Control` that keeps tokens and private answers out of caches.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

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
