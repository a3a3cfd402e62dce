//! Profiles: read, update, lookup and search, and display names with invisible or bidi
//! characters refused.

use palaver_proto::User;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

use super::{assert_api_error, get, post};

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
