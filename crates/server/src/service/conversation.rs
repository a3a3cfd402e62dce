//! Replies, threads, reactions, mentions, pins and forwards: their rules, and how a
//! message read from the store is completed for its reader.
//!
//! A message as stored keeps only ids for what it points at (the quoted message) and
//! counts for what points at it (a thread's replies); its reactions live in their own
//! table. `complete` fills all of that in for a page at a time, so every path that shows
//! messages (history, sync, search, threads, pins, live updates) shows the same thing.

use std::collections::HashMap;

use palaver_proto::{
    EventUser, ForwardRequest, Message, MessageType, Reaction, ReplyTo, Role, RoomEvent,
    RoomEventKind, SendMessageRequest, ServerFrame,
};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::messages::Sent;
use super::{Core, Identity, ServiceError, ServiceResult};
use crate::bus::Audience;
use crate::cache::RateBucket;
use crate::clock::now_ms;
use crate::domain::{mentioned_names, preview, reaction_emoji};
use crate::store::{Changed, Reacting, Toggled};

/// Distinct emojis one message may carry.
pub const MAX_EMOJIS_PER_MESSAGE: u32 = 20;
/// Pinned messages one room may hold.
pub const MAX_PINS_PER_ROOM: u32 = 50;
/// People one message may mention (further names are left as text).
pub const MAX_MENTIONS: usize = 50;
/// Participants a thread's summary names.
const THREAD_PARTICIPANTS: u32 = 10;
/// The name that mentions everyone in a group (owners and admins only).
const ROOM_MENTION: &str = "room";

/// What a send adds to a message besides its content: checked and resolved.
pub(super) struct Extras {
    pub reply_to: Option<ReplyTo>,
    pub thread_root_id: Option<Uuid>,
    pub also_in_room: bool,
    pub mentions: Vec<Uuid>,
    pub mentions_room: bool,
}

/// The quote of a message, as a reply shows it now.
fn quote_of(m: &Message) -> ReplyTo {
    let text = if m.deleted {
        String::new()
    } else if m.content.trim().is_empty() {
        m.media
            .as_ref()
            .map(|media| media.filename.clone())
            .unwrap_or_default()
    } else {
        preview(&m.content)
    };
    ReplyTo {
        id: m.id,
        sender_id: m.sender_id,
        preview: text,
        deleted: m.deleted,
    }
}

impl Core {
    /// Checks the reply and thread a send names (messages of the same room the caller can
    /// read; a thread's root is not itself a thread reply) and resolves its mentions.
    pub(super) async fn extras(
        &self,
        who: Identity,
        req: &SendMessageRequest,
        content: &str,
    ) -> ServiceResult<Extras> {
        let mut reply_to = None;
        if let Some(id) = req.reply_to_id {
            let quoted = self.message(who, id).await?;
            if quoted.room_id != req.room_id {
                return Err(ServiceError::CrossRoom("replyToId"));
            }
            reply_to = Some(quote_of(&quoted));
        }
        if let Some(id) = req.thread_root_id {
            let root = self.message(who, id).await?;
            if root.room_id != req.room_id {
                return Err(ServiceError::CrossRoom("threadRootId"));
            }
            if root.thread_root_id.is_some() {
                return Err(ServiceError::NestedThread);
            }
            if root.kind == MessageType::Event {
                return Err(ServiceError::Validation(
                    "a room event cannot start a thread".into(),
                ));
            }
        } else if req.also_in_room {
            return Err(ServiceError::Validation(
                "alsoInRoom needs a threadRootId".into(),
            ));
        }
        let (mentions, mentions_room) = self.mentions(who.user_id, req.room_id, content).await?;
        Ok(Extras {
            reply_to,
            thread_root_id: req.thread_root_id,
            also_in_room: req.also_in_room,
            mentions,
            mentions_room,
        })
    }

    /// The members a text mentions by `@username` (never the sender), and whether it
    /// mentions `@room`, which only a group's owner or admin may.
    pub(super) async fn mentions(
        &self,
        sender: Uuid,
        room: Uuid,
        content: &str,
    ) -> ServiceResult<(Vec<Uuid>, bool)> {
        let names = mentioned_names(content, MAX_MENTIONS + 1);
        if names.is_empty() {
            return Ok((Vec::new(), false));
        }
        let members = self.store.members(room).await?;
        let sender_role = members.iter().find(|m| m.user_id == sender).map(|m| m.role);
        let is_group = self.store.room(room).await?.is_some_and(|r| r.is_group);
        let mentions_room = names.iter().any(|n| n == ROOM_MENTION)
            && is_group
            && matches!(sender_role, Some(Role::Owner | Role::Admin));
        let ids = names
            .iter()
            .filter_map(|name| members.iter().find(|m| &m.username == name))
            .map(|m| m.user_id)
            .filter(|id| *id != sender)
            .take(MAX_MENTIONS)
            .collect();
        Ok((ids, mentions_room))
    }

    /// Fills in what the store keeps apart from a message: its media, link preview, the
    /// quote of the message it replies to, its reactions and its thread's participants.
    pub(crate) async fn complete(&self, messages: &mut [Message]) -> ServiceResult<()> {
        if messages.is_empty() {
            return Ok(());
        }
        self.attach_media(messages).await?;
        self.attach_previews(messages).await?;
        let quoted: Vec<Uuid> = messages
            .iter()
            .filter_map(|m| m.reply_to.as_ref().map(|r| r.id))
            .collect();
        if !quoted.is_empty() {
            let mut found = self.store.messages_with_ids(&quoted).await?;
            self.attach_media(&mut found).await?;
            let by_id: HashMap<Uuid, &Message> = found.iter().map(|m| (m.id, m)).collect();
            for m in messages.iter_mut() {
                if let Some(reply) = &mut m.reply_to
                    && let Some(q) = by_id.get(&reply.id)
                {
                    *reply = quote_of(q);
                }
            }
        }
        let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
        let reactions = self.store.reactions_of(&ids).await?;
        if !reactions.is_empty() {
            let mut by_message: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
            for r in reactions {
                let list = by_message.entry(r.message_id).or_default();
                match list.iter_mut().find(|x| x.emoji == r.emoji) {
                    Some(x) => {
                        x.count += 1;
                        x.user_ids.push(r.user_id);
                    }
                    None => list.push(Reaction {
                        emoji: r.emoji,
                        count: 1,
                        user_ids: vec![r.user_id],
                    }),
                }
            }
            for m in messages.iter_mut() {
                if let Some(list) = by_message.remove(&m.id) {
                    m.reactions = list;
                }
            }
        }
        for m in messages.iter_mut() {
            if let Some(thread) = &mut m.thread {
                thread.participant_ids = self
                    .store
                    .thread_participants(m.id, THREAD_PARTICIPANTS)
                    .await?;
            }
        }
        Ok(())
    }

    /// Tells a room's members that these of its messages changed: each as it is now.
    pub(crate) async fn announce_changed(
        &self,
        room: Uuid,
        ids: &[Uuid],
        origin_conn: Option<Uuid>,
    ) -> ServiceResult<()> {
        let changed = self.store.messages_with_ids(ids).await?;
        let changed = self.with_status(room, changed).await?;
        for message in changed.into_iter().filter(|m| m.room_id == room) {
            let frame = if message.deleted {
                ServerFrame::MessageDeleted { message }
            } else {
                ServerFrame::MessageUpdated { message }
            };
            self.deliver(Audience::Room(room), &frame, origin_conn)
                .await?;
        }
        Ok(())
    }

    /// After an edit or deletion: the message as it is now, told to the room with the
    /// replies quoting it.
    pub(super) async fn changed(
        &self,
        changed: Changed,
        origin_conn: Option<Uuid>,
    ) -> ServiceResult<Message> {
        let room = changed.message.room_id;
        let message = self
            .with_status(room, vec![changed.message])
            .await?
            .pop()
            .ok_or(ServiceError::MessageNotFound)?;
        let frame = if message.deleted {
            ServerFrame::MessageDeleted {
                message: message.clone(),
            }
        } else {
            ServerFrame::MessageUpdated {
                message: message.clone(),
            }
        };
        self.deliver(Audience::Room(room), &frame, origin_conn)
            .await?;
        if !changed.replies.is_empty() {
            self.announce_changed(room, &changed.replies, None).await?;
        }
        Ok(message)
    }

    /// Adds (`add`) or removes the caller's reaction on a message. Idempotent: adding a
    /// reaction that is there, or removing one that is not, changes nothing and answers
    /// the message as it is.
    pub async fn react(
        &self,
        who: Identity,
        message: Uuid,
        emoji: &str,
        add: bool,
    ) -> ServiceResult<Message> {
        let emoji = reaction_emoji(emoji).ok_or_else(|| {
            ServiceError::InvalidEmoji(
                "a reaction is one emoji, or a short code such as :thumbsup:".into(),
            )
        })?;
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let target = self.message(who, message).await?;
        self.require_joined(target.room_id, who.user_id)?;
        self.require_plain(target.room_id, super::mls::IN_MLS)
            .await?;
        if target.deleted {
            return Err(ServiceError::Conflict("the message is deleted"));
        }
        if target.kind == MessageType::Event {
            return Err(ServiceError::Validation(
                "a room event takes no reactions".into(),
            ));
        }
        let toggled = self
            .store
            .set_reaction(
                Reacting {
                    room: target.room_id,
                    message,
                    user: who.user_id,
                    emoji,
                },
                add,
                MAX_EMOJIS_PER_MESSAGE,
                now_ms(),
            )
            .await?;
        self.toggled(
            target.room_id,
            message,
            toggled,
            "a message carries at most 20 different reactions",
        )
        .await
    }

    /// Pins or unpins a message: a group's owners and admins may, and both people of a
    /// 1:1 room.
    pub async fn pin(
        &self,
        who: Identity,
        room: Uuid,
        message: Uuid,
        pin: bool,
    ) -> ServiceResult<Message> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let (row, _, role) = self.member_room(who, room).await?;
        self.require_plain(room, super::mls::IN_MLS).await?;
        if row.is_group && role == Role::Member {
            return Err(ServiceError::Forbidden(
                "only an owner or admin may pin messages in a group",
            ));
        }
        let target = self.message(who, message).await?;
        if target.room_id != room {
            return Err(ServiceError::MessageNotFound);
        }
        if target.kind == MessageType::Event {
            return Err(ServiceError::Validation(
                "a room event cannot be pinned".into(),
            ));
        }
        let toggled = self
            .store
            .set_pinned(
                room,
                message,
                pin.then_some(who.user_id),
                MAX_PINS_PER_ROOM,
                now_ms(),
            )
            .await?;
        self.toggled(room, message, toggled, "a room holds at most 50 pins")
            .await
    }

    /// The answer to a reaction or pin: the message as it is, announced if it changed.
    async fn toggled(
        &self,
        room: Uuid,
        message: Uuid,
        toggled: Toggled,
        full: &'static str,
    ) -> ServiceResult<Message> {
        match toggled {
            Toggled::Changed(_) => self.announce_changed(room, &[message], None).await?,
            Toggled::Unchanged => {}
            Toggled::Full => return Err(ServiceError::LimitReached(full)),
            Toggled::Missing => return Err(ServiceError::MessageNotFound),
        }
        let found = self.store.messages_with_ids(&[message]).await?;
        self.with_status(room, found)
            .await?
            .pop()
            .ok_or(ServiceError::MessageNotFound)
    }

    /// The room's pinned messages, the most recently pinned first.
    pub async fn pins(&self, who: Identity, room: Uuid) -> ServiceResult<Vec<Message>> {
        self.require_member(room, who.user_id)?;
        let pins = self.store.pins(room).await?;
        self.with_status(room, pins).await
    }

    /// A thread's replies in ascending seq (the root itself is not among them).
    pub async fn thread(
        &self,
        who: Identity,
        root: Uuid,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> ServiceResult<Vec<Message>> {
        let limit = limit.unwrap_or(100);
        if !(1..=200).contains(&limit) {
            return Err(ServiceError::Validation("limit must be 1 to 200".into()));
        }
        if after.is_some_and(|a| a < 0) {
            return Err(ServiceError::Validation("after must be at least 0".into()));
        }
        let root = self.message(who, root).await?;
        if root.thread_root_id.is_some() {
            return Err(ServiceError::NestedThread);
        }
        let replies = self
            .store
            .thread(root.id, after.unwrap_or(0), limit)
            .await?;
        self.with_status(root.room_id, replies).await
    }

    /// Sends a copy of a message (its text and media, marked forwarded) to another room
    /// the caller may send to.
    pub async fn forward(
        &self,
        who: Identity,
        message: Uuid,
        req: ForwardRequest,
    ) -> ServiceResult<Sent> {
        let original = self.message(who, message).await?;
        self.require_plain(original.room_id, super::mls::IN_MLS)
            .await?;
        if original.deleted {
            return Err(ServiceError::Conflict("the message is deleted"));
        }
        if original.kind == MessageType::Event {
            return Err(ServiceError::Validation(
                "a room event cannot be forwarded".into(),
            ));
        }
        let send = SendMessageRequest {
            room_id: req.room_id,
            client_msg_id: req.client_msg_id,
            content: original.content,
            kind: original.kind,
            media_id: original.media_id,
            ..Default::default()
        };
        self.send_forwarded(who, send).await
    }
}

/// What a room event records: its kind, whom it names, and the group's new name or the
/// new role where that is what changed.
pub(super) struct GroupChange<'a> {
    pub kind: RoomEventKind,
    pub users: &'a [Uuid],
    pub name: Option<String>,
    pub role: Option<Role>,
}

impl GroupChange<'_> {
    /// A change naming nobody.
    pub fn of(kind: RoomEventKind) -> GroupChange<'static> {
        GroupChange {
            kind,
            users: &[],
            name: None,
            role: None,
        }
    }
}

impl Core {
    /// Puts a room event in a group's timeline, in `actor`'s name, naming `users` as
    /// they are called now. A 1:1 room has none. The change it records is made already,
    /// so a failure to store the event is logged, not returned.
    pub(super) async fn group_event(
        &self,
        room: Uuid,
        is_group: bool,
        actor: Uuid,
        change: GroupChange<'_>,
    ) {
        if !is_group {
            return;
        }
        let GroupChange {
            kind,
            users,
            name,
            role,
        } = change;
        let outcome = async {
            let mut ids = users.to_vec();
            ids.push(actor);
            let found = self.store.users(&ids).await?;
            let name_of = |id: Uuid| {
                found
                    .iter()
                    .find(|u| u.id == id)
                    .map(|u| u.display_name.clone())
                    .unwrap_or_default()
            };
            let event = RoomEvent {
                kind,
                sender_name: name_of(actor),
                users: users
                    .iter()
                    .map(|id| EventUser {
                        id: *id,
                        display_name: name_of(*id),
                    })
                    .collect(),
                name,
                role,
            };
            self.room_event(room, actor, event).await
        };
        if let Err(err) = outcome.await {
            tracing::warn!(%err, %room, ?kind, "could not store a room event");
        }
    }
}

/// Announces thread roots whose counts the message writer just moved, as they are now.
/// Ends when the writer, the only sender, is drained.
pub(super) async fn announce_threads(
    core: std::sync::Arc<Core>,
    mut roots: mpsc::Receiver<Vec<(Uuid, Uuid)>>,
) {
    while let Some(batch) = roots.recv().await {
        let mut by_room: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (room, root) in batch {
            let list = by_room.entry(room).or_default();
            if !list.contains(&root) {
                list.push(root);
            }
        }
        for (room, ids) in by_room {
            if let Err(err) = core.announce_changed(room, &ids, None).await {
                // The store has the count: clients see it at their next sync or fetch.
                tracing::warn!(%err, %room, "could not announce a thread's new count");
            }
        }
    }
}
