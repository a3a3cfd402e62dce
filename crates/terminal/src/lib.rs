//! Palaver's terminal client.
//!
//! - `palaver chat`: a full-screen chat for a terminal (over SSH all day): the state and
//!   its rules in [`app`] (events in, state and commands out, no I/O), drawing in [`ui`]
//!   (a pure function of the state), and the loop that joins them to the terminal and
//!   the server in [`chat`].
//! - The script commands in [`script`]: `login`, `logout`, `rooms`, `send`, `tail`,
//!   `upload`, with `--json` output.
//! - The stored session in [`session`], shared by both.
//!
//! All of it talks to the server through the typed client, `palaver-client`.

pub mod app;
pub mod chat;
mod error;
pub mod prompt;
pub mod script;
pub mod session;
pub mod ui;

pub use error::{Result, TerminalError};
pub use session::{Auth, Session, SessionFile};

#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod ui_tests;
