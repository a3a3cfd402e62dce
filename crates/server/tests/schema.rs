//! Schema fuzzing: schemathesis drives the real server from its own OpenAPI document
//! (`/api/v1/openapi.json`), statefully (following the document's links from the ids one
//! answer carries to the next call), and checks that nothing answers 5xx, every answer
//! matches the document, requests without a token are refused, and schema-violating input
//! is rejected.
//!
//! What is checked, how requests authenticate and how long it runs are in
//! `tests/schema/schemathesis.toml`; this test adds dictionaries of real ids (a room, a
//! message, an upload of the fuzzing user's) so generated requests reach past "not found".
//!
//! The `schemathesis` CLI comes from `SCHEMATHESIS_BIN` (`.ci/run` installs a pinned
//! version into a virtualenv and exports it), else `~/.cache/palaver-venv/bin`, else
//! `PATH`. Without it the test prints SKIPPED and passes, except with `CI=true`, where it
//! fails. `SCHEMATHESIS_SEED` replays a run; `SCHEMATHESIS_MAX_EXAMPLES` runs longer.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use palaver_client::Client;
use palaver_server::config::RateLimits;
use palaver_server::{Application, Config};
use uuid::Uuid;

/// The schemathesis version this test is written against (`.ci/run` pins the same).
const VERSION: &str = "4.32.5";
/// A fixed seed, so CI fails or passes the same way each time; override to explore.
const DEFAULT_SEED: &str = "20240601";
/// The whole run is stopped after this long, whatever it is doing.
const HARD_LIMIT: Duration = Duration::from_secs(600);

const USERNAME: &str = "schemathesis";
const PASSWORD: &str = "correct horse battery";

/// The CLI: `SCHEMATHESIS_BIN`, else the one `.ci/run` installs, else `PATH`.
fn schemathesis() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("SCHEMATHESIS_BIN") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let venv = PathBuf::from(format!("{home}/.cache/palaver-venv/bin/schemathesis"));
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join("schemathesis"))
        .collect::<Vec<_>>();
    std::iter::once(venv).chain(on_path).find(|p| p.is_file())
}

/// A server as a deployment would run it, except for cheap password hashing (the fuzzer
/// logs in again after each logout) and limits high enough not to answer 429 throughout.
async fn spawn_server(dir: &Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let many = 10_000_000;
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.to_path_buf(),
        insecure_fast_password_hashing: true,
        rate_limits: RateLimits::all(many),
        // Fuzzed text may hold links: no test reads pages off this machine.
        link_previews: palaver_server::config::LinkPreviewConfig {
            enabled: false,
            ..Default::default()
        },
        ..Config::default()
    };
    let app = Application::build(config).await.expect("build app");
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    (base, tx)
}

/// Real ids for the fuzzer: its user and a peer, a 1:1 room and a group with a message
/// each, and an uploaded image.
struct Seeded {
    users: Vec<Uuid>,
    rooms: Vec<Uuid>,
    messages: Vec<Uuid>,
    media: Vec<Uuid>,
}

async fn seed(base: &str) -> Seeded {
    let anon = Client::new(base).expect("client");
    let me = anon
        .register(USERNAME, PASSWORD, None)
        .await
        .expect("register the fuzzer's user");
    let peer = anon
        .register("peer", PASSWORD, None)
        .await
        .expect("register a peer");
    let api = anon.with_token(&me.access_token);
    let (_, dm) = api
        .create_room(None, false, &[peer.user.id])
        .await
        .expect("1:1 room");
    let (_, group) = api
        .create_room(Some("fuzzing"), true, &[peer.user.id])
        .await
        .expect("group");
    let mut messages = Vec::new();
    for room in [dm.id, group.id] {
        let (_, m) = api.send(room, "seed", "hello").await.expect("send");
        messages.push(m.id);
    }
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(8, 8, image::Rgb([200, 40, 40]))
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode png");
    let media = api
        .upload("red.png", "image/png", png.into_inner())
        .await
        .expect("upload");
    Seeded {
        users: vec![me.user.id, peer.user.id],
        rooms: vec![dm.id, group.id],
        messages,
        media: vec![media.id],
    }
}

/// The repository's configuration plus dictionaries of the seeded ids, bound to the
/// parameters that take them (half of the generated values come from them).
fn config_with_ids(seeded: &Seeded, dir: &Path) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schema/schemathesis.toml");
    let mut text = std::fs::read_to_string(&base).expect("tests/schema/schemathesis.toml");
    let list = |ids: &[Uuid]| {
        ids.iter()
            .map(|id| format!("\"{id}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    text.push_str(&format!(
        "\n# Added by tests/schema.rs: ids it seeded.\n\
         [dictionaries]\n\
         users = {{ values = [{}] }}\n\
         peers = {{ values = [{}] }}\n\
         rooms = {{ values = [{}] }}\n\
         messages = {{ values = [{}] }}\n\
         media = {{ values = [{}] }}\n\n\
         [parameters]\n",
        list(&seeded.users),
        list(&seeded.users[1..]),
        list(&seeded.rooms),
        list(&seeded.messages),
        list(&seeded.media)
    ));
    for (key, dictionary) in [
        ("path.userId", "users"),
        // Not the fuzzer's own id: a 1:1 room with oneself is refused (422), and the
        // document cannot say so (it does not know who calls).
        ("body.memberIds[*]", "peers"),
        ("path.roomId", "rooms"),
        ("path.conversationId", "rooms"),
        ("query.roomId", "rooms"),
        ("body.roomId", "rooms"),
        ("path.messageId", "messages"),
        ("path.mediaId", "media"),
        ("body.mediaId", "media"),
    ] {
        text.push_str(&format!(
            "\"{key}\" = {{ dictionary = \"{dictionary}\", probability = 0.5 }}\n"
        ));
    }
    let path = dir.join("schemathesis.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_survives_schemathesis_and_matches_its_document() {
    let Some(bin) = schemathesis() else {
        support::skip(
            "schema fuzzing",
            &format!(
                "schemathesis not found: `pip install schemathesis=={VERSION}` or set SCHEMATHESIS_BIN"
            ),
        );
        return;
    };
    let version = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .expect("schemathesis --version");
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    assert!(
        version.ends_with(VERSION),
        "this test is written for schemathesis {VERSION}; found {version:?}"
    );

    let data = tempfile::tempdir().expect("data dir");
    let (base, _stop) = spawn_server(data.path()).await;
    let seeded = seed(&base).await;
    // The config, reports and anything else schemathesis writes go in a scratch directory.
    let work = tempfile::tempdir().expect("work dir");
    let config = config_with_ids(&seeded, work.path());
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());
    let mut command = tokio::process::Command::new(&bin);
    command
        .current_dir(work.path())
        .env("SCHEMA_BASE_URL", &base)
        .env("SCHEMA_USERNAME", USERNAME)
        .env("SCHEMA_PASSWORD", PASSWORD)
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{base}/api/v1/openapi.json"))
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--seed", &seed]);
    if let Ok(n) = std::env::var("SCHEMATHESIS_MAX_EXAMPLES") {
        command.args(["--max-examples", &n]);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let output = tokio::time::timeout(HARD_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran past {HARD_LIMIT:?}"))
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The summary is worth seeing in CI's log even when everything passes.
    let _ = writeln!(
        std::io::stderr(),
        "schemathesis {VERSION}, seed {seed}, {:.0?}:\n{}",
        started.elapsed(),
        tail(&stdout, 40)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems (replay with SCHEMATHESIS_SEED={seed}):\n{stdout}\n{stderr}"
    );
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
