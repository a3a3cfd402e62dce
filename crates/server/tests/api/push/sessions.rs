//! Subscriptions and sessions: another account cannot take over a subscription, a session
//! that ends takes its subscriptions along, and registering one's own endpoint again
//! moves it to the new session.

use palaver_proto::ErrorCode;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

use super::{Browser, FakePush, assert_error, call, push_config, strict_app, subscribe};

/// Another session of `user`'s (a login on another device).
async fn second_session(app: &TestApp, user: &TestUser) -> TestUser {
    let auth = app
        .client()
        .login(&user.name, PASSWORD)
        .await
        .expect("login");
    TestUser {
        api: app.client().with_token(&auth.access_token),
        id: user.id,
        name: user.name.clone(),
        auth,
    }
}

async fn endpoints(user: &TestUser) -> Vec<String> {
    let (status, list) = call(user, Method::GET, "/api/v1/push/subscriptions", None).await;
    assert_eq!(status, 200, "{list}");
    list["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .map(|s| s["endpoint"].as_str().expect("endpoint").to_owned())
        .collect()
}

#[tokio::test]
async fn another_account_cannot_take_over_a_subscription() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob, mallory) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("mallory").await,
    );
    let room = alice.dm(&bob).await;
    let browser = Browser::new(fake.url("bob"));
    subscribe(&bob, &browser).await;

    // Mallory has learned bob's endpoint and registers it with keys of her own, which
    // would silence bob's notifications (or hand them to her, with the endpoint's help).
    let hers = Browser::new(browser.endpoint.clone());
    let got = call(
        &mallory,
        Method::POST,
        "/api/v1/push/subscriptions",
        Some(&hers.json()),
    )
    .await;
    assert_error(got, 409, ErrorCode::Conflict);
    assert!(endpoints(&mallory).await.is_empty());
    assert_eq!(endpoints(&bob).await, vec![browser.endpoint.clone()]);

    // Bob's notifications still reach bob's browser, under bob's keys.
    let sent = alice.send(room.id, "hello bob").await;
    let r = fake.next().await;
    assert_eq!(r.name, "bob");
    assert_eq!(browser.decrypt(&r.body).last_seq, sent.seq);
    fake.assert_silent(QUIET).await;
}

#[tokio::test]
async fn a_session_that_ends_takes_its_subscriptions_along() {
    let mut fake = FakePush::start().await;
    let app = spawn_app_with(push_config).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let room = alice.dm(&bob).await;
    let laptop = Browser::new(fake.url("laptop"));
    subscribe(&bob, &laptop).await;
    let phone_session = second_session(&app, &bob).await;
    let phone = Browser::new(fake.url("phone"));
    subscribe(&phone_session, &phone).await;
    let mut both = endpoints(&bob).await;
    both.sort();
    assert_eq!(both, vec![laptop.endpoint.clone(), phone.endpoint.clone()]);

    // Bob logs out on the laptop: its subscription goes, the phone's stays.
    let (status, body) = call(&bob, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        endpoints(&phone_session).await,
        vec![phone.endpoint.clone()]
    );
    alice.send(room.id, "after logout").await;
    assert_eq!(fake.next().await.name, "phone");
    fake.assert_silent(QUIET).await;
    // The laptop's endpoint is free now: whoever uses that browser next may register it.
    subscribe(&carol, &laptop).await;

    // A reused refresh token ends the phone's session, and its subscription with it.
    let rotated = phone_session
        .api
        .refresh(&phone_session.auth.refresh_token)
        .await
        .expect("refresh");
    let reused = app
        .client()
        .refresh(&phone_session.auth.refresh_token)
        .await;
    assert!(reused.is_err(), "reuse is refused");
    let fresh = second_session(&app, &bob).await;
    assert!(endpoints(&fresh).await.is_empty());
    assert!(
        app.client()
            .with_token(&rotated.access_token)
            .me()
            .await
            .is_err(),
        "the session ended"
    );
}

#[tokio::test]
async fn registering_ones_own_endpoint_again_moves_it_to_the_new_session() {
    let app = strict_app().await;
    let bob = app.user("bob").await;
    let browser = Browser::new("https://push.palaver.test/sub/bob".into());
    let first = subscribe(&bob, &browser).await;
    // Bob logs in again in the same browser (without logging out) and registers again.
    let again = second_session(&app, &bob).await;
    let (status, body) = call(
        &again,
        Method::POST,
        "/api/v1/push/subscriptions",
        Some(&browser.json()),
    )
    .await;
    assert_eq!(
        (status, body["id"].clone()),
        (200, json!(first.id)),
        "{body}"
    );
    // It now lives with the new session: ending the old one leaves it.
    let (status, _) = call(&bob, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    assert_eq!(endpoints(&again).await, vec![browser.endpoint.clone()]);
    let (status, _) = call(&again, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    let fresh = second_session(&app, &bob).await;
    assert!(endpoints(&fresh).await.is_empty());
}
