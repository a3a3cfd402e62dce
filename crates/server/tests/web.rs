//! End-to-end tests of the web client: the real server on a random port, driven by
//! headless Chromium through playwright-core (web-tests/e2e.mjs). Without node,
//! playwright-core (`npm ci` in web-tests/) or Chromium the test prints SKIPPED and
//! passes, except under CI=true, where it fails.
//! WEB_E2E_SCREENSHOTS=<dir> keeps the screenshots the script takes. With the single
//! sign-on tests' OpenID provider installed (`npm ci` in tests/oidc), the server has it as
//! a provider and the script logs in through it too.

#[path = "support/oidc.rs"]
mod oidc;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use palaver_server::config::RateLimits;
use palaver_server::{Application, Config};

fn missing(dir: &Path, chromium: &str) -> Option<String> {
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".into());
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        return Some(format!(
            "playwright-core is not installed (npm ci in {})",
            dir.display()
        ));
    }
    if !Path::new(chromium).exists() {
        return Some(format!(
            "{chromium} is not installed (apt-get install chromium)"
        ));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn web_client_end_to_end() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web-tests");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if let Some(why) = missing(&dir, &chromium) {
        support::skip("the web client's end-to-end tests", &why);
        return;
    }

    let data = tempfile::tempdir().expect("tempdir");
    // The script seeds 500 messages and registers several users quickly.
    let lots = 1_000_000;
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: data.path().to_path_buf(),
        insecure_fast_password_hashing: true,
        rate_limits: RateLimits::all(lots),
        // The script's messages link to example.com: no test reads pages off this machine
        // (tests/api/previews/ serves its own on loopback).
        link_previews: palaver_server::config::LinkPreviewConfig {
            enabled: false,
            ..Default::default()
        },
        ..Config::default()
    };
    // Single sign-on through a real provider, whose client must know the server's address
    // before it starts.
    let mut config = config;
    let provider = match oidc::missing() {
        Some(why) => {
            support::skip("the web client's single sign-on scenario", &why);
            None
        }
        None => {
            let port = oidc::free_port();
            let public = format!("http://127.0.0.1:{port}");
            let provider =
                oidc::start_provider(&[format!("{public}/api/v1/auth/sso/test/callback")]).await;
            config.listen = format!("127.0.0.1:{port}").parse().expect("addr");
            config.auth.public_url = Some(public);
            config.auth.sso = vec![palaver_server::config::SsoProviderConfig {
                id: "test".into(),
                display_name: "Test login".into(),
                issuer: provider.issuer.clone(),
                client_id: oidc::CLIENT_ID.into(),
                client_secret: Some(oidc::CLIENT_SECRET.into()),
                scopes: vec!["profile".into()],
            }];
            Some(provider)
        }
    };
    let app = Application::build(config).await.expect("build app");
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stopped.await;
        })
        .await
        .expect("server run");
    });

    let shots = std::env::var("WEB_E2E_SCREENSHOTS").ok();
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(&dir).arg("e2e.mjs").arg(&base);
    if let Some(s) = &shots {
        cmd.arg(s);
    }
    cmd.env("CHROMIUM", &chromium).kill_on_drop(true);
    if provider.is_some() {
        cmd.env("E2E_SSO", "1");
    }
    let status = tokio::time::timeout(Duration::from_secs(300), cmd.status())
        .await
        .expect("e2e finishes within 5 minutes")
        .expect("run node");
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(
        status.success(),
        "web client end-to-end tests failed (output above)"
    );
}
