//! `/api/v1/rooms/{roomId}/members/{userId}/mute` and `/api/v1/rooms/{roomId}/bans*`: a
//! group's owners and admins mute members and ban people. The rules are
//! `service::moderation`'s.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use palaver_proto::{BanList, ErrorBody, MuteRequest};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Path};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/rooms/{roomId}/members/{userId}/mute",
            put(mute).delete(unmute),
        )
        .route("/rooms/{roomId}/bans", get(bans))
        .route("/rooms/{roomId}/bans/{userId}", put(ban).delete(unban))
}

/// Mute a member for a while: they read the group, but their sends are refused with
/// `muted` (and `retryAfterMs`) until then. The caller must outrank them.
#[utoipa::path(put, path = "/api/v1/rooms/{roomId}/members/{userId}/mute", tag = "rooms",
    params(("roomId" = Uuid, Path), ("userId" = Uuid, Path)), request_body = MuteRequest,
    responses((status = 204), (status = 403, description = "forbidden: not an owner or admin who outranks the member; not_a_group", body = ErrorBody),
        (status = 404, description = "room_not_found, user_not_found: not a member", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
pub async fn mute(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((room, user)): Path<(Uuid, Uuid)>,
    Json(req): Json<MuteRequest>,
) -> ApiResult<StatusCode> {
    app.core
        .mute_member(who, room, user, req.duration_secs)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a member's mute.
#[utoipa::path(delete, path = "/api/v1/rooms/{roomId}/members/{userId}/mute", tag = "rooms",
    params(("roomId" = Uuid, Path), ("userId" = Uuid, Path)),
    responses((status = 204), (status = 403, description = "forbidden, not_a_group", body = ErrorBody),
        (status = 404, description = "room_not_found, user_not_found", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn unmute(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((room, user)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    app.core.unmute_member(who, room, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The group's bans, for its owners and admins.
#[utoipa::path(get, path = "/api/v1/rooms/{roomId}/bans", tag = "rooms", params(("roomId" = Uuid, Path)),
    responses((status = 200, body = BanList), (status = 403, body = ErrorBody), (status = 404, description = "room_not_found", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn bans(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(room): Path<Uuid>,
) -> ApiResult<Json<BanList>> {
    Ok(Json(app.core.room_bans(who, room).await?))
}

/// Ban someone: a member is removed at once (`room.left`, `removed`), and nobody can add
/// them back (`403 banned`) until unbanned. Banning twice is banning once.
#[utoipa::path(put, path = "/api/v1/rooms/{roomId}/bans/{userId}", tag = "rooms",
    params(("roomId" = Uuid, Path), ("userId" = Uuid, Path)),
    responses((status = 204), (status = 403, description = "forbidden: not an owner or admin who outranks them; not_a_group", body = ErrorBody),
        (status = 404, description = "room_not_found, user_not_found", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn ban(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((room, user)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    app.core.ban_member(who, room, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a ban (they are not added back).
#[utoipa::path(delete, path = "/api/v1/rooms/{roomId}/bans/{userId}", tag = "rooms",
    params(("roomId" = Uuid, Path), ("userId" = Uuid, Path)),
    responses((status = 204), (status = 403, description = "forbidden, not_a_group", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn unban(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((room, user)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    app.core.unban_member(who, room, user).await?;
    Ok(StatusCode::NO_CONTENT)
}
