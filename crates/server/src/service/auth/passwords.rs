//! Password hashing: argon2id with a node-wide bound on hashes at once, memory reused
//! per slot, a dummy hash for unknown users, and the strength rule for new passwords.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, Salt, SaltString};
use parking_lot::Mutex;
use rand::RngCore;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::domain::Password;
use crate::service::{ServiceError, ServiceResult};

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

#[cfg(test)]
mod tests {
    use super::*;

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
