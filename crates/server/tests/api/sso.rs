//! Single sign-on against a real OpenID Connect provider: `oidc-provider` (npm) on Node,
//! started here on a free port with its development login and consent pages
//! (tests/oidc/provider.mjs). A small cookie-keeping client plays the browser: it follows
//! every redirect, logs in at the provider's page and consents, and stops when it is sent
//! back to the web client (`/#sso=<code>` or `/#sso-error=<reason>`).
//!
//! Without node or the provider's packages (`npm ci` in crates/server/tests/oidc) the
//! tests print SKIPPED and pass, except under CI=true where they fail.

use std::collections::HashMap;

use palaver_proto::LoginResponse;
use palaver_server::config::SsoProviderConfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::oidc::{self, CLIENT_ID, CLIENT_SECRET, Provider};
use crate::support;

const PROVIDER: &str = "test";

/// A server with the provider configured as `test`, or `None` (skipped) without node.
async fn sso_app(tweak: impl FnOnce(&mut palaver_server::Config)) -> Option<(TestApp, Provider)> {
    if let Some(why) = oidc::missing() {
        support::skip("the single sign-on tests", &why);
        return None;
    }
    let port = oidc::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let provider =
        oidc::start_provider(&[format!("{base}/api/v1/auth/sso/{PROVIDER}/callback")]).await;
    let issuer = provider.issuer.clone();
    let app = spawn_app_with(|c| {
        c.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        c.auth.public_url = Some(base);
        c.auth.sso = vec![SsoProviderConfig {
            id: PROVIDER.into(),
            display_name: "Test login".into(),
            issuer,
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            scopes: vec!["profile".into()],
        }];
        tweak(c);
    })
    .await;
    Some((app, provider))
}

/// A browser, as far as these flows need one: cookies by name, no automatic redirects.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// Where a walk through the flow stopped.
#[derive(Debug)]
enum Stop {
    /// Sent back to the web client with this fragment (`sso=…` or `sso-error=…`).
    Fragment(String),
    /// About to call the server's callback (with `stop_at_callback`).
    Callback(String),
}

impl Browser {
    fn new() -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser {
            http,
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let resp = req
            .header(reqwest::header::COOKIE, cookie.join("; "))
            .send()
            .await
            .expect("request");
        for set in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let set = set.to_str().expect("ascii cookie");
            if let Some((name, rest)) = set.split_once('=') {
                let value = rest.split(';').next().unwrap_or("");
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        resp
    }

    /// `POST /auth/sso/test/link` as `user`, from this browser (which keeps the flow
    /// cookie, as the web client's fetch does).
    async fn link(&mut self, app: &TestApp, user: &TestUser) -> (u16, Value) {
        let url = format!("{}/api/v1/auth/sso/{PROVIDER}/link", app.base);
        let req = self.http.post(url).bearer_auth(&user.auth.access_token);
        let resp = self.send(req).await;
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json"))
    }

    /// Follows `url` through redirects and the provider's pages, logging in as `login`.
    async fn walk(&mut self, url: &str, login: &str, stop_at_callback: bool) -> Stop {
        let mut next = reqwest::Url::parse(url).expect("url");
        let mut form: Option<Vec<(String, String)>> = None;
        for _ in 0..20 {
            if stop_at_callback && next.path().ends_with("/callback") {
                return Stop::Callback(next.to_string());
            }
            if let Some(fragment) = next.fragment().filter(|f| f.starts_with("sso")) {
                return Stop::Fragment(fragment.to_owned());
            }
            let resp = match form.take() {
                Some(fields) => self.send(self.http.post(next.clone()).form(&fields)).await,
                None => self.send(self.http.get(next.clone())).await,
            };
            let status = resp.status().as_u16();
            if (300..400).contains(&status) {
                let location = resp.headers()[reqwest::header::LOCATION]
                    .to_str()
                    .expect("location")
                    .to_owned();
                next = next.join(&location).expect("location url");
                continue;
            }
            let body = resp.text().await.expect("body");
            assert_eq!(status, 200, "at {next}: {body}");
            // The provider's login or consent page: submit its form.
            let action = body
                .split("action=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_else(|| panic!("no form at {next}: {body}"));
            let mut fields: Vec<(String, String)> = body
                .split("<input type=\"hidden\" name=\"")
                .skip(1)
                .filter_map(|s| {
                    let (name, rest) = s.split_once('"')?;
                    let value = rest.split("value=\"").nth(1)?.split('"').next()?;
                    Some((name.to_owned(), value.to_owned()))
                })
                .collect();
            if body.contains("name=\"login\"") {
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), "any password".into()));
            }
            next = next.join(action).expect("form action");
            form = Some(fields);
        }
        panic!("the flow did not end within 20 steps");
    }
}

/// Logs in at the provider as `login`, from the login button: the fragment it ends with.
async fn sso_login(app: &TestApp, login: &str) -> String {
    let start = format!("{}/api/v1/auth/sso/{PROVIDER}/start", app.base);
    match Browser::new().walk(&start, login, false).await {
        Stop::Fragment(f) => f,
        other => panic!("{other:?}"),
    }
}

async fn exchange(app: &TestApp, fragment: &str) -> (u16, Value) {
    let code = fragment
        .strip_prefix("sso=")
        .unwrap_or_else(|| panic!("not logged in: {fragment}"));
    app.client()
        .raw(
            Method::POST,
            "/api/v1/auth/sso/exchange",
            Some(&json!({ "code": code })),
        )
        .await
        .expect("exchange")
}

async fn tokens(app: &TestApp, login: &str) -> palaver_proto::AuthResponse {
    let fragment = sso_login(app, login).await;
    let (status, body) = exchange(app, &fragment).await;
    assert_eq!(status, 200, "{body}");
    match serde_json::from_value::<LoginResponse>(body).expect("login response") {
        LoginResponse::Tokens(t) => t,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_first_login_makes_an_account_and_the_next_finds_it() {
    let Some((app, _provider)) = sso_app(|_| {}).await else {
        return;
    };
    // The login screen learns of the provider.
    let (_, methods) = app
        .client()
        .raw(Method::GET, "/api/v1/auth/methods", None)
        .await
        .expect("methods");
    assert_eq!(
        methods,
        json!({"password": true, "sso": [{"id": "test", "displayName": "Test login"}]})
    );

    let first = tokens(&app, "dana").await;
    assert_eq!(first.user.username, "dana");
    assert_eq!(first.user.display_name, "Dana");
    let me = app
        .client()
        .with_token(&first.access_token)
        .me()
        .await
        .expect("the session works");
    assert_eq!(me.id, first.user.id);
    let again = tokens(&app, "dana").await;
    assert_eq!(
        again.user.id, first.user.id,
        "the same subject, the same account"
    );

    // A password account of the same name is not someone's provider account: the
    // provider's "erin" gets an account of her own.
    let erin = app.user("erin").await;
    let theirs = tokens(&app, "erin").await;
    assert_ne!(theirs.user.id, erin.id);
    assert_eq!(theirs.user.username, "erin1");
    // And an SSO account has no password that logs in.
    let err = app
        .client()
        .login("dana", "!sso")
        .await
        .expect_err("no password");
    assert_eq!(
        err.code(),
        Some(palaver_proto::ErrorCode::InvalidCredentials)
    );
}

#[tokio::test]
async fn the_one_time_code_and_the_callback_work_once() {
    let Some((app, _provider)) = sso_app(|_| {}).await else {
        return;
    };
    let start = format!("{}/api/v1/auth/sso/{PROVIDER}/start", app.base);
    let mut browser = Browser::new();
    let Stop::Callback(callback) = browser.walk(&start, "fay", true).await else {
        panic!("expected the callback");
    };
    let location = |resp: reqwest::Response| {
        assert_eq!(resp.status().as_u16(), 303);
        resp.headers()[reqwest::header::LOCATION]
            .to_str()
            .expect("location")
            .to_owned()
    };
    // A state that is not the flow's: refused, and the real one still works.
    let mut forged = reqwest::Url::parse(&callback).expect("url");
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = match k == "state" {
                true => "forged".to_owned(),
                false => v.into_owned(),
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let got = location(browser.send(browser.http.get(forged)).await);
    assert_eq!(got, "/#sso-error=invalid_state");
    // The callback URL opened in another browser (someone lured there, to be logged in
    // as whoever made the URL): its flow cookie is missing, so it is refused.
    let elsewhere = location(
        Browser::new()
            .send(Browser::new().http.get(&callback))
            .await,
    );
    assert_eq!(elsewhere, "/#sso-error=invalid_state");
    let got = location(browser.send(browser.http.get(&callback)).await);
    let fragment = got.strip_prefix("/#").expect("fragment").to_owned();
    assert!(fragment.starts_with("sso="), "{got}");
    // The same callback again (a replay): its state is spent.
    let replay = location(browser.send(browser.http.get(&callback)).await);
    assert_eq!(replay, "/#sso-error=invalid_state");
    // The code logs in once; then it is gone.
    let (status, _) = exchange(&app, &fragment).await;
    assert_eq!(status, 200);
    let (status, body) = exchange(&app, &fragment).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized")),
        "{body}"
    );
    let (status, body) = exchange(&app, "sso=made-up").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized")),
        "{body}"
    );

    // The provider's refusal ends the flow as refused.
    let mut browser = Browser::new();
    let Stop::Callback(callback) = browser.walk(&start, "fay", true).await else {
        panic!("expected the callback");
    };
    let mut refused = reqwest::Url::parse(&callback).expect("url");
    let state = refused
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    refused
        .query_pairs_mut()
        .clear()
        .append_pair("error", "access_denied")
        .append_pair("state", &state);
    assert_eq!(
        location(browser.send(browser.http.get(refused)).await),
        "/#sso-error=refused"
    );
    assert_eq!(
        location(browser.send(browser.http.get(&callback)).await),
        "/#sso-error=invalid_state"
    );
}

#[tokio::test]
async fn unknown_providers_and_malformed_input_are_refused() {
    let Some((app, _provider)) = sso_app(|_| {}).await else {
        return;
    };
    let client = app.client();
    for (method, path) in [
        (Method::GET, "/api/v1/auth/sso/nope/start"),
        (Method::GET, "/api/v1/auth/sso/nope/callback?code=x&state=y"),
    ] {
        let (status, body) = client.raw(method, path, None).await.expect("request");
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("not_found")),
            "{path}: {body}"
        );
    }
    let alice = app.user("alice").await;
    let (status, body) = alice
        .api
        .raw(Method::POST, "/api/v1/auth/sso/nope/link", None)
        .await
        .expect("link");
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    // Linking needs a token; the exchange needs a body.
    let (status, _) = client
        .raw(Method::POST, "/api/v1/auth/sso/test/link", None)
        .await
        .expect("link");
    assert_eq!(status, 401);
    let (status, _) = client
        .raw(Method::POST, "/api/v1/auth/sso/exchange", Some(&json!({})))
        .await
        .expect("exchange");
    assert_eq!(status, 400);
    // A callback without a state, or with a huge one.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for query in [
        "",
        "?code=abc",
        &format!("?code=abc&state={}", "s".repeat(600)),
    ] {
        let resp = plain
            .get(format!("{}/api/v1/auth/sso/test/callback{query}", app.base))
            .send()
            .await
            .expect("callback");
        assert_eq!(resp.status().as_u16(), 303, "{query}");
        assert_eq!(
            resp.headers()[reqwest::header::LOCATION],
            "/#sso-error=invalid_state"
        );
    }
}

#[tokio::test]
async fn with_password_login_off_only_single_sign_on_logs_in() {
    let Some((app, _provider)) = sso_app(|c| c.auth.password_login = false).await else {
        return;
    };
    let (status, body) = app
        .client()
        .raw(
            Method::POST,
            "/api/v1/auth/register",
            Some(&json!({"username": "gus", "password": PASSWORD})),
        )
        .await
        .expect("register");
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("password_login_disabled"))
    );
    let (_, methods) = app
        .client()
        .raw(Method::GET, "/api/v1/auth/methods", None)
        .await
        .expect("methods");
    assert_eq!(methods["password"], false);
    let gus = tokens(&app, "gus").await;
    assert_eq!(gus.user.username, "gus");
}

#[tokio::test]
async fn a_logged_in_user_links_a_provider_from_settings() {
    let Some((app, _provider)) = sso_app(|_| {}).await else {
        return;
    };
    let hana = app.user("hana").await;
    let mut browser = Browser::new();
    let (status, body) = browser.link(&app, &hana).await;
    assert_eq!(status, 200, "{body}");
    let url = body["url"].as_str().expect("url");
    let Stop::Fragment(fragment) = browser.walk(url, "hana-at-work", false).await else {
        panic!("expected the web client");
    };
    let (status, body) = exchange(&app, &fragment).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], json!(hana.id));
    // From now on the provider's user logs in as hana.
    let linked = tokens(&app, "hana-at-work").await;
    assert_eq!(linked.user.id, hana.id);
    // Someone else cannot link the same provider user to their account.
    let ivan = app.user("ivan").await;
    let mut browser = Browser::new();
    let (_, body) = browser.link(&app, &ivan).await;
    let url = body["url"].as_str().expect("url");
    let Stop::Fragment(fragment) = browser.walk(url, "hana-at-work", false).await else {
        panic!("expected the web client");
    };
    assert_eq!(fragment, "sso-error=already_linked");
}

#[tokio::test]
async fn an_account_with_two_factor_login_still_needs_its_code() {
    let Some((app, _provider)) = sso_app(|_| {}).await else {
        return;
    };
    let first = tokens(&app, "jo").await;
    let api = app.client().with_token(&first.access_token);
    let (_, enrolment) = api
        .raw(Method::POST, "/api/v1/auth/totp/enrol", None)
        .await
        .expect("enrol");
    let totp =
        totp_rs::Totp::from_url(enrolment["otpauthUri"].as_str().expect("uri")).expect("uri");
    let (status, _) = api
        .raw(
            Method::POST,
            "/api/v1/auth/totp/confirm",
            Some(&json!({"code": totp.generate_current().to_string()})),
        )
        .await
        .expect("confirm");
    assert_eq!(status, 200);
    let fragment = sso_login(&app, "jo").await;
    let (status, body) = exchange(&app, &fragment).await;
    assert_eq!(status, 200);
    assert!(body["secondFactor"]["challenge"].is_string(), "{body}");
}
