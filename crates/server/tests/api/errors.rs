//! Bad input gets a clear error in the one error shape, and changes nothing: malformed
//! and oversized bodies and frames, forged tokens, strangers to a room, foreign origins,
//! rate limits, slow consumers and removed members.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use palaver_client::{ClientError, Socket};
use palaver_proto::{
    ClientFrame, Cursors, ErrorCode, MessageType, ReceiptKind, SendMessageRequest, ServerFrame,
    close,
};
use palaver_server::config::{RateBucket, RateLimit};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use crate::helpers::*;

/// Asserts an HTTP answer is the error shape with this status and code.
#[track_caller]
fn assert_api_error(got: (u16, Value), status: u16, code: &str) {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "status; body: {body}");
    assert_eq!(body["error"]["code"], code, "error code; body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error message; body: {body}"
    );
}

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

async fn call(user: &TestUser, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    user.api
        .raw(method, path, body.as_ref())
        .await
        .expect("request")
}

async fn history_len(user: &TestUser, room: Uuid) -> usize {
    user.api
        .history(room, None, None, Some(200))
        .await
        .expect("history")
        .messages
        .len()
}

/// Waits for the socket's `error` frame answering frame `id`.
async fn error_for(socket: &mut Socket, id: Option<&str>) -> ErrorCode {
    let frame = socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::Error { id: got, .. } if got.as_deref() == id),
        )
        .await
        .unwrap_or_else(|e| panic!("error frame for id {id:?}: {e:?}"));
    match frame {
        ServerFrame::Error { code, message, .. } => {
            assert!(!message.is_empty());
            code
        }
        _ => unreachable!(),
    }
}

/// Pings and expects the pong: the connection is still usable.
async fn assert_alive(socket: &mut Socket) {
    let id = socket
        .send_frame(ClientFrame::Ping)
        .await
        .expect("send ping");
    match socket.answer(&id, WAIT).await.expect("pong") {
        ServerFrame::Pong { id: Some(got) } => assert_eq!(got, id),
        other => panic!("expected pong, got {other:?}"),
    }
}

/// Reads (and drops) frames until the socket closes; returns the close code and reason.
async fn read_until_closed(
    socket: &mut Socket,
    within: Duration,
) -> Result<Option<(u16, String)>, ClientError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match socket.next_within(left).await {
            Ok(_) => continue,
            Err(ClientError::Closed(code)) => return Ok(code),
            Err(other) => return Err(other),
        }
    }
}

fn send_frame(room: Uuid, client_msg_id: &str, content: &str) -> ClientFrame {
    ClientFrame::Send {
        message: SendMessageRequest {
            room_id: room,
            client_msg_id: client_msg_id.into(),
            content: content.into(),
            kind: MessageType::Text,
            media_id: None,
        },
    }
}

// ---------------------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Forged tokens
// ---------------------------------------------------------------------------------------

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a real token (without checking it).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("claims JSON")
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn sign(alg: Algorithm, claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).expect("sign")
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let secret = std::fs::read_to_string(app.data_dir().join("jwt-secret")).expect("jwt-secret");
    let key = secret.trim().as_bytes().to_vec();
    let real = claims_of(&alice.auth.access_token);
    assert_eq!(real["sub"], alice.id.to_string());
    let claims = |patch: Value| -> Value {
        let now = now_secs();
        let mut c = json!({
            "sub": alice.id, "sid": real["sid"].clone(), "iat": now, "exp": now + 600,
            "aud": "palaver", "iss": "palaver",
        });
        for (k, v) in patch.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let me = |token: String| {
        let client = app.client().with_token(token);
        async move {
            client
                .raw(Method::GET, "/api/v1/users/me", None)
                .await
                .expect("request")
        }
    };

    // Control: a token built here the way the server builds them is accepted, so the
    // refusals below are about the one thing each gets wrong.
    let (status, body) = me(sign(Algorithm::HS256, &claims(json!({})), &key)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], alice.id.to_string());

    // alg: none, with no signature or with a real one.
    let payload = b64(claims(json!({})).to_string().as_bytes());
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None"}),
        json!({"alg": "NONE", "typ": "JWT"}),
    ] {
        let h = b64(header.to_string().as_bytes());
        assert_api_error(me(format!("{h}.{payload}.")).await, 401, "unauthorized");
        assert_api_error(me(format!("{h}.{payload}")).await, 401, "unauthorized");
        let real_sig = alice
            .auth
            .access_token
            .rsplit('.')
            .next()
            .expect("signature");
        assert_api_error(
            me(format!("{h}.{payload}.{real_sig}")).await,
            401,
            "unauthorized",
        );
    }

    // The right claims signed with another key, or another algorithm.
    assert_api_error(
        me(sign(
            Algorithm::HS256,
            &claims(json!({})),
            b"not the server's key",
        ))
        .await,
        401,
        "unauthorized",
    );
    assert_api_error(
        me(sign(Algorithm::HS512, &claims(json!({})), &key)).await,
        401,
        "unauthorized",
    );
    assert_api_error(
        me(sign(Algorithm::HS384, &claims(json!({})), &key)).await,
        401,
        "unauthorized",
    );
    // Algorithm confusion: a header naming a public-key algorithm, "signed" with HMAC
    // over the server's secret (what a verifier that trusts the header's `alg` and uses
    // its one key for everything would accept).
    for alg in ["RS256", "ES256", "PS256", "EdDSA"] {
        let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        let signing_input = format!("{header}.{payload}");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac key");
        mac.update(signing_input.as_bytes());
        let sig = b64(&mac.finalize().into_bytes());
        assert_api_error(
            me(format!("{signing_input}.{sig}")).await,
            401,
            "unauthorized",
        );
    }

    // A real token with its payload swapped for another user's.
    let bob = app.user("bob").await;
    let mut parts: Vec<&str> = alice.auth.access_token.split('.').collect();
    let forged_payload = b64(claims(json!({"sub": bob.id})).to_string().as_bytes());
    parts[1] = &forged_payload;
    assert_api_error(me(parts.join(".")).await, 401, "unauthorized");

    // The right key, but the wrong audience or issuer, or claims missing.
    assert_api_error(
        me(sign(
            Algorithm::HS256,
            &claims(json!({"aud": "other"})),
            &key,
        ))
        .await,
        401,
        "unauthorized",
    );
    assert_api_error(
        me(sign(
            Algorithm::HS256,
            &claims(json!({"iss": "other"})),
            &key,
        ))
        .await,
        401,
        "unauthorized",
    );
    for missing in ["exp", "aud", "iss", "sub", "sid"] {
        let mut c = claims(json!({}));
        c.as_object_mut().expect("object").remove(missing);
        assert_api_error(
            me(sign(Algorithm::HS256, &c, &key)).await,
            401,
            "unauthorized",
        );
    }

    // The right key and claims, but expired (well past the leeway): token_expired.
    let expired = sign(
        Algorithm::HS256,
        &claims(json!({"iat": now_secs() - 7200, "exp": now_secs() - 3600})),
        &key,
    );
    assert_api_error(me(expired.clone()).await, 401, "token_expired");
    let err = app
        .client()
        .with_token(&expired)
        .connect()
        .await
        .err()
        .expect("socket refused");
    assert!(
        matches!(
            err,
            ClientError::Api {
                status: 401,
                code: ErrorCode::TokenExpired,
                ..
            }
        ),
        "{err:?}"
    );
    let forged = sign(
        Algorithm::HS256,
        &claims(json!({})),
        b"not the server's key",
    );
    let err = app
        .client()
        .with_token(&forged)
        .connect()
        .await
        .err()
        .expect("socket refused");
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
}

// ---------------------------------------------------------------------------------------
// Socket
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_socket_frames_get_error_frames_and_the_connection_stays_usable() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;
    let mut socket = alice.connect().await;

    // Malformed JSON.
    socket
        .send_text("{this is not json".into())
        .await
        .expect("send");
    assert_eq!(error_for(&mut socket, None).await, ErrorCode::BadRequest);
    assert_alive(&mut socket).await;

    // Valid JSON that is not a frame.
    for text in ["[1,2,3]", "\"ping\"", "{}", "{\"type\":null}"] {
        socket.send_text(text.into()).await.expect("send");
        assert_eq!(
            error_for(&mut socket, None).await,
            ErrorCode::BadRequest,
            "{text}"
        );
    }
    assert_alive(&mut socket).await;

    // No type, but an id: the error answers that id.
    socket
        .send_text(r#"{"id":"x"}"#.into())
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some("x")).await,
        ErrorCode::BadRequest
    );

    // An unknown frame type, answered with its id.
    socket
        .send_text(r#"{"type":"fly","id":"9"}"#.into())
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some("9")).await,
        ErrorCode::UnknownFrame
    );
    assert_alive(&mut socket).await;

    // A known type with bad fields: bad_request, with its id.
    socket
        .send_text(r#"{"type":"send","id":"s1","message":{"roomId":"nope"}}"#.into())
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some("s1")).await,
        ErrorCode::BadRequest
    );

    // Binary frames are not spoken here.
    socket
        .send_ws(WsMessage::Binary(vec![1u8, 2, 3].into()))
        .await
        .expect("send binary");
    assert_eq!(error_for(&mut socket, None).await, ErrorCode::BadRequest);
    assert_alive(&mut socket).await;

    // A text frame over 64 KiB (but under 1 MiB): payload_too_large, still open.
    let big = format!(
        r#"{{"type":"send","id":"big","message":{{"roomId":"{room}","clientMsgId":"big","content":"{}"}}}}"#,
        "x".repeat(100 * 1024)
    );
    socket.send_text(big).await.expect("send big");
    let code = socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::Error { .. }))
        .await
        .map(|f| match f {
            ServerFrame::Error { code, .. } => code,
            _ => unreachable!(),
        })
        .expect("error frame");
    assert_eq!(code, ErrorCode::PayloadTooLarge);
    assert_alive(&mut socket).await;

    // A receipt with seq 0.
    let id = socket
        .send_frame(ClientFrame::Receipt {
            room_id: room,
            seq: 0,
            status: ReceiptKind::Read,
        })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );
    let id = socket
        .send_frame(ClientFrame::Receipt {
            room_id: room,
            seq: -3,
            status: ReceiptKind::Delivered,
        })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );

    // Sends that break the rules.
    let id = socket
        .send_frame(send_frame(room, "c1", "x".repeat(16 * 1024 + 1).as_str()))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::PayloadTooLarge
    );
    let id = socket
        .send_frame(send_frame(room, "", "hi"))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );
    let id = socket
        .send_frame(send_frame(room, "c2", "  "))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );
    let id = socket
        .send_frame(ClientFrame::Sync {
            cursors: Cursors::from([(room, -1)]),
        })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );

    // Nothing of this was stored, and the connection still sends.
    assert_eq!(history_len(&alice, room).await, 0);
    let (message, duplicate) = socket
        .send_message(room, "ok", "finally")
        .await
        .expect("send ok");
    assert!(!duplicate);
    assert_eq!(message.seq, 1);
    assert_eq!(history_len(&alice, room).await, 1);
}

#[tokio::test]
async fn a_frame_type_must_be_a_string() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut socket = alice.connect().await;
    // `type` is a string naming the frame; a number is not a frame type (it must not be
    // taken for the n-th variant: 7 would be `ping`, 0 `send`).
    for text in [
        r#"{"type":7,"id":"n7"}"#,
        r#"{"type":0,"id":"n0","message":{}}"#,
    ] {
        socket.send_text(text.into()).await.expect("send");
        let frame = socket
            .wait_for(WAIT, |f| {
                matches!(
                    f,
                    ServerFrame::Error { id: Some(_), .. }
                        | ServerFrame::Pong { .. }
                        | ServerFrame::Ack { .. }
                )
            })
            .await
            .expect("an answer");
        assert!(
            matches!(
                &frame,
                ServerFrame::Error {
                    code: ErrorCode::BadRequest | ErrorCode::UnknownFrame,
                    ..
                }
            ),
            "{text} got {frame:?}"
        );
    }
    assert_alive(&mut socket).await;
}

#[tokio::test]
async fn a_message_over_one_mebibyte_closes_the_socket_with_1009() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;
    let mut socket = alice.connect().await;
    assert_alive(&mut socket).await;

    let huge = format!(
        r#"{{"type":"send","id":"huge","message":{{"roomId":"{room}","clientMsgId":"huge","content":"{}"}}}}"#,
        "x".repeat(1024 * 1024 + 1)
    );
    // The server may stop reading before the whole message is written.
    let _ = socket.send_text(huge).await;
    let closed = read_until_closed(&mut socket, WAIT).await;
    assert!(
        matches!(closed, Ok(Some((close::TOO_BIG, _)))),
        "expected close 1009, got {closed:?}"
    );
    assert_eq!(history_len(&alice, room).await, 0);
    // A new connection works.
    let mut again = alice.connect().await;
    assert_alive(&mut again).await;
}

/// Reads one HTTP response head (up to the blank line) from a raw stream.
async fn read_head(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte))
            .await
            .expect("response head in time")
            .expect("read");
        assert_eq!(n, 1, "connection closed inside the response head");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("ASCII head")
}

/// The server's (unmasked) frames in `bytes`, as `(opcode, payload)`.
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, start) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        assert!(bytes[1] & 0x80 == 0, "server frames are not masked");
        let Some(payload) = bytes.get(start..start + len) else {
            break;
        };
        frames.push((opcode, payload.to_vec()));
        bytes = &bytes[start + len..];
    }
    frames
}

#[tokio::test]
async fn a_frame_header_claiming_100_mb_is_refused_before_its_payload() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    // A hand-made handshake over plain TCP, so nothing on our side enforces a size.
    let mut tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let handshake = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        app.addr, alice.auth.access_token
    );
    tcp.write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    // One masked text frame whose header claims 100 MiB (64-bit length), and not a byte
    // of its payload: a server that waited for the payload, or allocated for it, would
    // sit here until the timeout.
    let claimed: u64 = 100 * 1024 * 1024;
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&claimed.to_be_bytes());
    header.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]);
    tcp.write_all(&header).await.expect("frame header");

    // The server answers with close 1009 and ends the connection: read to the end.
    let mut received = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut received))
        .await
        .expect("the server closes at once, without waiting for 100 MiB")
        .expect("read to EOF");
    let frames = server_frames(&received);
    let closing = frames
        .iter()
        .find(|(opcode, _)| *opcode == 0x8)
        .unwrap_or_else(|| panic!("a close frame among {frames:?}"));
    assert!(closing.1.len() >= 2, "close frame with a code: {closing:?}");
    assert_eq!(
        u16::from_be_bytes([closing.1[0], closing.1[1]]),
        close::TOO_BIG
    );

    // Nothing was stored, and the user connects again normally.
    let mut again = alice.connect().await;
    assert_alive(&mut again).await;
}

// ---------------------------------------------------------------------------------------
// Strangers to a room
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_non_member_is_denied_everything_about_a_room() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let room = alice.dm(&bob).await.id;
    let message = alice.send(room, "for bob only").await;
    let mut carol_socket = carol.connect().await;

    // REST: the room and its messages do not exist for carol.
    let msg = message.id;
    let send_body = json!({"roomId": room, "clientMsgId": "c-1", "content": "let me in"});
    for (method, path, body, code) in [
        (
            Method::GET,
            format!("/api/v1/messages/history?roomId={room}"),
            None,
            "room_not_found",
        ),
        (
            Method::POST,
            "/api/v1/messages/send".to_owned(),
            Some(send_body),
            "room_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/rooms/{room}"),
            None,
            "room_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/rooms/{room}/receipts"),
            None,
            "room_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{room}/receipts"),
            Some(json!({"seq": 1, "status": "read"})),
            "room_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/chat/{room}"),
            Some(json!({"clientMsgId": "c-2", "content": "hi"})),
            "room_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/chat/{room}"),
            None,
            "room_not_found",
        ),
        (
            Method::PATCH,
            format!("/api/v1/rooms/{room}"),
            Some(json!({"name": "mine now"})),
            "room_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{room}/members"),
            Some(json!({"userIds": [carol.id]})),
            "room_not_found",
        ),
        (
            Method::DELETE,
            format!("/api/v1/rooms/{room}/members/{}", bob.id),
            None,
            "room_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{room}/leave"),
            None,
            "room_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/presence/{}", alice.id),
            None,
            "user_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/chat/status/{}", alice.id),
            None,
            "user_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/lastseen/{}", alice.id),
            None,
            "user_not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/messages/{msg}"),
            None,
            "message_not_found",
        ),
        (
            Method::PATCH,
            format!("/api/v1/messages/{msg}"),
            Some(json!({"content": "defaced"})),
            "message_not_found",
        ),
        (
            Method::DELETE,
            format!("/api/v1/messages/{msg}"),
            None,
            "message_not_found",
        ),
    ] {
        let got = call(&carol, method.clone(), &path, body).await;
        assert_api_error(got, 404, code);
    }
    // The room is not in carol's list.
    assert!(carol.api.rooms().await.expect("rooms").is_empty());

    // Socket: send, typing, receipt, edit, delete are refused with the frame's id.
    let mut refused = Vec::new();
    refused.push(
        carol_socket
            .send_frame(send_frame(room, "c-3", "let me in"))
            .await
            .expect("send"),
    );
    refused.push(
        carol_socket
            .send_frame(ClientFrame::Typing {
                room_id: room,
                active: true,
            })
            .await
            .expect("send"),
    );
    refused.push(
        carol_socket
            .send_frame(ClientFrame::Receipt {
                room_id: room,
                seq: 1,
                status: ReceiptKind::Read,
            })
            .await
            .expect("send"),
    );
    for id in &refused {
        assert_eq!(
            error_for(&mut carol_socket, Some(id)).await,
            ErrorCode::RoomNotFound,
            "frame {id}"
        );
    }
    let id = carol_socket
        .send_frame(ClientFrame::Edit {
            message_id: msg,
            content: "defaced".into(),
        })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut carol_socket, Some(&id)).await,
        ErrorCode::MessageNotFound
    );
    let id = carol_socket
        .send_frame(ClientFrame::Delete { message_id: msg })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut carol_socket, Some(&id)).await,
        ErrorCode::MessageNotFound
    );

    // A sync naming the room replays nothing and leaves it out of `synced`.
    let id = carol_socket
        .send_frame(ClientFrame::Sync {
            cursors: Cursors::from([(room, 0)]),
        })
        .await
        .expect("sync");
    let mut replayed = Vec::new();
    loop {
        match carol_socket.next_within(WAIT).await.expect("replay") {
            ServerFrame::Message { message } => replayed.push(message),
            ServerFrame::Synced {
                id: Some(got),
                rooms,
            } if got == id => {
                assert!(
                    !rooms.contains_key(&room),
                    "synced names the room: {rooms:?}"
                );
                break;
            }
            _ => {}
        }
    }
    assert!(replayed.is_empty(), "replayed {replayed:?}");

    // Live traffic in the room never reaches carol.
    let mut bob_socket = bob.connect().await;
    let mut alice_socket = alice.connect().await;
    alice_socket
        .send_message(room, "live-1", "secret one")
        .await
        .expect("send");
    alice_socket
        .send_frame(ClientFrame::Typing {
            room_id: room,
            active: true,
        })
        .await
        .expect("typing");
    alice.send(room, "secret two").await;
    // Bob got them, so they were fanned out...
    assert_eq!(next_message(&mut bob_socket).await.content, "secret one");
    assert_eq!(next_message(&mut bob_socket).await.content, "secret two");
    // ...but carol got nothing from the room.
    let room_text = room.to_string();
    assert_no_frame(
        &mut carol_socket,
        "frame from a room carol is not in",
        |f| {
            matches!(f, ServerFrame::Message { .. })
                || serde_json::to_string(f)
                    .is_ok_and(|s| s.contains(&room_text) || s.contains("secret"))
        },
    )
    .await;

    // Nothing carol did changed anything.
    let history = alice
        .api
        .history(room, None, None, None)
        .await
        .expect("history");
    let contents: Vec<&str> = history
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(contents, ["for bob only", "secret one", "secret two"]);
    assert!(
        history
            .messages
            .iter()
            .all(|m| m.sender_id == alice.id && !m.deleted && m.edited_at.is_none())
    );
    let receipts = alice
        .api
        .call::<(), palaver_proto::ReceiptsResponse>(
            Method::GET,
            &format!("/api/v1/rooms/{room}/receipts"),
            None,
        )
        .await
        .expect("receipts")
        .1;
    let members: Vec<Uuid> = receipts.members.iter().map(|m| m.user_id).collect();
    assert!(!members.contains(&carol.id));
    assert_eq!(members.len(), 2);
    assert!(
        receipts
            .members
            .iter()
            .all(|m| m.read_seq == 0 || m.user_id == alice.id)
    );
}

// ---------------------------------------------------------------------------------------
// Origin
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn websocket_origins_are_checked() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let own = format!("http://{}", app.addr);

    origin_refused(&alice, "http://evil.example").await;
    // A look-alike of the server's own origin is not it.
    origin_refused(&alice, &format!("http://{}.evil.example", app.addr)).await;
    origin_refused(&alice, "null").await;
    // The server's own origin, and no Origin at all (not a browser).
    origin_accepted(&alice, Some(&own)).await;
    origin_accepted(&alice, None).await;

    // An allow-list lets that origin in, and still no other.
    let app = spawn_app_with(|c| c.allowed_origins = vec!["http://app.example".into()]).await;
    let alice = app.user("alice").await;
    origin_accepted(&alice, Some("http://app.example")).await;
    origin_refused(&alice, "http://evil.example").await;
    origin_accepted(&alice, Some(&format!("http://{}", app.addr))).await;
}

/// A browser handshake from `origin` is refused with 403 origin_forbidden.
async fn origin_refused(user: &TestUser, origin: &str) {
    let err = user
        .api
        .connect_with_origin(Some(origin))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            ClientError::Api {
                status: 403,
                code: ErrorCode::OriginForbidden,
                ..
            }
        ),
        "{origin}: {err:?}"
    );
}

/// A handshake from `origin` (or none) is accepted and greeted with `hello`.
async fn origin_accepted(user: &TestUser, origin: Option<&str>) {
    let mut socket = user
        .api
        .connect_with_origin(origin)
        .await
        .expect("accepted");
    assert!(
        matches!(
            socket.next_within(WAIT).await.expect("hello"),
            ServerFrame::Hello { .. }
        ),
        "{origin:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Rate limits, slow consumers, removal
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sends_are_rate_limited_per_user() {
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Send] = RateLimit::new(1, 3);
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;

    for i in 0..3 {
        let (status, _) = alice
            .api
            .send(room, &format!("c{i}"), "hi")
            .await
            .expect("within the burst");
        assert_eq!(status, 201);
    }
    let got = call(
        &alice,
        Method::POST,
        "/api/v1/messages/send",
        Some(json!({"roomId": room, "clientMsgId": "c3", "content": "one too many"})),
    )
    .await;
    assert_api_error(got, 429, "rate_limited");
    // Over the socket too, answered with the frame's id.
    let mut socket = alice.connect().await;
    let id = socket
        .send_frame(send_frame(room, "c4", "still too many"))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::RateLimited
    );

    let history = alice
        .api
        .history(room, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 3);
    assert_eq!(
        history.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    // The limit is alice's: bob may still send.
    let (status, _) = bob
        .api
        .send(room, "b1", "my turn")
        .await
        .expect("bob sends");
    assert_eq!(status, 201);
}

/// The next `error` frame: its (id, clientMsgId, code, retryAfterMs).
async fn next_error(
    socket: &mut Socket,
) -> (Option<String>, Option<String>, ErrorCode, Option<u64>) {
    match socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::Error { .. }))
        .await
        .expect("an error frame")
    {
        ServerFrame::Error {
            id,
            client_msg_id,
            code,
            retry_after_ms,
            ..
        } => (id, client_msg_id, code, retry_after_ms),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn rate_limited_says_how_long_to_wait_in_a_field() {
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Send] = RateLimit::new(1, 1);
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    alice.send(room, "the one allowed").await;

    // REST: Retry-After in whole seconds, rounded up, and the same wait in milliseconds
    // in the body.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/messages/send", app.base))
        .bearer_auth(&alice.auth.access_token)
        .json(&json!({"roomId": room, "clientMsgId": "c2", "content": "too many"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 429);
    let header: u64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    let body: Value = resp.json().await.expect("the error shape");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let ms = body["error"]["retryAfterMs"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfterMs is an integer: {body}"));
    assert!((1..=60_000).contains(&ms), "{body}");
    assert_eq!(
        header,
        ms.div_ceil(1000),
        "Retry-After rounds retryAfterMs up"
    );

    // The socket: the same field on the error frame, which names the send (its id and its
    // clientMsgId; with no id, the clientMsgId alone).
    let mut socket = alice.connect().await;
    let id = socket
        .send_frame(send_frame(room, "c3", "still too many"))
        .await
        .expect("send");
    let (got_id, client_msg_id, code, wait) = next_error(&mut socket).await;
    assert_eq!(code, ErrorCode::RateLimited);
    assert_eq!(got_id.as_deref(), Some(id.as_str()));
    assert_eq!(client_msg_id.as_deref(), Some("c3"));
    assert!(wait.is_some_and(|w| (1..=60_000).contains(&w)), "{wait:?}");
    let no_id = json!({"type": "send", "message": {"roomId": room, "clientMsgId": "c4", "content": "again"}});
    socket.send_text(no_id.to_string()).await.expect("send");
    let (got_id, client_msg_id, code, wait) = next_error(&mut socket).await;
    assert_eq!(
        (got_id, client_msg_id.as_deref(), code),
        (None, Some("c4"), ErrorCode::RateLimited)
    );
    assert!(wait.is_some(), "retryAfterMs on a send without id");
    // Other errors carry no wait.
    let id = socket
        .send_frame(ClientFrame::Typing {
            room_id: Uuid::now_v7(),
            active: true,
        })
        .await
        .expect("typing");
    let (got_id, client_msg_id, code, wait) = next_error(&mut socket).await;
    assert_eq!(got_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        (client_msg_id, code, wait),
        (None, ErrorCode::RoomNotFound, None)
    );
}

#[tokio::test]
async fn an_error_answering_a_send_without_id_carries_its_client_msg_id() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    let mut socket = alice.connect().await;
    let stranger_room = bob.group("bob alone", &[]).await.id;
    let send = |room: Value, client_msg_id: &str, extra: Value| {
        let mut message = json!({"roomId": room, "clientMsgId": client_msg_id, "content": "hi"});
        if let (Some(m), Some(extra)) = (message.as_object_mut(), extra.as_object()) {
            m.extend(extra.clone());
        }
        json!({"type": "send", "message": message}).to_string()
    };

    // Each send has no `id`; each error names its clientMsgId.
    for (frame, client_msg_id, code) in [
        // Refused by validation: empty content, media type without mediaId.
        (
            send(json!(room), "v1", json!({"content": ""})),
            "v1",
            ErrorCode::ValidationFailed,
        ),
        (
            send(json!(room), "v2", json!({"type": "image"})),
            "v2",
            ErrorCode::ValidationFailed,
        ),
        // Not allowed: a room Alice is not in, media she cannot see.
        (
            send(json!(stranger_room), "n1", json!({})),
            "n1",
            ErrorCode::RoomNotFound,
        ),
        (
            send(
                json!(room),
                "n2",
                json!({"type": "image", "mediaId": Uuid::now_v7()}),
            ),
            "n2",
            ErrorCode::MediaNotFound,
        ),
        // Too malformed to handle, but the clientMsgId can still be read.
        (
            send(json!("not-a-uuid"), "m1", json!({})),
            "m1",
            ErrorCode::BadRequest,
        ),
        (
            send(json!(room), "m2", json!({"content": 5})),
            "m2",
            ErrorCode::BadRequest,
        ),
    ] {
        socket.send_text(frame.clone()).await.expect("send");
        let (got_id, got_client_msg_id, got_code, _) = next_error(&mut socket).await;
        assert_eq!(got_id, None, "{frame}");
        assert_eq!(got_client_msg_id.as_deref(), Some(client_msg_id), "{frame}");
        assert_eq!(got_code, code, "{frame}");
    }
    // A clientMsgId that cannot be read, or is too long to be one, is not echoed.
    let long = "x".repeat(65);
    for frame in [
        send(json!(room), &long, json!({})),
        json!({"type": "send", "message": {"roomId": room, "clientMsgId": 7}}).to_string(),
    ] {
        socket.send_text(frame.clone()).await.expect("send");
        let (_, got_client_msg_id, _, _) = next_error(&mut socket).await;
        assert_eq!(got_client_msg_id, None, "{frame}");
    }
    // Errors for other frames carry none.
    socket
        .send_text(json!({"type": "typing", "roomId": stranger_room}).to_string())
        .await
        .expect("typing");
    let (_, got_client_msg_id, code, _) = next_error(&mut socket).await;
    assert_eq!((got_client_msg_id, code), (None, ErrorCode::RoomNotFound));
    // Nothing was stored.
    assert_eq!(history_len(&alice, room).await, 0);
}

#[tokio::test]
async fn a_flooding_socket_is_rate_limited_while_others_chat_on() {
    const BURST: usize = 20;
    const FLOOD: usize = 300;
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Send] = RateLimit::new(60, BURST as u32);
    })
    .await;
    let (mallory, alice, bob) = (
        app.user("mallory").await,
        app.user("alice").await,
        app.user("bob").await,
    );
    let target = mallory.dm(&alice).await.id;
    let quiet_room = alice.dm(&bob).await.id;
    let mut bob_socket = bob.connect().await;

    // Mallory pipelines FLOOD sends without waiting for any answer.
    let mut flood = mallory.connect().await;
    let mut ids = Vec::new();
    for i in 0..FLOOD {
        ids.push(
            flood
                .send_frame(send_frame(target, &format!("f{i}"), "spam"))
                .await
                .expect("send"),
        );
    }
    // Every frame is answered: an ack within the burst (and what refills meanwhile, one a
    // second), a rate_limited error naming the frame and the wait after that.
    let (mut acked, mut limited) = (0, 0);
    for id in &ids {
        match flood.answer(id, WAIT).await {
            Ok(ServerFrame::Ack { .. }) => acked += 1,
            Err(ClientError::Api { code, message, .. }) => {
                assert_eq!(code, ErrorCode::RateLimited, "{message}");
                assert!(message.contains("retry in"), "says when: {message}");
                limited += 1;
            }
            other => panic!("expected ack or error, got {other:?}"),
        }
    }
    assert_eq!(acked + limited, FLOOD);
    assert!(
        (BURST..BURST + 10).contains(&acked),
        "{acked} acked of {FLOOD}"
    );
    // The flooder's connection is still usable, and only what was acked was stored.
    assert_alive(&mut flood).await;
    assert_eq!(history_len(&mallory, target).await, acked);

    // Others are not limited by mallory's flood: alice reaches bob at once.
    let sent = alice.send(quiet_room, "still here").await;
    assert_eq!(next_message(&mut bob_socket).await.id, sent.id);
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1008_and_resumes_without_a_gap() {
    const TOTAL: usize = 2000;
    const IN_FLIGHT: usize = 64;
    let app = spawn_app_with(|c| c.outbound_queue = 8).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;

    // Bob's connection goes live, then bob stops reading.
    let mut bob_socket = bob.connect().await;
    assert_alive(&mut bob_socket).await;

    // Alice sends quickly, many at once. (Over REST: a socket of hers would get her own
    // messages on its queue of 8 too, and could not keep many in flight.)
    let padding = "x".repeat(8 * 1024);
    let started = std::time::Instant::now();
    let sends = (1..=TOTAL).map(|n| {
        let api = alice.api.clone();
        let content = format!("{n} {padding}");
        async move {
            api.send(room, &format!("m{n}"), &content)
                .await
                .expect("send")
                .0
        }
    });
    let statuses: Vec<u16> = futures::stream::iter(sends)
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 201));
    eprintln!("sent {TOTAL} in {:?}", started.elapsed());

    // Bob reads what he can: messages in order with no gap, then the close.
    let mut last = 0i64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match bob_socket.next_within(left).await {
            Ok(ServerFrame::Message { message }) => {
                assert_eq!(message.room_id, room);
                assert_eq!(message.seq, last + 1, "gap in live traffic");
                last = message.seq;
            }
            Ok(_) => {}
            Err(ClientError::Closed(Some((close::SLOW_CONSUMER, _)))) => break,
            Err(other) => panic!("expected close 1008 after seq {last}, got {other:?}"),
        }
    }
    eprintln!(
        "bob got {last} live before the close, after {:?}",
        started.elapsed()
    );
    assert!(last < TOTAL as i64, "bob was never cut off");

    // Bob comes back and resumes from the last seq he has: the rest, in order, once.
    let (mut resumed, replayed) = bob.resume(Cursors::from([(room, last)])).await;
    let seqs: Vec<i64> = replayed.iter().map(|m| m.seq).collect();
    let expected: Vec<i64> = (last + 1..=TOTAL as i64).collect();
    assert_eq!(seqs.len(), expected.len());
    assert!(seqs == expected, "replay is not {}..={TOTAL}", last + 1);
    assert!(
        replayed
            .iter()
            .all(|m| m.room_id == room && m.content.ends_with(&padding))
    );
    // And is live again.
    alice.send(room, "welcome back").await;
    let next = next_message(&mut resumed).await;
    assert_eq!(
        (next.seq, next.content.as_str()),
        (TOTAL as i64 + 1, "welcome back")
    );
}

#[tokio::test]
async fn removal_takes_effect_at_once_on_open_sockets() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let room = alice.group("team", &[&bob, &carol]).await.id;
    alice.send(room, "before").await;
    let mut bob_socket = bob.connect().await;
    let mut carol_socket = carol.connect().await;
    let mut alice_socket = alice.connect().await;
    assert_alive(&mut bob_socket).await;
    assert_alive(&mut carol_socket).await;

    let (status, body) = call(
        &alice,
        Method::DELETE,
        &format!("/api/v1/rooms/{room}/members/{}", bob.id),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    match bob_socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::RoomLeft { .. }))
        .await
        .expect("room.left")
    {
        ServerFrame::RoomLeft { room_id } => assert_eq!(room_id, room),
        _ => unreachable!(),
    }

    // Alice sends; carol gets it, bob does not.
    let sent = alice.send(room, "after bob left").await;
    let got = next_message(&mut carol_socket).await;
    assert_eq!(got.id, sent.id);
    assert_no_frame(&mut bob_socket, "message from a room bob was removed from", |f| {
        matches!(f, ServerFrame::Message { message } if message.room_id == room)
            || matches!(f, ServerFrame::Typing { room_id, .. } | ServerFrame::Receipt { room_id, .. } if *room_id == room)
    })
    .await;
    let id = alice_socket
        .send_frame(ClientFrame::Typing {
            room_id: room,
            active: true,
        })
        .await
        .expect("typing");
    alice_socket
        .answer(&id, WAIT)
        .await
        .expect("typing accepted");
    match carol_socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::Typing { .. }))
        .await
        .expect("carol sees typing")
    {
        ServerFrame::Typing {
            room_id, user_id, ..
        } => assert_eq!((room_id, user_id), (room, alice.id)),
        _ => unreachable!(),
    }
    assert_no_frame(
        &mut bob_socket,
        "typing from a room bob was removed from",
        |f| {
            matches!(f, ServerFrame::Message { message } if message.room_id == room)
                || matches!(f, ServerFrame::Typing { room_id, .. } if *room_id == room)
        },
    )
    .await;

    // Bob's REST view: the room is gone.
    let got = call(
        &bob,
        Method::GET,
        &format!("/api/v1/messages/history?roomId={room}"),
        None,
    )
    .await;
    assert_api_error(got, 404, "room_not_found");
    let got = call(&bob, Method::GET, &format!("/api/v1/rooms/{room}"), None).await;
    assert_api_error(got, 404, "room_not_found");
    let got = call(
        &bob,
        Method::GET,
        &format!("/api/v1/messages/{}", sent.id),
        None,
    )
    .await;
    assert_api_error(got, 404, "message_not_found");
    let err = bob
        .api
        .send(room, "b1", "still here?")
        .await
        .expect_err("bob cannot send");
    assert_eq!(err.code(), Some(ErrorCode::RoomNotFound));
    // And on his socket: sends are refused, and a sync does not replay the room.
    let id = bob_socket
        .send_frame(send_frame(room, "b2", "still here?"))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut bob_socket, Some(&id)).await,
        ErrorCode::RoomNotFound
    );
    let id = bob_socket
        .send_frame(ClientFrame::Sync {
            cursors: Cursors::from([(room, 0)]),
        })
        .await
        .expect("sync");
    loop {
        match bob_socket.next_within(WAIT).await.expect("sync answer") {
            ServerFrame::Message { message } if message.room_id == room => {
                panic!("replayed {message:?}")
            }
            ServerFrame::Synced {
                id: Some(got),
                rooms,
            } if got == id => {
                assert!(!rooms.contains_key(&room), "{rooms:?}");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        history_len(&alice, room).await,
        2,
        "bob's attempts stored nothing"
    );
}
