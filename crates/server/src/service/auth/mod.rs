//! Accounts and sessions: argon2id password hashes, short-lived JWT access tokens bound
//! to a session, and single-use refresh tokens stored only as SHA-256 hashes.
//!
//! The parts: `tokens` (signing and checking them) and `passwords` (hashing, bounded);
//! here, the sessions and profiles built on them.

mod passwords;
mod second_factor;
mod sso;
mod tokens;

use std::net::IpAddr;

use ipnet::Ipv6Net;
use palaver_proto::{
    AuthResponse, LoginRequest, LoginResponse, RegisterRequest, UpdateProfileRequest, User,
};
use uuid::Uuid;

pub use passwords::Passwords;
pub use second_factor::Sealer;
pub use sso::{CallbackOutcome, SSO_COOKIE, Sso, SsoFailure, SsoRedirect};
pub use tokens::Tokens;

use super::{Core, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::domain::{Password, Username, display_name};
use crate::store::{RefreshOutcome, StoreError};
use tokens::hash_refresh;

/// Who is calling: the user and the session (device login) their token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

/// The address a client is counted by in rate limits: an IPv6 client by its /64 (one
/// subscriber usually has a whole /64, so counting single addresses would limit
/// nothing), anyone else (IPv4, IPv4-mapped IPv6) by the address itself.
pub(crate) fn counted_addr(client: &str) -> String {
    match client.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                Ipv6Net::new(v6, 64).map_or_else(|_| v6.to_string(), |net| net.trunc().to_string())
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => client.to_owned(),
    }
}

impl Core {
    /// Checks an access token and that its session has not been ended.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Identity> {
        let who = self.tokens.verify(token)?;
        if self.cache.is_revoked(who.session_id).await {
            return Err(ServiceError::Unauthorized("session ended"));
        }
        Ok(who)
    }

    /// Refuses password register and login when `auth.password_login` is off.
    fn password_login_on(&self) -> ServiceResult<()> {
        match self.config.auth.password_login {
            true => Ok(()),
            false => Err(ServiceError::PasswordLoginDisabled),
        }
    }

    async fn open_session(&self, user: User) -> ServiceResult<AuthResponse> {
        let session_id = Uuid::now_v7();
        let (refresh_token, hash) = Tokens::refresh_token();
        let now = now_ms();
        let expires = now + (self.tokens.refresh_ttl as i64) * 1000;
        if !self
            .store
            .create_session(session_id, user.id, &hash, expires, now)
            .await?
        {
            self.audit(
                Some(user.id),
                "auth.login_disabled",
                Some(user.username.clone()),
                None,
            )
            .await;
            return Err(ServiceError::AccountDisabled);
        }
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
        self.password_login_on()?;
        self.limit(RateBucket::Register, &counted_addr(client))
            .await?;
        let user = self
            .create_account(&req.username, req.display_name.as_deref(), &req.password)
            .await?;
        self.audit(
            Some(user.id),
            "user.register",
            Some(user.username.clone()),
            None,
        )
        .await;
        self.promote_if_configured(&user.username).await?;
        self.open_session(user).await
    }

    /// Creates an account with a password (registration, and an administrator's
    /// create): the name, display name and password rules, the strength check, the hash,
    /// and a taken name answered `username_taken`. The one place an account is made with
    /// a password.
    pub(in crate::service) async fn create_account(
        &self,
        username: &str,
        display_name_in: Option<&str>,
        password: &str,
    ) -> ServiceResult<User> {
        let username = Username::parse(username)?;
        let display = match display_name_in {
            Some(name) => display_name(name)?,
            None => username.as_str().to_owned(),
        };
        let password = Password::parse(password)?;
        let slot = self.passwords.slot().await?;
        let hash = self
            .passwords
            .hash_new(
                slot,
                password,
                [username.as_str().to_owned(), display.clone()],
            )
            .await?;
        let user = User {
            id: Uuid::now_v7(),
            username: username.as_str().to_owned(),
            display_name: display,
            created_at: to_time(now_ms()),
            avatar_url: None,
        };
        self.store
            .create_user(&user, &hash)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ServiceError::UsernameTaken,
                other => other.into(),
            })?;
        Ok(user)
    }

    /// Checks a password and opens a session.
    ///
    /// The order matters. The username is checked first, so no limiter keeps a key for a
    /// name no account can have. Then the address is charged, so a client refused there
    /// costs nobody else anything. Then the account's failure bucket for this address,
    /// charged before the check (concurrent guesses cannot all slip through) and cleared
    /// by a success, so it counts only checks that ran and failed, and only against the
    /// address that made them: guesses from elsewhere never keep the owner out. Unknown
    /// usernames go through the same steps and cost the same one hash. An account with
    /// two-factor login gets a challenge instead of tokens (`second_factor`).
    pub async fn login(&self, req: LoginRequest, client: &str) -> ServiceResult<LoginResponse> {
        self.password_login_on()?;
        let username = Username::parse(&req.username)?;
        let addr = counted_addr(client);
        self.limit(RateBucket::Login, &addr).await?;
        let slot = self.passwords.slot().await?;
        let failures = format!("{}@{addr}", username.as_str());
        self.limit(RateBucket::LoginFailure, &failures).await?;
        let creds = self.store.credentials(username.as_str()).await?;
        let (hash, user) = match creds {
            Some(c) => (Some(c.password_hash), Some(c.user)),
            None => (None, None),
        };
        let ok = self.passwords.verify(slot, req.password, hash).await?;
        match (ok, user) {
            (true, Some(user)) => {
                self.cache
                    .rate_reset(RateBucket::LoginFailure, &failures)
                    .await;
                let (id, name) = (user.id, user.username.clone());
                let user = self.with_avatar(user).await?;
                let answer = self.tokens_or_challenge(user).await?;
                let action = match answer {
                    LoginResponse::Tokens(_) => "auth.login",
                    LoginResponse::SecondFactor { .. } => "auth.login_second_factor_asked",
                };
                self.audit(Some(id), action, Some(name), Some(format!("from {client}")))
                    .await;
                Ok(answer)
            }
            _ => {
                metrics::counter!(crate::telemetry::metric::LOGIN_FAILURES).increment(1);
                self.audit(
                    None,
                    "auth.login_failed",
                    Some(username.as_str().to_owned()),
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
                let user = self.with_avatar(user).await?;
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

    pub(in crate::service) async fn end_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        action: &'static str,
    ) -> ServiceResult<()> {
        self.close_sessions(&[session_id]).await?;
        self.audit(Some(user_id), action, Some(session_id.to_string()), None)
            .await;
        Ok(())
    }

    /// Tells every node that these (already revoked) sessions ended: their access tokens
    /// are refused until they expire, and their sockets close.
    pub(in crate::service) async fn close_sessions(&self, sessions: &[Uuid]) -> ServiceResult<()> {
        let until = now_ms() + (self.tokens.access_ttl as i64 + 60) * 1000;
        for &session_id in sessions {
            self.cache.revoke_session(session_id, until).await;
            self.bus
                .publish(crate::bus::Event::EndSession { session_id })
                .await?;
        }
        // A device is its session's: it goes with it.
        self.sessions_ended(sessions).await
    }

    /// The caller's own profile.
    pub async fn me(&self, who: Identity) -> ServiceResult<User> {
        let user = self
            .store
            .user(who.user_id)
            .await?
            .ok_or(ServiceError::UserNotFound)?;
        self.with_avatar(user).await
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
        let user = self
            .store
            .user(id)
            .await?
            .ok_or(ServiceError::UserNotFound)?;
        self.with_avatar(user).await
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
        let mut users = self.store.search_users(&q.to_lowercase(), limit).await?;
        self.attach_avatars(&mut users).await?;
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(counted_addr("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(counted_addr("2001:db8:1:2::9"), "2001:db8:1:2::/64");
        assert_eq!(counted_addr("2001:db8:1:3::9"), "2001:db8:1:3::/64");
        assert_eq!(counted_addr("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(counted_addr("192.0.2.7"), "192.0.2.7");
        assert_eq!(counted_addr("unknown"), "unknown");
    }
}
