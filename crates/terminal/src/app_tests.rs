//! The chat's rules, event by event: no terminal, no server.

use std::collections::BTreeMap;

use crossterm::event::KeyCode;
use palaver_proto::SecondFactorChallenge;
use palaver_proto::{
    ClientFrame, ErrorCode, MessageStatus, PresenceStatus, ReceiptKind, ServerFrame,
};

use crate::app::{App, Command, Event, Focus, LoginField, Prompt, Screen, TYPING_TTL};
use crate::fixtures::*;

#[test]
fn login_form_then_second_factor() {
    let mut app = App::new(std::time::Instant::now());
    for c in "alice".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    app.update(key(KeyCode::Tab));
    for c in "secret pw".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    let out = app.update(key(KeyCode::Enter));
    assert_eq!(
        out,
        vec![Command::Login {
            username: "alice".into(),
            password: "secret pw".into()
        }]
    );
    // Keys are ignored while the request is out.
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    app.update(Event::SecondFactor(SecondFactorChallenge {
        challenge: "ch-1".into(),
        methods: vec!["totp".into(), "recovery".into()],
        expires_at: time::OffsetDateTime::UNIX_EPOCH,
    }));
    let Screen::Login(form) = &app.screen else {
        panic!("still the login form")
    };
    assert_eq!(form.field, LoginField::Code);
    for c in "123456".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    let out = app.update(key(KeyCode::Enter));
    assert_eq!(
        out,
        vec![Command::SecondFactor {
            challenge: "ch-1".into(),
            code: "123456".into()
        }]
    );
    app.update(Event::LoginFailed("the code was not accepted".into()));
    let Screen::Login(form) = &app.screen else {
        panic!("still the login form")
    };
    assert!(form.code.text.is_empty() && !form.busy);
    let out = app.update(Event::LoggedIn {
        user_id: uuid::Uuid::now_v7(),
        username: "alice".into(),
    });
    assert_eq!(out, vec![Command::LoadRooms]);
    assert_eq!(app.screen, Screen::Chat);
}

#[test]
fn a_failed_password_is_cleared_and_asked_again() {
    let mut app = App::new(std::time::Instant::now());
    app.update(key(KeyCode::Char('a')));
    app.update(key(KeyCode::Enter));
    app.update(key(KeyCode::Char('x')));
    app.update(key(KeyCode::Enter));
    app.update(Event::LoginFailed("wrong username or password".into()));
    let Screen::Login(form) = &app.screen else {
        panic!("login form")
    };
    assert_eq!(form.field, LoginField::Password);
    assert!(form.password.text.is_empty());
    assert_eq!(app.status.as_deref(), Some("wrong username or password"));
}

#[test]
fn connecting_sends_sync_first_with_every_rooms_cursor() {
    let mut w = World::new();
    let out = w.send(Event::Connected);
    let Some(Command::Socket(ClientFrame::Sync { cursors, changes })) = out.first() else {
        panic!("sync first: {out:?}")
    };
    assert_eq!(cursors, &BTreeMap::from([(w.dm, 2), (w.team, 0)]));
    assert!(changes.is_empty(), "no synced yet: no change numbers");
    // The synced frame's change numbers go back on the next sync.
    w.send(Event::Frame(ServerFrame::Synced {
        id: None,
        rooms: BTreeMap::from([(w.dm, 2), (w.team, 0)]),
        changes: BTreeMap::from([(w.dm, 7), (w.team, 1)]),
    }));
    w.send(Event::Frame(ServerFrame::Message {
        message: message(w.team, w.carol, 1, "hi all"),
    }));
    w.send(Event::Disconnected("gone".into()));
    assert!(!w.app.connected);
    let out = w.send(Event::Connected);
    let Some(Command::Socket(ClientFrame::Sync { cursors, changes })) = out.first() else {
        panic!("sync first: {out:?}")
    };
    assert_eq!(cursors, &BTreeMap::from([(w.dm, 2), (w.team, 1)]));
    assert_eq!(changes, &BTreeMap::from([(w.dm, 7), (w.team, 1)]));
}

#[test]
fn opening_a_room_loads_history_and_marks_it_read() {
    let mut w = World::new();
    let (dm, bob, me) = (w.dm, w.bob, w.me);
    let out = w.open_dm(vec![
        message(dm, me, 1, "hello"),
        message(dm, bob, 2, "are you there?"),
    ]);
    assert_eq!(
        out,
        vec![
            Command::LoadHistory {
                room: dm,
                before: None
            },
            Command::Socket(ClientFrame::Receipt {
                room_id: dm,
                seq: 2,
                status: ReceiptKind::Read
            }),
        ]
    );
    let state = w.app.room(dm).expect("room");
    assert_eq!(state.unread, 0);
    assert_eq!(state.messages.len(), 2);
    assert_eq!(w.app.focus, Focus::Compose);
}

#[test]
fn live_messages_count_unread_elsewhere_and_are_read_here() {
    let mut w = World::new();
    let (dm, team, bob, carol) = (w.dm, w.team, w.bob, w.carol);
    w.open_dm(vec![message(dm, bob, 2, "are you there?")]);
    // In another room: unread, and delivered.
    let mut standup = message(team, carol, 1, "standup?");
    standup.timestamp = at(10);
    let out = w.send(Event::Frame(ServerFrame::Message {
        message: standup.clone(),
    }));
    assert_eq!(
        out,
        vec![Command::Socket(ClientFrame::Receipt {
            room_id: team,
            seq: 1,
            status: ReceiptKind::Delivered
        })]
    );
    assert_eq!(w.app.room(team).expect("team").unread, 1);
    // The busiest room goes to the top.
    assert_eq!(w.app.rooms[0].room.id, team);
    // In the open room: delivered and read at once.
    let out = w.send(Event::Frame(ServerFrame::Message {
        message: message(dm, bob, 3, "hello?"),
    }));
    assert!(out.contains(&Command::Socket(ClientFrame::Receipt {
        room_id: dm,
        seq: 3,
        status: ReceiptKind::Read
    })));
    assert_eq!(w.app.room(dm).expect("dm").unread, 0);
    // A replay of what is held changes nothing and counts nothing.
    let out = w.send(Event::Frame(ServerFrame::Message { message: standup }));
    assert!(out.is_empty());
    assert_eq!(w.app.room(team).expect("team").unread, 1);
}

#[test]
fn sending_is_pending_until_acknowledged_and_resent_after_a_drop() {
    let mut w = World::new();
    let dm = w.dm;
    w.open_dm(vec![]);
    w.typing("hi bob");
    let out = w.send(key(KeyCode::Enter));
    let sent = out
        .iter()
        .find_map(|c| match c {
            Command::Socket(ClientFrame::Send { message }) => Some(message.clone()),
            _ => None,
        })
        .expect("a send");
    assert_eq!((sent.room_id, sent.content.as_str()), (dm, "hi bob"));
    assert_eq!(w.app.pending.len(), 1);
    assert!(w.app.input.text.is_empty());
    // The connection drops before the ack: the same send goes again after sync.
    w.send(Event::Disconnected("reset".into()));
    let out = w.send(Event::Connected);
    assert!(matches!(out[0], Command::Socket(ClientFrame::Sync { .. })));
    assert_eq!(
        out[1],
        Command::Socket(ClientFrame::Send {
            message: sent.clone()
        })
    );
    let mut stored = message(dm, w.me, 3, "hi bob");
    stored.client_msg_id = sent.client_msg_id.clone();
    w.send(Event::Frame(ServerFrame::Ack {
        id: Some("2".into()),
        message: Some(stored),
        duplicate: true,
    }));
    assert!(w.app.pending.is_empty());
    assert_eq!(w.app.room(dm).expect("dm").messages[&3].content, "hi bob");
}

#[test]
fn a_refused_send_is_marked_and_not_resent() {
    let mut w = World::new();
    w.open_dm(vec![]);
    w.typing("x");
    w.send(key(KeyCode::Enter));
    let id = w.app.pending[0].request.client_msg_id.clone();
    w.send(Event::Frame(ServerFrame::Error {
        id: None,
        client_msg_id: Some(id),
        code: ErrorCode::Forbidden,
        message: "not allowed".into(),
        retry_after_ms: None,
    }));
    assert_eq!(w.app.pending[0].failed.as_deref(), Some("not allowed"));
    let out = w.send(Event::Connected);
    assert_eq!(out.len(), 1, "only sync: {out:?}");
}

#[test]
fn receipts_turn_into_ticks() {
    let mut w = World::new();
    let (dm, me, bob) = (w.dm, w.me, w.bob);
    w.open_dm(vec![message(dm, me, 3, "one"), message(dm, me, 4, "two")]);
    let status = |w: &World, seq| {
        let r = w.app.room(dm).expect("dm");
        r.status(&r.messages[&seq])
    };
    assert_eq!(status(&w, 4), MessageStatus::Sent);
    w.send(Event::Frame(ServerFrame::Receipt {
        room_id: dm,
        user_id: bob,
        status: ReceiptKind::Delivered,
        seq: 4,
    }));
    assert_eq!(status(&w, 4), MessageStatus::Delivered);
    w.send(Event::Frame(ServerFrame::Receipt {
        room_id: dm,
        user_id: bob,
        status: ReceiptKind::Read,
        seq: 3,
    }));
    assert_eq!(status(&w, 3), MessageStatus::Read);
    assert_eq!(status(&w, 4), MessageStatus::Delivered);
    w.send(Event::Frame(ServerFrame::ReceiptSummary {
        room_id: dm,
        delivered_seq: 4,
        read_seq: 4,
    }));
    assert_eq!(status(&w, 4), MessageStatus::Read);
}

#[test]
fn typing_is_sent_now_and_then_and_shown_until_it_lapses() {
    let mut w = World::new();
    let (dm, bob) = (w.dm, w.bob);
    w.open_dm(vec![]);
    let out = w.typing("hello");
    let typing = |active| {
        Command::Socket(ClientFrame::Typing {
            room_id: dm,
            active,
        })
    };
    assert_eq!(out, vec![typing(true)], "once, not per key");
    let out = w.send(key(KeyCode::Enter));
    assert_eq!(out[0], typing(false));

    w.send(Event::Frame(ServerFrame::Typing {
        room_id: dm,
        user_id: bob,
        active: true,
    }));
    assert_eq!(w.app.typing_in(dm), vec!["Bob".to_owned()]);
    w.send(Event::Tick(
        w.now + TYPING_TTL + std::time::Duration::from_secs(1),
    ));
    assert!(w.app.typing_in(dm).is_empty());
}

#[test]
fn edit_and_delete_only_ones_own() {
    let mut w = World::new();
    let (dm, me, bob) = (w.dm, w.me, w.bob);
    let mine = message(dm, me, 1, "helo");
    let mine_id = mine.id;
    w.open_dm(vec![mine, message(dm, bob, 2, "hi")]);
    // Esc picks the newest message: Bob's, which cannot be edited.
    w.send(key(KeyCode::Esc));
    assert_eq!(w.app.focus, Focus::Timeline);
    assert_eq!(w.app.cursor, Some(2));
    assert!(w.send(key(KeyCode::Char('e'))).is_empty());
    assert!(w.app.editing.is_none());
    w.send(key(KeyCode::Up));
    assert_eq!(w.app.cursor, Some(1));
    w.send(key(KeyCode::Char('e')));
    assert_eq!(w.app.editing, Some(mine_id));
    assert_eq!(w.app.input.text, "helo");
    w.send(key(KeyCode::Left));
    w.send(key(KeyCode::Char('l')));
    let out = w.send(key(KeyCode::Enter));
    assert_eq!(
        out,
        vec![Command::Socket(ClientFrame::Edit {
            message_id: mine_id,
            content: "hello".into(),
            no_preview: false
        })]
    );
    // Delete asks first.
    w.send(key(KeyCode::Esc));
    w.send(key(KeyCode::Up));
    w.send(key(KeyCode::Char('d')));
    assert_eq!(w.app.prompt, Some(Prompt::ConfirmDelete(mine_id)));
    let out = w.send(key(KeyCode::Char('y')));
    assert_eq!(
        out,
        vec![Command::Socket(ClientFrame::Delete {
            message_id: mine_id
        })]
    );
    assert_eq!((w.app.focus, w.app.cursor), (Focus::Compose, None));
    // The server's answer replaces the held copy, unless the held one is newer.
    let mut deleted = message(dm, me, 1, "");
    deleted.id = mine_id;
    deleted.deleted = true;
    deleted.version = 5;
    w.send(Event::Frame(ServerFrame::MessageDeleted {
        message: deleted,
    }));
    let mut stale = message(dm, me, 1, "hello");
    stale.id = mine_id;
    stale.version = 4;
    w.send(Event::Frame(ServerFrame::MessageUpdated { message: stale }));
    assert!(w.app.room(dm).expect("dm").messages[&1].deleted);
}

#[test]
fn scrolling_up_loads_older_pages() {
    let mut w = World::new();
    let (dm, bob) = (w.dm, w.bob);
    w.app.selected = Some(dm);
    w.send(key(KeyCode::Enter));
    let page: Vec<_> = (51..=100).map(|s| message(dm, bob, s, "x")).collect();
    w.send(Event::History {
        room: dm,
        messages: page,
        has_more: true,
        older: false,
    });
    let mut asked = Vec::new();
    for _ in 0..5 {
        asked.extend(w.send(key(KeyCode::PageUp)));
    }
    assert!(asked.contains(&Command::LoadHistory {
        room: dm,
        before: Some(51)
    }));
    let older: Vec<_> = (1..=50).map(|s| message(dm, bob, s, "x")).collect();
    w.send(Event::History {
        room: dm,
        messages: older,
        has_more: false,
        older: true,
    });
    let state = w.app.room(dm).expect("dm");
    assert_eq!(state.messages.len(), 100);
    assert!(!state.has_more);
    // PgDn back to the bottom follows the newest again.
    for _ in 0..20 {
        w.send(key(KeyCode::PageDown));
    }
    assert_eq!(w.app.cursor, None);
}

#[test]
fn presence_rooms_and_leaving() {
    let mut w = World::new();
    let (dm, bob) = (w.dm, w.bob);
    w.send(Event::Frame(ServerFrame::Presence {
        user_id: bob,
        status: PresenceStatus::Online,
        last_seen: None,
    }));
    assert_eq!(w.app.presence[&bob], PresenceStatus::Online);
    w.open_dm(vec![]);
    w.send(Event::Frame(ServerFrame::RoomLeft {
        room_id: dm,
        reason: None,
        by: None,
    }));
    assert!(w.app.room(dm).is_none());
    assert_eq!(w.app.open, None);
    assert_eq!(w.app.focus, Focus::Rooms);
}

#[test]
fn search_then_open_the_hit() {
    let mut w = World::new();
    let (team, carol) = (w.team, w.carol);
    w.send(key(KeyCode::Char('/')));
    w.typing("standup");
    let out = w.send(key(KeyCode::Enter));
    assert_eq!(
        out,
        vec![Command::Search {
            query: "standup".into()
        }]
    );
    w.send(Event::SearchResults(vec![message(
        team, carol, 1, "standup?",
    )]));
    let out = w.send(key(KeyCode::Enter));
    assert_eq!(
        out,
        vec![Command::LoadHistory {
            room: team,
            before: None
        }]
    );
    assert_eq!(w.app.open, Some(team));
    assert!(w.app.prompt.is_none());
}

#[test]
fn upload_asks_for_a_path() {
    let mut w = World::new();
    let dm = w.dm;
    w.open_dm(vec![]);
    w.send(ctrl('o'));
    w.typing("/tmp/cat.png");
    let out = w.send(key(KeyCode::Enter));
    assert_eq!(
        out,
        vec![Command::Upload {
            room: dm,
            path: "/tmp/cat.png".into()
        }]
    );
}

#[test]
fn ctrl_c_quits_from_anywhere() {
    let mut w = World::new();
    w.open_dm(vec![]);
    assert_eq!(w.send(ctrl('c')), vec![Command::Quit]);
    assert!(w.app.quit);
}
