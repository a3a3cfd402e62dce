//! Malformed, oversized and unknown input to the admin API.

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::*;

#[tokio::test]
async fn the_admin_api_refuses_bad_input_with_the_error_shape() {
    let (app, admin, _bob) = with_admin().await;
    let nobody = Uuid::now_v7();
    // Unknown ids.
    for (method, path) in [
        (Method::GET, format!("/api/v1/admin/users/{nobody}")),
        (
            Method::POST,
            format!("/api/v1/admin/users/{nobody}/disable"),
        ),
        (Method::POST, format!("/api/v1/admin/users/{nobody}/enable")),
        (
            Method::POST,
            format!("/api/v1/admin/users/{nobody}/sessions/revoke"),
        ),
        (Method::PUT, format!("/api/v1/admin/users/{nobody}/admin")),
        (
            Method::DELETE,
            format!("/api/v1/admin/users/{nobody}/admin"),
        ),
    ] {
        let got = call(&admin, method, &path, None).await;
        assert_error(&got, 404, "user_not_found");
    }
    let got = call(
        &admin,
        Method::PUT,
        &format!("/api/v1/admin/users/{nobody}/password"),
        Some(json!({"password": OTHER_PASSWORD})),
    )
    .await;
    assert_error(&got, 404, "user_not_found");
    // Ids that are not ids.
    let got = call(&admin, Method::GET, "/api/v1/admin/users/not-a-uuid", None).await;
    assert_eq!(got.0, 400, "{}", got.1);
    assert!(got.1["error"]["code"].is_string());
    // Malformed and incomplete bodies.
    let raw = reqwest::Client::new()
        .post(format!("{}/api/v1/admin/users", app.base))
        .bearer_auth(&admin.auth.access_token)
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .expect("post");
    assert_eq!(raw.status().as_u16(), 400);
    let got = call(
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"username": "xyz"})),
    )
    .await;
    assert_error(&got, 400, "bad_request");
    let got = call(
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"username": 5, "password": PASSWORD})),
    )
    .await;
    assert_error(&got, 400, "bad_request");
    let got = call(
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"username": "x", "password": PASSWORD})),
    )
    .await;
    assert_error(&got, 422, "validation_failed");
    // Oversized values.
    let long = "a".repeat(10_000);
    let got = call(
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"username": long, "password": PASSWORD})),
    )
    .await;
    assert!(matches!(got.0, 413 | 422), "{}", got.1);
    let got = call(
        &admin,
        Method::GET,
        &format!("/api/v1/admin/users?q={}", "a".repeat(65)),
        None,
    )
    .await;
    assert_error(&got, 422, "validation_failed");
    let got = call(
        &admin,
        Method::GET,
        &format!("/api/v1/admin/audit?action={}", "a".repeat(65)),
        None,
    )
    .await;
    assert_error(&got, 422, "validation_failed");
    let got = call(
        &admin,
        Method::GET,
        &format!("/api/v1/admin/audit?target={}", "a".repeat(129)),
        None,
    )
    .await;
    assert_error(&got, 422, "validation_failed");
    // Limits out of range, and values of the wrong kind.
    for path in [
        "/api/v1/admin/users?limit=0",
        "/api/v1/admin/users?limit=201",
        "/api/v1/admin/rooms?limit=0",
        "/api/v1/admin/audit?limit=501",
    ] {
        let got = call(&admin, Method::GET, path, None).await;
        assert_error(&got, 422, "validation_failed");
    }
    for path in [
        "/api/v1/admin/users?disabled=maybe",
        "/api/v1/admin/rooms?after=nope",
        "/api/v1/admin/audit?since=yesterday",
        "/api/v1/admin/audit?actor=nope",
    ] {
        let got = call(&admin, Method::GET, path, None).await;
        assert_eq!(got.0, 400, "{path}: {}", got.1);
        assert!(got.1["error"]["code"].is_string(), "{path}");
    }
    // A body larger than the server takes is refused before it is read.
    let huge = "x".repeat(2 << 20);
    let got = call(
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"username": "big", "password": huge})),
    )
    .await;
    assert_eq!(got.0, 413, "{}", got.1);
}
