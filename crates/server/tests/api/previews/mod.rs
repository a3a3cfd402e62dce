//! Link previews, end to end: a page server of the test's own on a loopback port serves
//! the pages messages link to, and counts what it is asked for. The SSRF guard refuses
//! loopback, so these servers allow `127.0.0.1` on `link_previews.outbound_allow`, the
//! same way the webhook tests reach theirs (`push.outbound_allow`); the tests of the
//! guard itself leave it empty.
//!
//! The parts: `delivery` (a preview arriving as a change, the cache, the switches, edits,
//! deletion, sync) and `bounds` (the guard, redirects, types, size and time budgets, the
//! picture's limit, the rate limit). The page server and what they share are here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use palaver_client::Socket;
use palaver_proto::{Message, ServerFrame};
use palaver_server::Config;
use parking_lot::Mutex;

use crate::helpers::*;
// The media tests' pictures (a relative path: the suite is also a module of api_cluster).
use super::media;

mod bounds;
mod delivery;

/// Pages served, by path (without the query).
type Hits = Arc<Mutex<HashMap<String, u32>>>;

/// A web server on a random loopback port with the pages the tests link to:
/// - `/page/{name}?delay_ms=&image=`: a title, description, site name and picture in
///   Open Graph tags (the picture `/picture.jpg` unless `image` says otherwise);
/// - `/plain/{name}`: only `<title>` and `<meta name=description>`;
/// - `/picture.jpg`: a JPEG carrying location metadata; `/noise.png`: a large PNG;
/// - `/json`, `/big` (the head after 600 KiB), `/endless` (a title, then bytes forever),
///   `/redirect?to=` (302).
struct Pages {
    base: String,
    hits: Hits,
}

async fn count(State(hits): State<Hits>, request: Request, next: Next) -> Response {
    *hits
        .lock()
        .entry(request.uri().path().to_owned())
        .or_default() += 1;
    next.run(request).await
}

fn html(body: String) -> Response {
    ([("content-type", "text/html; charset=utf-8")], body).into_response()
}

async fn page(Path(name): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(ms) = q.get("delay_ms").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let image = q.get("image").map_or("/picture.jpg", String::as_str);
    html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8">
        <title>not the og title</title>
        <meta property="og:title" content="Page {name}">
        <meta property="og:description" content="All about {name} &amp; more">
        <meta property="og:site_name" content="Test site">
        <meta property="og:image" content="{image}">
        </head><body><p>{name}</p></body></html>"#
    ))
}

async fn plain(Path(name): Path<String>) -> Response {
    html(format!(
        "<html><head><title>Plain {name}</title>\
         <meta name=description content=\"Said plainly\"></head></html>"
    ))
}

async fn picture() -> Response {
    (
        [("content-type", "image/jpeg")],
        media::jpeg_with_metadata(640, 480, 1),
    )
        .into_response()
}

/// A PNG of noise, which does not compress: well over 100 KiB.
async fn noise() -> Response {
    let mut state = 0x2545_f491_u32;
    let picture = image::RgbImage::from_fn(300, 300, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    ([("content-type", "image/png")], out.into_inner()).into_response()
}

async fn json() -> Response {
    (
        [("content-type", "application/json")],
        r#"{"title": "not a page"}"#,
    )
        .into_response()
}

/// The head comes after 600 KiB: past the default budget of 512 KiB.
async fn big() -> Response {
    let padding = format!("<!-- {} -->", "x".repeat(600 * 1024));
    html(format!(
        "<!doctype html>{padding}<html><head><title>Too far down</title></head></html>"
    ))
}

/// A title, then bytes for as long as anyone reads.
async fn endless() -> Response {
    let head = futures::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(
            b"<html><head><title>Endless</title></head><body>",
        ))
    });
    let rest = futures::stream::repeat_with(|| Ok(Bytes::from(vec![b' '; 64 * 1024])));
    let body = Body::from_stream(futures::StreamExt::chain(head, rest));
    ([("content-type", "text/html")], body).into_response()
}

async fn redirect(Query(q): Query<HashMap<String, String>>) -> Response {
    let to = q.get("to").cloned().unwrap_or_default();
    (StatusCode::FOUND, [("location", to)]).into_response()
}

impl Pages {
    async fn start() -> Pages {
        let hits: Hits = Arc::default();
        let app = Router::new()
            .route("/page/{name}", get(page))
            .route("/plain/{name}", get(plain))
            .route("/picture.jpg", get(picture))
            .route("/noise.png", get(noise))
            .route("/json", get(json))
            .route("/big", get(big))
            .route("/endless", get(endless))
            .route("/redirect", get(redirect))
            .layer(middleware::from_fn_with_state(hits.clone(), count));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind page server");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Pages { base, hits }
    }

    /// The URL of `path` on this server.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// How often `path` was asked for.
    fn hits(&self, path: &str) -> u32 {
        self.hits.lock().get(path).copied().unwrap_or(0)
    }
}

/// Previews may reach the page server (loopback), and nothing else internal.
fn allow_pages(c: &mut Config) {
    c.link_previews.outbound_allow = vec!["127.0.0.1".into()];
}

/// A server whose previews reach the page server.
async fn app() -> TestApp {
    spawn_app_with(allow_pages).await
}

/// `text` with a link in it, as a person writes one.
fn linking(url: &str) -> String {
    format!("have a look at {url}, it is good")
}

/// Waits for `message.updated` of `id` carrying a preview, skipping other frames.
async fn previewed(socket: &mut Socket, id: uuid::Uuid) -> Message {
    titled(socket, id, None).await
}

/// Waits for `message.updated` of `id` carrying a preview (titled `title`, if given).
async fn titled(socket: &mut Socket, id: uuid::Uuid, title: Option<&str>) -> Message {
    let frame = socket
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::MessageUpdated { message }
            if message.id == id && message.link_preview.as_ref().is_some_and(|p| {
                title.is_none_or(|t| p.title == t)
            }))
        })
        .await
        .expect("a preview as message.updated");
    match frame {
        ServerFrame::MessageUpdated { message } => message,
        _ => unreachable!(),
    }
}

/// The cache entry of `url` once there is one: `Some(title)` for a preview, `None` for a
/// failure. The job has then ended (the entry is written before the message is changed).
async fn cached(app: &TestApp, url: &str) -> Option<String> {
    let sql = format!(
        "SELECT title FROM link_previews WHERE url = '{}'",
        url.replace('\'', "''")
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(row) = app.db_rows(&sql).await.pop() {
            return row.into_iter().next().flatten();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no cache entry for {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The message as `user` reads it now.
async fn fetched(user: &TestUser, id: uuid::Uuid) -> Message {
    let path = format!("/api/v1/messages/{id}");
    user.api
        .call::<(), Message>(reqwest::Method::GET, &path, None)
        .await
        .expect("message")
        .1
}

/// Asserts no `message.updated` of `id` arrives for a while.
async fn no_update(socket: &mut Socket, id: uuid::Uuid) {
    assert_no_frame(
        socket,
        "message.updated",
        |f| matches!(f, ServerFrame::MessageUpdated { message } if message.id == id),
    )
    .await;
}

/// Asserts no `message.updated` of `id` with a preview arrives for a while.
async fn no_card(socket: &mut Socket, id: uuid::Uuid) {
    assert_no_frame(socket, "a preview", |f| {
        matches!(f, ServerFrame::MessageUpdated { message }
            if message.id == id && message.link_preview.is_some())
    })
    .await;
}
