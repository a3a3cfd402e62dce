//! `palaver chat` and the script commands (`login`, `logout`, `rooms`, `send`, `tail`,
//! `upload`): flags parsed here, the work done by `palaver-terminal`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Subcommand;
use palaver_terminal::script::{self, Output};
use palaver_terminal::{Auth, SessionFile, TerminalError, chat, prompt};

/// The terminal client's subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// The full-screen terminal chat (logs in first if no session is stored).
    Chat {
        /// The server, e.g. http://127.0.0.1:8080 (default: the stored session's).
        #[arg(long)]
        server: Option<String>,
    },
    /// Log in and store the session in the user's config directory.
    Login {
        #[arg(long)]
        server: String,
        /// Asked for on the terminal when not given.
        #[arg(long)]
        username: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// The second-factor code, for an account that has one (asked for when not given).
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// End the stored session and forget it.
    Logout {
        #[arg(long)]
        json: bool,
    },
    /// List your rooms, with unread counts.
    Rooms {
        #[command(flatten)]
        common: Common,
    },
    /// Send a message (TEXT, or standard input without it).
    Send {
        /// The room: its id, its name, or a 1:1 room's other username.
        #[arg(long)]
        room: String,
        /// The idempotency key (clientMsgId): sent again with the same one, the message is
        /// stored once. Generated when not given.
        #[arg(long)]
        id: Option<String>,
        /// The text (read from standard input when not given).
        text: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Print a room's new messages as they come; resumes after a dropped connection.
    Tail {
        #[arg(long)]
        room: String,
        /// Start after this seq (default: only messages from now on).
        #[arg(long)]
        after: Option<i64>,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<usize>,
        #[command(flatten)]
        common: Common,
    },
    /// Upload a file (and with --room, send it there).
    Upload {
        /// The file to upload.
        path: PathBuf,
        #[arg(long)]
        room: Option<String>,
        /// Text to send with the file (with --room).
        #[arg(long, default_value = "")]
        caption: String,
        #[command(flatten)]
        common: Common,
    },
}

/// Flags of the commands that use the stored session.
#[derive(clap::Args)]
pub struct Common {
    /// Output JSON.
    #[arg(long)]
    json: bool,
    /// Only use the stored session if it is for this server.
    #[arg(long)]
    server: Option<String>,
}

/// Runs one of the terminal client's subcommands.
pub async fn run(command: Command) -> anyhow::Result<()> {
    let file = SessionFile::default_location()?;
    let stdout = &mut std::io::stdout();
    let auth = |c: &Common| Auth::open(file.clone(), c.server.as_deref());
    match command {
        Command::Chat { server } => chat::run(server.as_deref(), file.clone()).await?,
        Command::Login {
            server,
            username,
            password_stdin,
            code,
            json,
        } => {
            let interactive = std::io::stdin().is_terminal();
            let username = match username {
                Some(u) => u,
                None if interactive => prompt::line("username")?,
                None => anyhow::bail!("give --username"),
            };
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\n', '\r']).to_owned()
            } else if interactive {
                prompt::secret("password")?
            } else {
                anyhow::bail!("give --password-stdin, or run on a terminal");
            };
            let ask = move || match code {
                Some(c) => Ok(c),
                None if interactive => prompt::line("second-factor code"),
                None => Err(TerminalError::SecondFactorNeeded),
            };
            let session = script::login(&file, &server, &username, &password, ask).await?;
            script::print_login(&session, &mut Output { out: stdout, json })?;
        }
        Command::Logout { json } => {
            script::logout(&file, &mut Output { out: stdout, json }).await?
        }
        Command::Rooms { common } => {
            script::rooms(
                &auth(&common)?,
                &mut Output {
                    out: stdout,
                    json: common.json,
                },
            )
            .await?
        }
        Command::Send {
            room,
            id,
            text,
            common,
        } => {
            let text = match text {
                Some(t) => t,
                None => script::read_text(std::io::stdin().lock())?,
            };
            let id = id.unwrap_or_else(script::new_client_msg_id);
            let out = &mut Output {
                out: stdout,
                json: common.json,
            };
            script::send(&auth(&common)?, &room, &text, &id, out).await?;
        }
        Command::Tail {
            room,
            after,
            count,
            common,
        } => {
            let out = &mut Output {
                out: stdout,
                json: common.json,
            };
            script::tail(&auth(&common)?, &room, after, count, out).await?
        }
        Command::Upload {
            path,
            room,
            caption,
            common,
        } => {
            let out = &mut Output {
                out: stdout,
                json: common.json,
            };
            script::upload(&auth(&common)?, &path, room.as_deref(), &caption, out).await?;
        }
    }
    Ok(())
}
