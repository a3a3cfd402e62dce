//! Disabling an account on one node ends it on every node: two nodes on the cluster
//! engines (PostgreSQL, NATS, Redis).

use reqwest::Method;

use super::*;

#[tokio::test]
async fn disabling_on_node_a_closes_the_socket_and_refuses_the_token_on_node_b() {
    let Some((_engines, _ns, node_a, node_b)) = crate::cluster::two_nodes().await else {
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
    bob.api.connect().await.map(|_| ()).expect_err("socket refused");

    // Enabled on node B, bob logs in on node A.
    admin.api.admin_set_disabled(bob.id, false).await.expect("enable");
    node_a.client().login("bob", PASSWORD).await.expect("login on node A");
}
