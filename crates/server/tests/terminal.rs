//! The terminal client against a real server: the script commands (`palaver login`,
//! `rooms`, `send`, `upload`, `tail`, `logout`) run as the built binary, and one whole
//! `palaver chat` session driven through a real pseudo-terminal (tmux): log in, open a
//! 1:1 room, receive a message another client sends, reply, and find the reply through
//! the API.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use palaver_client::Client;
use palaver_proto::{AuthResponse, Message};
use palaver_server::config::RateLimits;
use palaver_server::{Application, Config};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

const PASSWORD: &str = "correct horse battery";
/// How long to wait for something that should happen soon (a failure, not a timing).
const WAIT: Duration = Duration::from_secs(30);

struct Server {
    base: String,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn server() -> Server {
    let data = tempfile::tempdir().expect("tempdir");
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: data.path().to_path_buf(),
        insecure_fast_password_hashing: true,
        rate_limits: RateLimits::all(1_000_000),
        ..Config::default()
    };
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stopped.await;
        })
        .await
        .expect("server run");
    });
    Server {
        base: format!("http://{addr}"),
        addr,
        stop: Some(stop),
        _data: data,
    }
}

async fn register(server: &Server, name: &str, display: &str) -> (Client, AuthResponse) {
    let anon = Client::new(&server.base).expect("client");
    let auth = anon
        .register(name, PASSWORD, Some(display))
        .await
        .expect("register");
    (anon.with_token(&auth.access_token), auth)
}

/// The `palaver` binary with its own config directory (where the session is kept).
fn palaver(config_home: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_palaver"));
    cmd.env("XDG_CONFIG_HOME", config_home)
        .env_remove("PALAVER_CONFIG")
        .kill_on_drop(true);
    cmd
}

/// Runs `palaver ARGS` with `stdin`; answers stdout, after checking it succeeded.
async fn run(config_home: &Path, args: &[&str], stdin: &str) -> String {
    let (ok, out, err) = try_run(config_home, args, stdin).await;
    assert!(ok, "palaver {args:?} failed: {err}");
    out
}

async fn try_run(config_home: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = palaver(config_home)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn palaver");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("palaver finishes")
        .expect("palaver output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `palaver login` as Alice, the password on stdin.
async fn log_in(
    config_home: &Path,
    server: &str,
    password: &str,
    more: &[&str],
) -> (bool, String, String) {
    let mut args = vec!["login", "--server", server, "--username", "alice"];
    args.push("--password-stdin");
    args.extend_from_slice(more);
    try_run(config_home, &args, &format!("{password}\n")).await
}

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A TCP relay in front of the server that can cut every connection and refuse new
/// ones for a while: a network drop, as a client sees it.
struct Relay {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: broadcast::Sender<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let open = Arc::new(AtomicBool::new(true));
        let (cut, _) = broadcast::channel(4);
        let (is_open, cuts) = (open.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !is_open.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.recv() => {}
                    }
                });
            }
        });
        Relay { addr, open, cut }
    }

    /// Drops every connection and refuses new ones until `reopen`.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        let _ = self.cut.send(());
    }

    fn reopen(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn script_commands() {
    let server = server().await;
    let (alice, alice_auth) = register(&server, "alice", "Alice").await;
    let (bob, bob_auth) = register(&server, "bob", "Bob").await;
    let (_, team) = alice
        .create_room(Some("Team"), true, &[bob_auth.user.id])
        .await
        .expect("team");
    bob.accept(team.id).await.expect("bob joins the team");
    let (_, dm) = alice
        .create_room(None, false, &[bob_auth.user.id])
        .await
        .expect("dm");
    bob.accept(dm.id).await.expect("bob accepts the dm");

    let home = tempfile::tempdir().expect("tempdir");
    let home = home.path();

    // Not logged in yet.
    let (ok, _, err) = try_run(home, &["rooms"], "").await;
    assert!(!ok && err.contains("not logged in"), "{err}");

    // login: the password from stdin; the session stored for the user only.
    let (ok, out, err) = log_in(home, &server.base, PASSWORD, &["--json"]).await;
    assert!(ok, "{err}");
    let login = json(&out);
    assert_eq!(login["username"], "alice");
    assert_eq!(login["userId"], alice_auth.user.id.to_string());
    let session = home.join("palaver").join("session.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&session)
            .expect("session")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (ok, _, err) = log_in(home, &server.base, "wrong password", &[]).await;
    assert!(!ok && err.contains("invalid_credentials"), "{err}");

    // rooms
    let rooms = json(&run(home, &["rooms", "--json"], "").await);
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert!(
        names.contains(&"Team") && names.contains(&"Bob"),
        "{names:?}"
    );
    let text = run(home, &["rooms"], "").await;
    assert!(
        text.contains("Team") && text.contains(&dm.id.to_string()),
        "{text}"
    );

    // send: by name, by username, by id; the idempotency key stores it once.
    let first = json(
        &run(
            home,
            &[
                "send",
                "--room",
                "team",
                "--id",
                "k-1",
                "--json",
                "hello team",
            ],
            "",
        )
        .await,
    );
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["message"]["content"], "hello team");
    assert_eq!(first["message"]["clientMsgId"], "k-1");
    let again = json(
        &run(
            home,
            &[
                "send",
                "--room",
                "Team",
                "--id",
                "k-1",
                "--json",
                "hello team",
            ],
            "",
        )
        .await,
    );
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"]["id"], first["message"]["id"]);
    let piped = json(&run(home, &["send", "--room", "@bob", "--json"], "from a pipe\n").await);
    assert_eq!(piped["message"]["content"], "from a pipe");
    assert_eq!(piped["message"]["roomId"], dm.id.to_string());
    let by_id = run(home, &["send", "--room", &dm.id.to_string(), "plain"], "").await;
    assert!(by_id.starts_with("sent #"), "{by_id}");
    let history = bob
        .history(team.id, None, None, None)
        .await
        .expect("history");
    let texts: Vec<&str> = history
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(
        texts.iter().filter(|t| **t == "hello team").count(),
        1,
        "{texts:?}"
    );
    let (ok, _, err) = try_run(home, &["send", "--room", "nowhere", "x"], "").await;
    assert!(!ok && err.contains("no room named"), "{err}");

    // upload, and send it to a room.
    let file = home.join("notes.txt");
    std::fs::write(&file, "some notes\n").expect("write");
    let up = json(
        &run(
            home,
            &[
                "upload",
                file.to_str().expect("path"),
                "--room",
                "Team",
                "--json",
            ],
            "",
        )
        .await,
    );
    assert_eq!(up["media"]["filename"], "notes.txt");
    assert_eq!(up["message"]["mediaId"], up["media"]["id"]);
    let only = json(
        &run(
            home,
            &["upload", file.to_str().expect("path"), "--json"],
            "",
        )
        .await,
    );
    assert!(only["message"].is_null());

    // tail through a relay that drops the connection: every message once, in order.
    let relayed = tempfile::tempdir().expect("tempdir");
    let relayed = relayed.path();
    let relay = Relay::start(server.addr).await;
    let via = format!("http://{}", relay.addr);
    let (ok, _, err) = log_in(relayed, &via, PASSWORD, &[]).await;
    assert!(ok, "{err}");
    // From the room's newest message on, whenever tail gets connected.
    let newest = bob
        .history(team.id, None, None, Some(1))
        .await
        .expect("history");
    let after = newest.messages.last().map_or(0, |m| m.seq).to_string();
    let mut tail = palaver(relayed)
        .args([
            "tail", "--room", "Team", "--json", "--count", "4", "--after", &after,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tail");
    let mut lines = BufReader::new(tail.stdout.take().expect("stdout")).lines();
    let mut next = async || -> Message {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("tail prints")
            .expect("read")
            .expect("a line");
        serde_json::from_str(&line).expect("a message")
    };
    let mut bob_socket = bob.connect().await.expect("bob's socket");
    let (first, _) = bob_socket
        .send_message(team.id, "b-1", "before the drop")
        .await
        .expect("send");
    let mut got = vec![next().await];
    // tail is connected now (it printed); the network goes, messages are sent meanwhile.
    relay.cut();
    let mut during = Vec::new();
    for i in 0..2 {
        let (m, _) = bob_socket
            .send_message(team.id, &format!("d-{i}"), &format!("while down {i}"))
            .await
            .expect("send");
        during.push(m.seq);
    }
    relay.reopen();
    let (last, _) = bob_socket
        .send_message(team.id, "after", "after the drop")
        .await
        .expect("send");
    while got.len() < 4 {
        got.push(next().await);
    }
    let seqs: Vec<i64> = got.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [first.seq, during[0], during[1], last.seq], "{got:?}");
    assert_eq!(got[3].content, "after the drop");
    let status = tokio::time::timeout(WAIT, tail.wait())
        .await
        .expect("tail stops after --count")
        .expect("wait");
    assert!(status.success());
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut tail.stderr.take().expect("stderr"), &mut err)
        .await
        .expect("stderr");
    assert!(err.contains("reconnecting"), "the drop was noticed: {err}");

    // logout ends the session on the server too.
    let stored: Value =
        serde_json::from_slice(&std::fs::read(&session).expect("read")).expect("json");
    let token = stored["accessToken"].as_str().expect("token").to_owned();
    let out = json(&run(home, &["logout", "--json"], "").await);
    assert_eq!(out["loggedOut"], true);
    assert!(!session.exists());
    let ended = alice
        .with_token(token)
        .me()
        .await
        .expect_err("session ended");
    assert_eq!(ended.code(), Some(palaver_proto::ErrorCode::Unauthorized));
    let (ok, _, err) = try_run(home, &["logout"], "").await;
    assert!(!ok && err.contains("not logged in"), "{err}");
}

/// tmux on a socket of its own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"]);
        cmd
    }

    fn keys(&self, keys: &[&str]) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "chat"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn text(&self, text: &str) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "chat", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn screen(&self, escapes: bool) -> String {
        let mut cmd = self.cmd();
        cmd.args(["capture-pane", "-p", "-t", "chat"]);
        if escapes {
            cmd.arg("-e");
        }
        let out = cmd.output().expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text`.
    async fn wait_for(&self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let screen = self.screen(false);
            if screen.contains(text) {
                return screen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the screen never showed {text:?}:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // The server is gone already when the chat quit (its only session ended).
        let _ = self.cmd().arg("kill-server").stderr(Stdio::null()).status();
    }
}

/// Waits until the room's history (newest page) has a message that `pred` accepts.
async fn until(client: &Client, room: uuid::Uuid, pred: impl Fn(&Message) -> bool) -> Message {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let history = client
            .history(room, None, None, None)
            .await
            .expect("history");
        if let Some(m) = history.messages.iter().find(|m| pred(m)) {
            return m.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never seen in the room's history"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tmux_missing() -> Option<String> {
    match std::process::Command::new("tmux").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("tmux is not installed".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_session_in_a_pseudo_terminal() {
    if let Some(why) = tmux_missing() {
        support::skip("the terminal chat's pseudo-terminal session", &why);
        return;
    }
    let server = server().await;
    let (alice, alice_auth) = register(&server, "alice", "Alice").await;
    let (bob, bob_auth) = register(&server, "bob", "Bob").await;
    // A group with news Alice has not read yet, so the room list has counts to show.
    let (carol, carol_auth) = register(&server, "carol", "Carol").await;
    let members = [bob_auth.user.id, carol_auth.user.id];
    let (_, team) = alice
        .create_room(Some("Team"), true, &members)
        .await
        .expect("team");
    bob.accept(team.id).await.expect("bob joins");
    carol.accept(team.id).await.expect("carol joins");
    for (i, text) in ["Standup moved to 10:15", "Release notes are in the doc"]
        .iter()
        .enumerate()
    {
        carol
            .send(team.id, &format!("c-{i}"), text)
            .await
            .expect("send");
    }
    let (_, dm) = alice
        .create_room(None, false, &[bob_auth.user.id])
        .await
        .expect("dm");
    bob.accept(dm.id).await.expect("bob accepts");
    alice
        .send(dm.id, "a-1", "Hi Bob! Are you around today?")
        .await
        .expect("send");
    bob.send(dm.id, "b-1", "Morning! Yes, in meetings until 11.")
        .await
        .expect("send");
    // Bob stays online, on a socket.
    let mut bob_socket = bob.connect().await.expect("bob's socket");

    // The chat reaches the server through a relay, to drop its connection later.
    let relay = Relay::start(server.addr).await;
    let via = format!("http://{}", relay.addr);
    let home = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux {
        socket: format!("palaver-test-{}", std::process::id()),
    };
    let command = format!(
        "env XDG_CONFIG_HOME={} LANG=C.UTF-8 TERM=xterm-256color {} chat --server {}",
        home.path().display(),
        env!("CARGO_BIN_EXE_palaver"),
        via
    );
    let status = tmux
        .cmd()
        .args([
            "new-session",
            "-d",
            "-s",
            "chat",
            "-x",
            "80",
            "-y",
            "24",
            &command,
        ])
        .status()
        .expect("tmux new-session");
    assert!(status.success());

    // Log in.
    tmux.wait_for("Palaver: log in").await;
    tmux.text("alice");
    tmux.keys(&["Tab"]);
    tmux.text(PASSWORD);
    tmux.keys(&["Enter"]);
    tmux.wait_for("● online").await;
    let screen = tmux.wait_for("Bob").await;
    assert!(screen.contains("Rooms"), "{screen}");
    assert!(
        home.path().join("palaver/session.json").exists(),
        "the session is kept"
    );

    let screen = tmux.wait_for("Team").await;
    assert!(screen.contains("# Team"), "{screen}");
    // Open the 1:1 room (the most recent, so it is chosen): its history shows.
    tmux.keys(&["Enter"]);
    tmux.wait_for("in meetings until 11.").await;

    // Bob writes from his client; it appears live.
    bob_socket
        .send_message(dm.id, "b-2", "Lunch at 12:30? The usual place.")
        .await
        .expect("bob sends");
    tmux.wait_for("Lunch at 12:30?").await;

    // The network drops; Bob writes meanwhile; the chat reconnects and resumes.
    relay.cut();
    tmux.wait_for("○ offline").await;
    bob_socket
        .send_message(dm.id, "b-3", "I'll book a table for two.")
        .await
        .expect("bob sends");
    relay.reopen();
    tmux.wait_for("book a table for two.").await;
    let screen = tmux.wait_for("● online").await;
    assert_eq!(screen.matches("book a table").count(), 1, "once:\n{screen}");

    // Reply.
    let reply = "Sounds good, see you there!";
    tmux.text(reply);
    tmux.keys(&["Enter"]);
    let found = until(&bob, dm.id, |m| m.content == reply).await;
    assert_eq!(found.sender_id, alice_auth.user.id);
    // Bob's socket hears it live too, and reads it: the tick turns to read.
    bob_socket
        .wait_for(WAIT, |f| {
            matches!(f, palaver_proto::ServerFrame::Message { message } if message.content == reply)
        })
        .await
        .expect("bob hears the reply");
    bob_socket
        .send_frame(palaver_proto::ClientFrame::Receipt {
            room_id: dm.id,
            seq: found.seq,
            status: palaver_proto::ReceiptKind::Read,
        })
        .await
        .expect("receipt");
    tmux.wait_for("see you there! ✔✔").await;
    bob_socket
        .send_frame(palaver_proto::ClientFrame::Typing {
            room_id: dm.id,
            active: true,
        })
        .await
        .expect("typing");
    tmux.wait_for("Bob is typing…").await;

    // The screen as the terminal shows it, colours and all, for the README's screenshot.
    if let Ok(path) = std::env::var("TUI_CAPTURE") {
        std::fs::write(PathBuf::from(path), tmux.screen(true)).expect("write capture");
    }

    // Edit the reply: Esc picks the newest message (the reply), e edits it.
    let edited = format!("{reply} At 12:30.");
    tmux.keys(&["Escape"]);
    // A key right after Esc would read as Alt+key: wait for the mode to change.
    tmux.wait_for("↑↓ pick").await;
    tmux.keys(&["e"]);
    tmux.text(" At 12:30.");
    tmux.keys(&["Enter"]);
    tmux.wait_for("(edited)").await;
    let stored = until(&bob, dm.id, |m| m.id == found.id && m.content == edited).await;
    assert!(stored.edited_at.is_some());

    // Delete it, after saying yes.
    tmux.keys(&["Escape"]);
    tmux.wait_for("↑↓ pick").await;
    tmux.keys(&["d"]);
    tmux.wait_for("Delete this message?").await;
    tmux.keys(&["y"]);
    tmux.wait_for("Alice: (deleted)").await;
    until(&bob, dm.id, |m| m.id == found.id && m.deleted).await;

    // Send a file from a path.
    let file = home.path().join("agenda.txt");
    std::fs::write(&file, "1. lunch\n2. slides\n").expect("write");
    tmux.keys(&["C-o"]);
    tmux.wait_for("Send a file").await;
    tmux.text(file.to_str().expect("path"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("[file: agenda.txt").await;
    let sent = until(&bob, dm.id, |m| {
        m.media.as_ref().is_some_and(|f| f.filename == "agenda.txt")
    })
    .await;
    assert_eq!(sent.sender_id, alice_auth.user.id);

    // Search every room.
    tmux.keys(&["C-f"]);
    tmux.text("table");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Bob · Bob: I'll book a table for two.").await;
    tmux.keys(&["Escape"]);
    tmux.keys(&["C-c"]);
}

/// `palaver login` for an account with two-factor login: the code (`--code`, or asked
/// for at a terminal) answers the server's challenge; a wrong one stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_answers_the_second_factor() {
    let server = server().await;
    let (alice, _) = register(&server, "alice", "Alice").await;
    let (status, body) = alice
        .raw(
            reqwest::Method::POST,
            "/api/v1/auth/totp/enrol",
            Some(&serde_json::json!({})),
        )
        .await
        .expect("enrol");
    assert_eq!(status, 200, "{body}");
    let uri = body["otpauthUri"].as_str().expect("otpauthUri");
    let totp = totp_rs::Totp::from_url(uri).expect("an app reads the URI");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (status, body) = alice
        .raw(
            reqwest::Method::POST,
            "/api/v1/auth/totp/confirm",
            Some(&serde_json::json!({"code": totp.generate(now).to_string()})),
        )
        .await
        .expect("confirm");
    assert_eq!(status, 200, "{body}");

    let home = tempfile::tempdir().expect("tempdir");
    let home = home.path();
    let session = home.join("palaver").join("session.json");
    let wrong = if totp.generate(now + 30).to_string() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (ok, _, err) = log_in(home, &server.base, PASSWORD, &["--code", wrong]).await;
    assert!(!ok, "a wrong code logs in: {err}");
    assert!(!session.exists(), "a refused login stores no session");

    // The next step's code: the current one was spent confirming.
    let code = totp.generate(now + 30).to_string();
    let (ok, out, err) = log_in(home, &server.base, PASSWORD, &["--code", &code, "--json"]).await;
    assert!(ok, "{err}");
    assert_eq!(json(&out)["username"], "alice");
    assert!(session.exists());
    // The stored session works.
    let rooms = run(home, &["rooms", "--json"], "").await;
    assert!(json(&rooms)["rooms"].is_array(), "{rooms}");
}
