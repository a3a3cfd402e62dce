//! The web client: static files compiled into the binary (rust-embed), so `palaver serve`
//! alone serves a working client with nothing fetched from elsewhere. In debug builds
//! rust-embed reads `crates/server/web/` from disk, so edits show on reload.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use palaver_proto::ErrorCode;

use super::error::ApiError;

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

/// Only our own origin may supply code, styles, sockets and frames; pictures and media
/// may also be blob:/data: URLs (local previews of uploads before they are sent).
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'; worker-src 'self'; \
manifest-src 'self'";

/// `GET /`: the client's page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// Every path no other route took: an embedded file if there is one, else the JSON 404
/// every other unknown path gets.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    let is_read = method == Method::GET || method == Method::HEAD;
    if is_read && !path.is_empty() && !path.starts_with("api/") {
        return serve(path, &headers);
    }
    ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response()
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, file.data.into_owned()).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // File names carry no hash, so the browser revalidates each time (a cheap 304)
    // instead of running yesterday's client against today's server.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("webmanifest") => "application/manifest+json",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_embedded() {
        for f in ["index.html", "app.js", "style.css", "sw.js", "icon.svg"] {
            assert!(Assets::get(f).is_some(), "{f} missing");
        }
    }

    #[test]
    fn types_by_extension() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.svg"), "image/svg+xml");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
