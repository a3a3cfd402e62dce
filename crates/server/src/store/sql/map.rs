//! Rows into values, for both engines: the column lists and the mappers that read them.

use palaver_proto::{
    MemberState, Message, MessageStatus, MessageType, MlsContent, MlsKind, NotificationLevel,
    NotificationPreview, ReplyTo, Role, ThreadSummary, User,
};

use super::Columns;
use crate::clock::to_time;
use crate::store::{
    Markers, MediaRow, MemberRow, Picture, PushSubscriptionRow, RoomRow, StoreError, StoreResult,
};

pub(in crate::store) const USER_COLUMNS: &str = "id, username, display_name, created_at";
pub(in crate::store) const MESSAGE_COLUMNS: &str = "id, room_id, seq, sender_id, client_msg_id, kind, content, media_id, created_at, edited_at, deleted_at, \
     version, reply_to_id, thread_root_id, also_in_room, thread_count, thread_last_at, mentions, mentions_room, pinned_at, event, forwarded, \
     mls_kind, mls_epoch, mls_data";
/// A room's columns, read from [`ROOMS`] (which names the room `r`).
pub(super) const ROOM_COLUMNS: &str = "r.id, r.name, r.is_group, r.direct_key, r.created_at, \
     r.last_seq, r.last_activity, r.version, r.state_version, r.picture_media_id, p.thumb_sha256 AS picture_thumb, \
     r.mls_epoch";
/// Rooms with their picture's record, for [`ROOM_COLUMNS`].
pub(super) const ROOMS: &str = "rooms r LEFT JOIN media p ON p.id = r.picture_media_id";
pub(super) const MEDIA_COLUMNS: &str = "id, uploader_id, sha256, kind, mime_type, size, filename, width, height, thumb_sha256, thumb_mime, created_at, thumb_size";
pub(super) const PUSH_COLUMNS: &str = "id, user_id, endpoint, p256dh, auth, created_at, session_id";

pub(in crate::store) fn user(row: &impl Columns) -> StoreResult<User> {
    Ok(User {
        id: row.col("id")?,
        username: row.col("username")?,
        display_name: row.col("display_name")?,
        created_at: to_time(row.col("created_at")?),
        // A signed link: the service's to fill in (`Core::attach_avatars`).
        avatar_url: None,
    })
}

/// A stored message; its status is the service's to fill in, its media description too.
pub(in crate::store) fn message(row: &impl Columns) -> StoreResult<Message> {
    let deleted_at: Option<i64> = row.col("deleted_at")?;
    let thread_count: i64 = row.col("thread_count")?;
    let thread_last_at: Option<i64> = row.col("thread_last_at")?;
    Ok(Message {
        id: row.col("id")?,
        room_id: row.col("room_id")?,
        sender_id: row.col("sender_id")?,
        seq: row.col("seq")?,
        kind: kind(row, "message")?,
        content: row.col("content")?,
        media_id: row.col("media_id")?,
        media: None,
        client_msg_id: row.col("client_msg_id")?,
        timestamp: to_time(row.col("created_at")?),
        status: MessageStatus::Sent,
        edited_at: row.col::<Option<i64>>("edited_at")?.map(to_time),
        deleted: deleted_at.is_some(),
        // Only the id: the service completes the quote from the quoted message.
        reply_to: row
            .col::<Option<uuid::Uuid>>("reply_to_id")?
            .map(|id| ReplyTo {
                id,
                sender_id: uuid::Uuid::nil(),
                preview: String::new(),
                deleted: false,
            }),
        thread_root_id: row.col("thread_root_id")?,
        also_in_room: row.col("also_in_room")?,
        // The participants are the service's to fill in.
        thread: match (thread_count, thread_last_at) {
            (n, Some(at)) if n > 0 => Some(ThreadSummary {
                reply_count: n,
                last_reply_at: to_time(at),
                participant_ids: Vec::new(),
            }),
            _ => None,
        },
        reactions: Vec::new(),
        mentions: match row.col::<Option<String>>("mentions")? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("mentions {json:?}: {e}")))?,
            None => Vec::new(),
        },
        mentions_room: row.col("mentions_room")?,
        pinned: row.col::<Option<i64>>("pinned_at")?.is_some(),
        forwarded: row.col("forwarded")?,
        event: match row.col::<Option<String>>("event")? {
            Some(json) => Some(
                serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("event {json:?}: {e}")))?,
            ),
            None => None,
        },
        version: row.col("version")?,
        // Kept apart (`message_previews`): the service's to fill in.
        link_preview: None,
        mls: mls(row)?,
    })
}

/// The MLS part of a message row: all three columns, or none (a plain message, or a
/// deleted MLS one).
fn mls(row: &impl Columns) -> StoreResult<Option<MlsContent>> {
    let kind: Option<String> = row.col("mls_kind")?;
    let epoch: Option<i64> = row.col("mls_epoch")?;
    let data: Option<String> = row.col("mls_data")?;
    let (Some(kind), Some(epoch), Some(data)) = (kind, epoch, data) else {
        return Ok(None);
    };
    Ok(Some(MlsContent {
        kind: MlsKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("mls kind {kind:?}")))?,
        epoch: u64::try_from(epoch)
            .map_err(|_| StoreError::Corrupt(format!("mls epoch {epoch}")))?,
        data,
    }))
}

pub(super) fn room(row: &impl Columns) -> StoreResult<RoomRow> {
    Ok(RoomRow {
        id: row.col("id")?,
        name: row.col("name")?,
        is_group: row.col("is_group")?,
        direct_key: row.col("direct_key")?,
        created_at_ms: row.col("created_at")?,
        last_seq: row.col("last_seq")?,
        last_activity_ms: row.col("last_activity")?,
        version: row.col("version")?,
        state_version: row.col("state_version")?,
        picture: picture(row, "picture_media_id", "picture_thumb")?,
        mls_epoch: row
            .col::<Option<i64>>("mls_epoch")?
            .map(|e| u64::try_from(e).unwrap_or(0)),
    })
}

/// A picture from its record's id column and that record's `thumb_sha256` (NULL when it
/// has no thumbnail), as a LEFT JOIN reads them.
pub(super) fn picture(row: &impl Columns, id: &str, thumb: &str) -> StoreResult<Option<Picture>> {
    let Some(media_id) = row.col::<Option<uuid::Uuid>>(id)? else {
        return Ok(None);
    };
    Ok(Some(Picture {
        media_id,
        thumbnail: row.col::<Option<String>>(thumb)?.is_some(),
    }))
}

pub(super) fn member(row: &impl Columns) -> StoreResult<MemberRow> {
    let role: String = row.col("role")?;
    Ok(MemberRow {
        room_id: row.col("room_id")?,
        user_id: row.col("user_id")?,
        username: row.col("username")?,
        display_name: row.col("display_name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        joined_at_ms: row.col("joined_at")?,
        delivered_seq: row.col("delivered_seq")?,
        read_seq: row.col("read_seq")?,
        state: member_state(row)?,
        invited_by: row.col("invited_by")?,
        receipt_version: row.col("receipt_version")?,
        avatar: picture(row, "avatar_media_id", "avatar_thumb")?,
    })
}

/// A member's `state` column.
pub(super) fn member_state(row: &impl Columns) -> StoreResult<MemberState> {
    let state: String = row.col("state")?;
    MemberState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("member state {state:?}")))
}

/// A member's `notify_level` column.
pub(super) fn notification_level(row: &impl Columns) -> StoreResult<NotificationLevel> {
    let level: String = row.col("notify_level")?;
    NotificationLevel::parse(&level)
        .ok_or_else(|| StoreError::Corrupt(format!("notify level {level:?}")))
}

/// A pair of markers, from columns named like `Markers`' fields.
pub(super) fn markers(row: &impl Columns) -> StoreResult<Markers> {
    Ok(Markers {
        delivered_seq: row.col("delivered_seq")?,
        read_seq: row.col("read_seq")?,
    })
}

pub(super) fn media(row: &impl Columns) -> StoreResult<MediaRow> {
    let dimension = |column: &str| -> StoreResult<Option<u32>> {
        row.col::<Option<i64>>(column)?
            .map(|v| u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column} {v}"))))
            .transpose()
    };
    let size = |column: &str| -> StoreResult<Option<u64>> {
        row.col::<Option<i64>>(column)?
            .map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column} {v}"))))
            .transpose()
    };
    Ok(MediaRow {
        id: row.col("id")?,
        uploader_id: row.col("uploader_id")?,
        sha256: row.col("sha256")?,
        kind: kind(row, "media")?,
        mime_type: row.col("mime_type")?,
        size: size("size")?.ok_or_else(|| StoreError::Corrupt("size NULL".into()))?,
        filename: row.col("filename")?,
        width: dimension("width")?,
        height: dimension("height")?,
        thumb_sha256: row.col("thumb_sha256")?,
        thumb_mime: row.col("thumb_mime")?,
        thumb_size: size("thumb_size")?,
        created_at_ms: row.col("created_at")?,
    })
}

pub(super) fn push_subscription(row: &impl Columns) -> StoreResult<PushSubscriptionRow> {
    Ok(PushSubscriptionRow {
        id: row.col("id")?,
        user_id: row.col("user_id")?,
        endpoint: row.col("endpoint")?,
        p256dh: row.col("p256dh")?,
        auth: row.col("auth")?,
        created_at_ms: row.col("created_at")?,
        session_id: row.col("session_id")?,
    })
}

pub(super) fn preview(row: &impl Columns) -> StoreResult<NotificationPreview> {
    let s: String = row.col("notification_preview")?;
    NotificationPreview::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("preview {s:?}")))
}

/// The `kind` column of a message or media row.
fn kind(row: &impl Columns, of: &str) -> StoreResult<MessageType> {
    let kind: String = row.col("kind")?;
    MessageType::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("{of} kind {kind:?}")))
}
