//! `/api/v1/messages*` and the `/api/v1/chat/{conversationId}` aliases: the same service
//! calls as the socket's `send`, `edit` and `delete` frames.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use palaver_proto::{
    ChatSendRequest, EditMessageRequest, ErrorBody, HistoryQuery, HistoryResponse, Message,
    PageQuery, SendMessageRequest,
};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Path, Query};
use crate::service::Sent;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/messages/send", post(send))
        .route("/messages/history", get(history))
        .route(
            "/messages/{messageId}",
            get(message).patch(edit).delete(delete),
        )
        .route("/chat/{conversationId}", get(chat_history).post(chat_send))
}

fn sent_response(sent: Sent) -> (StatusCode, Json<Message>) {
    (
        if sent.duplicate {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(sent.message),
    )
}

/// Send a message. Answers once it is stored; a retry with the same `clientMsgId`
/// answers 200 with the stored message.
#[utoipa::path(post, path = "/api/v1/messages/send", tag = "messages", request_body = SendMessageRequest,
    responses((status = 201, body = Message), (status = 200, description = "idempotent retry", body = Message),
        (status = 403, description = "forbidden: an invited member, until they accept; blocked: a 1:1 room where one blocked the other", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 409, description = "direct_closed: the other person left the 1:1 room", body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, description = "message_delivery_failed: retry", body = ErrorBody)), security(("bearer" = [])))]
pub async fn send(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<SendMessageRequest>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    Ok(sent_response(app.core.send(who, req, None).await?))
}

/// A page of a room's history in ascending seq: the newest page, the page before
/// `before`, or the page after `after`.
#[utoipa::path(get, path = "/api/v1/messages/history", tag = "messages", params(HistoryQuery),
    responses((status = 200, body = HistoryResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn history(
    State(app): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<HistoryResponse>> {
    Ok(Json(
        app.core
            .history(who, q.room_id, q.before, q.after, q.limit)
            .await?,
    ))
}

/// One message.
#[utoipa::path(get, path = "/api/v1/messages/{messageId}", tag = "messages", params(("messageId" = Uuid, Path)),
    responses((status = 200, body = Message), (status = 404, description = "message_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn message(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Message>> {
    Ok(Json(app.core.message(who, id).await?))
}

/// Edit one's own message.
#[utoipa::path(patch, path = "/api/v1/messages/{messageId}", tag = "messages", params(("messageId" = Uuid, Path)), request_body = EditMessageRequest,
    responses((status = 200, body = Message), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "conflict: the message is deleted", body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn edit(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<EditMessageRequest>,
) -> ApiResult<Json<Message>> {
    Ok(Json(
        app.core
            .edit_message(who, id, &req.content, req.no_preview, None)
            .await?,
    ))
}

/// Delete one's own message, or as an owner or admin of a group anyone's there (the seq
/// stays, the content goes).
#[utoipa::path(delete, path = "/api/v1/messages/{messageId}", tag = "messages", params(("messageId" = Uuid, Path)),
    responses((status = 200, body = Message), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "conflict: the message is already deleted", body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Message>> {
    Ok(Json(app.core.delete_message(who, id, None).await?))
}

/// Send a message to the conversation in the path (same as `/messages/send`).
#[utoipa::path(post, path = "/api/v1/chat/{conversationId}", tag = "messages", params(("conversationId" = Uuid, Path)), request_body = ChatSendRequest,
    responses((status = 201, body = Message), (status = 200, description = "idempotent retry", body = Message),
        (status = 403, description = "forbidden: an invited member, until they accept; blocked: a 1:1 room where one blocked the other", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 409, description = "direct_closed: the other person left the 1:1 room", body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, description = "message_delivery_failed: retry", body = ErrorBody)), security(("bearer" = [])))]
pub async fn chat_send(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(room_id): Path<Uuid>,
    Json(req): Json<ChatSendRequest>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let req = SendMessageRequest {
        room_id,
        client_msg_id: req.client_msg_id,
        content: req.content,
        kind: req.kind,
        media_id: req.media_id,
        ..Default::default()
    };
    Ok(sent_response(app.core.send(who, req, None).await?))
}

/// History of the conversation in the path (same as `/messages/history`).
#[utoipa::path(get, path = "/api/v1/chat/{conversationId}", tag = "messages", params(("conversationId" = Uuid, Path), PageQuery),
    responses((status = 200, body = HistoryResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn chat_history(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(room_id): Path<Uuid>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<HistoryResponse>> {
    Ok(Json(
        app.core
            .history(who, room_id, q.before, q.after, q.limit)
            .await?,
    ))
}
