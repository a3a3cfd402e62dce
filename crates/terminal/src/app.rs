//! The chat's state and its rules, without I/O: [`App::update`] takes an [`Event`] (a
//! key, a server frame, the answer to a request) and changes the state, and answers the
//! [`Command`]s the loop in `chat.rs` must carry out (a frame to send, a page to load).
//! Rendering (`ui.rs`) only reads the state. So every rule is tested here with plain
//! values: no terminal, no server.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use palaver_proto::SecondFactorChallenge;
use palaver_proto::{
    ChangeCursors, ClientFrame, Cursors, MemberState, Message, MessageStatus, MessageType,
    PresenceStatus, ReceiptKind, Room, SendMessageRequest, ServerFrame,
};
use uuid::Uuid;

/// A typing indicator lapses after this long without news (the server relays `active:
/// false`, but a client that vanished never sends it).
pub const TYPING_TTL: Duration = Duration::from_secs(6);
/// While the user keeps typing, `typing` is sent again this often (not per key).
const TYPING_REPEAT: Duration = Duration::from_secs(3);
/// Messages asked for per history page.
pub const PAGE: u32 = 50;
/// The most a message's text may hold (the server's limit); the input stops there.
const MAX_INPUT: usize = 16 * 1024;

/// Something that happened.
// A few events a second pass through a channel: boxing the frame saves nothing worth it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// Text was pasted (bracketed paste).
    Paste(String),
    /// Time passed (typing indicators lapse).
    Tick(Instant),
    /// The login succeeded (or a stored session was found).
    LoggedIn { user_id: Uuid, username: String },
    /// The login needs a second-factor code.
    SecondFactor(SecondFactorChallenge),
    /// The login failed; the text says why.
    LoginFailed(String),
    /// The user's rooms (`GET /rooms`), and the presence of the people in 1:1 rooms.
    Rooms(Vec<Room>),
    /// Someone's presence, as fetched.
    Presence(Uuid, PresenceStatus),
    /// A page of a room's history (`older`: asked for with `before`).
    History {
        room: Uuid,
        messages: Vec<Message>,
        has_more: bool,
        older: bool,
    },
    /// Search results, newest first.
    SearchResults(Vec<Message>),
    /// The socket is open (and nothing has been sent on it yet).
    Connected,
    /// The socket dropped; it is being reopened.
    Disconnected(String),
    /// A frame from the server.
    Frame(ServerFrame),
    /// A request failed; the text says why.
    Failed(String),
    /// A notice for the status line.
    Notice(String),
}

/// What the state asks the I/O loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Login {
        username: String,
        password: String,
    },
    SecondFactor {
        challenge: String,
        code: String,
    },
    /// Fetch the rooms (and presence for 1:1 rooms).
    LoadRooms,
    /// Open the socket (after the rooms are known, so `sync` has cursors).
    Connect,
    /// Fetch a page of history: the newest, or the one before `before`.
    LoadHistory {
        room: Uuid,
        before: Option<i64>,
    },
    /// Send this frame on the socket.
    Socket(ClientFrame),
    Search {
        query: String,
    },
    /// Upload a file and send it to the room.
    Upload {
        room: Uuid,
        path: PathBuf,
    },
    Quit,
}

/// Which screen is up.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Login(LoginForm),
    Chat,
}

/// The login form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoginForm {
    pub username: Input,
    pub password: Input,
    /// Present once the server asked for a second factor.
    pub challenge: Option<SecondFactorChallenge>,
    pub code: Input,
    pub field: LoginField,
    /// A request is out.
    pub busy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoginField {
    #[default]
    Username,
    Password,
    Code,
}

/// Where keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The room list.
    Rooms,
    /// Writing a message.
    Compose,
    /// Choosing a message of the open room (to edit or delete it).
    Timeline,
}

/// A question over the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// The path of a file to send.
    Upload(Input),
    /// Delete this message?
    ConfirmDelete(Uuid),
    Search(SearchState),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchState {
    pub query: Input,
    pub results: Vec<Message>,
    pub selected: usize,
    /// The query the results are for.
    pub searched: Option<String>,
}

/// A line of text being edited, with a cursor (in characters).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Input {
    pub text: String,
    pub cursor: usize,
}

impl Input {
    pub fn with(text: &str) -> Input {
        Input {
            text: text.into(),
            cursor: text.chars().count(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_index)
            .map_or(self.text.len(), |(i, _)| i)
    }

    pub fn insert(&mut self, c: char) {
        if self.text.len() + c.len_utf8() > MAX_INPUT {
            return;
        }
        let at = self.byte(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            self.insert(if c == '\n' || c == '\r' { ' ' } else { c });
        }
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.text.chars().count() {
            let at = self.byte(self.cursor);
            self.text.remove(at);
        }
    }

    /// Applies an editing key; false if the key is not one.
    pub fn key(&mut self, key: &KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('u') if ctrl => *self = Input::default(),
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.text.chars().count(),
            KeyCode::Char(c) if !ctrl => self.insert(c),
            KeyCode::Backspace => self.backspace(),
            KeyCode::Delete => self.delete(),
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.text.chars().count()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.chars().count(),
            _ => return false,
        }
        true
    }

    pub fn take(&mut self) -> String {
        std::mem::take(self).text
    }
}

/// A room and what the client holds of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomState {
    pub room: Room,
    /// The messages held, by seq (a contiguous run up to the newest once loaded).
    pub messages: BTreeMap<i64, Message>,
    /// The newest page was fetched.
    pub loaded: bool,
    /// Older messages exist beyond the first held.
    pub has_more: bool,
    /// A page is being fetched.
    pub loading: bool,
    pub unread: i64,
    /// Everything up to these has reached / been read by every other member.
    pub delivered_seq: i64,
    pub read_seq: i64,
    /// The read marker this client last sent.
    read_sent: i64,
    /// When the room last had a message (for ordering the list).
    activity: i64,
}

impl RoomState {
    fn new(room: Room, me: Uuid) -> RoomState {
        let activity = room
            .last_message
            .as_ref()
            .map_or(room.created_at, |m| m.timestamp)
            .unix_timestamp();
        let mut state = RoomState {
            unread: room.unread_count,
            room,
            messages: BTreeMap::new(),
            loaded: false,
            has_more: true,
            loading: false,
            delivered_seq: 0,
            read_seq: 0,
            read_sent: 0,
            activity,
        };
        state.summarise(me);
        state
    }

    /// The room-wide markers from the members' own: the lowest among the others.
    fn summarise(&mut self, me: Uuid) {
        let others = self
            .room
            .members
            .iter()
            .filter(|m| m.user_id != me && m.state == MemberState::Joined);
        let (mut delivered, mut read, mut any) = (i64::MAX, i64::MAX, false);
        for m in others {
            delivered = delivered.min(m.delivered_seq);
            read = read.min(m.read_seq);
            any = true;
        }
        if any {
            self.delivered_seq = self.delivered_seq.max(delivered);
            self.read_seq = self.read_seq.max(read);
        }
    }

    /// The highest seq this client knows of in the room, held or not: the cursor for
    /// `sync` (a room never opened resumes from its newest seq at the time it was listed,
    /// and its older messages come from history when it is opened).
    pub fn cursor(&self) -> i64 {
        let held = self.messages.keys().next_back().copied().unwrap_or(0);
        held.max(self.room.last_seq)
    }

    /// The status of one of the user's own messages, as far as the client knows.
    pub fn status(&self, message: &Message) -> MessageStatus {
        let summary = if message.seq <= self.read_seq {
            MessageStatus::Read
        } else if message.seq <= self.delivered_seq {
            MessageStatus::Delivered
        } else {
            MessageStatus::Sent
        };
        summary.max(message.status)
    }

    /// A display name for a user of this room.
    pub fn name_of(&self, user: Uuid) -> Option<&str> {
        self.room
            .members
            .iter()
            .find(|m| m.user_id == user)
            .map(|m| m.display_name.as_str())
    }

    /// The other person of a 1:1 room.
    pub fn peer(&self, me: Uuid) -> Option<Uuid> {
        (!self.room.is_group)
            .then(|| self.room.members.iter().find(|m| m.user_id != me))
            .flatten()
            .map(|m| m.user_id)
    }
}

/// A message sent and not yet acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub request: SendMessageRequest,
    /// The server refused it; the text says why (it is not sent again).
    pub failed: Option<String>,
}

/// The whole state of the chat.
#[derive(Debug, Clone)]
pub struct App {
    pub screen: Screen,
    pub me: Option<(Uuid, String)>,
    pub rooms: Vec<RoomState>,
    /// The room under the cursor in the room list.
    pub selected: Option<Uuid>,
    /// The room shown.
    pub open: Option<Uuid>,
    pub focus: Focus,
    pub input: Input,
    /// The message being edited with `input`.
    pub editing: Option<Uuid>,
    pub prompt: Option<Prompt>,
    /// The seq at the bottom of the view (and the chosen message in `Timeline`); `None`
    /// follows the newest.
    pub cursor: Option<i64>,
    pub presence: HashMap<Uuid, PresenceStatus>,
    /// Who is typing where, until when.
    pub typing: HashMap<(Uuid, Uuid), Instant>,
    pub connected: bool,
    /// The last notice or error, for the status line.
    pub status: Option<String>,
    pub pending: Vec<Pending>,
    /// The change numbers of the last `synced`, sent back on the next `sync`.
    pub changes: ChangeCursors,
    /// When `typing` was last sent (while the user types).
    typing_sent: Option<(Uuid, Instant)>,
    now: Instant,
    pub quit: bool,
}

impl App {
    /// A chat that starts at the login form.
    pub fn new(now: Instant) -> App {
        App {
            screen: Screen::Login(LoginForm::default()),
            me: None,
            rooms: Vec::new(),
            selected: None,
            open: None,
            focus: Focus::Rooms,
            input: Input::default(),
            editing: None,
            prompt: None,
            cursor: None,
            presence: HashMap::new(),
            typing: HashMap::new(),
            connected: false,
            status: None,
            pending: Vec::new(),
            changes: ChangeCursors::new(),
            typing_sent: None,
            now,
            quit: false,
        }
    }

    fn my_id(&self) -> Uuid {
        self.me.as_ref().map_or(Uuid::nil(), |(id, _)| *id)
    }

    pub fn room(&self, id: Uuid) -> Option<&RoomState> {
        self.rooms.iter().find(|r| r.room.id == id)
    }

    fn room_mut(&mut self, id: Uuid) -> Option<&mut RoomState> {
        self.rooms.iter_mut().find(|r| r.room.id == id)
    }

    /// The room shown, if any.
    pub fn open_room(&self) -> Option<&RoomState> {
        self.open.and_then(|id| self.room(id))
    }

    /// The `sync` frame for a socket just opened: every room's cursor, and the change
    /// numbers the last `synced` gave.
    pub fn sync_frame(&self) -> ClientFrame {
        let cursors: Cursors = self.rooms.iter().map(|r| (r.room.id, r.cursor())).collect();
        let changes = self
            .changes
            .iter()
            .filter(|(id, _)| cursors.contains_key(id))
            .map(|(id, n)| (*id, *n))
            .collect();
        ClientFrame::Sync { cursors, changes }
    }

    /// Who is typing in a room (not the user), by name.
    pub fn typing_in(&self, room: Uuid) -> Vec<String> {
        let me = self.my_id();
        let Some(state) = self.room(room) else {
            return Vec::new();
        };
        let mut names: Vec<String> = self
            .typing
            .iter()
            .filter(|((r, u), until)| *r == room && *u != me && **until > self.now)
            .map(|((_, u), _)| state.name_of(*u).unwrap_or("someone").to_owned())
            .collect();
        names.sort();
        names
    }

    /// Handles one event; answers what to do about it.
    pub fn update(&mut self, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.key(key, &mut out),
            Event::Key(_) => {}
            Event::Paste(text) => match &mut self.prompt {
                Some(Prompt::Upload(input)) => input.insert_str(text.trim()),
                Some(Prompt::Search(s)) => s.query.insert_str(&text),
                _ if self.focus == Focus::Compose => {
                    self.input.insert_str(&text);
                    self.typed(&mut out);
                }
                _ => {}
            },
            Event::Tick(now) => {
                self.now = now;
                self.typing.retain(|_, until| *until > now);
            }
            Event::LoggedIn { user_id, username } => {
                self.me = Some((user_id, username));
                self.screen = Screen::Chat;
                self.status = None;
                out.push(Command::LoadRooms);
            }
            Event::SecondFactor(challenge) => {
                if let Screen::Login(form) = &mut self.screen {
                    form.busy = false;
                    form.challenge = Some(challenge);
                    form.field = LoginField::Code;
                    form.code = Input::default();
                }
                self.status = Some("enter the code from your authenticator app".into());
            }
            Event::LoginFailed(why) => {
                if let Screen::Login(form) = &mut self.screen {
                    form.busy = false;
                    if form.challenge.is_some() {
                        form.code = Input::default();
                    } else {
                        form.password = Input::default();
                        form.field = LoginField::Password;
                    }
                }
                self.status = Some(why);
            }
            Event::Rooms(rooms) => self.rooms_loaded(rooms, &mut out),
            Event::Presence(user, status) => {
                self.presence.insert(user, status);
            }
            Event::History {
                room,
                messages,
                has_more,
                older,
            } => self.history(room, messages, has_more, older, &mut out),
            Event::SearchResults(messages) => {
                if let Some(Prompt::Search(s)) = &mut self.prompt {
                    s.searched = Some(s.query.text.clone());
                    s.selected = 0;
                    s.results = messages;
                    if s.results.is_empty() {
                        self.status = Some("nothing found".into());
                    }
                }
            }
            Event::Connected => {
                self.connected = true;
                self.status = None;
                // `sync` must be the socket's first frame; then what waited for it.
                out.push(Command::Socket(self.sync_frame()));
                for p in self.pending.iter().filter(|p| p.failed.is_none()) {
                    out.push(Command::Socket(ClientFrame::Send {
                        message: p.request.clone(),
                    }));
                }
            }
            Event::Disconnected(why) => {
                self.connected = false;
                self.typing.clear();
                self.status = Some(format!("reconnecting… ({why})"));
            }
            Event::Frame(frame) => self.frame(frame, &mut out),
            Event::Failed(why) => {
                for r in &mut self.rooms {
                    r.loading = false;
                }
                self.status = Some(why);
            }
            Event::Notice(text) => self.status = Some(text),
        }
        out
    }

    fn rooms_loaded(&mut self, rooms: Vec<Room>, out: &mut Vec<Command>) {
        let me = self.my_id();
        let first = self.rooms.is_empty();
        let mut old: HashMap<Uuid, RoomState> =
            self.rooms.drain(..).map(|r| (r.room.id, r)).collect();
        self.rooms = rooms
            .into_iter()
            .map(|room| match old.remove(&room.id) {
                Some(mut held) => {
                    held.unread = room.unread_count;
                    held.room = room;
                    held.summarise(me);
                    held
                }
                None => RoomState::new(room, me),
            })
            .collect();
        self.sort_rooms();
        if self.selected.is_none_or(|s| self.room(s).is_none()) {
            self.selected = self.rooms.first().map(|r| r.room.id);
        }
        if first {
            out.push(Command::Connect);
        }
    }

    fn sort_rooms(&mut self) {
        self.rooms.sort_by_key(|r| std::cmp::Reverse(r.activity));
    }

    fn history(
        &mut self,
        room: Uuid,
        messages: Vec<Message>,
        has_more: bool,
        older: bool,
        out: &mut Vec<Command>,
    ) {
        let open = self.open == Some(room);
        let Some(state) = self.room_mut(room) else {
            return;
        };
        state.loading = false;
        if !older {
            // The newest page replaces what arrived live before the room was opened, so
            // the messages held stay one run with no hole.
            state.messages.clear();
            state.loaded = true;
        }
        if older || state.messages.is_empty() {
            state.has_more = has_more;
        }
        for m in messages {
            upsert(&mut state.messages, m);
        }
        if open {
            self.mark_read(room, out);
        }
    }

    /// Sends the read receipt for the open room's newest message from someone else.
    fn mark_read(&mut self, room: Uuid, out: &mut Vec<Command>) {
        let me = self.my_id();
        let Some(state) = self.room_mut(room) else {
            return;
        };
        state.unread = 0;
        if state.room.state != MemberState::Joined {
            return;
        }
        let newest = state
            .messages
            .values()
            .rev()
            .find(|m| m.sender_id != me)
            .map(|m| m.seq);
        if let Some(seq) = newest
            && seq > state.read_sent
        {
            state.read_sent = seq;
            out.push(Command::Socket(ClientFrame::Receipt {
                room_id: room,
                seq,
                status: ReceiptKind::Read,
            }));
        }
    }

    fn frame(&mut self, frame: ServerFrame, out: &mut Vec<Command>) {
        let me = self.my_id();
        match frame {
            ServerFrame::Message { message } => self.message(message, true, out),
            ServerFrame::Ack {
                message: Some(message),
                ..
            } => {
                self.pending
                    .retain(|p| p.request.client_msg_id != message.client_msg_id);
                self.message(message, false, out);
            }
            ServerFrame::MessageUpdated { message } | ServerFrame::MessageDeleted { message } => {
                self.message(message, false, out)
            }
            ServerFrame::Receipt {
                room_id,
                user_id,
                status,
                seq,
            } => {
                if let Some(state) = self.room_mut(room_id) {
                    if let Some(m) = state.room.members.iter_mut().find(|m| m.user_id == user_id) {
                        match status {
                            ReceiptKind::Delivered => m.delivered_seq = m.delivered_seq.max(seq),
                            ReceiptKind::Read => {
                                m.read_seq = m.read_seq.max(seq);
                                m.delivered_seq = m.delivered_seq.max(seq);
                            }
                        }
                    }
                    if user_id == me && status == ReceiptKind::Read {
                        // Read on another device.
                        state.read_sent = state.read_sent.max(seq);
                        state.unread = 0;
                    }
                    state.summarise(me);
                }
            }
            ServerFrame::ReceiptSummary {
                room_id,
                delivered_seq,
                read_seq,
            } => {
                if let Some(state) = self.room_mut(room_id) {
                    state.delivered_seq = state.delivered_seq.max(delivered_seq);
                    state.read_seq = state.read_seq.max(read_seq);
                }
            }
            ServerFrame::Typing {
                room_id,
                user_id,
                active,
            } => {
                if active {
                    self.typing
                        .insert((room_id, user_id), self.now + TYPING_TTL);
                } else {
                    self.typing.remove(&(room_id, user_id));
                }
            }
            ServerFrame::Presence {
                user_id, status, ..
            } => {
                self.presence.insert(user_id, status);
            }
            ServerFrame::RoomUpdated { room } => {
                if let Some(state) = self.room_mut(room.id) {
                    let (unread, last_message) =
                        (state.room.unread_count, state.room.last_message.take());
                    state.room = Room {
                        unread_count: unread,
                        last_message,
                        last_seq: room.last_seq.max(state.room.last_seq),
                        notification_level: state.room.notification_level,
                        ..room
                    };
                    state.summarise(me);
                } else {
                    // New to this client: fetch the list again (with its counts), and let
                    // the next `sync` name it.
                    let id = room.id;
                    let mut state = RoomState::new(room, me);
                    state.activity = time::OffsetDateTime::now_utc().unix_timestamp();
                    self.rooms.insert(0, state);
                    self.changes.remove(&id);
                }
            }
            ServerFrame::RoomLeft { room_id, .. } => {
                self.rooms.retain(|r| r.room.id != room_id);
                self.changes.remove(&room_id);
                if self.open == Some(room_id) {
                    self.open = None;
                    self.focus = Focus::Rooms;
                    self.status = Some("you are no longer in that room".into());
                }
                if self.selected == Some(room_id) {
                    self.selected = self.rooms.first().map(|r| r.room.id);
                }
            }
            // Encrypted rooms are not in the terminal client yet: it lists them, and
            // ignores their welcomes.
            ServerFrame::MlsWelcome { .. } => {}
            ServerFrame::Synced { rooms, changes, .. } => {
                self.changes = changes;
                // A room the sync left out is one the user is no longer in.
                let gone: Vec<Uuid> = self
                    .rooms
                    .iter()
                    .filter(|r| {
                        !rooms.contains_key(&r.room.id) && r.room.state == MemberState::Joined
                    })
                    .map(|r| r.room.id)
                    .collect();
                for id in gone {
                    if !self.changes.contains_key(&id) {
                        self.frame(
                            ServerFrame::RoomLeft {
                                room_id: id,
                                reason: None,
                                by: None,
                            },
                            out,
                        );
                    }
                }
            }
            ServerFrame::Error {
                client_msg_id,
                message,
                code,
                ..
            } => {
                if let Some(id) = client_msg_id
                    && let Some(p) = self
                        .pending
                        .iter_mut()
                        .find(|p| p.request.client_msg_id == id)
                {
                    p.failed = Some(message.clone());
                }
                self.status = Some(format!("{}: {message}", code.as_str()));
            }
            ServerFrame::Hello { .. } | ServerFrame::Ack { .. } | ServerFrame::Pong { .. } => {}
        }
    }

    /// A message arrived (new, replayed, acknowledged, edited or deleted).
    fn message(&mut self, message: Message, new: bool, out: &mut Vec<Command>) {
        let me = self.my_id();
        let open = self.open == Some(message.room_id);
        let room_id = message.room_id;
        let Some(state) = self.room_mut(room_id) else {
            return;
        };
        let (seq, sender) = (message.seq, message.sender_id);
        let fresh = seq > state.cursor() || !state.messages.contains_key(&seq);
        let counts = new && fresh && seq > state.room.last_seq && sender != me;
        if message.kind != MessageType::Event || new {
            state.activity = state.activity.max(message.timestamp.unix_timestamp());
        }
        state.room.last_seq = state.room.last_seq.max(seq);
        if state
            .room
            .last_message
            .as_ref()
            .is_none_or(|m| m.seq <= seq)
        {
            state.room.last_message = Some(message.clone());
        }
        // The sender has read everything up to their own message.
        if let Some(m) = state.room.members.iter_mut().find(|m| m.user_id == sender) {
            m.read_seq = m.read_seq.max(seq);
            m.delivered_seq = m.delivered_seq.max(seq);
        }
        upsert(&mut state.messages, message);
        self.typing.remove(&(room_id, sender));
        if counts {
            let state = self.room_mut(room_id).expect("found above");
            state.unread += 1;
            if state.room.state == MemberState::Joined {
                out.push(Command::Socket(ClientFrame::Receipt {
                    room_id,
                    seq,
                    status: ReceiptKind::Delivered,
                }));
            }
            if open {
                self.mark_read(room_id, out);
            }
        }
        if new {
            self.sort_rooms();
        }
    }

    /// The messages of the open room, oldest first, with the user's pending ones last.
    pub fn timeline(&self) -> Vec<&Message> {
        self.open_room()
            .map(|r| r.messages.values().collect())
            .unwrap_or_default()
    }

    /// Pending sends of the open room.
    pub fn pending_here(&self) -> Vec<&Pending> {
        self.pending
            .iter()
            .filter(|p| Some(p.request.room_id) == self.open)
            .collect()
    }

    fn key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('q')) {
            self.quit = true;
            out.push(Command::Quit);
            return;
        }
        if let Screen::Login(_) = self.screen {
            return self.login_key(key, out);
        }
        if self.prompt.is_some() {
            return self.prompt_key(key, out);
        }
        match self.focus {
            Focus::Rooms => self.rooms_key(key, out),
            Focus::Compose => self.compose_key(key, out),
            Focus::Timeline => self.timeline_key(key, out),
        }
    }

    fn login_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        let Screen::Login(form) = &mut self.screen else {
            return;
        };
        if form.busy {
            return;
        }
        let next = matches!(key.code, KeyCode::Tab | KeyCode::Down);
        let back = matches!(key.code, KeyCode::BackTab | KeyCode::Up);
        match (form.field, key.code) {
            (LoginField::Username, KeyCode::Enter) => form.field = LoginField::Password,
            (LoginField::Password, KeyCode::Enter) => {
                if form.username.text.trim().is_empty() {
                    form.field = LoginField::Username;
                    return;
                }
                form.busy = true;
                self.status = Some("logging in…".into());
                out.push(Command::Login {
                    username: form.username.text.trim().to_owned(),
                    password: form.password.text.clone(),
                });
            }
            (LoginField::Code, KeyCode::Enter) => {
                if let Some(challenge) = &form.challenge {
                    form.busy = true;
                    out.push(Command::SecondFactor {
                        challenge: challenge.challenge.clone(),
                        code: form.code.text.trim().to_owned(),
                    });
                }
            }
            (LoginField::Code, KeyCode::Esc) => {
                form.challenge = None;
                form.password = Input::default();
                form.field = LoginField::Password;
            }
            (LoginField::Username, _) if next => form.field = LoginField::Password,
            (LoginField::Password, _) if back => form.field = LoginField::Username,
            (LoginField::Username, _) => {
                form.username.key(&key);
            }
            (LoginField::Password, _) => {
                form.password.key(&key);
            }
            (LoginField::Code, _) => {
                form.code.key(&key);
            }
        }
    }

    fn move_selection(&mut self, down: bool) {
        let at = self
            .selected
            .and_then(|s| self.rooms.iter().position(|r| r.room.id == s));
        let next = match (at, down) {
            (None, _) => 0,
            (Some(i), true) => (i + 1).min(self.rooms.len().saturating_sub(1)),
            (Some(i), false) => i.saturating_sub(1),
        };
        self.selected = self.rooms.get(next).map(|r| r.room.id);
    }

    /// Shows a room (fetching its newest page the first time).
    pub fn open_room_id(&mut self, room: Uuid, out: &mut Vec<Command>) {
        self.stop_typing(out);
        self.open = Some(room);
        self.selected = Some(room);
        self.cursor = None;
        self.editing = None;
        self.input = Input::default();
        self.focus = Focus::Compose;
        let Some(state) = self.room_mut(room) else {
            return;
        };
        if !state.loaded && !state.loading {
            state.loading = true;
            out.push(Command::LoadHistory { room, before: None });
        }
        if state.room.state == MemberState::Invited {
            self.status = Some("a request: accept it in the web client to reply".into());
        }
        self.mark_read(room, out);
    }

    fn rooms_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(false),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(true),
            KeyCode::Enter | KeyCode::Right => {
                if let Some(room) = self.selected {
                    self.open_room_id(room, out);
                }
            }
            KeyCode::Tab | KeyCode::Esc if self.open.is_some() => self.focus = Focus::Compose,
            KeyCode::Char('/') => self.prompt = Some(Prompt::Search(SearchState::default())),
            KeyCode::Char('q') => {
                self.quit = true;
                out.push(Command::Quit);
            }
            _ => {}
        }
    }

    fn compose_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter => self.submit(out),
            KeyCode::Esc if self.editing.is_some() => {
                self.editing = None;
                self.input = Input::default();
            }
            KeyCode::Esc => self.select_newest(),
            KeyCode::Up if self.input.text.is_empty() => self.select_newest(),
            KeyCode::Tab => {
                self.stop_typing(out);
                self.focus = Focus::Rooms;
            }
            KeyCode::PageUp => self.scroll(-10, out),
            KeyCode::PageDown => self.scroll(10, out),
            KeyCode::Char('o') if ctrl => self.prompt = Some(Prompt::Upload(Input::default())),
            KeyCode::Char('f') if ctrl => {
                self.prompt = Some(Prompt::Search(SearchState::default()))
            }
            _ => {
                let before = self.input.text.clone();
                self.input.key(&key);
                if self.input.text != before {
                    if self.input.text.is_empty() {
                        self.stop_typing(out);
                    } else {
                        self.typed(out);
                    }
                }
            }
        }
    }

    /// The user typed: say so now and then.
    fn typed(&mut self, out: &mut Vec<Command>) {
        let Some(room) = self.open else { return };
        if self.editing.is_some() || !self.connected {
            return;
        }
        let due = self
            .typing_sent
            .is_none_or(|(r, at)| r != room || self.now.duration_since(at) >= TYPING_REPEAT);
        if due {
            self.typing_sent = Some((room, self.now));
            out.push(Command::Socket(ClientFrame::Typing {
                room_id: room,
                active: true,
            }));
        }
    }

    fn stop_typing(&mut self, out: &mut Vec<Command>) {
        if let Some((room, _)) = self.typing_sent.take()
            && self.connected
        {
            out.push(Command::Socket(ClientFrame::Typing {
                room_id: room,
                active: false,
            }));
        }
    }

    fn submit(&mut self, out: &mut Vec<Command>) {
        let Some(room) = self.open else { return };
        let text = self.input.text.trim().to_owned();
        if text.is_empty() {
            return;
        }
        self.input = Input::default();
        self.cursor = None;
        if let Some(id) = self.editing.take() {
            out.push(Command::Socket(ClientFrame::Edit {
                message_id: id,
                content: text,
                no_preview: false,
            }));
            return;
        }
        self.stop_typing(out);
        let request = SendMessageRequest {
            room_id: room,
            client_msg_id: Uuid::now_v7().to_string(),
            content: text,
            kind: MessageType::Text,
            ..Default::default()
        };
        if self.connected {
            out.push(Command::Socket(ClientFrame::Send {
                message: request.clone(),
            }));
        }
        // Kept until acknowledged, and sent again (same clientMsgId, so never twice)
        // after a reconnect.
        self.pending.push(Pending {
            request,
            failed: None,
        });
    }

    fn select_newest(&mut self) {
        if let Some(seq) = self.open_room().and_then(|r| r.messages.keys().next_back()) {
            self.cursor = Some(*seq);
            self.focus = Focus::Timeline;
        }
    }

    /// Moves the cursor `by` messages (negative: older), fetching an older page when it
    /// nears the first message held.
    fn scroll(&mut self, by: isize, out: &mut Vec<Command>) {
        let Some(state) = self.open_room() else {
            return;
        };
        let seqs: Vec<i64> = state.messages.keys().copied().collect();
        if seqs.is_empty() {
            return;
        }
        let at = self
            .cursor
            .and_then(|c| seqs.iter().position(|s| *s >= c))
            .unwrap_or(seqs.len() - 1);
        let to = at.saturating_add_signed(by).min(seqs.len() - 1);
        let (room, first) = (state.room.id, seqs[0]);
        let fetch = to < 5 && state.has_more && !state.loading && first > 1;
        self.cursor = if to == seqs.len() - 1 && self.focus != Focus::Timeline {
            None
        } else {
            Some(seqs[to])
        };
        if fetch {
            if let Some(state) = self.room_mut(room) {
                state.loading = true;
            }
            out.push(Command::LoadHistory {
                room,
                before: Some(first),
            });
        }
    }

    /// The chosen message, in `Timeline`.
    pub fn chosen(&self) -> Option<&Message> {
        let seq = self.cursor?;
        self.open_room()?.messages.get(&seq)
    }

    fn timeline_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        let me = self.my_id();
        let mine = self
            .chosen()
            .filter(|m| m.sender_id == me && !m.deleted && m.kind != MessageType::Event)
            .map(|m| (m.id, m.content.clone(), m.media_id.is_some()));
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.scroll(-1, out),
            KeyCode::Down | KeyCode::Char('j') => self.scroll(1, out),
            KeyCode::PageUp => self.scroll(-10, out),
            KeyCode::PageDown => self.scroll(10, out),
            KeyCode::Char('e') => match mine {
                Some((id, content, false)) => {
                    self.editing = Some(id);
                    self.input = Input::with(&content);
                    self.focus = Focus::Compose;
                }
                Some(_) => self.status = Some("a file's message cannot be edited".into()),
                None => self.status = Some("only your own messages can be edited".into()),
            },
            KeyCode::Char('d') | KeyCode::Delete => match mine {
                Some((id, _, _)) => self.prompt = Some(Prompt::ConfirmDelete(id)),
                None => self.status = Some("only your own messages can be deleted".into()),
            },
            KeyCode::Char('o') => self.prompt = Some(Prompt::Upload(Input::default())),
            KeyCode::Char('/') => self.prompt = Some(Prompt::Search(SearchState::default())),
            KeyCode::Tab => self.focus = Focus::Rooms,
            KeyCode::Esc | KeyCode::Char('i') | KeyCode::Enter => {
                self.cursor = None;
                self.focus = Focus::Compose;
            }
            KeyCode::Char('q') => {
                self.quit = true;
                out.push(Command::Quit);
            }
            _ => {}
        }
    }

    fn prompt_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        let Some(prompt) = self.prompt.as_mut() else {
            return;
        };
        match prompt {
            Prompt::ConfirmDelete(id) => {
                if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    out.push(Command::Socket(ClientFrame::Delete { message_id: *id }));
                    // Done with that message: back to the newest, and to writing.
                    self.cursor = None;
                    self.focus = Focus::Compose;
                }
                self.prompt = None;
            }
            Prompt::Upload(input) => match key.code {
                KeyCode::Esc => self.prompt = None,
                KeyCode::Enter => {
                    let path = input.text.trim().to_owned();
                    self.prompt = None;
                    if let (Some(room), false) = (self.open, path.is_empty()) {
                        self.status = Some(format!("sending {path}…"));
                        out.push(Command::Upload {
                            room,
                            path: expand_home(&path),
                        });
                    }
                }
                _ => {
                    input.key(&key);
                }
            },
            Prompt::Search(search) => match key.code {
                KeyCode::Esc => self.prompt = None,
                KeyCode::Up => search.selected = search.selected.saturating_sub(1),
                KeyCode::Down => {
                    search.selected =
                        (search.selected + 1).min(search.results.len().saturating_sub(1))
                }
                KeyCode::Enter => {
                    let query = search.query.text.trim().to_owned();
                    if search.searched.as_deref() != Some(search.query.text.as_str()) {
                        if !query.is_empty() {
                            out.push(Command::Search { query });
                        }
                    } else if let Some(hit) = search.results.get(search.selected) {
                        let (room, seq) = (hit.room_id, hit.seq);
                        self.prompt = None;
                        self.open_room_id(room, out);
                        if self
                            .room(room)
                            .is_some_and(|r| r.messages.contains_key(&seq))
                        {
                            self.cursor = Some(seq);
                            self.focus = Focus::Timeline;
                        }
                    }
                }
                _ => {
                    search.query.key(&key);
                }
            },
        }
    }
}

/// Keeps the newer copy of a message (by `version`), so a replayed old state never
/// overwrites a newer one.
fn upsert(messages: &mut BTreeMap<i64, Message>, message: Message) {
    match messages.get(&message.seq) {
        Some(held) if held.id == message.id && held.version > message.version => {}
        _ => {
            messages.insert(message.seq, message);
        }
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
