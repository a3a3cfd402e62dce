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
use crate::store::sql::messages::{
    Stored, assign_seqs, event_json, mentions_json, mls_epoch, moved_epochs, new_messages,
};
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
    let mut versions: HashMap<Uuid, i64> = HashMap::new();
    for row in sqlx::query(
        "SELECT id, last_seq, version, mls_epoch FROM rooms WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&rooms)
    .fetch_all(&mut *tx)
    .await?
    {
        let id: Uuid = row.try_get("id")?;
        stored.last_seq.insert(id, row.try_get("last_seq")?);
        versions.insert(id, row.try_get("version")?);
        if let Some(epoch) = row.try_get::<Option<i64>, _>("mls_epoch")? {
            stored.epochs.insert(id, epoch);
        }
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
        "INSERT INTO messages (id, room_id, seq, sender_id, client_msg_id, kind, content, media_id, created_at, \
           reply_to_id, thread_root_id, also_in_room, mentions, mentions_room, event, forwarded, \
           mls_kind, mls_epoch, mls_data) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::uuid[], $9::bigint[], \
           $10::uuid[], $11::uuid[], $12::bool[], $13::text[], $14::bool[], $15::text[], $16::bool[], \
           $17::text[], $18::bigint[], $19::text[]) \
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
    .bind(&cols.reply_to_id)
    .bind(&cols.thread_root_id)
    .bind(&cols.also_in_room)
    .bind(&cols.mentions)
    .bind(&cols.mentions_room)
    .bind(&cols.event)
    .bind(&cols.forwarded)
    .bind(&cols.mls_kind)
    .bind(&cols.mls_epoch)
    .bind(&cols.mls_data)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() != new.len() as u64 {
        tx.rollback().await?;
        return Err(StoreError::Conflict(Constraint::MessageIdempotencyKey));
    }

    // 6. Who each new message mentions, for the room list's counts.
    let (mut m_users, mut m_rooms, mut m_seqs) = (Vec::new(), Vec::new(), Vec::new());
    for m in &new {
        for user in &m.mentions {
            m_users.push(*user);
            m_rooms.push(m.room_id);
            m_seqs.push(m.seq);
        }
    }
    if !m_users.is_empty() {
        sqlx::query(
            "INSERT INTO mentions (user_id, room_id, seq) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) ON CONFLICT DO NOTHING",
        )
        .bind(&m_users)
        .bind(&m_rooms)
        .bind(&m_seqs)
        .execute(&mut *tx)
        .await?;
    }

    // 7. Each thread root a reply went to: its count, last reply and the room's next
    //    change number (what SQLite's `messages_thread_reply` trigger does).
    let mut roots: HashMap<Uuid, (Uuid, i64, i64)> = HashMap::new();
    for m in new.iter().filter(|m| m.thread_root_id.is_some()) {
        if let Some(root) = m.thread_root_id {
            let entry = roots.entry(root).or_insert((m.room_id, 0, 0));
            entry.1 += 1;
            entry.2 = ms_of(m.timestamp);
        }
    }
    if !roots.is_empty() {
        let (mut ids, mut counts, mut lasts, mut stamps) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (root, (room, count, last)) in roots {
            let version = versions.entry(room).or_insert(0);
            *version += 1;
            ids.push(root);
            counts.push(count);
            lasts.push(last);
            stamps.push(*version);
        }
        sqlx::query(
            "UPDATE messages SET thread_count = thread_count + u.n, thread_last_at = u.at, version = u.v \
             FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(id, n, at, v) \
             WHERE messages.id = u.id",
        )
        .bind(&ids)
        .bind(&counts)
        .bind(&lasts)
        .bind(&stamps)
        .execute(&mut *tx)
        .await?;
    }

    // 8. Each room's last_seq, activity and change number: the last new message in it
    //    (what SQLite's trigger leaves behind). 9. Each sender's markers: sending implies
    //    having seen everything before, so they move to the sender's newest seq, and
    //    are stamped with the room's change number for `sync`.
    let mut room_last: HashMap<Uuid, (i64, i64)> = HashMap::new();
    let mut sender_last: HashMap<(Uuid, Uuid), i64> = HashMap::new();
    for m in &new {
        room_last.insert(m.room_id, (m.seq, ms_of(m.timestamp)));
        sender_last.insert((m.room_id, m.sender_id), m.seq);
    }
    let (mut ids, mut seqs, mut acts, mut room_versions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (room, (seq, at)) in room_last {
        ids.push(room);
        seqs.push(seq);
        acts.push(at);
        room_versions.push(versions.get(&room).copied().unwrap_or(0));
    }
    sqlx::query(
        "UPDATE rooms SET last_seq = u.seq, last_activity = u.at, version = u.v \
         FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(id, seq, at, v) \
         WHERE rooms.id = u.id",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&acts)
    .bind(&room_versions)
    .execute(&mut *tx)
    .await?;
    let (mut rooms, mut users, mut seqs, mut stamps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((room, user), seq) in sender_last {
        rooms.push(room);
        users.push(user);
        seqs.push(seq);
        stamps.push(versions.get(&room).copied().unwrap_or(0));
    }
    sqlx::query(
        "UPDATE members SET delivered_seq = GREATEST(delivered_seq, u.seq), read_seq = GREATEST(read_seq, u.seq), \
           receipt_version = u.v \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[]) AS u(room_id, user_id, seq, v) \
         WHERE members.room_id = u.room_id AND members.user_id = u.user_id",
    )
    .bind(&rooms)
    .bind(&users)
    .bind(&seqs)
    .bind(&stamps)
    .execute(&mut *tx)
    .await?;
    // 10. The MLS epoch of each encrypted room a commit moved (under the room lock of 1).
    let (ids, epochs): (Vec<Uuid>, Vec<i64>) = moved_epochs(&out).into_iter().unzip();
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE rooms SET mls_epoch = u.e FROM UNNEST($1::uuid[], $2::bigint[]) AS u(id, e) \
             WHERE rooms.id = u.id",
        )
        .bind(&ids)
        .bind(&epochs)
        .execute(&mut *tx)
        .await?;
    }
    SearchIndex::index(&mut *tx, &new).await?;
    tx.commit().await?;
    Ok(out)
}

/// New messages as one array per column, for `INSERT … SELECT * FROM UNNEST(…)`: one
/// statement and one parameter per column whatever the batch size.
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
    reply_to_id: Vec<Option<Uuid>>,
    thread_root_id: Vec<Option<Uuid>>,
    also_in_room: Vec<bool>,
    mentions: Vec<Option<String>>,
    mentions_room: Vec<bool>,
    event: Vec<Option<String>>,
    forwarded: Vec<bool>,
    mls_kind: Vec<Option<&'static str>>,
    mls_epoch: Vec<Option<i64>>,
    mls_data: Vec<Option<&'a str>>,
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
            reply_to_id: Vec::with_capacity(n),
            thread_root_id: Vec::with_capacity(n),
            also_in_room: Vec::with_capacity(n),
            mentions: Vec::with_capacity(n),
            mentions_room: Vec::with_capacity(n),
            event: Vec::with_capacity(n),
            forwarded: Vec::with_capacity(n),
            mls_kind: Vec::with_capacity(n),
            mls_epoch: Vec::with_capacity(n),
            mls_data: Vec::with_capacity(n),
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
        self.reply_to_id.push(m.reply_to.as_ref().map(|r| r.id));
        self.thread_root_id.push(m.thread_root_id);
        self.also_in_room.push(m.also_in_room);
        self.mentions.push(mentions_json(&m.mentions));
        self.mentions_room.push(m.mentions_room);
        self.event.push(event_json(m.event.as_ref()));
        self.forwarded.push(m.forwarded);
        self.mls_kind.push(m.mls.as_ref().map(|x| x.kind.as_str()));
        self.mls_epoch
            .push(m.mls.as_ref().map(|x| mls_epoch(x.epoch)));
        self.mls_data.push(m.mls.as_ref().map(|x| x.data.as_str()));
    }
}
