//! Sockets that watch while the matrix runs (nothing about the room may reach the stranger
//! or the removed member), and the handshakes and signed links the cells use.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use palaver_client::{ClientError, Socket};
use palaver_proto::{ClientFrame, Media, PresenceStatus, ServerFrame};
use palaver_server::service::links::MediaFile;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

use super::table::{Actor, Got, Link};
use super::world::{Fixture, Payload, World, expired_link, tampered, with_query_of};

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Rule {
    /// Hears everything in the rooms (so the others' silence means something).
    Witness,
    /// Never in any fixture room: nothing about them or their people, no presence.
    Stranger,
    /// Removed from every fixture room: nothing about a room after its `room.left`, no
    /// presence (they share no room with anyone whenever presence changes).
    Removed,
}

/// An open socket and what it has been sent.
pub(super) struct Observer {
    pub(super) rule: Rule,
    pub(super) socket: Socket,
    pub(super) left: HashSet<String>,
    pub(super) kinds: BTreeSet<String>,
    pub(super) leaks: Vec<String>,
}

/// The wire `type` of a server frame.
pub(super) fn kind_of(frame: &ServerFrame) -> String {
    frame.kind().to_owned()
}

impl Observer {
    pub(super) async fn open(user: &TestUser, rule: Rule) -> Observer {
        let mut socket = user.connect().await;
        // The first frame starts live traffic at once instead of after the sync grace.
        let id = socket.send_frame(ClientFrame::Ping).await.expect("ping");
        socket.answer(&id, WAIT).await.expect("pong");
        Observer {
            rule,
            socket,
            left: HashSet::new(),
            kinds: BTreeSet::new(),
            leaks: Vec::new(),
        }
    }

    pub(super) fn inspect(
        &mut self,
        frame: &ServerFrame,
        rooms: &[String],
        insiders: &[String],
        asked: &[Uuid],
    ) {
        let text = serde_json::to_string(frame).expect("frame");
        self.kinds.insert(kind_of(frame));
        // The 1:1 room the observer opened with the owner in the row that tests it.
        let room = match frame {
            ServerFrame::RoomUpdated { room } => Some(room.id),
            ServerFrame::RoomLeft { room_id, .. } => Some(*room_id),
            _ => None,
        };
        if room.is_some_and(|id| asked.contains(&id)) {
            return;
        }
        let presence = matches!(frame, ServerFrame::Presence { .. });
        let leak = match self.rule {
            Rule::Witness => false,
            Rule::Stranger => presence || rooms.iter().chain(insiders).any(|id| text.contains(id)),
            Rule::Removed => {
                if let ServerFrame::RoomLeft { room_id, .. } = frame {
                    self.left.insert(room_id.to_string());
                    false
                } else {
                    presence || self.left.iter().any(|id| text.contains(id))
                }
            }
        };
        if leak {
            self.leaks.push(text);
        }
    }

    /// Reads everything that arrives until the socket is quiet for `quiet`.
    pub(super) async fn drain(
        &mut self,
        rooms: &[String],
        insiders: &[String],
        asked: &[Uuid],
        quiet: Duration,
    ) {
        loop {
            match self.socket.next_within(quiet).await {
                Ok(frame) => self.inspect(&frame, rooms, insiders, asked),
                Err(ClientError::Timeout) => return,
                Err(err) => panic!("the {:?} socket failed: {err}", self.rule),
            }
        }
    }
}

/// The three observers.
pub(super) struct Watch {
    pub(super) witness: Observer,
    pub(super) stranger: Observer,
    pub(super) removed: Observer,
}

impl Watch {
    pub(super) async fn open(w: &World) -> Watch {
        Watch {
            witness: Observer::open(&w.admin, Rule::Witness).await,
            stranger: Observer::open(&w.stranger, Rule::Stranger).await,
            removed: Observer::open(&w.removed, Rule::Removed).await,
        }
    }

    pub(super) async fn drain(&mut self, w: &World, quiet: Duration) {
        let rooms: Vec<String> = w.rooms().iter().map(Uuid::to_string).collect();
        let insiders = w.insiders();
        let asked = w.asked.lock().clone();
        for o in [&mut self.witness, &mut self.stranger, &mut self.removed] {
            o.drain(&rooms, &insiders, &asked, quiet).await;
        }
    }

    /// After the owner's or the member's only socket closed: waits until the witness hears
    /// they are offline, so the announcement cannot land while the next fixture briefly has
    /// the removed member in it (which would be a legitimate delivery).
    pub(super) async fn settle(&mut self, w: &World, actor: Actor) {
        let user = match actor {
            Actor::Owner => w.owner.id,
            Actor::Member => w.member.id,
            Actor::Blocked => w.blocked.id,
            _ => return,
        };
        self.witness
            .socket
            .wait_for(WAIT, |f| {
                matches!(f, ServerFrame::Presence { user_id, status: PresenceStatus::Offline, .. } if *user_id == user)
            })
            .await
            .unwrap_or_else(|e| panic!("the witness hears that {actor:?} went offline: {e}"));
        self.witness.kinds.insert("presence".into());
    }
}

/// Opens a socket as the caller (with the `Authorization` header), or the handshake's
/// refusal. The anonymous caller's handshake has no header, so the server waits for an
/// `auth` frame: its socket is handed back before any `hello`.
pub(super) async fn handshake(w: &World, actor: Actor) -> Result<Socket, Got> {
    let client = match w.token(actor) {
        Some(token) => w.app.client().with_token(token),
        None => return w.app.client().connect().await.map_err(Got::refused),
    };
    match client.connect().await {
        Ok(mut socket) => match socket.next_within(WAIT).await.expect("hello") {
            ServerFrame::Hello { .. } => Ok(socket),
            other => panic!("expected hello, got {other:?}"),
        },
        Err(err) => Err(Got::refused(err)),
    }
}

/// The handshake with the token in the URL: the answer's status and code.
pub(super) async fn handshake_in_query(w: &World, token: &str) -> Got {
    let url = format!("ws://{}/api/v1/ws?access_token={token}", w.app.addr);
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => Got::status(101),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            Got {
                code: json["error"]["code"].as_str().map(str::to_owned),
                body,
                ..Got::status(resp.status().as_u16())
            }
        }
        Err(other) => panic!("handshake: {other}"),
    }
}

/// The signed link a `Via::Link` row fetches for `file`, or the refusal the caller got
/// asking for one.
pub(super) async fn link_for(
    w: &World,
    fx: &Fixture,
    actor: Actor,
    link: Link,
    file: MediaFile,
) -> Result<String, Got> {
    let pick = |media: &Media, file: MediaFile| match file {
        MediaFile::Original => media.url.clone(),
        MediaFile::Thumbnail => media.thumbnail_url.clone().expect("a thumbnail"),
    };
    let other = match file {
        MediaFile::Original => MediaFile::Thumbnail,
        MediaFile::Thumbnail => MediaFile::Original,
    };
    let path = file.path(fx.picture.id);
    Ok(match link {
        Link::Issued => {
            let path = format!("/api/v1/messages/{}", fx.picture_message);
            let token = w.token(actor);
            let (status, body) = w
                .request("GET", &path, token.as_deref(), false, Payload::Empty)
                .await;
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if status != 200 {
                return Err(Got {
                    code: json["error"]["code"].as_str().map(str::to_owned),
                    body,
                    ..Got::status(status)
                });
            }
            let media: Media = serde_json::from_value(json["media"].clone()).expect("media");
            pick(&media, file)
        }
        Link::Expired => expired_link(fx.picture.id, file),
        Link::OtherObject => with_query_of(&path, &pick(&w.other_picture, file)),
        Link::OtherFile => with_query_of(&path, &pick(&fx.picture, other)),
        Link::Tampered => tampered(&pick(&fx.picture, file)),
    })
}
