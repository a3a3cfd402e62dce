//! Encryption at rest: the operator's key and the keys derived from it.
//!
//! One 32-byte key, from `encryption.key_file` or `encryption.key` (config's
//! `EncryptionConfig`), protects the embedded engines. It is never used as it is: HKDF-SHA256
//! derives a separate key per use, so the database and the media never share one, and a
//! short public **key id** that files carry in their header, so that during a rotation
//! a reader tells which key sealed a file without trying each.
//!
//! | derived | label | used by |
//! |---|---|---|
//! | SQLCipher raw key | `palaver at-rest sqlcipher v1` | `PRAGMA key` / `rekey` on every connection (`store::sqlite`, `backup`) |
//! | media key | `palaver at-rest media v1` | `media::sealed`, which derives one key per file from it |
//! | key id (4 bytes) | `palaver at-rest key id v1` | media headers; logs and `palaver rekey`'s report |
//!
//! The SQLCipher key is given raw (`x'…'`), so SQLCipher runs no PBKDF2 per connection:
//! the key is already 256 random bits, not a passphrase. The key never reaches a log or an
//! error message; `Debug` shows only its id.

use std::fmt;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use sha2::Sha256;

use crate::config::EncryptionConfig;

/// Bytes of the operator's key.
pub const KEY_BYTES: usize = 32;

/// A key's public name: 4 bytes derived from it, shown as 8 hex digits. Two keys have
/// the same id with a chance of 1 in 2^32, and `palaver rekey` refuses such a pair.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The operator's at-rest key.
#[derive(Clone)]
pub struct AtRestKey {
    secret: [u8; KEY_BYTES],
    id: KeyId,
}

impl fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AtRestKey({})", self.id)
    }
}

/// Why the key could not be had. Never contains the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the encryption key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the encryption key in {from} must be 64 hexadecimal characters (32 bytes), \
         e.g. made with `openssl rand -hex 32`"
    )]
    Malformed { from: String },
}

const SQLCIPHER_LABEL: &[u8] = b"palaver at-rest sqlcipher v1";
const MEDIA_LABEL: &[u8] = b"palaver at-rest media v1";
const KEY_ID_LABEL: &[u8] = b"palaver at-rest key id v1";

impl AtRestKey {
    /// A key from its hex form; `from` says where it came from, for the error.
    pub fn parse(text: &str, from: &str) -> Result<AtRestKey, KeyError> {
        let malformed = || KeyError::Malformed {
            from: from.to_owned(),
        };
        let bytes = hex::decode(text.trim()).map_err(|_| malformed())?;
        let secret: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| malformed())?;
        Ok(Self::from_bytes(secret))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(secret: [u8; KEY_BYTES]) -> AtRestKey {
        let mut id = [0u8; 4];
        expand(&secret, KEY_ID_LABEL, &mut id);
        AtRestKey {
            secret,
            id: KeyId(id),
        }
    }

    /// A new random key (tests, and `palaver rekey --generate`).
    pub fn generate() -> AtRestKey {
        let mut secret = [0u8; KEY_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        Self::from_bytes(secret)
    }

    /// The key in the form a key file holds: 64 hex digits and a newline.
    pub fn to_file_text(&self) -> String {
        format!("{}\n", hex::encode(self.secret))
    }

    /// The key in the file at `path`. A file others may read is used, with a warning.
    pub fn read_file(path: &Path) -> Result<AtRestKey, KeyError> {
        let read = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(read)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(read)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the encryption key file is readable by others than its owner; chmod 600 it"
                );
            }
        }
        Self::parse(&text, &path.display().to_string())
    }

    /// The configured key, if any.
    pub fn from_config(config: &EncryptionConfig) -> Result<Option<AtRestKey>, KeyError> {
        match (&config.key_file, &config.key) {
            (Some(path), _) => Self::read_file(path).map(Some),
            (None, Some(text)) => Self::parse(text, "encryption.key").map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The previous key of a rotation (`encryption.previous_key_file`), if configured.
    pub fn previous_from_config(config: &EncryptionConfig) -> Result<Option<AtRestKey>, KeyError> {
        config
            .previous_key_file
            .as_deref()
            .map(Self::read_file)
            .transpose()
    }

    /// The key's public id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The value of `PRAGMA key` (and `rekey`): SQLCipher's raw-key form, quoted.
    pub fn sqlcipher_pragma(&self) -> String {
        let mut key = [0u8; 32];
        expand(&self.secret, SQLCIPHER_LABEL, &mut key);
        format!("\"x'{}'\"", hex::encode(key))
    }

    /// The key from which each media file's own key is derived.
    pub fn media_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        expand(&self.secret, MEDIA_LABEL, &mut key);
        key
    }
}

fn expand(secret: &[u8], label: &[u8], out: &mut [u8]) {
    // Lengths this small (at most 32 bytes) never fail: HKDF-SHA256 gives up to 8160.
    let _ = Hkdf::<Sha256>::new(None, secret).expand(label, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_hex_and_derive_distinct_keys() {
        let text = format!("  {}\n", "ab".repeat(32));
        let key = AtRestKey::parse(&text, "test").expect("valid");
        assert_eq!(key.to_file_text(), format!("{}\n", "ab".repeat(32)));
        // Derived keys differ from each other and from the key.
        let sql = key.sqlcipher_pragma();
        assert!(sql.starts_with("\"x'") && sql.ends_with("'\"") && sql.len() == 64 + 5);
        assert!(!sql.contains(&"ab".repeat(32)));
        assert_ne!(key.media_key(), [0xab; 32]);
        assert_ne!(hex::encode(key.media_key()), sql[3..67]);
        // Ids are stable and tell keys apart.
        let again = AtRestKey::parse(&"ab".repeat(32), "test").expect("valid");
        assert_eq!(again.id(), key.id());
        assert_ne!(AtRestKey::generate().id(), key.id());
        // The key never shows in Debug.
        assert!(!format!("{key:?}").contains("abab"));
        for bad in [
            "",
            "ab",
            &"ab".repeat(31),
            &"zz".repeat(32),
            &"ab".repeat(33),
        ] {
            assert!(AtRestKey::parse(bad, "test").is_err(), "{bad:?}");
        }
    }
}
