//! Configuration precedence: defaults < TOML file < `PALAVER_*` environment < flags.

use std::process::Command;

fn palaver_config(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palaver"));
    cmd.arg("config").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run palaver config");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn defaults_need_no_configuration() {
    let (ok, out, err) = palaver_config(&[], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("listen = \"127.0.0.1:8080\""), "{out}");
    assert!(out.contains("data_dir = \"./data\""), "{out}");
    assert!(out.contains("send_burst = 100"), "{out}");
}

#[test]
fn file_then_environment_then_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("palaver.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9000\"\nheartbeat_interval_secs = 7\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n\
         [rate_limits]\nsend_burst = 5\nlogin_burst = 3\n",
    )
    .expect("write config");
    let path = file.to_str().expect("utf-8 path");
    let (ok, out, err) = palaver_config(
        &["--config", path, "--data-dir", "/tmp/from-flag"],
        &[
            ("PALAVER_HEARTBEAT_INTERVAL_SECS", "9"),
            ("PALAVER_RATE_LIMITS__SEND_BURST", "50"),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("listen = \"127.0.0.1:9000\""),
        "file beats default: {out}"
    );
    assert!(
        out.contains("heartbeat_interval_secs = 9"),
        "env beats file: {out}"
    );
    assert!(
        out.contains("send_burst = 50"),
        "nested env beats file: {out}"
    );
    assert!(
        out.contains("login_burst = 3"),
        "file keeps what env leaves: {out}"
    );
    assert!(
        out.contains("data_dir = \"/tmp/from-flag\""),
        "flag beats all: {out}"
    );
    assert!(
        out.contains("<redacted>") && !out.contains("0123456789abcdef"),
        "secrets are not printed: {out}"
    );
}

#[test]
fn bad_configuration_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("palaver.toml");
    std::fs::write(&file, "no_such_option = 1\n").expect("write");
    let (ok, _, err) = palaver_config(&["--config", file.to_str().expect("path")], &[]);
    assert!(!ok);
    assert!(err.contains("no_such_option"), "{err}");
    let (ok, _, err) = palaver_config(&["--tls-cert", "/tmp/cert.pem"], &[]);
    assert!(!ok);
    assert!(err.contains("tls_cert and tls_key go together"), "{err}");
    let (ok, _, err) = palaver_config(&[], &[("PALAVER_JWT_SECRET", "short")]);
    assert!(!ok);
    assert!(err.contains("at least 32 bytes"), "{err}");
    // Server pings must keep an idle socket's connection from timing out.
    let (ok, _, err) = palaver_config(&[], &[("PALAVER_IDLE_TIMEOUT_SECS", "20")]);
    assert!(!ok);
    assert!(
        err.contains("idle_timeout_secs must be more than heartbeat_interval_secs"),
        "{err}"
    );
    let (ok, _, err) = palaver_config(&[], &[("PALAVER_MAX_CONNECTIONS", "0")]);
    assert!(!ok);
    assert!(err.contains("must be positive"), "{err}");
}

#[test]
fn connection_limits_have_defaults_and_can_be_set() {
    let (ok, out, err) = palaver_config(&[], &[]);
    assert!(ok, "{err}");
    for line in [
        "metrics_on_main_listener = false",
        "header_timeout_secs = 10",
        "body_timeout_secs = 20",
        "idle_timeout_secs = 30",
        "tls_handshake_timeout_secs = 10",
        "ws_handshake_timeout_secs = 10",
        "hsts_max_age_secs = 31536000",
    ] {
        assert!(out.contains(line), "{line} in {out}");
    }
    // Automatic (from the open-file limit, and 127.0.0.1:9090 or a free port) unless set.
    assert!(!out.contains("max_connections"), "{out}");
    assert!(!out.contains("metrics_listen"), "{out}");
    let (ok, out, err) = palaver_config(
        &[],
        &[
            ("PALAVER_MAX_CONNECTIONS", "5000"),
            ("PALAVER_METRICS_LISTEN", "127.0.0.1:9191"),
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("max_connections = 5000"), "{out}");
    assert!(out.contains("metrics_listen = \"127.0.0.1:9191\""), "{out}");
}

#[test]
fn push_options_come_from_the_environment_and_are_checked() {
    let (ok, out, err) = palaver_config(
        &[],
        &[
            ("PALAVER_PUSH__COLLAPSE_MS", "250"),
            ("PALAVER_PUSH__URGENCY", "high"),
            (
                "PALAVER_PUSH__OUTBOUND_ALLOW",
                "[\"10.0.0.0/8\", \"push.internal\"]",
            ),
            (
                "PALAVER_PUSH__WEBHOOK_URL",
                "https://gateway.example.com/hook",
            ),
            ("PALAVER_PUSH__WEBHOOK_SECRET", "hook-secret-0123456789"),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("[push]") && out.contains("collapse_ms = 250"),
        "{out}"
    );
    assert!(out.contains("urgency = \"high\""), "{out}");
    assert!(out.contains("\"push.internal\""), "{out}");
    assert!(
        out.contains("webhook_secret = \"<redacted>\"") && !out.contains("hook-secret-0123456789"),
        "the webhook secret is not printed: {out}"
    );
    for (env, why) in [
        (
            (
                "PALAVER_PUSH__WEBHOOK_URL",
                "https://gateway.example.com/hook",
            ),
            "go together",
        ),
        (
            ("PALAVER_PUSH__OUTBOUND_ALLOW", "[\"not a host!\"]"),
            "outbound_allow",
        ),
        (("PALAVER_PUSH__URGENCY", "urgent"), "URGENCY"),
        (("PALAVER_PUSH__TTL_SECS", "99999999"), "ttl_secs"),
        (
            ("PALAVER_PUSH__VAPID_SUBJECT", "ops@example.com"),
            "mailto:",
        ),
    ] {
        let (ok, _, err) = palaver_config(&[], &[env]);
        assert!(!ok, "{env:?} accepted");
        assert!(err.contains(why), "{env:?}: {err}");
    }
}

#[test]
fn engines_are_chosen_by_url_and_passwords_are_not_printed() {
    let (ok, out, err) = palaver_config(
        &["--bus", "nats://127.0.0.1:4222"],
        &[
            (
                "PALAVER_STORE",
                "postgres://palaver:hunter2@db.internal:5432/chat",
            ),
            ("PALAVER_CACHE", "redis://127.0.0.1:6379"),
            ("PALAVER_NAMESPACE", "team_a"),
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("bus = \"nats://127.0.0.1:4222\""), "{out}");
    assert!(out.contains("cache = \"redis://127.0.0.1:6379\""), "{out}");
    assert!(out.contains("namespace = \"team_a\""), "{out}");
    assert!(
        out.contains("postgres://palaver:%3Credacted%3E@db.internal:5432/chat"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");

    for (env, value, needle) in [
        ("PALAVER_STORE", "mysql://db/chat", "store must be"),
        ("PALAVER_BUS", "kafka://broker", "bus must be"),
        ("PALAVER_CACHE", "memcached://x", "cache must be"),
        ("PALAVER_NAMESPACE", "Team-A", "namespace must be"),
    ] {
        let (ok, _, err) = palaver_config(&[], &[(env, value)]);
        assert!(!ok, "{env}={value} accepted");
        assert!(err.contains(needle), "{env}: {err}");
    }
}

#[test]
fn link_preview_options_come_from_the_environment_and_are_checked() {
    let (ok, out, err) = palaver_config(
        &[],
        &[
            ("PALAVER_LINK_PREVIEWS__ENABLED", "false"),
            ("PALAVER_LINK_PREVIEWS__TIMEOUT_MS", "1500"),
            ("PALAVER_LINK_PREVIEWS__OUTBOUND_ALLOW", "[\"10.0.0.0/8\"]"),
            ("PALAVER_RATE_LIMITS__PREVIEWS_BURST", "3"),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("[link_previews]") && out.contains("enabled = false"),
        "{out}"
    );
    assert!(
        out.contains("timeout_ms = 1500") && out.contains("\"10.0.0.0/8\""),
        "{out}"
    );
    assert!(out.contains("previews_burst = 3"), "{out}");
    for (env, why) in [
        (("PALAVER_LINK_PREVIEWS__TIMEOUT_MS", "0"), "timeout_ms"),
        (
            ("PALAVER_LINK_PREVIEWS__MAX_REDIRECTS", "50"),
            "max_redirects",
        ),
        (
            ("PALAVER_LINK_PREVIEWS__OUTBOUND_ALLOW", "[\"not a host!\"]"),
            "link_previews",
        ),
        (
            ("PALAVER_LINK_PREVIEWS__FETCH_EVERYTHING", "true"),
            "FETCH_EVERYTHING",
        ),
    ] {
        let (ok, _, err) = palaver_config(&[], &[env]);
        assert!(!ok, "{env:?} accepted");
        assert!(err.contains(why), "{env:?}: {err}");
    }
}
