//! A typed Palaver client over the wire types of `palaver-proto`: REST calls with
//! `reqwest` and the real-time socket with `tokio-tungstenite`. The CLI, the load
//! generator and the server's integration tests all use it.

mod admin;
mod directory;
pub mod e2ee;

use std::collections::VecDeque;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use palaver_proto::*;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered with its error shape.
    #[error("{status} {code}: {message}")]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The server answered with something that is not its error shape.
    #[error("unexpected response {status}: {body}")]
    Unexpected { status: u16, body: String },
    #[error("websocket: {0}")]
    Ws(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("decode: {0}")]
    Decode(#[from] serde_json::Error),
    /// The socket closed, with the server's close code and reason if it gave one.
    #[error("socket closed: {0:?}")]
    Closed(Option<(u16, String)>),
    #[error("timed out")]
    Timeout,
    #[error("bad url: {0}")]
    Url(#[from] url::ParseError),
}

impl ClientError {
    /// The API error code, if the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A REST client, optionally authenticated.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    token: Option<String>,
}

/// Sends a request; answers the status and the body as JSON (a string if it is not JSON).
async fn exchange(req: reqwest::RequestBuilder) -> Result<(u16, serde_json::Value)> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await?;
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
            String::from_utf8_lossy(&bytes).into(),
        ))
    };
    Ok((status, value))
}

/// Decodes an answer, or turns an error status into `ClientError::Api`.
fn typed<T: DeserializeOwned>(status: u16, value: serde_json::Value) -> Result<(u16, T)> {
    if status >= 400 {
        return Err(match serde_json::from_value::<ErrorBody>(value.clone()) {
            Ok(e) => ClientError::Api {
                status,
                code: e.error.code,
                message: e.error.message,
            },
            Err(_) => ClientError::Unexpected {
                status,
                body: value.to_string(),
            },
        });
    }
    // 204 has no body; decode it as JSON null.
    Ok((status, serde_json::from_value(value)?))
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Client {
            http,
            base: url::Url::parse(base)?,
            token: None,
        })
    }

    /// The same client, sending this access token.
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Any request: JSON body in, status and raw JSON out (error statuses included).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let mut req = self.http.request(method, self.base.join(path)?);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        exchange(req).await
    }

    /// A typed request: the body as JSON, the answer decoded, an error status as `Api`.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(u16, T)> {
        let body = body.map(serde_json::to_value).transpose()?;
        let (status, value) = self.raw(method, path, body.as_ref()).await?;
        typed(status, value)
    }

    /// Uploads a file as the `file` part of a multipart form; `mime` is only what the
    /// client claims: the server decides the type from the bytes.
    pub async fn upload(&self, filename: &str, mime: &str, bytes: Vec<u8>) -> Result<Media> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str(mime)?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let mut req = self
            .http
            .post(self.base.join("/api/v1/media/upload")?)
            .multipart(form);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let (status, value) = exchange(req).await?;
        Ok(typed(status, value)?.1)
    }

    /// What the caller's uploads occupy, and their quota.
    pub async fn media_usage(&self) -> Result<MediaUsage> {
        Ok(self
            .call::<(), _>(Method::GET, "/api/v1/media/usage", None)
            .await?
            .1)
    }

    pub async fn register(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<AuthResponse> {
        let body = RegisterRequest {
            username: username.into(),
            password: password.into(),
            display_name: display_name.map(Into::into),
        };
        Ok(self
            .call(Method::POST, "/api/v1/auth/register", Some(&body))
            .await?
            .1)
    }

    /// Logs in to an account without a second factor (one with a second factor is an
    /// error here: use [`Client::login_start`]).
    pub async fn login(&self, username: &str, password: &str) -> Result<AuthResponse> {
        match self.login_start(username, password).await? {
            LoginResponse::Tokens(auth) => Ok(auth),
            LoginResponse::SecondFactor { .. } => Err(ClientError::Unexpected {
                status: 200,
                body: "the account needs a second factor".into(),
            }),
        }
    }

    /// Logs in, answering either the tokens or, for an account with a second factor, the
    /// challenge to answer with [`Client::login_second_factor`].
    pub async fn login_start(&self, username: &str, password: &str) -> Result<LoginResponse> {
        let body = LoginRequest {
            username: username.into(),
            password: password.into(),
        };
        Ok(self
            .call(Method::POST, "/api/v1/auth/login", Some(&body))
            .await?
            .1)
    }

    /// Answers a login's second-factor challenge with a code (TOTP or a recovery code).
    pub async fn login_second_factor(&self, challenge: &str, code: &str) -> Result<AuthResponse> {
        let body = serde_json::json!({ "challenge": challenge, "code": code });
        Ok(self
            .call(
                Method::POST,
                "/api/v1/auth/login/second-factor",
                Some(&body),
            )
            .await?
            .1)
    }

    /// Ends this token's session (and the refresh token's, if given).
    pub async fn logout(&self, refresh_token: Option<&str>) -> Result<()> {
        let body = LogoutRequest {
            refresh_token: refresh_token.map(Into::into),
        };
        let body = serde_json::to_value(&body)?;
        self.no_content_with(Method::POST, "/api/v1/auth/logout", Some(&body))
            .await
    }

    /// One user's presence.
    pub async fn presence(&self, user: Uuid) -> Result<Presence> {
        let path = format!("/api/v1/presence/{user}");
        Ok(self.call::<(), _>(Method::GET, &path, None).await?.1)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<AuthResponse> {
        let body = RefreshRequest {
            refresh_token: refresh_token.into(),
        };
        Ok(self
            .call(Method::POST, "/api/v1/auth/refresh", Some(&body))
            .await?
            .1)
    }

    pub async fn me(&self) -> Result<User> {
        Ok(self
            .call::<(), _>(Method::GET, "/api/v1/users/me", None)
            .await?
            .1)
    }

    /// Creates a room; the status tells created (201) from an existing 1:1 room (200).
    pub async fn create_room(
        &self,
        name: Option<&str>,
        is_group: bool,
        member_ids: &[Uuid],
    ) -> Result<(u16, Room)> {
        let body = CreateRoomRequest {
            name: name.map(Into::into),
            is_group,
            member_ids: member_ids.to_vec(),
            encrypted: false,
        };
        self.create_room_with(&body).await
    }

    /// Creates a room from a whole request (an encrypted one, say).
    pub async fn create_room_with(&self, body: &CreateRoomRequest) -> Result<(u16, Room)> {
        self.call(Method::POST, "/api/v1/rooms/create", Some(body))
            .await
    }

    /// Accepts a request or an invitation to the room.
    pub async fn accept(&self, room: Uuid) -> Result<Room> {
        let path = format!("/api/v1/rooms/{room}/accept");
        Ok(self.call::<(), Room>(Method::POST, &path, None).await?.1)
    }

    /// Declines a request or an invitation to the room.
    pub async fn decline(&self, room: Uuid) -> Result<()> {
        let path = format!("/api/v1/rooms/{room}/decline");
        self.no_content(Method::POST, &path).await
    }

    /// Blocks a user.
    pub async fn block(&self, user: Uuid) -> Result<()> {
        let path = format!("/api/v1/users/me/blocks/{user}");
        self.no_content(Method::PUT, &path).await
    }

    /// Lifts a block.
    pub async fn unblock(&self, user: Uuid) -> Result<()> {
        let path = format!("/api/v1/users/me/blocks/{user}");
        self.no_content(Method::DELETE, &path).await
    }

    /// The people this user blocked.
    pub async fn blocks(&self) -> Result<BlockList> {
        let path = "/api/v1/users/me/blocks";
        Ok(self.call::<(), BlockList>(Method::GET, path, None).await?.1)
    }

    /// A request answered with 204 and no body; anything else is an error.
    async fn no_content(&self, method: Method, path: &str) -> Result<()> {
        self.no_content_with(method, path, None).await
    }

    /// `no_content` with a JSON body.
    async fn no_content_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<()> {
        let (status, value) = self.raw(method, path, body).await?;
        if status == 204 {
            Ok(())
        } else {
            typed::<serde_json::Value>(status, value).map(|_| ())
        }
    }

    pub async fn rooms(&self) -> Result<Vec<Room>> {
        Ok(self
            .call::<(), RoomList>(Method::GET, "/api/v1/rooms", None)
            .await?
            .1
            .rooms)
    }

    /// Sends over REST; the status tells new (201) from an idempotent retry (200).
    pub async fn send(
        &self,
        room_id: Uuid,
        client_msg_id: &str,
        content: &str,
    ) -> Result<(u16, Message)> {
        let body = SendMessageRequest {
            room_id,
            client_msg_id: client_msg_id.into(),
            content: content.into(),
            kind: MessageType::Text,
            media_id: None,
            ..Default::default()
        };
        self.call(Method::POST, "/api/v1/messages/send", Some(&body))
            .await
    }

    /// Sends any message (media included) over REST; the status tells new (201) from an
    /// idempotent retry (200).
    pub async fn send_request(&self, message: &SendMessageRequest) -> Result<(u16, Message)> {
        self.call(Method::POST, "/api/v1/messages/send", Some(message))
            .await
    }

    pub async fn history(
        &self,
        room_id: Uuid,
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<HistoryResponse> {
        let mut path = format!("/api/v1/messages/history?roomId={room_id}");
        for (k, v) in [
            ("before", before.map(|v| v.to_string())),
            ("after", after.map(|v| v.to_string())),
            ("limit", limit.map(|v| v.to_string())),
        ] {
            if let Some(v) = v {
                path.push_str(&format!("&{k}={v}"));
            }
        }
        Ok(self.call::<(), _>(Method::GET, &path, None).await?.1)
    }

    /// `GET /api/v1/search`: messages matching `query.q`, newest first.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResponse> {
        Ok(self
            .call::<(), _>(Method::GET, &search_path(query), None)
            .await?
            .1)
    }

    /// Opens the real-time socket with this client's token.
    pub async fn connect(&self) -> Result<Socket> {
        self.connect_with_origin(None).await
    }

    /// Opens the socket, sending an `Origin` header as a browser would.
    pub async fn connect_with_origin(&self, origin: Option<&str>) -> Result<Socket> {
        self.connect_with(&ConnectOptions {
            origin: origin.map(Into::into),
            ..Default::default()
        })
        .await
    }

    /// Opens the socket with options (source address, buffer sizes, Origin, how the token
    /// is sent).
    pub async fn connect_with(&self, options: &ConnectOptions) -> Result<Socket> {
        let origin = options.origin.as_deref();
        let mut url = self.base.join("/api/v1/ws")?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|_| ClientError::Unexpected {
                status: 0,
                body: "bad scheme".into(),
            })?;
        let mut req = url.as_str().into_client_request().map_err(Box::new)?;
        let header_token = self.token.as_ref().filter(|_| !options.auth_frame);
        if let Some(token) = header_token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ClientError::Unexpected {
                    status: 0,
                    body: "bad token".into(),
                }
            })?;
            req.headers_mut().insert("authorization", value);
        }
        if let Some(origin) = origin {
            let value = HeaderValue::from_str(origin).map_err(|_| ClientError::Unexpected {
                status: 0,
                body: "bad origin".into(),
            })?;
            req.headers_mut().insert("origin", value);
        }
        let handshake = if options.local_addr.is_some() || options.small_buffers {
            let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
            let port = url.port_or_known_default().unwrap_or(80);
            let remote = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| ClientError::Ws(Box::new(e.into())))?
                .next()
                .ok_or(ClientError::Unexpected {
                    status: 0,
                    body: format!("cannot resolve {host}"),
                })?;
            let socket = if remote.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(|e| ClientError::Ws(Box::new(e.into())))?;
            if let Some(local) = options.local_addr {
                socket
                    .bind(std::net::SocketAddr::new(local, 0))
                    .map_err(|e| ClientError::Ws(Box::new(e.into())))?;
            }
            let stream = socket
                .connect(remote)
                .await
                .map_err(|e| ClientError::Ws(Box::new(e.into())))?;
            let _ = stream.set_nodelay(true);
            let config = options.small_buffers.then(|| {
                WebSocketConfig::default()
                    .read_buffer_size(4096)
                    .write_buffer_size(0)
                    .max_write_buffer_size(1 << 20)
            });
            tokio_tungstenite::client_async_with_config(req, MaybeTlsStream::Plain(stream), config)
                .await
        } else {
            tokio_tungstenite::connect_async(req).await
        };
        let (ws, _) = handshake.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(resp) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                match serde_json::from_str::<ErrorBody>(&body) {
                    Ok(e) => ClientError::Api {
                        status,
                        code: e.error.code,
                        message: e.error.message,
                    },
                    Err(_) => ClientError::Unexpected { status, body },
                }
            }
            other => ClientError::Ws(Box::new(other)),
        })?;
        let mut socket = Socket {
            ws,
            pending: VecDeque::new(),
            next_id: 0,
        };
        if let (true, Some(token)) = (options.auth_frame, &self.token) {
            let frame = ClientEnvelope {
                id: None,
                frame: ClientFrame::Auth {
                    token: token.clone(),
                },
            };
            socket.send_text(serde_json::to_string(&frame)?).await?;
        }
        Ok(socket)
    }
}

/// How to open a socket.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// An `Origin` header, as a browser sends.
    pub origin: Option<String>,
    /// The local address to connect from (plain `ws://` only). Spreading connections over
    /// 127.0.0.0/8 lets one machine open more than 64k of them.
    pub local_addr: Option<std::net::IpAddr>,
    /// Small read/write buffers, so a load generator can hold many idle sockets.
    pub small_buffers: bool,
    /// Send the token as an `auth` first frame, as a browser does, instead of an
    /// `Authorization` header on the handshake. The answer (`hello`, or `error` and close
    /// 4003, `palaver_proto::close::AUTH_FAILED`) is the first frame read.
    pub auth_frame: bool,
}

/// An open real-time connection.
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while waiting for a specific answer, returned by `next` first.
    pending: VecDeque<ServerFrame>,
    next_id: u64,
}

impl Socket {
    /// Sends a frame with a fresh id; returns the id.
    pub async fn send_frame(&mut self, frame: ClientFrame) -> Result<String> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let env = ClientEnvelope {
            id: Some(id.clone()),
            frame,
        };
        self.send_text(serde_json::to_string(&env)?).await?;
        Ok(id)
    }

    /// Sends any text, valid or not.
    pub async fn send_text(&mut self, text: String) -> Result<()> {
        self.ws
            .send(WsMessage::Text(text.into()))
            .await
            .map_err(|e| ClientError::Ws(Box::new(e)))
    }

    /// Sends a raw WebSocket message (binary, oversized, …).
    pub async fn send_ws(&mut self, msg: WsMessage) -> Result<()> {
        self.ws
            .send(msg)
            .await
            .map_err(|e| ClientError::Ws(Box::new(e)))
    }

    async fn read(&mut self) -> Result<ServerFrame> {
        loop {
            match self.ws.next().await {
                Some(Ok(WsMessage::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(WsMessage::Close(frame))) => {
                    return Err(ClientError::Closed(
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    ));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ClientError::Ws(Box::new(e))),
                None => return Err(ClientError::Closed(None)),
            }
        }
    }

    /// The next server frame.
    pub async fn next(&mut self) -> Result<ServerFrame> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(f);
        }
        self.read().await
    }

    /// The next frame within `timeout`.
    pub async fn next_within(&mut self, timeout: Duration) -> Result<ServerFrame> {
        tokio::time::timeout(timeout, self.next())
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Reads until a frame matches, keeping the others for `next`.
    pub async fn wait_for<F: Fn(&ServerFrame) -> bool>(
        &mut self,
        timeout: Duration,
        pred: F,
    ) -> Result<ServerFrame> {
        if let Some(pos) = self.pending.iter().position(&pred)
            && let Some(f) = self.pending.remove(pos)
        {
            return Ok(f);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.read())
                .await
                .map_err(|_| ClientError::Timeout)??;
            if pred(&frame) {
                return Ok(frame);
            }
            self.pending.push_back(frame);
        }
    }

    /// Waits for the answer to frame `id`: `Ok` for ack/synced/pong, `Err(Api)` for error.
    pub async fn answer(&mut self, id: &str, timeout: Duration) -> Result<ServerFrame> {
        let frame = self
            .wait_for(timeout, |f| match f {
                ServerFrame::Ack { id: Some(i), .. }
                | ServerFrame::Synced { id: Some(i), .. }
                | ServerFrame::Pong { id: Some(i) } => i == id,
                ServerFrame::Error { id: Some(i), .. } => i == id,
                _ => false,
            })
            .await?;
        match frame {
            ServerFrame::Error { code, message, .. } => Err(ClientError::Api {
                status: code.http_status(),
                code,
                message,
            }),
            other => Ok(other),
        }
    }

    /// Sends a message and waits for its ack; returns the stored message and whether it
    /// was a duplicate.
    pub async fn send_message(
        &mut self,
        room_id: Uuid,
        client_msg_id: &str,
        content: &str,
    ) -> Result<(Message, bool)> {
        self.send_request(SendMessageRequest {
            room_id,
            client_msg_id: client_msg_id.into(),
            content: content.into(),
            kind: MessageType::Text,
            media_id: None,
            ..Default::default()
        })
        .await
    }

    /// Sends any message (media included) and waits for its ack: the stored message and
    /// whether it was a retry.
    pub async fn send_request(&mut self, message: SendMessageRequest) -> Result<(Message, bool)> {
        let id = self.send_frame(ClientFrame::Send { message }).await?;
        match self.answer(&id, Duration::from_secs(10)).await? {
            ServerFrame::Ack {
                message: Some(m),
                duplicate,
                ..
            } => Ok((m, duplicate)),
            other => Err(ClientError::Unexpected {
                status: 0,
                body: format!("{other:?}"),
            }),
        }
    }

    /// Splits the socket into a writer and a reader, for a client that sends while it
    /// waits for frames (frames already read and kept go to the reader first).
    pub fn split(self) -> (SocketSender, SocketReceiver) {
        let (sink, stream) = self.ws.split();
        (
            SocketSender {
                sink,
                next_id: self.next_id,
            },
            SocketReceiver {
                stream,
                pending: self.pending,
            },
        )
    }

    /// The underlying WebSocket stream, for callers that split it into reader and writer.
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.ws
    }

    /// Closes politely.
    pub async fn close(mut self) -> Result<()> {
        self.ws
            .close(None)
            .await
            .map_err(|e| ClientError::Ws(Box::new(e)))
    }
}

/// The path and query of `GET /api/v1/search` for `query`, encoded.
pub fn search_path(query: &SearchQuery) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("q", &query.q);
    if let Some(room) = query.room_id {
        form.append_pair("roomId", &room.to_string());
    }
    if let Some(limit) = query.limit {
        form.append_pair("limit", &limit.to_string());
    }
    if let Some(before) = query.before {
        form.append_pair("before", &before.to_string());
    }
    format!("/api/v1/search?{}", form.finish())
}

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The writing half of a split [`Socket`].
pub struct SocketSender {
    sink: futures::stream::SplitSink<WsStream, WsMessage>,
    next_id: u64,
}

impl SocketSender {
    /// Sends a frame with a fresh id; returns the id.
    pub async fn send_frame(&mut self, frame: ClientFrame) -> Result<String> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let env = ClientEnvelope {
            id: Some(id.clone()),
            frame,
        };
        self.sink
            .send(WsMessage::Text(serde_json::to_string(&env)?.into()))
            .await
            .map_err(|e| ClientError::Ws(Box::new(e)))?;
        Ok(id)
    }

    /// Closes politely.
    pub async fn close(mut self) -> Result<()> {
        self.sink
            .close()
            .await
            .map_err(|e| ClientError::Ws(Box::new(e)))
    }
}

/// The reading half of a split [`Socket`].
pub struct SocketReceiver {
    stream: futures::stream::SplitStream<WsStream>,
    pending: VecDeque<ServerFrame>,
}

impl SocketReceiver {
    /// The next server frame; `Closed` once the socket closed.
    pub async fn next(&mut self) -> Result<ServerFrame> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(f);
        }
        loop {
            match self.stream.next().await {
                Some(Ok(WsMessage::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(WsMessage::Close(frame))) => {
                    return Err(ClientError::Closed(
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    ));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ClientError::Ws(Box::new(e))),
                None => return Err(ClientError::Closed(None)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_response_reads_tokens_and_challenges() {
        let tokens = serde_json::json!({
            "accessToken": "a", "refreshToken": "r", "expiresIn": 900,
            "user": {"id": "0199f3a0-5b1e-7c42-8d1a-2f6e9b0c4a71", "username": "alice",
                     "displayName": "Alice", "createdAt": "2025-11-23T17:30:01.512Z"}
        });
        match serde_json::from_value::<LoginResponse>(tokens).expect("tokens") {
            LoginResponse::Tokens(auth) => assert_eq!(auth.user.username, "alice"),
            other => panic!("{other:?}"),
        }
        let challenge = serde_json::json!({"secondFactor": {
            "challenge": "opaque", "methods": ["totp", "recovery"],
            "expiresAt": "2025-11-23T17:35:01Z"}});
        match serde_json::from_value::<LoginResponse>(challenge).expect("challenge") {
            LoginResponse::SecondFactor { second_factor } => {
                assert_eq!(second_factor.challenge, "opaque");
                assert_eq!(second_factor.methods, ["totp", "recovery"]);
                assert_eq!(
                    second_factor.expires_at,
                    time::macros::datetime!(2025-11-23 17:35:01 UTC)
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(serde_json::from_value::<LoginResponse>(serde_json::json!({"x": 1})).is_err());
    }
}
