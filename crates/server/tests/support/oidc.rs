//! The OpenID Connect provider of the single sign-on tests: `oidc-provider` (npm) on
//! Node, with its development login and consent pages (tests/oidc/provider.mjs), on a
//! free loopback port. Included by the api suite and the web client's end-to-end test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

pub const CLIENT_ID: &str = "palaver";
pub const CLIENT_SECRET: &str = "palaver-test-client-secret";

/// The provider process, stopped when dropped.
pub struct Provider {
    _child: tokio::process::Child,
    pub issuer: String,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Why the provider cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".into());
    }
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider").is_dir() {
        return Some(format!(
            "oidc-provider is not installed (npm ci in {})",
            dir.display()
        ));
    }
    None
}

/// Starts the provider with a client whose redirect URIs are `redirects`.
pub async fn start_provider(redirects: &[String]) -> Provider {
    let mut child = tokio::process::Command::new("node")
        .current_dir(provider_dir())
        .arg("provider.mjs")
        .arg(CLIENT_ID)
        .arg(CLIENT_SECRET)
        .args(redirects)
        // It stops when its stdin closes: with this test, however it ends.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read provider") {
            if let Some(port) = line.strip_prefix("listening ") {
                return port.trim().parse::<u16>().expect("port");
            }
        }
        panic!("the provider exited before listening");
    })
    .await
    .expect("the provider starts");
    // Whatever it prints later is read (and dropped): a closed pipe would kill it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Provider {
        _child: child,
        issuer: format!("http://127.0.0.1:{port}"),
    }
}

/// A free loopback port for the server: the provider must know its redirect URI before
/// the server starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
