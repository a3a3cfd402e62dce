//! Single sign-on: OpenID Connect's authorization code flow with PKCE, against the
//! providers configured in `[[auth.sso]]`.
//!
//! - `sso_start` makes a flow: a random `state`, `nonce` and PKCE verifier, kept in the
//!   store until `auth.sso_flow_ttl_secs`, keyed by the hash of the state and of a random
//!   cookie set in the browser that starts it (a callback only works in that browser: no
//!   login CSRF), so that the
//!   provider's redirect back may reach any node; at most `auth.max_pending_sso_flows`
//!   at once. It answers the provider's authorization URL.
//! - `sso_callback` takes the flow of the returned state (once: a replayed callback finds
//!   nothing), trades the code (with the verifier) for tokens at the provider, and checks
//!   the ID token (signature by the provider's keys, issuer, audience, expiry, nonce).
//!   The account is the one linked to (issuer, subject); never found by email or name. A
//!   first login makes an account, its username from `preferred_username` made valid and
//!   unique; a flow started from Settings links the provider to the logged-in account.
//! - The callback hands the browser a one-time code (60 s, stored hashed, in the URL's
//!   fragment, so it reaches no server log), which the web client trades for tokens with
//!   `sso_exchange`: no token is ever in a URL. An account with two-factor login gets the
//!   second-step challenge there, as after a password.
//!
//! Each provider's discovery document (and keys) is read on first use and kept; a
//! provider that does not answer makes its logins fail with 503 until it does.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use palaver_proto::{LoginMethods, LoginResponse, SsoProvider, User};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{Identity, counted_addr};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::config::{AuthConfig, SsoProviderConfig};
use crate::domain::{Username, display_name};
use crate::service::{Core, ServiceError, ServiceResult};
use crate::store::{Constraint, SsoFlow, StoreError};

/// How long the one-time code of a finished flow may wait for its exchange.
const CODE_TTL_MS: i64 = 60_000;
/// A username taken by someone else gets a number; this many are tried.
const USERNAME_TRIES: u32 = 50;
/// What no password matches: accounts made by single sign-on have no password.
pub(super) const NO_PASSWORD: &str = "!sso";

/// The configured providers, their discovery documents read on first use.
pub struct Sso {
    providers: Vec<Provider>,
    /// Talks to the providers; follows no redirects (OpenID Connect needs none, and a
    /// redirect could send the server anywhere).
    http: reqwest::Client,
}

struct Provider {
    config: SsoProviderConfig,
    redirect: String,
    metadata: OnceCell<CoreProviderMetadata>,
}

/// Why a single sign-on step failed, as the web client is told (`#sso-error=<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoFailure {
    /// No flow of this state: made up, expired, or used already.
    InvalidState,
    /// The provider said no (the person cancelled, or the provider refused).
    Refused,
    /// The provider's answer did not check out (code, tokens or ID token).
    InvalidResponse,
    /// The provider is linked to another account already.
    AlreadyLinked,
}

impl SsoFailure {
    /// Its name in the redirect.
    pub fn as_str(self) -> &'static str {
        match self {
            SsoFailure::InvalidState => "invalid_state",
            SsoFailure::Refused => "refused",
            SsoFailure::InvalidResponse => "invalid_response",
            SsoFailure::AlreadyLinked => "already_linked",
        }
    }
}

/// What the callback ends with.
pub enum CallbackOutcome {
    /// Logged in (or linked): the one-time code for `sso_exchange`.
    Code(String),
    Failed(SsoFailure),
}

fn hash(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

/// A flow's key: its `state` together with the browser's flow cookie, so that a callback
/// URL replayed in another browser (a victim's, to log them into the attacker's account)
/// finds no flow.
fn flow_key(state: &str, browser: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(state.as_bytes());
    h.update([0]);
    h.update(browser.as_bytes());
    h.finalize().to_vec()
}

/// A new random token (256 bits, base64url).
fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// What `sso_start` answers: where to send the browser, and the value of the flow cookie
/// to set in it (`SSO_COOKIE`), which the callback must bring back.
pub struct SsoRedirect {
    pub url: String,
    pub browser: String,
}

/// The cookie that binds a flow to the browser that started it.
pub const SSO_COOKIE: &str = "palaver_sso";

impl Sso {
    /// The providers of `[auth]`, nothing read yet.
    pub fn new(config: &AuthConfig) -> ServiceResult<Sso> {
        let base = config
            .public_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/');
        let providers = config
            .sso
            .iter()
            .map(|p| Provider {
                redirect: format!("{base}/api/v1/auth/sso/{}/callback", p.id),
                config: p.clone(),
                metadata: OnceCell::new(),
            })
            .collect();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ServiceError::Internal(format!("sso http client: {e}")))?;
        Ok(Sso { providers, http })
    }

    fn provider(&self, id: &str) -> ServiceResult<&Provider> {
        self.providers
            .iter()
            .find(|p| p.config.id == id)
            .ok_or(ServiceError::UnknownProvider)
    }

    /// The provider's discovery document, read once.
    async fn metadata(&self, p: &Provider) -> ServiceResult<CoreProviderMetadata> {
        let issuer = IssuerUrl::new(p.config.issuer.clone())
            .map_err(|e| ServiceError::Internal(format!("sso issuer: {e}")))?;
        let found = p
            .metadata
            .get_or_try_init(|| async {
                CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| {
                        tracing::warn!(provider = %p.config.id, error = %e, "OpenID discovery failed");
                        ServiceError::Busy {
                            what: format!("the provider {} does not answer", p.config.id),
                            retry: Duration::from_secs(5),
                        }
                    })
            })
            .await?;
        Ok(found.clone())
    }
}

/// A valid username from what the provider suggests.
fn username_base(suggested: Option<&str>) -> String {
    let cleaned: String = suggested
        .unwrap_or("")
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
        .take(28)
        .collect();
    match cleaned.len() {
        0 => "user".into(),
        1 | 2 => format!("{cleaned}_user"),
        _ => cleaned,
    }
}

impl Core {
    /// The login screen's choices.
    pub fn login_methods(&self) -> LoginMethods {
        LoginMethods {
            password: self.config.auth.password_login,
            sso: self
                .sso
                .providers
                .iter()
                .map(|p| SsoProvider {
                    id: p.config.id.clone(),
                    display_name: p.config.display_name.clone(),
                })
                .collect(),
        }
    }

    /// Starts a login (or, with `link`, linking the provider to that account): the URL
    /// of the provider's authorization page, and the browser's flow cookie.
    pub async fn sso_start(
        &self,
        provider: &str,
        link: Option<Identity>,
        client: &str,
    ) -> ServiceResult<SsoRedirect> {
        self.limit(RateBucket::Login, &counted_addr(client)).await?;
        let p = self.sso.provider(provider)?;
        let metadata = self.sso.metadata(p).await?;
        let oidc = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(p.config.client_id.clone()),
            p.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(
            RedirectUrl::new(p.redirect.clone())
                .map_err(|e| ServiceError::Internal(format!("sso redirect: {e}")))?,
        );
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = oidc.authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &p.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let browser = random_token();
        let now = now_ms();
        let ttl = i64::try_from(self.config.auth.sso_flow_ttl_secs).unwrap_or(i64::MAX / 2000);
        let flow = SsoFlow {
            provider: p.config.id.clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            link_user_id: link.map(|who| who.user_id),
        };
        let stored = self
            .store
            .start_sso_flow(
                &flow_key(state.secret(), &browser),
                &flow,
                now + ttl * 1000,
                now,
                self.config.auth.max_pending_sso_flows,
            )
            .await?;
        if !stored {
            metrics::counter!("palaver_sso_flows_refused_total").increment(1);
            return Err(ServiceError::Busy {
                what: "too many single sign-on logins in progress".into(),
                retry: Duration::from_secs(5),
            });
        }
        Ok(SsoRedirect {
            url: url.to_string(),
            browser,
        })
    }

    /// The provider's redirect back: checks it, finds or makes the account, and answers
    /// the one-time code the browser exchanges for tokens.
    pub async fn sso_callback(
        &self,
        provider: &str,
        code: Option<String>,
        state: Option<String>,
        browser: Option<String>,
        client: &str,
    ) -> ServiceResult<CallbackOutcome> {
        use CallbackOutcome::Failed;
        self.limit(RateBucket::Login, &counted_addr(client)).await?;
        let p = self.sso.provider(provider)?;
        let Some(state) = state.filter(|s| !s.is_empty() && s.len() <= 512) else {
            return Ok(Failed(SsoFailure::InvalidState));
        };
        let Some(browser) = browser.filter(|b| !b.is_empty() && b.len() <= 128) else {
            return Ok(Failed(SsoFailure::InvalidState));
        };
        let state_hash = flow_key(&state, &browser);
        let Some(flow) = self.store.take_sso_flow(&state_hash, now_ms()).await? else {
            return Ok(Failed(SsoFailure::InvalidState));
        };
        if flow.provider != p.config.id {
            return Ok(Failed(SsoFailure::InvalidState));
        }
        // The provider's `error=` (or no code): the flow is spent either way.
        let Some(code) = code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
            return Ok(Failed(SsoFailure::Refused));
        };
        let metadata = self.sso.metadata(p).await?;
        let oidc = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(p.config.client_id.clone()),
            p.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(
            RedirectUrl::new(p.redirect.clone())
                .map_err(|e| ServiceError::Internal(format!("sso redirect: {e}")))?,
        );
        let request = match oidc.exchange_code(AuthorizationCode::new(code)) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(provider = %p.config.id, error = %e, "the provider has no token endpoint");
                return Ok(Failed(SsoFailure::InvalidResponse));
            }
        };
        let tokens = match request
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.sso.http)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::info!(provider = %p.config.id, error = %e, "code exchange refused");
                return Ok(Failed(SsoFailure::InvalidResponse));
            }
        };
        let Some(id_token) = tokens.id_token() else {
            return Ok(Failed(SsoFailure::InvalidResponse));
        };
        let verifier = oidc.id_token_verifier();
        let claims = match id_token.claims(&verifier, &Nonce::new(flow.nonce.clone())) {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(provider = %p.config.id, error = %e, "ID token refused");
                return Ok(Failed(SsoFailure::InvalidResponse));
            }
        };
        let issuer = claims.issuer().as_str().to_owned();
        let subject = claims.subject().as_str().to_owned();
        let mut suggested = claims.preferred_username().map(|u| u.as_str().to_owned());
        let mut name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned());
        // Many providers put the profile in the user info only, not in the ID token.
        if suggested.is_none()
            && let Ok(request) = oidc.user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
        {
            match request.request_async(&self.sso.http).await {
                Ok(info) => {
                    let info: CoreUserInfoClaims = info;
                    suggested = info.preferred_username().map(|u| u.as_str().to_owned());
                    name = name.or_else(|| {
                        info.name()
                            .and_then(|n| n.get(None))
                            .map(|n| n.as_str().to_owned())
                    });
                }
                Err(e) => {
                    tracing::info!(provider = %p.config.id, error = %e, "no user info; default names");
                }
            }
        }
        let user_id = match flow.link_user_id {
            Some(user_id) => {
                match self
                    .store
                    .link_sso(&issuer, &subject, user_id, now_ms())
                    .await
                {
                    Ok(()) => {}
                    Err(StoreError::Conflict(Constraint::SsoIdentity)) => {
                        // Linking twice to the same account is no failure.
                        if self.store.sso_user(&issuer, &subject).await? != Some(user_id) {
                            return Ok(Failed(SsoFailure::AlreadyLinked));
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
                self.audit(Some(user_id), "auth.sso_linked", Some(issuer.clone()), None)
                    .await;
                user_id
            }
            None => match self.store.sso_user(&issuer, &subject).await? {
                Some(user_id) => user_id,
                None => {
                    self.sso_account(&issuer, &subject, suggested.as_deref(), name.as_deref())
                        .await?
                }
            },
        };
        let one_time = random_token();
        self.store
            .finish_sso_flow(
                &state_hash,
                &hash(&one_time),
                user_id,
                now_ms() + CODE_TTL_MS,
            )
            .await?;
        Ok(CallbackOutcome::Code(one_time))
    }

    /// A new account for a provider's user seen for the first time, linked to it.
    async fn sso_account(
        &self,
        issuer: &str,
        subject: &str,
        suggested: Option<&str>,
        name: Option<&str>,
    ) -> ServiceResult<Uuid> {
        let base = username_base(suggested);
        for n in 0..USERNAME_TRIES {
            let candidate = match n {
                0 => base.clone(),
                n => format!("{base}{n}"),
            };
            let username = Username::parse(&candidate)?;
            let display = name
                .and_then(|n| display_name(n).ok())
                .unwrap_or_else(|| username.as_str().to_owned());
            let user = User {
                id: Uuid::now_v7(),
                username: username.as_str().to_owned(),
                display_name: display,
                created_at: to_time(now_ms()),
                avatar_url: None,
            };
            match self.store.create_user(&user, NO_PASSWORD).await {
                Ok(()) => {}
                Err(StoreError::Conflict(Constraint::Username)) => continue,
                Err(e) => return Err(e.into()),
            }
            if let Err(e) = self
                .store
                .link_sso(issuer, subject, user.id, now_ms())
                .await
            {
                // Another callback for the same person won the race: theirs is the account.
                if let Some(existing) = self.store.sso_user(issuer, subject).await? {
                    return Ok(existing);
                }
                return Err(e.into());
            }
            self.audit(
                Some(user.id),
                "user.register",
                Some(user.username.clone()),
                Some(format!("single sign-on: {issuer}")),
            )
            .await;
            return Ok(user.id);
        }
        Err(ServiceError::Conflict(
            "no free username for this account; ask an administrator",
        ))
    }

    /// Trades the callback's one-time code for the tokens (or the second-factor
    /// challenge).
    pub async fn sso_exchange(&self, code: &str, client: &str) -> ServiceResult<LoginResponse> {
        self.limit(RateBucket::Login, &counted_addr(client)).await?;
        if code.is_empty() || code.len() > 256 {
            return Err(ServiceError::Unauthorized("invalid or used login code"));
        }
        let user_id = self
            .store
            .redeem_sso_code(&hash(code), now_ms())
            .await?
            .ok_or(ServiceError::Unauthorized("invalid or used login code"))?;
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or(ServiceError::Unauthorized("invalid or used login code"))?;
        self.audit(
            Some(user.id),
            "auth.login",
            Some(user.username.clone()),
            Some(format!("from {client}, single sign-on")),
        )
        .await;
        let user = self.with_avatar(user).await?;
        self.tokens_or_challenge(user).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_from_providers_are_made_valid() {
        assert_eq!(username_base(Some("Alice")), "alice");
        assert_eq!(username_base(Some("Jean Dupré")), "jeandupr");
        assert_eq!(username_base(Some("al")), "al_user");
        assert_eq!(username_base(Some("")), "user");
        assert_eq!(username_base(None), "user");
        let long = username_base(Some(&"x".repeat(100)));
        assert_eq!(long.len(), 28);
        for n in [1, 49] {
            assert!(Username::parse(&format!("{long}{n}")).is_ok());
        }
    }
}
