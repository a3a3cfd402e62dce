//! The screens, drawn into ratatui's `TestBackend` and read back as text.

use crossterm::event::KeyCode;
use palaver_proto::{PresenceStatus, ReceiptKind, ServerFrame};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use crate::app::{App, Event};
use crate::fixtures::*;
use crate::ui::{Theme, draw, wrap};

const COLOR: Theme = Theme { color: true };
const NO_COLOR: Theme = Theme { color: false };

fn render(app: &App, width: u16, height: u16, theme: Theme) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| draw(f, app, theme)).expect("draw");
    terminal.backend().buffer().clone()
}

/// The screen as lines of text.
fn text(buffer: &Buffer) -> Vec<String> {
    let area = buffer.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buffer[(x, y)].symbol().to_owned())
                .collect::<String>()
        })
        .collect()
}

fn contains(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

/// Alice in her 1:1 room with Bob: his message, her two (one read, one delivered), Bob
/// online and typing.
fn conversation() -> World {
    let mut w = World::new();
    let (dm, me, bob) = (w.dm, w.me, w.bob);
    w.open_dm(vec![
        message(dm, bob, 1, "are you there?"),
        message(dm, me, 2, "yes, here"),
        message(dm, me, 3, "what's up?"),
    ]);
    w.send(Event::Frame(ServerFrame::Presence {
        user_id: bob,
        status: PresenceStatus::Online,
        last_seen: None,
    }));
    for (status, seq) in [(ReceiptKind::Delivered, 3), (ReceiptKind::Read, 2)] {
        w.send(Event::Frame(ServerFrame::Receipt {
            room_id: dm,
            user_id: bob,
            status,
            seq,
        }));
    }
    w.send(Event::Frame(ServerFrame::Typing {
        room_id: dm,
        user_id: bob,
        active: true,
    }));
    w
}

#[test]
fn chat_at_80_by_24() {
    let w = conversation();
    let lines = text(&render(&w.app, 80, 24, COLOR));
    let screen = lines.join("\n");
    // The room list, with presence and the group.
    assert!(lines[1].starts_with("● Bob"), "{screen}");
    assert!(contains(&lines, "# Team"), "{screen}");
    // The room: header, messages with names, ticks by status, typing.
    assert!(lines[0].contains("Bob ● online"), "{screen}");
    assert!(contains(&lines, "Bob: are you there?"), "{screen}");
    assert!(contains(&lines, "Alice: yes, here ✔✔"), "{screen}");
    assert!(contains(&lines, "Alice: what's up? ✓✓"), "{screen}");
    assert!(contains(&lines, "Bob is typing…"), "{screen}");
    // The input and the keys.
    assert!(lines[21].contains("> "), "{screen}");
    assert!(
        lines[22].contains("alice") && lines[22].contains("online"),
        "{screen}"
    );
    assert!(lines[23].starts_with("Enter send"), "{screen}");
    assert!(lines.iter().all(|l| l.chars().count() == 80));
}

#[test]
fn unread_counts_in_the_room_list() {
    let mut w = World::new();
    let (team, carol) = (w.team, w.carol);
    let mut m = message(team, carol, 1, "standup?");
    m.timestamp = at(10);
    w.send(Event::Frame(ServerFrame::Message { message: m }));
    let lines = text(&render(&w.app, 80, 24, COLOR));
    let screen = lines.join("\n");
    // Team has one new message and went to the top; Bob's room still has its two.
    assert!(
        lines[1].starts_with("# Team")
            && lines[1].chars().take(24).collect::<String>().contains(" 1"),
        "{screen}"
    );
    assert!(
        lines[2].contains("Bob") && lines[2].contains(" 2"),
        "{screen}"
    );
    assert!(
        contains(&lines, "Choose a room and press Enter."),
        "{screen}"
    );
    assert!(lines[23].starts_with("↑↓ choose"), "{screen}");
}

#[test]
fn narrow_terminal_shows_one_pane_at_a_time() {
    let mut w = conversation();
    let lines = text(&render(&w.app, 40, 16, COLOR));
    let screen = lines.join("\n");
    assert!(
        !contains(&lines, "Rooms"),
        "no room list beside the room:\n{screen}"
    );
    assert!(contains(&lines, "what's up?"), "{screen}");
    assert!(lines[15].starts_with("Enter send Tab rooms"), "{screen}");
    // Long lines wrap instead of running off.
    assert!(lines.iter().all(|l| l.chars().count() == 40));
    w.send(key(KeyCode::Tab));
    let lines = text(&render(&w.app, 40, 16, COLOR));
    let screen = lines.join("\n");
    assert!(
        contains(&lines, "Rooms") && contains(&lines, "# Team"),
        "{screen}"
    );
    assert!(!contains(&lines, "what's up?"), "{screen}");
}

#[test]
fn no_color_draws_no_colour_and_still_tells_everything() {
    let w = conversation();
    let buffer = render(&w.app, 80, 24, NO_COLOR);
    for cell in buffer.content() {
        assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
    }
    let lines = text(&buffer);
    // Read and delivered differ in shape, and presence is a filled dot.
    assert!(contains(&lines, "here ✔✔"));
    assert!(contains(&lines, "up? ✓✓"));
    assert!(lines[1].starts_with("● Bob"));
    // With colour, the same screen has some.
    let coloured = render(&w.app, 80, 24, COLOR);
    assert!(coloured.content().iter().any(|c| c.fg != Color::Reset));
}

#[test]
fn login_screen() {
    let mut app = App::new(std::time::Instant::now());
    for c in "alice".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    app.update(key(KeyCode::Tab));
    for c in "hunter22".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    let lines = text(&render(&app, 80, 24, COLOR));
    let screen = lines.join("\n");
    assert!(contains(&lines, "Palaver: log in"), "{screen}");
    assert!(contains(&lines, "username  alice"), "{screen}");
    assert!(contains(&lines, "password  ••••••••"), "{screen}");
    assert!(!screen.contains("hunter22"), "the password is never drawn");
    assert!(lines[23].starts_with("Tab next field"), "{screen}");
}

#[test]
fn prompts_draw_over_the_room() {
    let mut w = conversation();
    w.send(ctrl('o'));
    w.typing("~/cat.png");
    let lines = text(&render(&w.app, 80, 24, COLOR));
    assert!(contains(&lines, "Send a file: path"));
    assert!(contains(&lines, "~/cat.png"));
    w.send(key(KeyCode::Esc));
    w.send(key(KeyCode::Esc));
    w.send(key(KeyCode::Char('d')));
    let lines = text(&render(&w.app, 80, 24, COLOR));
    assert!(
        contains(&lines, "Delete this message?"),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn tiny_terminals_do_not_break() {
    let w = conversation();
    for (width, height) in [(1, 1), (10, 3), (20, 5), (59, 10), (60, 10), (200, 60)] {
        render(&w.app, width, height, COLOR);
    }
    render(&App::new(std::time::Instant::now()), 5, 3, NO_COLOR);
}

#[test]
fn wrapping() {
    assert_eq!(wrap("one two three", 7), ["one two", "three"]);
    assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    assert_eq!(wrap("", 4), [""]);
    // Wide characters take two columns.
    assert_eq!(wrap("日本語のテキスト", 6), ["日本語", "のテキ", "スト"]);
}
