//! `GET /api/v1/search`: message search (the rules are `service/search.rs`).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use palaver_proto::{ErrorBody, SearchQuery, SearchResponse};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Query};

pub fn router() -> Router<AppState> {
    Router::new().route("/search", get(search_messages))
}

/// Messages the caller can read that match `q`, newest first: across every room the caller
/// is a member of (invited included), or in `roomId` only. Words match whole and ignore
/// case, and a message must hold every word; Chinese, Japanese and Korean match as
/// substrings of any length. The next page: `before` = the last message's id.
#[utoipa::path(get, path = "/api/v1/search", tag = "messages", params(SearchQuery),
    responses((status = 200, body = SearchResponse),
        (status = 400, description = "bad_request: roomId or before is not a UUID, limit not a number", body = ErrorBody),
        (status = 404, description = "room_not_found: roomId is not a room of the caller's; message_not_found: before is not a message the caller can see", body = ErrorBody),
        (status = 422, description = "validation_failed: q is blank, over 256 bytes, has nothing to search for or more than 16 terms; limit is not 1 to 50", body = ErrorBody),
        (status = 429, description = "rate_limited: too many searches", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn search_messages(
    State(app): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResponse>> {
    Ok(Json(app.core.search(who, &q).await?))
}
