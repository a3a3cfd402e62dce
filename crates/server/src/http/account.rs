//! `/api/v1/users/me/export` and `/api/v1/users/me/delete`: a user's data, taken out,
//! and their account, deleted. The rules are `service::export` and `service::account`.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use palaver_proto::{DeleteAccountRequest, EXPORT_FILENAME, ErrorBody};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/me/export", get(export))
        .route("/users/me/delete", post(delete_account))
}

/// Everything of the caller's, as one gzip-compressed tar file: profile, rooms, their
/// messages, receipts and reactions as JSON, and the files they uploaded (layout in
/// docs/PROTOCOL.md). Streamed as it is built.
#[utoipa::path(get, path = "/api/v1/users/me/export", tag = "users",
    responses((status = 200, description = "the archive (application/gzip)", content_type = "application/gzip"),
        (status = 401, body = ErrorBody),
        (status = 429, description = "rate_limited: asked too often, or the node builds as many exports as it may; see Retry-After", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export(State(app): State<AppState>, Auth(who): Auth) -> ApiResult<Response> {
    let stream = app.core.export(who).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/gzip")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{EXPORT_FILENAME}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::new(palaver_proto::ErrorCode::Internal, e.to_string()))
}

/// Delete the caller's account, confirmed with its password. Every session ends at once;
/// messages follow the server's policy (`accounts.deletion`: kept as from "Deleted user",
/// or erased with their seqs kept); uploads no room references go.
#[utoipa::path(post, path = "/api/v1/users/me/delete", tag = "users", request_body = DeleteAccountRequest,
    responses((status = 204, description = "deleted; the caller's tokens no longer work"),
        (status = 400, description = "bad_request: malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "forbidden: the password is wrong", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "unavailable: too many password checks at once; see Retry-After", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_account(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<DeleteAccountRequest>,
) -> ApiResult<StatusCode> {
    app.core.delete_account(who, req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
