//! The push endpoints' answers to bad input in the error shape, push switched off, and the
//! VAPID key generated once and kept private.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palaver_proto::ErrorCode;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

use super::{Browser, assert_error, call, strict_app, subscribe, vapid_key};

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
