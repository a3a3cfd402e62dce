//! The embedded engine: one SQLite file in WAL mode with `synchronous=FULL`, so an
//! acknowledged write survives a crash or a power cut.
//!
//! All writes go through a pool of exactly one connection: SQLite allows one writer at a
//! time anyway, and queueing in the pool avoids `SQLITE_BUSY` on lock upgrades. Reads use
//! their own pool and run beside the writer (WAL readers never block it).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use palaver_proto::{Message, MessageStatus, MessageType, NotificationPreview, Role, User};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use super::*;
use crate::clock::to_time;

/// The SQLite engine.
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

const MESSAGE_COLUMNS: &str = "id, room_id, seq, sender_id, client_msg_id, kind, content, media_id, created_at, edited_at, deleted_at";
const USER_COLUMNS: &str = "id, username, display_name, created_at";

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { write, read })
    }

    /// The room's summary, inside a transaction or not.
    async fn summary_on<'e>(
        db: impl sqlx::Executor<'e, Database = Sqlite>,
        room: Uuid,
    ) -> StoreResult<Markers> {
        let row = sqlx::query(
            "SELECT COALESCE(MIN(delivered_seq), 0) AS d, COALESCE(MIN(read_seq), 0) AS r FROM members WHERE room_id = ?",
        )
        .bind(room)
        .fetch_one(db)
        .await?;
        Ok(Markers {
            delivered_seq: row.try_get("d")?,
            read_seq: row.try_get("r")?,
        })
    }

    /// Stores a refresh token (its hash) for a session.
    async fn insert_refresh(
        tx: &mut Transaction<'_, Sqlite>,
        hash: &[u8],
        session_id: Uuid,
        expires_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
        )
        .bind(hash)
        .bind(session_id)
        .bind(expires_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Rows per multi-row statement: 9 parameters each stays far below SQLite's limit.
const ROWS_PER_STATEMENT: usize = 256;

/// `(?, ?), (?, ?), …`: `rows` groups of `width` placeholders.
fn placeholders(rows: usize, width: usize) -> String {
    let group = format!("({})", vec!["?"; width].join(", "));
    vec![group; rows].join(", ")
}

fn user_from_row(row: &SqliteRow) -> StoreResult<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        created_at: to_time(row.try_get("created_at")?),
    })
}

fn message_from_row(row: &SqliteRow) -> StoreResult<Message> {
    let kind: String = row.try_get("kind")?;
    let deleted_at: Option<i64> = row.try_get("deleted_at")?;
    Ok(Message {
        id: row.try_get("id")?,
        room_id: row.try_get("room_id")?,
        sender_id: row.try_get("sender_id")?,
        seq: row.try_get("seq")?,
        kind: MessageType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("message kind {kind:?}")))?,
        content: row.try_get("content")?,
        media_id: row.try_get("media_id")?,
        media: None,
        client_msg_id: row.try_get("client_msg_id")?,
        timestamp: to_time(row.try_get("created_at")?),
        status: MessageStatus::Sent,
        edited_at: row.try_get::<Option<i64>, _>("edited_at")?.map(to_time),
        deleted: deleted_at.is_some(),
    })
}

/// A retry names the same media as the stored message: reuse its description.
fn with_media(mut message: Message, retry: &NewMessage) -> Message {
    if message.media_id.is_some() && message.media_id == retry.media_id {
        message.media = retry.media.clone();
    }
    message
}

const MEDIA_COLUMNS: &str = "id, uploader_id, sha256, kind, mime_type, size, filename, width, height, thumb_sha256, thumb_mime, created_at";

fn media_from_row(row: &SqliteRow) -> StoreResult<MediaRow> {
    let kind: String = row.try_get("kind")?;
    Ok(MediaRow {
        id: row.try_get("id")?,
        uploader_id: row.try_get("uploader_id")?,
        sha256: row.try_get("sha256")?,
        kind: MessageType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("media kind {kind:?}")))?,
        mime_type: row.try_get("mime_type")?,
        size: row.try_get::<i64, _>("size")? as u64,
        filename: row.try_get("filename")?,
        width: row.try_get::<Option<i64>, _>("width")?.map(|w| w as u32),
        height: row.try_get::<Option<i64>, _>("height")?.map(|h| h as u32),
        thumb_sha256: row.try_get("thumb_sha256")?,
        thumb_mime: row.try_get("thumb_mime")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

fn room_from_row(row: &SqliteRow) -> StoreResult<RoomRow> {
    Ok(RoomRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        is_group: row.try_get::<i64, _>("is_group")? != 0,
        created_at_ms: row.try_get("created_at")?,
        last_seq: row.try_get("last_seq")?,
        last_activity_ms: row.try_get("last_activity")?,
    })
}

fn push_subscription_from_row(row: &SqliteRow) -> StoreResult<PushSubscriptionRow> {
    Ok(PushSubscriptionRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        endpoint: row.try_get("endpoint")?,
        p256dh: row.try_get("p256dh")?,
        auth: row.try_get("auth")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

fn preview_of(s: &str) -> StoreResult<NotificationPreview> {
    NotificationPreview::parse(s).ok_or_else(|| StoreError::Corrupt(format!("preview {s:?}")))
}

fn role_of(s: &str) -> StoreResult<Role> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("role {s:?}")))
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        let created = (user.created_at.unix_timestamp_nanos() / 1_000_000) as i64;
        sqlx::query("INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(user.id)
            .bind(&user.username)
            .bind(&user.display_name)
            .bind(password_hash)
            .bind(created)
            .execute(&self.write)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(Constraint::Username) } else { e.into() })?;
        Ok(())
    }

    async fn user(&self, id: Uuid) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(u) = self.user(*id).await? {
                out.push(u);
            }
        }
        Ok(out)
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?"
        ))
        .bind(username)
        .fetch_optional(&self.read)
        .await?;
        match row {
            Some(row) => Ok(Some(Credentials {
                user: user_from_row(&row)?,
                password_hash: row.try_get("password_hash")?,
            })),
            None => Ok(None),
        }
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        // LIKE needs its wildcards escaped so a `%` in the query matches only itself.
        let escaped: String = prefix
            .chars()
            .flat_map(|c| {
                if matches!(c, '%' | '_' | '\\') {
                    vec!['\\', c]
                } else {
                    vec![c]
                }
            })
            .collect();
        let pattern = format!("{escaped}%");
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username LIKE ?1 ESCAPE '\\' OR display_name LIKE ?1 ESCAPE '\\' \
             ORDER BY username LIMIT ?2"
        ))
        .bind(pattern)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn set_display_name(&self, id: Uuid, name: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET display_name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::User));
        }
        Ok(())
    }

    async fn set_last_seen(&self, id: Uuid, at_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen_at = ? WHERE id = ?")
            .bind(at_ms)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn last_seen(&self, id: Uuid) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT last_seen_at FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("last_seen_at")?,
            None => None,
        })
    }

    async fn create_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        refresh_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("INSERT INTO sessions (id, user_id, created_at) VALUES (?, ?, ?)")
            .bind(session_id)
            .bind(user_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        Self::insert_refresh(&mut tx, refresh_hash, session_id, expires_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        old_hash: &[u8],
        new_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> StoreResult<RefreshOutcome> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "SELECT t.session_id, t.expires_at, t.used_at, s.user_id, s.revoked_at \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        let session_id: Uuid = row.try_get("session_id")?;
        let user_id: Uuid = row.try_get("user_id")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        let used: Option<i64> = row.try_get("used_at")?;
        let expires: i64 = row.try_get("expires_at")?;
        if revoked.is_some() || expires <= now_ms {
            return Ok(RefreshOutcome::Invalid);
        }
        if used.is_some() {
            sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ?")
                .bind(now_ms)
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Reused {
                session_id,
                user_id,
            });
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?")
            .bind(now_ms)
            .bind(old_hash)
            .execute(&mut *tx)
            .await?;
        Self::insert_refresh(&mut tx, new_hash, session_id, expires_ms).await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated {
            session_id,
            user_id,
        })
    }

    async fn revoke_session(&self, session_id: Uuid, now_ms: i64) -> StoreResult<Option<Uuid>> {
        let row = sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING user_id")
            .bind(now_ms)
            .bind(session_id)
            .fetch_optional(&self.write)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("user_id")?),
            None => None,
        })
    }

    async fn session_of_refresh(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>> {
        let row = sqlx::query(
            "SELECT t.session_id, s.user_id FROM refresh_tokens t \
             JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("session_id")?, row.try_get("user_id")?)),
            None => None,
        })
    }

    async fn revoked_sessions_since(&self, since_ms: i64) -> StoreResult<Vec<Uuid>> {
        let rows =
            sqlx::query("SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= ?")
                .bind(since_ms)
                .fetch_all(&self.read)
                .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}

#[async_trait]
impl RoomStore for SqliteStore {
    async fn create_room(&self, room: &NewRoom) -> StoreResult<(Uuid, bool)> {
        let mut tx = self.write.begin().await?;
        if let Some(key) = &room.direct_key {
            let existing = sqlx::query("SELECT id FROM rooms WHERE direct_key = ?")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                return Ok((row.try_get("id")?, false));
            }
        }
        sqlx::query("INSERT INTO rooms (id, name, is_group, direct_key, created_at, last_activity) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(room.id)
            .bind(&room.name)
            .bind(i64::from(room.is_group))
            .bind(&room.direct_key)
            .bind(room.now_ms)
            .bind(room.now_ms)
            .execute(&mut *tx)
            .await?;
        for (user, role) in &room.members {
            sqlx::query(
                "INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
            )
            .bind(room.id)
            .bind(user)
            .bind(role.as_str())
            .bind(room.now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((room.id, true))
    }

    async fn room(&self, id: Uuid) -> StoreResult<Option<RoomRow>> {
        let row = sqlx::query("SELECT id, name, is_group, created_at, last_seq, last_activity FROM rooms WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }

    async fn rooms_of(&self, user: Uuid, only: Option<Uuid>) -> StoreResult<Vec<MyRoomRow>> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, r.is_group, r.created_at, r.last_seq, r.last_activity, m.read_seq, \
               (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.read_seq \
                  AND x.sender_id != m.user_id AND x.deleted_at IS NULL) AS unread \
             FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ? AND (? IS NULL OR r.id = ?) \
             ORDER BY r.last_activity DESC, r.id DESC",
        )
        .bind(user)
        .bind(only)
        .bind(only)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MyRoomRow {
                    room: room_from_row(row)?,
                    read_seq: row.try_get("read_seq")?,
                    unread: row.try_get("unread")?,
                })
            })
            .collect()
    }

    async fn members(&self, room: Uuid) -> StoreResult<Vec<MemberRow>> {
        let rows = sqlx::query(
            "SELECT m.room_id, m.user_id, u.username, u.display_name, m.role, m.joined_at, m.delivered_seq, m.read_seq \
             FROM members m JOIN users u ON u.id = m.user_id WHERE m.room_id = ? ORDER BY m.joined_at, u.username",
        )
        .bind(room)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MemberRow {
                    room_id: row.try_get("room_id")?,
                    user_id: row.try_get("user_id")?,
                    username: row.try_get("username")?,
                    display_name: row.try_get("display_name")?,
                    role: role_of(row.try_get::<&str, _>("role")?)?,
                    joined_at_ms: row.try_get("joined_at")?,
                    delivered_seq: row.try_get("delivered_seq")?,
                    read_seq: row.try_get("read_seq")?,
                })
            })
            .collect()
    }

    async fn add_members(
        &self,
        room: Uuid,
        members: &[(Uuid, Role)],
        now_ms: i64,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query("SELECT last_seq FROM rooms WHERE id = ?")
            .bind(room)
            .fetch_optional(&mut *tx)
            .await?;
        let last_seq: i64 = match row {
            Some(row) => row.try_get("last_seq")?,
            None => return Err(StoreError::NotFound(Entity::Room)),
        };
        let mut added = Vec::new();
        for (user, role) in members {
            let done = sqlx::query(
                "INSERT INTO members (room_id, user_id, role, joined_at, delivered_seq, read_seq) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (room_id, user_id) DO NOTHING",
            )
            .bind(room)
            .bind(user)
            .bind(role.as_str())
            .bind(now_ms)
            .bind(last_seq)
            .bind(last_seq)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                added.push(*user);
            }
        }
        sqlx::query("UPDATE rooms SET last_activity = ? WHERE id = ?")
            .bind(now_ms)
            .bind(room)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn remove_member(&self, room: Uuid, user: Uuid, heir: Option<Uuid>) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        if let Some(heir) = heir {
            sqlx::query("UPDATE members SET role = 'owner' WHERE room_id = ? AND user_id = ?")
                .bind(room)
                .bind(heir)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM members WHERE room_id = ? AND user_id = ?")
            .bind(room)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_roles(&self, room: Uuid, roles: &[(Uuid, Role)]) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        for (user, role) in roles {
            sqlx::query("UPDATE members SET role = ? WHERE room_id = ? AND user_id = ?")
                .bind(role.as_str())
                .bind(room)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rename_room(&self, room: Uuid, name: &str) -> StoreResult<()> {
        sqlx::query("UPDATE rooms SET name = ? WHERE id = ?")
            .bind(name)
            .bind(room)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn all_memberships(&self) -> StoreResult<Vec<(Uuid, Uuid)>> {
        let rows = sqlx::query("SELECT room_id, user_id FROM members")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("room_id")?, r.try_get("user_id")?)))
            .collect()
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>> {
        // A batch costs a fixed handful of statements, not a few per message: every
        // statement is a round trip to sqlx's SQLite worker thread, and those hand-offs,
        // not SQLite, were most of the CPU per message. Seqs are assigned here from the
        // rooms' `last_seq`, read inside the same write transaction on the only write
        // connection, so nothing else can take one meanwhile; the unique indexes still
        // refuse a reused seq or key if that ever stopped being true.
        let mut tx = self.write.begin().await?;
        let mut members = HashSet::new();
        let mut existing = HashMap::new();
        let mut last_seq = HashMap::new();
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let pairs: HashSet<(Uuid, Uuid)> =
                chunk.iter().map(|m| (m.room_id, m.sender_id)).collect();
            let sql = format!(
                "SELECT room_id, user_id FROM members WHERE (room_id, user_id) IN (VALUES {})",
                placeholders(pairs.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (room, user) in &pairs {
                q = q.bind(*room).bind(*user);
            }
            for row in q.fetch_all(&mut *tx).await? {
                members.insert((
                    row.try_get::<Uuid, _>("room_id")?,
                    row.try_get::<Uuid, _>("user_id")?,
                ));
            }

            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE (room_id, sender_id, client_msg_id) IN (VALUES {})",
                placeholders(chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q.bind(m.room_id).bind(m.sender_id).bind(&m.client_msg_id);
            }
            for row in q.fetch_all(&mut *tx).await? {
                let message = message_from_row(&row)?;
                existing.insert(
                    (
                        message.room_id,
                        message.sender_id,
                        message.client_msg_id.clone(),
                    ),
                    message,
                );
            }

            let rooms: HashSet<Uuid> = chunk
                .iter()
                .map(|m| m.room_id)
                .filter(|r| !last_seq.contains_key(r))
                .collect();
            if !rooms.is_empty() {
                let sql = format!(
                    "SELECT id, last_seq FROM rooms WHERE id IN ({})",
                    placeholders(rooms.len(), 1).replace(['(', ')'], "")
                );
                let mut q = sqlx::query(&sql);
                for room in &rooms {
                    q = q.bind(*room);
                }
                for row in q.fetch_all(&mut *tx).await? {
                    last_seq.insert(
                        row.try_get::<Uuid, _>("id")?,
                        row.try_get::<i64, _>("last_seq")?,
                    );
                }
            }
        }

        let mut out = Vec::with_capacity(batch.len());
        // Keys first used in this batch, to answer a retry inside the same batch.
        let mut fresh: HashMap<(Uuid, Uuid, &str), usize> = HashMap::new();
        for m in batch {
            let key = (m.room_id, m.sender_id, m.client_msg_id.as_str());
            if let Some(message) = existing.get(&(m.room_id, m.sender_id, m.client_msg_id.clone()))
            {
                out.push(Appended::Duplicate(with_media(message.clone(), m)));
            } else if let Some(Appended::New(first)) = fresh.get(&key).map(|i| &out[*i]) {
                out.push(Appended::Duplicate(first.clone()));
            } else if !members.contains(&(m.room_id, m.sender_id)) {
                out.push(Appended::NotMember);
            } else if let Some(last) = last_seq.get_mut(&m.room_id) {
                *last += 1;
                fresh.insert(key, out.len());
                out.push(Appended::New(Message {
                    id: m.id,
                    room_id: m.room_id,
                    sender_id: m.sender_id,
                    seq: *last,
                    kind: m.kind,
                    content: m.content.clone(),
                    media_id: m.media_id,
                    media: m.media.clone(),
                    client_msg_id: m.client_msg_id.clone(),
                    timestamp: to_time(m.now_ms),
                    status: MessageStatus::Sent,
                    edited_at: None,
                    deleted: false,
                }));
            } else {
                out.push(Appended::NotMember);
            }
        }

        // One multi-row INSERT per chunk; the `messages_appended` trigger moves each
        // room's last_seq and each sender's markers, row by row, inside SQLite.
        let new: Vec<&Message> = out
            .iter()
            .filter_map(|a| {
                if let Appended::New(m) = a {
                    Some(m)
                } else {
                    None
                }
            })
            .collect();
        for chunk in new.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO messages (id, room_id, seq, sender_id, client_msg_id, kind, content, media_id, created_at) VALUES {}",
                placeholders(chunk.len(), 9)
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                let created = (m.timestamp.unix_timestamp_nanos() / 1_000_000) as i64;
                q = q
                    .bind(m.id)
                    .bind(m.room_id)
                    .bind(m.seq)
                    .bind(m.sender_id)
                    .bind(&m.client_msg_id)
                    .bind(m.kind.as_str())
                    .bind(&m.content)
                    .bind(m.media_id)
                    .bind(created);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }
    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn edit_message(&self, id: Uuid, content: &str, now_ms: i64) -> StoreResult<Message> {
        let row = sqlx::query(&format!(
            "UPDATE messages SET content = ?, edited_at = ? WHERE id = ? AND deleted_at IS NULL RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(content)
        .bind(now_ms)
        .bind(id)
        .fetch_optional(&self.write)
        .await?;
        message_from_row(&row.ok_or(StoreError::NotFound(Entity::Message))?)
    }

    async fn delete_message(&self, id: Uuid, now_ms: i64) -> StoreResult<Message> {
        let row = sqlx::query(&format!(
            "UPDATE messages SET content = '', media_id = NULL, deleted_at = ? WHERE id = ? AND deleted_at IS NULL \
             RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(now_ms)
        .bind(id)
        .fetch_optional(&self.write)
        .await?;
        message_from_row(&row.ok_or(StoreError::NotFound(Entity::Message))?)
    }

    async fn messages(
        &self,
        room: Uuid,
        after: i64,
        before: i64,
        limit: u32,
        order: SeqOrder,
    ) -> StoreResult<Vec<Message>> {
        let order = match order {
            SeqOrder::Ascending => "ASC",
            SeqOrder::Descending => "DESC",
        };
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND seq > ? AND seq < ? ORDER BY seq {order} LIMIT ?"
        ))
        .bind(room)
        .bind(after)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(message_from_row).collect()
    }
}

#[async_trait]
impl ReceiptStore for SqliteStore {
    async fn advance_markers(
        &self,
        room: Uuid,
        user: Uuid,
        to: Markers,
    ) -> StoreResult<Option<MarkerMove>> {
        let mut tx = self.write.begin().await?;
        let Some(row) = sqlx::query("SELECT last_seq FROM rooms WHERE id = ?")
            .bind(room)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let last_seq: i64 = row.try_get("last_seq")?;
        let Some(row) = sqlx::query(
            "SELECT delivered_seq, read_seq FROM members WHERE room_id = ? AND user_id = ?",
        )
        .bind(room)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let was = Markers {
            delivered_seq: row.try_get("delivered_seq")?,
            read_seq: row.try_get("read_seq")?,
        };
        let markers = Markers {
            delivered_seq: was.delivered_seq.max(to.delivered_seq.min(last_seq)),
            read_seq: was.read_seq.max(to.read_seq.min(last_seq)),
        };
        let before = Self::summary_on(&mut *tx, room).await?;
        let moved = markers != was;
        if moved {
            sqlx::query("UPDATE members SET delivered_seq = ?, read_seq = ? WHERE room_id = ? AND user_id = ?")
                .bind(markers.delivered_seq)
                .bind(markers.read_seq)
                .bind(room)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        let after = Self::summary_on(&mut *tx, room).await?;
        tx.commit().await?;
        Ok(Some(MarkerMove {
            markers,
            moved,
            summary_before: before,
            summary_after: after,
        }))
    }

    async fn summary(&self, room: Uuid) -> StoreResult<Markers> {
        Self::summary_on(&self.read, room).await
    }
}

#[async_trait]
impl MediaRecordStore for SqliteStore {
    async fn insert_media(&self, m: &MediaRow) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO media ({MEDIA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(m.id)
        .bind(m.uploader_id)
        .bind(&m.sha256)
        .bind(m.kind.as_str())
        .bind(&m.mime_type)
        .bind(m.size as i64)
        .bind(&m.filename)
        .bind(m.width.map(i64::from))
        .bind(m.height.map(i64::from))
        .bind(&m.thumb_sha256)
        .bind(&m.thumb_mime)
        .bind(m.created_at_ms)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn media(&self, id: Uuid) -> StoreResult<Option<MediaRow>> {
        let row = sqlx::query(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(media_from_row).transpose()
    }

    async fn media_many(&self, ids: &[Uuid]) -> StoreResult<Vec<MediaRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT {MEDIA_COLUMNS} FROM media WHERE id IN ({})",
                placeholders(chunk.len(), 1).replace(['(', ')'], "")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.read).await? {
                out.push(media_from_row(&row)?);
            }
        }
        Ok(out)
    }

    async fn media_rooms(&self, id: Uuid) -> StoreResult<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT DISTINCT room_id FROM messages WHERE media_id = ? AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<Uuid, _>("room_id")?))
            .collect()
    }

    async fn delete_media(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM media WHERE id = ?")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn delete_orphan_media(&self, before_ms: i64) -> StoreResult<Vec<MediaRow>> {
        // A deleted message gives up its media (media_id is cleared), so "no message
        // carries it" is simply: no row points at it.
        let rows = sqlx::query(&format!(
            "DELETE FROM media WHERE created_at < ? \
             AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.media_id = media.id) \
             RETURNING {MEDIA_COLUMNS}"
        ))
        .bind(before_ms)
        .fetch_all(&self.write)
        .await?;
        rows.iter().map(media_from_row).collect()
    }

    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = ?1) \
             OR EXISTS (SELECT 1 FROM media WHERE thumb_sha256 = ?1) AS used",
        )
        .bind(sha256)
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get::<i64, _>("used")? != 0)
    }
}

#[async_trait]
impl PushStore for SqliteStore {
    async fn upsert_push_subscription(
        &self,
        sub: &PushSubscriptionRow,
    ) -> StoreResult<(PushSubscriptionRow, bool)> {
        // The endpoint is the identity of a subscription: a second registration keeps the
        // row's id and creation time and takes the new keys and owner.
        let row = sqlx::query(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth \
             RETURNING id, user_id, endpoint, p256dh, auth, created_at",
        )
        .bind(sub.id)
        .bind(sub.user_id)
        .bind(&sub.endpoint)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(sub.created_at_ms)
        .fetch_one(&self.write)
        .await?;
        let stored = push_subscription_from_row(&row)?;
        let created = stored.id == sub.id;
        Ok((stored, created))
    }

    async fn push_subscriptions(&self, user: Uuid) -> StoreResult<Vec<PushSubscriptionRow>> {
        let rows = sqlx::query(
            "SELECT id, user_id, endpoint, p256dh, auth, created_at FROM push_subscriptions WHERE user_id = ? ORDER BY id",
        )
        .bind(user)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(push_subscription_from_row).collect()
    }

    async fn delete_push_subscription(&self, id: Uuid, owner: Option<Uuid>) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM push_subscriptions WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)",
        )
        .bind(id)
        .bind(owner)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_room_muted(&self, room: Uuid, user: Uuid, muted: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE members SET muted = ? WHERE room_id = ? AND user_id = ?")
            .bind(i64::from(muted))
            .bind(room)
            .bind(user)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn push_settings(&self, user: Uuid) -> StoreResult<(NotificationPreview, Vec<Uuid>)> {
        let row = sqlx::query("SELECT notification_preview FROM users WHERE id = ?")
            .bind(user)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound(Entity::User))?;
        let preview = preview_of(row.try_get("notification_preview")?)?;
        let muted = sqlx::query(
            "SELECT room_id FROM members WHERE user_id = ? AND muted = 1 ORDER BY room_id",
        )
        .bind(user)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| r.try_get("room_id"))
        .collect::<Result<Vec<Uuid>, _>>()?;
        Ok((preview, muted))
    }

    async fn set_notification_preview(
        &self,
        user: Uuid,
        preview: NotificationPreview,
    ) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET notification_preview = ? WHERE id = ?")
            .bind(preview.as_str())
            .bind(user)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::User));
        }
        Ok(())
    }

    async fn push_target(&self, room: Uuid, user: Uuid) -> StoreResult<Option<PushTarget>> {
        let row = sqlx::query(
            "SELECT m.delivered_seq, m.muted, u.notification_preview FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = ? AND m.user_id = ?",
        )
        .bind(room)
        .bind(user)
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| {
            Ok(PushTarget {
                delivered_seq: row.try_get("delivered_seq")?,
                muted: row.try_get::<i64, _>("muted")? != 0,
                preview: preview_of(row.try_get("notification_preview")?)?,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit(&self, entry: AuditEntry, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(now_ms)
        .bind(entry.actor)
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.detail)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn audit_tail(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let rows =
            sqlx::query("SELECT at, actor, action, target FROM audit_log ORDER BY id DESC LIMIT ?")
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    at_ms: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durability is a setting: checked here, not assumed.
    #[tokio::test]
    async fn writes_are_fsynced_write_ahead_logged_and_constrained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("palaver.db"))
            .await
            .expect("open");
        let pragma = |name: &'static str| {
            let pool = store.write.clone();
            async move {
                sqlx::query_scalar::<_, String>(&format!(
                    "SELECT CAST({name} AS TEXT) FROM pragma_{name}"
                ))
                .fetch_one(&pool)
                .await
                .expect(name)
            }
        };
        // 2 = FULL: the WAL is fsynced at every commit, so an ack survives power loss.
        assert_eq!(pragma("synchronous").await, "2");
        assert_eq!(pragma("journal_mode").await, "wal");
        assert_eq!(pragma("foreign_keys").await, "1");
        // One writer: commits never interleave, and a batch is one transaction.
        assert_eq!(store.write.options().get_max_connections(), 1);
    }
}
