//! Accounts and sessions: register, login, profiles, refresh-token rotation, logout,
//! login rate limits and the audit log.
//!
//! The parts: `register` (registering and logging in), `profile` (profiles and display
//! names), `sessions` (refresh, logout and the audit log) and `login_limits` (the login
//! path against a hostile client), `second_factor` (two-factor login).

use reqwest::Method;
use serde_json::Value;

mod data;
mod login_limits;
mod profile;
mod register;
mod second_factor;
mod sessions;

/// Asserts an HTTP answer is the error shape with this status and code.
#[track_caller]
fn assert_api_error(got: (u16, Value), status: u16, code: &str) {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "status; body: {body}");
    assert_eq!(body["error"]["code"], code, "error code; body: {body}");
    assert!(
        body["error"]["message"].is_string(),
        "error message; body: {body}"
    );
}

async fn post(client: &palaver_client::Client, path: &str, body: Value) -> (u16, Value) {
    client
        .raw(Method::POST, path, Some(&body))
        .await
        .expect("request")
}

async fn get(client: &palaver_client::Client, path: &str) -> (u16, Value) {
    client.raw(Method::GET, path, None).await.expect("request")
}
