-- Conversations: replies, threads, reactions, mentions, pins, room events in the
-- timeline, per-room notification levels, and the change numbers that let `sync` replay
-- every change a client missed (docs/PROTOCOL.md, "Resume").

-- A room's change number. A new message is covered by its seq; every later change in the
-- room (an edit, a deletion, a reaction, a pin, a thread's count, the room's name or
-- members) takes the room's next `version`. A message keeps the number of its last
-- change (0: never changed), the room the number of its last change of state.
ALTER TABLE rooms ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN state_version INTEGER NOT NULL DEFAULT 0;
-- Receipts move too often to take a number each: a member's row is stamped with the
-- room's number when their markers move, and `sync` replays markers stamped at or after
-- the client's number.
ALTER TABLE members ADD COLUMN receipt_version INTEGER NOT NULL DEFAULT 0;
-- What notifies the member: every message, only mentions of them, or nothing. Replaces
-- the mute flag (a muted room notified of nothing).
ALTER TABLE members ADD COLUMN notify_level TEXT NOT NULL DEFAULT 'all'
    CHECK (notify_level IN ('all', 'mentions', 'nothing'));
UPDATE members SET notify_level = 'nothing' WHERE muted = 1;
ALTER TABLE members DROP COLUMN muted;

ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
-- The message this one quotes (same room).
ALTER TABLE messages ADD COLUMN reply_to_id BLOB;
-- The thread this message replies in (same room; a root is never itself a reply), and
-- whether it was also shown in the room.
ALTER TABLE messages ADD COLUMN thread_root_id BLOB;
ALTER TABLE messages ADD COLUMN also_in_room INTEGER NOT NULL DEFAULT 0;
-- On a thread's root: how many replies it has and when the last came.
ALTER TABLE messages ADD COLUMN thread_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_last_at INTEGER;
-- The users the text mentions (a JSON array of ids), and whether it mentions @room.
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE messages ADD COLUMN mentions_room INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN pinned_at INTEGER;
ALTER TABLE messages ADD COLUMN pinned_by BLOB;
-- A room event (kind 'event': created, renamed, members added or removed…), as JSON.
ALTER TABLE messages ADD COLUMN event TEXT;
ALTER TABLE messages ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0;

-- What `sync` replays: the room's messages changed after a number.
CREATE INDEX messages_changed ON messages (room_id, version) WHERE version > 0;
CREATE INDEX messages_thread ON messages (thread_root_id, seq) WHERE thread_root_id IS NOT NULL;
CREATE INDEX messages_replies ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;
CREATE INDEX messages_pinned ON messages (room_id, pinned_at) WHERE pinned_at IS NOT NULL;

-- One row per (message, user, emoji): adding the same reaction twice changes nothing.
CREATE TABLE reactions (
    message_id BLOB NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id),
    emoji      TEXT NOT NULL,
    room_id    BLOB NOT NULL REFERENCES rooms (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
) STRICT, WITHOUT ROWID;

-- Who a message mentions, by seq: the room list's count of unread mentions.
CREATE TABLE mentions (
    user_id BLOB NOT NULL REFERENCES users (id),
    room_id BLOB NOT NULL REFERENCES rooms (id),
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX messages_mentions_room ON messages (room_id, seq) WHERE mentions_room = 1;

-- A thread reply moves its root's count and takes the room's next change number for it,
-- inside SQLite, like `messages_appended`. A message's sender's markers move on append
-- (that trigger), so their row is stamped for `sync` here too.
CREATE TRIGGER messages_thread_reply AFTER INSERT ON messages
WHEN NEW.thread_root_id IS NOT NULL
BEGIN
    UPDATE rooms SET version = version + 1 WHERE id = NEW.room_id;
    UPDATE messages SET thread_count = thread_count + 1, thread_last_at = NEW.created_at,
           version = (SELECT version FROM rooms WHERE id = NEW.room_id)
     WHERE id = NEW.thread_root_id;
END;
CREATE TRIGGER messages_sender_stamped AFTER INSERT ON messages
BEGIN
    UPDATE members SET receipt_version = (SELECT version FROM rooms WHERE id = NEW.room_id)
     WHERE room_id = NEW.room_id AND user_id = NEW.sender_id;
END;
