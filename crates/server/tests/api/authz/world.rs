//! The world the matrix runs in: the server, the people, fixture rooms, tokens that no
//! longer work, signed links, and a push service on loopback.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use palaver_proto::Media;
use palaver_server::service::links::{LinkSigner, MediaFile};
use parking_lot::Mutex;
use rand::RngCore;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;
use web_push_native::p256::SecretKey;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::helpers::*;

use super::table::Actor;

/// At least 32 bytes, as the server requires; known here so an expired token (and an
/// expired media link) can be signed.
const JWT_SECRET: &str = "authorisation-matrix-secret-0123456789";
/// How long a socket without a header has to authenticate: short, so the cells that wait
/// for it do not hold the matrix up.
const AUTH_TIMEOUT_MS: u64 = 300;
/// How long a connected member's devices have to acknowledge a message before a push.
pub(super) const ACK_DELAY_MS: u64 = 3000;

/// The server, the people, and tokens that no longer work.
pub(super) struct World {
    pub(super) app: TestApp,
    pub(super) http: reqwest::Client,
    pub(super) owner: TestUser,
    pub(super) admin: TestUser,
    pub(super) member: TestUser,
    pub(super) stranger: TestUser,
    pub(super) removed: TestUser,
    /// Invited to every fixture room by the owner, who does not know them; never accepts
    /// (but in the rows that test accepting and declining, on a fixture of their own).
    pub(super) invited: TestUser,
    /// A member of every fixture room whom the owner blocked.
    pub(super) blocked: TestUser,
    /// Someone to add to rooms; never a caller.
    pub(super) extra: TestUser,
    /// In no room at all: the one blocked and unblocked by the block rows.
    pub(super) nobody: TestUser,
    /// 1:1 rooms the callers opened with the owner themselves: what the observers are told
    /// about those is theirs to hear.
    pub(super) asked: Mutex<Vec<Uuid>>,
    /// The member's access token, signed with the right key but expired.
    pub(super) expired: String,
    /// The refresh token of that token's session, which is still open.
    pub(super) expired_refresh: String,
    /// An access token of the member's session that ended with logout, and its refresh token.
    pub(super) revoked: String,
    pub(super) revoked_refresh: String,
    pub(super) push: PushSink,
    /// Every fixture room so far.
    pub(super) rooms: Mutex<Vec<Uuid>>,
    /// When the removed member was last in a room that had new messages.
    pub(super) last_fixture: Mutex<Instant>,
    pub(super) counter: AtomicU64,
    /// Another picture of the owner's, never shared: its links, for `Link::OtherObject`.
    pub(super) other_picture: Media,
    /// The owner's MLS device, registered by the owner's own session: `{deviceId}`.
    pub(super) owner_device: palaver_client::e2ee::MlsDevice,
}

/// A group as the matrix needs it: the owner, an admin, a member, and a removed member.
pub(super) struct Fixture {
    pub(super) room: Uuid,
    /// The owner's text message, sent before the removal.
    pub(super) message: Uuid,
    /// The owner's picture, shared in the room before the removal, as uploaded (with the
    /// owner's signed links).
    pub(super) picture: Media,
    /// The message that shared it.
    pub(super) picture_message: Uuid,
}

/// What a request carries.
pub(super) enum Payload {
    Empty,
    Json(Value),
    /// A multipart form with a small PNG as its `file` part.
    Picture,
}

impl World {
    pub(super) async fn new() -> World {
        let push = PushSink::start().await;
        let app = spawn_app_with(|c| {
            c.jwt_secret = Some(JWT_SECRET.into());
            c.ws_auth_timeout_ms = AUTH_TIMEOUT_MS;
            c.insecure_fast_password_hashing = true;
            c.push.outbound_allow = vec!["127.0.0.1".into()];
            c.push.collapse_ms = 100;
            c.push.ack_delay_ms = ACK_DELAY_MS;
        })
        .await;
        let mut users = app
            .users(&[
                "owner", "admin", "member", "stranger", "removed", "invited", "blocked", "extra",
                "nobody",
            ])
            .await
            .into_iter();
        let mut next = || users.next().expect("user");
        let (owner, admin, member, stranger, removed) = (next(), next(), next(), next(), next());
        let (invited, blocked, extra, nobody) = (next(), next(), next(), next());

        let session = app
            .client()
            .login(&member.name, PASSWORD)
            .await
            .expect("login");
        let expired = expired_token(&member, &session.access_token);
        let ended = app
            .client()
            .login(&member.name, PASSWORD)
            .await
            .expect("login");
        let (status, body) = app
            .client()
            .with_token(&ended.access_token)
            .raw(Method::POST, "/api/v1/auth/logout", None)
            .await
            .expect("logout");
        assert_eq!(status, 204, "{body}");
        let other_picture = owner
            .api
            .upload("other.png", "image/png", png())
            .await
            .expect("upload");

        let owner_device = palaver_client::e2ee::MlsDevice::register(&owner.api, "matrix", 1)
            .await
            .expect("owner's device");

        World {
            owner_device,
            http: reqwest::Client::new(),
            owner,
            admin,
            member,
            stranger,
            removed,
            invited,
            blocked,
            extra,
            nobody,
            asked: Mutex::new(Vec::new()),
            expired,
            expired_refresh: session.refresh_token,
            revoked: ended.access_token,
            revoked_refresh: ended.refresh_token,
            push,
            rooms: Mutex::new(Vec::new()),
            last_fixture: Mutex::new(Instant::now()),
            counter: AtomicU64::new(0),
            other_picture,
            app,
        }
    }

    /// The caller's own account, for the seven who have a working token.
    pub(super) fn user(&self, actor: Actor) -> Option<&TestUser> {
        match actor {
            Actor::Owner => Some(&self.owner),
            Actor::Admin => Some(&self.admin),
            Actor::Member => Some(&self.member),
            Actor::Stranger => Some(&self.stranger),
            Actor::Removed => Some(&self.removed),
            Actor::Invited => Some(&self.invited),
            Actor::Blocked => Some(&self.blocked),
            Actor::Anonymous | Actor::Expired | Actor::Revoked => None,
        }
    }

    /// The token the caller sends, if any.
    pub(super) fn token(&self, actor: Actor) -> Option<String> {
        match actor {
            Actor::Anonymous => None,
            Actor::Expired => Some(self.expired.clone()),
            Actor::Revoked => Some(self.revoked.clone()),
            other => self.user(other).map(|u| u.auth.access_token.clone()),
        }
    }

    pub(super) fn unique(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    pub(super) fn rooms(&self) -> Vec<Uuid> {
        self.rooms.lock().clone()
    }

    /// The ids of everyone a stranger must never hear about.
    pub(super) fn insiders(&self) -> Vec<String> {
        [
            &self.owner,
            &self.admin,
            &self.member,
            &self.removed,
            &self.invited,
            &self.blocked,
            &self.extra,
        ]
        .iter()
        .map(|u| u.id.to_string())
        .collect()
    }

    /// A request that must succeed with `status`; returns the body.
    pub(super) async fn expect(
        &self,
        user: &TestUser,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, body) = user
            .api
            .raw(method.clone(), path, body.as_ref())
            .await
            .expect("request");
        assert_eq!(got, status, "{method} {path}: {body}");
        body
    }

    /// A new group: the owner made it with an admin, a member, the blocked member (the
    /// owner lifts the block for that, and blocks again at the end) and the removed member,
    /// who all accepted, and invited the invited member; the owner shared a text and a
    /// picture; then the owner removed the removed member.
    pub(super) async fn fixture(&self) -> Fixture {
        self.owner
            .api
            .unblock(self.blocked.id)
            .await
            .expect("unblock");
        let room = self
            .owner
            .group(
                "matrix",
                &[&self.admin, &self.member, &self.blocked, &self.removed],
            )
            .await
            .id;
        let invite = format!("/api/v1/rooms/{room}/members");
        let invited = json!({"userIds": [self.invited.id]});
        let answer = self
            .expect(&self.owner, Method::POST, &invite, Some(invited), 200)
            .await;
        assert!(
            answer["members"]
                .as_array()
                .expect("members")
                .iter()
                .any(|m| m["userId"] == json!(self.invited.id) && m["state"] == "invited"),
            "the owner does not know the invited member: {answer}"
        );
        let admin = format!("/api/v1/rooms/{room}/members/{}", self.admin.id);
        let role = json!({"role": "admin"});
        self.expect(&self.owner, Method::PATCH, &admin, Some(role), 200)
            .await;
        let message = self.owner.send(room, "the owner's message").await.id;
        let picture = self
            .owner
            .api
            .upload("picture.png", "image/png", png())
            .await
            .expect("upload");
        let shared = json!({"roomId": room, "clientMsgId": Uuid::now_v7().to_string(),
            "type": "image", "mediaId": picture.id, "content": "a picture"});
        let sent = self
            .expect(
                &self.owner,
                Method::POST,
                "/api/v1/messages/send",
                Some(shared),
                201,
            )
            .await;
        let picture_message = sent["id"].as_str().and_then(|id| id.parse().ok());
        let removed = format!("/api/v1/rooms/{room}/members/{}", self.removed.id);
        self.expect(&self.owner, Method::DELETE, &removed, None, 204)
            .await;
        self.owner.api.block(self.blocked.id).await.expect("block");
        self.rooms.lock().push(room);
        *self.last_fixture.lock() = Instant::now();
        Fixture {
            room,
            message,
            picture,
            picture_message: picture_message.expect("the message's id"),
        }
    }

    /// Subscribes `user` to the push sink under `name`; returns the subscription's id.
    pub(super) async fn subscribe(&self, user: &TestUser, name: &str) -> Uuid {
        let body = subscription(&self.push.url(name));
        let (status, body) = user
            .api
            .raw(Method::POST, "/api/v1/push/subscriptions", Some(&body))
            .await
            .expect("subscribe");
        assert!(status == 201 || status == 200, "subscribe: {status} {body}");
        body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("subscription id")
    }

    /// Any request, as `(status, body text)`.
    pub(super) async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        in_query: bool,
        payload: Payload,
    ) -> (u16, String) {
        let mut url = format!("{}{path}", self.app.base);
        if let (Some(token), true) = (token, in_query) {
            let sep = if url.contains('?') { '&' } else { '?' };
            url.push_str(&format!("{sep}access_token={token}"));
        }
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, url);
        if let (Some(token), false) = (token, in_query) {
            req = req.bearer_auth(token);
        }
        req = match payload {
            Payload::Empty => req,
            Payload::Json(body) => req.json(&body),
            Payload::Picture => {
                let part = reqwest::multipart::Part::bytes(png())
                    .file_name("picture.png")
                    .mime_str("image/png")
                    .expect("mime");
                req.multipart(reqwest::multipart::Form::new().part("file", part))
            }
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A signed link to `file` of object `id` that expired an hour ago, signed with the
/// server's key (derived from the secret as the server does).
pub(super) fn expired_link(id: Uuid, file: MediaFile) -> String {
    let signer = LinkSigner::new(JWT_SECRET.as_bytes(), 60);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    signer.link(id, file, now - 3600)
}

/// `path` with the query (`?exp=…&sig=…`) of `link`.
pub(super) fn with_query_of(path: &str, link: &str) -> String {
    let query = link.split_once('?').expect("a signed link has a query").1;
    format!("{path}?{query}")
}

/// `link` with one byte of its signature changed.
pub(super) fn tampered(link: &str) -> String {
    let (head, sig) = link.split_once("&sig=").expect("a signature");
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).expect("base64url");
    bytes[0] ^= 0x01;
    format!("{head}&sig={}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The member's identity, signed with the server's key, expired an hour ago.
fn expired_token(user: &TestUser, live: &str) -> String {
    let payload = live.split('.').nth(1).expect("payload part");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("claims");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = json!({
        "sub": user.id, "sid": claims["sid"], "iat": now - 7200, "exp": now - 3600,
        "aud": "palaver", "iss": "palaver",
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &expired,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

/// A small PNG (so it gets a thumbnail).
pub(super) fn png() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// `PushSubscription.toJSON()` for `endpoint`, with a real P-256 key.
pub(super) fn subscription(endpoint: &str) -> Value {
    let secret = loop {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        if let Ok(key) = SecretKey::from_slice(&raw) {
            break key;
        }
    };
    let mut auth = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut auth);
    let public = secret.public_key().to_encoded_point(false);
    json!({
        "endpoint": endpoint,
        "expirationTime": null,
        "keys": {"p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()), "auth": URL_SAFE_NO_PAD.encode(auth)},
    })
}

/// A push service on loopback that accepts everything and remembers who it was for.
pub(super) struct PushSink {
    pub(super) base: String,
    pub(super) hits: Arc<Mutex<Vec<String>>>,
}

impl PushSink {
    pub(super) async fn start() -> PushSink {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(
                "/push/{name}",
                post(
                    |State(hits): State<Arc<Mutex<Vec<String>>>>,
                     axum::extract::Path(name): axum::extract::Path<String>| async move {
                        hits.lock().push(name);
                        StatusCode::CREATED
                    },
                ),
            )
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the push sink");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PushSink { base, hits }
    }

    pub(super) fn url(&self, name: &str) -> String {
        format!("{}/push/{name}", self.base)
    }

    /// The endpoint names that received a notification, one per notification.
    pub(super) fn hits(&self) -> Vec<String> {
        self.hits.lock().clone()
    }
}
