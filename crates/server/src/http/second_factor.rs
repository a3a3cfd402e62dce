//! `/api/v1/auth/login/second-factor` and `/api/v1/auth/totp*`: the second step of a
//! login, and turning two-factor login on and off.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use palaver_proto::{
    AuthResponse, ErrorBody, RecoveryCodes, RemoveTotpRequest, SecondFactorRequest,
    TotpConfirmRequest, TotpEnrolment, TotpStatus,
};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, ClientAddr, Json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login/second-factor", post(second_factor))
        .route("/auth/totp", get(totp_status).delete(totp_remove))
        .route("/auth/totp/enrol", post(totp_enrol))
        .route("/auth/totp/confirm", post(totp_confirm))
}

/// Answer a login's second-factor challenge with a TOTP or recovery code.
#[utoipa::path(post, path = "/api/v1/auth/login/second-factor", tag = "auth", request_body = SecondFactorRequest,
    responses((status = 200, body = AuthResponse),
        (status = 401, description = "invalid_second_factor: a wrong, used or expired code, or an expired challenge", body = ErrorBody),
        (status = 422, description = "validation_failed: a challenge or code far too long", body = ErrorBody),
        (status = 429, description = "rate_limited: too many attempts for this account or from this address", body = ErrorBody)))]
pub async fn second_factor(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(req): Json<SecondFactorRequest>,
) -> ApiResult<Json<AuthResponse>> {
    Ok(Json(app.core.login_second_factor(req, &addr).await?))
}

/// Whether the caller has two-factor login on, and how many recovery codes are left.
#[utoipa::path(get, path = "/api/v1/auth/totp", tag = "auth",
    responses((status = 200, body = TotpStatus)), security(("bearer" = [])))]
pub async fn totp_status(
    State(app): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<TotpStatus>> {
    Ok(Json(app.core.totp_status(who).await?))
}

/// Start turning two-factor login on: a new secret for an authenticator app, pending until
/// confirmed with a code (a pending one is replaced).
#[utoipa::path(post, path = "/api/v1/auth/totp/enrol", tag = "auth",
    responses((status = 200, body = TotpEnrolment),
        (status = 409, description = "conflict: two-factor login is on already", body = ErrorBody),
        (status = 429, body = ErrorBody)), security(("bearer" = [])))]
pub async fn totp_enrol(
    State(app): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<TotpEnrolment>> {
    Ok(Json(app.core.totp_enrol(who).await?))
}

/// Confirm the pending secret with the app's current code: two-factor login is on, and
/// the answer holds the recovery codes (shown this once).
#[utoipa::path(post, path = "/api/v1/auth/totp/confirm", tag = "auth", request_body = TotpConfirmRequest,
    responses((status = 200, body = RecoveryCodes),
        (status = 401, description = "invalid_second_factor: not the app's current code", body = ErrorBody),
        (status = 409, description = "conflict: nothing to confirm, or on already", body = ErrorBody),
        (status = 422, description = "validation_failed: a code over 64 bytes", body = ErrorBody),
        (status = 429, body = ErrorBody)), security(("bearer" = [])))]
pub async fn totp_confirm(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<TotpConfirmRequest>,
) -> ApiResult<Json<RecoveryCodes>> {
    Ok(Json(app.core.totp_confirm(who, req).await?))
}

/// Turn two-factor login off: needs the password or a current code (TOTP or recovery).
#[utoipa::path(delete, path = "/api/v1/auth/totp", tag = "auth", request_body = RemoveTotpRequest,
    responses((status = 204),
        (status = 401, description = "invalid_second_factor: wrong password or code", body = ErrorBody),
        (status = 409, description = "conflict: two-factor login is not on", body = ErrorBody),
        (status = 422, description = "validation_failed: neither password nor code, or one too long", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "unavailable: too many password checks at once", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn totp_remove(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<RemoveTotpRequest>,
) -> ApiResult<StatusCode> {
    app.core.totp_remove(who, req).await?;
    Ok(StatusCode::NO_CONTENT)
}
