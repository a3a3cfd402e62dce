//! `/api/v1/auth/methods` and `/api/v1/auth/sso/*`: single sign-on with OpenID Connect.
//! The start and the callback are browser navigations (redirects); the web client then
//! trades the callback's one-time code for tokens with a POST.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use palaver_proto::{
    ErrorBody, LoginMethods, LoginResponse, SsoCallbackQuery, SsoExchangeRequest, SsoStart,
};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, ClientAddr, Json, Path, Query};
use crate::service::{CallbackOutcome, SSO_COOKIE};

/// `Set-Cookie` for the flow cookie (`value` empty: delete it). Sent back only to the
/// single sign-on paths, never readable by scripts; `Lax` so that the provider's redirect
/// (a top-level GET) carries it.
fn flow_cookie(app: &AppState, value: &str) -> Option<HeaderValue> {
    let secure = app
        .core
        .config
        .auth
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https:"));
    let max_age = match value.is_empty() {
        true => 0,
        false => app.core.config.auth.sso_flow_ttl_secs,
    };
    let cookie = format!(
        "{SSO_COOKIE}={value}; Path=/api/v1/auth/sso/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).ok()
}

/// The flow cookie the browser sent, if any.
fn sent_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SSO_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// `response` with the flow cookie set (or deleted).
fn with_cookie(app: &AppState, value: &str, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    if let Some(cookie) = flow_cookie(app, value) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

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

/// Start logging in with a provider: redirects the browser to its login page, and sets the
/// cookie (`palaver_sso`) that ties the flow to this browser.
#[utoipa::path(get, path = "/api/v1/auth/sso/{provider}/start", tag = "auth", params(("provider" = String, Path)),
    responses((status = 303, description = "to the provider's authorization page"),
        (status = 404, description = "not_found: no such provider", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "unavailable: the provider does not answer, or too many logins in progress", body = ErrorBody)))]
pub async fn start(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Path(provider): Path<String>,
) -> ApiResult<Response> {
    let start = app.core.sso_start(&provider, None, &addr).await?;
    Ok(with_cookie(&app, &start.browser, Redirect::to(&start.url)))
}

/// Start linking a provider to the caller's account (from Settings): answers the URL to
/// send the browser to, and sets the flow cookie; the callback then links rather than
/// logs in.
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
) -> ApiResult<Response> {
    let start = app.core.sso_start(&provider, Some(who), &addr).await?;
    let body = Json(SsoStart { url: start.url });
    Ok(with_cookie(&app, &start.browser, body))
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
    headers: HeaderMap,
    Query(q): Query<SsoCallbackQuery>,
) -> ApiResult<Response> {
    // A provider's `error` ends the flow as refused: its state is spent.
    let code = q.code.filter(|_| q.error.is_none());
    let browser = sent_cookie(&headers);
    let outcome = app
        .core
        .sso_callback(&provider, code, q.state, browser, &addr)
        .await?;
    // The cookie goes with a finished flow; a failed callback (a forged one, say) leaves
    // the browser's own flow alone.
    Ok(match outcome {
        CallbackOutcome::Code(code) => {
            with_cookie(&app, "", Redirect::to(&format!("/#sso={code}")))
        }
        CallbackOutcome::Failed(why) => {
            Redirect::to(&format!("/#sso-error={}", why.as_str())).into_response()
        }
    })
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
