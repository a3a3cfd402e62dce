//! Two-factor login: enrolling an authenticator (secret, confirmation, recovery codes),
//! the second step of a login with a TOTP or recovery code, codes used once, guesses
//! limited per account, expired challenges, turning it off, and the input each endpoint
//! refuses.
//!
//! Codes are made from the `otpauth://` URI the server hands out, as an app would. A
//! code is accepted once, for a time step later than the last accepted one, so each test
//! takes codes for increasing steps: the current one, then the next (within the one step
//! of skew the server allows either way).

use palaver_client::Client;
use palaver_proto::{AuthResponse, LoginResponse, SecondFactorChallenge};
use palaver_server::config::{RateBucket, RateLimit, SsoProviderConfig};
use reqwest::Method;
use serde_json::{Value, json};
use totp_rs::Totp;

use crate::helpers::*;

use super::{assert_api_error, get, post};

/// A user with two-factor login on: their authenticator and recovery codes.
struct Enrolled {
    user: TestUser,
    totp: Totp,
    recovery: Vec<String>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The code of the step after the current one.
fn next_code(totp: &Totp) -> String {
    totp.generate(now() + 30).to_string()
}

async fn delete(client: &Client, path: &str, body: Value) -> (u16, Value) {
    client
        .raw(Method::DELETE, path, Some(&body))
        .await
        .expect("request")
}

/// Enrols `name`'s authenticator and confirms it with the current code.
async fn enrolled(app: &TestApp, name: &str) -> Enrolled {
    let user = app.user(name).await;
    let (status, body) = post(&user.api, "/api/v1/auth/totp/enrol", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let uri = body["otpauthUri"].as_str().expect("otpauthUri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(name), "the account is named: {uri}");
    let qr = body["qrPng"].as_str().expect("qrPng");
    assert!(qr.starts_with("data:image/png;base64,"), "{qr:.40}");
    let totp = Totp::from_url(uri).expect("an app reads the URI");
    assert_eq!(
        totp.secret().to_base32(),
        body["secret"].as_str().expect("secret")
    );

    // Until confirmed, nothing changes at login.
    let pending = get(&user.api, "/api/v1/auth/totp").await;
    assert_eq!(pending.1["enabled"], false, "{:?}", pending);
    assert!(matches!(login(app, name).await, LoginResponse::Tokens(_)));

    let (status, body) = post(
        &user.api,
        "/api/v1/auth/totp/confirm",
        json!({"code": totp.generate_current().to_string()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let recovery: Vec<String> =
        serde_json::from_value(body["recoveryCodes"].clone()).expect("codes");
    assert_eq!(recovery.len(), 10);
    let (_, status) = get(&user.api, "/api/v1/auth/totp").await;
    assert_eq!(status, json!({"enabled": true, "recoveryCodesLeft": 10}));
    Enrolled {
        user,
        totp,
        recovery,
    }
}

async fn login(app: &TestApp, name: &str) -> LoginResponse {
    app.client()
        .login_start(name, PASSWORD)
        .await
        .expect("login")
}

/// Logs in with the password and expects a challenge.
async fn challenge(app: &TestApp, name: &str) -> SecondFactorChallenge {
    match login(app, name).await {
        LoginResponse::SecondFactor { second_factor } => second_factor,
        LoginResponse::Tokens(_) => panic!("{name} logged in without a second factor"),
    }
}

async fn answer(app: &TestApp, challenge: &str, code: &str) -> (u16, Value) {
    post(
        &app.client(),
        "/api/v1/auth/login/second-factor",
        json!({"challenge": challenge, "code": code}),
    )
    .await
}

#[tokio::test]
async fn a_login_asks_for_the_code_and_accepts_each_code_once() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;

    // The wire shape of the challenge, as agreed with every client.
    let (status, raw) = post(
        &app.client(),
        "/api/v1/auth/login",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(raw.get("accessToken").is_none(), "no tokens yet: {raw}");
    assert_eq!(raw["secondFactor"]["methods"], json!(["totp", "recovery"]));
    assert!(raw["secondFactor"]["expiresAt"].is_string(), "{raw}");

    let first = challenge(&app, "alice").await;
    // A wrong code, then the right one.
    let wrong = answer(&app, &first.challenge, "000000").await;
    assert_api_error(wrong, 401, "invalid_second_factor");
    let code = next_code(&alice.totp);
    let (status, body) = answer(&app, &first.challenge, &code).await;
    assert_eq!(status, 200, "{body}");
    let tokens: AuthResponse = serde_json::from_value(body).expect("tokens");
    assert_eq!(tokens.user.id, alice.user.id);
    let me = app.client().with_token(&tokens.access_token).me().await;
    assert_eq!(me.expect("the session works").id, alice.user.id);

    // The same code again, with the same challenge or a new one: refused.
    assert_api_error(
        answer(&app, &first.challenge, &code).await,
        401,
        "invalid_second_factor",
    );
    let second = challenge(&app, "alice").await;
    assert_api_error(
        answer(&app, &second.challenge, &code).await,
        401,
        "invalid_second_factor",
    );
    // The code of an earlier step than one used: refused as well.
    let earlier = alice.totp.generate_current().to_string();
    if earlier != code {
        assert_api_error(
            answer(&app, &second.challenge, &earlier).await,
            401,
            "invalid_second_factor",
        );
    }

    // The typed client takes the same path.
    let third = challenge(&app, "alice").await;
    let err = app
        .client()
        .login_second_factor(&third.challenge, "000000")
        .await
        .expect_err("wrong code");
    assert_eq!(
        err.code(),
        Some(palaver_proto::ErrorCode::InvalidSecondFactor)
    );
    let err = app
        .client()
        .login("alice", PASSWORD)
        .await
        .expect_err("needs the code");
    assert!(err.to_string().contains("second factor"), "{err}");
}

#[tokio::test]
async fn a_recovery_code_logs_in_once() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let code = &alice.recovery[3];
    // Case, spaces and dashes do not matter.
    let typed = code.replace('-', " ").to_uppercase();
    let first = challenge(&app, "alice").await;
    let (status, body) = answer(&app, &first.challenge, &typed).await;
    assert_eq!(status, 200, "{body}");
    let second = challenge(&app, "alice").await;
    assert_api_error(
        answer(&app, &second.challenge, code).await,
        401,
        "invalid_second_factor",
    );
    // The others still work, and the count went down by one.
    let (status, _) = answer(&app, &second.challenge, &alice.recovery[4]).await;
    assert_eq!(status, 200);
    let (_, left) = get(&alice.user.api, "/api/v1/auth/totp").await;
    assert_eq!(left["recoveryCodesLeft"], 8, "{left}");
    // Someone else's recovery code is no code of alice's.
    let bob = enrolled(&app, "bob").await;
    let third = challenge(&app, "alice").await;
    assert_api_error(
        answer(&app, &third.challenge, &bob.recovery[0]).await,
        401,
        "invalid_second_factor",
    );
}

#[tokio::test]
async fn guesses_at_the_code_are_limited_per_account() {
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::LoginFailure] = RateLimit::new(1, 3);
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let alice = enrolled(&app, "alice").await;
    let first = challenge(&app, "alice").await;
    // The confirmation's success cleared the bucket: three guesses, then 429.
    for guess in ["000000", "111111", "222222"] {
        assert_api_error(
            answer(&app, &first.challenge, guess).await,
            401,
            "invalid_second_factor",
        );
    }
    let limited = answer(&app, &first.challenge, &next_code(&alice.totp)).await;
    assert_api_error(limited, 429, "rate_limited");
    // From another address too: whoever answers a challenge knew the password.
    let from_elsewhere = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login/second-factor", app.base))
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"challenge": first.challenge, "code": "333333"}))
        .send()
        .await
        .expect("send");
    assert_eq!(from_elsewhere.status().as_u16(), 429);
    // Another account is not held back by alice's.
    let bob = enrolled(&app, "bob").await;
    let theirs = challenge(&app, "bob").await;
    let (status, _) = answer(&app, &theirs.challenge, &next_code(&bob.totp)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_challenge_expires_and_is_bound_to_its_account() {
    let app = spawn_app_with(|c| c.auth.second_factor_ttl_secs = 1).await;
    let alice = enrolled(&app, "alice").await;
    let bob = enrolled(&app, "bob").await;
    // Bob's challenge answered with alice's code is not alice's login.
    let bobs = challenge(&app, "bob").await;
    let (status, _) = answer(&app, &bobs.challenge, &next_code(&alice.totp)).await;
    assert_eq!(status, 401);
    let first = challenge(&app, "alice").await;
    // Past expiresAt (whole seconds), the challenge is refused whatever the code.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_api_error(
        answer(&app, &first.challenge, &alice.recovery[0]).await,
        401,
        "invalid_second_factor",
    );
    // A challenge is no access token, nor an access token a challenge.
    let fresh = challenge(&app, "alice").await;
    let (status, _) = get(
        &app.client().with_token(&fresh.challenge),
        "/api/v1/users/me",
    )
    .await;
    assert_eq!(status, 401);
    assert_api_error(
        answer(&app, &bob.user.auth.access_token, &bob.recovery[0]).await,
        401,
        "invalid_second_factor",
    );
}

#[tokio::test]
async fn turning_it_off_needs_the_password_or_a_code() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let path = "/api/v1/auth/totp";
    // Neither, a wrong password, a wrong code: refused, and still on.
    assert_api_error(
        delete(&alice.user.api, path, json!({})).await,
        422,
        "validation_failed",
    );
    let wrong = delete(
        &alice.user.api,
        path,
        json!({"password": "not the password"}),
    )
    .await;
    assert_api_error(wrong, 401, "invalid_second_factor");
    let wrong = delete(&alice.user.api, path, json!({"code": "000000"})).await;
    assert_api_error(wrong, 401, "invalid_second_factor");
    assert!(matches!(
        login(&app, "alice").await,
        LoginResponse::SecondFactor { .. }
    ));
    // Enrolling again while it is on: refused.
    let again = post(&alice.user.api, "/api/v1/auth/totp/enrol", json!({})).await;
    assert_api_error(again, 409, "conflict");

    let (status, _) = delete(&alice.user.api, path, json!({"password": PASSWORD})).await;
    assert_eq!(status, 204);
    assert!(matches!(
        login(&app, "alice").await,
        LoginResponse::Tokens(_)
    ));
    assert_eq!(
        get(&alice.user.api, path).await.1,
        json!({"enabled": false, "recoveryCodesLeft": 0})
    );
    assert_api_error(
        delete(&alice.user.api, path, json!({})).await,
        409,
        "conflict",
    );
    // The old recovery codes went with it.
    let left = app.db_rows("SELECT COUNT(*) FROM recovery_codes").await;
    assert_eq!(left, vec![vec![Some("0".to_owned())]]);

    // With a code instead of the password.
    let bob = enrolled(&app, "bob").await;
    let (status, body) = delete(&bob.user.api, path, json!({"code": next_code(&bob.totp)})).await;
    assert_eq!(status, 204, "{body}");
    assert!(matches!(login(&app, "bob").await, LoginResponse::Tokens(_)));
}

#[tokio::test]
async fn enrolment_refuses_what_it_cannot_use() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // Nothing to confirm yet.
    let nothing = post(
        &alice.api,
        "/api/v1/auth/totp/confirm",
        json!({"code": "123456"}),
    )
    .await;
    assert_api_error(nothing, 409, "conflict");
    let (status, first) = post(&alice.api, "/api/v1/auth/totp/enrol", json!({})).await;
    assert_eq!(status, 200);
    // A second enrolment replaces the first: the first secret's codes no longer confirm.
    let (_, second) = post(&alice.api, "/api/v1/auth/totp/enrol", json!({})).await;
    assert_ne!(first["secret"], second["secret"]);
    let old = Totp::from_url(first["otpauthUri"].as_str().expect("uri")).expect("uri");
    let stale = post(
        &alice.api,
        "/api/v1/auth/totp/confirm",
        json!({"code": old.generate_current().to_string()}),
    )
    .await;
    assert_api_error(stale, 401, "invalid_second_factor");
    // Malformed and oversized bodies.
    for body in [json!({}), json!({"code": 123456}), json!("123456")] {
        let got = post(&alice.api, "/api/v1/auth/totp/confirm", body).await;
        assert_api_error(got, 400, "bad_request");
    }
    let got = post(
        &alice.api,
        "/api/v1/auth/totp/confirm",
        json!({"code": "1".repeat(65)}),
    )
    .await;
    assert_api_error(got, 422, "validation_failed");
    let got = delete(
        &alice.api,
        "/api/v1/auth/totp",
        json!({"password": "p".repeat(257)}),
    )
    .await;
    assert_api_error(got, 422, "validation_failed");
    for body in [json!([null, null]), json!(["a", "b"])] {
        let got = delete(&alice.api, "/api/v1/auth/totp", body).await;
        assert_api_error(got, 400, "bad_request");
    }
    let long = "1".repeat(100_000);
    let got = post(
        &alice.api,
        "/api/v1/auth/totp/confirm",
        json!({"code": long}),
    )
    .await;
    assert_eq!(got.0, 413, "{:?}", got.1);
    let got = post(
        &app.client(),
        "/api/v1/auth/login/second-factor",
        json!({"challenge": "x".repeat(2000), "code": "123456"}),
    )
    .await;
    assert_api_error(got, 422, "validation_failed");
    let got = post(
        &app.client(),
        "/api/v1/auth/login/second-factor",
        json!({"code": "1"}),
    )
    .await;
    assert_api_error(got, 400, "bad_request");
    // Without a token.
    for (method, path) in [
        (Method::GET, "/api/v1/auth/totp"),
        (Method::POST, "/api/v1/auth/totp/enrol"),
        (Method::POST, "/api/v1/auth/totp/confirm"),
        (Method::DELETE, "/api/v1/auth/totp"),
    ] {
        let got = app
            .client()
            .raw(method, path, Some(&json!({"code": "123456"})))
            .await
            .expect("request");
        assert_api_error(got, 401, "unauthorized");
    }
    // The secret is stored sealed: nonce, 20 bytes of ciphertext and the tag (the
    // sealing itself has unit tests beside it).
    let rows = app
        .db_rows("SELECT CAST(length(secret) AS BIGINT) FROM totp_factors")
        .await;
    assert_eq!(rows, vec![vec![Some("48".to_owned())]]);
}

#[tokio::test]
async fn password_login_can_be_turned_off() {
    let app = spawn_app_with(|c| {
        c.auth.password_login = false;
        c.auth.public_url = Some("http://127.0.0.1:9".into());
        c.auth.sso = vec![SsoProviderConfig {
            id: "corp".into(),
            display_name: "Corp".into(),
            issuer: "http://127.0.0.1:9".into(),
            client_id: "palaver".into(),
            client_secret: None,
            scopes: vec!["profile".into()],
        }];
    })
    .await;
    let register = post(
        &app.client(),
        "/api/v1/auth/register",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_api_error(register, 403, "password_login_disabled");
    let login = post(
        &app.client(),
        "/api/v1/auth/login",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_api_error(login, 403, "password_login_disabled");
}

#[tokio::test]
async fn administrators_can_be_required_to_turn_it_on() {
    let app = spawn_app_with(|c| {
        c.auth.require_second_factor_for_admins = true;
        c.admin.usernames = vec!["boss".into()];
    })
    .await;
    // The first account administers the server, and has an authenticator.
    let root = enrolled(&app, "root").await;
    // Named in the configuration, an administrator too, without one.
    let boss = app.user("boss").await;
    let member = app.user("member").await;

    let users = "/api/v1/admin/users";
    assert_eq!(get(&root.user.api, users).await.0, 200);
    assert_api_error(get(&boss.api, users).await, 403, "second_factor_required");
    // Not an administrator at all: the rule for administrators does not apply.
    assert_api_error(get(&member.api, users).await, 403, "forbidden");

    // Once boss turns it on, the admin API answers.
    let (status, body) = post(&boss.api, "/api/v1/auth/totp/enrol", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let totp = Totp::from_url(body["otpauthUri"].as_str().expect("uri")).expect("totp");
    let code = totp.generate_current().to_string();
    let (status, body) = post(
        &boss.api,
        "/api/v1/auth/totp/confirm",
        json!({"code": code}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&boss.api, users).await.0, 200);
}
