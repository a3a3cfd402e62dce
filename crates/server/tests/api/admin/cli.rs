//! `palaver admin`, the built binary: against the data directory while the server runs,
//! against a running server with a token, and on a cluster's engines.

use std::path::Path;
use std::process::Stdio;

use palaver_proto::{AdminUser, AdminUserList, AuditLog};
use reqwest::Method;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::*;

/// Runs `palaver admin ARGS` with `stdin` on standard input; its standard output, or a
/// panic with its standard error when it fails.
async fn palaver_admin(args: &[&str], envs: &[(&str, &str)], stdin: &str) -> String {
    let (ok, out, err) = palaver_admin_status(args, envs, stdin).await;
    assert!(ok, "palaver admin {args:?} failed: {err}");
    out
}

async fn palaver_admin_status(
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: &str,
) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palaver"));
    cmd.arg("admin")
        .args(args)
        .env_remove("PALAVER_TOKEN")
        .env("PALAVER_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("palaver admin runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("stdin");
    drop(input);
    let out = tokio::time::timeout(WAIT * 3, child.wait_with_output())
        .await
        .expect("palaver admin ends")
        .expect("palaver admin output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn data_dir_args(dir: &Path) -> Vec<String> {
    vec!["--data-dir".into(), dir.display().to_string()]
}

#[tokio::test]
async fn against_the_data_directory_while_the_server_runs() {
    if crate::CLUSTER_ENGINES {
        // The data directory holds no database there; the cluster test below opens the
        // engines instead.
        return;
    }
    let (app, admin, bob) = with_admin().await;
    let dir = data_dir_args(app.data_dir());
    let with = |more: &[&'static str]| -> Vec<String> {
        let mut args = dir.clone();
        args.extend(more.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: Vec<String>, stdin: &'static str| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        palaver_admin(&args, &[], stdin).await
    };

    let list: AdminUserList =
        serde_json::from_str(&run(with(&["--json", "users"]), "").await).expect("users json");
    let names: Vec<_> = list
        .users
        .iter()
        .map(|u| u.user.username.as_str())
        .collect();
    assert_eq!(names, ["admin", "bob"]);
    assert!(list.users[0].is_admin);

    // Disabling bob here: the running server refuses his login at once (it reads the
    // account), and his sessions are revoked in the database.
    let text = run(with(&["disable", "bob"]), "").await;
    assert!(text.contains("disabled"), "{text}");
    let body = serde_json::json!({"username": "bob", "password": PASSWORD});
    let got = app
        .client()
        .raw(Method::POST, "/api/v1/auth/login", Some(&body))
        .await
        .expect("login");
    assert_error(&got, 403, "account_disabled");
    let err = app
        .client()
        .refresh(&bob.auth.refresh_token)
        .await
        .expect_err("refresh");
    assert_eq!(err.code(), Some(palaver_proto::ErrorCode::Unauthorized));
    run(with(&["enable", "bob"]), "").await;
    app.client()
        .login("bob", PASSWORD)
        .await
        .expect("login again");

    // Create with a password on standard input, then promote.
    let made: AdminUser = serde_json::from_str(
        &run(
            with(&["--json", "create", "dora", "--password-stdin"]),
            "correct horse battery\n",
        )
        .await,
    )
    .expect("created json");
    assert_eq!(made.user.username, "dora");
    app.client()
        .login("dora", PASSWORD)
        .await
        .expect("dora logs in");
    let promoted: AdminUser =
        serde_json::from_str(&run(with(&["--json", "promote", "dora"]), "").await).expect("json");
    assert!(promoted.is_admin);

    // What the command line did is audited with no actor, as the command line.
    let log: AuditLog = serde_json::from_str(
        &run(
            with(&["--json", "audit", "--action", "admin.user_disable"]),
            "",
        )
        .await,
    )
    .expect("audit json");
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].actor, None);
    assert!(
        log.entries[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .starts_with("command line")
    );
    assert_eq!(log.entries[0].target, Some(bob.id.to_string()));

    // Refusals are the service's: the last administrator cannot be demoted.
    run(with(&["demote", "dora"]), "").await;
    let args = with(&["demote", "admin"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, err) = palaver_admin_status(&args, &[], "").await;
    assert!(!ok);
    assert!(err.contains("last enabled administrator"), "{err}");
    let me = admin.api.me_with_role().await.expect("me");
    assert!(me.is_admin);
}

#[tokio::test]
async fn against_a_running_server_with_a_token() {
    let (app, admin, bob) = with_admin().await;
    let server = app.base.clone();
    let token = admin.auth.access_token.clone();
    let mut socket = bob.connect().await;

    // The token from the environment.
    let env = [("PALAVER_TOKEN", token.as_str())];
    let list: AdminUserList = serde_json::from_str(
        &palaver_admin(&["--server", &server, "--json", "users"], &env, "").await,
    )
    .expect("users json");
    assert_eq!(list.users.len(), 2);
    let out = palaver_admin(
        &["--server", &server, "--token", &token, "disable", "bob"],
        &[],
        "",
    )
    .await;
    assert!(out.contains("bob") && out.contains("disabled"), "{out}");
    session_ended(&mut socket).await;
    let got = call(&bob, Method::GET, "/api/v1/users/me", None).await;
    assert_error(&got, 401, "unauthorized");
    palaver_admin(
        &[
            "--server",
            &server,
            "--token",
            &token,
            "enable",
            &bob.id.to_string(),
        ],
        &[],
        "",
    )
    .await;
    let bob_again = app.client().login("bob", PASSWORD).await.expect("login");

    palaver_admin(
        &[
            "--server",
            &server,
            "--token",
            &token,
            "password",
            "bob",
            "--password-stdin",
        ],
        &[],
        "staple orbit lantern 7 meadow\n",
    )
    .await;
    let got = app
        .client()
        .with_token(&bob_again.access_token)
        .raw(Method::GET, "/api/v1/users/me", None)
        .await
        .expect("me");
    assert_error(&got, 401, "unauthorized");
    app.client()
        .login("bob", OTHER_PASSWORD)
        .await
        .expect("new password");

    let log: AuditLog = serde_json::from_str(
        &palaver_admin(
            &[
                "--server", &server, "--token", &token, "--json", "audit", "--actor", "admin",
                "--limit", "3",
            ],
            &[],
            "",
        )
        .await,
    )
    .expect("audit json");
    let actions: Vec<_> = log.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "admin.password_reset",
            "admin.user_enable",
            "admin.user_disable"
        ],
        "{log:?}"
    );
    assert!(log.entries.iter().all(|e| e.actor == Some(admin.id)));

    // Without an administrator's token: refused, as the API refuses.
    let bob_token = app
        .client()
        .login("bob", OTHER_PASSWORD)
        .await
        .expect("login")
        .access_token;
    let (ok, _, err) = palaver_admin_status(
        &["--server", &server, "--token", &bob_token, "users"],
        &[],
        "",
    )
    .await;
    assert!(!ok);
    assert!(err.contains("forbidden"), "{err}");
    let (ok, _, err) = palaver_admin_status(&["--server", &server, "users"], &[], "").await;
    assert!(!ok);
    assert!(err.contains("PALAVER_TOKEN"), "{err}");
}

#[tokio::test]
async fn against_the_cluster_engines_it_ends_sessions_on_running_nodes() {
    let Some((engines, ns, node_a, node_b)) = super::super::cluster::two_nodes().await else {
        return;
    };
    let _admin = node_a.user("admin").await;
    let bob = node_b.user("bob").await;
    let mut socket = bob.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().display().to_string();
    let args = [
        "--data-dir",
        &dir,
        "--store",
        &engines.store,
        "--bus",
        &engines.bus,
        "--cache",
        &engines.cache,
        "disable",
        "bob",
    ];
    let envs = [
        ("PALAVER_NAMESPACE", ns.as_str()),
        (
            "PALAVER_JWT_SECRET",
            "one secret for every node of this cluster, 32+ bytes",
        ),
    ];
    palaver_admin(&args, &envs, "").await;
    // The command line is no node, yet the socket on node B closes and the token is
    // refused on both nodes at once: through NATS and Redis.
    session_ended(&mut socket).await;
    for node in [&node_a, &node_b] {
        let got = node
            .client()
            .with_token(&bob.auth.access_token)
            .raw(Method::GET, "/api/v1/users/me", None)
            .await
            .expect("me");
        assert_error(&got, 401, "unauthorized");
    }
}

#[tokio::test]
async fn reports_are_read_and_closed_from_the_command_line() {
    let (app, admin, bob) = with_admin().await;
    let carol = app.user("carol").await;
    let room = bob.dm(&carol).await;
    let sent = bob.send(room.id, "buy my stuff").await;
    let report = carol
        .api
        .report_message(sent.id, "spam")
        .await
        .expect("report");
    let server = app.base.clone();
    let token = admin.auth.access_token.clone();
    let remote = ["--server", server.as_str(), "--token", token.as_str()];

    let text = palaver_admin(&[&remote[..], &["reports"]].concat(), &[], "").await;
    assert!(
        text.contains(&report.id.to_string()) && text.contains("buy my stuff"),
        "{text}"
    );
    let closed: palaver_proto::Report = serde_json::from_str(
        &palaver_admin(
            &[&remote[..], &["--json", "dismiss", &report.id.to_string()]].concat(),
            &[],
            "",
        )
        .await,
    )
    .expect("report json");
    assert_eq!(closed.status, palaver_proto::ReportStatus::Dismissed);
    let open: palaver_proto::ReportList = serde_json::from_str(
        &palaver_admin(&[&remote[..], &["--json", "reports"]].concat(), &[], "").await,
    )
    .expect("list json");
    assert!(open.reports.is_empty());
    if !crate::CLUSTER_ENGINES {
        let dir = app.data_dir().display().to_string();
        let all: palaver_proto::ReportList = serde_json::from_str(
            &palaver_admin(
                &["--data-dir", &dir, "--json", "reports", "--status", "all"],
                &[],
                "",
            )
            .await,
        )
        .expect("list json");
        assert_eq!(all.reports.len(), 1);
        assert_eq!(all.reports[0].closed_by, Some(admin.id));
    }
}
