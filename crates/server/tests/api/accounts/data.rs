//! A user's own data: the export (everything of theirs, one archive) and account deletion
//! (sessions end, messages kept or erased by the operator's policy, media collected).

use std::collections::BTreeMap;
use std::io::Read;

use palaver_client::ClientError;
use palaver_proto::{ExportReaction, Media, Message, User, close};
use palaver_server::config::DeletionPolicy;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{assert_api_error, get, post};
use crate::helpers::*;

/// A PNG of `w`×`h` pixels.
fn png(w: u32, h: u32, tint: u8) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, tint]));
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// GET with `token` (or none): status, content type and body bytes.
async fn fetch(app: &TestApp, token: Option<&str>, path: &str) -> (u16, String, Vec<u8>) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", app.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, resp.bytes().await.expect("body").to_vec())
}

/// The export's entries, by path.
fn unpack(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("a tar archive") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read");
        out.insert(path, data);
    }
    out
}

fn json_of(entries: &BTreeMap<String, Vec<u8>>, path: &str) -> Value {
    serde_json::from_slice(
        entries
            .get(path)
            .unwrap_or_else(|| panic!("{path} in the export")),
    )
    .expect("json")
}

async fn send_media(user: &TestUser, room: uuid::Uuid, media: &Media) -> Message {
    let body = json!({"roomId": room, "clientMsgId": uuid::Uuid::now_v7().to_string(),
        "type": "image", "mediaId": media.id, "content": "look"});
    let (status, value) = user
        .api
        .raw(Method::POST, "/api/v1/messages/send", Some(&body))
        .await
        .expect("send media");
    assert_eq!(status, 201, "{value}");
    serde_json::from_value(value).expect("message")
}

#[tokio::test]
async fn the_export_holds_the_users_profile_rooms_messages_reactions_receipts_and_uploads() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mine: Vec<Message> = vec![
        alice.send(room.id, "one").await,
        alice.send(room.id, "two").await,
    ];
    let theirs = bob.send(room.id, "bob's, not alice's").await;
    let path = format!("/api/v1/messages/{}/reactions/%F0%9F%91%8D", theirs.id);
    let (status, body) = alice
        .api
        .raw(Method::PUT, &path, None)
        .await
        .expect("react");
    assert!(status < 300, "react: {status} {body}");
    let bytes = png(12, 9, 3);
    let upload = alice
        .api
        .upload("holiday.png", "image/png", bytes)
        .await
        .expect("upload");
    let shared = send_media(&alice, room.id, &upload).await;

    let (status, kind, body) = fetch(&app, alice.api.token(), "/api/v1/users/me/export").await;
    assert_eq!(status, 200);
    assert_eq!(kind, "application/gzip");
    let entries = unpack(&body);

    assert_eq!(json_of(&entries, "export.json")["userId"], json!(alice.id));
    let profile: User = serde_json::from_value(json_of(&entries, "profile.json")).expect("user");
    assert_eq!(profile.username, "alice");
    let rooms = json_of(&entries, "rooms.json");
    assert!(
        rooms["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .any(|r| r["id"] == json!(room.id))
    );
    let receipts = json_of(&entries, "receipts.json");
    assert!(
        receipts["receipts"]
            .as_array()
            .expect("receipts")
            .iter()
            .any(|r| r["roomId"] == json!(room.id))
    );

    let page = json_of(&entries, &format!("messages/{}/1.json", room.id));
    let messages: Vec<Message> =
        serde_json::from_value(page["messages"].clone()).expect("messages");
    let ids: Vec<_> = messages.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        vec![mine[0].id, mine[1].id, shared.id],
        "alice's own, by seq"
    );
    assert!(messages.iter().all(|m| m.sender_id == alice.id));

    let reactions: Vec<ExportReaction> =
        serde_json::from_value(json_of(&entries, "reactions.json")["reactions"].clone())
            .expect("reactions");
    assert_eq!(reactions.len(), 1);
    assert_eq!(
        (reactions[0].message_id, reactions[0].emoji.as_str()),
        (theirs.id, "👍")
    );

    let media: Vec<Media> =
        serde_json::from_value(json_of(&entries, "media.json")["media"].clone()).expect("media");
    assert_eq!(
        media.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![upload.id]
    );
    let file = entries
        .get(&format!("media/{}/holiday.png", upload.id))
        .expect("the upload's bytes");
    assert_eq!(
        hex::encode(Sha256::digest(file)),
        upload.sha256,
        "the stored bytes"
    );
    // Bob's export has none of alice's messages.
    let (_, _, body) = fetch(&app, bob.api.token(), "/api/v1/users/me/export").await;
    let entries = unpack(&body);
    let page = json_of(&entries, &format!("messages/{}/1.json", room.id));
    assert_eq!(page["messages"].as_array().expect("messages").len(), 1);
    assert!(
        !entries.keys().any(|k| k.starts_with("media/")),
        "no uploads of bob's"
    );
}

#[tokio::test]
async fn the_export_needs_a_valid_token() {
    let app = spawn_app().await;
    for token in [None, Some("not-a-token")] {
        let (status, _, body) = fetch(&app, token, "/api/v1/users/me/export").await;
        let body: Value = serde_json::from_slice(&body).expect("error body");
        assert_api_error((status, body), 401, "unauthorized");
    }
}

#[tokio::test]
async fn deleting_needs_the_password_and_a_well_formed_body() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    assert_api_error(
        post(
            &app.client(),
            "/api/v1/users/me/delete",
            json!({"password": PASSWORD}),
        )
        .await,
        401,
        "unauthorized",
    );
    assert_api_error(
        post(
            &alice.api,
            "/api/v1/users/me/delete",
            json!({"password": "wrong"}),
        )
        .await,
        403,
        "forbidden",
    );
    let (status, _) = post(&alice.api, "/api/v1/users/me/delete", json!({})).await;
    assert!(matches!(status, 400 | 422), "no password: {status}");
    let (status, _) = post(
        &alice.api,
        "/api/v1/users/me/delete",
        json!({"password": 7}),
    )
    .await;
    assert!(matches!(status, 400 | 422), "a number: {status}");
    let big = "x".repeat(200_000);
    let (status, _) = post(
        &alice.api,
        "/api/v1/users/me/delete",
        json!({"password": big}),
    )
    .await;
    assert_eq!(status, 413, "oversized");
    // Not JSON at all.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/users/me/delete", app.base))
        .bearer_auth(alice.api.token().expect("token"))
        .header("content-type", "application/json")
        .body("{password")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    // After all that, alice is still there.
    assert_eq!(get(&alice.api, "/api/v1/users/me").await.0, 200);
}

/// How many media records have this id (0 or 1), on either engine.
async fn media_records(app: &TestApp, id: uuid::Uuid) -> usize {
    let literal = match crate::CLUSTER_ENGINES {
        true => format!("'{id}'"),
        false => format!("X'{}'", id.simple()),
    };
    let rows = app
        .db_rows(&format!("SELECT COUNT(*) FROM media WHERE id = {literal}"))
        .await;
    rows[0][0]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .expect("a count")
}

/// Waits for `socket` to be closed with "session ended".
async fn closed_as_ended(socket: &mut palaver_client::Socket) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match socket.next_within(left).await {
            Ok(_) => continue,
            Err(ClientError::Closed(Some((close::SESSION_ENDED, _)))) => break,
            Err(other) => panic!("expected close 4001, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_deleted_account_ends_its_sessions_and_its_messages_stay_from_deleted_user() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let dm = alice.dm(bob).await;
    let group = alice.group("team", &[bob, carol]).await;
    let said = alice.send(dm.id, "remember me").await;
    let shared = alice
        .api
        .upload("shared.png", "image/png", png(8, 8, 1))
        .await
        .expect("upload");
    send_media(alice, group.id, &shared).await;
    let unshared = alice
        .api
        .upload("mine.png", "image/png", png(9, 9, 2))
        .await
        .expect("upload");
    let mut socket = alice.connect().await;
    let other = app
        .client()
        .login("alice", PASSWORD)
        .await
        .expect("second session");

    let (status, body) = post(
        &alice.api,
        "/api/v1/users/me/delete",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 204, "{body}");

    // Every session ends at once: the socket, both access tokens, the refresh token.
    closed_as_ended(&mut socket).await;
    assert_api_error(
        get(&alice.api, "/api/v1/users/me").await,
        401,
        "unauthorized",
    );
    let second = app.client().with_token(&other.access_token);
    assert_api_error(get(&second, "/api/v1/users/me").await, 401, "unauthorized");
    let refreshed = post(
        &app.client(),
        "/api/v1/auth/refresh",
        json!({"refreshToken": other.refresh_token}),
    )
    .await;
    assert_eq!(refreshed.0, 401);
    assert_api_error(
        post(
            &app.client(),
            "/api/v1/auth/login",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await,
        401,
        "invalid_credentials",
    );

    // Policy "keep": the message stays, its sender now "Deleted user".
    let history = bob
        .api
        .history(dm.id, None, None, None)
        .await
        .expect("history")
        .messages;
    let kept = history.iter().find(|m| m.id == said.id).expect("kept");
    assert_eq!(
        (kept.content.as_str(), kept.deleted),
        ("remember me", false)
    );
    let (status, profile) = get(&bob.api, &format!("/api/v1/users/{}", alice.id)).await;
    assert_eq!(status, 200);
    assert_eq!(profile["displayName"], "Deleted user");
    assert_ne!(profile["username"], "alice");
    // Out of every room; nobody can bring the account back into one.
    let room = bob
        .api
        .call::<(), palaver_proto::Room>(Method::GET, &format!("/api/v1/rooms/{}", group.id), None)
        .await
        .expect("room")
        .1;
    assert!(
        !room.members.iter().any(|m| m.user_id == alice.id),
        "alice left the group"
    );
    let (status, body) = bob
        .api
        .raw(
            Method::POST,
            "/api/v1/rooms/create",
            Some(&json!({"isGroup": false, "memberIds": [alice.id]})),
        )
        .await
        .expect("create");
    assert_api_error((status, body), 404, "user_not_found");
    let (_, found) = get(&bob.api, "/api/v1/users?q=deleted").await;
    assert_eq!(
        found["users"].as_array().map(Vec::len),
        Some(0),
        "not found by search"
    );

    // The upload a room shows stays; the one nothing shows is gone.
    assert_eq!(media_records(&app, shared.id).await, 1);
    assert_eq!(media_records(&app, unshared.id).await, 0);
    let (status, _, bytes) = fetch(&app, bob.api.token(), &shared.url).await;
    assert_eq!(
        (status, hex::encode(Sha256::digest(&bytes))),
        (200, shared.sha256.clone())
    );

    // The name is free again.
    app.client()
        .register("alice", PASSWORD, None)
        .await
        .expect("alice again");
}

#[tokio::test]
async fn under_the_erase_policy_a_deleted_accounts_messages_lose_their_content_but_keep_their_seq()
{
    let app = spawn_app_with(|c| c.accounts.deletion = DeletionPolicy::Erase).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let first = alice.send(room.id, "first").await;
    let upload = alice
        .api
        .upload("pic.png", "image/png", png(8, 8, 4))
        .await
        .expect("upload");
    send_media(&alice, room.id, &upload).await;
    let reply = bob.send(room.id, "bob's").await;
    let path = format!("/api/v1/messages/{}/reactions/%F0%9F%91%8D", reply.id);
    alice
        .api
        .raw(Method::PUT, &path, None)
        .await
        .expect("react");
    let before = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history")
        .messages;
    let mut live = bob.connect().await;

    let (status, body) = post(
        &alice.api,
        "/api/v1/users/me/delete",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 204, "{body}");

    // Bob is told each deletion as it happens.
    let frame = live
        .wait_for(
            WAIT,
            |f| matches!(f, palaver_proto::ServerFrame::MessageDeleted { message } if message.id == first.id),
        )
        .await;
    assert!(frame.is_ok(), "message.deleted for alice's message");

    let after = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history")
        .messages;
    let seqs = |list: &[Message]| list.iter().map(|m| m.seq).collect::<Vec<_>>();
    let expected: Vec<i64> = (1..=after.len() as i64).collect();
    assert_eq!(seqs(&after), expected, "no gap");
    assert!(seqs(&after).starts_with(&seqs(&before)), "every seq kept");
    for m in after
        .iter()
        .filter(|m| m.sender_id == alice.id && m.kind != palaver_proto::MessageType::Event)
    {
        assert!(m.deleted && m.content.is_empty(), "erased: {m:?}");
    }
    let bobs = after
        .iter()
        .find(|m| m.id == reply.id)
        .expect("bob's message");
    assert_eq!(bobs.content, "bob's");
    assert!(
        bobs.reactions
            .iter()
            .all(|r| !r.user_ids.contains(&alice.id)),
        "alice's reaction gone"
    );
    // Nothing references the upload any more: it is gone.
    assert_eq!(media_records(&app, upload.id).await, 0);
}
