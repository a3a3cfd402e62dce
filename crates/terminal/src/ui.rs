//! Drawing the chat: a pure function of the state ([`draw`]), so the screens are tested
//! with ratatui's `TestBackend`.
//!
//! The layout at 80×24: the room list on the left (24 columns), the open room on the
//! right (its header, the messages, who is typing, the input), and across the bottom a
//! status line and a line of keys. Below [`NARROW`] columns the room list is not drawn
//! beside the room: the room list and the room take the whole width in turn (Tab).
//! Without colour (`NO_COLOR`), everything that colour says is also said by a glyph or by
//! bold and reverse video: ticks differ in shape, presence in its dot.

use std::collections::HashMap;

use palaver_proto::{MemberState, Message, MessageStatus, MessageType, PresenceStatus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
use uuid::Uuid;

use crate::app::{App, Focus, Input, LoginField, Prompt, RoomState, Screen};
use crate::script::message_text;

/// Below this width the room list is not drawn beside the room.
pub const NARROW: u16 = 60;
/// The room list's width beside the room.
const ROOMS_WIDTH: u16 = 24;

/// Colours, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything but the empty string (no-color.org).
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
}

/// The keys of the current mode, for the bottom line.
pub fn keys(app: &App) -> &'static str {
    match (&app.screen, &app.prompt, app.focus) {
        (Screen::Login(f), _, _) if f.challenge.is_some() => "Enter log in  Esc back  Ctrl-C quit",
        (Screen::Login(_), _, _) => "Tab next field  Enter log in  Ctrl-C quit",
        (_, Some(Prompt::ConfirmDelete(_)), _) => "y delete  n keep",
        (_, Some(Prompt::Upload(_)), _) => "Enter send file  Esc cancel",
        (_, Some(Prompt::Search(_)), _) => "Enter search/open  ↑↓ choose  Esc close",
        (_, None, Focus::Rooms) => "↑↓ choose  Enter open  / search  Tab room  q quit",
        (_, None, Focus::Compose) if app.editing.is_some() => {
            "Enter save edit  Esc cancel  Ctrl-C quit"
        }
        (_, None, Focus::Compose) => {
            "Enter send  ↑/Esc pick msg  PgUp older  Tab rooms  ^O file  ^F search  ^C quit"
        }
        (_, None, Focus::Timeline) => {
            "↑↓ pick  e edit  d delete  o file  / search  Esc write  Tab rooms  q quit"
        }
    }
}

/// The keys that matter most, for a narrow terminal (switching panes comes first).
pub fn narrow_keys(app: &App) -> &'static str {
    match (&app.screen, &app.prompt, app.focus) {
        (Screen::Chat, None, Focus::Rooms) => "Enter open Tab room / find q quit",
        (Screen::Chat, None, Focus::Compose) if app.editing.is_none() => {
            "Enter send Tab rooms ↑ pick ^O file ^C quit"
        }
        (Screen::Chat, None, Focus::Timeline) => "e edit d delete Esc write Tab rooms",
        _ => keys(app),
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    let area = frame.area();
    let [main, status, keys_line] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    match &app.screen {
        Screen::Login(_) => draw_login(frame, main, app, theme),
        Screen::Chat => {
            let narrow = area.width < NARROW;
            if narrow {
                if app.focus == Focus::Rooms || app.open.is_none() {
                    draw_rooms(frame, main, app, theme);
                } else {
                    draw_room(frame, main, app, theme);
                }
            } else {
                let [left, right] =
                    Layout::horizontal([Constraint::Length(ROOMS_WIDTH), Constraint::Min(1)])
                        .areas(main);
                draw_rooms(frame, left, app, theme);
                draw_room(frame, right, app, theme);
            }
            if let Some(prompt) = &app.prompt {
                draw_prompt(frame, main, app, prompt, theme);
            }
        }
    }
    draw_status(frame, status, app, theme);
    let keys = if area.width < NARROW {
        narrow_keys(app)
    } else {
        keys(app)
    };
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(keys, theme.selected()))),
        keys_line,
    );
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut spans = Vec::new();
    if let Some((_, name)) = &app.me {
        spans.push(Span::styled(format!(" {name} "), theme.accent()));
        let (mark, style) = if app.connected {
            ("● online", theme.fg(Color::Green))
        } else {
            ("○ offline", theme.error())
        };
        spans.push(Span::styled(mark, style));
        spans.push(Span::raw("  "));
    }
    if let Some(text) = &app.status {
        spans.push(Span::styled(text.clone(), theme.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_login(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let Screen::Login(form) = &app.screen else {
        return;
    };
    let width = area.width.min(50);
    let height = 9.min(area.height);
    let x = area.x + (area.width - width) / 2;
    let y = area.y + (area.height - height) / 2;
    let boxed = Rect::new(x, y, width, height);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Palaver: log in ", theme.accent()));
    let inner = block.inner(boxed);
    frame.render_widget(block, boxed);
    let field = |label: &str, input: &Input, hidden: bool, on: bool| {
        let shown = if hidden {
            "•".repeat(input.text.chars().count())
        } else {
            input.text.clone()
        };
        let marker = if on { "> " } else { "  " };
        let style = if on { theme.accent() } else { Style::default() };
        Line::from(vec![
            Span::styled(format!("{marker}{label:<10}"), style),
            Span::raw(shown),
        ])
    };
    let mut lines = vec![
        field(
            "username",
            &form.username,
            false,
            form.field == LoginField::Username,
        ),
        field(
            "password",
            &form.password,
            true,
            form.field == LoginField::Password,
        ),
    ];
    if let Some(challenge) = &form.challenge {
        lines.push(Line::raw(""));
        lines.push(Line::raw(format!(
            "  second factor ({})",
            challenge.methods.join(" or ")
        )));
        lines.push(field(
            "code",
            &form.code,
            false,
            form.field == LoginField::Code,
        ));
    }
    if form.busy {
        lines.push(Line::raw(""));
        lines.push(Line::styled("  …", theme.dim()));
    }
    frame.render_widget(Paragraph::new(lines), inner);
    let (row, input) = match form.field {
        LoginField::Username => (0, &form.username),
        LoginField::Password => (1, &form.password),
        LoginField::Code => (4, &form.code),
    };
    let col = inner.x + 12 + input.cursor as u16;
    if row < inner.height && col < inner.x + inner.width {
        frame.set_cursor_position((col, inner.y + row));
    }
}

/// A presence dot: its shape says it without colour.
fn presence_mark(status: Option<PresenceStatus>, theme: Theme) -> Span<'static> {
    match status {
        Some(PresenceStatus::Online) => Span::styled("●", theme.fg(Color::Green)),
        Some(PresenceStatus::Away) => Span::styled("◐", theme.fg(Color::Yellow)),
        _ => Span::styled("○", theme.dim()),
    }
}

fn presence_word(status: Option<PresenceStatus>) -> &'static str {
    match status {
        Some(PresenceStatus::Online) => "online",
        Some(PresenceStatus::Away) => "away",
        _ => "offline",
    }
}

fn draw_rooms(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let focused = app.focus == Focus::Rooms && app.prompt.is_none();
    let title_style = if focused { theme.accent() } else { theme.dim() };
    let block = Block::default()
        .borders(Borders::RIGHT)
        .title(Span::styled("Rooms", title_style));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let me = app.me.as_ref().map_or(Uuid::nil(), |(id, _)| *id);
    let width = usize::from(inner.width);
    let mut lines = Vec::new();
    if app.rooms.is_empty() {
        lines.push(Line::styled("no rooms yet", theme.dim()));
    }
    // Keep the selected room in view.
    let at = app
        .selected
        .and_then(|s| app.rooms.iter().position(|r| r.room.id == s))
        .unwrap_or(0);
    let skip = at.saturating_sub(usize::from(inner.height).saturating_sub(1));
    for state in app.rooms.iter().skip(skip) {
        let mark = match state.peer(me) {
            Some(peer) => presence_mark(app.presence.get(&peer).copied(), theme),
            None => Span::raw("#"),
        };
        let mut name = state.room.name.clone();
        if state.room.state == MemberState::Invited {
            name.push_str(" (request)");
        }
        let count = if state.unread > 0 {
            format!(" {}", state.unread.min(999))
        } else {
            String::new()
        };
        let room_width = width.saturating_sub(2 + count.width());
        let name = fit(&name, room_width);
        let pad = room_width.saturating_sub(name.width());
        let mut style = if state.unread > 0 {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        if app.selected == Some(state.room.id) {
            style = style.patch(theme.selected());
        }
        lines.push(
            Line::from(vec![
                mark,
                Span::raw(" "),
                Span::raw(name),
                Span::raw(" ".repeat(pad)),
                Span::styled(count, theme.fg(Color::Yellow).add_modifier(Modifier::BOLD)),
            ])
            .style(style),
        );
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Cuts text to `width` columns, with an ellipsis when cut.
fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Wraps text to `width` columns, breaking at spaces where it can.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split_inclusive(' ') {
        let w = word.width();
        if used + w.saturating_sub(usize::from(word.ends_with(' '))) > width && used > 0 {
            lines.push(std::mem::take(&mut line).trim_end().to_owned());
            used = 0;
        }
        if w > width {
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if used + cw > width {
                    lines.push(std::mem::take(&mut line));
                    used = 0;
                }
                line.push(c);
                used += cw;
            }
        } else {
            line.push_str(word);
            used += w;
        }
    }
    lines.push(line.trim_end().to_owned());
    lines
}

/// A receipt tick: shapes that differ without colour.
fn tick(status: MessageStatus, theme: Theme) -> Span<'static> {
    match status {
        MessageStatus::Sent => Span::styled("✓", theme.dim()),
        MessageStatus::Delivered => Span::styled("✓✓", Style::default()),
        MessageStatus::Read => Span::styled("✔✔", theme.fg(Color::Cyan)),
    }
}

fn draw_room(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let Some(state) = app.open_room() else {
        let hint = if app.rooms.is_empty() {
            "No rooms yet. Start a conversation in the web client."
        } else {
            "Choose a room and press Enter."
        };
        let [_, middle, _] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(area);
        frame.render_widget(
            Paragraph::new(Line::styled(hint, theme.dim())).centered(),
            middle,
        );
        return;
    };
    let [header, body, typing, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(2),
    ])
    .areas(area);
    let me = app.me.as_ref().map_or(Uuid::nil(), |(id, _)| *id);

    // Header: the room, and the other person's presence or the member count.
    let mut spans = vec![Span::styled(
        format!(" {} ", state.room.name),
        theme.accent(),
    )];
    match state.peer(me) {
        Some(peer) => {
            let status = app.presence.get(&peer).copied();
            spans.push(presence_mark(status, theme));
            spans.push(Span::styled(
                format!(" {}", presence_word(status)),
                theme.dim(),
            ));
        }
        None => spans.push(Span::styled(
            format!("{} members", state.room.members.len()),
            theme.dim(),
        )),
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans))
            .style(Style::default().add_modifier(Modifier::UNDERLINED)),
        header,
    );

    draw_messages(frame, body, app, state, me, theme);

    let names = app.typing_in(state.room.id);
    if !names.is_empty() {
        let verb = if names.len() == 1 { "is" } else { "are" };
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!(" {} {verb} typing…", names.join(", ")),
                theme.dim().add_modifier(Modifier::ITALIC),
            )),
            typing,
        );
    }

    let [rule, line] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(input);
    let label = if app.editing.is_some() { "edit" } else { "" };
    frame.render_widget(
        Block::default()
            .borders(Borders::TOP)
            .title(Span::styled(label, theme.accent())),
        rule,
    );
    let prompt = "> ";
    let width = usize::from(line.width).saturating_sub(prompt.len() + 1);
    // Show the end of a long input, where the cursor is.
    let before: String = app.input.text.chars().take(app.input.cursor).collect();
    let start = before.width().saturating_sub(width);
    let mut shown = String::new();
    let mut col = 0;
    for c in app.input.text.chars() {
        let w = c.width().unwrap_or(0);
        if col >= start && col + w <= start + width {
            shown.push(c);
        }
        col += w;
    }
    let style = if app.focus == Focus::Compose {
        Style::default()
    } else {
        theme.dim()
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prompt, theme.accent()),
            Span::styled(shown, style),
        ])),
        line,
    );
    if app.focus == Focus::Compose && app.prompt.is_none() {
        let x = line.x + (prompt.len() + before.width() - start) as u16;
        frame.set_cursor_position((x.min(line.x + line.width.saturating_sub(1)), line.y));
    }
}

fn draw_messages(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    state: &RoomState,
    me: Uuid,
    theme: Theme,
) {
    let width = usize::from(area.width);
    let height = usize::from(area.height);
    let names: HashMap<Uuid, &str> = state
        .room
        .members
        .iter()
        .map(|m| (m.user_id, m.display_name.as_str()))
        .collect();
    let choosing = app.focus == Focus::Timeline;
    let mut blocks: Vec<Vec<Line>> = Vec::new();
    for message in state.messages.values() {
        if app.cursor.is_some_and(|c| message.seq > c) {
            break;
        }
        let chosen = choosing && app.cursor == Some(message.seq);
        blocks.push(message_lines(
            message, &names, state, me, width, chosen, theme,
        ));
    }
    // What is being sent shows below, greyed, until the server has it.
    if app.cursor.is_none() {
        for pending in app.pending_here() {
            let mark = match &pending.failed {
                Some(why) => Span::styled(format!(" ✗ {why}"), theme.error()),
                None => Span::styled(" …", theme.dim()),
            };
            let mut lines: Vec<Line> = wrap(&pending.request.content, width.saturating_sub(8))
                .into_iter()
                .map(|l| Line::from(Span::styled(format!("      {l}"), theme.dim())))
                .collect();
            if let Some(last) = lines.last_mut() {
                last.spans.push(mark);
            }
            blocks.push(lines);
        }
    }
    let mut lines: Vec<Line> = Vec::new();
    for block in blocks.into_iter().rev() {
        if lines.len() >= height {
            break;
        }
        for line in block.into_iter().rev() {
            lines.push(line);
        }
    }
    if lines.len() < height {
        let top = if state.loading {
            Some("loading…")
        } else if state.loaded && !state.has_more {
            Some("— beginning of the conversation —")
        } else if state.loaded {
            Some("PgUp for older messages")
        } else {
            None
        };
        if let Some(top) = top {
            lines.push(Line::styled(top, theme.dim()));
        }
    }
    lines.truncate(height);
    lines.reverse();
    let pad = height - lines.len();
    let mut all = vec![Line::raw(""); pad];
    all.extend(lines);
    frame.render_widget(Paragraph::new(all), area);
}

fn message_lines<'a>(
    message: &Message,
    names: &HashMap<Uuid, &str>,
    state: &RoomState,
    me: Uuid,
    width: usize,
    chosen: bool,
    theme: Theme,
) -> Vec<Line<'a>> {
    let time = message
        .timestamp
        .format(time::macros::format_description!("[hour]:[minute]"))
        .unwrap_or_default();
    let who = names
        .get(&message.sender_id)
        .map_or_else(|| "someone".to_owned(), |n| (*n).to_owned());
    let text = message_text(message);
    let own = message.sender_id == me;
    let head = if message.kind == MessageType::Event {
        String::new()
    } else {
        format!("{who}: ")
    };
    let indent = 6;
    let body_width = width.saturating_sub(indent + 3);
    let first_width = body_width.saturating_sub(head.width());
    let mut wrapped = wrap(&text, first_width.max(8));
    if wrapped.len() > 1 {
        let rest = wrapped.split_off(1).join(" ");
        wrapped.extend(wrap(&rest, body_width.max(8)));
    }
    let name_style = if own {
        theme.fg(Color::Green).add_modifier(Modifier::BOLD)
    } else {
        theme.fg(Color::Magenta).add_modifier(Modifier::BOLD)
    };
    let text_style = if message.deleted || message.kind == MessageType::Event {
        theme.dim().add_modifier(Modifier::ITALIC)
    } else {
        Style::default()
    };
    let mut lines = Vec::new();
    for (i, part) in wrapped.into_iter().enumerate() {
        let mut spans = if i == 0 {
            vec![
                Span::styled(format!("{time} "), theme.dim()),
                Span::styled(head.clone(), name_style),
            ]
        } else {
            vec![Span::raw(" ".repeat(indent))]
        };
        spans.push(Span::styled(part, text_style));
        lines.push(Line::from(spans));
    }
    if own
        && message.kind != MessageType::Event
        && !message.deleted
        && let Some(last) = lines.last_mut()
    {
        last.spans.push(Span::raw(" "));
        last.spans.push(tick(state.status(message), theme));
    }
    if chosen {
        lines = lines
            .into_iter()
            .map(|l| l.style(theme.selected()))
            .collect();
    }
    lines
}

fn draw_prompt(frame: &mut Frame, area: Rect, app: &App, prompt: &Prompt, theme: Theme) {
    let width = area.width.saturating_sub(4).min(70);
    let x = area.x + (area.width - width) / 2;
    match prompt {
        Prompt::ConfirmDelete(_) | Prompt::Upload(_) => {
            let rect = Rect::new(x, area.y + area.height / 3, width, 3).intersection(area);
            frame.render_widget(Clear, rect);
            let (title, body) = match prompt {
                Prompt::Upload(input) => (" Send a file: path ", input.text.clone()),
                _ => (" Delete this message? ", "y: delete   n: keep".to_owned()),
            };
            let block = Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(title, theme.accent()));
            let inner = block.inner(rect);
            frame.render_widget(block, rect);
            frame.render_widget(Paragraph::new(fit(&body, usize::from(inner.width))), inner);
            if let Prompt::Upload(input) = prompt {
                let before: String = input.text.chars().take(input.cursor).collect();
                let col = (before.width() as u16).min(inner.width.saturating_sub(1));
                frame.set_cursor_position((inner.x + col, inner.y));
            }
        }
        Prompt::Search(search) => {
            let height = area.height.saturating_sub(2).min(16);
            let rect = Rect::new(x, area.y + 1, width, height).intersection(area);
            frame.render_widget(Clear, rect);
            let block = Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Search ", theme.accent()));
            let inner = block.inner(rect);
            frame.render_widget(block, rect);
            let mut lines = vec![Line::from(vec![
                Span::styled("? ", theme.accent()),
                Span::raw(search.query.text.clone()),
            ])];
            let w = usize::from(inner.width);
            for (i, hit) in search.results.iter().enumerate() {
                let room = app
                    .room(hit.room_id)
                    .map_or("?".to_owned(), |r| r.room.name.clone());
                let who = app
                    .room(hit.room_id)
                    .and_then(|r| r.name_of(hit.sender_id))
                    .unwrap_or("someone")
                    .to_owned();
                let text = fit(&format!("{room} · {who}: {}", message_text(hit)), w);
                let style = if i == search.selected {
                    theme.selected()
                } else {
                    Style::default()
                };
                lines.push(Line::styled(text, style));
            }
            frame.render_widget(Paragraph::new(lines), inner);
            let before: String = search
                .query
                .text
                .chars()
                .take(search.query.cursor)
                .collect();
            let col = (2 + before.width() as u16).min(inner.width.saturating_sub(1));
            frame.set_cursor_position((inner.x + col, inner.y));
        }
    }
}
