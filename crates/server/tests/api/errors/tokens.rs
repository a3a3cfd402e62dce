//! Forged and expired tokens: `alg: none`, another key or algorithm, algorithm confusion,
//! a swapped payload, the wrong audience or issuer, missing claims, an expired token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use palaver_client::ClientError;
use palaver_proto::ErrorCode;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;

use super::assert_api_error;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a real token (without checking it).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("claims JSON")
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn sign(alg: Algorithm, claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).expect("sign")
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let secret = std::fs::read_to_string(app.data_dir().join("jwt-secret")).expect("jwt-secret");
    let key = secret.trim().as_bytes().to_vec();
    let real = claims_of(&alice.auth.access_token);
    assert_eq!(real["sub"], alice.id.to_string());
    let claims = |patch: Value| -> Value {
        let now = now_secs();
        let mut c = json!({
            "sub": alice.id, "sid": real["sid"].clone(), "iat": now, "exp": now + 600,
            "aud": "palaver", "iss": "palaver",
        });
        for (k, v) in patch.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let me = |token: String| {
        let client = app.client().with_token(token);
        async move {
            client
                .raw(Method::GET, "/api/v1/users/me", None)
                .await
                .expect("request")
        }
    };

    // Control: a token built here the way the server builds them is accepted, so the
    // refusals below are about the one thing each gets wrong.
    let (status, body) = me(sign(Algorithm::HS256, &claims(json!({})), &key)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], alice.id.to_string());

    // alg: none, with no signature or with a real one.
    let payload = b64(claims(json!({})).to_string().as_bytes());
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None"}),
        json!({"alg": "NONE", "typ": "JWT"}),
    ] {
        let h = b64(header.to_string().as_bytes());
        assert_api_error(me(format!("{h}.{payload}.")).await, 401, "unauthorized");
        assert_api_error(me(format!("{h}.{payload}")).await, 401, "unauthorized");
        let real_sig = alice
            .auth
            .access_token
            .rsplit('.')
            .next()
            .expect("signature");
        assert_api_error(
            me(format!("{h}.{payload}.{real_sig}")).await,
            401,
            "unauthorized",
        );
    }

    // The right claims signed with another key, or another algorithm.
    assert_api_error(
        me(sign(
            Algorithm::HS256,
            &claims(json!({})),
            b"not the server's key",
        ))
        .await,
        401,
        "unauthorized",
    );
    assert_api_error(
        me(sign(Algorithm::HS512, &claims(json!({})), &key)).await,
        401,
        "unauthorized",
    );
    assert_api_error(
        me(sign(Algorithm::HS384, &claims(json!({})), &key)).await,
        401,
        "unauthorized",
    );
    // Algorithm confusion: a header naming a public-key algorithm, "signed" with HMAC
    // over the server's secret (what a verifier that trusts the header's `alg` and uses
    // its one key for everything would accept).
    for alg in ["RS256", "ES256", "PS256", "EdDSA"] {
        let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        let signing_input = format!("{header}.{payload}");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac key");
        mac.update(signing_input.as_bytes());
        let sig = b64(&mac.finalize().into_bytes());
        assert_api_error(
            me(format!("{signing_input}.{sig}")).await,
            401,
            "unauthorized",
        );
    }

    // A real token with its payload swapped for another user's.
    let bob = app.user("bob").await;
    let mut parts: Vec<&str> = alice.auth.access_token.split('.').collect();
    let forged_payload = b64(claims(json!({"sub": bob.id})).to_string().as_bytes());
    parts[1] = &forged_payload;
    assert_api_error(me(parts.join(".")).await, 401, "unauthorized");

    // The right key, but the wrong audience or issuer, or claims missing.
    assert_api_error(
        me(sign(
            Algorithm::HS256,
            &claims(json!({"aud": "other"})),
            &key,
        ))
        .await,
        401,
        "unauthorized",
    );
    assert_api_error(
        me(sign(
            Algorithm::HS256,
            &claims(json!({"iss": "other"})),
            &key,
        ))
        .await,
        401,
        "unauthorized",
    );
    for missing in ["exp", "aud", "iss", "sub", "sid"] {
        let mut c = claims(json!({}));
        c.as_object_mut().expect("object").remove(missing);
        assert_api_error(
            me(sign(Algorithm::HS256, &c, &key)).await,
            401,
            "unauthorized",
        );
    }

    // The right key and claims, but expired (well past the leeway): token_expired.
    let expired = sign(
        Algorithm::HS256,
        &claims(json!({"iat": now_secs() - 7200, "exp": now_secs() - 3600})),
        &key,
    );
    assert_api_error(me(expired.clone()).await, 401, "token_expired");
    let err = app
        .client()
        .with_token(&expired)
        .connect()
        .await
        .err()
        .expect("socket refused");
    assert!(
        matches!(
            err,
            ClientError::Api {
                status: 401,
                code: ErrorCode::TokenExpired,
                ..
            }
        ),
        "{err:?}"
    );
    let forged = sign(
        Algorithm::HS256,
        &claims(json!({})),
        b"not the server's key",
    );
    let err = app
        .client()
        .with_token(&forged)
        .connect()
        .await
        .err()
        .expect("socket refused");
    assert!(
        matches!(
            err,
            ClientError::Api {
                status: 401,
                code: ErrorCode::Unauthorized,
                ..
            }
        ),
        "{err:?}"
    );
}
