//! Media: uploads of every type, the type decided from the bytes, limits, metadata
//! removal, who may fetch, Range requests, deduplication, failures that leave nothing
//! behind, orphan collection, media in messages, and the S3 backend.
//!
//! The parts: `uploads` (types, metadata, limits, malformed uploads), `access` (who may
//! fetch, signed links, ranges, media in messages), `storage` (deduplication, failures,
//! orphans, the S3 backend), `bombs` (decompression bombs and the decoding budget) and
//! `quota` (the upload rate bucket, the per-user quota and the disk floor). What they
//! share is here.

use std::io::Cursor;
use std::path::Path;

use bytes::Bytes;
use img_parts::ImageEXIF;
use img_parts::jpeg::{Jpeg, JpegSegment};
use palaver_proto::{Media, MessageType};
use reqwest::Method;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

mod access;
mod bombs;
mod quota;
mod storage;
mod uploads;

/// A PNG of `w`×`h` pixels.
pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 99]));
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

pub(crate) const SECRET: &str = "GPS 52.5163N 13.3777E";

/// A JPEG of `w`×`h` pixels carrying location in EXIF, XMP and a comment, and the EXIF
/// orientation `orientation` (6: rotate 90° clockwise to display).
pub(crate) fn jpeg_with_metadata(w: u32, h: u32, orientation: u16) -> Vec<u8> {
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

async fn media_records(app: &TestApp) -> i64 {
    let rows = app.db_rows("SELECT COUNT(*) FROM media").await;
    rows[0][0]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .expect("count")
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
