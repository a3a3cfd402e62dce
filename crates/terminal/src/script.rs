//! The non-interactive commands for scripts and bots: `login`, `logout`, `rooms`, `send`,
//! `tail` and `upload`. Each writes what it did to `out`: a line for people, or with
//! `json` one JSON value (for `tail`, one per line, a message each).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use palaver_client::{Client, ClientError};
use palaver_proto::LoginResponse;
use palaver_proto::{
    ClientFrame, ErrorCode, Media, Message, MessageType, Room, SendMessageRequest, ServerFrame,
};
use serde_json::json;
use uuid::Uuid;

use crate::error::{Result, TerminalError};
use crate::session::{Auth, Session, SessionFile};

/// The most `send` reads from standard input: the server takes 16 KiB of content, and
/// refuses more with a clear error, so reading far past that only costs memory.
const MAX_STDIN: u64 = 64 * 1024;
/// The largest file `upload` reads into memory (the server's own limit is usually lower
/// and answers `payload_too_large`).
pub const MAX_UPLOAD: u64 = 512 * 1024 * 1024;

/// How the commands print.
pub struct Output<'a> {
    pub out: &'a mut dyn Write,
    pub json: bool,
}

impl Output<'_> {
    fn value(&mut self, value: &serde_json::Value) -> Result<()> {
        serde_json::to_writer(&mut *self.out, value)?;
        writeln!(self.out)?;
        Ok(self.out.flush()?)
    }

    fn line(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}")?;
        Ok(self.out.flush()?)
    }
}

/// Logs in with a password, answering the second-factor challenge with `code()` when the
/// account has one, and stores the session.
pub async fn login(
    file: &SessionFile,
    server: &str,
    username: &str,
    password: &str,
    code: impl FnOnce() -> Result<String>,
) -> Result<Session> {
    let client = Client::new(server)?;
    let auth = match client.login_start(username, password).await? {
        LoginResponse::Tokens(auth) => auth,
        LoginResponse::SecondFactor { second_factor } => {
            let code = code()?;
            client
                .login_second_factor(&second_factor.challenge, code.trim())
                .await?
        }
    };
    let session = Session::from_auth(server, &auth);
    file.save(&session)?;
    Ok(session)
}

/// Prints what `login` stored.
pub fn print_login(session: &Session, out: &mut Output<'_>) -> Result<()> {
    if out.json {
        out.value(&json!({
            "server": session.server,
            "userId": session.user_id,
            "username": session.username,
        }))
    } else {
        out.line(&format!(
            "logged in to {} as {}",
            session.server, session.username
        ))
    }
}

/// Ends the stored session on the server and forgets it. A session the server already
/// ended is forgotten all the same.
pub async fn logout(file: &SessionFile, out: &mut Output<'_>) -> Result<()> {
    let Some(session) = file.load()? else {
        return Err(TerminalError::NotLoggedIn(String::new()));
    };
    let auth = Auth::new(file.clone(), session)?;
    match auth.client().await {
        Ok(client) => {
            let session = auth.session().await;
            match client.logout(Some(&session.refresh_token)).await {
                Ok(()) | Err(ClientError::Api { status: 401, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(TerminalError::NotLoggedIn(_)) => {}
        Err(e) => return Err(e),
    }
    file.remove()?;
    if out.json {
        out.value(&json!({ "loggedOut": true }))
    } else {
        out.line("logged out")
    }
}

/// Lists the caller's rooms.
pub async fn rooms(auth: &Auth, out: &mut Output<'_>) -> Result<()> {
    let rooms = auth.client().await?.rooms().await?;
    if out.json {
        return out.value(&json!({ "rooms": rooms }));
    }
    for room in &rooms {
        let kind = if room.is_group { "group" } else { "direct" };
        out.line(&format!(
            "{}  {:<6} {:>4} unread  {}",
            room.id, kind, room.unread_count, room.name
        ))?;
    }
    Ok(())
}

/// The room `name` names: its id, or its name (a 1:1 room also answers to the other
/// person's username), ignoring case.
pub fn find_room<'a>(rooms: &'a [Room], me: Uuid, name: &str) -> Result<&'a Room> {
    if let Ok(id) = name.parse::<Uuid>() {
        return rooms
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| TerminalError::RoomNotFound(name.into()));
    }
    let wanted = name.trim_start_matches('@').to_lowercase();
    let matches: Vec<&Room> = rooms
        .iter()
        .filter(|r| {
            r.name.to_lowercase() == wanted
                || (!r.is_group
                    && r.members
                        .iter()
                        .any(|m| m.user_id != me && m.username == wanted))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(TerminalError::RoomNotFound(name.into())),
        many => Err(TerminalError::AmbiguousRoom {
            name: name.into(),
            count: many.len(),
        }),
    }
}

async fn resolve(auth: &Auth, name: &str) -> Result<(Client, Room)> {
    let client = auth.client().await?;
    let me = auth.session().await.user_id;
    let rooms = client.rooms().await?;
    let room = find_room(&rooms, me, name)?.clone();
    Ok((client, room))
}

/// A fresh idempotency key.
pub fn new_client_msg_id() -> String {
    Uuid::now_v7().to_string()
}

/// Reads a message's text from standard input (up to a bound), without its final newline.
pub fn read_text(input: impl Read) -> Result<String> {
    let mut text = String::new();
    input.take(MAX_STDIN).read_to_string(&mut text)?;
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
}

/// Sends a text message with an idempotency key: sent again with the same key, it is
/// stored once and answered with the stored message (`duplicate`).
pub async fn send(
    auth: &Auth,
    room: &str,
    text: &str,
    client_msg_id: &str,
    out: &mut Output<'_>,
) -> Result<Message> {
    let (client, room) = resolve(auth, room).await?;
    let (status, message) = client.send(room.id, client_msg_id, text).await?;
    let duplicate = status == 200;
    if out.json {
        out.value(&json!({ "message": message, "duplicate": duplicate }))?;
    } else {
        let note = if duplicate { " (already sent)" } else { "" };
        out.line(&format!("sent #{} to {}{note}", message.seq, room.name))?;
    }
    Ok(message)
}

/// Uploads a file; with `room`, also sends it there as a media message (with `caption`).
pub async fn upload(
    auth: &Auth,
    path: &Path,
    room: Option<&str>,
    caption: &str,
    out: &mut Output<'_>,
) -> Result<(Media, Option<Message>)> {
    let (media, message) = upload_and_send(auth, path, room, caption).await?;
    if out.json {
        out.value(&json!({ "media": media, "message": message }))?;
    } else {
        out.line(&format!(
            "uploaded {} ({}, {} bytes): {}",
            media.filename, media.mime_type, media.size, media.id
        ))?;
        if let Some(m) = &message {
            out.line(&format!("sent #{}", m.seq))?;
        }
    }
    Ok((media, message))
}

/// Uploads a file and, with `room`, sends it there; shared by `upload` and the chat.
pub async fn upload_and_send(
    auth: &Auth,
    path: &Path,
    room: Option<&str>,
    caption: &str,
) -> Result<(Media, Option<Message>)> {
    let bytes = read_upload(path)?;
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let (client, room) = match room {
        Some(r) => {
            let (c, room) = resolve(auth, r).await?;
            (c, Some(room))
        }
        None => (auth.client().await?, None),
    };
    // The server decides the type from the bytes; what a client claims is ignored.
    let media = client
        .upload(&filename, "application/octet-stream", bytes)
        .await?;
    let message = match room {
        Some(room) => Some(send_media(&client, room.id, &media, caption).await?),
        None => None,
    };
    Ok((media, message))
}

/// Sends an uploaded file to a room as a media message of its type.
pub async fn send_media(
    client: &Client,
    room: Uuid,
    media: &Media,
    caption: &str,
) -> Result<Message> {
    let request = SendMessageRequest {
        room_id: room,
        client_msg_id: new_client_msg_id(),
        content: caption.into(),
        kind: media.kind,
        media_id: Some(media.id),
        ..Default::default()
    };
    Ok(client.send_request(&request).await?.1)
}

fn read_upload(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > MAX_UPLOAD {
        return Err(TerminalError::Usage(format!(
            "{} is {size} bytes; the most that is sent is {MAX_UPLOAD}",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_UPLOAD).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// One line for a message, as people read it.
pub fn message_line(message: &Message, names: &HashMap<Uuid, String>) -> String {
    let who = names
        .get(&message.sender_id)
        .cloned()
        .unwrap_or_else(|| short_id(message.sender_id));
    let time = message
        .timestamp
        .format(time::macros::format_description!("[hour]:[minute]"))
        .unwrap_or_default();
    format!("#{} {time} {who}: {}", message.seq, message_text(message))
}

/// A message's text as shown: the content, a file's name, or a mark for a deleted one.
pub fn message_text(message: &Message) -> String {
    if message.deleted {
        return "(deleted)".into();
    }
    let mut text = message.content.replace(['\n', '\r'], " ");
    if let Some(media) = &message.media {
        let kind = media.kind.as_str();
        let file = format!("[{kind}: {}, {}]", media.filename, human_size(media.size));
        text = if text.is_empty() {
            file
        } else {
            format!("{file} {text}")
        };
    } else if message.kind == MessageType::Event {
        text = format!("* {}", event_text(message));
    }
    if message.edited_at.is_some() {
        text.push_str(" (edited)");
    }
    text
}

fn event_text(message: &Message) -> String {
    match &message.event {
        Some(event) => {
            let v = serde_json::to_value(event).unwrap_or_default();
            let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("event");
            let who = event.sender_name.clone();
            format!("{who} {}", kind.replace('_', " "))
        }
        None => message.content.clone(),
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn short_id(id: Uuid) -> String {
    id.to_string().chars().take(8).collect()
}

/// Follows a room: prints each new message once, in seq order, and after a dropped
/// connection reconnects and resumes from the last seq it printed (the socket's `sync`),
/// so nothing is missed or repeated. Starts after `after` (default: the room's newest
/// message); stops after `count` messages if given, else runs until interrupted.
pub async fn tail(
    auth: &Auth,
    room: &str,
    after: Option<i64>,
    count: Option<usize>,
    out: &mut Output<'_>,
) -> Result<()> {
    let (_, room) = resolve(auth, room).await?;
    let mut names: HashMap<Uuid, String> = room
        .members
        .iter()
        .map(|m| (m.user_id, m.display_name.clone()))
        .collect();
    let mut last = after.unwrap_or(room.last_seq);
    let mut printed = 0usize;
    if count == Some(0) {
        return Ok(());
    }
    let mut backoff = Backoff::default();
    loop {
        let outcome = follow(auth, room.id, &mut last, &mut |frame| match frame {
            Followed::Message(message) => {
                if out.json {
                    out.value(&serde_json::to_value(&message)?)?;
                } else {
                    out.line(&message_line(&message, &names))?;
                }
                printed += 1;
                Ok(count.is_some_and(|c| printed >= c))
            }
            Followed::Room(r) => {
                names.extend(
                    r.members
                        .iter()
                        .map(|m| (m.user_id, m.display_name.clone())),
                );
                Ok(false)
            }
        })
        .await;
        match outcome {
            Ok(()) => return Ok(()),
            Err(Dropped::Fatal(e)) => return Err(e),
            Err(Dropped::Retry(why, synced)) => {
                if synced {
                    backoff = Backoff::default();
                }
                let wait = backoff.wait();
                eprintln!("palaver tail: connection lost ({why}); reconnecting in {wait:?}");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

enum Followed {
    Message(Message),
    Room(Room),
}

enum Dropped {
    /// Reconnect; the flag says the connection got as far as `synced`.
    Retry(String, bool),
    Fatal(TerminalError),
}

/// One connection's worth of following: connect, resume from `last`, hand on each new
/// message until `on` says stop (Ok) or the connection drops (Err).
async fn follow(
    auth: &Auth,
    room: Uuid,
    last: &mut i64,
    on: &mut dyn FnMut(Followed) -> Result<bool>,
) -> std::result::Result<(), Dropped> {
    let retry = |e: &dyn std::fmt::Display, synced| Dropped::Retry(e.to_string(), synced);
    let client = match auth.client().await {
        Ok(c) => c,
        Err(e @ TerminalError::NotLoggedIn(_)) => return Err(Dropped::Fatal(e)),
        Err(e) => return Err(retry(&e, false)),
    };
    let socket = match client.connect().await {
        Ok(s) => s,
        Err(e) if e.code() == Some(ErrorCode::TokenExpired) => {
            return match auth.refreshed().await {
                Err(e @ TerminalError::NotLoggedIn(_)) => Err(Dropped::Fatal(e)),
                _ => Err(retry(&e, false)),
            };
        }
        Err(e) if e.code() == Some(ErrorCode::Unauthorized) => {
            return Err(Dropped::Fatal(TerminalError::NotLoggedIn(
                " (the session has ended)".into(),
            )));
        }
        Err(e) => return Err(retry(&e, false)),
    };
    let (mut tx, mut rx) = socket.split();
    let sync = ClientFrame::Sync {
        cursors: BTreeMap::from([(room, *last)]),
        changes: BTreeMap::new(),
    };
    if let Err(e) = tx.send_frame(sync).await {
        return Err(retry(&e, false));
    }
    let mut synced = false;
    loop {
        let frame = match rx.next().await {
            Ok(f) => f,
            Err(ClientError::Closed(Some((code, _))))
                if code == palaver_proto::close::SESSION_ENDED =>
            {
                return Err(Dropped::Fatal(TerminalError::NotLoggedIn(
                    " (the session has ended)".into(),
                )));
            }
            Err(e) => return Err(retry(&e, synced)),
        };
        let stop = match frame {
            ServerFrame::Message { message } if message.room_id == room && message.seq > *last => {
                *last = message.seq;
                on(Followed::Message(message))
            }
            ServerFrame::RoomUpdated { room: r } if r.id == room => on(Followed::Room(r)),
            ServerFrame::RoomLeft { room_id, .. } if room_id == room => {
                return Err(Dropped::Fatal(TerminalError::Usage(
                    "no longer a member of the room".into(),
                )));
            }
            ServerFrame::Synced { .. } => {
                synced = true;
                Ok(false)
            }
            _ => Ok(false),
        };
        match stop {
            Ok(true) => {
                let _ = tx.close().await;
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => return Err(Dropped::Fatal(e)),
        }
    }
}

/// Waits between reconnects: doubling from a quarter second up to 15 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(250),
        }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub fn wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(15));
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palaver_proto::{MemberState, Role, RoomMember};

    fn room(name: &str, group: bool, members: &[(Uuid, &str)]) -> Room {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        Room {
            id: Uuid::now_v7(),
            name: name.into(),
            is_group: group,
            created_at: at,
            last_seq: 0,
            members: members
                .iter()
                .map(|(id, u)| RoomMember {
                    user_id: *id,
                    username: (*u).into(),
                    display_name: u.to_uppercase(),
                    role: Role::Member,
                    delivered_seq: 0,
                    read_seq: 0,
                    joined_at: at,
                    state: MemberState::Joined,
                    avatar_url: None,
                })
                .collect(),
            last_message: None,
            unread_count: 0,
            state: MemberState::Joined,
            invited_by: None,
            mention_count: 0,
            notification_level: None,
            encrypted: false,
            mls_epoch: None,
            picture_url: None,
        }
    }

    #[test]
    fn rooms_by_id_name_or_username() {
        let (me, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let rooms = vec![
            room("Team", true, &[(me, "alice"), (bob, "bob")]),
            room("Bob B", false, &[(me, "alice"), (bob, "bob")]),
            room("twin", true, &[]),
            room("Twin", true, &[]),
        ];
        let id = rooms[0].id.to_string();
        assert_eq!(find_room(&rooms, me, &id).expect("id").name, "Team");
        assert_eq!(find_room(&rooms, me, "team").expect("name").name, "Team");
        assert_eq!(find_room(&rooms, me, "@bob").expect("user").name, "Bob B");
        assert_eq!(
            find_room(&rooms, me, "bob b").expect("dm name").name,
            "Bob B"
        );
        assert!(matches!(
            find_room(&rooms, me, "alice"),
            Err(TerminalError::RoomNotFound(_))
        ));
        assert!(matches!(
            find_room(&rooms, me, "twin"),
            Err(TerminalError::AmbiguousRoom { count: 2, .. })
        ));
        let unknown = Uuid::now_v7().to_string();
        assert!(find_room(&rooms, me, &unknown).is_err());
    }

    #[test]
    fn stdin_text_loses_its_last_newline_only() {
        assert_eq!(read_text(&b"hi\n\n"[..]).expect("read"), "hi\n");
        assert_eq!(read_text(&b"hi\r\n"[..]).expect("read"), "hi");
        let big = vec![b'x'; 100_000];
        assert_eq!(read_text(&big[..]).expect("read").len() as u64, MAX_STDIN);
    }

    /// A stand-in server for the second-factor contract (the real one is built
    /// elsewhere): login answers a challenge, and the challenge with code 123456 the
    /// tokens. Answers each request on its own connection; hands back what it was asked.
    async fn second_factor_server() -> (
        String,
        tokio::task::JoinHandle<Vec<(String, serde_json::Value)>>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < 3 {
                let (mut conn, _) = listener.accept().await.expect("accept");
                let mut buf = Vec::new();
                let body = loop {
                    let mut chunk = [0u8; 4096];
                    let n = conn.read(&mut chunk).await.expect("read");
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse::<usize>().expect("length"))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break (head.to_owned(), body.to_owned());
                        }
                    }
                };
                let path = body.0.split_whitespace().nth(1).expect("path").to_owned();
                let json: serde_json::Value = serde_json::from_str(&body.1).expect("json body");
                let (status, answer) = match (path.as_str(), json["code"].as_str()) {
                    ("/api/v1/auth/login", _) => (
                        "200 OK",
                        serde_json::json!({"secondFactor": {
                        "challenge": "ch-1", "methods": ["totp", "recovery"],
                        "expiresAt": "2030-01-01T00:00:00Z"}}),
                    ),
                    ("/api/v1/auth/login/second-factor", Some("123456")) => (
                        "200 OK",
                        serde_json::json!({
                        "accessToken": "a", "refreshToken": "r", "expiresIn": 900,
                        "user": {"id": "0199f3a0-5b1e-7c42-8d1a-2f6e9b0c4a71", "username": "alice",
                                 "displayName": "Alice", "createdAt": "2025-11-23T17:30:01.512Z"}}),
                    ),
                    _ => (
                        "401 Unauthorized",
                        serde_json::json!({"error": {
                        "code": "invalid_second_factor", "message": "wrong code"}}),
                    ),
                };
                let answer = answer.to_string();
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                conn.write_all(reply.as_bytes()).await.expect("write");
                seen.push((path, json));
            }
            seen
        });
        (base, task)
    }

    #[tokio::test]
    async fn login_answers_the_second_factor_challenge() {
        let (base, server) = second_factor_server().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = SessionFile::at(dir.path().join("session.json"));
        // No code to give: the login fails and stores nothing.
        let refused = login(&file, &base, "alice", "pw", || {
            Err(TerminalError::SecondFactorNeeded)
        })
        .await;
        assert!(matches!(refused, Err(TerminalError::SecondFactorNeeded)));
        assert_eq!(file.load().expect("load"), None);
        let session = login(&file, &base, "alice", "pw", || Ok(" 123456\n".into()))
            .await
            .expect("login with the code");
        assert_eq!(session.username, "alice");
        assert_eq!(file.load().expect("load"), Some(session));
        let seen = server.await.expect("server");
        assert_eq!(seen[0].0, "/api/v1/auth/login");
        assert_eq!(
            seen[0].1,
            serde_json::json!({"username": "alice", "password": "pw"})
        );
        assert_eq!(seen[2].0, "/api/v1/auth/login/second-factor");
        assert_eq!(
            seen[2].1,
            serde_json::json!({"challenge": "ch-1", "code": "123456"})
        );
    }

    #[test]
    fn backoff_doubles_to_a_ceiling() {
        let mut b = Backoff::default();
        let waits: Vec<_> = (0..8).map(|_| b.wait().as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 15000, 15000]);
    }
}
