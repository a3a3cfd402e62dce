//! Health, readiness and Prometheus metrics (on their own listener or the main one), and
//! the `Cache-Control` that keeps tokens and private answers out of caches.

use palaver_server::config::{RateBucket, RateLimit};
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

/// The value of the first sample of `name` whose labels include each of `labels`
/// (`role="store"`), in Prometheus text.
fn sample_with(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// What the alert rules in deploy/prometheus read besides traffic: each engine's check,
/// the disk under the data directory and the upload floor, and rate-limit refusals
/// counted by bucket where the limiter refuses.
#[tokio::test]
async fn metrics_report_engines_disk_and_refusals_by_bucket() {
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Login] = RateLimit::new(1, 1);
    })
    .await;
    app.user("alice").await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = http
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"username": "alice", "password": "wrong password"}))
            .send()
            .await
            .expect("login");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [401, 429], "the second login is over the limit");

    let text = reqwest::get(format!("{}/metrics", app.metrics_base))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    for role in ["store", "bus", "cache"] {
        let role_label = format!("role=\"{role}\"");
        assert_eq!(
            sample_with(&text, "palaver_engine_up", &[&role_label]),
            Some(1.0),
            "{role} answers, in\n{text}"
        );
    }
    for dir in ["data", "uploads"] {
        let dir_label = format!("dir=\"{dir}\"");
        let free = sample_with(&text, "palaver_disk_free_bytes", &[&dir_label]);
        let size = sample_with(&text, "palaver_disk_size_bytes", &[&dir_label]);
        assert!(
            matches!((free, size), (Some(free), Some(size)) if size > 0.0 && free <= size),
            "{dir}: free {free:?} of {size:?}"
        );
    }
    assert!(sample_with(&text, "palaver_media_min_free_disk_bytes", &[]).is_some());
    // The counter is process-wide (other tests refuse logins too): at least this one.
    let refused = sample_with(&text, "palaver_rate_limited_total", &["bucket=\"login\""]);
    assert!(refused >= Some(1.0), "login refusals: {refused:?}");
    // Every bucket is there from the start, at zero if nothing was refused.
    let buckets = text
        .lines()
        .filter(|l| l.starts_with("palaver_rate_limited_total{"))
        .count();
    assert_eq!(buckets, RateBucket::ALL.len(), "one series per bucket");
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
