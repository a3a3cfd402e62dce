//! Messages, for both engines; and what both engines' batch appends share: deciding each
//! message of a batch from what is stored. Edits and deletions keep the search index in
//! step in their own transaction.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use palaver_proto::{Message, MessageStatus};
use uuid::Uuid;

use super::map::{self, MESSAGE_COLUMNS};
use super::search::{self, SearchIndex};
use super::{Columns, Engine, SqlStore};
use crate::clock::to_time;
use crate::store::{
    Appended, Changed, Entity, MessageStore, NewMessage, SeqOrder, StoreError, StoreResult,
};

/// Mention rows per INSERT (3 parameters each).
pub(in crate::store) const MENTIONS_PER_STATEMENT: usize = 500;

/// Replies quoting a message take the change number of its change: `$1` the number,
/// `$2` the quoted message, `$3` its room.
const REPLIES_CHANGED: &str =
    "UPDATE messages SET version = $1 WHERE reply_to_id = $2 AND room_id = $3 RETURNING id";

/// `INSERT` of `n` mentions at one seq: `$1` the room, `$2` the seq, then the users.
pub(in crate::store) fn insert_mentions(n: usize) -> String {
    let rows: Vec<String> = (0..n).map(|i| format!("(${}, $1, $2)", i + 3)).collect();
    format!(
        "INSERT INTO mentions (user_id, room_id, seq) VALUES {} ON CONFLICT DO NOTHING",
        rows.join(", ")
    )
}

/// `mentions` as stored: a JSON array of ids, or NULL when there are none.
pub(in crate::store) fn mentions_json(mentions: &[Uuid]) -> Option<String> {
    (!mentions.is_empty()).then(|| serde_json::to_string(mentions).unwrap_or_default())
}

/// A room event as stored: JSON, or NULL.
pub(in crate::store) fn event_json(event: Option<&palaver_proto::RoomEvent>) -> Option<String> {
    event.and_then(|e| serde_json::to_string(e).ok())
}

/// Takes the next change number of the room of a message that is not deleted, in one
/// statement (the room's row lock, as `NEXT_VERSION`): `$1` the message; answers the room
/// (`id`) and the number, or no row.
const NEXT_VERSION_OF_LIVE: &str = "UPDATE rooms SET version = version + 1 \
     WHERE id = (SELECT room_id FROM messages WHERE id = $1 AND deleted_at IS NULL) \
     RETURNING id, version";

#[async_trait]
impl<P: Engine> MessageStore for SqlStore<P> {
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>> {
        self.write.append_messages(batch).await
    }

    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
            row.as_ref().map(map::message).transpose()
        })
    }

    async fn edit_message(
        &self,
        id: Uuid,
        content: &str,
        mentions: &[Uuid],
        mentions_room: bool,
        now_ms: i64,
    ) -> StoreResult<Changed> {
        let update = format!(
            "UPDATE messages SET content = $1, edited_at = $2, mentions = $3, mentions_room = $4, \
               version = $5 WHERE id = $6 AND deleted_at IS NULL RETURNING {MESSAGE_COLUMNS}"
        );
        let mentions_json = mentions_json(mentions);
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let Some(row) = sqlx::query(NEXT_VERSION_OF_LIVE)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Err(StoreError::NotFound(Entity::Message));
            };
            let (room, version): (Uuid, i64) = (row.col("id")?, row.col("version")?);
            let row = sqlx::query(&update)
                .bind(content)
                .bind(now_ms)
                .bind(mentions_json)
                .bind(mentions_room)
                .bind(version)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let message = map::message(&row.ok_or(StoreError::NotFound(Entity::Message))?)?;
            sqlx::query("DELETE FROM mentions WHERE room_id = $1 AND seq = $2")
                .bind(room)
                .bind(message.seq)
                .execute(&mut *tx)
                .await?;
            for chunk in mentions.chunks(MENTIONS_PER_STATEMENT) {
                let sql = insert_mentions(chunk.len());
                let mut insert = sqlx::query(&sql).bind(room).bind(message.seq);
                for user in chunk {
                    insert = insert.bind(*user);
                }
                insert.execute(&mut *tx).await?;
            }
            let replies = sqlx::query(REPLIES_CHANGED)
                .bind(version)
                .bind(id)
                .bind(room)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.col("id"))
                .collect::<StoreResult<Vec<Uuid>>>()?;
            search::reindex(&mut *tx, &message).await?;
            tx.commit().await?;
            Ok(Changed { message, replies })
        })
    }

    async fn delete_message(&self, id: Uuid, now_ms: i64) -> StoreResult<Changed> {
        // The media goes with the content: a deleted message no longer keeps it alive.
        // So do its reactions, pin, mentions and link preview.
        let update = format!(
            "UPDATE messages SET content = '', media_id = NULL, deleted_at = $1, pinned_at = NULL, \
               pinned_by = NULL, mentions = NULL, mentions_room = $2, version = $3, \
               mls_kind = NULL, mls_epoch = NULL, mls_data = NULL \
             WHERE id = $4 AND deleted_at IS NULL RETURNING {MESSAGE_COLUMNS}"
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let Some(row) = sqlx::query(NEXT_VERSION_OF_LIVE)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Err(StoreError::NotFound(Entity::Message));
            };
            let (room, version): (Uuid, i64) = (row.col("id")?, row.col("version")?);
            let row = sqlx::query(&update)
                .bind(now_ms)
                .bind(false)
                .bind(version)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let message = map::message(&row.ok_or(StoreError::NotFound(Entity::Message))?)?;
            sqlx::query("DELETE FROM reactions WHERE message_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM message_previews WHERE message_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM mentions WHERE room_id = $1 AND seq = $2")
                .bind(room)
                .bind(message.seq)
                .execute(&mut *tx)
                .await?;
            let replies = sqlx::query(REPLIES_CHANGED)
                .bind(version)
                .bind(id)
                .bind(room)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.col("id"))
                .collect::<StoreResult<Vec<Uuid>>>()?;
            SearchIndex::unindex(&mut *tx, &message).await?;
            tx.commit().await?;
            Ok(Changed { message, replies })
        })
    }

    async fn messages(
        &self,
        room: Uuid,
        after: i64,
        before: i64,
        limit: u32,
        order: SeqOrder,
    ) -> StoreResult<Vec<Message>> {
        // A range scan of the (room_id, seq) index in either direction.
        let order = match order {
            SeqOrder::Ascending => "ASC",
            SeqOrder::Descending => "DESC",
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE room_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq {order} LIMIT $4"
        );
        with_db!(&self.read, |db| {
            let rows = sqlx::query(&sql)
                .bind(room)
                .bind(after)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(db)
                .await?;
            rows.iter().map(map::message).collect()
        })
    }
}

/// What a batch append reads inside its transaction before it decides anything.
#[derive(Debug, Default)]
pub(in crate::store) struct Stored {
    /// The batch's (room, sender) pairs that are memberships.
    pub members: HashSet<(Uuid, Uuid)>,
    /// Messages already stored under the batch's idempotency keys, by
    /// (room, sender, clientMsgId).
    pub existing: HashMap<(Uuid, Uuid, String), Message>,
    /// The last seq of each of the batch's rooms that exists.
    pub last_seq: HashMap<Uuid, i64>,
    /// The MLS epoch of each of the batch's rooms that is encrypted.
    pub epochs: HashMap<Uuid, i64>,
}

impl Stored {
    /// Records a message found stored under one of the batch's keys.
    pub fn add_existing(&mut self, message: Message) {
        let key = (
            message.room_id,
            message.sender_id,
            message.client_msg_id.clone(),
        );
        self.existing.insert(key, message);
    }
}

/// Decides each message of a batch, in order: a duplicate (of a stored message, or of one
/// earlier in the batch), not a member (or no such room), or new with its room's next
/// seq. The seqs are handed out here, so the caller must hold what keeps them its own
/// until it commits (SQLite's one writer; PostgreSQL's room locks).
pub(in crate::store) fn assign_seqs(batch: &[NewMessage], mut stored: Stored) -> Vec<Appended> {
    let mut out = Vec::with_capacity(batch.len());
    // Keys first used in this batch, to answer a retry inside the same batch.
    let mut fresh: HashMap<(Uuid, Uuid, &str), usize> = HashMap::new();
    for m in batch {
        let key = (m.room_id, m.sender_id, m.client_msg_id.as_str());
        if let Some(message) =
            stored
                .existing
                .get(&(m.room_id, m.sender_id, m.client_msg_id.clone()))
        {
            out.push(Appended::Duplicate(with_media(message.clone(), m)));
        } else if let Some(Appended::New(first)) = fresh.get(&key).map(|i| &out[*i]) {
            out.push(Appended::Duplicate(first.clone()));
        } else if !m.system && !stored.members.contains(&(m.room_id, m.sender_id)) {
            out.push(Appended::NotMember);
        } else if let Some(refused) = epoch_rule(m, &mut stored.epochs) {
            out.push(refused);
        } else if let Some(last) = stored.last_seq.get_mut(&m.room_id) {
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
                reply_to: m.reply_to.clone(),
                thread_root_id: m.thread_root_id,
                also_in_room: m.also_in_room,
                thread: None,
                reactions: Vec::new(),
                mentions: m.mentions.clone(),
                mentions_room: m.mentions_room,
                pinned: false,
                forwarded: m.forwarded,
                event: m.event.clone(),
                version: 0,
                link_preview: None,
                mls: m.mls.clone(),
            }));
        } else {
            out.push(Appended::NotMember);
        }
    }
    out
}

/// The rules of an encrypted room, for one message of a batch: only MLS from clients
/// (the server's room events are plain), and MLS only there; a commit only in the room's
/// current epoch, which it moves on (in `epochs`, for the rest of the batch); a proposal
/// only in the current epoch; an application message in no epoch still to come (one from
/// an older epoch is for members to decrypt or drop). `None`: the message may go on.
fn epoch_rule(m: &NewMessage, epochs: &mut HashMap<Uuid, i64>) -> Option<Appended> {
    use palaver_proto::MlsKind;
    let current = epochs.get_mut(&m.room_id);
    let (mls, current) = match (&m.mls, current) {
        (None, None) => return None,
        (None, Some(_)) if m.system => return None,
        (None, Some(_)) => return Some(Appended::EncryptionMismatch { encrypted: true }),
        (Some(_), None) => return Some(Appended::EncryptionMismatch { encrypted: false }),
        (Some(mls), Some(current)) => (mls, current),
    };
    let now = u64::try_from(*current).unwrap_or(0);
    let fits = match mls.kind {
        MlsKind::Commit | MlsKind::Proposal => mls.epoch == now,
        MlsKind::Application => mls.epoch <= now,
    };
    if !fits {
        return Some(Appended::WrongEpoch { current: now });
    }
    if mls.kind == MlsKind::Commit {
        *current += 1;
    }
    None
}

/// The epoch each room of a decided batch ends in, for the rooms a new commit moved.
pub(in crate::store) fn moved_epochs(out: &[Appended]) -> HashMap<Uuid, i64> {
    let mut moved = HashMap::new();
    for m in new_messages(out) {
        if let Some(mls) = m
            .mls
            .as_ref()
            .filter(|mls| mls.kind == palaver_proto::MlsKind::Commit)
        {
            let next = i64::try_from(mls.epoch).unwrap_or(i64::MAX - 1) + 1;
            let epoch = moved.entry(m.room_id).or_insert(next);
            *epoch = (*epoch).max(next);
        }
    }
    moved
}

/// An epoch as stored (an MLS epoch fits in 63 bits long before it could matter).
pub(in crate::store) fn mls_epoch(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(i64::MAX)
}

/// The messages a decided batch stores now.
pub(in crate::store) fn new_messages(out: &[Appended]) -> Vec<&Message> {
    out.iter()
        .filter_map(|a| match a {
            Appended::New(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// A retry names the same media as the stored message: reuse its description.
fn with_media(mut message: Message, retry: &NewMessage) -> Message {
    if message.media_id.is_some() && message.media_id == retry.media_id {
        message.media = retry.media.clone();
    }
    message
}
