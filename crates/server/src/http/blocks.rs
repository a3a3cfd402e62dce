//! `/api/v1/users/me/blocks*`: the people the caller blocked.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use palaver_proto::{BlockList, ErrorBody};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Path};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/me/blocks", get(list_blocks))
        .route("/users/me/blocks/{userId}", put(block).delete(unblock))
}

/// The people the caller blocked, most recent first.
#[utoipa::path(get, path = "/api/v1/users/me/blocks", tag = "users",
    responses((status = 200, body = BlockList)), security(("bearer" = [])))]
pub async fn list_blocks(
    State(app): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<BlockList>> {
    Ok(Json(app.core.blocks(who).await?))
}

/// Block someone: no 1:1 room, invitation or presence between the two, either way;
/// pending invitations between them end. Blocking twice is blocking once.
#[utoipa::path(put, path = "/api/v1/users/me/blocks/{userId}", tag = "users", params(("userId" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "user_not_found", body = ErrorBody),
        (status = 422, description = "validation_failed: the caller's own id", body = ErrorBody)), security(("bearer" = [])))]
pub async fn block(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(user): Path<Uuid>,
) -> ApiResult<StatusCode> {
    app.core.block(who, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a block (lifting one that is not there changes nothing).
#[utoipa::path(delete, path = "/api/v1/users/me/blocks/{userId}", tag = "users", params(("userId" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "user_not_found", body = ErrorBody),
        (status = 422, description = "validation_failed: the caller's own id", body = ErrorBody)), security(("bearer" = [])))]
pub async fn unblock(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(user): Path<Uuid>,
) -> ApiResult<StatusCode> {
    app.core.unblock(who, user).await?;
    Ok(StatusCode::NO_CONTENT)
}
