//! Signed media links: what an `<img>`, `<video>` or `<a download>` can fetch without a
//! header, and without an access token in its URL.
//!
//! A link is the media path plus `?exp=<unix seconds>&sig=<base64url>`, where `sig` is
//! HMAC-SHA256 over the object's id, which of its files (the original or the thumbnail)
//! and `exp`. So a link opens one file of one object until `exp`, and nothing else: it is
//! no credential for the API. Whoever holds it may fetch that file until it expires, as
//! with any capability URL; the lifetime (`media.link_ttl_secs`) bounds what a link that
//! leaks (a log, a copied URL, a removed member's cache) can still open.
//!
//! The key is derived from the token-signing secret (HKDF) with a label of its own, so every
//! node of a cluster, which shares that secret, checks the links of every other, and
//! nothing signed here can pass for an access token or the other way round.
//!
//! `exp` is rounded down to a step of half the lifetime: every link to a file made in the
//! same step is the same URL (browsers cache it once; a frame encoded once for a whole
//! room stays valid for all), and each one is valid for between half the lifetime and
//! all of it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The label that sets the link key apart from every other use of the secret.
const KEY_LABEL: &[u8] = b"palaver media links v1";

/// Which file of a media object a link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFile {
    Original,
    Thumbnail,
}

impl MediaFile {
    fn as_str(self) -> &'static str {
        match self {
            MediaFile::Original => "original",
            MediaFile::Thumbnail => "thumbnail",
        }
    }

    /// The path that serves this file of object `id`.
    pub fn path(self, id: Uuid) -> String {
        match self {
            MediaFile::Original => format!("/api/v1/media/{id}"),
            MediaFile::Thumbnail => format!("/api/v1/media/{id}/thumbnail"),
        }
    }
}

/// Why a link does not open its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not signed by this deployment, or signed for another file or expiry.
    Invalid,
    Expired,
}

impl LinkError {
    /// What the client is told.
    pub fn reason(self) -> &'static str {
        match self {
            LinkError::Invalid => "the media link is not valid",
            LinkError::Expired => {
                "the media link has expired; fetch the message again for a fresh one"
            }
        }
    }
}

/// Signs and checks media links.
pub struct LinkSigner {
    /// Keyed once; cloned per signature.
    mac: HmacSha256,
    ttl_secs: i64,
}

impl LinkSigner {
    /// A signer whose key is derived from the token-signing `secret`.
    pub fn new(secret: &[u8], ttl_secs: u64) -> LinkSigner {
        // HKDF (RFC 5869), with the label as its `info`.
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit (8160); this cannot fail.
        let _ = Hkdf::<Sha256>::new(None, secret).expand(KEY_LABEL, &mut key);
        LinkSigner {
            mac: keyed(&key),
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX).max(1),
        }
    }

    /// The link to `file` of object `id`, as of `now` (unix seconds).
    pub fn link(&self, id: Uuid, file: MediaFile, now: i64) -> String {
        let step = (self.ttl_secs / 2).max(1);
        let exp = now.saturating_add(self.ttl_secs) / step * step;
        let sig = URL_SAFE_NO_PAD.encode(self.tag(id, file, exp).finalize().into_bytes());
        format!("{}?exp={exp}&sig={sig}", file.path(id))
    }

    /// Checks a link's `exp` and `sig` for `file` of object `id` at `now`.
    pub fn check(
        &self,
        id: Uuid,
        file: MediaFile,
        exp: i64,
        sig: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| LinkError::Invalid)?;
        // Constant-time comparison, by the hmac crate.
        self.tag(id, file, exp)
            .verify_slice(&sig)
            .map_err(|_| LinkError::Invalid)?;
        if exp < now {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    fn tag(&self, id: Uuid, file: MediaFile, exp: i64) -> HmacSha256 {
        self.mac
            .clone()
            .chain_update(format!("{id}\n{}\n{exp}", file.as_str()))
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(link: &str) -> (i64, String) {
        let query = link.split_once('?').expect("query").1;
        let mut exp = None;
        let mut sig = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("exp", v)) => exp = v.parse().ok(),
                Some(("sig", v)) => sig = Some(v.to_owned()),
                _ => {}
            }
        }
        (exp.expect("exp"), sig.expect("sig"))
    }

    #[test]
    fn a_link_opens_its_own_file_until_it_expires() {
        let signer = LinkSigner::new(b"a secret of at least thirty-two bytes", 3600);
        let (id, other) = (Uuid::now_v7(), Uuid::now_v7());
        let now = 1_700_000_000;
        let link = signer.link(id, MediaFile::Original, now);
        assert!(
            link.starts_with(&format!("/api/v1/media/{id}?exp=")),
            "{link}"
        );
        let (exp, sig) = parts(&link);
        assert!(exp > now + 1800 && exp <= now + 3600, "exp {exp}");
        assert_eq!(
            signer.check(id, MediaFile::Original, exp, &sig, now),
            Ok(())
        );
        assert_eq!(
            signer.check(id, MediaFile::Original, exp, &sig, exp),
            Ok(())
        );
        let late = signer.check(id, MediaFile::Original, exp, &sig, exp + 1);
        assert_eq!(late, Err(LinkError::Expired));
        // Another object, the other file, a moved expiry, a changed signature, garbage.
        let invalid = Err(LinkError::Invalid);
        assert_eq!(
            signer.check(other, MediaFile::Original, exp, &sig, now),
            invalid
        );
        assert_eq!(
            signer.check(id, MediaFile::Thumbnail, exp, &sig, now),
            invalid
        );
        assert_eq!(
            signer.check(id, MediaFile::Original, exp + 1, &sig, now),
            invalid
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&sig).expect("base64url");
        bytes[0] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(
            signer.check(id, MediaFile::Original, exp, &tampered, now),
            invalid
        );
        assert_eq!(
            signer.check(id, MediaFile::Original, exp, "!!", now),
            invalid
        );
        // Another deployment's key opens nothing here.
        let theirs = LinkSigner::new(b"another secret of thirty-two bytes!", 3600);
        let (exp, sig) = parts(&theirs.link(id, MediaFile::Original, now));
        assert_eq!(
            signer.check(id, MediaFile::Original, exp, &sig, now),
            invalid
        );
    }

    #[test]
    fn links_made_in_the_same_step_are_the_same_url() {
        let signer = LinkSigner::new(b"a secret of at least thirty-two bytes", 3600);
        let id = Uuid::now_v7();
        let start = 1_700_000_000 / 1800 * 1800;
        let first = signer.link(id, MediaFile::Thumbnail, start);
        assert_eq!(first, signer.link(id, MediaFile::Thumbnail, start + 1799));
        assert_ne!(first, signer.link(id, MediaFile::Thumbnail, start + 1800));
        // A lifetime of one second still makes links that live.
        let short = LinkSigner::new(b"a secret of at least thirty-two bytes", 1);
        let (exp, _) = parts(&short.link(id, MediaFile::Original, start));
        assert_eq!(exp, start + 1);
    }
}
