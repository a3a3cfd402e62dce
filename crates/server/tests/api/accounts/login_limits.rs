//! The login path against a hostile client: login rate limits per account and address,
//! an owner still let in while their account is flooded, IPv6 clients counted by /64,
//! malformed usernames refused before any limiter, and password hashing past the node's
//! bound answered 503 with Retry-After.

use palaver_server::config::{RateBucket, RateLimit};
use serde_json::{Value, json};

use crate::helpers::*;

use super::{assert_api_error, post};

#[tokio::test]
async fn login_attempts_are_rate_limited() {
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Login] = RateLimit::new(1, 2);
    })
    .await;
    app.user("alice").await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/auth/login", app.base);
    let attempt = |password: &'static str| {
        http.post(&url)
            .json(&json!({"username": "alice", "password": password}))
            .send()
    };

    let first = attempt(PASSWORD).await.expect("first");
    assert_eq!(first.status().as_u16(), 200);
    let second = attempt("wrong password").await.expect("second");
    assert_eq!(second.status().as_u16(), 401);
    let third = attempt(PASSWORD).await.expect("third");
    assert_eq!(third.status().as_u16(), 429);
    let retry_after: u64 = third
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .expect("Retry-After header")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = third.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["message"].is_string());

    // The limit is per address too: another username from here is also limited.
    let got = post(
        &app.client(),
        "/api/v1/auth/login",
        json!({"username": "bob", "password": PASSWORD}),
    )
    .await;
    assert_api_error(got, 429, "rate_limited");
}

// The hardening round (docs/SECURITY.md): the login path against a hostile client.

/// A login from `addr` as a trusted proxy would forward it: status, Retry-After, body.
async fn login_from(
    app: &TestApp,
    addr: &str,
    username: &str,
    password: &str,
) -> (u16, Option<u64>, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("x-forwarded-for", addr)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("login");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, resp.json().await.expect("json"))
}

#[tokio::test]
async fn a_malformed_username_is_refused_before_any_limiter() {
    // One login a minute from an address: if the 60 KB names below reached the limiter,
    // the address would be spent (and each would leave a key behind).
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Login] = RateLimit::new(1, 1);
    })
    .await;
    app.user("alice").await;
    let client = app.client();
    for i in 0..20 {
        let name = format!("{i}{}", "u".repeat(60_000));
        let got = post(
            &client,
            "/api/v1/auth/login",
            json!({"username": name, "password": PASSWORD}),
        )
        .await;
        assert_api_error(got, 422, "validation_failed");
    }
    for name in ["", "al", "al ice", "ålice"] {
        let got = post(
            &client,
            "/api/v1/auth/login",
            json!({"username": name, "password": PASSWORD}),
        )
        .await;
        assert_api_error(got, 422, "validation_failed");
    }
    // The address's one login is still there.
    client.login("alice", PASSWORD).await.expect("login");
}

#[tokio::test]
async fn a_flooded_account_still_lets_its_owner_in_from_another_address() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.rate_limits[RateBucket::Login] = RateLimit::new(1, 3);
        c.rate_limits[RateBucket::LoginFailure] = RateLimit::new(1, 3);
    })
    .await;
    app.user("alice").await;
    // Three addresses guess at alice until they are refused, and go on being refused.
    for attacker in ["203.0.113.1", "203.0.113.2", "2001:db8:1::1"] {
        let mut statuses = Vec::new();
        for _ in 0..8 {
            let (status, retry, body) = login_from(&app, attacker, "alice", "wrong guess").await;
            if status == 429 {
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                assert!(retry.is_some_and(|r| r >= 1), "Retry-After on a 429");
            }
            statuses.push(status);
        }
        assert_eq!(
            statuses,
            [401, 401, 401, 429, 429, 429, 429, 429],
            "{attacker}"
        );
    }
    // The owner, from an address of their own, gets in at once.
    let (status, _, body) = login_from(&app, "198.51.100.7", "alice", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    // And an attacker's refused address is refused even with the right password.
    let (status, _, _) = login_from(&app, "203.0.113.1", "alice", PASSWORD).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn failed_checks_are_limited_per_account_and_address_and_cleared_by_a_success() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.rate_limits[RateBucket::LoginFailure] = RateLimit::new(1, 3);
    })
    .await;
    app.user("alice").await;
    app.user("bob").await;
    let here = "192.0.2.10";
    for _ in 0..3 {
        assert_eq!(login_from(&app, here, "alice", "wrong guess").await.0, 401);
    }
    // Three failures at alice from here: no more checks of alice's password from here,
    // not even the right one, for about an hour.
    let (status, retry, body) = login_from(&app, here, "alice", PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some_and(|r| r > 60), "Retry-After {retry:?}");
    // Another account from here, and alice from elsewhere, are not affected.
    assert_eq!(login_from(&app, here, "bob", PASSWORD).await.0, 200);
    assert_eq!(
        login_from(&app, "192.0.2.11", "alice", PASSWORD).await.0,
        200
    );
    // A success clears the address's failures: two more typos, a success, three typos.
    let there = "192.0.2.12";
    for password in ["typo one", "typo two", PASSWORD, "a", "b", "c"] {
        let want = if password == PASSWORD { 200 } else { 401 };
        assert_eq!(login_from(&app, there, "alice", password).await.0, want);
    }
    // Unknown usernames are counted the same way (no enumeration through 429s).
    for _ in 0..3 {
        assert_eq!(login_from(&app, here, "nobody", PASSWORD).await.0, 401);
    }
    assert_eq!(login_from(&app, here, "nobody", PASSWORD).await.0, 429);
}

#[tokio::test]
async fn an_ipv6_client_is_counted_by_its_64() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.rate_limits[RateBucket::Login] = RateLimit::new(1, 2);
    })
    .await;
    // Two addresses of one /64 share its burst of two (a different username each time,
    // so only the address can be what limits).
    let attempts = [
        ("2001:db8:5:6::1", 401),
        ("2001:db8:5:6:ffff::2", 401),
        ("2001:db8:5:6:1:2:3:4", 429),
        // The next /64 is someone else.
        ("2001:db8:5:7::1", 401),
    ];
    for (i, (addr, want)) in attempts.into_iter().enumerate() {
        let (status, _, body) = login_from(&app, addr, &format!("nobody{i}"), PASSWORD).await;
        assert_eq!(status, want, "{addr}: {body}");
    }
}

#[tokio::test]
async fn password_hashing_past_the_node_bound_answers_503_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.passwords.max_concurrent_hashes = 1;
        c.passwords.hash_wait_ms = 0;
    })
    .await;
    app.user("alice").await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/auth/login", app.base);
    let attempts = (0..16).map(|i| {
        let (http, url) = (http.clone(), url.clone());
        let password = if i % 2 == 0 { PASSWORD } else { "wrong guess" };
        async move {
            let resp = http
                .post(&url)
                .json(&json!({"username": "alice", "password": password}))
                .send()
                .await
                .expect("login");
            let status = resp.status().as_u16();
            let retry = resp.headers().get(reqwest::header::RETRY_AFTER).cloned();
            let body: Value = resp.json().await.expect("json");
            (status, retry, body)
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let busy: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "16 logins at once with one hashing slot");
    for (_, retry, body) in &busy {
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
        assert_eq!(retry.as_ref().and_then(|v| v.to_str().ok()), Some("1"));
    }
    assert!(
        answers.iter().all(|(s, _, _)| matches!(s, 200 | 401 | 503)),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    // The node is fine, and a login that waits its turn works.
    let health = http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    app.client().login("alice", PASSWORD).await.expect("login");
}
