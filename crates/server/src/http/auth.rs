//! `/api/v1/auth/*` and `/api/v1/users*`: accounts, sessions and profiles.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use palaver_proto::{
    AuthResponse, ErrorBody, LoginRequest, LoginResponse, LogoutRequest, Me, RefreshRequest,
    RegisterRequest, SetPictureRequest, UpdateProfileRequest, User, UserList, UserSearchQuery,
};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, ClientAddr, Json, Path, Query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/users", get(search))
        .route("/users/me", get(me).patch(update_me))
        .route("/users/me/avatar", put(set_avatar).delete(remove_avatar))
        .route("/users/{userId}", get(user))
}

/// Create an account; answers with tokens, logged in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = AuthResponse), (status = 409, description = "username_taken", body = ErrorBody),
        (status = 403, description = "password_login_disabled", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "unavailable: too many password checks at once; see Retry-After", body = ErrorBody)))]
pub async fn register(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<AuthResponse>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.core.register(req, &addr).await?),
    ))
}

/// Log in with username and password: the tokens, or for an account with two-factor
/// login a challenge to answer at `/api/v1/auth/login/second-factor`.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 403, description = "password_login_disabled", body = ErrorBody),
        (status = 422, description = "validation_failed: a username no account can have", body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "unavailable: too many password checks at once; see Retry-After", body = ErrorBody)))]
pub async fn login(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(app.core.login(req, &addr).await?))
}

/// Trade a refresh token for a new access and refresh token (the old one is retired).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(app): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<Json<AuthResponse>> {
    Ok(Json(app.core.refresh(&req.refresh_token).await?))
}

/// End the session: its access and refresh tokens stop working and its sockets close.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = Option<LogoutRequest>,
    responses((status = 204), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn logout(
    State(app): State<AppState>,
    Auth(who): Auth,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    // The body is optional: an empty one (or JSON `null`, what a client serializing "no
    // body" may send) ends just the access token's session.
    let token = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Option<LogoutRequest>>(&body)
            .map_err(|e| {
                super::error::ApiError::new(
                    palaver_proto::ErrorCode::BadRequest,
                    format!("malformed JSON: {e}"),
                )
            })?
            .and_then(|r| r.refresh_token)
    };
    app.core.logout(who, token.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's profile, and whether they administer the server.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", responses((status = 200, body = Me), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn me(State(app): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Me>> {
    Ok(Json(app.core.me_with_role(who).await?))
}

/// Change the caller's profile.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", request_body = UpdateProfileRequest,
    responses((status = 200, body = User), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn update_me(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<UpdateProfileRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(app.core.update_me(who, req).await?))
}

/// Set the caller's profile picture: an image they uploaded (`POST /media/upload`).
#[utoipa::path(put, path = "/api/v1/users/me/avatar", tag = "users", request_body = SetPictureRequest,
    responses((status = 200, body = User),
        (status = 403, description = "forbidden: someone else's upload (one the caller can see)", body = ErrorBody),
        (status = 404, description = "media_not_found: no such upload, or one the caller cannot see", body = ErrorBody),
        (status = 422, description = "validation_failed: the upload is not an image", body = ErrorBody),
        (status = 429, body = ErrorBody)), security(("bearer" = [])))]
pub async fn set_avatar(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<SetPictureRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(app.core.set_avatar(who, Some(req.media_id)).await?))
}

/// Remove the caller's profile picture (the upload stays until the orphan sweep).
#[utoipa::path(delete, path = "/api/v1/users/me/avatar", tag = "users",
    responses((status = 200, body = User), (status = 429, body = ErrorBody)), security(("bearer" = [])))]
pub async fn remove_avatar(State(app): State<AppState>, Auth(who): Auth) -> ApiResult<Json<User>> {
    Ok(Json(app.core.set_avatar(who, None).await?))
}

/// Someone's public profile.
#[utoipa::path(get, path = "/api/v1/users/{userId}", tag = "users", params(("userId" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404, description = "user_not_found", body = ErrorBody)), security(("bearer" = [])))]
pub async fn user(
    State(app): State<AppState>,
    Auth(_): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<User>> {
    Ok(Json(app.core.user(id).await?))
}

/// Find people by username or display-name prefix (to start a 1:1 room).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserSearchQuery),
    responses((status = 200, body = UserList), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn search(
    State(app): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<UserSearchQuery>,
) -> ApiResult<Json<UserList>> {
    Ok(Json(UserList {
        users: app.core.search_users(who, &q.q, q.limit).await?,
    }))
}
