//! Reactions, threads, pins, forwards and per-room notification levels: thin calls into
//! the service (service/conversation.rs holds the rules).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use palaver_proto::{
    ErrorBody, ForwardRequest, Message, MessageList, NotificationLevelRequest, ThreadQuery,
};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Path, Query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/messages/{messageId}/reactions/{emoji}",
            put(react).delete(unreact),
        )
        .route("/messages/{messageId}/thread", get(thread))
        .route("/messages/{messageId}/forward", post(forward))
        .route("/rooms/{roomId}/pins", get(pins))
        .route("/rooms/{roomId}/pins/{messageId}", put(pin).delete(unpin))
        .route("/rooms/{roomId}/notifications", put(notifications))
}

/// Add the caller's reaction: one emoji (URL-encoded), or a short code such as
/// `:thumbsup:`. Adding it again changes nothing. Answers the message as it is now.
#[utoipa::path(put, path = "/api/v1/messages/{messageId}/reactions/{emoji}", tag = "conversations",
    params(("messageId" = Uuid, Path), ("emoji" = String, Path, description = "one emoji, URL-encoded, or a short code such as :thumbsup:")),
    responses((status = 200, body = Message),
        (status = 403, description = "forbidden: an invited member, until they accept", body = ErrorBody),
        (status = 404, description = "message_not_found", body = ErrorBody),
        (status = 409, description = "conflict: the message is deleted; limit_reached: 20 different reactions", body = ErrorBody),
        (status = 422, description = "invalid_emoji", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn react(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((id, emoji)): Path<(Uuid, String)>,
) -> ApiResult<Json<Message>> {
    Ok(Json(app.core.react(who, id, &emoji, true).await?))
}

/// Remove the caller's reaction (removing one that is not there changes nothing).
#[utoipa::path(delete, path = "/api/v1/messages/{messageId}/reactions/{emoji}", tag = "conversations",
    params(("messageId" = Uuid, Path), ("emoji" = String, Path)),
    responses((status = 200, body = Message), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, description = "invalid_emoji", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn unreact(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((id, emoji)): Path<(Uuid, String)>,
) -> ApiResult<Json<Message>> {
    Ok(Json(app.core.react(who, id, &emoji, false).await?))
}

/// A thread's replies in ascending seq (not the root: fetch it with
/// `GET /api/v1/messages/{messageId}`).
#[utoipa::path(get, path = "/api/v1/messages/{messageId}/thread", tag = "conversations",
    params(("messageId" = Uuid, Path), ThreadQuery),
    responses((status = 200, body = MessageList), (status = 404, description = "message_not_found", body = ErrorBody),
        (status = 422, description = "nested_thread: the message is a thread reply; validation_failed", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn thread(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<ThreadQuery>,
) -> ApiResult<Json<MessageList>> {
    let messages = app.core.thread(who, id, q.after, q.limit).await?;
    Ok(Json(MessageList { messages }))
}

/// Send a copy of a message (text and media, marked `forwarded`) to another room the
/// caller is in. A retry with the same `clientMsgId` answers 200 with the stored copy.
#[utoipa::path(post, path = "/api/v1/messages/{messageId}/forward", tag = "conversations",
    params(("messageId" = Uuid, Path)), request_body = ForwardRequest,
    responses((status = 201, body = Message), (status = 200, description = "idempotent retry", body = Message),
        (status = 403, body = ErrorBody), (status = 404, description = "message_not_found; room_not_found", body = ErrorBody),
        (status = 409, description = "conflict: the message is deleted; direct_closed", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn forward(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<ForwardRequest>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let sent = app.core.forward(who, id, req).await?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(sent.message)))
}

/// The room's pinned messages, the most recently pinned first.
#[utoipa::path(get, path = "/api/v1/rooms/{roomId}/pins", tag = "conversations", params(("roomId" = Uuid, Path)),
    responses((status = 200, body = MessageList), (status = 404, description = "room_not_found", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn pins(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(room): Path<Uuid>,
) -> ApiResult<Json<MessageList>> {
    let messages = app.core.pins(who, room).await?;
    Ok(Json(MessageList { messages }))
}

/// Pin a message: a group's owners and admins may, and both people of a 1:1 room.
#[utoipa::path(put, path = "/api/v1/rooms/{roomId}/pins/{messageId}", tag = "conversations",
    params(("roomId" = Uuid, Path), ("messageId" = Uuid, Path)),
    responses((status = 200, body = Message),
        (status = 403, description = "forbidden: a plain member of a group, or an invited one", body = ErrorBody),
        (status = 404, description = "room_not_found; message_not_found", body = ErrorBody),
        (status = 409, description = "limit_reached: 50 pins", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn pin(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((room, id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<Message>> {
    Ok(Json(app.core.pin(who, room, id, true).await?))
}

/// Unpin a message.
#[utoipa::path(delete, path = "/api/v1/rooms/{roomId}/pins/{messageId}", tag = "conversations",
    params(("roomId" = Uuid, Path), ("messageId" = Uuid, Path)),
    responses((status = 200, body = Message), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn unpin(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((room, id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<Message>> {
    Ok(Json(app.core.pin(who, room, id, false).await?))
}

/// What notifies the caller of a room: `all` messages, only `mentions` of them (or of
/// `@room`), or `nothing`.
#[utoipa::path(put, path = "/api/v1/rooms/{roomId}/notifications", tag = "conversations",
    params(("roomId" = Uuid, Path)), request_body = NotificationLevelRequest,
    responses((status = 204), (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn notifications(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(room): Path<Uuid>,
    Json(req): Json<NotificationLevelRequest>,
) -> ApiResult<StatusCode> {
    app.core
        .set_notification_level(who, room, req.level)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
