//! `/api/v1/rooms*`: 1:1 rooms and groups, members, roles and receipts.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post, put};
use palaver_proto::{
    AddMembersRequest, CreateRoomRequest, ErrorBody, ReceiptRequest, ReceiptsResponse, Room,
    RoomList, SetPictureRequest, UpdateMemberRequest, UpdateRoomRequest,
};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Path};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms", get(list))
        .route("/rooms/create", post(create))
        .route("/rooms/{roomId}", get(room).patch(rename))
        .route(
            "/rooms/{roomId}/picture",
            put(set_picture).delete(remove_picture),
        )
        .route("/rooms/{roomId}/members", post(add_members))
        .route(
            "/rooms/{roomId}/members/{userId}",
            patch(set_role).delete(remove_member),
        )
        .route("/rooms/{roomId}/leave", post(leave))
        .route("/rooms/{roomId}/accept", post(accept))
        .route("/rooms/{roomId}/decline", post(decline))
        .route("/rooms/{roomId}/receipts", get(receipts).post(receipt))
}

/// The caller's rooms, most recently active first, with last message and unread count.
#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", responses((status = 200, body = RoomList), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(State(app): State<AppState>, Auth(who): Auth) -> ApiResult<Json<RoomList>> {
    Ok(Json(RoomList {
        rooms: app.core.rooms(who).await?,
    }))
}

/// Create a group, or open the 1:1 room with someone (200 with the existing room if the
/// pair has one).
#[utoipa::path(post, path = "/api/v1/rooms/create", tag = "rooms", request_body = CreateRoomRequest,
    responses((status = 201, body = Room), (status = 200, description = "the pair's existing 1:1 room", body = Room),
        (status = 403, description = "blocked: the caller and someone named blocked one another", body = ErrorBody),
        (status = 404, description = "user_not_found", body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<CreateRoomRequest>,
) -> ApiResult<(StatusCode, Json<Room>)> {
    let (room, created) = app.core.create_room(who, req).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(room),
    ))
}

/// One of the caller's rooms.
#[utoipa::path(get, path = "/api/v1/rooms/{roomId}", tag = "rooms", params(("roomId" = Uuid, Path)),
    responses((status = 200, body = Room), (status = 404, description = "room_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn room(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Room>> {
    Ok(Json(app.core.room(who, id).await?))
}

/// Rename a group (owner or admin).
#[utoipa::path(patch, path = "/api/v1/rooms/{roomId}", tag = "rooms", params(("roomId" = Uuid, Path)), request_body = UpdateRoomRequest,
    responses((status = 200, body = Room), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn rename(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateRoomRequest>,
) -> ApiResult<Json<Room>> {
    Ok(Json(app.core.rename_room(who, id, &req.name).await?))
}

/// Set a group's picture (owner or admin): an image the caller uploaded.
#[utoipa::path(put, path = "/api/v1/rooms/{roomId}/picture", tag = "rooms", params(("roomId" = Uuid, Path)), request_body = SetPictureRequest,
    responses((status = 200, body = Room),
        (status = 403, description = "forbidden (a member, an invited member, or someone else's upload), or not_a_group (a 1:1 room)", body = ErrorBody),
        (status = 404, description = "room_not_found, or media_not_found (no such upload, or one the caller cannot see)", body = ErrorBody),
        (status = 422, description = "validation_failed: the upload is not an image", body = ErrorBody),
        (status = 429, body = ErrorBody)), security(("bearer" = [])))]
pub async fn set_picture(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<SetPictureRequest>,
) -> ApiResult<Json<Room>> {
    Ok(Json(
        app.core
            .set_room_picture(who, id, Some(req.media_id))
            .await?,
    ))
}

/// Remove a group's picture (owner or admin).
#[utoipa::path(delete, path = "/api/v1/rooms/{roomId}/picture", tag = "rooms", params(("roomId" = Uuid, Path)),
    responses((status = 200, body = Room),
        (status = 403, description = "forbidden (a member or an invited member), or not_a_group (a 1:1 room)", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
pub async fn remove_picture(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Room>> {
    Ok(Json(app.core.set_room_picture(who, id, None).await?))
}

/// Add people to a group (owner or admin).
#[utoipa::path(post, path = "/api/v1/rooms/{roomId}/members", tag = "rooms", params(("roomId" = Uuid, Path)), request_body = AddMembersRequest,
    responses((status = 200, body = Room), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn add_members(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<AddMembersRequest>,
) -> ApiResult<Json<Room>> {
    Ok(Json(app.core.add_members(who, id, &req.user_ids).await?))
}

/// Change a member's role (owner only; `owner` hands the group over).
#[utoipa::path(patch, path = "/api/v1/rooms/{roomId}/members/{userId}", tag = "rooms", params(("roomId" = Uuid, Path), ("userId" = Uuid, Path)),
    request_body = UpdateMemberRequest, responses((status = 200, body = Room), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "the owner cannot step down without handing ownership on", body = ErrorBody)), security(("bearer" = [])))]
pub async fn set_role(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((id, user)): Path<(Uuid, Uuid)>,
    Json(req): Json<UpdateMemberRequest>,
) -> ApiResult<Json<Room>> {
    Ok(Json(app.core.set_role(who, id, user, req.role).await?))
}

/// Remove a member (or leave, when it is the caller). Takes effect at once, on open
/// sockets too.
#[utoipa::path(delete, path = "/api/v1/rooms/{roomId}/members/{userId}", tag = "rooms", params(("roomId" = Uuid, Path), ("userId" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn remove_member(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((id, user)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    app.core.remove_member(who, id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leave a group or a 1:1 room (leaving a 1:1 room closes it for the other person until
/// one of the two opens it again); for an invited member, the same as declining.
#[utoipa::path(post, path = "/api/v1/rooms/{roomId}/leave", tag = "rooms", params(("roomId" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn leave(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    app.core.remove_member(who, id, who.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every member's delivered and read markers, and the room-wide summary.
#[utoipa::path(get, path = "/api/v1/rooms/{roomId}/receipts", tag = "rooms", params(("roomId" = Uuid, Path)),
    responses((status = 200, body = ReceiptsResponse), (status = 403, description = "forbidden: an invited member, until they accept", body = ErrorBody),
        (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn receipts(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ReceiptsResponse>> {
    Ok(Json(app.core.receipts(who, id).await?))
}

/// Move the caller's delivered or read marker (the socket's `receipt` frame).
#[utoipa::path(post, path = "/api/v1/rooms/{roomId}/receipts", tag = "rooms", params(("roomId" = Uuid, Path)), request_body = ReceiptRequest,
    responses((status = 200, body = ReceiptsResponse), (status = 403, description = "forbidden: an invited member, until they accept", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn receipt(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<ReceiptRequest>,
) -> ApiResult<Json<ReceiptsResponse>> {
    app.core.receipt(who, id, req.seq, req.status).await?;
    Ok(Json(app.core.receipts(who, id).await?))
}

/// Accept a request or an invitation (the caller's `state` is `invited`): the caller
/// joins. Accepting a room one has joined already answers the room unchanged.
#[utoipa::path(post, path = "/api/v1/rooms/{roomId}/accept", tag = "rooms", params(("roomId" = Uuid, Path)),
    responses((status = 200, body = Room), (status = 403, description = "blocked: the inviter was blocked since", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn accept(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Room>> {
    Ok(Json(app.core.accept(who, id).await?))
}

/// Decline a request or an invitation: the caller leaves and the room disappears for them.
#[utoipa::path(post, path = "/api/v1/rooms/{roomId}/decline", tag = "rooms", params(("roomId" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "room_not_found", body = ErrorBody),
        (status = 409, description = "conflict: the caller has joined; leave instead", body = ErrorBody)), security(("bearer" = [])))]
pub async fn decline(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    app.core.decline(who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
