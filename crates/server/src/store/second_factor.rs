//! Logging in beyond a password: TOTP authenticators (sealed secrets, the last accepted
//! time step), recovery codes, and single sign-on links and flows in progress.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// A user's authenticator, as stored.
#[derive(Debug, Clone)]
pub struct TotpFactor {
    /// The sealed secret (the service opens it).
    pub sealed_secret: Vec<u8>,
    /// Set once a first code confirmed it.
    pub confirmed: bool,
}

/// A single sign-on login in progress, as the callback finds it.
#[derive(Debug, Clone)]
pub struct SsoFlow {
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The logged-in user linking the provider to their account, if that is what it is.
    pub link_user_id: Option<Uuid>,
}

/// Second factors and single sign-on. Every method is one transaction.
#[async_trait]
pub trait SecondFactorStore: Send + Sync + 'static {
    // --- TOTP
    /// The user's authenticator, confirmed or pending.
    async fn totp_factor(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>>;
    /// Stores a pending (unconfirmed) secret, replacing a pending one; `false` (nothing
    /// written) when a confirmed one exists.
    async fn put_pending_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Confirms the pending secret with the step its first code was for, and replaces the
    /// recovery codes; `false` if there was no pending secret.
    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_hashes: &[Vec<u8>],
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Records that a code of `step` was accepted, if no code of that step or a later one
    /// was: `true` when this call is the one that used it.
    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool>;
    /// Marks a recovery code used: `true` if it existed and was unused.
    async fn use_recovery_code(&self, user_id: Uuid, hash: &[u8], now_ms: i64)
    -> StoreResult<bool>;
    /// Recovery codes not used yet.
    async fn recovery_codes_left(&self, user_id: Uuid) -> StoreResult<u32>;
    /// Removes the authenticator and the recovery codes; `true` if there was one.
    async fn remove_totp(&self, user_id: Uuid) -> StoreResult<bool>;

    // --- single sign-on
    /// The account linked to the provider's user.
    async fn sso_user(&self, issuer: &str, subject: &str) -> StoreResult<Option<Uuid>>;
    /// Links the provider's user to an account; `Conflict` if that user is linked already.
    async fn link_sso(
        &self,
        issuer: &str,
        subject: &str,
        user_id: Uuid,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Stores a new flow after deleting expired ones; `false` (nothing stored) when
    /// `max_pending` unexpired flows exist already.
    #[allow(clippy::too_many_arguments)] // one row's columns
    async fn start_sso_flow(
        &self,
        state_hash: &[u8],
        flow: &SsoFlow,
        expires_ms: i64,
        now_ms: i64,
        max_pending: u32,
    ) -> StoreResult<bool>;
    /// Takes the unexpired flow of this state, if any, so that a state works once: the
    /// row stays only as the holder of the one-time code (`finish_sso_flow`).
    async fn take_sso_flow(&self, state_hash: &[u8], now_ms: i64) -> StoreResult<Option<SsoFlow>>;
    /// Gives the taken flow its one-time code, which logs in `user_id` until `expires_ms`.
    async fn finish_sso_flow(
        &self,
        state_hash: &[u8],
        code_hash: &[u8],
        user_id: Uuid,
        expires_ms: i64,
    ) -> StoreResult<()>;
    /// Redeems a one-time code (once): the account it logs in.
    async fn redeem_sso_code(&self, code_hash: &[u8], now_ms: i64) -> StoreResult<Option<Uuid>>;
}
