//! `[auth]`: how people log in: with a password or not, the second factor, and the
//! single sign-on (OpenID Connect) providers (docs/CONFIGURATION.md, "Login").

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[auth]`: password login, two-factor login and single sign-on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Register and log in with a password. With false, both answer 403
    /// `password_login_disabled` and only single sign-on logs in. Default true.
    pub password_login: bool,
    /// Administrators without two-factor login are refused the admin API (403
    /// `second_factor_required`) until they turn it on. Default false.
    pub require_second_factor_for_admins: bool,
    /// How long the second step of a login may wait after the password, seconds.
    /// Default 300.
    pub second_factor_ttl_secs: u64,
    /// The issuer shown in authenticator apps. Default `Palaver`.
    pub totp_issuer: String,
    /// The address people reach this server at, e.g. `https://chat.example.com`: single
    /// sign-on's redirect URI is `<public_url>/api/v1/auth/sso/<id>/callback`. Required
    /// with `sso` providers. Default none.
    pub public_url: Option<String>,
    /// How long a single sign-on login may take at the provider, seconds. Default 600.
    pub sso_flow_ttl_secs: u64,
    /// Single sign-on logins in progress at once, all providers together; past it a new
    /// one is answered 503 `unavailable`. Bounds the rows unauthenticated clients can
    /// make. Default 10000.
    pub max_pending_sso_flows: u32,
    /// The OpenID Connect providers, each a `[[auth.sso]]` table. Default none.
    pub sso: Vec<SsoProviderConfig>,
}

/// One OpenID Connect provider (`[[auth.sso]]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoProviderConfig {
    /// Its name in paths: 1-32 of a-z, 0-9, `-` and `_`.
    pub id: String,
    /// What the login button says, e.g. `Company login`.
    pub display_name: String,
    /// The issuer URL; `<issuer>/.well-known/openid-configuration` is read at start-up.
    pub issuer: String,
    pub client_id: String,
    /// None for a public client (PKCE only).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Scopes asked for besides `openid`. Default `["profile"]`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["profile".into()]
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            password_login: true,
            require_second_factor_for_admins: false,
            second_factor_ttl_secs: 300,
            totp_issuer: "Palaver".into(),
            public_url: None,
            sso_flow_ttl_secs: 600,
            max_pending_sso_flows: 10_000,
            sso: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// Rules that types cannot express.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let rule = |m: String| Err(ConfigError::Rule(format!("auth: {m}")));
        if self.second_factor_ttl_secs == 0
            || self.sso_flow_ttl_secs == 0
            || self.max_pending_sso_flows == 0
        {
            return rule(
                "second_factor_ttl_secs, sso_flow_ttl_secs and max_pending_sso_flows must be \
                 positive"
                    .into(),
            );
        }
        if self.totp_issuer.is_empty() || self.totp_issuer.contains(':') {
            return rule("totp_issuer must be non-empty and without ':'".into());
        }
        if !self.password_login && self.sso.is_empty() {
            return rule("password_login = false needs at least one [[auth.sso]] provider".into());
        }
        if !self.sso.is_empty() {
            let ok = self.public_url.as_deref().is_some_and(|u| {
                url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            });
            if !ok {
                return rule("public_url (an http(s) URL) is required with [[auth.sso]]".into());
            }
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.sso {
            let id_ok = (1..=32).contains(&p.id.len())
                && p.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !id_ok {
                return rule(format!(
                    "sso id {:?} must be 1-32 of a-z, 0-9, - and _",
                    p.id
                ));
            }
            if !seen.insert(p.id.as_str()) {
                return rule(format!("sso id {:?} is used twice", p.id));
            }
            if url::Url::parse(&p.issuer).is_err() || p.client_id.is_empty() {
                return rule(format!(
                    "sso {:?} needs an issuer URL and a client_id",
                    p.id
                ));
            }
        }
        Ok(())
    }

    /// The configuration with the providers' secrets blanked, for printing.
    pub(super) fn redacted(&self) -> AuthConfig {
        let mut c = self.clone();
        for p in &mut c.sso {
            if p.client_secret.is_some() {
                p.client_secret = Some("<redacted>".into());
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> AuthConfig {
        #[derive(Deserialize)]
        struct File {
            auth: AuthConfig,
        }
        toml::from_str::<File>(toml).expect("toml").auth
    }

    #[test]
    fn providers_are_read_and_checked() {
        let ok = parse(
            r#"
            [auth]
            public_url = "https://chat.example.com"
            [[auth.sso]]
            id = "corp"
            display_name = "Company login"
            issuer = "https://login.example.com"
            client_id = "palaver"
            client_secret = "s3cret"
            "#,
        );
        assert!(ok.check().is_ok());
        assert_eq!(ok.sso[0].scopes, ["profile"]);
        assert_eq!(
            ok.redacted().sso[0].client_secret.as_deref(),
            Some("<redacted>")
        );

        let mut no_url = ok.clone();
        no_url.public_url = None;
        assert!(no_url.check().is_err(), "a redirect URI needs public_url");
        let mut twice = ok.clone();
        twice.sso.push(ok.sso[0].clone());
        assert!(twice.check().is_err(), "ids are unique");
        let mut bad_id = ok.clone();
        bad_id.sso[0].id = "Corp/1".into();
        assert!(bad_id.check().is_err());
        let mut only_sso = ok.clone();
        only_sso.password_login = false;
        assert!(only_sso.check().is_ok());
        let nobody = AuthConfig {
            password_login: false,
            ..AuthConfig::default()
        };
        assert!(nobody.check().is_err(), "no way to log in at all");
        assert!(AuthConfig::default().check().is_ok());
    }
}
