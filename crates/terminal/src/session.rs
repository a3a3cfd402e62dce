//! The stored session: the tokens of one login, kept in the user's config directory
//! (`$XDG_CONFIG_HOME/palaver/session.json`, else `~/.config/palaver/session.json`), mode
//! 0600 in a 0700 directory, written whole to a temporary file and renamed into place so
//! a crash never leaves half a file.
//!
//! Refresh tokens are single-use and the server ends the whole session when one is
//! presented twice (reuse detection). Several processes share the file (a `palaver tail`
//! running while `palaver send` is called), so a refresh happens under an exclusive lock
//! on `session.lock`, after reading the file again: a process whose refresh token was
//! already traded by another adopts the newer tokens instead of presenting the old one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use palaver_client::{Client, ClientError};
use palaver_proto::{AuthResponse, ErrorCode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, TerminalError};

/// Refresh this long before the access token expires, so a request never carries one
/// that expires on the way.
const EARLY_SECS: i64 = 60;

/// One login's tokens, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    pub user_id: Uuid,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires, in unix seconds.
    pub access_expires_at: i64,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Session {
    /// The session a login (or refresh) answered.
    pub fn from_auth(server: &str, auth: &AuthResponse) -> Session {
        let expires_in = i64::try_from(auth.expires_in).unwrap_or(i64::MAX / 2);
        Session {
            server: server.trim_end_matches('/').to_owned(),
            user_id: auth.user.id,
            username: auth.user.username.clone(),
            access_token: auth.access_token.clone(),
            refresh_token: auth.refresh_token.clone(),
            access_expires_at: now().saturating_add(expires_in),
        }
    }

    /// Whether the access token is good for a while yet.
    pub fn is_fresh(&self) -> bool {
        self.access_expires_at - EARLY_SECS > now()
    }
}

/// Where the session is kept.
#[derive(Debug, Clone)]
pub struct SessionFile {
    path: PathBuf,
}

impl SessionFile {
    /// The session file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> SessionFile {
        SessionFile { path: path.into() }
    }

    /// The user's session file: `$XDG_CONFIG_HOME/palaver/session.json`, or
    /// `$HOME/.config/palaver/session.json` (the XDG base directory rules).
    pub fn default_location() -> Result<SessionFile> {
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        let home = || {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".config"))
        };
        let dir = xdg.or_else(home).ok_or_else(|| {
            TerminalError::Usage("neither XDG_CONFIG_HOME nor HOME is set".into())
        })?;
        Ok(SessionFile::at(dir.join("palaver").join("session.json")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored session, if there is one.
    pub fn load(&self) -> Result<Option<Session>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the session, readable by the user only.
    pub fn save(&self, session: &Session) -> Result<()> {
        let dir = self.dir();
        create_private_dir(dir)?;
        let tmp = self.path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = private_file(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(session)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    /// Forgets the session.
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Takes the lock that every refresh holds (released when the file is dropped).
    async fn lock(&self) -> Result<File> {
        create_private_dir(self.dir())?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("lock"))?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    Ok(())
}

fn private_file(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    Ok(options.open(path)?)
}

/// A logged-in user's access to the server, refreshing the session when it expires.
pub struct Auth {
    file: SessionFile,
    anonymous: Client,
    session: tokio::sync::Mutex<Session>,
}

impl Auth {
    /// The stored session, for `server` if given (a session for another server does not
    /// count).
    pub fn open(file: SessionFile, server: Option<&str>) -> Result<Auth> {
        let session = file
            .load()?
            .ok_or_else(|| TerminalError::NotLoggedIn(String::new()))?;
        if let Some(server) = server
            && server.trim_end_matches('/') != session.server
        {
            return Err(TerminalError::NotLoggedIn(format!(" to {server}")));
        }
        Auth::new(file, session)
    }

    /// Access with a session just made (by a login).
    pub fn new(file: SessionFile, session: Session) -> Result<Auth> {
        Ok(Auth {
            anonymous: Client::new(&session.server)?,
            file,
            session: tokio::sync::Mutex::new(session),
        })
    }

    /// The server's client, without a token.
    pub fn anonymous(&self) -> &Client {
        &self.anonymous
    }

    /// A copy of the current session.
    pub async fn session(&self) -> Session {
        self.session.lock().await.clone()
    }

    /// A client with an access token that is good for a while.
    pub async fn client(&self) -> Result<Client> {
        self.fresh(false).await
    }

    /// A client with a new access token, after the server said the old one expired.
    pub async fn refreshed(&self) -> Result<Client> {
        self.fresh(true).await
    }

    async fn fresh(&self, force: bool) -> Result<Client> {
        let mut session = self.session.lock().await;
        if !force && session.is_fresh() {
            return Ok(self.anonymous.with_token(&session.access_token));
        }
        let _lock = self.file.lock().await?;
        // Another process may have traded the refresh token already: take its result.
        if let Some(disk) = self.file.load()?
            && disk.user_id == session.user_id
            && disk.server == session.server
            && disk.refresh_token != session.refresh_token
        {
            *session = disk;
            if session.is_fresh() {
                return Ok(self.anonymous.with_token(&session.access_token));
            }
        }
        let auth = match self.anonymous.refresh(&session.refresh_token).await {
            Ok(auth) => auth,
            Err(ClientError::Api {
                code: ErrorCode::Unauthorized,
                ..
            }) => {
                return Err(TerminalError::NotLoggedIn(
                    " (the session has ended)".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        *session = Session::from_auth(&session.server, &auth);
        self.file.save(&session)?;
        Ok(self.anonymous.with_token(&session.access_token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            server: "http://127.0.0.1:1".into(),
            user_id: Uuid::nil(),
            username: "alice".into(),
            access_token: "a".into(),
            refresh_token: "r".into(),
            access_expires_at: now() + 900,
        }
    }

    #[test]
    fn saved_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = SessionFile::at(dir.path().join("palaver").join("session.json"));
        assert_eq!(file.load().expect("load"), None);
        file.save(&session()).expect("save");
        file.save(&session()).expect("save over");
        assert_eq!(file.load().expect("load"), Some(session()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(file.path()), 0o600);
            assert_eq!(mode(&dir.path().join("palaver")), 0o700);
        }
        file.remove().expect("remove");
        file.remove().expect("remove again");
        assert_eq!(file.load().expect("load"), None);
    }

    #[test]
    fn freshness() {
        let mut s = session();
        assert!(s.is_fresh());
        s.access_expires_at = now() + 10;
        assert!(!s.is_fresh());
    }

    #[test]
    fn a_session_for_another_server_does_not_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = SessionFile::at(dir.path().join("session.json"));
        file.save(&session()).expect("save");
        assert!(Auth::open(file.clone(), Some("http://127.0.0.1:1/")).is_ok());
        assert!(matches!(
            Auth::open(file, Some("http://elsewhere:1")),
            Err(TerminalError::NotLoggedIn(_))
        ));
    }
}
