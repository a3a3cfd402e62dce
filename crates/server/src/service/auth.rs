//! Accounts and sessions: argon2id password hashes, short-lived JWT access tokens bound
//! to a session, and single-use refresh tokens stored only as SHA-256 hashes.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, Salt, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ipnet::Ipv6Net;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use palaver_proto::{AuthResponse, LoginRequest, RegisterRequest, UpdateProfileRequest, User};
use parking_lot::Mutex;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::{Core, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::config::Config;
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

/// How long a client refused for want of a hashing slot is told to wait.
const HASH_RETRY: Duration = Duration::from_secs(1);

/// The node's password hashing: argon2id at fixed parameters, off the async threads, at
/// most `[passwords] max_concurrent_hashes` at once. Each hash needs 19 MiB for tens of
/// milliseconds; without a bound, 40 logins at once took a gigabyte. Past the bound a
/// request waits up to `hash_wait_ms` for a slot, then is answered 503 with
/// `Retry-After`. Each slot's 19 MiB is allocated once and reused: left to the allocator,
/// freed argon2 memory stayed with whichever thread had used it, about 19 MiB for each
/// of the blocking pool's threads, however few hashed at once.
pub struct Passwords {
    slots: Arc<Semaphore>,
    wait: Duration,
    params: argon2::Params,
    /// Argon2 memory, one buffer per slot that has hashed (never more than the slots).
    memory: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
    /// What an unknown username is checked against: a PHC string with the same parameters
    /// as every new hash, a random salt and a random output. Verifying against it costs
    /// exactly one hash, as for a real account (no user enumeration by timing), and no
    /// password matches it.
    dummy: String,
    min_score: u8,
}

/// A hashing slot, held from before the checks that lead to a hash until the hash ends.
pub struct HashSlot {
    _permit: OwnedSemaphorePermit,
}

fn hash_error(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("password hash: {e}"))
}

/// argon2id over `password` with the given parameters and salt, in `memory` (grown to
/// the parameters' size if need be): what `PasswordHasher::hash_password` computes, in
/// memory of our own.
fn argon2_phc<'a>(
    algorithm: argon2::Algorithm,
    version: argon2::Version,
    params: argon2::Params,
    password: &[u8],
    salt: Salt<'a>,
    memory: &mut Vec<argon2::Block>,
) -> Result<PasswordHash<'a>, argon2::password_hash::Error> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let output_len = params
        .output_len()
        .unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
    let params_string = (&params).try_into()?;
    let hasher = Argon2::new(algorithm, version, params);
    let output = Output::init_with(output_len, |out| {
        Ok(hasher.hash_password_into_with_memory(
            password,
            salt_bytes,
            out,
            &mut memory[..blocks],
        )?)
    })?;
    Ok(PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: params_string,
        salt: Some(salt),
        hash: Some(output),
    })
}

/// Whether `password` gives `stored`'s output under `stored`'s own algorithm, version,
/// parameters and salt; the outputs are compared in constant time (`Output`'s `==`).
fn argon2_verify(stored: &str, password: &[u8], memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(stored) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return false;
    };
    let algorithm = argon2::Algorithm::try_from(stored.algorithm);
    let version = argon2::Version::try_from(stored.version.unwrap_or(0x13));
    let params = argon2::Params::try_from(&stored);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, params) else {
        return false;
    };
    argon2_phc(algorithm, version, params, password, salt, memory)
        .is_ok_and(|computed| computed.hash.is_some_and(|out| out == expected))
}

impl Passwords {
    /// argon2id with the crate's defaults (the OWASP minimum: 19 MiB, 2 passes), or with
    /// `insecure_fast_password_hashing` (load tests only) the smallest parameters.
    /// Verification reads the parameters from the stored hash.
    pub fn new(config: &Config) -> ServiceResult<Self> {
        let params = if config.insecure_fast_password_hashing {
            argon2::Params::new(argon2::Params::MIN_M_COST, 1, 1, None).map_err(hash_error)?
        } else {
            argon2::Params::default()
        };
        let mut output = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
        OsRng.fill_bytes(&mut output);
        let salt = SaltString::generate(&mut OsRng);
        let dummy = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(argon2::Version::V0x13.into()),
            params: (&params).try_into().map_err(hash_error)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(hash_error)?),
        }
        .to_string();
        let slots = config.passwords.hash_slots().max(1);
        Ok(Self {
            slots: Arc::new(Semaphore::new(slots)),
            wait: Duration::from_millis(config.passwords.hash_wait_ms),
            params,
            memory: Arc::default(),
            dummy,
            min_score: config.passwords.min_score,
        })
    }

    /// Waits (boundedly) for a hashing slot.
    pub async fn slot(&self) -> ServiceResult<HashSlot> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(HashSlot { _permit: permit }),
            _ => {
                metrics::counter!("palaver_password_hash_refused_total").increment(1);
                Err(ServiceError::Busy {
                    what: "too many password checks at once".into(),
                    retry: HASH_RETRY,
                })
            }
        }
    }

    /// Runs `work` on a blocking thread with a slot's argon2 memory. The slot moves with
    /// it, so a client that hangs up does not free the slot before the hash is done.
    async fn run<T: Send + 'static>(
        &self,
        slot: HashSlot,
        work: impl FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let mut memory = pool.lock().pop().unwrap_or_default();
            let done = work(&mut memory);
            pool.lock().push(memory);
            done
        })
        .await
        .map_err(hash_error)
    }

    /// Whether `password` matches `hash`, or, for an unknown user (`None`), the same work
    /// against the dummy hash (always false).
    pub async fn verify(
        &self,
        slot: HashSlot,
        password: String,
        hash: Option<String>,
    ) -> ServiceResult<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.clone());
        let matched = self
            .run(slot, move |memory| {
                argon2_verify(&hash, password.as_bytes(), memory)
            })
            .await?;
        Ok(known && matched)
    }

    /// A new account's password hash, once the password passes the strength rule
    /// (`[passwords] min_score`, against the user's own names too). The estimate runs on
    /// the hashing thread too: it costs up to milliseconds.
    pub async fn hash_new(
        &self,
        slot: HashSlot,
        password: Password,
        user_inputs: [String; 2],
    ) -> ServiceResult<String> {
        let (min_score, params) = (self.min_score, self.params.clone());
        self.run(slot, move |memory| {
            let inputs = user_inputs.each_ref().map(String::as_str);
            password.check_strength(&inputs, min_score)?;
            let salt = SaltString::generate(&mut OsRng);
            argon2_phc(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                params,
                password.expose().as_bytes(),
                salt.as_salt(),
                memory,
            )
            .map(|h| h.to_string())
            .map_err(hash_error)
        })
        .await?
    }
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
        self.limit(RateBucket::Register, &counted_addr(client))
            .await?;
        let username = Username::parse(&req.username)?;
        let display = match req.display_name.as_deref() {
            Some(name) => display_name(name)?,
            None => username.as_str().to_owned(),
        };
        let password = Password::parse(&req.password)?;
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
    ///
    /// The order matters. The username is checked first, so no limiter keeps a key for a
    /// name no account can have. Then the address is charged, so a client refused there
    /// costs nobody else anything. Then the account's failure bucket for this address,
    /// charged before the check (concurrent guesses cannot all slip through) and cleared
    /// by a success, so it counts only checks that ran and failed, and only against the
    /// address that made them: guesses from elsewhere never keep the owner out. Unknown
    /// usernames go through the same steps and cost the same one hash.
    pub async fn login(&self, req: LoginRequest, client: &str) -> ServiceResult<AuthResponse> {
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

    fn passwords(fast: bool, slots: usize, wait_ms: u64) -> Passwords {
        let mut config = Config {
            insecure_fast_password_hashing: fast,
            ..Config::default()
        };
        config.passwords.max_concurrent_hashes = slots;
        config.passwords.hash_wait_ms = wait_ms;
        Passwords::new(&config).expect("passwords")
    }

    #[tokio::test]
    async fn an_unknown_user_costs_one_hash_of_the_same_parameters() {
        for fast in [true, false] {
            let p = passwords(fast, 1, 1000);
            let slot = p.slot().await.expect("slot");
            let real = p
                .hash_new(
                    slot,
                    Password::parse("correct horse battery").expect("pw"),
                    ["alice".into(), "Alice".into()],
                )
                .await
                .expect("hash");
            let params = |phc: &str| {
                let parsed = PasswordHash::new(phc).expect("phc");
                (
                    parsed.algorithm.to_string(),
                    parsed.version,
                    argon2::Params::try_from(&parsed).expect("params"),
                    parsed.hash.map(|h| h.len()),
                )
            };
            assert_eq!(params(&p.dummy), params(&real), "fast: {fast}");
            // The dummy matches nothing, and an unknown user never gets in.
            let slot = p.slot().await.expect("slot");
            assert!(
                !p.verify(slot, "correct horse battery".into(), None)
                    .await
                    .expect("verify")
            );
            let slot = p.slot().await.expect("slot");
            assert!(
                p.verify(slot, "correct horse battery".into(), Some(real))
                    .await
                    .expect("verify")
            );
        }
    }

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let p = passwords(false, 1, 1000);
        // Accounts stored before: hashed by the crate's own `hash_password`.
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .expect("hash")
            .to_string();
        for (password, want) in [("correct horse battery", true), ("correct horse", false)] {
            let slot = p.slot().await.expect("slot");
            let got = p.verify(slot, password.into(), Some(old.clone())).await;
            assert_eq!(got.expect("verify"), want, "{password}");
        }
        // And ours verify with the crate's verifier.
        let slot = p.slot().await.expect("slot");
        let ours = p
            .hash_new(
                slot,
                Password::parse("correct horse battery").expect("pw"),
                ["alice".into(), "Alice".into()],
            )
            .await
            .expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_err()
        );
        // Garbage in the store never matches.
        for stored in ["", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$", "plain text"] {
            let slot = p.slot().await.expect("slot");
            assert!(
                !p.verify(slot, "".into(), Some(stored.into()))
                    .await
                    .expect("verify")
            );
        }
        // One buffer of argon2 memory, reused.
        assert_eq!(p.memory.lock().len(), 1);
    }

    #[tokio::test]
    async fn hashing_slots_are_bounded_and_refused_with_a_retry() {
        let p = passwords(true, 2, 20);
        let one = p.slot().await.expect("one");
        let _two = p.slot().await.expect("two");
        let err = p.slot().await.err().expect("no third slot");
        assert!(
            matches!(err, ServiceError::Busy { retry, .. } if retry == HASH_RETRY),
            "{err:?}"
        );
        assert_eq!(err.code(), palaver_proto::ErrorCode::Unavailable);
        // A slot comes back when its work is done, refused or not.
        let weak = Password::parse("password").expect("pw");
        let err = p
            .hash_new(one, weak, ["alice".into(), "Alice".into()])
            .await
            .expect_err("weak");
        assert_eq!(err.code(), palaver_proto::ErrorCode::ValidationFailed);
        assert!(p.slot().await.is_ok(), "the slot is free again");
    }
}
