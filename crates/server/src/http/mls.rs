//! `/api/v1/mls/*` and `/api/v1/users/{userId}/devices`: the directory of encrypted
//! rooms' devices and key packages, and their welcomes (the rules: `service/mls.rs`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use palaver_proto::{
    ClaimKeyPackagesRequest, ClaimedKeyPackages, Device, DeviceList, ErrorBody, KeyPackageStock,
    RegisterDeviceRequest, UploadKeyPackagesRequest, WelcomeList,
};
use uuid::Uuid;

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Path};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mls/devices", post(register))
        .route("/mls/devices/{deviceId}", delete(revoke))
        .route(
            "/mls/devices/{deviceId}/key-packages",
            post(upload).get(stock),
        )
        .route("/mls/devices/{deviceId}/welcomes", get(welcomes))
        .route(
            "/mls/devices/{deviceId}/welcomes/{welcomeId}",
            delete(take_welcome),
        )
        .route("/mls/key-packages/claim", post(claim))
        .route("/users/{userId}/devices", get(devices))
}

/// Make the calling session a device of encrypted rooms, with its signature key. One live
/// device per session; it is revoked when the session ends.
#[utoipa::path(post, path = "/api/v1/mls/devices", tag = "mls", request_body = RegisterDeviceRequest,
    responses((status = 201, body = Device),
        (status = 409, description = "conflict: the session has a device; limit_reached: the account has as many as allowed", body = ErrorBody),
        (status = 422, description = "validation_failed: the name or key", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<RegisterDeviceRequest>,
) -> ApiResult<(StatusCode, Json<Device>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.core.register_device(who, req).await?),
    ))
}

/// Revoke one of the caller's devices (from any of their sessions): its key packages and
/// waiting welcomes go at once.
#[utoipa::path(delete, path = "/api/v1/mls/devices/{deviceId}", tag = "mls", params(("deviceId" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "device_not_found", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(device): Path<Uuid>,
) -> ApiResult<StatusCode> {
    app.core.revoke_device(who, device).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Upload key packages of the caller's session's device; each is checked (signature,
/// ciphersuite, credential, signature key).
#[utoipa::path(post, path = "/api/v1/mls/devices/{deviceId}/key-packages", tag = "mls",
    params(("deviceId" = Uuid, Path)), request_body = UploadKeyPackagesRequest,
    responses((status = 200, body = KeyPackageStock),
        (status = 403, description = "forbidden: another session's device", body = ErrorBody),
        (status = 404, description = "device_not_found", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 422, description = "invalid_mls: a package refused", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn upload(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(device): Path<Uuid>,
    Json(req): Json<UploadKeyPackagesRequest>,
) -> ApiResult<Json<KeyPackageStock>> {
    Ok(Json(app.core.upload_key_packages(who, device, req).await?))
}

/// What one of the caller's devices has left to hand out.
#[utoipa::path(get, path = "/api/v1/mls/devices/{deviceId}/key-packages", tag = "mls",
    params(("deviceId" = Uuid, Path)),
    responses((status = 200, body = KeyPackageStock), (status = 404, description = "device_not_found", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stock(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(device): Path<Uuid>,
) -> ApiResult<Json<KeyPackageStock>> {
    Ok(Json(app.core.key_package_stock(who, device).await?))
}

/// The welcomes waiting for the caller's session's device, oldest first.
#[utoipa::path(get, path = "/api/v1/mls/devices/{deviceId}/welcomes", tag = "mls",
    params(("deviceId" = Uuid, Path)),
    responses((status = 200, body = WelcomeList),
        (status = 403, description = "forbidden: another session's device", body = ErrorBody),
        (status = 404, description = "device_not_found", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn welcomes(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(device): Path<Uuid>,
) -> ApiResult<Json<WelcomeList>> {
    Ok(Json(app.core.welcomes(who, device).await?))
}

/// The device has taken the welcome: it is dropped.
#[utoipa::path(delete, path = "/api/v1/mls/devices/{deviceId}/welcomes/{welcomeId}", tag = "mls",
    params(("deviceId" = Uuid, Path), ("welcomeId" = Uuid, Path)),
    responses((status = 204),
        (status = 403, description = "forbidden: another session's device", body = ErrorBody),
        (status = 404, description = "device_not_found, not_found", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn take_welcome(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path((device, welcome)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    app.core.take_welcome(who, device, welcome).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One key package of every device of each user, to add them to an encrypted room. A
/// device's one-time packages go to one claimer at most `mls.claim_share_per_hour` an
/// hour; then its last-resort package is handed out.
#[utoipa::path(post, path = "/api/v1/mls/key-packages/claim", tag = "mls", request_body = ClaimKeyPackagesRequest,
    responses((status = 200, body = ClaimedKeyPackages),
        (status = 404, description = "user_not_found", body = ErrorBody),
        (status = 422, description = "validation_failed: 1–100 users", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn claim(
    State(app): State<AppState>,
    Auth(who): Auth,
    Json(req): Json<ClaimKeyPackagesRequest>,
) -> ApiResult<Json<ClaimedKeyPackages>> {
    Ok(Json(app.core.claim_key_packages(who, req).await?))
}

/// A user's live devices, oldest first, with their signature keys (what safety numbers
/// are made of).
#[utoipa::path(get, path = "/api/v1/users/{userId}/devices", tag = "mls", params(("userId" = Uuid, Path)),
    responses((status = 200, body = DeviceList), (status = 404, description = "user_not_found", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn devices(
    State(app): State<AppState>,
    Auth(who): Auth,
    Path(user): Path<Uuid>,
) -> ApiResult<Json<DeviceList>> {
    Ok(Json(app.core.devices(who, user).await?))
}
