//! Who is an administrator, and who may call the admin API.

use palaver_client::ClientError;
use palaver_proto::ErrorCode;
use reqwest::Method;

use super::*;

#[tokio::test]
async fn the_first_account_and_configured_names_administer_the_server() {
    let app = spawn_app_with(|c| c.admin.usernames = vec!["Carol".into()]).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    for (user, admin) in [(&alice, true), (&bob, false), (&carol, true)] {
        let me = user.api.me_with_role().await.expect("me");
        assert_eq!(me.user.id, user.id);
        assert_eq!(me.is_admin, admin, "{}", user.name);
    }
    // `isAdmin` is on the caller's own profile only; a public profile has no role.
    let (status, body) = call(
        &bob,
        Method::GET,
        &format!("/api/v1/users/{}", alice.id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("isAdmin").is_none(), "{body}");

    // A name configured after the account exists is promoted at the next start.
    let dir = app.stop().await;
    let app = spawn_in(dir, |c| c.admin.usernames = vec!["bob".into()]).await;
    let bob = app.client().login("bob", PASSWORD).await.expect("login");
    let me = app
        .client()
        .with_token(&bob.access_token)
        .me_with_role()
        .await
        .expect("me");
    assert!(me.is_admin);
}

#[tokio::test]
async fn the_admin_api_answers_administrators_only() {
    let (app, admin, bob) = with_admin().await;
    let routes = [
        (Method::GET, "/api/v1/admin/users".to_owned()),
        (Method::GET, format!("/api/v1/admin/users/{}", admin.id)),
        (
            Method::POST,
            format!("/api/v1/admin/users/{}/disable", admin.id),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{}/enable", admin.id),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{}/sessions/revoke", admin.id),
        ),
        (Method::PUT, format!("/api/v1/admin/users/{}/admin", bob.id)),
        (
            Method::DELETE,
            format!("/api/v1/admin/users/{}/admin", admin.id),
        ),
        (Method::GET, "/api/v1/admin/rooms".to_owned()),
        (Method::GET, "/api/v1/admin/audit".to_owned()),
    ];
    for (method, path) in &routes {
        let got = call(&bob, method.clone(), path, None).await;
        assert_error(&got, 403, "forbidden");
        let anonymous = app
            .client()
            .raw(method.clone(), path, None)
            .await
            .expect("request");
        assert_error(&anonymous, 401, "unauthorized");
    }
    // Bodies are refused for their caller before they are read for meaning.
    let create = serde_json::json!({"username": "mallory", "password": PASSWORD});
    let got = call(&bob, Method::POST, "/api/v1/admin/users", Some(create)).await;
    assert_error(&got, 403, "forbidden");
    let password = serde_json::json!({"password": OTHER_PASSWORD});
    let path = format!("/api/v1/admin/users/{}/password", admin.id);
    let got = call(&bob, Method::PUT, &path, Some(password)).await;
    assert_error(&got, 403, "forbidden");
    // Nothing happened: the administrator is still one, and still logs in.
    let me = admin.api.me_with_role().await.expect("me");
    assert!(me.is_admin);
    app.client().login("admin", PASSWORD).await.expect("login");
    // And the typed client reports the refusal as the API's.
    match bob.api.admin_users(&Default::default()).await {
        Err(ClientError::Api { code, .. }) => assert_eq!(code, ErrorCode::Forbidden),
        other => panic!("expected forbidden, got {other:?}"),
    }

    // A demoted administrator loses the API at once.
    admin
        .api
        .admin_set_admin(bob.id, true)
        .await
        .expect("promote");
    bob.api
        .admin_users(&Default::default())
        .await
        .expect("bob administers");
    admin
        .api
        .admin_set_admin(bob.id, false)
        .await
        .expect("demote");
    let got = call(&bob, Method::GET, "/api/v1/admin/users", None).await;
    assert_error(&got, 403, "forbidden");
}
