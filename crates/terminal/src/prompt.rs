//! Asking on the terminal, for `palaver login` run by a person: a line, or a secret
//! without echo (the terminal in raw mode, so the password is never shown).

use std::io::{BufRead, Write};

use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers, read};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode};

use crate::error::{Result, TerminalError};

/// Asks for a line on standard error, read from standard input.
pub fn line(label: &str) -> Result<String> {
    let mut err = std::io::stderr();
    write!(err, "{label}: ")?;
    err.flush()?;
    let mut text = String::new();
    std::io::stdin().lock().read_line(&mut text)?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// Asks for a secret without echoing it.
pub fn secret(label: &str) -> Result<String> {
    let mut err = std::io::stderr();
    write!(err, "{label}: ")?;
    err.flush()?;
    enable_raw_mode()?;
    let typed = read_secret();
    let _ = disable_raw_mode();
    writeln!(err)?;
    typed
}

fn read_secret() -> Result<String> {
    let mut text = String::new();
    loop {
        if let Event::Key(key) = read()? {
            if key.kind == KeyEventKind::Release {
                continue;
            }
            match key.code {
                KeyCode::Enter => return Ok(text),
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    return Err(TerminalError::Usage("cancelled".into()));
                }
                KeyCode::Char(c) => text.push(c),
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Esc => return Err(TerminalError::Usage("cancelled".into())),
                _ => {}
            }
        }
    }
}
