//! Two-factor login: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of
//! skew, what every authenticator app does) with single-use recovery codes.
//!
//! - Enrolling is two steps: a new secret (`totp_enrol`), kept pending until a first code
//!   from the app confirms it (`totp_confirm`), which turns it on and hands out the
//!   recovery codes, once. Until then logins are unchanged.
//! - The secret is stored sealed: AES-256-GCM under a key derived (HKDF-SHA256, a label of
//!   its own) from the token-signing secret, which every node of a cluster shares, with
//!   the user's id as associated data, so a sealed secret moved to another row does not
//!   open. Changing `jwt_secret` therefore also turns every authenticator unreadable.
//! - A code is accepted once: the store keeps the last time step accepted per user and
//!   accepts a code only for a later step, in one statement (no two nodes accept the same
//!   code). Recovery codes (80 random bits each) are stored as SHA-256 hashes and marked
//!   used in one statement as well.
//! - Guessing is limited by the login limiter (`RateBucket::LoginFailure`), keyed by the
//!   account alone: whoever answers a challenge knew the password, so the address they
//!   come from is no part of the key; failures are charged before the check and cleared
//!   by a success, as for passwords.
//! - The login challenge is a signed token of its own audience (`Tokens::challenge`),
//!   valid for `auth.second_factor_ttl_secs`.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use palaver_proto::{
    AuthResponse, LoginResponse, RecoveryCodes, RemoveTotpRequest, SecondFactorChallenge,
    SecondFactorRequest, TotpConfirmRequest, TotpEnrolment, TotpStatus, User,
};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Totp};
use uuid::Uuid;

use super::{Identity, counted_addr};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::service::{Core, ServiceError, ServiceResult};

/// The label that sets the sealing key apart from every other use of the secret.
const KEY_LABEL: &[u8] = b"palaver totp secrets v1";
/// Recovery codes handed out at enrolment.
const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code: 16 of 32 letters and digits (no 0/o, 1/l), 80 bits.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
const RECOVERY_LEN: usize = 16;
/// Bytes of a new TOTP secret (160 bits, what RFC 4226 recommends).
const SECRET_BYTES: usize = 20;
const NONCE_BYTES: usize = 12;
/// What may answer a login challenge.
const METHODS: [&str; 2] = ["totp", "recovery"];

/// Seals and opens TOTP secrets (module docs).
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    /// The sealer keyed from the token-signing secret.
    pub fn new(secret: &[u8]) -> Sealer {
        let mut key = [0u8; 32];
        // 32 bytes is well within what HKDF-SHA256 can expand to: this cannot fail.
        let _ = Hkdf::<Sha256>::new(None, secret).expand(KEY_LABEL, &mut key);
        Sealer {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    /// `nonce || ciphertext` of `plain`, bound to `user_id`.
    fn seal(&self, user_id: Uuid, plain: &[u8]) -> ServiceResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| ServiceError::Internal("sealing a TOTP secret failed".into()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// What `seal` sealed for `user_id`.
    fn open(&self, user_id: Uuid, sealed: &[u8]) -> ServiceResult<Vec<u8>> {
        let corrupt = || {
            ServiceError::Internal("a TOTP secret does not open (was jwt_secret changed?)".into())
        };
        if sealed.len() <= NONCE_BYTES {
            return Err(corrupt());
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| corrupt())
    }
}

/// What a submitted code is, by its shape.
#[derive(Debug, PartialEq, Eq)]
enum Code {
    /// Six digits.
    Totp(String),
    /// A recovery code, normalised (lowercase, no spaces or dashes).
    Recovery(String),
    /// Neither: never accepted.
    Malformed,
}

impl Code {
    fn parse(code: &str) -> Code {
        let norm: String = code
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .flat_map(char::to_lowercase)
            .collect();
        if norm.len() == 6 && norm.bytes().all(|b| b.is_ascii_digit()) {
            Code::Totp(norm)
        } else if norm.len() == RECOVERY_LEN && norm.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))
        {
            Code::Recovery(norm)
        } else {
            Code::Malformed
        }
    }
}

/// A new recovery code as shown: four groups of four.
fn new_recovery_code() -> String {
    let mut rng = rand::thread_rng();
    let raw: Vec<char> = (0..RECOVERY_LEN)
        .map(|_| RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())] as char)
        .collect();
    raw.chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What is stored of a normalised recovery code.
fn hash_recovery(norm: &str) -> Vec<u8> {
    Sha256::digest(norm.as_bytes()).to_vec()
}

/// The TOTP of a secret: SHA-1, 6 digits, 30 s, one step of skew.
fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> ServiceResult<Totp> {
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|e| ServiceError::Internal(format!("totp: {e}")))
}

fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

/// The login limiter's key for guesses at an account's second factor.
fn failures_key(user_id: Uuid) -> String {
    format!("second-factor:{user_id}")
}

fn wrong_code() -> ServiceError {
    ServiceError::InvalidSecondFactor("wrong, used or expired code")
}

impl Core {
    /// After a right password: the tokens, or the challenge of an account with a second
    /// factor.
    pub(super) async fn tokens_or_challenge(&self, user: User) -> ServiceResult<LoginResponse> {
        let second = self.store.totp_factor(user.id).await?;
        if !second.is_some_and(|f| f.confirmed) {
            return Ok(LoginResponse::Tokens(self.open_session(user).await?));
        }
        let exp = now_secs() + self.config.auth.second_factor_ttl_secs;
        let challenge = self.tokens.challenge(user.id, exp)?;
        Ok(LoginResponse::SecondFactor {
            second_factor: SecondFactorChallenge {
                challenge,
                methods: METHODS.map(String::from).to_vec(),
                expires_at: to_time(i64::try_from(exp).unwrap_or(i64::MAX) * 1000),
            },
        })
    }

    /// The second step of a login: a TOTP or recovery code for the challenge.
    pub async fn login_second_factor(
        &self,
        req: SecondFactorRequest,
        client: &str,
    ) -> ServiceResult<AuthResponse> {
        self.limit(RateBucket::Login, &counted_addr(client)).await?;
        if req.challenge.len() > 1024 || req.code.len() > 64 {
            return Err(ServiceError::Validation(
                "challenge or code is too long".into(),
            ));
        }
        let user_id = self.tokens.verify_challenge(&req.challenge).ok_or(
            ServiceError::InvalidSecondFactor("the challenge is invalid or expired; log in again"),
        )?;
        let failures = failures_key(user_id);
        self.limit(RateBucket::LoginFailure, &failures).await?;
        if !self.check_second_factor(user_id, &req.code).await? {
            metrics::counter!("palaver_second_factor_failures_total").increment(1);
            self.audit(
                Some(user_id),
                "auth.second_factor_failed",
                None,
                Some(format!("from {client}")),
            )
            .await;
            return Err(wrong_code());
        }
        self.cache
            .rate_reset(RateBucket::LoginFailure, &failures)
            .await;
        let user = self.store.user(user_id).await?.ok_or(wrong_code())?;
        self.audit(
            Some(user.id),
            "auth.login",
            Some(user.username.clone()),
            Some(format!("from {client}, with a second factor")),
        )
        .await;
        let user = self.with_avatar(user).await?;
        self.open_session(user).await
    }

    /// Whether `code` is a current, unused TOTP code or an unused recovery code of the
    /// user's confirmed authenticator; using it is recorded in the same step.
    async fn check_second_factor(&self, user_id: Uuid, code: &str) -> ServiceResult<bool> {
        let Some(factor) = self
            .store
            .totp_factor(user_id)
            .await?
            .filter(|f| f.confirmed)
        else {
            return Ok(false);
        };
        match Code::parse(code) {
            Code::Totp(digits) => {
                let Some(step) = self.totp_step(user_id, &factor.sealed_secret, &digits)? else {
                    return Ok(false);
                };
                Ok(self.store.use_totp_step(user_id, step).await?)
            }
            Code::Recovery(norm) => Ok(self
                .store
                .use_recovery_code(user_id, &hash_recovery(&norm), now_ms())
                .await?),
            Code::Malformed => Ok(false),
        }
    }

    /// The time step `digits` is the code of, within the skew, if any.
    fn totp_step(&self, user_id: Uuid, sealed: &[u8], digits: &str) -> ServiceResult<Option<i64>> {
        let secret = self.second_factor.open(user_id, sealed)?;
        let totp = totp(secret, &self.config.auth.totp_issuer, "")?;
        Ok(totp
            .check(digits, now_secs())
            .map(|step| i64::try_from(step).unwrap_or(i64::MAX)))
    }

    /// Whether the caller has two-factor login on.
    pub async fn totp_status(&self, who: Identity) -> ServiceResult<TotpStatus> {
        let enabled = self
            .store
            .totp_factor(who.user_id)
            .await?
            .is_some_and(|f| f.confirmed);
        let left = match enabled {
            true => self.store.recovery_codes_left(who.user_id).await?,
            false => 0,
        };
        Ok(TotpStatus {
            enabled,
            recovery_codes_left: left,
        })
    }

    /// Starts enrolling: a new secret, pending until confirmed (replacing a pending one).
    pub async fn totp_enrol(&self, who: Identity) -> ServiceResult<TotpEnrolment> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let user = self.me(who).await?;
        let mut secret = vec![0u8; SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut secret);
        let sealed = self.second_factor.seal(user.id, &secret)?;
        if !self
            .store
            .put_pending_totp(user.id, &sealed, now_ms())
            .await?
        {
            return Err(ServiceError::Conflict(
                "two-factor login is on already; remove it first",
            ));
        }
        let totp = totp(secret, &self.config.auth.totp_issuer, &user.username)?;
        let otpauth_uri = totp
            .to_url()
            .map_err(|e| ServiceError::Internal(format!("totp: {e}")))?;
        let qr = totp
            .to_qr_base64()
            .map_err(|e| ServiceError::Internal(format!("totp qr: {e}")))?;
        Ok(TotpEnrolment {
            secret: totp.secret().to_base32(),
            otpauth_uri,
            qr_png: format!("data:image/png;base64,{qr}"),
        })
    }

    /// Confirms the pending secret with a code from the app: two-factor login is on from
    /// now, and the recovery codes are returned (the only time they are shown).
    pub async fn totp_confirm(
        &self,
        who: Identity,
        req: TotpConfirmRequest,
    ) -> ServiceResult<RecoveryCodes> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        if req.code.len() > 64 {
            return Err(ServiceError::Validation("code is too long".into()));
        }
        let failures = failures_key(who.user_id);
        self.limit(RateBucket::LoginFailure, &failures).await?;
        let factor = match self.store.totp_factor(who.user_id).await? {
            Some(f) if !f.confirmed => f,
            Some(_) => return Err(ServiceError::Conflict("two-factor login is on already")),
            None => {
                return Err(ServiceError::Conflict(
                    "no enrolment to confirm; ask for a new secret first",
                ));
            }
        };
        let step = match Code::parse(&req.code) {
            Code::Totp(digits) => self.totp_step(who.user_id, &factor.sealed_secret, &digits)?,
            _ => None,
        };
        let Some(step) = step else {
            return Err(wrong_code());
        };
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes: Vec<Vec<u8>> = codes
            .iter()
            .map(|c| hash_recovery(&c.replace('-', "")))
            .collect();
        if !self
            .store
            .confirm_totp(who.user_id, step, &hashes, now_ms())
            .await?
        {
            return Err(ServiceError::Conflict("two-factor login is on already"));
        }
        self.cache
            .rate_reset(RateBucket::LoginFailure, &failures)
            .await;
        self.audit(Some(who.user_id), "auth.totp_enabled", None, None)
            .await;
        Ok(RecoveryCodes {
            recovery_codes: codes,
        })
    }

    /// Turns two-factor login off, given the password or a current code. A pending
    /// enrolment is dropped with no proof: it protects nothing yet.
    pub async fn totp_remove(&self, who: Identity, req: RemoveTotpRequest) -> ServiceResult<()> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        if req.password.as_ref().is_some_and(|p| p.len() > 256)
            || req.code.as_ref().is_some_and(|c| c.len() > 64)
        {
            return Err(ServiceError::Validation(
                "password or code is too long".into(),
            ));
        }
        let Some(factor) = self.store.totp_factor(who.user_id).await? else {
            return Err(ServiceError::Conflict("two-factor login is not on"));
        };
        if factor.confirmed {
            let failures = failures_key(who.user_id);
            self.limit(RateBucket::LoginFailure, &failures).await?;
            let proven = match (req.code, req.password) {
                (Some(code), _) => self.check_second_factor(who.user_id, &code).await?,
                (None, Some(password)) => self.password_matches(who, password).await?,
                (None, None) => {
                    return Err(ServiceError::Validation(
                        "give the password or a current code".into(),
                    ));
                }
            };
            if !proven {
                self.audit(Some(who.user_id), "auth.totp_remove_failed", None, None)
                    .await;
                return Err(wrong_code());
            }
            self.cache
                .rate_reset(RateBucket::LoginFailure, &failures)
                .await;
        }
        self.store.remove_totp(who.user_id).await?;
        if factor.confirmed {
            self.audit(Some(who.user_id), "auth.totp_disabled", None, None)
                .await;
        }
        Ok(())
    }

    /// Whether `password` is the caller's.
    async fn password_matches(&self, who: Identity, password: String) -> ServiceResult<bool> {
        if password.len() > 256 {
            return Ok(false);
        }
        let user = self.me(who).await?;
        let slot = self.passwords.slot().await?;
        let hash = self
            .store
            .credentials(&user.username)
            .await?
            .map(|c| c.password_hash);
        self.passwords.verify(slot, password, hash).await
    }

    /// For the admin API, once the caller is known to be an administrator: refuses them
    /// (`second_factor_required`) while `auth.require_second_factor_for_admins` is on and
    /// they have no second factor. The one place that rule lives.
    pub async fn admin_second_factor_gate(&self, user_id: Uuid) -> ServiceResult<()> {
        if self.config.auth.require_second_factor_for_admins
            && !self.has_second_factor(user_id).await?
        {
            return Err(ServiceError::SecondFactorRequired);
        }
        Ok(())
    }

    /// Whether the user has two-factor login on (for `require_second_factor_for_admins`).
    pub async fn has_second_factor(&self, user_id: Uuid) -> ServiceResult<bool> {
        Ok(self
            .store
            .totp_factor(user_id)
            .await?
            .is_some_and(|f| f.confirmed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_told_apart_by_shape() {
        assert_eq!(Code::parse("123456"), Code::Totp("123456".into()));
        assert_eq!(Code::parse(" 123 456 "), Code::Totp("123456".into()));
        assert_eq!(Code::parse("12345"), Code::Malformed);
        assert_eq!(Code::parse("1234567"), Code::Malformed);
        let code = new_recovery_code();
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(
            Code::parse(&code.to_uppercase()),
            Code::Recovery(code.replace('-', ""))
        );
        assert_eq!(Code::parse("abcd-efgh-ijkm-nop0"), Code::Malformed);
        assert_eq!(Code::parse(""), Code::Malformed);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key() {
        let sealer = Sealer::new(b"a secret of thirty-two bytes or more");
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = sealer.seal(alice, b"totp secret").expect("seal");
        assert!(!sealed.windows(11).any(|w| w == b"totp secret"));
        assert_eq!(sealer.open(alice, &sealed).expect("open"), b"totp secret");
        assert!(sealer.open(bob, &sealed).is_err());
        let other = Sealer::new(b"another secret of thirty-two bytes");
        assert!(other.open(alice, &sealed).is_err());
        assert!(sealer.open(alice, &sealed[..5]).is_err());
    }
}
