//! Accounts: users and their login sessions (refresh tokens).

use async_trait::async_trait;
use palaver_proto::User;
use uuid::Uuid;

use super::StoreResult;

/// A user with the secret needed to log in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// The outcome of refreshing: which session, and whether the token was fresh.
#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    /// The old token is retired and the new one stored.
    Rotated { session_id: Uuid, user_id: Uuid },
    /// The token had been used before: the session has now been revoked.
    Reused { session_id: Uuid, user_id: Uuid },
    /// Unknown, expired, or its session is revoked.
    Invalid,
}

/// Users and sessions. Every method is one transaction.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    // --- users
    /// Stores a new user; `Conflict` if the username is taken.
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()>;
    async fn user(&self, id: Uuid) -> StoreResult<Option<User>>;
    /// The users with these ids, in the order asked (unknown ids skipped).
    async fn users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>>;
    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>>;
    /// Users whose username or display name starts with `prefix` (case-insensitive).
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>>;
    /// `NotFound` if there is no such user.
    async fn set_display_name(&self, id: Uuid, name: &str) -> StoreResult<()>;
    async fn set_last_seen(&self, id: Uuid, at_ms: i64) -> StoreResult<()>;
    async fn last_seen(&self, id: Uuid) -> StoreResult<Option<i64>>;

    // --- sessions
    /// Opens a session; false (and nothing stored) when the account is disabled or gone.
    async fn create_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        refresh_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool>;
    async fn rotate_refresh(
        &self,
        old_hash: &[u8],
        new_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> StoreResult<RefreshOutcome>;
    /// Ends a session; returns its user if it existed and was live.
    async fn revoke_session(&self, session_id: Uuid, now_ms: i64) -> StoreResult<Option<Uuid>>;
    /// The session (and its user) a refresh token belongs to, if the token is known.
    async fn session_of_refresh(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>>;
    /// Sessions revoked since `since_ms` (their access tokens may still be unexpired).
    async fn revoked_sessions_since(&self, since_ms: i64) -> StoreResult<Vec<Uuid>>;
}
