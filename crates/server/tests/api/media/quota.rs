//! Limits on what one user may upload: a rate bucket of its own, a quota checked before
//! the bytes are stored (side by side too, thumbnails counted, deletions giving room
//! back), usage shown without a quota, and the disk's free-space floor.

use std::path::Path;

use palaver_proto::MessageType;
use palaver_server::config::{RateBucket, RateLimit};
use reqwest::Method;
use reqwest::header::{self};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

use super::{
    assert_refused, fetch, http, json_of, media_records, pdf, png, send_media, stored_objects,
    temp_files, upload_raw,
};

#[tokio::test]
async fn uploads_have_a_rate_bucket_of_their_own() {
    let app = spawn_app_with(|c| {
        c.rate_limits[RateBucket::Upload] = RateLimit::new(1, 2);
    })
    .await;
    let alice = app.user("alice").await;
    for _ in 0..2 {
        upload_raw(&app, &alice, "a.pdf", pdf()).await;
    }
    let (status, headers, body) = upload_raw(&app, &alice, "a.pdf", pdf()).await;
    assert_error(&(status, body), 429, "rate_limited");
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Other actions are not in that bucket.
    let bob = app.user("bob").await;
    alice.dm(&bob).await;
}

/// `n` bytes of a file nobody else uploads (the type sniffed is `file`).
fn unique_file(n: usize) -> Vec<u8> {
    let seed = Uuid::now_v7();
    seed.as_bytes()
        .iter()
        .copied()
        .cycle()
        .enumerate()
        .map(|(i, b)| b ^ (i % 251) as u8)
        .take(n)
        .collect()
}

async fn usage(user: &TestUser) -> palaver_proto::MediaUsage {
    user.api.media_usage().await.expect("usage")
}

/// Bytes in a directory, recursively.
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[tokio::test]
async fn uploads_past_the_quota_are_refused_before_their_bytes_are_stored() {
    const KIB: u64 = 1024;
    let app = spawn_app_with(|c| c.media.user_quota_bytes = 350 * KIB).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    assert_eq!(
        usage(&alice).await,
        palaver_proto::MediaUsage {
            used_bytes: 0,
            quota_bytes: Some(350 * KIB)
        }
    );
    // Three uploads of 100 KiB fit.
    let mut kept = Vec::new();
    for _ in 0..3 {
        let (status, _, body) =
            upload_raw(&app, &alice, "part.bin", unique_file(100 * KIB as usize)).await;
        assert_eq!(status, 201, "{body}");
        kept.push(body);
    }
    assert_eq!(usage(&alice).await.used_bytes, 300 * KIB);
    let stored = bytes_under(&app.data_dir().join("media").join("objects"));
    assert_eq!(stored, 300 * KIB);

    // A fourth, declared: refused before its body is read.
    let (status, _, body) = http(
        Some(&alice),
        Method::POST,
        format!("{}/api/v1/media/upload?filename=x", app.base),
        &[(header::CONTENT_LENGTH, "102400")],
        Some(unique_file(100 * KIB as usize)),
    )
    .await;
    let body = json_of(&body);
    assert_error(&(status, body.clone()), 413, "quota_exceeded");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("307200 of your 358400 bytes"), "{message}");
    // The same, streamed with no length: cut off where it crosses the quota.
    let chunks = (0..100).map(|_| Ok::<_, std::io::Error>(unique_file(KIB as usize)));
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/media/upload?filename=y", app.base))
        .bearer_auth(&alice.auth.access_token)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("streamed upload");
    let status = resp.status().as_u16();
    assert_error(
        &(status, resp.json().await.unwrap_or(Value::Null)),
        413,
        "quota_exceeded",
    );
    // As a multipart form, the typed client's way.
    let answer = alice
        .api
        .upload(
            "z.bin",
            "application/octet-stream",
            unique_file(60 * KIB as usize),
        )
        .await;
    assert_refused(answer, 413, "quota_exceeded");
    // The same bytes again count again: each upload is its uploader's.
    let again = alice
        .api
        .upload("again.pdf", "application/pdf", pdf())
        .await
        .expect("a small one fits");
    let again_too = alice
        .api
        .upload("again.pdf", "application/pdf", pdf())
        .await
        .expect("a small one fits");
    assert_eq!(again.sha256, again_too.sha256);
    assert_eq!(usage(&alice).await.used_bytes, 300 * KIB + 2 * again.size);
    // Nothing of the refused uploads was kept.
    assert_eq!(temp_files(app.data_dir()), 0);
    assert_eq!(
        bytes_under(&app.data_dir().join("media").join("objects")),
        300 * KIB + again.size
    );
    assert_eq!(media_records(&app).await, 5);
    // Bob's quota is his own.
    bob.api
        .upload(
            "bob.bin",
            "application/octet-stream",
            unique_file(200 * KIB as usize),
        )
        .await
        .expect("bob has room");
    assert_eq!(usage(&bob).await.used_bytes, 200 * KIB);
}

#[tokio::test]
async fn uploads_side_by_side_never_pass_the_quota() {
    let app = spawn_app_with(|c| c.media.user_quota_bytes = 10_000).await;
    let alice = app.user("alice").await;
    // Twenty uploads of 1000 bytes at once, all started before any is stored: every one
    // sees room when it starts, and exactly ten fit.
    let uploads = (0..20).map(|_| upload_raw(&app, &alice, "f.bin", unique_file(1000)));
    let answers = futures::future::join_all(uploads).await;
    let stored = answers.iter().filter(|(s, _, _)| *s == 201).count();
    for (status, _, body) in answers.iter().filter(|(s, _, _)| *s != 201) {
        assert_error(&(*status, body.clone()), 413, "quota_exceeded");
    }
    assert_eq!(stored, 10, "{answers:?}");
    assert_eq!(usage(&alice).await.used_bytes, 10_000);
    assert_eq!(media_records(&app).await, 10);
    assert_eq!(temp_files(app.data_dir()), 0);
}

#[tokio::test]
async fn a_thumbnail_counts_and_deleted_uploads_give_their_room_back() {
    let app = spawn_app_with(|c| {
        c.media.user_quota_bytes = 256 * 1024;
        c.media.orphan_ttl_secs = 2;
        c.media.gc_interval_secs = 1;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let picture = alice
        .api
        .upload("pic.png", "image/png", png(64, 64))
        .await
        .expect("upload");
    let (status, _, thumbnail) = fetch(
        &app,
        Some(&alice),
        &picture.thumbnail_url.clone().expect("thumb"),
    )
    .await;
    assert_eq!(status, 200);
    let used = usage(&alice).await.used_bytes;
    assert_eq!(
        used,
        picture.size + thumbnail.len() as u64,
        "the file and its thumbnail"
    );

    // Sent and kept in a room: it counts for as long as the message carries it.
    let room = alice.dm(&bob).await;
    let (status, sent) = send_media(&alice, room.id, MessageType::Image, picture.id).await;
    assert_eq!(status, 201, "{sent}");
    // One byte more than is left.
    let big = unique_file((256 * 1024 - used + 1) as usize);
    let answer = alice
        .api
        .upload("big.bin", "application/octet-stream", big.clone())
        .await;
    assert_refused(answer, 413, "quota_exceeded");
    // Deleting the message leaves the upload unsent; the sweep deletes it, and the room
    // comes back.
    let id = sent["id"].as_str().expect("id");
    let answer = alice
        .api
        .raw(Method::DELETE, &format!("/api/v1/messages/{id}"), None)
        .await
        .expect("delete");
    assert_eq!(answer.0, 200);
    let deadline = std::time::Instant::now() + WAIT;
    while usage(&alice).await.used_bytes > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload was not collected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    alice
        .api
        .upload("big.bin", "application/octet-stream", big)
        .await
        .expect("room again");
}

#[tokio::test]
async fn without_a_quota_usage_still_shows() {
    let app = spawn_app_with(|c| c.media.user_quota_bytes = 0).await;
    let alice = app.user("alice").await;
    let media = alice
        .api
        .upload("a.pdf", "application/pdf", pdf())
        .await
        .expect("upload");
    let (status, body) = alice
        .api
        .raw(Method::GET, "/api/v1/media/usage", None)
        .await
        .expect("usage");
    assert_eq!(status, 200);
    assert_eq!(body, json!({"usedBytes": media.size, "quotaBytes": null}));
    let anonymous = app
        .client()
        .raw(Method::GET, "/api/v1/media/usage", None)
        .await
        .expect("usage");
    assert_error(&anonymous, 401, "unauthorized");
}

#[tokio::test]
async fn uploads_are_refused_while_the_disk_is_below_its_floor() {
    // A floor no disk clears.
    let app = spawn_app_with(|c| c.media.min_free_disk_bytes = u64::MAX / 4).await;
    let alice = app.user("alice").await;
    let (status, headers, body) = upload_raw(&app, &alice, "a.pdf", pdf()).await;
    assert_error(&(status, body.clone()), 507, "insufficient_storage");
    assert_eq!(headers[header::RETRY_AFTER], "60");
    assert_eq!(body["error"]["retryAfterMs"], 60_000);
    assert_eq!(temp_files(app.data_dir()), 0);
    assert!(stored_objects(app.data_dir()).is_empty());
    assert_eq!(media_records(&app).await, 0);
    drop(app);

    // A floor the disk clears, and an upload declaring more than the room above it.
    let app = spawn_app_with(|c| {
        c.media.min_free_disk_bytes = 1 << 20;
        c.media.max_file_bytes = u64::MAX / 4;
        c.media.user_quota_bytes = 0;
    })
    .await;
    let alice = app.user("alice").await;
    let (status, _, body) = http(
        Some(&alice),
        Method::POST,
        format!("{}/api/v1/media/upload?filename=x", app.base),
        &[(header::CONTENT_LENGTH, &(u64::MAX / 8).to_string())],
        Some(vec![0u8; 10]),
    )
    .await;
    assert_error(&(status, json_of(&body)), 507, "insufficient_storage");
    // What fits above the floor is stored.
    upload_raw(&app, &alice, "a.pdf", pdf()).await;
    assert_eq!(stored_objects(app.data_dir()).len(), 1);
}
