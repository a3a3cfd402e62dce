//! The terminal client's one error type.

use palaver_client::ClientError;

/// What can go wrong in `palaver chat` and the script commands.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading or writing the terminal, a file, or the session.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// JSON that would not encode or decode (the session file, output).
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// No session is stored (or it ended): `palaver login` first.
    #[error("not logged in{0}: run `palaver login --server URL`")]
    NotLoggedIn(String),
    /// No server named by flag or session.
    #[error("no server: give --server URL (or log in first)")]
    NoServer,
    /// No room of the caller's has this id or name.
    #[error("no room named {0:?}")]
    RoomNotFound(String),
    /// More than one room has this name: use its id.
    #[error("{name:?} names {count} rooms: use the room's id")]
    AmbiguousRoom { name: String, count: usize },
    /// The login needs a second factor and no code was given.
    #[error("this account needs a second-factor code: give --code")]
    SecondFactorNeeded,
    /// What the user typed or passed is not usable.
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, TerminalError>;
