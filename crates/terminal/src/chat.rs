//! `palaver chat`: the loop that joins the state (`app.rs`) to the world. It reads keys,
//! runs the state's commands (REST requests as tasks, frames on the socket), feeds back
//! what they answer as events, and redraws after each batch of events.
//!
//! The socket lives in one task ([`network`]) that reconnects with backoff for as long as
//! the chat runs. On every (re)connection it first throws away frames queued while it was
//! down, then tells the state `Connected`, whose first command is the `sync` frame built
//! from what the state holds: so `sync` is always the socket's first frame, and the server
//! replays exactly what was missed (docs/PROTOCOL.md, 6.5). Messages not yet acknowledged
//! are sent again after it with their `clientMsgId`, which the server stores only once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{
    DisableBracketedPaste, EnableBracketedPaste, Event as TermEvent, EventStream,
};
use futures::StreamExt;
use palaver_client::{Client, ClientError};
use palaver_proto::LoginResponse;
use palaver_proto::{ClientFrame, ErrorCode, SearchQuery, ServerFrame};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::app::{App, Command, Event, PAGE};
use crate::error::{Result, TerminalError};
use crate::script::{Backoff, upload_and_send};
use crate::session::{Auth, Session, SessionFile};
use crate::ui::{self, Theme};

/// With nothing heard for this long, the socket is asked for a `pong`…
const QUIET: Duration = Duration::from_secs(30);
/// …and with nothing heard for this long, it is taken for dead and reopened.
const DEAD: Duration = Duration::from_secs(60);

/// Runs the full-screen chat against `server` (or the stored session's server) until the
/// user quits.
pub async fn run(server: Option<&str>, file: SessionFile) -> Result<()> {
    let stored = file.load()?;
    let server = match (server, &stored) {
        (Some(s), _) => s.trim_end_matches('/').to_owned(),
        (None, Some(s)) => s.server.clone(),
        (None, None) => return Err(TerminalError::NoServer),
    };
    // Checked before the screen is taken over, so a bad URL is a plain error.
    Client::new(&server)?;
    let auth = match stored {
        Some(s) if s.server == server => Some(Arc::new(Auth::new(file.clone(), s)?)),
        _ => None,
    };
    let mut terminal = ratatui::try_init()?;
    let _ = crossterm::execute!(std::io::stdout(), EnableBracketedPaste);
    let result = Chat {
        server,
        file,
        auth,
        net: None,
    }
    .run(&mut terminal)
    .await;
    let _ = crossterm::execute!(std::io::stdout(), DisableBracketedPaste);
    ratatui::restore();
    result
}

struct Chat {
    server: String,
    file: SessionFile,
    auth: Option<Arc<Auth>>,
    /// Frames for the socket task, while it runs.
    net: Option<UnboundedSender<ClientFrame>>,
}

impl Chat {
    async fn run(mut self, terminal: &mut ratatui::DefaultTerminal) -> Result<()> {
        let theme = Theme::from_env();
        let (tx, mut rx) = unbounded_channel::<Event>();
        let mut app = App::new(Instant::now());
        let keys = tokio::spawn(read_terminal(tx.clone()));
        let ticker = tokio::spawn(tick(tx.clone()));
        let mut tasks = Vec::new();

        if let Some(auth) = self.auth.clone() {
            match auth.client().await {
                Ok(_) => {
                    let s = auth.session().await;
                    tx.send(Event::LoggedIn {
                        user_id: s.user_id,
                        username: s.username,
                    })
                    .ok();
                }
                Err(e) => {
                    self.auth = None;
                    tx.send(Event::Notice(e.to_string())).ok();
                }
            }
        }

        terminal.draw(|f| ui::draw(f, &app, theme))?;
        'outer: loop {
            let Some(first) = rx.recv().await else { break };
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let mut commands = Vec::new();
            for event in batch {
                commands.extend(app.update(event));
            }
            // Drawn before the commands run, so "logging in…" shows while it happens
            // (what the commands change shows with the events they send back).
            terminal.draw(|f| ui::draw(f, &app, theme))?;
            for command in commands {
                if command == Command::Quit {
                    break 'outer;
                }
                if let Some(task) = self.exec(command, &tx, &mut app).await {
                    tasks.push(task);
                }
            }
            tasks.retain(|t: &tokio::task::JoinHandle<()>| !t.is_finished());
            if app.quit {
                break;
            }
        }
        keys.abort();
        ticker.abort();
        for t in tasks {
            t.abort();
        }
        Ok(())
    }

    /// Carries out one command; a long one runs as a task, answered by an event.
    async fn exec(
        &mut self,
        command: Command,
        tx: &UnboundedSender<Event>,
        app: &mut App,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let tx = tx.clone();
        match command {
            Command::Quit => None,
            Command::Login { username, password } => {
                let event = match self.login(&username, &password).await {
                    Ok(Some(event)) => event,
                    Ok(None) => return None,
                    Err(e) => Event::LoginFailed(e.to_string()),
                };
                tx.send(event).ok();
                None
            }
            Command::SecondFactor { challenge, code } => {
                let client = Client::new(&self.server).ok()?;
                let event = match client.login_second_factor(&challenge, &code).await {
                    Ok(auth) => {
                        let session = Session::from_auth(&self.server, &auth);
                        self.logged_in(session)
                            .unwrap_or_else(|e| Event::LoginFailed(e.to_string()))
                    }
                    Err(e) => Event::LoginFailed(login_error(&e)),
                };
                tx.send(event).ok();
                None
            }
            Command::LoadRooms => {
                let auth = self.auth.clone()?;
                Some(tokio::spawn(async move {
                    // Until the server answers: the chat may start while it is away.
                    let mut backoff = Backoff::default();
                    let rooms = loop {
                        match auth.client().await {
                            Ok(client) => match client.rooms().await {
                                Ok(rooms) => break rooms,
                                Err(e) => tx.send(Event::Disconnected(e.to_string())).ok(),
                            },
                            Err(e @ TerminalError::NotLoggedIn(_)) => {
                                tx.send(Event::Failed(e.to_string())).ok();
                                return;
                            }
                            Err(e) => tx.send(Event::Disconnected(e.to_string())).ok(),
                        };
                        tokio::time::sleep(backoff.wait()).await;
                    };
                    let result = async {
                        let client = auth.client().await?;
                        let me = auth.session().await.user_id;
                        let peers: Vec<_> = rooms
                            .iter()
                            .filter(|r| !r.is_group)
                            .flat_map(|r| r.members.iter().map(|m| m.user_id))
                            .filter(|u| *u != me)
                            .collect();
                        tx.send(Event::Rooms(rooms)).ok();
                        // Later changes come as `presence` frames; this is the start.
                        for peer in peers {
                            if let Ok(p) = client.presence(peer).await {
                                tx.send(Event::Presence(p.user_id, p.status)).ok();
                            }
                        }
                        Ok::<_, TerminalError>(())
                    }
                    .await;
                    if let Err(e) = result {
                        tx.send(Event::Failed(format!("could not read presence: {e}")))
                            .ok();
                    }
                }))
            }
            Command::Connect => {
                let auth = self.auth.clone()?;
                let (out_tx, out_rx) = unbounded_channel();
                self.net = Some(out_tx);
                Some(tokio::spawn(network(auth, tx, out_rx)))
            }
            Command::LoadHistory { room, before } => {
                let auth = self.auth.clone()?;
                Some(tokio::spawn(async move {
                    let result = async {
                        let client = auth.client().await?;
                        Ok::<_, TerminalError>(
                            client.history(room, before, None, Some(PAGE)).await?,
                        )
                    }
                    .await;
                    let event = match result {
                        Ok(page) => Event::History {
                            room,
                            messages: page.messages,
                            has_more: page.has_more,
                            older: before.is_some(),
                        },
                        Err(e) => Event::Failed(format!("could not load history: {e}")),
                    };
                    tx.send(event).ok();
                }))
            }
            Command::Socket(frame) => {
                if let Some(net) = &self.net {
                    net.send(frame).ok();
                }
                None
            }
            Command::Search { query } => {
                let auth = self.auth.clone()?;
                Some(tokio::spawn(async move {
                    let result = async {
                        let client = auth.client().await?;
                        let q = SearchQuery {
                            q: query,
                            limit: Some(20),
                            ..Default::default()
                        };
                        Ok::<_, TerminalError>(client.search(&q).await?)
                    }
                    .await;
                    tx.send(match result {
                        Ok(found) => Event::SearchResults(found.messages),
                        Err(e) => Event::Failed(format!("search failed: {e}")),
                    })
                    .ok();
                }))
            }
            Command::Upload { room, path } => {
                let auth = self.auth.clone()?;
                app.status = Some(format!("sending {}…", path.display()));
                Some(tokio::spawn(async move {
                    let room = room.to_string();
                    let event = match upload_and_send(&auth, &path, Some(&room), "").await {
                        Ok((media, _)) => Event::Notice(format!("sent {}", media.filename)),
                        Err(e) => Event::Failed(format!("could not send {}: {e}", path.display())),
                    };
                    tx.send(event).ok();
                }))
            }
        }
    }

    /// Logs in; `None` when the event was already sent.
    async fn login(&mut self, username: &str, password: &str) -> Result<Option<Event>> {
        let client = Client::new(&self.server)?;
        match client.login_start(username, password).await {
            Ok(LoginResponse::Tokens(auth)) => {
                let session = Session::from_auth(&self.server, &auth);
                Ok(Some(self.logged_in(session)?))
            }
            Ok(LoginResponse::SecondFactor { second_factor }) => {
                Ok(Some(Event::SecondFactor(second_factor)))
            }
            Err(e) => Ok(Some(Event::LoginFailed(login_error(&e)))),
        }
    }

    fn logged_in(&mut self, session: Session) -> Result<Event> {
        self.file.save(&session)?;
        let event = Event::LoggedIn {
            user_id: session.user_id,
            username: session.username.clone(),
        };
        self.auth = Some(Arc::new(Auth::new(self.file.clone(), session)?));
        Ok(event)
    }
}

/// What to tell a person whose login failed.
fn login_error(e: &ClientError) -> String {
    match e.code() {
        Some(ErrorCode::InvalidCredentials) => "wrong username or password".into(),
        Some(ErrorCode::Unauthorized) => "the code was not accepted".into(),
        Some(ErrorCode::RateLimited) => "too many tries: wait a little".into(),
        _ => e.to_string(),
    }
}

async fn read_terminal(tx: UnboundedSender<Event>) {
    let mut events = EventStream::new();
    while let Some(Ok(event)) = events.next().await {
        let event = match event {
            TermEvent::Key(key) => Event::Key(key),
            TermEvent::Paste(text) => Event::Paste(text),
            TermEvent::Resize(..) => Event::Tick(Instant::now()),
            _ => continue,
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

async fn tick(tx: UnboundedSender<Event>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        if tx.send(Event::Tick(Instant::now())).is_err() {
            return;
        }
    }
}

/// Keeps the socket open: connects, hands frames both ways, and after a drop waits
/// (backing off) and connects again, until the chat ends or the session does.
async fn network(
    auth: Arc<Auth>,
    tx: UnboundedSender<Event>,
    mut out: UnboundedReceiver<ClientFrame>,
) {
    let mut backoff = Backoff::default();
    loop {
        let why = match connect(&auth).await {
            Ok(socket) => {
                let (mut writer, mut reader) = socket.split();
                // Frames queued while the socket was down were meant for the old one;
                // the state sends `sync` first, then what still matters.
                while out.try_recv().is_ok() {}
                if tx.send(Event::Connected).is_err() {
                    return;
                }
                let mut heard = Instant::now();
                let mut check = tokio::time::interval(QUIET / 2);
                loop {
                    tokio::select! {
                        frame = reader.next() => match frame {
                            Ok(frame) => {
                                heard = Instant::now();
                                if matches!(frame, ServerFrame::Synced { .. }) {
                                    backoff = Backoff::default();
                                }
                                if tx.send(Event::Frame(frame)).is_err() {
                                    return;
                                }
                            }
                            Err(ClientError::Closed(Some((code, _))))
                                if code == palaver_proto::close::SESSION_ENDED =>
                            {
                                tx.send(Event::Failed(
                                    "the session has ended: quit and log in again".into(),
                                ))
                                .ok();
                                return;
                            }
                            Err(e) => break e.to_string(),
                        },
                        frame = out.recv() => match frame {
                            Some(frame) => {
                                if let Err(e) = writer.send_frame(frame).await {
                                    break e.to_string();
                                }
                            }
                            None => return,
                        },
                        _ = check.tick() => {
                            if heard.elapsed() >= DEAD {
                                break "the server stopped answering".into();
                            }
                            if heard.elapsed() >= QUIET
                                && let Err(e) = writer.send_frame(ClientFrame::Ping).await
                            {
                                break e.to_string();
                            }
                        }
                    }
                }
            }
            Err(TerminalError::NotLoggedIn(why)) => {
                tx.send(Event::Failed(format!(
                    "not logged in{why}: quit and log in again"
                )))
                .ok();
                return;
            }
            Err(e) => e.to_string(),
        };
        if tx.send(Event::Disconnected(why)).is_err() {
            return;
        }
        tokio::time::sleep(backoff.wait()).await;
    }
}

async fn connect(auth: &Auth) -> Result<palaver_client::Socket> {
    let client = auth.client().await?;
    match client.connect().await {
        Err(e) if e.code() == Some(ErrorCode::TokenExpired) => {
            Ok(auth.refreshed().await?.connect().await?)
        }
        Err(e) if e.code() == Some(ErrorCode::Unauthorized) => Err(TerminalError::NotLoggedIn(
            " (the session has ended)".into(),
        )),
        other => Ok(other?),
    }
}
