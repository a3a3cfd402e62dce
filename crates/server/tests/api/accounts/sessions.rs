//! Sessions: refresh-token rotation (a reused refresh token ends the session), logout
//! everywhere and with or without a body or a refresh token, and the security events
//! the audit log records.

use palaver_client::ClientError;
use palaver_proto::close;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

use super::{assert_api_error, get, post};

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
