//! Bad REST requests: malformed bodies, unknown routes and ids, bad paths, and requests
//! without a valid token.

use palaver_client::ClientError;
use palaver_proto::{ErrorCode, close};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

use super::{assert_api_error, call, history_len, send_frame};

/// Any request with a raw body, as `(status, JSON body)`.
async fn raw_request(
    app: &TestApp,
    method: Method,
    token: Option<&str>,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", app.base))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
    )
}

#[tokio::test]
async fn bad_rest_bodies_are_refused_and_store_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;
    let token = alice.auth.access_token.as_str();
    let send = "/api/v1/messages/send";

    // Malformed JSON.
    for body in ["{not json", "", "{\"roomId\":", "[1,2", "null"] {
        let got = raw_request(&app, Method::POST, Some(token), send, body).await;
        assert_api_error(got, 400, "bad_request");
        assert_eq!(history_len(&alice, room).await, 0, "after {body:?}");
    }

    // Valid JSON, but missing or mistyped fields.
    for body in [
        json!({}),
        json!({"roomId": room}),
        json!({"clientMsgId": "c1", "content": "hi"}),
        json!({"roomId": room, "clientMsgId": 7, "content": "hi"}),
        json!({"roomId": "not-a-uuid", "clientMsgId": "c1", "content": "hi"}),
        json!({"roomId": room, "clientMsgId": "c1", "content": "hi", "type": "hologram"}),
    ] {
        let got = call(&alice, Method::POST, send, Some(body.clone())).await;
        assert_api_error(got, 400, "bad_request");
        assert_eq!(history_len(&alice, room).await, 0, "after {body}");
    }

    // Values outside their rules.
    for body in [
        json!({"roomId": room, "clientMsgId": "", "content": "hi"}),
        json!({"roomId": room, "clientMsgId": "x".repeat(65), "content": "hi"}),
        json!({"roomId": room, "clientMsgId": "c1", "content": "   "}),
        json!({"roomId": room, "clientMsgId": "c1", "content": "a\u{0}b"}),
        json!({"roomId": room, "clientMsgId": "c1", "content": "", "type": "image"}),
    ] {
        let got = call(&alice, Method::POST, send, Some(body.clone())).await;
        assert_api_error(got, 422, "validation_failed");
        assert_eq!(history_len(&alice, room).await, 0, "after {body}");
    }

    // A body over 64 KiB.
    let body = json!({"roomId": room, "clientMsgId": "big-body", "content": "x".repeat(70 * 1024)});
    let got = call(&alice, Method::POST, send, Some(body)).await;
    assert_api_error(got, 413, "payload_too_large");
    assert_eq!(history_len(&alice, room).await, 0);

    // Content over 16 KiB in a body under 64 KiB.
    let body =
        json!({"roomId": room, "clientMsgId": "big-content", "content": "x".repeat(16 * 1024 + 1)});
    let got = call(&alice, Method::POST, send, Some(body)).await;
    assert_api_error(got, 413, "payload_too_large");
    let body = json!({"clientMsgId": "big-content-2", "content": "é".repeat(8 * 1024 + 1)});
    let got = call(
        &alice,
        Method::POST,
        &format!("/api/v1/chat/{room}"),
        Some(body),
    )
    .await;
    assert_api_error(got, 413, "payload_too_large");
    assert_eq!(history_len(&alice, room).await, 0);

    // Exactly 16 KiB is fine, and is the one message stored.
    let body = json!({"roomId": room, "clientMsgId": "max", "content": "x".repeat(16 * 1024)});
    let (status, stored) = call(&alice, Method::POST, send, Some(body)).await;
    assert_eq!(status, 201, "{stored}");
    let history = alice
        .api
        .history(room, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 1);
    assert_eq!(history.messages[0].client_msg_id, "max");
    assert_eq!(history.messages[0].seq, 1);
}

#[tokio::test]
async fn unknown_routes_ids_and_bad_paths_get_their_codes() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;
    let ghost = Uuid::now_v7();

    // Unknown routes, inside and outside the API.
    for path in [
        "/api/v1/nope",
        "/api/v1/rooms/create/extra/bits",
        "/nope",
        "/api/v2/rooms",
    ] {
        assert_api_error(
            call(&alice, Method::GET, path, None).await,
            404,
            "not_found",
        );
    }

    // A malformed UUID in the path or query.
    for path in [
        "/api/v1/rooms/not-a-uuid".to_owned(),
        "/api/v1/users/12345".to_owned(),
        "/api/v1/messages/xyz".to_owned(),
        "/api/v1/chat/not-a-uuid".to_owned(),
        "/api/v1/presence/not-a-uuid".to_owned(),
        "/api/v1/messages/history?roomId=not-a-uuid".to_owned(),
        "/api/v1/messages/history".to_owned(),
        format!("/api/v1/messages/history?roomId={room}&limit=lots"),
    ] {
        assert_api_error(
            call(&alice, Method::GET, &path, None).await,
            400,
            "bad_request",
        );
    }

    // Unknown room id, everywhere a room id goes.
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/rooms/{ghost}"), None),
        (
            Method::GET,
            format!("/api/v1/messages/history?roomId={ghost}"),
            None,
        ),
        (Method::GET, format!("/api/v1/chat/{ghost}"), None),
        (Method::GET, format!("/api/v1/rooms/{ghost}/receipts"), None),
        (
            Method::POST,
            format!("/api/v1/rooms/{ghost}/receipts"),
            Some(json!({"seq": 1, "status": "read"})),
        ),
        (
            Method::POST,
            "/api/v1/messages/send".to_owned(),
            Some(json!({"roomId": ghost, "clientMsgId": "c1", "content": "hi"})),
        ),
        (
            Method::POST,
            format!("/api/v1/chat/{ghost}"),
            Some(json!({"clientMsgId": "c2", "content": "hi"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/rooms/{ghost}"),
            Some(json!({"name": "x"})),
        ),
        (Method::POST, format!("/api/v1/rooms/{ghost}/leave"), None),
    ] {
        let got = call(&alice, method.clone(), &path, body).await;
        assert_api_error(got, 404, "room_not_found");
    }

    // Unknown message id.
    for method in [Method::GET, Method::DELETE] {
        let got = call(&alice, method, &format!("/api/v1/messages/{ghost}"), None).await;
        assert_api_error(got, 404, "message_not_found");
    }
    let got = call(
        &alice,
        Method::PATCH,
        &format!("/api/v1/messages/{ghost}"),
        Some(json!({"content": "x"})),
    )
    .await;
    assert_api_error(got, 404, "message_not_found");

    // Unknown user.
    let got = call(
        &alice,
        Method::POST,
        "/api/v1/rooms/create",
        Some(json!({"isGroup": false, "memberIds": [ghost]})),
    )
    .await;
    assert_api_error(got, 404, "user_not_found");
    for path in [
        format!("/api/v1/users/{ghost}"),
        format!("/api/v1/presence/{ghost}"),
        format!("/api/v1/lastseen/{ghost}"),
    ] {
        assert_api_error(
            call(&alice, Method::GET, &path, None).await,
            404,
            "user_not_found",
        );
    }

    assert_eq!(history_len(&alice, room).await, 0);
    assert_eq!(
        alice.api.rooms().await.expect("rooms").len(),
        1,
        "no room was created"
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthorized() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;
    let send_body = json!({"roomId": room, "clientMsgId": "c1", "content": "hi"});
    let anonymous = app.client();
    let garbage = app.client().with_token("garbage");
    let not_a_jwt = app.client().with_token("a.b.c");

    for client in [&anonymous, &garbage, &not_a_jwt] {
        for (method, path, body) in [
            (Method::GET, "/api/v1/users/me".to_owned(), None),
            (Method::GET, "/api/v1/rooms".to_owned(), None),
            (Method::GET, format!("/api/v1/rooms/{room}"), None),
            (
                Method::GET,
                format!("/api/v1/messages/history?roomId={room}"),
                None,
            ),
            (
                Method::POST,
                "/api/v1/messages/send".to_owned(),
                Some(send_body.clone()),
            ),
            (
                Method::POST,
                "/api/v1/rooms/create".to_owned(),
                Some(json!({"isGroup": false, "memberIds": [bob.id]})),
            ),
            (Method::GET, format!("/api/v1/presence/{}", bob.id), None),
            (Method::POST, "/api/v1/auth/logout".to_owned(), None),
        ] {
            let got = client
                .raw(method.clone(), &path, body.as_ref())
                .await
                .expect("request");
            assert_api_error(got, 401, "unauthorized");
        }
    }

    // The token without "Bearer ", or with another scheme.
    let http = reqwest::Client::new();
    for value in [
        alice.auth.access_token.clone(),
        format!("Basic {}", alice.auth.access_token),
        "Bearer".to_owned(),
    ] {
        let resp = http
            .get(format!("{}/api/v1/users/me", app.base))
            .header(reqwest::header::AUTHORIZATION, value)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 401);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }

    // The socket refuses them too: a bad header at the handshake; no header at all, at
    // the first frame, which must be `auth` (then close 4003).
    let err = garbage.connect().await.err().expect("socket refused");
    assert!(
        matches!(
            err,
            ClientError::Api {
                status: 401,
                code: ErrorCode::Unauthorized,
                ..
            }
        ),
        "{err:?}"
    );
    let mut socket = anonymous
        .connect()
        .await
        .expect("upgraded, not yet authenticated");
    let id = socket
        .send_frame(send_frame(room, "anon", "who am I"))
        .await
        .expect("send");
    let err = socket.answer(&id, WAIT).await.expect_err("refused");
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err:?}");
    match socket.next_within(WAIT).await {
        Err(ClientError::Closed(Some((close::AUTH_FAILED, _)))) => {}
        other => panic!("expected close 4003, got {other:?}"),
    }
    assert_eq!(history_len(&alice, room).await, 0);
}
