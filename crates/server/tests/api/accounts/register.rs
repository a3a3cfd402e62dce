//! Registering and logging in: 201 with tokens and the user, taken and invalid usernames,
//! weak passwords refused with a reason, and wrong credentials refused alike.

use palaver_client::ClientError;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::{assert_api_error, get, post};

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
