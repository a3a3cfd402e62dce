//! SQLite's batch append: a fixed handful of statements per batch, on the one write
//! connection.
//!
//! Every statement is a round trip to sqlx's SQLite worker thread, and those hand-offs,
//! not SQLite, were most of the CPU per message; so a batch reads members, stored keys and
//! last seqs in three statements (per 256 messages), decides in memory
//! (`assign_seqs`), and inserts with one multi-row `INSERT` per 256 new messages. Seqs
//! can be handed out in memory because the transaction runs on the only write connection
//! and holds SQLite's write lock: nothing else can take one meanwhile. The unique indexes
//! on `(room_id, seq)` and the idempotency key still refuse a reused seq or key if that
//! ever stopped being true. The `messages_appended` trigger (migration 0002) moves each
//! room's `last_seq` and each sender's markers, row by row, inside SQLite; the triggers of
//! migration 0008 move a thread root's count and change number, and stamp the sender's
//! markers with the room's change number.

use std::collections::HashSet;

use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::ROWS_PER_STATEMENT;
use crate::store::sql::map::{self, MESSAGE_COLUMNS};
use crate::store::sql::messages::{
    MENTIONS_PER_STATEMENT, Stored, assign_seqs, event_json, insert_mentions, mentions_json,
    mls_epoch, moved_epochs, new_messages,
};
use crate::store::sql::ms_of;
use crate::store::sql::search::SearchIndex;
use crate::store::{Appended, NewMessage, StoreResult};

/// `(?, ?), (?, ?), …`: `rows` groups of `width` placeholders.
fn placeholders(rows: usize, width: usize) -> String {
    let group = format!("({})", vec!["?"; width].join(", "));
    vec![group; rows].join(", ")
}

pub(super) async fn append(write: &SqlitePool, batch: &[NewMessage]) -> StoreResult<Vec<Appended>> {
    let mut tx = write.begin().await?;
    let mut stored = Stored::default();
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let pairs: HashSet<(Uuid, Uuid)> = chunk.iter().map(|m| (m.room_id, m.sender_id)).collect();
        let sql = format!(
            "SELECT room_id, user_id FROM members WHERE (room_id, user_id) IN (VALUES {})",
            placeholders(pairs.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (room, user) in &pairs {
            q = q.bind(*room).bind(*user);
        }
        for row in q.fetch_all(&mut *tx).await? {
            stored
                .members
                .insert((row.try_get("room_id")?, row.try_get("user_id")?));
        }

        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE (room_id, sender_id, client_msg_id) IN (VALUES {})",
            placeholders(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for m in chunk {
            q = q.bind(m.room_id).bind(m.sender_id).bind(&m.client_msg_id);
        }
        for row in q.fetch_all(&mut *tx).await? {
            stored.add_existing(map::message(&row)?);
        }

        let rooms: HashSet<Uuid> = chunk
            .iter()
            .map(|m| m.room_id)
            .filter(|r| !stored.last_seq.contains_key(r))
            .collect();
        if !rooms.is_empty() {
            let sql = format!(
                "SELECT id, last_seq, mls_epoch FROM rooms WHERE id IN ({})",
                vec!["?"; rooms.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for room in &rooms {
                q = q.bind(*room);
            }
            for row in q.fetch_all(&mut *tx).await? {
                let id: Uuid = row.try_get("id")?;
                stored.last_seq.insert(id, row.try_get("last_seq")?);
                if let Some(epoch) = row.try_get::<Option<i64>, _>("mls_epoch")? {
                    stored.epochs.insert(id, epoch);
                }
            }
        }
    }

    let out = assign_seqs(batch, stored);
    let new = new_messages(&out);
    for chunk in new.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO messages (id, room_id, seq, sender_id, client_msg_id, kind, content, media_id, created_at, \
               reply_to_id, thread_root_id, also_in_room, mentions, mentions_room, event, forwarded, \
               mls_kind, mls_epoch, mls_data) \
             VALUES {}",
            placeholders(chunk.len(), 19)
        );
        let mut q = sqlx::query(&sql);
        for m in chunk {
            q = q
                .bind(m.id)
                .bind(m.room_id)
                .bind(m.seq)
                .bind(m.sender_id)
                .bind(&m.client_msg_id)
                .bind(m.kind.as_str())
                .bind(&m.content)
                .bind(m.media_id)
                .bind(ms_of(m.timestamp))
                .bind(m.reply_to.as_ref().map(|r| r.id))
                .bind(m.thread_root_id)
                .bind(m.also_in_room)
                .bind(mentions_json(&m.mentions))
                .bind(m.mentions_room)
                .bind(event_json(m.event.as_ref()))
                .bind(m.forwarded)
                .bind(m.mls.as_ref().map(|x| x.kind.as_str()))
                .bind(m.mls.as_ref().map(|x| mls_epoch(x.epoch)))
                .bind(m.mls.as_ref().map(|x| x.data.as_str()));
        }
        q.execute(&mut *tx).await?;
    }
    // Who each new message mentions, for the room list's counts (self-mentions are
    // left out by the service).
    for m in new.iter().filter(|m| !m.mentions.is_empty()) {
        for chunk in m.mentions.chunks(MENTIONS_PER_STATEMENT) {
            let sql = insert_mentions(chunk.len());
            let mut q = sqlx::query(&sql).bind(m.room_id).bind(m.seq);
            for user in chunk {
                q = q.bind(*user);
            }
            q.execute(&mut *tx).await?;
        }
    }
    for (room, epoch) in moved_epochs(&out) {
        sqlx::query("UPDATE rooms SET mls_epoch = ? WHERE id = ?")
            .bind(epoch)
            .bind(room)
            .execute(&mut *tx)
            .await?;
    }
    SearchIndex::index(&mut *tx, &new_messages(&out)).await?;
    tx.commit().await?;
    Ok(out)
}
