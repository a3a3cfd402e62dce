//! Access-token validation (`Tokens::verify`), the check behind every request and socket.
//!
//! The first byte picks a mode, the rest is the input:
//! - 0: the rest is a token as a client sends it;
//! - 1: the rest is `header 0xFF claims` (or only claims, under an HS256 header), signed
//!   with the server's key: the claims and header are the fuzzer's;
//! - 2: as 1, but signed with another key, or not signed at all.
//!
//! Checks: no panic; a token is accepted only if it is HS256, signed with the server's
//! key, for the right audience and issuer, and not expired; the identity returned is the
//! one in the claims.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use palaver_server::service::Tokens;
use serde_json::Value;
use sha2::Sha256;

/// The key the fuzzed server signs with; the seed tokens in corpus/token use it too.
const KEY: &[u8] = b"palaver-fuzzing-key-not-a-secret";
const OTHER_KEY: &[u8] = b"palaver-fuzzing-key-not-a-secreT";
/// The server's `Validation::leeway`.
const LEEWAY_SECS: u64 = 5;

fn sign(key: &[u8], input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn decode_part(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// What must hold of a token `verify` accepted, checked without jsonwebtoken.
fn assert_acceptable(tokens: &Tokens, token: &str) {
    let Ok(who) = tokens.verify(token) else {
        return;
    };
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "accepted {token:?}");
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap_or_else(|_| panic!("accepted a signature that is not base64url: {token:?}"));
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    assert_eq!(
        signature,
        sign(KEY, &signing_input),
        "accepted a forged token {token:?}"
    );
    let header = decode_part(parts[0]).expect("accepted header is JSON");
    assert_eq!(header["alg"], "HS256", "accepted {token:?}");
    let claims = decode_part(parts[1]).expect("accepted claims are JSON");
    let aud_ok = match &claims["aud"] {
        Value::String(aud) => aud == "palaver",
        Value::Array(auds) => auds.iter().any(|a| a == "palaver"),
        _ => false,
    };
    assert!(aud_ok, "accepted audience {:?}", claims["aud"]);
    assert_eq!(claims["iss"], "palaver", "accepted issuer");
    let exp = claims["exp"]
        .as_u64()
        .or_else(|| claims["exp"].as_f64().map(|f| f as u64));
    let exp = exp.unwrap_or_else(|| panic!("accepted exp {:?}", claims["exp"]));
    assert!(exp + LEEWAY_SECS >= now_secs(), "accepted an expired token");
    let sub: uuid::Uuid = claims["sub"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("sub");
    let sid: uuid::Uuid = claims["sid"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("sid");
    assert_eq!((who.user_id, who.session_id), (sub, sid));
}

/// `header.claims.signature` with the given parts.
fn assemble(rest: &[u8], key: Option<&[u8]>) -> String {
    let (header, claims) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], rest),
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = key
        .map(|k| URL_SAFE_NO_PAD.encode(sign(k, &signing_input)))
        .unwrap_or_default();
    format!("{signing_input}.{signature}")
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let tokens = Tokens::new(KEY, 900, 86_400);
    match mode % 3 {
        0 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                assert_acceptable(&tokens, token);
            }
        }
        1 => assert_acceptable(&tokens, &assemble(rest, Some(KEY))),
        _ => {
            for key in [Some(OTHER_KEY), Some(&b""[..]), None] {
                let token = assemble(rest, key);
                assert!(
                    tokens.verify(&token).is_err(),
                    "accepted {token:?} signed with {key:?}"
                );
            }
        }
    }
});
