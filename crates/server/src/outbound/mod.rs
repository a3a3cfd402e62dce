//! Requests out of the server, to addresses users and operators chose: push services,
//! webhooks and the pages link previews are read from. Every one goes through the SSRF
//! guard (`guard`), which is the one place that says what may be reached.
//!
//! `Outbound` is a reqwest client built around the guard: its DNS resolver drops the
//! addresses the guard refuses, its redirect policy checks every hop (and counts them),
//! and it ignores proxy settings. It sends no cookies and asks for no compression, so a
//! body is never inflated past what was read.

pub mod guard;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use guard::GuardedResolver;
pub use guard::{AllowList, Guard, GuardError, Rules, is_internal};

/// What went wrong with one outbound request.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The guard refused the destination (or a redirect's).
    #[error(transparent)]
    Refused(#[from] GuardError),
    #[error("timed out")]
    Timeout,
    #[error("network error: {0}")]
    Network(String),
}

/// An HTTP client that only reaches destinations the guard permits.
#[derive(Clone)]
pub struct Outbound {
    guard: Arc<Guard>,
    client: reqwest::Client,
}

impl Outbound {
    /// A client for push services and webhooks (`Rules::NOTIFICATIONS`) with the
    /// allow-list and a time limit per request (connection included).
    pub fn new(allow: AllowList, timeout: Duration) -> Result<Self, OutboundError> {
        Self::with_rules(allow, Rules::NOTIFICATIONS, timeout)
    }

    /// A client whose destinations follow `rules` besides the address checks.
    pub fn with_rules(
        allow: AllowList,
        rules: Rules,
        timeout: Duration,
    ) -> Result<Self, OutboundError> {
        let guard = Arc::new(Guard::new(allow, rules));
        let policy_guard = guard.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= policy_guard.rules().max_redirects {
                return attempt.error(GuardError::Refused("too many redirects".into()));
            }
            match policy_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .redirect(policy)
            // A proxy resolves names itself, out of the resolver's sight.
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("palaver/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OutboundError::Network(e.to_string()))?;
        Ok(Self { guard, client })
    }

    /// The guard's rules, to check a destination before storing it.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// POSTs `body` with `headers` to `url`, through the guard.
    pub async fn post(
        &self,
        url: &Url,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, OutboundError> {
        self.guard.check_url(url)?;
        self.client
            .post(url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(classify)
    }

    /// GETs `url` with `headers`, through the guard; the body is the caller's to read
    /// (and to bound).
    pub async fn get(
        &self,
        url: &Url,
        headers: reqwest::header::HeaderMap,
    ) -> Result<reqwest::Response, OutboundError> {
        self.guard.check_url(url)?;
        self.client
            .get(url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(classify)
    }
}

/// Finds the guard's refusal in a reqwest error's chain, if it is one.
pub fn classify(err: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(g) = e.downcast_ref::<GuardError>() {
            return OutboundError::Refused(g.clone());
        }
        source = e.source();
    }
    if err.is_timeout() {
        OutboundError::Timeout
    } else {
        OutboundError::Network(err.to_string())
    }
}
