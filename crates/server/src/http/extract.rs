//! Extractors whose rejections use the one error shape, and the caller's identity.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::service::{Identity, ServiceError};

/// `axum::Json` with our error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with our error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` with our error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// The caller, from `Authorization: Bearer <access token>`.
pub struct Auth(pub Identity);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ServiceError::Unauthorized("missing Authorization header"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(ServiceError::Unauthorized(
                "expected Authorization: Bearer <token>",
            ))?;
        Ok(Auth(state.core.authenticate(token.trim()).await?))
    }
}

/// The caller, from `Authorization: Bearer <access token>` or an `access_token` query
/// parameter: for what browsers fetch without script (`<img src>`, `<video src>`,
/// WebSockets), where no header can be set.
pub struct AuthOrQuery(pub Identity);

impl FromRequestParts<AppState> for AuthOrQuery {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = header_or_query_token(parts)
            .ok_or(ServiceError::Unauthorized("missing access token"))?;
        Ok(AuthOrQuery(state.core.authenticate(token.trim()).await?))
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// The bearer token of the `Authorization` header, else the `access_token` parameter.
pub fn header_or_query_token(parts: &Parts) -> Option<String> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    header.map(str::to_owned).or_else(|| {
        axum::extract::Query::<TokenQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.access_token)
    })
}

/// The client's address, for per-address rate limits: the TCP peer, or behind a trusted
/// proxy the last address in `X-Forwarded-For` that is not itself a trusted proxy.
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|h| h.to_str().ok());
        let addr = peer.map(|p| client_ip(p, forwarded, &state.trusted_proxies));
        Ok(ClientAddr(
            addr.map_or_else(|| "unknown".into(), |a| a.to_string()),
        ))
    }
}

/// Walks `X-Forwarded-For` from the right (the hop nearest us) while the hop is trusted:
/// only trusted proxies' entries are believed, so a client cannot pick its own address.
fn client_ip<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    // Several headers count as one list, in order.
    let hops: Vec<&str> = forwarded.flat_map(|h| h.split(',')).collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&client) {
                    break;
                }
            }
            // Garbage from a client: stop at the last address we could believe.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().expect("net")];
        let xff = |v: &'static [&'static str]| v.iter().copied();
        // No proxy in front: the header is the client's own words.
        assert_eq!(
            client_ip(ip("203.0.113.9"), xff(&["10.9.9.9"]), &trusted),
            ip("203.0.113.9")
        );
        // nginx on loopback appended the client's address.
        assert_eq!(
            client_ip(ip("127.0.0.1"), xff(&["198.51.100.7"]), &trusted),
            ip("198.51.100.7")
        );
        // A client that forges an earlier hop still gets its own (rightmost) address.
        assert_eq!(
            client_ip(ip("127.0.0.1"), xff(&["1.2.3.4, 198.51.100.7"]), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), xff(&["1.2.3.4", "198.51.100.7"]), &trusted),
            ip("198.51.100.7")
        );
        // Garbage or a missing header: the proxy's own address.
        assert_eq!(
            client_ip(ip("127.0.0.1"), xff(&["not-an-ip"]), &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), xff(&[]), &trusted),
            ip("127.0.0.1")
        );
    }
}
