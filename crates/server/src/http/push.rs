//! `/api/v1/push/*` and `/api/v1/rooms/{roomId}/mute`: the VAPID key, Web Push
//! subscriptions, the preview setting and per-room mutes.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use palaver_proto::{
    ErrorBody, NotificationLevel, PushSettings, PushSubscription, PushSubscriptionList,
    PushSubscriptionRequest, UpdatePushSettingsRequest, VapidPublicKey,
};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Path};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/push/vapid-public-key", get(vapid_public_key))
        .route("/push/subscriptions", get(subscriptions).post(subscribe))
        .route("/push/subscriptions/{subscriptionId}", delete(unsubscribe))
        .route("/push/settings", get(settings).put(update_settings))
        .route("/rooms/{roomId}/mute", put(mute).delete(unmute))
}

/// The server's VAPID public key: `applicationServerKey` for `pushManager.subscribe`.
#[utoipa::path(get, path = "/api/v1/push/vapid-public-key", tag = "push",
    responses((status = 200, body = VapidPublicKey), (status = 503, description = "push is disabled on this server", body = ErrorBody)), security(("bearer" = [])))]
pub async fn vapid_public_key(
    State(app): State<AppState>,
    Auth(_): Auth,
) -> ApiResult<Json<VapidPublicKey>> {
    Ok(Json(app.core.vapid_public_key()?))
}

/// Register a browser's push subscription (`PushSubscription.toJSON()`), bound to the
/// caller's session: logging out (or any end of the session) deletes it. Registering an
/// endpoint again updates it and answers 200; an endpoint another user registered, in a
/// session still live, is refused with 409.
#[utoipa::path(post, path = "/api/v1/push/subscriptions", tag = "push", request_body = PushSubscriptionRequest,
    responses((status = 201, body = PushSubscription), (status = 200, description = "endpoint already registered", body = PushSubscription),
        (status = 401, description = "no credentials, or the session has ended", body = ErrorBody),
        (status = 409, description = "conflict: too many subscriptions, or the endpoint is another user's", body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, description = "bad keys, or an endpoint the server may not reach", body = ErrorBody)), security(("bearer" = [])))]
pub async fn subscribe(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<PushSubscriptionRequest>,
) -> ApiResult<(StatusCode, Json<PushSubscription>)> {
    let (sub, created) = app.core.subscribe(who, req).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sub)))
}

/// The caller's push subscriptions.
#[utoipa::path(get, path = "/api/v1/push/subscriptions", tag = "push",
    responses((status = 200, body = PushSubscriptionList)), security(("bearer" = [])))]
pub async fn subscriptions(
    State(app): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<PushSubscriptionList>> {
    Ok(Json(app.core.subscriptions(who).await?))
}

/// Delete one of the caller's push subscriptions.
#[utoipa::path(delete, path = "/api/v1/push/subscriptions/{subscriptionId}", tag = "push", params(("subscriptionId" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "subscription_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn unsubscribe(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    app.core.unsubscribe(who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's preview setting and muted rooms.
#[utoipa::path(get, path = "/api/v1/push/settings", tag = "push",
    responses((status = 200, body = PushSettings)), security(("bearer" = [])))]
pub async fn settings(
    State(app): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<PushSettings>> {
    Ok(Json(app.core.push_settings(who).await?))
}

/// Change how much the caller's notifications show.
#[utoipa::path(put, path = "/api/v1/push/settings", tag = "push", request_body = UpdatePushSettingsRequest,
    responses((status = 200, body = PushSettings)), security(("bearer" = [])))]
pub async fn update_settings(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<UpdatePushSettingsRequest>,
) -> ApiResult<Json<PushSettings>> {
    Ok(Json(app.core.update_push_settings(who, req).await?))
}

/// Mute a room: no notifications for it until unmuted (messages still arrive live).
#[utoipa::path(put, path = "/api/v1/rooms/{roomId}/mute", tag = "push", params(("roomId" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "room_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn mute(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(room): Path<Uuid>,
) -> ApiResult<StatusCode> {
    app.core
        .set_notification_level(who, room, NotificationLevel::Nothing)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unmute a room.
#[utoipa::path(delete, path = "/api/v1/rooms/{roomId}/mute", tag = "push", params(("roomId" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "room_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn unmute(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(room): Path<Uuid>,
) -> ApiResult<StatusCode> {
    app.core
        .set_notification_level(who, room, NotificationLevel::All)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
