-- Conversations: replies, threads, reactions, mentions, pins, room events in the
-- timeline, per-room notification levels, and the change numbers that let `sync` replay
-- every change a client missed. The same columns and tables as SQLite's 0008, whose
-- comments say what each holds; what SQLite's triggers do there, the PostgreSQL batch
-- append does here (store/postgres/append.rs).

ALTER TABLE rooms ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN state_version bigint NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN receipt_version bigint NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN notify_level text NOT NULL DEFAULT 'all'
    CHECK (notify_level IN ('all', 'mentions', 'nothing'));
UPDATE members SET notify_level = 'nothing' WHERE muted;
ALTER TABLE members DROP COLUMN muted;

ALTER TABLE messages ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reply_to_id uuid;
ALTER TABLE messages ADD COLUMN thread_root_id uuid;
ALTER TABLE messages ADD COLUMN also_in_room boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN thread_count bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_last_at bigint;
ALTER TABLE messages ADD COLUMN mentions text;
ALTER TABLE messages ADD COLUMN mentions_room boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN pinned_at bigint;
ALTER TABLE messages ADD COLUMN pinned_by uuid;
ALTER TABLE messages ADD COLUMN event text;
ALTER TABLE messages ADD COLUMN forwarded boolean NOT NULL DEFAULT false;

CREATE INDEX messages_changed ON messages (room_id, version) WHERE version > 0;
CREATE INDEX messages_thread ON messages (thread_root_id, seq) WHERE thread_root_id IS NOT NULL;
CREATE INDEX messages_replies ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;
CREATE INDEX messages_pinned ON messages (room_id, pinned_at) WHERE pinned_at IS NOT NULL;
CREATE INDEX messages_mentions_room ON messages (room_id, seq) WHERE mentions_room;

CREATE TABLE reactions (
    message_id uuid NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id),
    emoji      text NOT NULL,
    room_id    uuid NOT NULL REFERENCES rooms (id),
    created_at bigint NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

CREATE TABLE mentions (
    user_id uuid NOT NULL REFERENCES users (id),
    room_id uuid NOT NULL REFERENCES rooms (id),
    seq     bigint NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
);
