//! The server's VAPID identity (RFC 8292): one P-256 key pair, generated on first start
//! and kept in `<data_dir>/vapid-private.pem` (mode 0600). Browsers bind each
//! subscription to its public key, so losing or changing the key orphans every
//! subscription: a key file that cannot be read stops the start instead of being replaced.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;
use web_push_native::jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use web_push_native::jwt_simple::claims::Claims;
use web_push_native::jwt_simple::prelude::Duration;

use super::PushError;

/// Lifetime of a VAPID token; RFC 8292 allows at most 24 hours.
const TOKEN_HOURS: u64 = 12;

/// The key pair and the contact (`sub`) that sign VAPID tokens.
pub struct Vapid {
    key: ES256KeyPair,
    public_key: String,
    subject: String,
}

impl Vapid {
    /// Loads the key from `path`, or generates and stores one if there is none.
    pub fn load_or_create(path: &Path, subject: &str) -> Result<Self, PushError> {
        let key = match std::fs::read_to_string(path) {
            Ok(pem) => ES256KeyPair::from_pem(&pem)
                .map_err(|e| PushError::Key(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = ES256KeyPair::generate();
                let pem = key.to_pem().map_err(|e| PushError::Key(e.to_string()))?;
                crate::files::write_private(path, pem.as_bytes())?;
                tracing::info!(path = %path.display(), "generated the VAPID key pair");
                key
            }
            Err(e) => return Err(e.into()),
        };
        let public_key =
            URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
        Ok(Self {
            key,
            public_key,
            subject: subject.to_owned(),
        })
    }

    /// The public key: 65 bytes uncompressed, base64url without padding.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The `Authorization` header for a request to `endpoint`: `vapid t=<JWT>, k=<key>`.
    /// `aud` is the endpoint's origin with its port, if not the scheme's default.
    pub fn authorization(&self, endpoint: &Url) -> Result<String, PushError> {
        let claims = Claims::create(Duration::from_hours(TOKEN_HOURS))
            .with_audience(endpoint.origin().ascii_serialization())
            .with_subject(&self.subject);
        let token = self
            .key
            .sign(claims)
            .map_err(|e| PushError::Key(e.to_string()))?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}
