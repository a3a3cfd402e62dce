//! `/media`: uploads, and the bytes back to those allowed to see them.
//!
//! Served bytes can never act as a page of this origin: only passive types (JPEG, PNG,
//! GIF, WebP, audio, video) are shown inline, everything else is an attachment, and every
//! response carries `nosniff` and a sandboxing Content-Security-Policy.

use std::ops::Range;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use palaver_proto::{ErrorBody, ErrorCode, Media, MediaUsage, UploadQuery};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Json, MediaAccess, Path, Query};
use crate::service::inspect::inline_safe;
use crate::service::links::MediaFile;
use crate::store::MediaRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/media/upload",
            // Uploads have their own, per-type limits, enforced while they stream.
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/media/usage", get(usage))
        .route("/media/{mediaId}", get(download))
        .route("/media/{mediaId}/thumbnail", get(thumbnail))
}

/// Upload a file: a multipart form whose `file` part is the file, or the raw bytes as
/// the body with `?filename=`. The server decides the type from the bytes. Send it in a
/// message with `"type": "image"` (video/audio/file) and `"mediaId"`.
#[utoipa::path(post, path = "/api/v1/media/upload", tag = "media", params(UploadQuery),
    request_body(content((palaver_proto::schema::UploadForm = "multipart/form-data"), (palaver_proto::schema::UploadBytes = "application/octet-stream")),
        description = "the file as the `file` part of a form, or the raw bytes with `?filename=` (any other content type is read as raw bytes)"),
    responses((status = 201, body = Media), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, description = "payload_too_large (also: an image needing more decode memory than the server has), or quota_exceeded: the caller's uploads would occupy more than their quota", body = ErrorBody),
        (status = 422, description = "not a decodable image (truncated, or implausibly large for its file), or empty", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 500, description = "media_upload_failed: retry", body = ErrorBody),
        (status = 503, description = "unavailable: the server's image decoding memory is in use; retry after Retry-After", body = ErrorBody),
        (status = 507, description = "insufficient_storage: the server is short of disk space; retry after Retry-After", body = ErrorBody)), security(("bearer" = [])))]
pub async fn upload(
    State(app): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Media>)> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let media = if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(req, &app)
            .await
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))?;
        loop {
            let field = form
                .next_field()
                .await
                .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))?
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::BadRequest, "the form has no `file` part")
                })?;
            if field.name() == Some("file") {
                let filename = field.file_name().map(str::to_owned).or(q.filename);
                break app
                    .core
                    .upload_media(who, filename.as_deref(), declared, field)
                    .await?;
            }
        }
    } else {
        let body = req.into_body().into_data_stream();
        app.core
            .upload_media(who, q.filename.as_deref(), declared, body)
            .await?
    };
    Ok((StatusCode::CREATED, Json(media)))
}

/// What the caller's uploads occupy, and their quota (`media.user_quota_bytes`).
#[utoipa::path(get, path = "/api/v1/media/usage", tag = "media",
    responses((status = 200, body = MediaUsage), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn usage(State(app): State<AppState>, Auth(who): Auth) -> ApiResult<Json<MediaUsage>> {
    Ok(Json(app.core.media_usage(who).await?))
}

/// The record behind a media request: by a bearer caller who may see it now, or by a
/// signed link to exactly this file.
async fn record(
    app: &AppState,
    access: MediaAccess,
    id: Uuid,
    file: MediaFile,
) -> ApiResult<MediaRow> {
    Ok(match access {
        MediaAccess::Caller(who) => app.core.visible_media(who, id).await?,
        MediaAccess::Link { exp, sig } => app.core.linked_media(id, file, exp, &sig).await?,
    })
}

/// The bytes of a media object, to its uploader and to members of rooms where it was
/// shared (anyone else gets 404), or to whoever holds its signed `url` (`?exp=…&sig=…`,
/// for elements that cannot send headers) until it expires. Supports `Range` (one range)
/// and `If-None-Match`.
#[utoipa::path(get, path = "/api/v1/media/{mediaId}", tag = "media", params(("mediaId" = Uuid, Path),
        ("exp" = Option<i64>, Query, description = "expiry of a signed link, unix seconds (part of `url`)"),
        ("sig" = Option<String>, Query, description = "signature of a signed link (part of `url`)")),
    responses((status = 200, description = "the bytes"), (status = 206, description = "the requested range"), (status = 304, description = "not modified"),
        (status = 401, description = "no credentials, or a signed link that is not valid or has expired", body = ErrorBody), (status = 404, description = "media_not_found", body = ErrorBody), (status = 416, description = "range not satisfiable")),
    security((), ("bearer" = [])))]
pub async fn download(
    State(app): State<AppState>,
    access: MediaAccess,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let row = record(&app, access, id, MediaFile::Original).await?;
    let etag = format!("\"{}\"", row.sha256);
    let mut out = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes");
    if not_modified(&headers, &etag) {
        return Ok(safe(
            out.status(StatusCode::NOT_MODIFIED),
            &row.mime_type,
            &row.filename,
            Body::empty(),
        ));
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(spec) => match parse_range(spec, row.size) {
            RangeSpec::Ignored => None,
            RangeSpec::Bytes(r) => Some(r),
            RangeSpec::Unsatisfiable => {
                let out = Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{}", row.size));
                return Ok(safe(out, &row.mime_type, &row.filename, Body::empty()));
            }
        },
    };
    let stream = app.core.media_bytes(&row.sha256, range.clone()).await?;
    out = match &range {
        Some(r) => out
            .status(StatusCode::PARTIAL_CONTENT)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", r.start, r.end - 1, row.size),
            )
            .header(header::CONTENT_LENGTH, r.end - r.start),
        None => out
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, row.size),
    };
    Ok(safe(
        out,
        &row.mime_type,
        &row.filename,
        stream_body(stream),
    ))
}

/// A small preview of an image media object; same access rule as the object (a signed
/// link is its `thumbnailUrl`).
#[utoipa::path(get, path = "/api/v1/media/{mediaId}/thumbnail", tag = "media", params(("mediaId" = Uuid, Path),
        ("exp" = Option<i64>, Query, description = "expiry of a signed link, unix seconds (part of `thumbnailUrl`)"),
        ("sig" = Option<String>, Query, description = "signature of a signed link (part of `thumbnailUrl`)")),
    responses((status = 200, description = "a JPEG or PNG"), (status = 304, description = "not modified"),
        (status = 401, description = "no credentials, or a signed link that is not valid or has expired", body = ErrorBody), (status = 404, description = "media_not_found, or not an image", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn thumbnail(
    State(app): State<AppState>,
    access: MediaAccess,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let row = record(&app, access, id, MediaFile::Thumbnail).await?;
    let (Some(key), Some(mime)) = (&row.thumb_sha256, &row.thumb_mime) else {
        return Err(ApiError::new(
            ErrorCode::MediaNotFound,
            "this media has no thumbnail",
        ));
    };
    let etag = format!("\"{key}\"");
    let out = Response::builder().header(header::ETAG, &etag);
    let name = format!("thumbnail-{}", row.filename);
    if not_modified(&headers, &etag) {
        return Ok(safe(
            out.status(StatusCode::NOT_MODIFIED),
            mime,
            &name,
            Body::empty(),
        ));
    }
    let stream = app.core.media_bytes(key, None).await?;
    Ok(safe(
        out.status(StatusCode::OK),
        mime,
        &name,
        stream_body(stream),
    ))
}

/// A media store's byte stream as a response body (its errors end the response).
fn stream_body(stream: crate::media::ByteStream) -> Body {
    Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other)))
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// Adds the headers every media response carries and builds it.
fn safe(
    builder: axum::http::response::Builder,
    mime: &str,
    filename: &str,
    body: Body,
) -> Response {
    let disposition = if inline_safe(mime) {
        "inline"
    } else {
        "attachment"
    };
    let builder = builder
        .header(header::CONTENT_TYPE, mime)
        .header(
            header::CONTENT_DISPOSITION,
            content_disposition(disposition, filename),
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        )
        .header("cross-origin-resource-policy", "same-origin")
        // Private, because access is per user; revalidated (by ETag) on every use, so a
        // copy in a browser's cache is shown only while the server would still serve it:
        // access withdrawn, or a link expired, stops it.
        .header(header::CACHE_CONTROL, "private, no-cache");
    builder.body(body).unwrap_or_else(|err| {
        tracing::error!(%err, "could not build a media response");
        ApiError::new(ErrorCode::Internal, "internal error").into_response()
    })
}

/// `inline; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
fn content_disposition(kind: &str, filename: &str) -> HeaderValue {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// Not a single byte range we serve: answer with the whole object (RFC 9110 allows it).
    Ignored,
    Bytes(Range<u64>),
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` against an object of `size` bytes.
fn parse_range(spec: &str, size: u64) -> RangeSpec {
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignored;
    };
    if set.contains(',') {
        return RangeSpec::Ignored;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeSpec::Ignored;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    let range = match (first.is_empty(), last.is_empty()) {
        (true, false) => match parse(last) {
            Some(0) => return RangeSpec::Unsatisfiable,
            Some(n) => size.saturating_sub(n)..size,
            None => return RangeSpec::Ignored,
        },
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeSpec::Ignored;
            };
            let end = if last.is_empty() {
                size
            } else {
                match parse(last) {
                    Some(l) if l >= start => l.saturating_add(1).min(size),
                    _ => return RangeSpec::Ignored,
                }
            };
            start..end
        }
        (true, true) => return RangeSpec::Ignored,
    };
    if range.start >= size || range.is_empty() {
        RangeSpec::Unsatisfiable
    } else {
        RangeSpec::Bytes(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), RangeSpec::Bytes(0..100));
        assert_eq!(parse_range("bytes=900-", 1000), RangeSpec::Bytes(900..1000));
        assert_eq!(parse_range("bytes=-100", 1000), RangeSpec::Bytes(900..1000));
        assert_eq!(parse_range("bytes=-5000", 1000), RangeSpec::Bytes(0..1000));
        assert_eq!(
            parse_range("bytes=990-2000", 1000),
            RangeSpec::Bytes(990..1000)
        );
        assert_eq!(parse_range("bytes=1000-", 1000), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), RangeSpec::Ignored);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), RangeSpec::Ignored);
        assert_eq!(parse_range("items=0-1", 1000), RangeSpec::Ignored);
        assert_eq!(parse_range("bytes=x-1", 1000), RangeSpec::Ignored);
    }

    #[test]
    fn dispositions_quote_safely() {
        let v = content_disposition("attachment", "ça \"va\".txt");
        assert_eq!(
            v.to_str().expect("ascii"),
            "attachment; filename=\"_a _va_.txt\"; filename*=UTF-8''%C3%A7a%20%22va%22.txt"
        );
    }
}
