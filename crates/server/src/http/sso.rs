//! `/api/v1/auth/methods` and `/api/v1/auth/sso/*`: single sign-on with OpenID Connect.
//! The start and the callback are browser navigations (redirects); the web client then
//! trades the callback's one-time code for tokens with a POST.

use axum::Router;
use axum::extract::State;
use axum::response::Redirect;
use axum::routing::{get, post};
use palaver_proto::{
    ErrorBody, LoginMethods, LoginResponse, SsoCallbackQuery, SsoExchangeRequest, SsoStart,
};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, ClientAddr, Json, Path, Query};
use crate::service::CallbackOutcome;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/methods", get(methods))
        .route("/auth/sso/{provider}/start", get(start))
        .route("/auth/sso/{provider}/link", post(link))
        .route("/auth/sso/{provider}/callback", get(callback))
        .route("/auth/sso/exchange", post(exchange))
}

/// How this server lets people log in: password (on or off) and the single sign-on
/// providers, for the login screen.
#[utoipa::path(get, path = "/api/v1/auth/methods", tag = "auth", responses((status = 200, body = LoginMethods)))]
pub async fn methods(State(app): State<AppState>) -> ApiResult<axum::Json<LoginMethods>> {
    Ok(axum::Json(app.core.login_methods()))
}

/// Start logging in with a provider: redirects the browser to its login page.
#[utoipa::path(get, path = "/api/v1/auth/sso/{provider}/start", tag = "auth", params(("provider" = String, Path)),
    responses((status = 303, description = "to the provider's authorization page"),
        (status = 404, description = "not_found: no such provider", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "unavailable: the provider does not answer, or too many logins in progress", body = ErrorBody)))]
pub async fn start(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Path(provider): Path<String>,
) -> ApiResult<Redirect> {
    let url = app.core.sso_start(&provider, None, &addr).await?;
    Ok(Redirect::to(&url))
}

/// Start linking a provider to the caller's account (from Settings): answers the URL to
/// send the browser to; the callback then links rather than logs in.
#[utoipa::path(post, path = "/api/v1/auth/sso/{provider}/link", tag = "auth", params(("provider" = String, Path)),
    responses((status = 200, body = SsoStart),
        (status = 404, description = "not_found: no such provider", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "unavailable: the provider does not answer, or too many logins in progress", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn link(
    State(app): State<AppState>,
    Auth(who): Auth,
    ClientAddr(addr): ClientAddr,
    Path(provider): Path<String>,
) -> ApiResult<Json<SsoStart>> {
    let url = app.core.sso_start(&provider, Some(who), &addr).await?;
    Ok(Json(SsoStart { url }))
}

/// Where the provider sends the browser back: checks the answer, logs in (or links), and
/// redirects to the web client with a one-time code in the fragment (`/#sso=<code>`), or
/// the reason it failed (`/#sso-error=invalid_state|refused|invalid_response|already_linked`).
#[utoipa::path(get, path = "/api/v1/auth/sso/{provider}/callback", tag = "auth",
    params(("provider" = String, Path), SsoCallbackQuery),
    responses((status = 303, description = "to the web client, `/#sso=<one-time code>` or `/#sso-error=<reason>`"),
        (status = 404, description = "not_found: no such provider", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "unavailable: the provider does not answer", body = ErrorBody)))]
pub async fn callback(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Path(provider): Path<String>,
    Query(q): Query<SsoCallbackQuery>,
) -> ApiResult<Redirect> {
    // A provider's `error` ends the flow as refused: its state is spent.
    let code = q.code.filter(|_| q.error.is_none());
    let to = match app
        .core
        .sso_callback(&provider, code, q.state, &addr)
        .await?
    {
        CallbackOutcome::Code(code) => format!("/#sso={code}"),
        CallbackOutcome::Failed(why) => format!("/#sso-error={}", why.as_str()),
    };
    Ok(Redirect::to(&to))
}

/// Trade the callback's one-time code for tokens, or for the second-factor challenge of
/// an account with two-factor login. Each code works once, within a minute.
#[utoipa::path(post, path = "/api/v1/auth/sso/exchange", tag = "auth", request_body = SsoExchangeRequest,
    responses((status = 200, body = LoginResponse),
        (status = 401, description = "unauthorized: an unknown, used or expired code", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn exchange(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(req): Json<SsoExchangeRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(app.core.sso_exchange(&req.code, &addr).await?))
}
