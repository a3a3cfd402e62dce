//! `/api/v1/presence/{userId}`, `/api/v1/chat/status/{userId}` and `/api/v1/lastseen/{userId}`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use palaver_proto::{ErrorBody, LastSeen, Presence};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Path};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/presence/{userId}", get(presence))
        .route("/chat/status/{userId}", get(chat_status))
        .route("/lastseen/{userId}", get(last_seen))
}

/// Someone's presence; only for people who share a room with the caller.
#[utoipa::path(get, path = "/api/v1/presence/{userId}", tag = "presence", params(("userId" = Uuid, Path)),
    responses((status = 200, body = Presence), (status = 404, description = "user_not_found (or shares no room)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn presence(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(user): Path<Uuid>,
) -> ApiResult<Json<Presence>> {
    Ok(Json(app.core.presence(who, user).await?))
}

/// The same as `/presence/{userId}`.
#[utoipa::path(get, path = "/api/v1/chat/status/{userId}", tag = "presence", params(("userId" = Uuid, Path)),
    responses((status = 200, body = Presence), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn chat_status(
    state: State<AppState>,
    auth: Auth,
    path: Path<Uuid>,
) -> ApiResult<Json<Presence>> {
    presence(state, auth, path).await
}

/// When someone was last seen (now, while online).
#[utoipa::path(get, path = "/api/v1/lastseen/{userId}", tag = "presence", params(("userId" = Uuid, Path)),
    responses((status = 200, body = LastSeen), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn last_seen(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(user): Path<Uuid>,
) -> ApiResult<Json<LastSeen>> {
    Ok(Json(app.core.last_seen(who, user).await?))
}
