//! `/api/v1/admin/*`: server administration, for enabled administrators only (403
//! `forbidden` to anyone else), and `POST /api/v1/messages/{messageId}/report`, how any
//! member puts a message before them. The rules and the audit are the service's
//! (`service::admin`, `service::moderation`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use palaver_proto::{
    AdminCreateUserRequest, AdminPasswordRequest, AdminRoomList, AdminRoomQuery, AdminUser,
    AdminUserList, AdminUserQuery, AuditLog, AuditQuery, ErrorBody, Report, ReportList,
    ReportQuery, ReportRequest, SessionsEnded,
};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Path, Query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{userId}", get(user))
        .route("/admin/users/{userId}/disable", post(disable))
        .route("/admin/users/{userId}/enable", post(enable))
        .route("/admin/users/{userId}/password", put(set_password))
        .route(
            "/admin/users/{userId}/sessions/revoke",
            post(revoke_sessions),
        )
        .route("/admin/users/{userId}/admin", put(promote).delete(demote))
        .route("/admin/rooms", get(rooms))
        .route("/admin/rooms/{roomId}", delete(delete_room))
        .route("/admin/audit", get(audit))
        .route("/admin/reports", get(reports))
        .route("/admin/reports/{reportId}/resolve", post(resolve_report))
        .route("/admin/reports/{reportId}/dismiss", post(dismiss_report))
        .route("/messages/{messageId}/report", post(report_message))
}

/// Accounts in username order, a page at a time; filter by username prefix or disabled.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(AdminUserQuery),
    responses((status = 200, body = AdminUserList), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn users(
    State(app): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<AdminUserQuery>,
) -> ApiResult<Json<AdminUserList>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_users(admin, q).await?))
}

/// Create an account (not logged in); its password must meet the strength rule.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = AdminCreateUserRequest,
    responses((status = 201, body = AdminUser), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 409, description = "username_taken", body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "unavailable: too many password checks at once; see Retry-After", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_user(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<AdminCreateUserRequest>,
) -> ApiResult<(StatusCode, Json<AdminUser>)> {
    let admin = app.core.require_admin(who).await?;
    let user = app.core.admin_create_user(admin, req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// One account.
#[utoipa::path(get, path = "/api/v1/admin/users/{userId}", tag = "admin", params(("userId" = Uuid, Path)),
    responses((status = 200, body = AdminUser), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "user_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn user(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<AdminUser>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_user(admin, id).await?))
}

/// Disable an account: it cannot log in, and all its sessions end at once on every node
/// (refresh tokens refused, access tokens refused, sockets closed). Disabling twice is
/// disabling once.
#[utoipa::path(post, path = "/api/v1/admin/users/{userId}/disable", tag = "admin", params(("userId" = Uuid, Path)),
    responses((status = 200, body = AdminUser), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "user_not_found", body = ErrorBody),
        (status = 409, description = "conflict: the caller's own account, or the last enabled administrator", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn disable(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<AdminUser>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_set_disabled(admin, id, true).await?))
}

/// Enable a disabled account: it may log in again.
#[utoipa::path(post, path = "/api/v1/admin/users/{userId}/enable", tag = "admin", params(("userId" = Uuid, Path)),
    responses((status = 200, body = AdminUser), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "user_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn enable(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<AdminUser>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_set_disabled(admin, id, false).await?))
}

/// Set another account's password (it must meet the strength rule); all its sessions end.
#[utoipa::path(put, path = "/api/v1/admin/users/{userId}/password", tag = "admin", params(("userId" = Uuid, Path)),
    request_body = AdminPasswordRequest,
    responses((status = 204), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "user_not_found", body = ErrorBody),
        (status = 409, description = "conflict: the caller's own account", body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "unavailable: too many password checks at once; see Retry-After", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_password(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<AdminPasswordRequest>,
) -> ApiResult<StatusCode> {
    let admin = app.core.require_admin(who).await?;
    app.core
        .admin_set_password(admin, id, &req.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of an account, on every node.
#[utoipa::path(post, path = "/api/v1/admin/users/{userId}/sessions/revoke", tag = "admin", params(("userId" = Uuid, Path)),
    responses((status = 200, body = SessionsEnded), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "user_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke_sessions(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<SessionsEnded>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_revoke_sessions(admin, id).await?))
}

/// Make an account an administrator.
#[utoipa::path(put, path = "/api/v1/admin/users/{userId}/admin", tag = "admin", params(("userId" = Uuid, Path)),
    responses((status = 200, body = AdminUser), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "user_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn promote(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<AdminUser>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_set_admin(admin, id, true).await?))
}

/// Take the administrator role away; the last enabled administrator keeps it.
#[utoipa::path(delete, path = "/api/v1/admin/users/{userId}/admin", tag = "admin", params(("userId" = Uuid, Path)),
    responses((status = 200, body = AdminUser), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "user_not_found", body = ErrorBody),
        (status = 409, description = "conflict: the last enabled administrator", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn demote(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<AdminUser>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_set_admin(admin, id, false).await?))
}

/// Every room, whoever is in it, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/admin/rooms", tag = "admin", params(AdminRoomQuery),
    responses((status = 200, body = AdminRoomList), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn rooms(
    State(app): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<AdminRoomQuery>,
) -> ApiResult<Json<AdminRoomList>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_rooms(admin, q).await?))
}

/// Delete a room: every member is removed at once (told `room.left`), and nobody sees it
/// again.
#[utoipa::path(delete, path = "/api/v1/admin/rooms/{roomId}", tag = "admin", params(("roomId" = Uuid, Path)),
    responses((status = 204), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "room_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_room(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let admin = app.core.require_admin(who).await?;
    app.core.admin_delete_room(admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log, newest first, filtered by actor, action, target and time.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = AuditLog), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn audit(
    State(app): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditLog>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_audit_log(admin, q).await?))
}

/// Report a message one can read to the server's administrators, with a reason.
#[utoipa::path(post, path = "/api/v1/messages/{messageId}/report", tag = "messages", params(("messageId" = Uuid, Path)),
    request_body = ReportRequest,
    responses((status = 201, body = Report), (status = 404, description = "message_not_found", body = ErrorBody),
        (status = 409, description = "conflict: the caller's report of this message is still open", body = ErrorBody),
        (status = 422, description = "validation_failed: a blank reason, or one over 500 characters", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn report_message(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<ReportRequest>,
) -> ApiResult<(StatusCode, Json<Report>)> {
    let report = app.core.report_message(who, id, &req.reason).await?;
    Ok((StatusCode::CREATED, Json(report)))
}

/// Reports of messages, newest first, with each message as it is now.
#[utoipa::path(get, path = "/api/v1/admin/reports", tag = "admin", params(ReportQuery),
    responses((status = 200, body = ReportList), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn reports(
    State(app): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Json<ReportList>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_reports(admin, q).await?))
}

/// Close an open report as resolved: something was done about it.
#[utoipa::path(post, path = "/api/v1/admin/reports/{reportId}/resolve", tag = "admin", params(("reportId" = Uuid, Path)),
    responses((status = 200, body = Report), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "report_not_found", body = ErrorBody),
        (status = 409, description = "conflict: the report is already closed", body = ErrorBody)), security(("bearer" = [])))]
pub async fn resolve_report(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Report>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_close_report(admin, id, true).await?))
}

/// Close an open report as dismissed: nothing to do.
#[utoipa::path(post, path = "/api/v1/admin/reports/{reportId}/dismiss", tag = "admin", params(("reportId" = Uuid, Path)),
    responses((status = 200, body = Report), (status = 403, description = "forbidden: not an administrator", body = ErrorBody),
        (status = 404, description = "report_not_found", body = ErrorBody),
        (status = 409, description = "conflict: the report is already closed", body = ErrorBody)), security(("bearer" = [])))]
pub async fn dismiss_report(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Report>> {
    let admin = app.core.require_admin(who).await?;
    Ok(Json(app.core.admin_close_report(admin, id, false).await?))
}
