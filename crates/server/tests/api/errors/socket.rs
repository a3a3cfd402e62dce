//! The socket: malformed and oversized frames get error frames or a close, and a browser
//! handshake from a foreign origin is refused.

use std::time::Duration;

use palaver_client::{ClientError, Socket};
use palaver_proto::{ClientFrame, Cursors, ErrorCode, ReceiptKind, ServerFrame, close};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::*;

use super::{assert_alive, error_for, history_len, send_frame};

/// Reads (and drops) frames until the socket closes; returns the close code and reason.
async fn read_until_closed(
    socket: &mut Socket,
    within: Duration,
) -> Result<Option<(u16, String)>, ClientError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match socket.next_within(left).await {
            Ok(_) => continue,
            Err(ClientError::Closed(code)) => return Ok(code),
            Err(other) => return Err(other),
        }
    }
}

#[tokio::test]
async fn bad_socket_frames_get_error_frames_and_the_connection_stays_usable() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;
    let mut socket = alice.connect().await;

    // Malformed JSON.
    socket
        .send_text("{this is not json".into())
        .await
        .expect("send");
    assert_eq!(error_for(&mut socket, None).await, ErrorCode::BadRequest);
    assert_alive(&mut socket).await;

    // Valid JSON that is not a frame.
    for text in ["[1,2,3]", "\"ping\"", "{}", "{\"type\":null}"] {
        socket.send_text(text.into()).await.expect("send");
        assert_eq!(
            error_for(&mut socket, None).await,
            ErrorCode::BadRequest,
            "{text}"
        );
    }
    assert_alive(&mut socket).await;

    // No type, but an id: the error answers that id.
    socket
        .send_text(r#"{"id":"x"}"#.into())
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some("x")).await,
        ErrorCode::BadRequest
    );

    // An unknown frame type, answered with its id.
    socket
        .send_text(r#"{"type":"fly","id":"9"}"#.into())
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some("9")).await,
        ErrorCode::UnknownFrame
    );
    assert_alive(&mut socket).await;

    // A known type with bad fields: bad_request, with its id.
    socket
        .send_text(r#"{"type":"send","id":"s1","message":{"roomId":"nope"}}"#.into())
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some("s1")).await,
        ErrorCode::BadRequest
    );

    // Binary frames are not spoken here.
    socket
        .send_ws(WsMessage::Binary(vec![1u8, 2, 3].into()))
        .await
        .expect("send binary");
    assert_eq!(error_for(&mut socket, None).await, ErrorCode::BadRequest);
    assert_alive(&mut socket).await;

    // A text frame over 64 KiB (but under 1 MiB): payload_too_large, still open.
    let big = format!(
        r#"{{"type":"send","id":"big","message":{{"roomId":"{room}","clientMsgId":"big","content":"{}"}}}}"#,
        "x".repeat(100 * 1024)
    );
    socket.send_text(big).await.expect("send big");
    let code = socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::Error { .. }))
        .await
        .map(|f| match f {
            ServerFrame::Error { code, .. } => code,
            _ => unreachable!(),
        })
        .expect("error frame");
    assert_eq!(code, ErrorCode::PayloadTooLarge);
    assert_alive(&mut socket).await;

    // A receipt with seq 0.
    let id = socket
        .send_frame(ClientFrame::Receipt {
            room_id: room,
            seq: 0,
            status: ReceiptKind::Read,
        })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );
    let id = socket
        .send_frame(ClientFrame::Receipt {
            room_id: room,
            seq: -3,
            status: ReceiptKind::Delivered,
        })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );

    // Sends that break the rules.
    let id = socket
        .send_frame(send_frame(room, "c1", "x".repeat(16 * 1024 + 1).as_str()))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::PayloadTooLarge
    );
    let id = socket
        .send_frame(send_frame(room, "", "hi"))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );
    let id = socket
        .send_frame(send_frame(room, "c2", "  "))
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );
    let id = socket
        .send_frame(ClientFrame::Sync {
            cursors: Cursors::from([(room, -1)]),
            changes: Default::default(),
        })
        .await
        .expect("send");
    assert_eq!(
        error_for(&mut socket, Some(&id)).await,
        ErrorCode::ValidationFailed
    );

    // Nothing of this was stored, and the connection still sends.
    assert_eq!(history_len(&alice, room).await, 0);
    let (message, duplicate) = socket
        .send_message(room, "ok", "finally")
        .await
        .expect("send ok");
    assert!(!duplicate);
    assert_eq!(message.seq, 1);
    assert_eq!(history_len(&alice, room).await, 1);
}

#[tokio::test]
async fn a_frame_type_must_be_a_string() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut socket = alice.connect().await;
    // `type` is a string naming the frame; a number is not a frame type (it must not be
    // taken for the n-th variant: 7 would be `ping`, 0 `send`).
    for text in [
        r#"{"type":7,"id":"n7"}"#,
        r#"{"type":0,"id":"n0","message":{}}"#,
    ] {
        socket.send_text(text.into()).await.expect("send");
        let frame = socket
            .wait_for(WAIT, |f| {
                matches!(
                    f,
                    ServerFrame::Error { id: Some(_), .. }
                        | ServerFrame::Pong { .. }
                        | ServerFrame::Ack { .. }
                )
            })
            .await
            .expect("an answer");
        assert!(
            matches!(
                &frame,
                ServerFrame::Error {
                    code: ErrorCode::BadRequest | ErrorCode::UnknownFrame,
                    ..
                }
            ),
            "{text} got {frame:?}"
        );
    }
    assert_alive(&mut socket).await;
}

#[tokio::test]
async fn a_message_over_one_mebibyte_closes_the_socket_with_1009() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;
    let mut socket = alice.connect().await;
    assert_alive(&mut socket).await;

    let huge = format!(
        r#"{{"type":"send","id":"huge","message":{{"roomId":"{room}","clientMsgId":"huge","content":"{}"}}}}"#,
        "x".repeat(1024 * 1024 + 1)
    );
    // The server may stop reading before the whole message is written.
    let _ = socket.send_text(huge).await;
    let closed = read_until_closed(&mut socket, WAIT).await;
    assert!(
        matches!(closed, Ok(Some((close::TOO_BIG, _)))),
        "expected close 1009, got {closed:?}"
    );
    assert_eq!(history_len(&alice, room).await, 0);
    // A new connection works.
    let mut again = alice.connect().await;
    assert_alive(&mut again).await;
}

/// Reads one HTTP response head (up to the blank line) from a raw stream.
async fn read_head(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte))
            .await
            .expect("response head in time")
            .expect("read");
        assert_eq!(n, 1, "connection closed inside the response head");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("ASCII head")
}

/// The server's (unmasked) frames in `bytes`, as `(opcode, payload)`.
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, start) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        assert!(bytes[1] & 0x80 == 0, "server frames are not masked");
        let Some(payload) = bytes.get(start..start + len) else {
            break;
        };
        frames.push((opcode, payload.to_vec()));
        bytes = &bytes[start + len..];
    }
    frames
}

#[tokio::test]
async fn a_frame_header_claiming_100_mb_is_refused_before_its_payload() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    // A hand-made handshake over plain TCP, so nothing on our side enforces a size.
    let mut tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let handshake = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        app.addr, alice.auth.access_token
    );
    tcp.write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    // One masked text frame whose header claims 100 MiB (64-bit length), and not a byte
    // of its payload: a server that waited for the payload, or allocated for it, would
    // sit here until the timeout.
    let claimed: u64 = 100 * 1024 * 1024;
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&claimed.to_be_bytes());
    header.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]);
    tcp.write_all(&header).await.expect("frame header");

    // The server answers with close 1009 and ends the connection: read to the end.
    let mut received = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut received))
        .await
        .expect("the server closes at once, without waiting for 100 MiB")
        .expect("read to EOF");
    let frames = server_frames(&received);
    let closing = frames
        .iter()
        .find(|(opcode, _)| *opcode == 0x8)
        .unwrap_or_else(|| panic!("a close frame among {frames:?}"));
    assert!(closing.1.len() >= 2, "close frame with a code: {closing:?}");
    assert_eq!(
        u16::from_be_bytes([closing.1[0], closing.1[1]]),
        close::TOO_BIG
    );

    // Nothing was stored, and the user connects again normally.
    let mut again = alice.connect().await;
    assert_alive(&mut again).await;
}

#[tokio::test]
async fn websocket_origins_are_checked() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let own = format!("http://{}", app.addr);

    origin_refused(&alice, "http://evil.example").await;
    // A look-alike of the server's own origin is not it.
    origin_refused(&alice, &format!("http://{}.evil.example", app.addr)).await;
    origin_refused(&alice, "null").await;
    // The server's own origin, and no Origin at all (not a browser).
    origin_accepted(&alice, Some(&own)).await;
    origin_accepted(&alice, None).await;

    // An allow-list lets that origin in, and still no other.
    let app = spawn_app_with(|c| c.allowed_origins = vec!["http://app.example".into()]).await;
    let alice = app.user("alice").await;
    origin_accepted(&alice, Some("http://app.example")).await;
    origin_refused(&alice, "http://evil.example").await;
    origin_accepted(&alice, Some(&format!("http://{}", app.addr))).await;
}

/// A browser handshake from `origin` is refused with 403 origin_forbidden.
async fn origin_refused(user: &TestUser, origin: &str) {
    let err = user
        .api
        .connect_with_origin(Some(origin))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            ClientError::Api {
                status: 403,
                code: ErrorCode::OriginForbidden,
                ..
            }
        ),
        "{origin}: {err:?}"
    );
}

/// A handshake from `origin` (or none) is accepted and greeted with `hello`.
async fn origin_accepted(user: &TestUser, origin: Option<&str>) {
    let mut socket = user
        .api
        .connect_with_origin(origin)
        .await
        .expect("accepted");
    assert!(
        matches!(
            socket.next_within(WAIT).await.expect("hello"),
            ServerFrame::Hello { .. }
        ),
        "{origin:?}"
    );
}
