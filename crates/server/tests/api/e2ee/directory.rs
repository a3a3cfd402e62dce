//! The device directory: one device per session, key packages checked on upload and
//! handed out once each (then the last-resort one), devices revoked with their session.

use palaver_client::ClientError;
use palaver_client::e2ee::MlsDevice;
use palaver_proto::ErrorCode;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::members;
use crate::helpers::{assert_error, spawn_app, spawn_app_with};

#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, ClientError>, status: u16, code: ErrorCode) {
    match result {
        Err(ClientError::Api {
            status: s, code: c, ..
        }) => {
            assert_eq!((s, c), (status, code), "refusal");
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_session_has_one_device_whose_packages_are_checked() {
    let app = spawn_app().await;
    let mut m = members(&app, &["alice", "bob"], 2).await;
    let bob = m.pop().expect("bob");
    let alice = m.pop().expect("alice");
    let api = &alice.user.api;
    let device = alice.device.device_id;

    // One live device per session.
    refused(
        api.register_device("again", &format!("{}=", "A".repeat(43)))
            .await,
        409,
        ErrorCode::Conflict,
    );
    let stock = api
        .call::<(), palaver_proto::KeyPackageStock>(
            Method::GET,
            &format!("/api/v1/mls/devices/{device}/key-packages"),
            None,
        )
        .await
        .expect("stock")
        .1;
    assert_eq!((stock.available, stock.last_resort), (2, true));

    // Anyone who can see alice lists her device, with the key her packages carry.
    let listed = bob.user.api.devices(alice.user.id).await.expect("devices");
    assert_eq!(listed.devices.len(), 1);
    assert_eq!(listed.devices[0].id, device);
    assert_eq!(listed.devices[0].user_id, alice.user.id);

    // A package of bob's device is not alice's to upload, garbage is no package, and a
    // package is an MLSMessage, not any MLS structure.
    let bobs = bob.device.key_package(false).expect("bob's package");
    refused(
        api.upload_key_packages(device, vec![bobs], None).await,
        422,
        ErrorCode::InvalidMls,
    );
    refused(
        api.upload_key_packages(device, vec!["AAECAwQ=".into()], None)
            .await,
        422,
        ErrorCode::InvalidMls,
    );
    refused(
        api.upload_key_packages(device, vec!["not base64!".into()], None)
            .await,
        422,
        ErrorCode::InvalidMls,
    );
    // Nothing at all, too many, too large.
    refused(
        api.upload_key_packages(device, vec![], None).await,
        422,
        ErrorCode::ValidationFailed,
    );
    let many = vec![alice.device.key_package(false).expect("package"); 101];
    refused(
        api.upload_key_packages(device, many, None).await,
        413,
        ErrorCode::PayloadTooLarge,
    );
    refused(
        api.upload_key_packages(device, vec!["A".repeat(60_000)], None)
            .await,
        413,
        ErrorCode::PayloadTooLarge,
    );
    // A good one still goes in after all that.
    let more = vec![alice.device.key_package(false).expect("package")];
    let stock = api
        .upload_key_packages(device, more, None)
        .await
        .expect("upload");
    assert_eq!(stock.available, 3);

    // Registration's own rules.
    let fresh = app.client().with_token(
        &app.client()
            .login("bob", crate::helpers::PASSWORD)
            .await
            .expect("login")
            .access_token,
    );
    for (name, key, code) in [
        ("", "A".repeat(44), "validation_failed"),
        ("x", "AAAA".to_string(), "validation_failed"),
        ("x", "!!".to_string(), "validation_failed"),
        (&*"n".repeat(65), "A".repeat(44), "validation_failed"),
    ] {
        let answer = fresh
            .raw(
                Method::POST,
                "/api/v1/mls/devices",
                Some(&json!({"name": name, "signatureKey": key})),
            )
            .await
            .expect("answer");
        assert_error(&answer, 422, code);
    }
    let answer = fresh
        .raw(
            Method::POST,
            "/api/v1/mls/devices",
            Some(&json!({"name": 5})),
        )
        .await
        .expect("answer");
    assert_eq!(answer.0, 400, "{}", answer.1);
}

#[tokio::test]
async fn only_the_devices_own_session_uploads_and_takes_welcomes() {
    let app = spawn_app().await;
    let mut m = members(&app, &["alice", "bob"], 1).await;
    let bob = m.pop().expect("bob");
    let alice = m.pop().expect("alice");
    let device = alice.device.device_id;
    let package = alice.device.key_package(false).expect("package");

    // Alice's other session: her device, not its session's.
    let other = app.client().with_token(
        &app.client()
            .login("alice", crate::helpers::PASSWORD)
            .await
            .expect("login")
            .access_token,
    );
    refused(
        other
            .upload_key_packages(device, vec![package.clone()], None)
            .await,
        403,
        ErrorCode::Forbidden,
    );
    refused(other.welcomes(device).await, 403, ErrorCode::Forbidden);
    // Bob: not his device, so not there at all; nor is a made-up one.
    refused(
        bob.user
            .api
            .upload_key_packages(device, vec![package.clone()], None)
            .await,
        404,
        ErrorCode::DeviceNotFound,
    );
    refused(
        bob.user.api.welcomes(device).await,
        404,
        ErrorCode::DeviceNotFound,
    );
    refused(
        bob.user.api.revoke_device(device).await,
        404,
        ErrorCode::DeviceNotFound,
    );
    refused(
        alice.user.api.take_welcome(device, Uuid::now_v7()).await,
        404,
        ErrorCode::NotFound,
    );
    refused(
        bob.user
            .api
            .upload_key_packages(Uuid::now_v7(), vec![package], None)
            .await,
        404,
        ErrorCode::DeviceNotFound,
    );
    refused(
        bob.user.api.devices(Uuid::now_v7()).await,
        404,
        ErrorCode::UserNotFound,
    );

    // A user who blocked bob is nobody to him here either.
    alice.user.api.block(bob.user.id).await.expect("block");
    refused(
        bob.user.api.devices(alice.user.id).await,
        404,
        ErrorCode::UserNotFound,
    );
    refused(
        bob.user.api.claim_key_packages(&[alice.user.id]).await,
        404,
        ErrorCode::UserNotFound,
    );
}

#[tokio::test]
async fn each_package_goes_once_and_a_claimers_share_is_bounded() {
    let app = spawn_app_with(|c| c.mls.claim_share_per_hour = 2).await;
    let m = members(&app, &["alice", "bob", "carol"], 3).await;
    let (alice, bob, carol) = (&m[0], &m[1], &m[2]);

    let mut seen = Vec::new();
    let claim = |who: &'static str| {
        let api = if who == "bob" {
            &bob.user.api
        } else {
            &carol.user.api
        };
        async move {
            let got = api
                .claim_key_packages(&[alice.user.id, alice.user.id])
                .await
                .expect("claim")
                .key_packages;
            assert_eq!(
                got.len(),
                1,
                "one package per device, a user named twice once"
            );
            got.into_iter().next().expect("one")
        }
    };
    // Bob gets two one-time packages, then only the last-resort one.
    for expect_last_resort in [false, false, true, true] {
        let got = claim("bob").await;
        assert_eq!(got.device_id, alice.device.device_id);
        assert_eq!(got.last_resort, expect_last_resort);
        seen.push(got);
    }
    // Carol's share is her own: the one one-time package left, then the last resort.
    for expect_last_resort in [false, true] {
        let got = claim("carol").await;
        assert_eq!(got.last_resort, expect_last_resort);
        seen.push(got);
    }
    let one_time: Vec<&String> = seen
        .iter()
        .filter(|c| !c.last_resort)
        .map(|c| &c.key_package)
        .collect();
    let mut distinct = one_time.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "no one-time package handed out twice");
    let stock = alice
        .user
        .api
        .upload_key_packages(
            alice.device.device_id,
            vec![],
            Some(alice.device.key_package(true).expect("lr")),
        )
        .await
        .expect("replace last resort");
    assert_eq!((stock.available, stock.last_resort), (0, true));

    // Bounds of a claim.
    refused(
        bob.user.api.claim_key_packages(&[]).await,
        422,
        ErrorCode::ValidationFailed,
    );
    let many: Vec<Uuid> = (0..101).map(|_| Uuid::now_v7()).collect();
    refused(
        bob.user.api.claim_key_packages(&many).await,
        422,
        ErrorCode::ValidationFailed,
    );
    refused(
        bob.user.api.claim_key_packages(&[Uuid::now_v7()]).await,
        404,
        ErrorCode::UserNotFound,
    );
    // A user with no device is claimed nothing.
    let dave = app.user("dave").await;
    let got = bob
        .user
        .api
        .claim_key_packages(&[dave.id])
        .await
        .expect("claim");
    assert!(got.key_packages.is_empty());
}

#[tokio::test]
async fn a_device_ends_with_its_session_or_when_revoked() {
    let app = spawn_app().await;
    let mut m = members(&app, &["alice", "bob"], 1).await;
    let bob = m.pop().expect("bob");
    let alice = m.pop().expect("alice");

    // Revoked from another of alice's sessions: gone from the list, nothing to claim.
    let other_auth = app
        .client()
        .login("alice", crate::helpers::PASSWORD)
        .await
        .expect("login");
    let other = app.client().with_token(&other_auth.access_token);
    other
        .revoke_device(alice.device.device_id)
        .await
        .expect("revoke");
    assert!(
        bob.user
            .api
            .devices(alice.user.id)
            .await
            .expect("list")
            .devices
            .is_empty()
    );
    assert!(
        bob.user
            .api
            .claim_key_packages(&[alice.user.id])
            .await
            .expect("claim")
            .key_packages
            .is_empty()
    );
    refused(
        other.revoke_device(alice.device.device_id).await,
        404,
        ErrorCode::DeviceNotFound,
    );

    // The other session registers a device; logging that session out revokes it.
    let second = MlsDevice::register(&other, "phone", 1)
        .await
        .expect("second device");
    assert_eq!(
        bob.user
            .api
            .devices(alice.user.id)
            .await
            .expect("list")
            .devices
            .len(),
        1
    );
    other
        .logout(Some(&other_auth.refresh_token))
        .await
        .expect("logout");
    assert!(
        bob.user
            .api
            .devices(alice.user.id)
            .await
            .expect("list")
            .devices
            .is_empty()
    );
    // The device's session is over, so its token is refused before the device is looked at.
    refused(
        other.welcomes(second.device_id).await,
        401,
        ErrorCode::Unauthorized,
    );

    // A user may have at most `mls.max_devices_per_user` devices.
    let app = spawn_app_with(|c| c.mls.max_devices_per_user = 1).await;
    let carol = app.user("carol").await;
    MlsDevice::register(&carol.api, "one", 1)
        .await
        .expect("first");
    let again = app.client().with_token(
        &app.client()
            .login("carol", crate::helpers::PASSWORD)
            .await
            .expect("login")
            .access_token,
    );
    match MlsDevice::register(&again, "two", 1).await {
        Err(palaver_client::e2ee::E2eeError::Client(ClientError::Api {
            status: 409,
            code,
            ..
        })) => {
            assert_eq!(code, ErrorCode::LimitReached);
        }
        other => panic!("expected limit_reached, got {:?}", other.err()),
    }
}
