//! Extractors whose rejections use the one error shape, and the caller's identity.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};

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
        let token = bearer_token(&parts.headers)?
            .ok_or(ServiceError::Unauthorized("missing Authorization header"))?;
        Ok(Auth(state.core.authenticate(token).await?))
    }
}

/// The token of an `Authorization: Bearer` header; `None` without the header, an error
/// for a header of another kind.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ServiceError> {
    let Some(header) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|token| Some(token.trim()))
        .ok_or(ServiceError::Unauthorized(
            "expected Authorization: Bearer <token>",
        ))
}

/// Refuses an access token in the URL (`?access_token=`, accepted before): URLs are
/// written to access logs, proxies and browser history, so a token there leaks. Said
/// plainly rather than ignored, so an old client learns why it is refused.
pub fn refuse_token_in_url(uri: &Uri) -> Result<(), ServiceError> {
    let named = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    });
    if named {
        return Err(ServiceError::Unauthorized(
            "access tokens are not accepted in URLs: send Authorization: Bearer, or an \
             auth frame on the socket; media URLs carry their own signature",
        ));
    }
    Ok(())
}

/// How a media file is asked for: by a caller with `Authorization: Bearer` (allowed if
/// they may see the object now), else by a signed link (`?exp=…&sig=…`) from a `Media`
/// object, for elements that cannot send headers (`<img>`, `<video>`, `<a download>`).
pub enum MediaAccess {
    Caller(Identity),
    Link { exp: i64, sig: String },
}

/// The query of a signed link; checked for its shape on every media request, as
/// documented, whether or not the header decides.
#[derive(serde::Deserialize)]
struct LinkQuery {
    exp: Option<i64>,
    sig: Option<String>,
}

impl FromRequestParts<AppState> for MediaAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        refuse_token_in_url(&parts.uri)?;
        let link = axum::extract::Query::<LinkQuery>::try_from_uri(&parts.uri)?.0;
        if let Some(token) = bearer_token(&parts.headers)? {
            return Ok(MediaAccess::Caller(state.core.authenticate(token).await?));
        }
        match (link.exp, link.sig) {
            (Some(exp), Some(sig)) => Ok(MediaAccess::Link { exp, sig }),
            _ => Err(ServiceError::Unauthorized(
                "missing credentials: send Authorization: Bearer, or use the signed url",
            )
            .into()),
        }
    }
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
