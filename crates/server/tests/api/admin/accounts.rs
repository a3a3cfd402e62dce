//! Accounts: list, create, disable and enable, passwords, sessions, promote and demote.

use palaver_proto::{AdminCreateUserRequest, AdminUserQuery};
use reqwest::Method;

use super::*;

#[tokio::test]
async fn disabling_ends_every_session_at_once_and_enabling_lets_the_user_back() {
    let (app, admin, bob) = with_admin().await;
    // Bob on two devices, each with a socket open.
    let second = app.client().login("bob", PASSWORD).await.expect("login");
    let bob2 = app.client().with_token(&second.access_token);
    let mut socket1 = bob.connect().await;
    let mut socket2 = bob2.connect().await.expect("connect");

    let disabled = admin
        .api
        .admin_set_disabled(bob.id, true)
        .await
        .expect("disable");
    assert!(disabled.disabled);
    assert_eq!(disabled.user.id, bob.id);

    // Both sockets close, both access tokens and both refresh tokens are refused.
    session_ended(&mut socket1).await;
    session_ended(&mut socket2).await;
    for token in [&bob.auth.access_token, &second.access_token] {
        let got = app
            .client()
            .with_token(token.as_str())
            .raw(Method::GET, "/api/v1/users/me", None)
            .await
            .expect("me");
        assert_error(&got, 401, "unauthorized");
    }
    for refresh in [&bob.auth.refresh_token, &second.refresh_token] {
        let err = app.client().refresh(refresh).await.expect_err("refresh");
        assert_eq!(err.code(), Some(palaver_proto::ErrorCode::Unauthorized));
    }
    // No new session: the right password is answered `account_disabled`.
    let body = serde_json::json!({"username": "bob", "password": PASSWORD});
    let got = app
        .client()
        .raw(Method::POST, "/api/v1/auth/login", Some(&body))
        .await
        .expect("login");
    assert_error(&got, 403, "account_disabled");
    // Disabling twice is disabling once.
    assert!(
        admin
            .api
            .admin_set_disabled(bob.id, true)
            .await
            .expect("again")
            .disabled
    );

    let enabled = admin
        .api
        .admin_set_disabled(bob.id, false)
        .await
        .expect("enable");
    assert!(!enabled.disabled);
    let back = app
        .client()
        .login("bob", PASSWORD)
        .await
        .expect("login again");
    app.client()
        .with_token(&back.access_token)
        .me()
        .await
        .expect("a new session works");

    let log = admin
        .api
        .admin_audit(&palaver_proto::AuditQuery {
            target: Some(bob.id.to_string()),
            ..Default::default()
        })
        .await
        .expect("audit");
    let actions: Vec<&str> = log.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "admin.user_enable",
            "admin.user_disable",
            "admin.user_disable"
        ]
    );
    assert!(log.entries.iter().all(|e| e.actor == Some(admin.id)));
    assert_eq!(log.entries[2].detail.as_deref(), Some("2 sessions ended"));
}

#[tokio::test]
async fn an_administrator_cannot_disable_themselves_nor_the_last_administrator() {
    let (_app, admin, bob) = with_admin().await;
    let got = call(
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{}/disable", admin.id),
        None,
    )
    .await;
    assert_error(&got, 409, "conflict");
    // Bob, promoted, cannot disable the other administrator once he is the only other one
    // left... but he can while both are enabled.
    admin
        .api
        .admin_set_admin(bob.id, true)
        .await
        .expect("promote");
    let got = call(
        &admin,
        Method::DELETE,
        &format!("/api/v1/admin/users/{}/admin", admin.id),
        None,
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    // Now bob is the last enabled administrator: nobody demotes or disables him.
    let got = call(
        &bob,
        Method::DELETE,
        &format!("/api/v1/admin/users/{}/admin", bob.id),
        None,
    )
    .await;
    assert_error(&got, 409, "conflict");
    let got = call(
        &bob,
        Method::POST,
        &format!("/api/v1/admin/users/{}/disable", bob.id),
        None,
    )
    .await;
    assert_error(&got, 409, "conflict");
    let me = bob.api.me_with_role().await.expect("me");
    assert!(me.is_admin);
}

#[tokio::test]
async fn accounts_are_listed_in_pages_and_filtered() {
    let (_app, admin, bob) = with_admin().await;
    for name in ["carol", "cassie", "dave"] {
        admin
            .api
            .admin_create_user(&AdminCreateUserRequest {
                username: name.into(),
                password: PASSWORD.into(),
                display_name: None,
                is_admin: false,
            })
            .await
            .expect("create");
    }
    admin
        .api
        .admin_set_disabled(bob.id, true)
        .await
        .expect("disable");

    let mut names = Vec::new();
    let mut after = None;
    loop {
        let page = admin
            .api
            .admin_users(&AdminUserQuery {
                after: after.clone(),
                limit: Some(2),
                ..Default::default()
            })
            .await
            .expect("page");
        assert!(page.users.len() <= 2);
        names.extend(page.users.iter().map(|u| u.user.username.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(names, ["admin", "bob", "carol", "cassie", "dave"]);

    let ca = admin
        .api
        .admin_users(&AdminUserQuery {
            q: Some("CA".into()),
            ..Default::default()
        })
        .await
        .expect("prefix");
    let ca: Vec<_> = ca.users.iter().map(|u| u.user.username.as_str()).collect();
    assert_eq!(ca, ["carol", "cassie"]);
    let disabled = admin
        .api
        .admin_users(&AdminUserQuery {
            disabled: Some(true),
            ..Default::default()
        })
        .await
        .expect("disabled");
    assert_eq!(disabled.users.len(), 1);
    assert_eq!(disabled.users[0].user.id, bob.id);
    assert!(disabled.users[0].disabled);
    let enabled = admin
        .api
        .admin_users(&AdminUserQuery {
            disabled: Some(false),
            ..Default::default()
        })
        .await
        .expect("enabled");
    assert_eq!(enabled.users.len(), 4);
    assert!(enabled.users.iter().all(|u| !u.disabled));
    assert!(enabled.users[0].is_admin && !enabled.users[1].is_admin);
}

#[tokio::test]
async fn created_accounts_log_in_and_a_reset_password_ends_their_sessions() {
    let (app, admin, _bob) = with_admin().await;
    let made = admin
        .api
        .admin_create_user(&AdminCreateUserRequest {
            username: "Erin".into(),
            password: PASSWORD.into(),
            display_name: Some("Erin E.".into()),
            is_admin: true,
        })
        .await
        .expect("create");
    assert_eq!(made.user.username, "erin");
    assert_eq!(made.user.display_name, "Erin E.");
    assert!(made.is_admin && !made.disabled);
    let again = call(
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(serde_json::json!({"username": "erin", "password": PASSWORD})),
    )
    .await;
    assert_error(&again, 409, "username_taken");
    let weak = call(
        &admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(serde_json::json!({"username": "frank", "password": "password"})),
    )
    .await;
    assert_error(&weak, 422, "validation_failed");

    let erin = app.client().login("erin", PASSWORD).await.expect("login");
    let erin_api = app.client().with_token(&erin.access_token);
    let mut socket = erin_api.connect().await.expect("connect");
    admin
        .api
        .admin_set_password(made.user.id, OTHER_PASSWORD)
        .await
        .expect("reset");
    session_ended(&mut socket).await;
    let old = call_with(&erin_api, Method::GET, "/api/v1/users/me").await;
    assert_error(&old, 401, "unauthorized");
    let body = serde_json::json!({"username": "erin", "password": PASSWORD});
    let got = app
        .client()
        .raw(Method::POST, "/api/v1/auth/login", Some(&body))
        .await
        .expect("login");
    assert_error(&got, 401, "invalid_credentials");
    let erin = app
        .client()
        .login("erin", OTHER_PASSWORD)
        .await
        .expect("new password");

    // Revoking sessions ends them all and says how many.
    let also = app
        .client()
        .login("erin", OTHER_PASSWORD)
        .await
        .expect("login");
    let ended = admin
        .api
        .admin_revoke_sessions(made.user.id)
        .await
        .expect("revoke");
    assert_eq!(ended.sessions, 2);
    for token in [&erin.access_token, &also.access_token] {
        let got = call_with(
            &app.client().with_token(token.as_str()),
            Method::GET,
            "/api/v1/users/me",
        )
        .await;
        assert_error(&got, 401, "unauthorized");
    }
    // Not disabled: a new login works.
    app.client()
        .login("erin", OTHER_PASSWORD)
        .await
        .expect("login after revoke");
}

async fn call_with(
    client: &palaver_client::Client,
    method: Method,
    path: &str,
) -> (u16, serde_json::Value) {
    client.raw(method, path, None).await.expect("request")
}
