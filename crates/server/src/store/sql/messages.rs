//! Messages, for both engines; and what both engines' batch appends share: deciding each
//! message of a batch from what is stored. Edits and deletions keep the search index in
//! step in their own transaction.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use palaver_proto::{Message, MessageStatus};
use uuid::Uuid;

use super::map::{self, MESSAGE_COLUMNS};
use super::search::{self, SearchIndex};
use super::{Engine, SqlStore};
use crate::clock::to_time;
use crate::store::{Appended, Entity, MessageStore, NewMessage, SeqOrder, StoreError, StoreResult};

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

    async fn edit_message(&self, id: Uuid, content: &str, now_ms: i64) -> StoreResult<Message> {
        let sql = format!(
            "UPDATE messages SET content = $1, edited_at = $2 \
             WHERE id = $3 AND deleted_at IS NULL RETURNING {MESSAGE_COLUMNS}"
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let row = sqlx::query(&sql)
                .bind(content)
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let message = map::message(&row.ok_or(StoreError::NotFound(Entity::Message))?)?;
            search::reindex(&mut *tx, &message).await?;
            tx.commit().await?;
            Ok(message)
        })
    }

    async fn delete_message(&self, id: Uuid, now_ms: i64) -> StoreResult<Message> {
        // The media goes with the content: a deleted message no longer keeps it alive.
        let sql = format!(
            "UPDATE messages SET content = '', media_id = NULL, deleted_at = $1 \
             WHERE id = $2 AND deleted_at IS NULL RETURNING {MESSAGE_COLUMNS}"
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let row = sqlx::query(&sql)
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let message = map::message(&row.ok_or(StoreError::NotFound(Entity::Message))?)?;
            SearchIndex::unindex(&mut *tx, &message).await?;
            tx.commit().await?;
            Ok(message)
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
        } else if !stored.members.contains(&(m.room_id, m.sender_id)) {
            out.push(Appended::NotMember);
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
            }));
        } else {
            out.push(Appended::NotMember);
        }
    }
    out
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
