//! The sync invariant: what a client holds before a disconnect, plus what `sync` replays
//! to it, equals what a fresh client fetches.
//!
//! Four people act at random in a group and a 1:1 room (messages, replies, thread
//! replies, mentions, edits, deletions, reactions, pins, read receipts, renames, role
//! changes, a member removed and added back), while each one's client connects and
//! disconnects at random. A client here is a model of what a real one keeps: rooms with
//! their members and markers, and every message as last told, applying each frame as
//! docs/PROTOCOL.md says (a message copy replaces one with a lower `version`; a sender's
//! markers move to their message). Frames not read before a disconnect are lost, as on a
//! real network. At the end every client must equal a fresh fetch of the same user's
//! rooms and history. The seed is printed; `PALAVER_TEST_SEED=n` replays a run.

use std::collections::BTreeMap;
use std::time::Duration;

use palaver_client::Socket;
use palaver_proto::{
    ChangeCursors, ClientFrame, Cursors, MemberState, Message, MessageStatus, MessageType, Role,
    Room, ServerFrame,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::*;

/// Actions per run.
const ACTIONS: usize = 160;
/// How long a connected client reads after an action before the next one.
const READ_FOR: Duration = Duration::from_millis(5);

/// A member as a client holds them: role, state and markers.
type MemberView = (Role, MemberState, i64, i64);

/// A room as a client holds it.
#[derive(Debug, Clone, PartialEq)]
struct RoomView {
    name: String,
    is_group: bool,
    members: BTreeMap<Uuid, MemberView>,
}

impl RoomView {
    fn of(room: &Room) -> RoomView {
        RoomView {
            name: room.name.clone(),
            is_group: room.is_group,
            members: room
                .members
                .iter()
                .map(|m| (m.user_id, (m.role, m.state, m.delivered_seq, m.read_seq)))
                .collect(),
        }
    }
}

/// A message as compared: its status follows the room's markers, which are compared
/// themselves, so it is left out.
fn comparable(mut m: Message) -> Message {
    m.status = MessageStatus::Sent;
    m
}

/// One user's client.
struct Model {
    rooms: BTreeMap<Uuid, RoomView>,
    messages: BTreeMap<Uuid, Message>,
    cursors: Cursors,
    changes: ChangeCursors,
    socket: Option<Socket>,
}

impl Model {
    /// What a fresh client of `user` fetches: the room list and every room's history.
    async fn fresh(user: &TestUser) -> Model {
        let mut model = Model {
            rooms: BTreeMap::new(),
            messages: BTreeMap::new(),
            cursors: Cursors::new(),
            changes: ChangeCursors::new(),
            socket: None,
        };
        for room in user.api.rooms().await.expect("rooms") {
            model.fetch_room(user, &room).await;
        }
        model
    }

    /// Takes a room in whole, as a client does with one it has not seen: its view and
    /// history.
    async fn fetch_room(&mut self, user: &TestUser, room: &Room) {
        self.rooms.insert(room.id, RoomView::of(room));
        for m in all_messages(user, room.id).await {
            self.cursors.insert(
                room.id,
                m.seq.max(*self.cursors.get(&room.id).unwrap_or(&0)),
            );
            self.messages.insert(m.id, comparable(m));
        }
        self.cursors.entry(room.id).or_insert(0);
    }

    fn forget_room(&mut self, room: Uuid) {
        self.rooms.remove(&room);
        self.messages.retain(|_, m| m.room_id != room);
        self.cursors.remove(&room);
        self.changes.remove(&room);
    }

    /// A copy of a message replaces the one held unless that one is newer.
    fn put(&mut self, m: Message) {
        if self
            .messages
            .get(&m.id)
            .is_some_and(|held| held.version > m.version)
        {
            return;
        }
        self.messages.insert(m.id, comparable(m));
    }

    /// Applies one frame.
    async fn apply(&mut self, user: &TestUser, frame: ServerFrame) {
        match frame {
            ServerFrame::Message { message } => {
                // Sending implies having seen everything before: the sender's markers.
                if let Some(room) = self.rooms.get_mut(&message.room_id) {
                    if let Some(m) = room.members.get_mut(&message.sender_id) {
                        m.2 = m.2.max(message.seq);
                        m.3 = m.3.max(message.seq);
                    }
                    let cursor = self.cursors.entry(message.room_id).or_insert(0);
                    *cursor = (*cursor).max(message.seq);
                    self.put(message);
                }
            }
            ServerFrame::MessageUpdated { message } | ServerFrame::MessageDeleted { message } => {
                if self.rooms.contains_key(&message.room_id) {
                    self.put(message);
                }
            }
            ServerFrame::Receipt {
                room_id,
                user_id,
                status,
                seq,
            } => {
                if let Some(m) = self
                    .rooms
                    .get_mut(&room_id)
                    .and_then(|r| r.members.get_mut(&user_id))
                {
                    match status {
                        palaver_proto::ReceiptKind::Delivered => m.2 = m.2.max(seq),
                        palaver_proto::ReceiptKind::Read => {
                            m.2 = m.2.max(seq);
                            m.3 = m.3.max(seq);
                        }
                    }
                }
            }
            ServerFrame::RoomUpdated { room } => {
                if self.rooms.contains_key(&room.id) {
                    self.rooms.insert(room.id, RoomView::of(&room));
                } else {
                    self.fetch_room(user, &room).await;
                }
            }
            ServerFrame::RoomLeft { room_id, .. } => self.forget_room(room_id),
            ServerFrame::Synced { rooms, changes, .. } => {
                let gone: Vec<Uuid> = self
                    .cursors
                    .keys()
                    .filter(|r| !rooms.contains_key(r) && !changes.contains_key(r))
                    .copied()
                    .collect();
                for room in gone {
                    self.forget_room(room);
                }
                self.changes = changes;
            }
            _ => {}
        }
    }

    /// Connects and resumes: every frame up to `synced` is applied.
    async fn connect(&mut self, user: &TestUser) {
        let mut socket = user.connect().await;
        let id = socket
            .send_frame(ClientFrame::Sync {
                cursors: self.cursors.clone(),
                changes: self.changes.clone(),
            })
            .await
            .expect("sync");
        loop {
            let frame = socket.next_within(WAIT).await.expect("replay");
            let done = matches!(&frame, ServerFrame::Synced { id: Some(got), .. } if *got == id);
            self.apply(user, frame).await;
            if done {
                break;
            }
        }
        self.socket = Some(socket);
    }

    /// Reads whatever arrives within `window`.
    async fn read(&mut self, user: &TestUser, window: Duration) {
        let Some(mut socket) = self.socket.take() else {
            return;
        };
        while let Ok(frame) = socket.next_within(window).await {
            self.apply(user, frame).await;
        }
        self.socket = Some(socket);
    }

    fn assert_same(&self, fresh: &Model, seed: u64, name: &str) {
        assert_eq!(
            self.rooms.keys().collect::<Vec<_>>(),
            fresh.rooms.keys().collect::<Vec<_>>(),
            "{name}'s rooms (seed {seed})"
        );
        for (id, room) in &fresh.rooms {
            assert_eq!(
                self.rooms.get(id),
                Some(room),
                "{name}'s room {id} (seed {seed})"
            );
        }
        for (id, m) in &fresh.messages {
            assert_eq!(
                self.messages.get(id),
                Some(m),
                "{name}'s message {id} (seed {seed})"
            );
        }
        assert_eq!(
            self.messages.len(),
            fresh.messages.len(),
            "{name} holds messages a fresh client does not (seed {seed})"
        );
    }
}

/// A message the actions may act on.
#[derive(Clone, Copy)]
struct Sent {
    id: Uuid,
    room: Uuid,
    sender: usize,
    thread_reply: bool,
}

#[tokio::test]
async fn what_a_client_held_plus_the_replay_equals_a_fresh_fetch() {
    let seed = std::env::var("PALAVER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("sync invariant seed: {seed} (PALAVER_TEST_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol", "dave"]).await;
    let names = ["alice", "bob", "carol", "dave"];
    let group = users[0]
        .group("Team", &[&users[1], &users[2], &users[3]])
        .await
        .id;
    let dm = users[0].dm(&users[1]).await.id;
    let mut models = Vec::new();
    for u in &users {
        let mut model = Model::fresh(u).await;
        // A first connection knows no change numbers: it asks from the beginning.
        model.changes = model.cursors.keys().map(|r| (*r, 0)).collect();
        model.connect(u).await;
        models.push(model);
    }
    let mut sent: Vec<Sent> = Vec::new();
    let mut dave_in = true;
    let emojis = ["👍", "🎉", "❤️", "😂"];

    for step in 0..ACTIONS {
        let actor = rng.gen_range(0..4);
        let u = &users[actor];
        // Rooms the actor is in.
        let mut rooms = vec![group];
        if actor < 2 {
            rooms.push(dm);
        }
        if actor == 3 && !dave_in {
            rooms.retain(|r| *r != group);
        }
        let room = if rooms.is_empty() {
            None
        } else {
            Some(rooms[rng.gen_range(0..rooms.len())])
        };
        let in_room: Vec<Sent> = sent
            .iter()
            .copied()
            .filter(|s| Some(s.room) == room)
            .collect();
        let pick = |rng: &mut StdRng| {
            (!in_room.is_empty()).then(|| in_room[rng.gen_range(0..in_room.len())])
        };
        let answer: Option<(u16, serde_json::Value)> = match (rng.gen_range(0..100), room) {
            (_, None) => None,
            (0..=24, Some(room)) => {
                let mention = names[rng.gen_range(0..4)];
                let text = format!("step {step} @{mention}");
                Some(send_with(u, room, &text, json!({})).await)
            }
            (25..=32, Some(room)) => match pick(&mut rng) {
                Some(q) => Some(
                    send_with(
                        u,
                        room,
                        &format!("reply {step}"),
                        json!({"replyToId": q.id}),
                    )
                    .await,
                ),
                None => None,
            },
            (33..=42, Some(room)) => match pick(&mut rng).filter(|q| !q.thread_reply) {
                Some(root) => {
                    let extra = json!({"threadRootId": root.id, "alsoInRoom": rng.gen_bool(0.3)});
                    Some(send_with(u, room, &format!("thread {step}"), extra).await)
                }
                None => None,
            },
            (43..=50, Some(_)) => match pick(&mut rng).filter(|m| m.sender == actor) {
                Some(m) => {
                    let body = json!({"content": format!("edited {step} @{}", names[rng.gen_range(0..4)])});
                    Some(
                        call(
                            u,
                            Method::PATCH,
                            &format!("/api/v1/messages/{}", m.id),
                            Some(body),
                        )
                        .await,
                    )
                }
                None => None,
            },
            (51..=54, Some(_)) => match pick(&mut rng).filter(|m| m.sender == actor) {
                Some(m) => Some(
                    call(
                        u,
                        Method::DELETE,
                        &format!("/api/v1/messages/{}", m.id),
                        None,
                    )
                    .await,
                ),
                None => None,
            },
            (55..=69, Some(_)) => match pick(&mut rng) {
                Some(m) => {
                    Some(react(u, m.id, emojis[rng.gen_range(0..4)], rng.gen_bool(0.7)).await)
                }
                None => None,
            },
            (70..=75, Some(room)) => match pick(&mut rng) {
                Some(m) => Some(pin(u, room, m.id, rng.gen_bool(0.7)).await),
                None => None,
            },
            (76..=87, Some(room)) => {
                let path = format!("/api/v1/rooms/{room}/receipts");
                let last = in_room.len() as i64 + 10;
                let status = if rng.gen_bool(0.5) {
                    "read"
                } else {
                    "delivered"
                };
                let body = json!({"seq": rng.gen_range(1..=last), "status": status});
                Some(call(u, Method::POST, &path, Some(body)).await)
            }
            (88..=91, Some(_)) if actor == 0 => {
                let body = json!({"name": format!("Team {step}")});
                Some(
                    call(
                        u,
                        Method::PATCH,
                        &format!("/api/v1/rooms/{group}"),
                        Some(body),
                    )
                    .await,
                )
            }
            (92..=95, Some(_)) if actor == 0 => {
                let role = if rng.gen_bool(0.5) { "admin" } else { "member" };
                let path = format!("/api/v1/rooms/{group}/members/{}", users[1].id);
                Some(call(u, Method::PATCH, &path, Some(json!({"role": role}))).await)
            }
            (96..=99, _) => {
                // Dave is removed from the group, or added back (and accepts).
                let path = format!("/api/v1/rooms/{group}/members");
                let answer = if dave_in {
                    call(
                        &users[0],
                        Method::DELETE,
                        &format!("{path}/{}", users[3].id),
                        None,
                    )
                    .await
                } else {
                    let added = call(
                        &users[0],
                        Method::POST,
                        &path,
                        Some(json!({"userIds": [users[3].id]})),
                    )
                    .await;
                    users[3].api.accept(group).await.expect("accept");
                    added
                };
                dave_in = !dave_in;
                Some(answer)
            }
            _ => None,
        };
        if let Some((status, body)) = answer {
            assert!(status < 500, "step {step}: {status} {body} (seed {seed})");
            if matches!(status, 200 | 201) && body["seq"].is_i64() && body["roomId"].is_string() {
                if let Ok(m) = serde_json::from_value::<Message>(body.clone())
                    && m.kind != MessageType::Event
                    && !sent.iter().any(|s| s.id == m.id)
                {
                    sent.push(Sent {
                        id: m.id,
                        room: m.room_id,
                        sender: actor,
                        thread_reply: m.thread_root_id.is_some(),
                    });
                }
            }
        }
        // Someone's client goes away, or comes back.
        if rng.gen_bool(0.15) {
            let who = rng.gen_range(0..4);
            if models[who].socket.take().is_none() {
                models[who].connect(&users[who]).await;
            }
        }
        for (model, user) in models.iter_mut().zip(&users) {
            model.read(user, READ_FOR).await;
        }
    }

    // Connected clients read what is still on its way; the others come back.
    for (model, user) in models.iter_mut().zip(&users) {
        if model.socket.is_some() {
            model.read(user, QUIET).await;
        } else {
            model.connect(user).await;
            model.read(user, QUIET).await;
        }
    }
    for ((model, user), name) in models.iter().zip(&users).zip(names) {
        let fresh = Model::fresh(user).await;
        model.assert_same(&fresh, seed, name);
    }
}
