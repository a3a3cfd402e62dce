//! Pictures: profile pictures (`/users/me/avatar`) and group pictures
//! (`/rooms/{roomId}/picture`), set from one's own uploads, shown as signed links on users,
//! members and rooms, kept alive while shown and collected once replaced.
//!
//! The parts: `avatars` (setting, showing, removing and refusing an avatar) and `groups`
//! (a group's picture: who may set it, the live update, the sweep and the quota). What
//! they share is here.

use std::io::Cursor;

use palaver_proto::Media;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

mod avatars;
mod groups;

/// A PNG of `w`×`h` pixels: big enough for a thumbnail smaller than itself.
fn png(w: u32, h: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 42]));
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// Uploads a picture as `user`.
async fn upload_picture(user: &TestUser, name: &str) -> Media {
    user.api
        .upload(name, "image/png", png(400, 300))
        .await
        .expect("upload")
}

/// Uploads something that is not an image (it becomes a `file`).
async fn upload_text(user: &TestUser) -> Media {
    user.api
        .upload("notes.txt", "image/png", b"not a picture at all\n".to_vec())
        .await
        .expect("upload")
}

/// Any request as `user` (or, with `None`, without a token): status and JSON body.
async fn call(
    app: &TestApp,
    user: Option<&TestUser>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = match user {
        Some(user) => user.api.clone(),
        None => app.client(),
    };
    client
        .raw(method, path, body.as_ref())
        .await
        .expect("request")
}

/// A request whose body is `body` as it is, declared JSON.
async fn call_raw(
    app: &TestApp,
    user: &TestUser,
    method: Method,
    path: &str,
    body: String,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(&user.auth.access_token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `{"mediaId": id}`.
fn media(id: Uuid) -> Option<Value> {
    Some(json!({ "mediaId": id }))
}

/// Fetches a signed link without any header: its status and content type.
async fn fetch_link(app: &TestApp, link: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("{}{link}", app.base))
        .send()
        .await
        .expect("fetch");
    let kind = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (response.status().as_u16(), kind)
}

/// The id of the media object a signed link opens, and whether it is the thumbnail.
fn linked(link: &str) -> (Uuid, bool) {
    let path = link
        .strip_prefix("/api/v1/media/")
        .and_then(|rest| rest.split_once('?'))
        .map(|(path, _)| path)
        .unwrap_or_else(|| panic!("not a media link: {link}"));
    assert!(
        link.contains("exp=") && link.contains("sig="),
        "signed: {link}"
    );
    match path.split_once('/') {
        Some((id, "thumbnail")) => (id.parse().expect("id"), true),
        Some(_) => panic!("not a media link: {link}"),
        None => (path.parse().expect("id"), false),
    }
}
