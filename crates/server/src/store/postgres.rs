//! The cluster engine: PostgreSQL, shared by every node.
//!
//! Same contract as the SQLite engine (the `Store` docs), but several nodes write at
//! once, so nothing may rely on being the only writer:
//!
//! - An append locks the rows of its rooms (`SELECT … FOR NO KEY UPDATE`, in id order so two
//!   nodes' batches never deadlock) before it reads `last_seq`, members and idempotency
//!   keys. Whatever another node committed to the room is then visible, and nobody else
//!   can take a seq until this batch commits: seqs stay strictly increasing and gap-free.
//! - The unique index on `(room_id, sender_id, client_msg_id)` backs idempotency;
//!   inserts say `ON CONFLICT DO NOTHING`, and a conflict that slipped past the lock
//!   fails the batch (so it is retried and answered from the stored row) rather than
//!   leave a hole in the seqs.
//! - Read-modify-write operations (refresh rotation, markers) lock the row they change.
//!
//! Instants are BIGINT milliseconds, as on SQLite, so `clock.rs` serves both engines.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use palaver_proto::{Message, MessageStatus, MessageType, NotificationPreview, Role, User};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

use super::*;
use crate::clock::to_time;

/// How the connection pool is sized; `Default` suits one node.
#[derive(Debug, Clone)]
pub struct PgPoolSettings {
    /// Connections this node may hold. Every node has its own pool, so the server's
    /// `max_connections` must cover nodes × this.
    pub max_connections: u32,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PgPoolSettings {
    fn default() -> Self {
        // 16 keeps a handful of nodes well inside PostgreSQL's default of 100 while
        // leaving the group-commit writer and the readers room to run side by side.
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL engine.
pub struct PostgresStore {
    pool: PgPool,
}

const MESSAGE_COLUMNS: &str = "id, room_id, seq, sender_id, client_msg_id, kind, content, media_id, created_at, edited_at, deleted_at";
const USER_COLUMNS: &str = "id, username, display_name, created_at";
const MEDIA_COLUMNS: &str = "id, uploader_id, sha256, kind, mime_type, size, filename, width, height, thumb_sha256, thumb_mime, created_at";
const PUSH_COLUMNS: &str = "id, user_id, endpoint, p256dh, auth, created_at";

impl PostgresStore {
    /// Connects with the default pool settings; see [`PostgresStore::connect_with`].
    pub async fn connect(url: &str, schema: Option<&str>) -> StoreResult<Self> {
        Self::connect_with(url, schema, PgPoolSettings::default()).await
    }

    /// Connects to `url` (`postgres://user@host:port/db`) and runs the migrations.
    ///
    /// With `schema`, everything lives in that schema: it is created if missing and is
    /// the `search_path` of every pooled connection, so several deployments (or test
    /// runs) can share one database without seeing each other.
    pub async fn connect_with(
        url: &str,
        schema: Option<&str>,
        settings: PgPoolSettings,
    ) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let mut pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout);
        if let Some(schema) = schema {
            let quoted = quote_identifier(schema)?;
            // One connection of its own creates the schema, before the pool's
            // connections try to use it.
            let mut conn = PgConnection::connect_with(&options).await?;
            let created = conn
                .execute(format!("CREATE SCHEMA IF NOT EXISTS {quoted}").as_str())
                .await;
            // Two nodes starting at once can both pass "IF NOT EXISTS" and one then
            // trips over the catalog's unique index: the schema exists, which is the goal.
            if let Err(err) = created
                && !is_unique_violation(&err)
            {
                return Err(err.into());
            }
            conn.close().await?;
            let set_path = format!("SET search_path TO {quoted}");
            pool = pool.after_connect(move |conn, _meta| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    conn.execute(set_path.as_str()).await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(options).await?;
        // sqlx takes an advisory lock around migrations, so nodes starting together
        // apply them once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The room's summary, inside a transaction or not.
    async fn summary_on<'e>(
        db: impl Executor<'e, Database = Postgres>,
        room: Uuid,
    ) -> StoreResult<Markers> {
        let row = sqlx::query(
            "SELECT COALESCE(MIN(delivered_seq), 0)::bigint AS d, COALESCE(MIN(read_seq), 0)::bigint AS r \
             FROM members WHERE room_id = $1",
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
        tx: &mut Transaction<'_, Postgres>,
        hash: &[u8],
        session_id: Uuid,
        expires_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(hash)
        .bind(session_id)
        .bind(expires_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// The schema name as a quoted identifier. Only plain names are accepted: it is
/// spliced into SQL (identifiers cannot be bound), so nothing may need escaping.
fn quote_identifier(name: &str) -> StoreResult<String> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !plain {
        return Err(StoreError::Invalid(format!(
            "schema name {name:?}: use lowercase letters, digits and _ (at most 63)"
        )));
    }
    Ok(format!("\"{name}\""))
}

fn ms_of(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn user_from_row(row: &PgRow) -> StoreResult<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        created_at: to_time(row.try_get("created_at")?),
    })
}

fn message_from_row(row: &PgRow) -> StoreResult<Message> {
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

fn media_from_row(row: &PgRow) -> StoreResult<MediaRow> {
    let kind: String = row.try_get("kind")?;
    let dimension = |column: &str| -> StoreResult<Option<u32>> {
        row.try_get::<Option<i64>, _>(column)?
            .map(|v| u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column} {v}"))))
            .transpose()
    };
    let size: i64 = row.try_get("size")?;
    Ok(MediaRow {
        id: row.try_get("id")?,
        uploader_id: row.try_get("uploader_id")?,
        sha256: row.try_get("sha256")?,
        kind: MessageType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("media kind {kind:?}")))?,
        mime_type: row.try_get("mime_type")?,
        size: u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("size {size}")))?,
        filename: row.try_get("filename")?,
        width: dimension("width")?,
        height: dimension("height")?,
        thumb_sha256: row.try_get("thumb_sha256")?,
        thumb_mime: row.try_get("thumb_mime")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

fn room_from_row(row: &PgRow) -> StoreResult<RoomRow> {
    Ok(RoomRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        is_group: row.try_get("is_group")?,
        created_at_ms: row.try_get("created_at")?,
        last_seq: row.try_get("last_seq")?,
        last_activity_ms: row.try_get("last_activity")?,
    })
}

fn push_subscription_from_row(row: &PgRow) -> StoreResult<PushSubscriptionRow> {
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
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(user.id)
            .bind(&user.username)
            .bind(&user.display_name)
            .bind(password_hash)
            .bind(ms_of(user.created_at))
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(Constraint::Username) } else { e.into() })?;
        Ok(())
    }

    async fn user(&self, id: Uuid) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>> {
        // One round trip, then the caller's order (unknown ids skipped), as SQLite
        // answers them one by one.
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = ANY($1)"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let found = rows
            .iter()
            .map(|r| user_from_row(r).map(|u| (u.id, u)))
            .collect::<StoreResult<HashMap<_, _>>>()?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
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
        let pattern = format!("{}%", escaped.to_lowercase());
        // Usernames are stored lowercase; display names are compared lowercased (SQLite's
        // LIKE is case-insensitive). `COLLATE "C"` orders by bytes, as SQLite does,
        // whatever the database's locale.
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username LIKE $1 OR lower(display_name) LIKE $1 \
             ORDER BY username COLLATE \"C\" LIMIT $2"
        ))
        .bind(pattern)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn set_display_name(&self, id: Uuid, name: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::User));
        }
        Ok(())
    }

    async fn set_last_seen(&self, id: Uuid, at_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen_at = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn last_seen(&self, id: Uuid) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT last_seen_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO sessions (id, user_id, created_at) VALUES ($1, $2, $3)")
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
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: the same token presented to two nodes at once must rotate once and
        // be seen as reused by the other, not rotate twice.
        let row = sqlx::query(
            "SELECT t.session_id, t.expires_at, t.used_at, s.user_id, s.revoked_at \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1 \
             FOR UPDATE OF t",
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
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2")
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
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
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
        let row = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING user_id")
            .bind(now_ms)
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("user_id")?),
            None => None,
        })
    }

    async fn session_of_refresh(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>> {
        let row = sqlx::query(
            "SELECT t.session_id, s.user_id FROM refresh_tokens t \
             JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("session_id")?, row.try_get("user_id")?)),
            None => None,
        })
    }

    async fn revoked_sessions_since(&self, since_ms: i64) -> StoreResult<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}

#[async_trait]
impl RoomStore for PostgresStore {
    async fn create_room(&self, room: &NewRoom) -> StoreResult<(Uuid, bool)> {
        let mut tx = self.pool.begin().await?;
        // ON CONFLICT on the pair's key: two nodes creating the same 1:1 room at once
        // end with one room, and the loser answers with the winner's (the conflict
        // waits for the other transaction, and the next statement sees its row).
        let inserted = sqlx::query(
            "INSERT INTO rooms (id, name, is_group, direct_key, created_at, last_activity) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (direct_key) DO NOTHING",
        )
        .bind(room.id)
        .bind(&room.name)
        .bind(room.is_group)
        .bind(&room.direct_key)
        .bind(room.now_ms)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let row = sqlx::query("SELECT id FROM rooms WHERE direct_key = $1")
                .bind(&room.direct_key)
                .fetch_one(&mut *tx)
                .await?;
            return Ok((row.try_get("id")?, false));
        }
        let (users, roles): (Vec<Uuid>, Vec<&str>) =
            room.members.iter().map(|(u, r)| (*u, r.as_str())).unzip();
        sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) \
             SELECT $1, u, r, $4 FROM UNNEST($2::uuid[], $3::text[]) AS m(u, r)",
        )
        .bind(room.id)
        .bind(&users)
        .bind(&roles)
        .bind(room.now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((room.id, true))
    }

    async fn room(&self, id: Uuid) -> StoreResult<Option<RoomRow>> {
        let row = sqlx::query("SELECT id, name, is_group, created_at, last_seq, last_activity FROM rooms WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }

    async fn rooms_of(&self, user: Uuid, only: Option<Uuid>) -> StoreResult<Vec<MyRoomRow>> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, r.is_group, r.created_at, r.last_seq, r.last_activity, m.read_seq, \
               (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.read_seq \
                  AND x.sender_id <> m.user_id AND x.deleted_at IS NULL) AS unread \
             FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = $1 AND ($2::uuid IS NULL OR r.id = $2) \
             ORDER BY r.last_activity DESC, r.id DESC",
        )
        .bind(user)
        .bind(only)
        .fetch_all(&self.pool)
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
             FROM members m JOIN users u ON u.id = m.user_id WHERE m.room_id = $1 \
             ORDER BY m.joined_at, u.username COLLATE \"C\"",
        )
        .bind(room)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // The room lock, as an append takes it: no message can get a seq between
        // reading last_seq and the new members' markers starting there.
        let row = sqlx::query("SELECT last_seq FROM rooms WHERE id = $1 FOR NO KEY UPDATE")
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
                "INSERT INTO members (room_id, user_id, role, joined_at, delivered_seq, read_seq) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (room_id, user_id) DO NOTHING",
            )
            .bind(room)
            .bind(user)
            .bind(role.as_str())
            .bind(now_ms)
            .bind(last_seq)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                added.push(*user);
            }
        }
        sqlx::query("UPDATE rooms SET last_activity = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(room)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn remove_member(&self, room: Uuid, user: Uuid, heir: Option<Uuid>) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if let Some(heir) = heir {
            sqlx::query("UPDATE members SET role = 'owner' WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(heir)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
            .bind(room)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_roles(&self, room: Uuid, roles: &[(Uuid, Role)]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for (user, role) in roles {
            sqlx::query("UPDATE members SET role = $1 WHERE room_id = $2 AND user_id = $3")
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
        sqlx::query("UPDATE rooms SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(room)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn all_memberships(&self) -> StoreResult<Vec<(Uuid, Uuid)>> {
        let rows = sqlx::query("SELECT room_id, user_id FROM members")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("room_id")?, r.try_get("user_id")?)))
            .collect()
    }
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // A fixed number of statements per batch whatever its size (arrays, not one
        // statement per message): lock rooms, read members, read keys, insert, move
        // last_seq, move the senders' markers, commit. One commit, one WAL flush.
        let mut tx = self.pool.begin().await?;

        // 1. The room locks, in id order so that two nodes whose batches share rooms
        //    take them in the same order and cannot deadlock. Every read below happens
        //    after the lock, so it sees everything other nodes committed to these rooms.
        //    NO KEY UPDATE is the lock `UPDATE rooms SET last_seq` takes anyway: it
        //    excludes other appends but not foreign-key checks against the room.
        let rooms: Vec<Uuid> = batch
            .iter()
            .map(|m| m.room_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut last_seq: HashMap<Uuid, i64> = HashMap::new();
        for row in sqlx::query(
            "SELECT id, last_seq FROM rooms WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        )
        .bind(&rooms)
        .fetch_all(&mut *tx)
        .await?
        {
            last_seq.insert(row.try_get("id")?, row.try_get("last_seq")?);
        }

        // 2. Which senders are members.
        let (room_ids, sender_ids): (Vec<Uuid>, Vec<Uuid>) =
            batch.iter().map(|m| (m.room_id, m.sender_id)).unzip();
        let mut members = HashSet::new();
        for row in sqlx::query(
            "SELECT m.room_id, m.user_id FROM members m \
             JOIN (SELECT DISTINCT r, u FROM UNNEST($1::uuid[], $2::uuid[]) AS t(r, u)) AS k \
               ON m.room_id = k.r AND m.user_id = k.u",
        )
        .bind(&room_ids)
        .bind(&sender_ids)
        .fetch_all(&mut *tx)
        .await?
        {
            members.insert((
                row.try_get::<Uuid, _>("room_id")?,
                row.try_get::<Uuid, _>("user_id")?,
            ));
        }

        // 3. Which idempotency keys are already stored (by this node or another).
        let keys: Vec<&str> = batch.iter().map(|m| m.client_msg_id.as_str()).collect();
        let mut existing: HashMap<(Uuid, Uuid, String), Message> = HashMap::new();
        for row in sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE (room_id, sender_id, client_msg_id) IN \
               (SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]))"
        ))
        .bind(&room_ids)
        .bind(&sender_ids)
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await?
        {
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

        // 4. In memory, as on SQLite: duplicate, not a member, or the room's next seq.
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

        let new: Vec<&Message> = out
            .iter()
            .filter_map(|a| match a {
                Appended::New(m) => Some(m),
                _ => None,
            })
            .collect();
        if new.is_empty() {
            tx.commit().await?;
            return Ok(out);
        }

        // 5. One INSERT for the whole batch. ON CONFLICT DO NOTHING on the idempotency
        //    key: under the room lock a conflict cannot happen, but if it ever did, the
        //    seqs handed out after it would leave a hole, so the batch fails instead and
        //    its retry answers from the stored row.
        let mut cols = InsertColumns::with_capacity(new.len());
        for m in &new {
            cols.push(m);
        }
        let inserted = sqlx::query(
            "INSERT INTO messages (id, room_id, seq, sender_id, client_msg_id, kind, content, media_id, created_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::uuid[], $9::bigint[]) \
             ON CONFLICT ON CONSTRAINT messages_idempotency DO NOTHING",
        )
        .bind(&cols.id)
        .bind(&cols.room_id)
        .bind(&cols.seq)
        .bind(&cols.sender_id)
        .bind(&cols.client_msg_id)
        .bind(&cols.kind)
        .bind(&cols.content)
        .bind(&cols.media_id)
        .bind(&cols.created_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != new.len() as u64 {
            tx.rollback().await?;
            return Err(StoreError::Conflict(Constraint::MessageIdempotencyKey));
        }

        // 6. Each room's last_seq and activity: the last new message in it (what
        //    SQLite's trigger leaves behind). 7. Each sender's markers: sending implies
        //    having seen everything before, so they move to the sender's newest seq.
        let mut room_last: HashMap<Uuid, (i64, i64)> = HashMap::new();
        let mut sender_last: HashMap<(Uuid, Uuid), i64> = HashMap::new();
        for m in &new {
            room_last.insert(m.room_id, (m.seq, ms_of(m.timestamp)));
            sender_last.insert((m.room_id, m.sender_id), m.seq);
        }
        let (ids, (seqs, acts)): (Vec<Uuid>, (Vec<i64>, Vec<i64>)) = room_last.into_iter().unzip();
        sqlx::query(
            "UPDATE rooms SET last_seq = u.seq, last_activity = u.at \
             FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[]) AS u(id, seq, at) WHERE rooms.id = u.id",
        )
        .bind(&ids)
        .bind(&seqs)
        .bind(&acts)
        .execute(&mut *tx)
        .await?;
        let (pairs, seqs): (Vec<(Uuid, Uuid)>, Vec<i64>) = sender_last.into_iter().unzip();
        let (rooms, users): (Vec<Uuid>, Vec<Uuid>) = pairs.into_iter().unzip();
        sqlx::query(
            "UPDATE members SET delivered_seq = GREATEST(delivered_seq, u.seq), read_seq = GREATEST(read_seq, u.seq) \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) AS u(room_id, user_id, seq) \
             WHERE members.room_id = u.room_id AND members.user_id = u.user_id",
        )
        .bind(&rooms)
        .bind(&users)
        .bind(&seqs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(out)
    }
    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn edit_message(&self, id: Uuid, content: &str, now_ms: i64) -> StoreResult<Message> {
        let row = sqlx::query(&format!(
            "UPDATE messages SET content = $1, edited_at = $2 WHERE id = $3 AND deleted_at IS NULL RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(content)
        .bind(now_ms)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        message_from_row(&row.ok_or(StoreError::NotFound(Entity::Message))?)
    }

    async fn delete_message(&self, id: Uuid, now_ms: i64) -> StoreResult<Message> {
        let row = sqlx::query(&format!(
            "UPDATE messages SET content = '', media_id = NULL, deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL \
             RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(now_ms)
        .bind(id)
        .fetch_optional(&self.pool)
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
        // A range scan of the (room_id, seq) primary key in either direction.
        let order = match order {
            SeqOrder::Ascending => "ASC",
            SeqOrder::Descending => "DESC",
        };
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq {order} LIMIT $4"
        ))
        .bind(room)
        .bind(after)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from_row).collect()
    }
}

#[async_trait]
impl ReceiptStore for PostgresStore {
    async fn advance_markers(
        &self,
        room: Uuid,
        user: Uuid,
        to: Markers,
    ) -> StoreResult<Option<MarkerMove>> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT last_seq FROM rooms WHERE id = $1")
            .bind(room)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let last_seq: i64 = row.try_get("last_seq")?;
        // FOR UPDATE: two devices of one user acknowledging on two nodes at once must
        // not move the marker back by writing a stale maximum.
        let Some(row) = sqlx::query(
            "SELECT delivered_seq, read_seq FROM members WHERE room_id = $1 AND user_id = $2 FOR UPDATE",
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
            sqlx::query("UPDATE members SET delivered_seq = $1, read_seq = $2 WHERE room_id = $3 AND user_id = $4")
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
        Self::summary_on(&self.pool, room).await
    }
}

#[async_trait]
impl MediaRecordStore for PostgresStore {
    async fn insert_media(&self, m: &MediaRow) -> StoreResult<()> {
        let size = i64::try_from(m.size)
            .map_err(|_| StoreError::Invalid(format!("media size {}", m.size)))?;
        sqlx::query(&format!(
            "INSERT INTO media ({MEDIA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(m.id)
        .bind(m.uploader_id)
        .bind(&m.sha256)
        .bind(m.kind.as_str())
        .bind(&m.mime_type)
        .bind(size)
        .bind(&m.filename)
        .bind(m.width.map(i64::from))
        .bind(m.height.map(i64::from))
        .bind(&m.thumb_sha256)
        .bind(&m.thumb_mime)
        .bind(m.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn media(&self, id: Uuid) -> StoreResult<Option<MediaRow>> {
        let row = sqlx::query(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(media_from_row).transpose()
    }

    async fn media_many(&self, ids: &[Uuid]) -> StoreResult<Vec<MediaRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {MEDIA_COLUMNS} FROM media WHERE id = ANY($1)"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(media_from_row).collect()
    }

    async fn media_rooms(&self, id: Uuid) -> StoreResult<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT DISTINCT room_id FROM messages WHERE media_id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<Uuid, _>("room_id")?))
            .collect()
    }

    async fn delete_media(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM media WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_orphan_media(&self, before_ms: i64) -> StoreResult<Vec<MediaRow>> {
        // A deleted message gives up its media (media_id is cleared), so "no message
        // carries it" is simply: no row points at it.
        let rows = sqlx::query(&format!(
            "DELETE FROM media WHERE created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.media_id = media.id) \
             RETURNING {MEDIA_COLUMNS}"
        ))
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(media_from_row).collect()
    }

    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = $1) \
             OR EXISTS (SELECT 1 FROM media WHERE thumb_sha256 = $1) AS used",
        )
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("used")?)
    }
}

#[async_trait]
impl PushStore for PostgresStore {
    async fn upsert_push_subscription(
        &self,
        sub: &PushSubscriptionRow,
    ) -> StoreResult<(PushSubscriptionRow, bool)> {
        // The endpoint is the identity of a subscription: a second registration keeps the
        // row's id and creation time and takes the new keys and owner.
        let row = sqlx::query(&format!(
            "INSERT INTO push_subscriptions ({PUSH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth \
             RETURNING {PUSH_COLUMNS}"
        ))
        .bind(sub.id)
        .bind(sub.user_id)
        .bind(&sub.endpoint)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(sub.created_at_ms)
        .fetch_one(&self.pool)
        .await?;
        let stored = push_subscription_from_row(&row)?;
        let created = stored.id == sub.id;
        Ok((stored, created))
    }

    async fn push_subscriptions(&self, user: Uuid) -> StoreResult<Vec<PushSubscriptionRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {PUSH_COLUMNS} FROM push_subscriptions WHERE user_id = $1 ORDER BY id"
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push_subscription_from_row).collect()
    }

    async fn delete_push_subscription(&self, id: Uuid, owner: Option<Uuid>) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM push_subscriptions WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
        )
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_room_muted(&self, room: Uuid, user: Uuid, muted: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE members SET muted = $1 WHERE room_id = $2 AND user_id = $3")
            .bind(muted)
            .bind(room)
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn push_settings(&self, user: Uuid) -> StoreResult<(NotificationPreview, Vec<Uuid>)> {
        // One statement, so the preview and the mutes come from one snapshot.
        let row = sqlx::query(
            "SELECT u.notification_preview, \
               ARRAY(SELECT room_id FROM members WHERE user_id = u.id AND muted ORDER BY room_id) AS muted \
             FROM users u WHERE u.id = $1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Entity::User))?;
        let preview = preview_of(row.try_get("notification_preview")?)?;
        let muted: Vec<Uuid> = row.try_get("muted")?;
        Ok((preview, muted))
    }

    async fn set_notification_preview(
        &self,
        user: Uuid,
        preview: NotificationPreview,
    ) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET notification_preview = $1 WHERE id = $2")
            .bind(preview.as_str())
            .bind(user)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::User));
        }
        Ok(())
    }

    async fn push_target(&self, room: Uuid, user: Uuid) -> StoreResult<Option<PushTarget>> {
        let row = sqlx::query(
            "SELECT m.delivered_seq, m.muted, u.notification_preview FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = $1 AND m.user_id = $2",
        )
        .bind(room)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(PushTarget {
                delivered_seq: row.try_get("delivered_seq")?,
                muted: row.try_get("muted")?,
                preview: preview_of(row.try_get("notification_preview")?)?,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn audit(&self, entry: AuditEntry, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(now_ms)
        .bind(entry.actor)
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_tail(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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

/// New messages as one array per column, for `INSERT … SELECT * FROM UNNEST(…)`: one
/// statement and nine parameters whatever the batch size.
struct InsertColumns<'a> {
    id: Vec<Uuid>,
    room_id: Vec<Uuid>,
    seq: Vec<i64>,
    sender_id: Vec<Uuid>,
    client_msg_id: Vec<&'a str>,
    kind: Vec<&'static str>,
    content: Vec<&'a str>,
    media_id: Vec<Option<Uuid>>,
    created_at: Vec<i64>,
}

impl<'a> InsertColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            id: Vec::with_capacity(n),
            room_id: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            sender_id: Vec::with_capacity(n),
            client_msg_id: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            content: Vec::with_capacity(n),
            media_id: Vec::with_capacity(n),
            created_at: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, m: &'a Message) {
        self.id.push(m.id);
        self.room_id.push(m.room_id);
        self.seq.push(m.seq);
        self.sender_id.push(m.sender_id);
        self.client_msg_id.push(&m.client_msg_id);
        self.kind.push(m.kind.as_str());
        self.content.push(&m.content);
        self.media_id.push(m.media_id);
        self.created_at.push(ms_of(m.timestamp));
    }
}
