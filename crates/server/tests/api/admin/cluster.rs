//! Disabling an account on one node ends it on every node: two nodes on the cluster
//! engines (PostgreSQL, NATS, Redis).

use reqwest::Method;

use super::*;

#[tokio::test]
async fn disabling_on_node_a_closes_the_socket_and_refuses_the_token_on_node_b() {
    let Some((_engines, _ns, node_a, node_b)) = super::super::cluster::two_nodes().await else {
        return;
    };
    let admin = node_a.user("admin").await;
    let bob = node_b.user("bob").await;
    let mut socket = bob.connect().await;
    // Bob's token works on both nodes before.
    let on_a = node_a.client().with_token(&bob.auth.access_token);
    on_a.me().await.expect("bob on node A");

    admin
        .api
        .admin_set_disabled(bob.id, true)
        .await
        .expect("disable on node A");

    session_ended(&mut socket).await;
    for node in [&node_b, &node_a] {
        let got = node
            .client()
            .with_token(&bob.auth.access_token)
            .raw(Method::GET, "/api/v1/users/me", None)
            .await
            .expect("me");
        assert_error(&got, 401, "unauthorized");
        let body = serde_json::json!({"refreshToken": bob.auth.refresh_token});
        let got = node
            .client()
            .raw(Method::POST, "/api/v1/auth/refresh", Some(&body))
            .await
            .expect("refresh");
        assert_error(&got, 401, "unauthorized");
        let body = serde_json::json!({"username": "bob", "password": PASSWORD});
        let got = node
            .client()
            .raw(Method::POST, "/api/v1/auth/login", Some(&body))
            .await
            .expect("login");
        assert_error(&got, 403, "account_disabled");
    }
    // A socket bob tries to open on node B with the old token is refused.
    bob.api
        .connect()
        .await
        .map(|_| ())
        .expect_err("socket refused");

    // Enabled on node B, bob logs in on node A.
    admin
        .api
        .admin_set_disabled(bob.id, false)
        .await
        .expect("enable");
    node_a
        .client()
        .login("bob", PASSWORD)
        .await
        .expect("login on node A");
}

#[tokio::test]
async fn a_mute_on_node_a_holds_on_node_b() {
    let Some((_engines, _ns, node_a, node_b)) = super::super::cluster::two_nodes().await else {
        return;
    };
    let owner = node_a.user("owner").await;
    let member = node_b.user("member").await;
    let room = owner.group("club", &[&member]).await;
    let room = owner.accepted(room, &[&member]).await;
    let mute = format!("/api/v1/rooms/{}/members/{}/mute", room.id, member.id);
    let got = call(
        &owner,
        Method::PUT,
        &mute,
        Some(serde_json::json!({"durationSecs": 600})),
    )
    .await;
    assert_eq!(got.0, 204, "{}", got.1);
    // Node B heard of it over the bus; the member's send there is refused.
    let body = serde_json::json!({"roomId": room.id, "clientMsgId": "b1", "content": "hi", "type": "text"});
    let mut refused = None;
    for _ in 0..50 {
        let got = call(
            &member,
            Method::POST,
            "/api/v1/messages/send",
            Some(body.clone()),
        )
        .await;
        if got.0 == 403 {
            refused = Some(got);
            break;
        }
        // The bus may take a moment to reach node B.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let got = refused.expect("the mute reached node B");
    assert_error(&got, 403, "muted");
}
