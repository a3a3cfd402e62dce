//! Logging in beyond a password: the second-step challenge of two-factor login (TOTP
//! with recovery codes), enrolling and removing the second factor, and single sign-on
//! (OpenID Connect) providers and their one-time login codes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::AuthResponse;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// `POST /api/v1/auth/login` (and `POST /api/v1/auth/sso/exchange`): the tokens, or, for
/// an account with two-factor login, a challenge to answer at
/// `POST /api/v1/auth/login/second-factor`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(untagged)]
pub enum LoginResponse {
    /// Logged in.
    Tokens(AuthResponse),
    /// The password was right; a second factor is needed.
    SecondFactor {
        #[serde(rename = "secondFactor")]
        second_factor: SecondFactorChallenge,
    },
}

/// What the second step of a login needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecondFactorChallenge {
    /// Opaque; sent back with the code.
    pub challenge: String,
    /// What may answer it: `totp` (a 6-digit code from the authenticator app) and
    /// `recovery` (one of the single-use recovery codes).
    pub methods: Vec<String>,
    /// After this the challenge is refused: log in again.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/v1/auth/login/second-factor`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecondFactorRequest {
    /// `secondFactor.challenge` from the login answer.
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub challenge: String,
    /// A 6-digit TOTP code, or a recovery code (`xxxx-xxxx-xxxx-xxxx`; case, spaces and
    /// dashes do not matter).
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub code: String,
}

/// `GET /api/v1/auth/totp`: whether the caller has two-factor login.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TotpStatus {
    /// A confirmed authenticator: logins ask for a code.
    pub enabled: bool,
    /// Recovery codes not used yet (0 when not enabled).
    pub recovery_codes_left: u32,
}

/// `POST /api/v1/auth/totp/enrol`: a new secret, to be put in an authenticator app and
/// confirmed with one of its codes. Shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrolment {
    /// The secret, base32 (for typing into an app).
    pub secret: String,
    /// `otpauth://totp/…` (SHA-1, 6 digits, 30 s: what every app supports).
    pub otpauth_uri: String,
    /// The URI as a QR code: a `data:image/png;base64,…` URL.
    pub qr_png: String,
}

/// `POST /api/v1/auth/totp/confirm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TotpConfirmRequest {
    /// The app's current 6-digit code.
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub code: String,
}

/// The recovery codes: each logs in once in place of a TOTP code. Shown once; only
/// their hashes are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// `DELETE /api/v1/auth/totp`: turning two-factor login off needs the password or a
/// current code (TOTP or recovery).
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RemoveTotpRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub password: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub code: Option<String>,
}

/// An object only: serde's derive would also take a JSON array (`[null, null]`) for a
/// struct, and with both fields optional any array of two would pass.
impl<'de> Deserialize<'de> for RemoveTotpRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            #[serde(default)]
            password: Option<String>,
            #[serde(default)]
            code: Option<String>,
        }
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = RemoveTotpRequest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object with `password` or `code`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let f = Fields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RemoveTotpRequest {
                    password: f.password,
                    code: f.code,
                })
            }
        }
        d.deserialize_map(Object)
    }
}

/// One configured single sign-on provider, as the login screen shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SsoProvider {
    /// Its name in the paths (`/api/v1/auth/sso/{provider}/start`).
    pub id: String,
    pub display_name: String,
}

/// `GET /api/v1/auth/methods`: how this server lets people log in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LoginMethods {
    /// Whether register and login with a password are on.
    pub password: bool,
    pub sso: Vec<SsoProvider>,
}

/// `POST /api/v1/auth/sso/exchange`: the one-time code the callback handed the browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SsoExchangeRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub code: String,
}

/// `POST /api/v1/auth/sso/{provider}/link`: where to send the browser to link the
/// provider to the caller's account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SsoStart {
    /// The provider's authorization page.
    pub url: String,
}

/// The query the provider redirects back with (`GET /api/v1/auth/sso/{provider}/callback`).
/// Other parameters (`iss`, `session_state`…) are ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct SsoCallbackQuery {
    /// The authorization code, on success.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 2048))]
    pub code: Option<String>,
    /// The flow's state, as sent to the provider.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 512))]
    pub state: Option<String>,
    /// The provider's error, when the login did not happen (`access_denied`…).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 256))]
    pub error: Option<String>,
}
