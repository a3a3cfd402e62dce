//! Rooms, messages and keys for the unit tests of the state and the screens.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use palaver_proto::{MemberState, Message, MessageStatus, MessageType, Role, Room, RoomMember};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::{App, Command, Event};

pub struct World {
    pub app: App,
    pub now: Instant,
    pub me: Uuid,
    pub bob: Uuid,
    pub carol: Uuid,
    /// The 1:1 room with Bob.
    pub dm: Uuid,
    /// A group of the three.
    pub team: Uuid,
}

pub fn at(minute: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_764_000_000 + minute * 60).expect("time")
}

pub fn member(id: Uuid, username: &str, display: &str) -> RoomMember {
    RoomMember {
        user_id: id,
        username: username.into(),
        display_name: display.into(),
        role: Role::Member,
        delivered_seq: 0,
        read_seq: 0,
        joined_at: at(0),
        state: MemberState::Joined,
        avatar_url: None,
    }
}

pub fn room(id: Uuid, name: &str, group: bool, members: Vec<RoomMember>, unread: i64) -> Room {
    Room {
        id,
        name: name.into(),
        is_group: group,
        created_at: at(0),
        last_seq: 0,
        members,
        last_message: None,
        unread_count: unread,
        state: MemberState::Joined,
        invited_by: None,
        mention_count: 0,
        notification_level: None,
        encrypted: false,
        mls_epoch: None,
        picture_url: None,
    }
}

pub fn message(room: Uuid, sender: Uuid, seq: i64, text: &str) -> Message {
    Message {
        id: Uuid::now_v7(),
        room_id: room,
        sender_id: sender,
        seq,
        kind: MessageType::Text,
        content: text.into(),
        media_id: None,
        media: None,
        client_msg_id: format!("c{seq}"),
        timestamp: at(seq),
        status: MessageStatus::Sent,
        edited_at: None,
        deleted: false,
        reply_to: None,
        thread_root_id: None,
        also_in_room: false,
        thread: None,
        reactions: Vec::new(),
        mentions: Vec::new(),
        mentions_room: false,
        pinned: false,
        forwarded: false,
        event: None,
        version: 0,
        link_preview: None,
        mls: None,
    }
}

pub fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

impl World {
    /// Logged in as Alice, with a 1:1 room with Bob (2 unread) and a group, connected.
    pub fn new() -> World {
        let now = Instant::now();
        let (me, bob, carol) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (dm, team) = (Uuid::now_v7(), Uuid::now_v7());
        let mut app = App::new(now);
        app.update(Event::LoggedIn {
            user_id: me,
            username: "alice".into(),
        });
        let mut w = World {
            app,
            now,
            me,
            bob,
            carol,
            dm,
            team,
        };
        let mut dm_room = room(
            dm,
            "Bob",
            false,
            vec![member(me, "alice", "Alice"), member(bob, "bob", "Bob")],
            2,
        );
        dm_room.last_seq = 2;
        dm_room.last_message = Some(message(dm, bob, 2, "are you there?"));
        let team_room = room(
            team,
            "Team",
            true,
            vec![
                member(me, "alice", "Alice"),
                member(bob, "bob", "Bob"),
                member(carol, "carol", "Carol"),
            ],
            0,
        );
        let commands = w.app.update(Event::Rooms(vec![dm_room, team_room]));
        assert_eq!(commands, vec![Command::Connect]);
        w.app.update(Event::Connected);
        w
    }

    pub fn send(&mut self, event: Event) -> Vec<Command> {
        self.app.update(event)
    }

    pub fn typing(&mut self, text: &str) -> Vec<Command> {
        text.chars()
            .flat_map(|c| self.app.update(key(KeyCode::Char(c))))
            .collect()
    }

    /// Opens the 1:1 room and answers its history with `messages`.
    pub fn open_dm(&mut self, messages: Vec<Message>) -> Vec<Command> {
        self.app.selected = Some(self.dm);
        let mut out = self.send(key(KeyCode::Enter));
        out.extend(self.send(Event::History {
            room: self.dm,
            messages,
            has_more: false,
            older: false,
        }));
        out
    }
}
