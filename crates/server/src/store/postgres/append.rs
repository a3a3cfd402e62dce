//! PostgreSQL's batch append: a fixed number of statements per batch whatever its size
//! (arrays, not one statement per message), safe with several nodes appending at once.
//!
//! Lock the batch's rooms; read members and stored idempotency keys (after the lock, so
//! they include everything other nodes committed to those rooms); decide in memory
//! (`assign_seqs`, as on SQLite); one `INSERT … SELECT FROM UNNEST(…)`; move `last_seq`
//! and the senders' markers (what SQLite's trigger does); commit. One commit, one WAL
//! flush.

use std::collections::{BTreeSet, HashMap};

use palaver_proto::Message;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::store::sql::map::{self, MESSAGE_COLUMNS};
use crate::store::sql::messages::{Stored, assign_seqs, new_messages};
use crate::store::sql::ms_of;
use crate::store::sql::search::SearchIndex;
use crate::store::{Appended, Constraint, NewMessage, StoreError, StoreResult};

pub(super) async fn append(pool: &PgPool, batch: &[NewMessage]) -> StoreResult<Vec<Appended>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;

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
    let mut stored = Stored::default();
    for row in sqlx::query(
        "SELECT id, last_seq FROM rooms WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&rooms)
    .fetch_all(&mut *tx)
    .await?
    {
        stored
            .last_seq
            .insert(row.try_get("id")?, row.try_get("last_seq")?);
    }

    // 2. Which senders are members.
    let (room_ids, sender_ids): (Vec<Uuid>, Vec<Uuid>) =
        batch.iter().map(|m| (m.room_id, m.sender_id)).unzip();
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
        stored
            .members
            .insert((row.try_get("room_id")?, row.try_get("user_id")?));
    }

    // 3. Which idempotency keys are already stored (by this node or another).
    let keys: Vec<&str> = batch.iter().map(|m| m.client_msg_id.as_str()).collect();
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
        stored.add_existing(map::message(&row)?);
    }

    // 4. In memory, as on SQLite: duplicate, not a member, or the room's next seq.
    let out = assign_seqs(batch, stored);
    let new = new_messages(&out);
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
    SearchIndex::index(&mut *tx, &new).await?;
    tx.commit().await?;
    Ok(out)
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
