//! Accounts and sessions: argon2id password hashes, short-lived JWT access tokens bound
//! to a session, and single-use refresh tokens stored only as SHA-256 hashes.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use palaver_proto::{AuthResponse, LoginRequest, RegisterRequest, UpdateProfileRequest, User};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Core, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::domain::{Password, Username, display_name};
use crate::store::{RefreshOutcome, StoreError};

const AUDIENCE: &str = "palaver";
const ISSUER: &str = "palaver";

/// Who is calling: the user and the session (device login) their token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    sid: Uuid,
    iat: u64,
    exp: u64,
    aud: String,
    iss: String,
}

/// Signs and checks access tokens (HS256 only: `alg: none` and every other algorithm are
/// refused), and makes refresh tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: u64,
    refresh_ttl: u64,
}

impl Tokens {
    pub fn new(secret: &[u8], access_ttl: u64, refresh_ttl: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    /// A signed access token for the session.
    pub fn access_token(&self, who: Identity) -> ServiceResult<String> {
        let iat = (now_ms() / 1000) as u64;
        let claims = Claims {
            sub: who.user_id,
            sid: who.session_id,
            iat,
            exp: iat + self.access_ttl,
            aud: AUDIENCE.into(),
            iss: ISSUER.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Checks the signature, algorithm, audience, issuer and expiry.
    pub fn verify(&self, token: &str) -> ServiceResult<Identity> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(Identity {
                user_id: data.claims.sub,
                session_id: data.claims.sid,
            }),
            Err(err) if matches!(err.kind(), ErrorKind::ExpiredSignature) => {
                Err(ServiceError::TokenExpired)
            }
            Err(_) => Err(ServiceError::Unauthorized("invalid access token")),
        }
    }

    /// A fresh refresh token and the hash that is stored.
    fn refresh_token() -> (String, Vec<u8>) {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let hash = hash_refresh(&token);
        (token, hash)
    }
}

fn hash_refresh(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// argon2id with the crate's defaults (the OWASP minimum: 19 MiB, 2 passes), off the
/// async threads because it is deliberately slow. `fast` (load tests only) uses the
/// smallest parameters; verification reads the parameters from the stored hash.
async fn hash_password(password: Password, fast: bool) -> ServiceResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        let hasher = if fast {
            let params = argon2::Params::new(argon2::Params::MIN_M_COST, 1, 1, None)
                .map_err(argon2::password_hash::Error::from)?;
            Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        } else {
            Argon2::default()
        };
        hasher
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
    .map_err(|e| ServiceError::Internal(e.to_string()))
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of a password nobody has, so a login for an unknown user takes as long as one
/// for a known user (no user enumeration by timing).
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

impl Core {
    /// Checks an access token and that its session has not been ended.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Identity> {
        let who = self.tokens.verify(token)?;
        if self.cache.is_revoked(who.session_id).await {
            return Err(ServiceError::Unauthorized("session ended"));
        }
        Ok(who)
    }

    async fn open_session(&self, user: User) -> ServiceResult<AuthResponse> {
        let session_id = Uuid::now_v7();
        let (refresh_token, hash) = Tokens::refresh_token();
        let now = now_ms();
        let expires = now + (self.tokens.refresh_ttl as i64) * 1000;
        self.store
            .create_session(session_id, user.id, &hash, expires, now)
            .await?;
        let access_token = self.tokens.access_token(Identity {
            user_id: user.id,
            session_id,
        })?;
        Ok(AuthResponse {
            access_token,
            refresh_token,
            expires_in: self.tokens.access_ttl,
            user,
        })
    }

    /// Creates an account and logs it in.
    pub async fn register(
        &self,
        req: RegisterRequest,
        client: &str,
    ) -> ServiceResult<AuthResponse> {
        self.limit(RateBucket::Register, client).await?;
        let username = Username::parse(&req.username)?;
        let password = Password::parse(&req.password)?;
        let display = match req.display_name.as_deref() {
            Some(name) => display_name(name)?,
            None => username.as_str().to_owned(),
        };
        let hash = hash_password(password, self.config.insecure_fast_password_hashing).await?;
        let user = User {
            id: Uuid::now_v7(),
            username: username.as_str().to_owned(),
            display_name: display,
            created_at: to_time(now_ms()),
        };
        self.store
            .create_user(&user, &hash)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ServiceError::UsernameTaken,
                other => other.into(),
            })?;
        self.audit(
            Some(user.id),
            "user.register",
            Some(user.username.clone()),
            None,
        )
        .await;
        self.open_session(user).await
    }

    /// Checks a password and opens a session.
    pub async fn login(&self, req: LoginRequest, client: &str) -> ServiceResult<AuthResponse> {
        let username = req.username.trim().to_lowercase();
        self.limit(RateBucket::Login, &format!("user:{username}"))
            .await?;
        self.limit(RateBucket::Login, &format!("addr:{client}"))
            .await?;
        let creds = if username.len() <= 64 {
            self.store.credentials(&username).await?
        } else {
            None
        };
        let (hash, user) = match creds {
            Some(c) => (c.password_hash, Some(c.user)),
            None => {
                let dummy = match DUMMY_HASH.get() {
                    Some(h) => h.clone(),
                    None => {
                        let h =
                            hash_password(Password::parse("not-a-real-password")?, false).await?;
                        DUMMY_HASH.get_or_init(|| h).clone()
                    }
                };
                (dummy, None)
            }
        };
        let ok = verify_password(req.password, hash).await;
        match (ok, user) {
            (true, Some(user)) => {
                self.audit(
                    Some(user.id),
                    "auth.login",
                    Some(user.username.clone()),
                    Some(format!("from {client}")),
                )
                .await;
                self.open_session(user).await
            }
            _ => {
                metrics::counter!("palaver_login_failures_total").increment(1);
                self.audit(
                    None,
                    "auth.login_failed",
                    Some(username.chars().take(64).collect()),
                    Some(format!("from {client}")),
                )
                .await;
                Err(ServiceError::InvalidCredentials)
            }
        }
    }

    /// Trades a refresh token for a new pair. A token presented twice ends its session:
    /// one of the two presenters stole it.
    pub async fn refresh(&self, refresh_token: &str) -> ServiceResult<AuthResponse> {
        if refresh_token.is_empty() || refresh_token.len() > 256 {
            return Err(ServiceError::Unauthorized("invalid refresh token"));
        }
        let (new_token, new_hash) = Tokens::refresh_token();
        let now = now_ms();
        let expires = now + (self.tokens.refresh_ttl as i64) * 1000;
        match self
            .store
            .rotate_refresh(&hash_refresh(refresh_token), &new_hash, expires, now)
            .await?
        {
            RefreshOutcome::Rotated {
                session_id,
                user_id,
            } => {
                let user = self
                    .store
                    .user(user_id)
                    .await?
                    .ok_or(ServiceError::Unauthorized("invalid refresh token"))?;
                let access_token = self.tokens.access_token(Identity {
                    user_id,
                    session_id,
                })?;
                Ok(AuthResponse {
                    access_token,
                    refresh_token: new_token,
                    expires_in: self.tokens.access_ttl,
                    user,
                })
            }
            RefreshOutcome::Reused {
                session_id,
                user_id,
            } => {
                self.end_session(session_id, user_id, "auth.refresh_reuse")
                    .await?;
                Err(ServiceError::Unauthorized(
                    "refresh token was already used; the session has been ended",
                ))
            }
            RefreshOutcome::Invalid => Err(ServiceError::Unauthorized("invalid refresh token")),
        }
    }

    /// Ends the caller's session (and the refresh token's, if it names another of the
    /// caller's sessions).
    pub async fn logout(&self, who: Identity, refresh_token: Option<&str>) -> ServiceResult<()> {
        self.store.revoke_session(who.session_id, now_ms()).await?;
        self.end_session(who.session_id, who.user_id, "auth.logout")
            .await?;
        // A refresh token of another of the caller's sessions ends that one too; one that
        // belongs to someone else is ignored.
        if let Some(token) = refresh_token.filter(|t| t.len() <= 256)
            && let Some((sid, owner)) = self.store.session_of_refresh(&hash_refresh(token)).await?
            && sid != who.session_id
            && owner == who.user_id
            && self.store.revoke_session(sid, now_ms()).await?.is_some()
        {
            self.end_session(sid, owner, "auth.logout").await?;
        }
        Ok(())
    }

    async fn end_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        action: &'static str,
    ) -> ServiceResult<()> {
        let until = now_ms() + (self.tokens.access_ttl as i64 + 60) * 1000;
        self.cache.revoke_session(session_id, until).await;
        self.bus
            .publish(crate::bus::Event::EndSession { session_id })
            .await?;
        self.audit(Some(user_id), action, Some(session_id.to_string()), None)
            .await;
        Ok(())
    }

    /// The caller's own profile.
    pub async fn me(&self, who: Identity) -> ServiceResult<User> {
        self.store
            .user(who.user_id)
            .await?
            .ok_or(ServiceError::UserNotFound)
    }

    /// Changes the caller's profile.
    pub async fn update_me(&self, who: Identity, req: UpdateProfileRequest) -> ServiceResult<User> {
        if let Some(name) = req.display_name.as_deref() {
            let name = display_name(name)?;
            self.store.set_display_name(who.user_id, &name).await?;
        }
        self.me(who).await
    }

    /// Another user's public profile. Anyone logged in may look people up (to start a DM).
    pub async fn user(&self, id: Uuid) -> ServiceResult<User> {
        self.store.user(id).await?.ok_or(ServiceError::UserNotFound)
    }

    /// Users whose username or display name starts with the query.
    pub async fn search_users(
        &self,
        who: Identity,
        q: &str,
        limit: Option<u32>,
    ) -> ServiceResult<Vec<User>> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let q = q.trim();
        if q.is_empty() || q.chars().count() > 64 {
            return Err(ServiceError::Validation(
                "q must be 1 to 64 characters".into(),
            ));
        }
        let limit = limit.unwrap_or(20).clamp(1, 50);
        Ok(self.store.search_users(&q.to_lowercase(), limit).await?)
    }
}
