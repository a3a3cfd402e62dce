//! Rooms and membership, for both engines.

use std::collections::HashSet;

use async_trait::async_trait;
use palaver_proto::{MemberState, Role};
use uuid::Uuid;

use super::conversation::NEXT_STATE_VERSION;
use super::map::{self, ROOM_COLUMNS, ROOMS};
use super::{Columns, Engine, SqlStore};
use crate::store::{
    Entity, MemberRow, MembershipRow, MyRoomRow, NewMember, NewRoom, RoomRow, RoomStore,
    StoreError, StoreResult,
};

/// Members per INSERT: 4 parameters each stays far below both engines' limits (32,766 on
/// SQLite, 65,535 on PostgreSQL).
const MEMBERS_PER_STATEMENT: usize = 1000;

/// Inserts `n` members of one room and returns the ones inserted; existing members are
/// left as they are. `$1` room, `$2` joined at, `$3` where both markers start, then
/// (user, role, state, inviter) for each member.
fn insert_members(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = 4 + 4 * i;
            format!("($1, ${p}, ${}, $2, $3, $3, ${}, ${})", p + 1, p + 2, p + 3)
        })
        .collect();
    format!(
        "INSERT INTO members \
           (room_id, user_id, role, joined_at, delivered_seq, read_seq, state, invited_by) \
         VALUES {} ON CONFLICT (room_id, user_id) DO NOTHING RETURNING user_id",
        rows.join(", ")
    )
}

/// Where a new member stands.
fn state_of(member: &NewMember) -> &'static str {
    match member.invited_by {
        Some(_) => MemberState::Invited.as_str(),
        None => MemberState::Joined.as_str(),
    }
}

#[async_trait]
impl<P: Engine> RoomStore for SqlStore<P> {
    async fn create_room(&self, room: &NewRoom) -> StoreResult<(Uuid, bool)> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            // ON CONFLICT on the pair's key: two nodes creating the same 1:1 room at once
            // end with one room, and the loser answers with the winner's (the conflict
            // waits for the other transaction, and the next statement sees its row).
            let inserted = sqlx::query(
                "INSERT INTO rooms (id, name, is_group, direct_key, created_at, last_activity, encrypted, mls_epoch) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7) ON CONFLICT (direct_key) DO NOTHING",
            )
            .bind(room.id)
            .bind(&room.name)
            .bind(room.is_group)
            .bind(&room.direct_key)
            .bind(room.now_ms)
            .bind(room.encrypted)
            .bind(room.encrypted.then_some(0i64))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                let row = sqlx::query("SELECT id FROM rooms WHERE direct_key = $1")
                    .bind(&room.direct_key)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok((row.col("id")?, false));
            }
            for chunk in room.members.chunks(MEMBERS_PER_STATEMENT) {
                let sql = insert_members(chunk.len());
                let mut insert = sqlx::query(&sql).bind(room.id).bind(room.now_ms).bind(0i64);
                for m in chunk {
                    insert = insert
                        .bind(m.user_id)
                        .bind(m.role.as_str())
                        .bind(state_of(m))
                        .bind(m.invited_by);
                }
                insert.fetch_all(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok((room.id, true))
        })
    }

    async fn room(&self, id: Uuid) -> StoreResult<Option<RoomRow>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM {ROOMS} WHERE r.id = $1");
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
            row.as_ref().map(map::room).transpose()
        })
    }

    async fn rooms_of(&self, user: Uuid, only: Option<Uuid>) -> StoreResult<Vec<MyRoomRow>> {
        let sql = format!(
            "SELECT {ROOM_COLUMNS}, m.read_seq, m.notify_level, \
               (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.read_seq \
                  AND x.sender_id <> m.user_id AND x.deleted_at IS NULL AND x.kind <> 'event' \
                  AND (x.thread_root_id IS NULL OR x.also_in_room)) AS unread, \
               (SELECT COUNT(*) FROM mentions n WHERE n.user_id = m.user_id AND n.room_id = r.id \
                  AND n.seq > m.read_seq) \
               + (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.mentions_room \
                  AND x.seq > m.read_seq AND x.sender_id <> m.user_id AND x.deleted_at IS NULL) \
                 AS mentions \
             FROM members m JOIN rooms r ON r.id = m.room_id \
               LEFT JOIN media p ON p.id = r.picture_media_id \
             WHERE m.user_id = $1 AND ($2 IS NULL OR r.id = $2) \
             ORDER BY r.last_activity DESC, r.id DESC"
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql)
                .bind(user)
                .bind(only)
                .fetch_all(db)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(MyRoomRow {
                        room: map::room(row)?,
                        read_seq: row.col("read_seq")?,
                        unread: row.col("unread")?,
                        mentions: row.col("mentions")?,
                        notification_level: map::notification_level(row)?,
                    })
                })
                .collect()
        })
    }

    async fn members(&self, room: Uuid) -> StoreResult<Vec<MemberRow>> {
        let sql = format!(
            "SELECT m.room_id, m.user_id, u.username, u.display_name, m.role, m.joined_at, \
               m.delivered_seq, m.read_seq, m.state, m.invited_by, m.receipt_version, u.avatar_media_id, \
               a.thumb_sha256 AS avatar_thumb \
             FROM members m JOIN users u ON u.id = m.user_id \
               LEFT JOIN media a ON a.id = u.avatar_media_id WHERE m.room_id = $1 \
             ORDER BY m.joined_at, u.username{}",
            P::BYTEWISE
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql).bind(room).fetch_all(db).await?;
            rows.iter().map(map::member).collect()
        })
    }

    async fn add_members(
        &self,
        room: Uuid,
        members: &[NewMember],
        now_ms: i64,
    ) -> StoreResult<Vec<Uuid>> {
        // The room's row is locked as an append locks it: no message can take a seq
        // between reading last_seq and the new members' markers starting there.
        let find = format!(
            "SELECT last_seq FROM rooms WHERE id = $1 {}",
            P::row_lock("FOR NO KEY UPDATE")
        );
        let mut inserted: HashSet<Uuid> = with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let Some(row) = sqlx::query(&find)
                .bind(room)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Err(StoreError::NotFound(Entity::Room));
            };
            let last_seq: i64 = row.col("last_seq")?;
            let mut inserted = HashSet::new();
            for chunk in members.chunks(MEMBERS_PER_STATEMENT) {
                let sql = insert_members(chunk.len());
                let mut insert = sqlx::query(&sql).bind(room).bind(now_ms).bind(last_seq);
                for m in chunk {
                    insert = insert
                        .bind(m.user_id)
                        .bind(m.role.as_str())
                        .bind(state_of(m))
                        .bind(m.invited_by);
                }
                for row in insert.fetch_all(&mut *tx).await? {
                    inserted.insert(row.col("user_id")?);
                }
            }
            sqlx::query("UPDATE rooms SET last_activity = $1 WHERE id = $2")
                .bind(now_ms)
                .bind(room)
                .execute(&mut *tx)
                .await?;
            if !inserted.is_empty() {
                sqlx::query(NEXT_STATE_VERSION)
                    .bind(room)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            inserted
        });
        // In the order asked, each once.
        Ok(members
            .iter()
            .map(|m| m.user_id)
            .filter(|user| inserted.remove(user))
            .collect())
    }

    async fn remove_member(&self, room: Uuid, user: Uuid, heir: Option<Uuid>) -> StoreResult<bool> {
        let removed = with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            if let Some(heir) = heir {
                sqlx::query(
                    "UPDATE members SET role = 'owner' WHERE room_id = $1 AND user_id = $2",
                )
                .bind(room)
                .bind(heir)
                .execute(&mut *tx)
                .await?;
            }
            let removed = sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if removed > 0 {
                sqlx::query(NEXT_STATE_VERSION)
                    .bind(room)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            removed
        });
        Ok(removed == 1)
    }

    async fn set_roles(&self, room: Uuid, roles: &[(Uuid, Role)]) -> StoreResult<()> {
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            for (user, role) in roles {
                sqlx::query("UPDATE members SET role = $1 WHERE room_id = $2 AND user_id = $3")
                    .bind(role.as_str())
                    .bind(room)
                    .bind(*user)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(NEXT_STATE_VERSION)
                .bind(room)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn rename_room(&self, room: Uuid, name: &str) -> StoreResult<()> {
        with_db!(&self.write, |db| {
            sqlx::query(
                "UPDATE rooms SET name = $1, version = version + 1, state_version = version + 1 \
                 WHERE id = $2",
            )
            .bind(name)
            .bind(room)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    async fn accept_invitation(&self, room: Uuid, user: Uuid) -> StoreResult<bool> {
        let updated = with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let updated = sqlx::query(
                "UPDATE members SET state = 'joined' \
                 WHERE room_id = $1 AND user_id = $2 AND state = 'invited'",
            )
            .bind(room)
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated > 0 {
                sqlx::query(NEXT_STATE_VERSION)
                    .bind(room)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            updated
        });
        Ok(updated == 1)
    }

    async fn invitations_from(&self, invitee: Uuid, inviter: Uuid) -> StoreResult<Vec<Uuid>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT room_id FROM members \
                 WHERE user_id = $1 AND invited_by = $2 AND state = 'invited'",
            )
            .bind(invitee)
            .bind(inviter)
            .fetch_all(db)
            .await?;
            rows.iter().map(|row| row.col("room_id")).collect()
        })
    }

    async fn all_memberships(&self) -> StoreResult<Vec<MembershipRow>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT m.room_id, m.user_id, m.state, r.is_group \
                 FROM members m JOIN rooms r ON r.id = m.room_id",
            )
            .fetch_all(db)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(MembershipRow {
                        room_id: row.col("room_id")?,
                        user_id: row.col("user_id")?,
                        state: map::member_state(row)?,
                        direct: !row.col::<bool>("is_group")?,
                    })
                })
                .collect()
        })
    }
}
