//! Access and refresh tokens: short-lived HS256 JWTs bound to a session, and single-use
//! refresh tokens of which only the SHA-256 hash is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Identity;
use crate::clock::now_ms;
use crate::service::{ServiceError, ServiceResult};

const AUDIENCE: &str = "palaver";
const ISSUER: &str = "palaver";
/// The audience of second-step challenges: never accepted as an access token, nor an
/// access token as a challenge.
const CHALLENGE_AUDIENCE: &str = "palaver-second-factor";

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
    challenge_validation: Validation,
    pub(super) access_ttl: u64,
    pub(super) refresh_ttl: u64,
}

impl Tokens {
    pub fn new(secret: &[u8], access_ttl: u64, refresh_ttl: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 5;
        let mut challenge_validation = validation.clone();
        challenge_validation.set_audience(&[CHALLENGE_AUDIENCE]);
        // A challenge's lifetime is short and announced (`expiresAt`): no leeway past it.
        challenge_validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            challenge_validation,
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

    /// A second-step challenge for `user_id`, valid until `exp` (unix seconds): signed,
    /// so any node of the cluster can check it, and bound to its user.
    pub(super) fn challenge(&self, user_id: Uuid, exp: u64) -> ServiceResult<String> {
        let iat = (now_ms() / 1000) as u64;
        let claims = Claims {
            sub: user_id,
            // A challenge belongs to no session yet: a random id tells two apart.
            sid: Uuid::now_v7(),
            iat,
            exp,
            aud: CHALLENGE_AUDIENCE.into(),
            iss: ISSUER.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The user a challenge was made for, if it is ours and unexpired.
    pub(super) fn verify_challenge(&self, challenge: &str) -> Option<Uuid> {
        jsonwebtoken::decode::<Claims>(challenge, &self.decoding, &self.challenge_validation)
            .ok()
            .map(|data| data.claims.sub)
    }

    /// A fresh refresh token and the hash that is stored.
    pub(super) fn refresh_token() -> (String, Vec<u8>) {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let hash = hash_refresh(&token);
        (token, hash)
    }
}

pub(super) fn hash_refresh(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
