//! Accounts and sessions: register, login, profiles, refresh-token rotation, logout,
//! login rate limits and the audit log.

use palaver_client::ClientError;
use palaver_proto::{User, close};
use palaver_server::config::{RateBucket, RateLimit};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// Asserts an HTTP answer is the error shape with this status and code.
#[track_caller]
fn assert_api_error(got: (u16, Value), status: u16, code: &str) {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "status; body: {body}");
    assert_eq!(body["error"]["code"], code, "error code; body: {body}");
    assert!(
        body["error"]["message"].is_string(),
        "error message; body: {body}"
    );
}

async fn post(client: &palaver_client::Client, path: &str, body: Value) -> (u16, Value) {
    client
        .raw(Method::POST, path, Some(&body))
        .await
        .expect("request")
}

async fn get(client: &palaver_client::Client, path: &str) -> (u16, Value) {
    client.raw(Method::GET, path, None).await.expect("request")
}

#[tokio::test]
async fn register_answers_201_with_tokens_and_the_user() {
    let app = spawn_app().await;
    let (status, body) = post(
        &app.client(),
        "/api/v1/auth/register",
        json!({"username": "Alice", "password": PASSWORD, "displayName": "Alice A."}),
    )
    .await;
    assert_eq!(status, 201, "body: {body}");
    let access = body["accessToken"].as_str().expect("accessToken");
    let refresh = body["refreshToken"].as_str().expect("refreshToken");
    assert!(!access.is_empty() && !refresh.is_empty());
    assert_ne!(access, refresh);
    let id: Uuid = body["user"]["id"]
        .as_str()
        .expect("user.id")
        .parse()
        .expect("uuid");
    assert_eq!(
        body["user"]["username"], "alice",
        "usernames are kept lowercase"
    );
    assert_eq!(body["user"]["displayName"], "Alice A.");

    // The access token works at once.
    let me = app.client().with_token(access).me().await.expect("me");
    assert_eq!(me.id, id);
    assert_eq!(me.username, "alice");

    // Without a displayName, the username is the display name.
    let (status, body) = post(
        &app.client(),
        "/api/v1/auth/register",
        json!({"username": "bob", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 201, "body: {body}");
    assert_eq!(body["user"]["displayName"], "bob");
}

#[tokio::test]
async fn a_taken_username_is_refused_case_insensitively() {
    let app = spawn_app().await;
    app.user("alice").await;
    for name in ["alice", "ALICE", "Alice", " alice "] {
        let got = post(
            &app.client(),
            "/api/v1/auth/register",
            json!({"username": name, "password": PASSWORD}),
        )
        .await;
        assert_api_error(got, 409, "username_taken");
    }
    // Still exactly one alice.
    let searcher = app.user("zed").await;
    let (status, body) = get(&searcher.api, "/api/v1/users?q=alice").await;
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(body["users"].as_array().expect("users").len(), 1);
}

#[tokio::test]
async fn invalid_usernames_and_passwords_are_refused_with_422() {
    let app = spawn_app().await;
    let long = "a".repeat(33);
    let bad_usernames = ["al", "al ice", "ålice", "alice!", long.as_str(), ""];
    for name in bad_usernames {
        let got = post(
            &app.client(),
            "/api/v1/auth/register",
            json!({"username": name, "password": PASSWORD}),
        )
        .await;
        assert_api_error(got, 422, "validation_failed");
    }
    let long_password = "p".repeat(257);
    for password in ["short", "1234567", long_password.as_str()] {
        let got = post(
            &app.client(),
            "/api/v1/auth/register",
            json!({"username": "alice", "password": password}),
        )
        .await;
        assert_api_error(got, 422, "validation_failed");
    }
    let got = post(
        &app.client(),
        "/api/v1/auth/register",
        json!({"username": "alice", "password": PASSWORD, "displayName": "   "}),
    )
    .await;
    assert_api_error(got, 422, "validation_failed");
    // None of these created an account: the name is still free.
    let (status, body) = post(
        &app.client(),
        "/api/v1/auth/register",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 201, "body: {body}");
}

#[tokio::test]
async fn login_answers_200_and_refuses_wrong_credentials_alike() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let (status, body) = post(
        &app.client(),
        "/api/v1/auth/login",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(body["user"]["id"], alice.id.to_string());
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["displayName"], "Alice");
    let access = body["accessToken"].as_str().expect("accessToken");
    assert!(
        !body["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .is_empty()
    );
    assert_ne!(
        access, alice.auth.access_token,
        "a login opens a new session"
    );
    assert_eq!(
        app.client().with_token(access).me().await.expect("me").id,
        alice.id
    );

    // Usernames are case-insensitive at login too.
    let auth = app
        .client()
        .login("ALICE", PASSWORD)
        .await
        .expect("login in capitals");
    assert_eq!(auth.user.id, alice.id);

    // Wrong password and unknown user look the same.
    let wrong = post(
        &app.client(),
        "/api/v1/auth/login",
        json!({"username": "alice", "password": "not the password"}),
    )
    .await;
    let unknown = post(
        &app.client(),
        "/api/v1/auth/login",
        json!({"username": "nobody", "password": PASSWORD}),
    )
    .await;
    assert_eq!(wrong.1, unknown.1, "no user enumeration through the body");
    assert_api_error(wrong, 401, "invalid_credentials");
    assert_api_error(unknown, 401, "invalid_credentials");

    let err = app
        .client()
        .login("alice", "PASSWORD?")
        .await
        .expect_err("wrong password");
    assert!(
        matches!(
            err,
            ClientError::Api {
                status: 401,
                code: palaver_proto::ErrorCode::InvalidCredentials,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn profile_read_update_lookup_and_search() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let albert = app.user("albert").await;
    let bob = app.user("bob").await;

    // GET /users/me
    let (status, body) = get(&alice.api, "/api/v1/users/me").await;
    assert_eq!(status, 200, "body: {body}");
    let me: User = serde_json::from_value(body).expect("user");
    assert_eq!(
        (me.id, me.username.as_str(), me.display_name.as_str()),
        (alice.id, "alice", "Alice")
    );

    // PATCH /users/me
    let (status, body) = alice
        .api
        .raw(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&json!({"displayName": "  Alice Liddell "})),
        )
        .await
        .expect("patch");
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(body["displayName"], "Alice Liddell", "trimmed");
    assert_eq!(body["id"], alice.id.to_string());
    assert_eq!(
        alice.api.me().await.expect("me").display_name,
        "Alice Liddell"
    );

    // An invalid name is refused and changes nothing.
    for bad in [
        json!({"displayName": ""}),
        json!({"displayName": "   "}),
        json!({"displayName": "x".repeat(65)}),
        json!({"displayName": "bell\u{7}"}),
    ] {
        let got = alice
            .api
            .raw(Method::PATCH, "/api/v1/users/me", Some(&bad))
            .await
            .expect("patch");
        assert_api_error(got, 422, "validation_failed");
    }
    assert_eq!(
        alice.api.me().await.expect("me").display_name,
        "Alice Liddell"
    );

    // GET /users/{id}: others see the new name.
    let (status, body) = get(&bob.api, &format!("/api/v1/users/{}", alice.id)).await;
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(body["id"], alice.id.to_string());
    assert_eq!(body["username"], "alice");
    assert_eq!(body["displayName"], "Alice Liddell");
    let got = get(&bob.api, &format!("/api/v1/users/{}", Uuid::now_v7())).await;
    assert_api_error(got, 404, "user_not_found");

    // GET /users?q=prefix, by username or display name, case-insensitively.
    let names = |body: &Value| -> Vec<String> {
        let mut v: Vec<String> = body["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["username"].as_str().expect("username").to_owned())
            .collect();
        v.sort();
        v
    };
    let (status, body) = get(&bob.api, "/api/v1/users?q=al").await;
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(names(&body), ["albert", "alice"]);
    let (_, body) = get(&bob.api, "/api/v1/users?q=AL").await;
    assert_eq!(names(&body), ["albert", "alice"]);
    let (_, body) = get(&bob.api, "/api/v1/users?q=alb").await;
    assert_eq!(names(&body), ["albert"]);
    assert_eq!(body["users"][0]["id"], albert.id.to_string());
    let (_, body) = get(&bob.api, "/api/v1/users?q=Alice%20L").await;
    assert_eq!(names(&body), ["alice"], "display-name prefix");
    let (_, body) = get(&bob.api, "/api/v1/users?q=zz").await;
    assert!(names(&body).is_empty());
    // LIKE wildcards match only themselves.
    let (_, body) = get(&bob.api, "/api/v1/users?q=%25").await;
    assert!(names(&body).is_empty(), "{body}");
    let (_, body) = get(&bob.api, "/api/v1/users?q=_").await;
    assert!(names(&body).is_empty(), "{body}");
    let got = get(&bob.api, "/api/v1/users?q=").await;
    assert_api_error(got, 422, "validation_failed");
    let got = get(&bob.api, "/api/v1/users").await;
    assert_api_error(got, 400, "bad_request");

    // All of these need a token.
    for path in ["/api/v1/users/me", "/api/v1/users?q=al"] {
        assert_api_error(get(&app.client(), path).await, 401, "unauthorized");
    }
    assert_api_error(
        get(&app.client(), &format!("/api/v1/users/{}", alice.id)).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_ends_the_session() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let first = alice.auth.clone();

    let (status, body) = post(
        &app.client(),
        "/api/v1/auth/refresh",
        json!({"refreshToken": first.refresh_token}),
    )
    .await;
    assert_eq!(status, 200, "body: {body}");
    let second: palaver_proto::AuthResponse = serde_json::from_value(body).expect("auth response");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.user.id, alice.id);
    let rotated = app.client().with_token(&second.access_token);
    assert_eq!(
        rotated.me().await.expect("new access token works").id,
        alice.id
    );

    // The rotated pair can itself be refreshed once.
    let third = app
        .client()
        .refresh(&second.refresh_token)
        .await
        .expect("refresh again");
    assert_ne!(third.refresh_token, second.refresh_token);

    // Presenting a retired refresh token: refused, and the whole session ends.
    let got = post(
        &app.client(),
        "/api/v1/auth/refresh",
        json!({"refreshToken": first.refresh_token}),
    )
    .await;
    assert_api_error(got, 401, "unauthorized");
    for token in [
        &first.access_token,
        &second.access_token,
        &third.access_token,
    ] {
        let got = get(&app.client().with_token(token.as_str()), "/api/v1/users/me").await;
        assert_api_error(got, 401, "unauthorized");
    }
    let got = post(
        &app.client(),
        "/api/v1/auth/refresh",
        json!({"refreshToken": third.refresh_token}),
    )
    .await;
    assert_api_error(got, 401, "unauthorized");

    // Other sessions of the same user are untouched.
    let other = app.client().login("alice", PASSWORD).await.expect("login");
    assert_eq!(
        app.client()
            .with_token(&other.access_token)
            .me()
            .await
            .expect("me")
            .id,
        alice.id
    );

    // Garbage refresh tokens.
    for token in [json!(""), json!("nope"), json!("x".repeat(300))] {
        let got = post(
            &app.client(),
            "/api/v1/auth/refresh",
            json!({"refreshToken": token}),
        )
        .await;
        assert_api_error(got, 401, "unauthorized");
    }
    let got = post(&app.client(), "/api/v1/auth/refresh", json!({})).await;
    assert_api_error(got, 400, "bad_request");
}

#[tokio::test]
async fn logout_ends_the_session_everywhere() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut socket = alice.connect().await;
    // A second session of alice's stays alive.
    let other = app.client().login("alice", PASSWORD).await.expect("login");
    let mut other_socket = app
        .client()
        .with_token(&other.access_token)
        .connect()
        .await
        .expect("connect");

    let (status, body) = alice
        .api
        .raw(Method::POST, "/api/v1/auth/logout", None)
        .await
        .expect("logout");
    assert_eq!(status, 204, "body: {body}");

    // The open socket of that session closes with 4001.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match socket.next_within(left).await {
            Ok(_) => continue,
            Err(ClientError::Closed(Some((close::SESSION_ENDED, _)))) => break,
            Err(other) => panic!("expected close 4001, got {other:?}"),
        }
    }

    // Its access token and refresh token no longer work.
    assert_api_error(
        get(&alice.api, "/api/v1/users/me").await,
        401,
        "unauthorized",
    );
    let got = post(
        &app.client(),
        "/api/v1/auth/refresh",
        json!({"refreshToken": alice.auth.refresh_token}),
    )
    .await;
    assert_api_error(got, 401, "unauthorized");
    let err = alice.api.connect().await.err().expect("socket refused");
    assert!(
        matches!(err, ClientError::Api { status: 401, .. }),
        "{err:?}"
    );
    // Logging out twice is refused: the token is dead.
    let got = alice
        .api
        .raw(Method::POST, "/api/v1/auth/logout", None)
        .await
        .expect("logout");
    assert_api_error(got, 401, "unauthorized");

    // The other session is untouched.
    assert_eq!(
        app.client()
            .with_token(&other.access_token)
            .me()
            .await
            .expect("me")
            .id,
        alice.id
    );
    let id = other_socket
        .send_frame(palaver_proto::ClientFrame::Ping)
        .await
        .expect("ping");
    assert!(matches!(
        other_socket.answer(&id, WAIT).await.expect("pong"),
        palaver_proto::ServerFrame::Pong { .. }
    ));
}

// Found by schema fuzzing: the body is optional, and a JSON `null` body (how some clients
// send "none") was refused with 400.
#[tokio::test]
async fn logout_takes_no_body_an_empty_one_or_null() {
    let app = spawn_app().await;
    app.user("alice").await;
    for body in [None, Some(Value::Null), Some(json!({}))] {
        let session = app.client().login("alice", PASSWORD).await.expect("login");
        let client = app.client().with_token(&session.access_token);
        let (status, got) = client
            .raw(Method::POST, "/api/v1/auth/logout", body.as_ref())
            .await
            .expect("logout");
        assert_eq!(status, 204, "{body:?}: {got}");
        assert_api_error(get(&client, "/api/v1/users/me").await, 401, "unauthorized");
    }
    // Anything else that is not the documented object is still refused.
    let session = app.client().login("alice", PASSWORD).await.expect("login");
    let client = app.client().with_token(&session.access_token);
    let got = client
        .raw(Method::POST, "/api/v1/auth/logout", Some(&json!([1])))
        .await
        .expect("logout");
    assert_api_error(got, 400, "bad_request");
}

#[tokio::test]
async fn logout_with_a_refresh_token_also_ends_that_session() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let other = app.client().login("alice", PASSWORD).await.expect("login");
    let (status, body) = alice
        .api
        .raw(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&json!({"refreshToken": other.refresh_token})),
        )
        .await
        .expect("logout");
    assert_eq!(status, 204, "body: {body}");
    assert_api_error(
        get(&alice.api, "/api/v1/users/me").await,
        401,
        "unauthorized",
    );
    let got = get(
        &app.client().with_token(&other.access_token),
        "/api/v1/users/me",
    )
    .await;
    assert_api_error(got, 401, "unauthorized");
    let got = post(
        &app.client(),
        "/api/v1/auth/refresh",
        json!({"refreshToken": other.refresh_token}),
    )
    .await;
    assert_api_error(got, 401, "unauthorized");

    // Someone else's refresh token cannot be used to end their session.
    let bob = app.user("bob").await;
    let mallory = app.user("mallory").await;
    let (status, _) = mallory
        .api
        .raw(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&json!({"refreshToken": bob.auth.refresh_token})),
        )
        .await
        .expect("logout");
    assert_eq!(status, 204);
    assert_eq!(bob.api.me().await.expect("bob still logged in").id, bob.id);
    let refreshed = app
        .client()
        .refresh(&bob.auth.refresh_token)
        .await
        .expect("bob's refresh token still works");
    assert_eq!(refreshed.user.id, bob.id);
}

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

/// The actions recorded in the audit log, oldest first.
async fn audit_actions(app: &TestApp) -> Vec<(String, Option<String>)> {
    app.db_rows("SELECT action, target FROM audit_log ORDER BY id")
        .await
        .into_iter()
        .map(|row| (row[0].clone().expect("action"), row[1].clone()))
        .collect()
}

#[tokio::test]
async fn security_events_are_audited() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let err = app
        .client()
        .login("alice", "wrong password")
        .await
        .expect_err("wrong password");
    assert_eq!(
        err.code(),
        Some(palaver_proto::ErrorCode::InvalidCredentials)
    );
    let (status, _) = alice
        .api
        .raw(Method::POST, "/api/v1/auth/logout", None)
        .await
        .expect("logout");
    assert_eq!(status, 204);

    let rows = audit_actions(&app).await;
    let actions: Vec<&str> = rows.iter().map(|(a, _)| a.as_str()).collect();
    let pos = |action: &str| {
        actions
            .iter()
            .position(|a| *a == action)
            .unwrap_or_else(|| panic!("no {action} in {actions:?}"))
    };
    let (register, failed, logout) = (
        pos("user.register"),
        pos("auth.login_failed"),
        pos("auth.logout"),
    );
    assert!(
        register < failed && failed < logout,
        "in order: {actions:?}"
    );
    assert_eq!(rows[register].1.as_deref(), Some("alice"));
    assert_eq!(rows[failed].1.as_deref(), Some("alice"));

    // Each action once.
    for action in ["user.register", "auth.login_failed", "auth.logout"] {
        let n = app
            .db_rows(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
            ))
            .await;
        assert_eq!(n[0][0].as_deref(), Some("1"), "{action}");
    }
    // No secret ends up in the log.
    for row in app.db_rows("SELECT detail FROM audit_log").await {
        let d = row[0].clone().unwrap_or_default();
        assert!(
            !d.contains(PASSWORD) && !d.contains("wrong password"),
            "secret in audit detail: {d}"
        );
    }
}

// Hardening (issue 13): the login path against a hostile client.

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

#[tokio::test]
async fn weak_passwords_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let nuls = "\0".repeat(8);
    for (username, password) in [
        ("alice", "password"),
        ("alice", "12345678"),
        ("alice", "        "),
        ("alice", nuls.as_str()),
        ("alice", "qwertyuiop"),
        ("charlotte-bronte", "charlotte-bronte"),
        ("charlotte-bronte", "Charlotte-Bronte1"),
    ] {
        let (status, body) = post(
            &app.client(),
            "/api/v1/auth/register",
            json!({"username": username, "password": password}),
        )
        .await;
        assert_eq!(status, 422, "{password:?}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            message.starts_with("password is too easy to guess"),
            "{message}"
        );
    }
    // The display name counts as the user's own too.
    let (status, body) = post(
        &app.client(),
        "/api/v1/auth/register",
        json!({"username": "alice", "password": "Wilhelmina Zuckerbrot", "displayName": "Wilhelmina Zuckerbrot"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    // Nothing was created, and a good password is taken.
    let (status, body) = post(
        &app.client(),
        "/api/v1/auth/register",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // The rule is a setting.
    let lax = spawn_app_with(|c| c.passwords.min_score = 0).await;
    let (status, body) = post(
        &lax.client(),
        "/api/v1/auth/register",
        json!({"username": "alice", "password": "password"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn invisible_and_bidi_display_names_are_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for bad in [
        "\u{200B}",
        "\u{200B}\u{200D}\u{FEFF}",
        " \u{2060} ",
        "\u{3164}",
        "Bob\u{202E}gnp.exe",
        "\u{202D}Alice",
        "Al\u{2066}ice\u{2069}",
    ] {
        let (status, body) = post(
            &app.client(),
            "/api/v1/auth/register",
            json!({"username": "mallory", "password": PASSWORD, "displayName": bad}),
        )
        .await;
        assert_eq!(status, 422, "register {bad:?}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
        let got = alice
            .api
            .raw(
                Method::PATCH,
                "/api/v1/users/me",
                Some(&json!({"displayName": bad})),
            )
            .await
            .expect("patch");
        assert_api_error(got, 422, "validation_failed");
    }
    assert_eq!(alice.api.me().await.expect("me").display_name, "Alice");
    // Joiners inside visible text (an emoji sequence) and right-to-left script are fine.
    for fine in ["👩\u{200D}💻 Alice", "أليس"] {
        let (status, body) = alice
            .api
            .raw(
                Method::PATCH,
                "/api/v1/users/me",
                Some(&json!({"displayName": fine})),
            )
            .await
            .expect("patch");
        assert_eq!(status, 200, "{fine:?}: {body}");
        assert_eq!(body["displayName"], fine);
    }
}
