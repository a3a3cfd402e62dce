//! Connections as a hostile client holds them: half-sent requests, stalled bodies, silent
//! sockets, unfinished TLS and WebSocket handshakes, and more connections than allowed.
//! Each must be closed (or refused) by the server within its configured time while
//! `/healthz` keeps answering. The bounds here are generous multiples of the configured
//! timeouts, and each is shorter than any other timeout that could close the connection,
//! so a pass says which timer did it.

use std::sync::Arc;
use std::time::Duration;

use palaver_proto::ClientFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::helpers::*;

/// Longer than any timeout a test here sets short, shorter than those it leaves long.
const CLOSED_WITHIN: Duration = Duration::from_secs(12);

/// Reads until the server closes the connection (end of stream or reset); returns what it
/// sent first. Panics if it is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all)
        .await
        .unwrap_or_else(|_| panic!("{what}: still open after {within:?}"));
    got
}

async fn open(app: &TestApp, first: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    if !first.is_empty() {
        stream.write_all(first).await.expect("write");
    }
    stream
}

/// `GET /healthz` on a fresh connection answers 200 within a second.
async fn healthy(app: &TestApp) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let answer = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("/healthz answers within a second");
    assert_eq!(answer.status().as_u16(), 200);
}

/// A WebSocket handshake with a valid token, written by hand.
fn upgrade_request(app: &TestApp, token: &str) -> Vec<u8> {
    format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n",
        app.addr
    )
    .into_bytes()
}

#[tokio::test]
async fn half_open_connections_are_closed_while_healthz_answers() {
    let app = spawn_app_with(|c| {
        c.header_timeout_secs = 1;
        c.body_timeout_secs = 1;
        c.ws_handshake_timeout_secs = 1;
    })
    .await;
    let alice = app.user("alice").await;
    let host = app.addr;
    let kinds: Vec<(&str, Vec<u8>)> = vec![
        ("silent", Vec::new()),
        ("half a request line", b"GET /heal".to_vec()),
        (
            "half the headers",
            format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n").into_bytes(),
        ),
        (
            "a body that stops",
            format!(
                "POST /api/v1/auth/login HTTP/1.1\r\nHost: {host}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"username\""
            )
            .into_bytes(),
        ),
        (
            "a socket that never answers",
            upgrade_request(&app, &alice.auth.access_token),
        ),
    ];
    let app = Arc::new(app);
    let mut held = JoinSet::new();
    for (kind, first) in kinds {
        for _ in 0..10 {
            let (app, first) = (app.clone(), first.clone());
            held.spawn(async move {
                let mut stream = open(&app, &first).await;
                (
                    kind,
                    read_until_closed(&mut stream, CLOSED_WITHIN, kind).await,
                )
            });
        }
    }
    // The node keeps answering while they wait.
    for _ in 0..3 {
        healthy(&app).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut closed = 0;
    while let Some(done) = held.join_next().await {
        let (kind, got) = done.expect("connection task");
        let text = String::from_utf8_lossy(&got);
        match kind {
            // The documented error shape, then the connection closes.
            "a body that stops" => {
                assert!(text.starts_with("HTTP/1.1 408"), "{kind}: {text}");
                assert!(
                    text.contains(r#""code":"request_timeout""#),
                    "{kind}: {text}"
                );
            }
            "a socket that never answers" => {
                assert!(text.starts_with("HTTP/1.1 101"), "{kind}: {text}");
            }
            _ => assert!(got.is_empty(), "{kind}: got {text}"),
        }
        closed += 1;
    }
    assert_eq!(closed, 50);
    healthy(&app).await;
}

#[tokio::test]
async fn idle_connections_are_closed_but_live_sockets_stay() {
    // Idle is the only short timeout here (heads get 30 s).
    let app = spawn_app_with(|c| {
        c.header_timeout_secs = 30;
        c.heartbeat_interval_secs = 1;
        c.idle_timeout_secs = 2;
    })
    .await;
    let alice = app.user("alice").await;

    // HTTP/2's preface, half sent: hyper waits for the rest with no timer of its own.
    let mut preface = open(&app, b"PRI * HTTP/2.0\r\n").await;
    let got = read_until_closed(&mut preface, CLOSED_WITHIN, "half an HTTP/2 preface").await;
    assert!(got.is_empty());

    // A keep-alive connection after its answer.
    let mut kept = open(
        &app,
        format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr).as_bytes(),
    )
    .await;
    let got = read_until_closed(&mut kept, CLOSED_WITHIN, "an idle keep-alive connection").await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));

    // A socket whose client reads (and so answers pings) outlives several idle periods.
    let mut socket = alice.connect().await;
    let quiet = socket.wait_for(Duration::from_secs(5), |_| false).await;
    assert!(quiet.is_err(), "no frame expected");
    let id = socket.send_frame(ClientFrame::Ping).await.expect("ping");
    socket
        .answer(&id, WAIT)
        .await
        .expect("the socket is still open after 5 s with idle_timeout_secs = 2");
}

#[tokio::test]
async fn a_tls_handshake_that_stops_is_closed() {
    let certs = tempfile::tempdir().expect("tempdir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let cert_path = certs.path().join("cert.pem");
    let key_path = certs.path().join("key.pem");
    std::fs::write(&cert_path, generated.cert.pem()).expect("write cert");
    std::fs::write(&key_path, generated.key_pair.serialize_pem()).expect("write key");
    let app = spawn_app_with(|c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
        c.tls_handshake_timeout_secs = 1;
        c.header_timeout_secs = 30;
    })
    .await;
    // A TLS record header and the start of a ClientHello, then nothing. Closed after the
    // configured second, well before the TLS library's own default (10 s).
    let mut stream = open(&app, &[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00]).await;
    let within = Duration::from_secs(6);
    let got = read_until_closed(&mut stream, within, "half a ClientHello").await;
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_until_one_closes() {
    let app = spawn_app_with(|c| {
        c.max_connections = Some(4);
        c.header_timeout_secs = 60;
        c.idle_timeout_secs = 60;
    })
    .await;
    // Four connections, each served once and then kept open.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = open(
            &app,
            format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr).as_bytes(),
        )
        .await;
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.expect("answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }

    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client")
    };
    let refused = fresh()
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    // A full node is not a dead one.
    let health = fresh()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);

    // One closes: the next connection is served.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = fresh()
            .get(format!("{}/api/v1/openapi.json", app.base))
            .send()
            .await
            .expect("answer");
        if answer.status().as_u16() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still refused after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The target of the hardening round, measured rather than asserted: 300 half-open
/// connections of every kind against a server with default settings (or the one at
/// `HALF_OPEN_TARGET=host:port`), how long until the last is closed, and how long `/healthz`
/// takes meanwhile. `cargo test -p palaver-server --test api -- --ignored --nocapture
/// connections::half_open_target`.
#[tokio::test]
#[ignore = "a measurement (about a minute), not a check"]
async fn half_open_target() {
    let external = std::env::var("HALF_OPEN_TARGET").ok();
    let app = match &external {
        Some(_) => None,
        None => Some(
            spawn_app_with(|c| {
                *c = palaver_server::Config {
                    listen: c.listen,
                    metrics_listen: c.metrics_listen,
                    data_dir: c.data_dir.clone(),
                    ..palaver_server::Config::default()
                }
            })
            .await,
        ),
    };
    let addr: std::net::SocketAddr = match (&external, &app) {
        (Some(a), _) => a.parse().expect("HALF_OPEN_TARGET is host:port"),
        (None, Some(app)) => app.addr,
        _ => unreachable!(),
    };
    let kinds: [(&str, &[u8]); 5] = [
        ("silent", b""),
        ("half a request line", b"GET /heal"),
        ("half the headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"),
        (
            "a body that stops",
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        ),
        ("half an HTTP/2 preface", b"PRI * HTTP/2.0\r\n"),
    ];
    let started = tokio::time::Instant::now();
    let mut held = JoinSet::new();
    for i in 0..300 {
        let (kind, first) = kinds[i % kinds.len()];
        held.spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(first).await.expect("write");
            let mut buf = [0u8; 4096];
            let open_for = async {
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return started.elapsed(),
                        Ok(_) => {}
                    }
                }
            };
            (
                kind,
                tokio::time::timeout(Duration::from_secs(120), open_for).await,
            )
        });
    }
    let probe = tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let (mut worst, mut failed, mut n) = (Duration::ZERO, 0, 0);
        while started.elapsed() < Duration::from_secs(65) {
            let t = tokio::time::Instant::now();
            match client.get(format!("http://{addr}/healthz")).send().await {
                Ok(r) if r.status().is_success() => worst = worst.max(t.elapsed()),
                _ => failed += 1,
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (worst, failed, n)
    });
    let mut by_kind: std::collections::BTreeMap<&str, (Duration, usize)> = Default::default();
    while let Some(done) = held.join_next().await {
        let (kind, result) = done.expect("task");
        let entry = by_kind.entry(kind).or_default();
        match result {
            Ok(at) => entry.0 = entry.0.max(at),
            Err(_) => entry.1 += 1,
        }
    }
    let (worst, failed, probes) = probe.await.expect("probe");
    println!("half-open target: 300 connections, 60 of each kind");
    for (kind, (last, open)) in &by_kind {
        println!(
            "  {kind}: last closed after {:.1} s, {open} still open after 120 s",
            last.as_secs_f64()
        );
    }
    println!(
        "  /healthz meanwhile: {probes} probes, slowest {} ms, {failed} failed",
        worst.as_millis()
    );
}
