//! Uploads: every type recognised from its bytes, active content only as an attachment,
//! metadata removed and pictures turned upright, broken and oversized uploads refused,
//! malformed ones answered clearly.

use img_parts::ImageEXIF;
use img_parts::jpeg::Jpeg;
use palaver_proto::{Media, MessageType};
use reqwest::Method;
use reqwest::header::{self};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::*;

use super::{
    SECRET, assert_refused, fetch, http, jpeg_with_metadata, json_of, mp3, mp4, path_of, pdf, png,
    stored_objects, temp_files,
};

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
