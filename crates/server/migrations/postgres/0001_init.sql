-- Palaver's schema on PostgreSQL: the same tables as migrations/sqlite (0001-0004 folded
-- into one file, since this engine starts fresh) with native types. Ids are `uuid` (v7,
-- they sort by time); instants stay integer milliseconds since the Unix epoch, UTC
-- (BIGINT), exactly as on SQLite, so both engines share one conversion (clock.rs).
--
-- Everything is created in the connection's search_path: a store opened with a schema
-- name lives entirely inside that schema (tests use one schema each).

CREATE TABLE users (
    id                   uuid PRIMARY KEY,
    username             text NOT NULL UNIQUE,   -- stored lowercase: names are case-insensitive
    display_name         text NOT NULL,
    password_hash        text NOT NULL,          -- argon2id PHC string
    created_at           bigint NOT NULL,
    last_seen_at         bigint,                 -- set when the last connection closes
    -- How much a notification may show: full / sender / none.
    notification_preview text NOT NULL DEFAULT 'sender'
        CHECK (notification_preview IN ('full', 'sender', 'none'))
);
-- Prefix search (`LIKE 'abc%'`) can use a btree only with pattern ops, whatever the
-- database's collation is.
CREATE INDEX users_username_prefix ON users (username text_pattern_ops);
CREATE INDEX users_display_name_prefix ON users (lower(display_name) text_pattern_ops);

-- A login on one device. Access tokens carry the session id, so ending the session
-- ends them too; refresh tokens rotate inside a session.
CREATE TABLE sessions (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    created_at  bigint NOT NULL,
    revoked_at  bigint
);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Only the SHA-256 of a refresh token is kept. A token is used once; presenting a used
-- one again means it was stolen, and ends the whole session.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id),
    expires_at  bigint NOT NULL,
    used_at     bigint
);

-- The room row is also the lock that orders a room's messages: an append takes it
-- (SELECT … FOR NO KEY UPDATE) before reading last_seq, so nodes writing to one room at once
-- queue on it and seqs stay gap-free.
CREATE TABLE rooms (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,                 -- empty for 1:1 rooms
    is_group      boolean NOT NULL,
    direct_key    text UNIQUE,                   -- "smaller-uuid:larger-uuid" for 1:1 rooms: one per pair
    created_at    bigint NOT NULL,
    last_seq      bigint NOT NULL DEFAULT 0,     -- the seq of the newest message; the next is last_seq + 1
    last_activity bigint NOT NULL
);

CREATE TABLE members (
    room_id       uuid NOT NULL REFERENCES rooms (id),
    user_id       uuid NOT NULL REFERENCES users (id),
    role          text NOT NULL,                 -- owner / admin / member
    joined_at     bigint NOT NULL,
    delivered_seq bigint NOT NULL DEFAULT 0,     -- receipts are watermarks: everything up to here
    read_seq      bigint NOT NULL DEFAULT 0,
    muted         boolean NOT NULL DEFAULT false, -- a mute belongs to the membership
    PRIMARY KEY (room_id, user_id)
);
-- A user's room list.
CREATE INDEX members_user ON members (user_id);

-- Keyed by room so the table can later be partitioned by hash of room_id
-- (docs/SCALING.md): the primary key and every unique index lead with room_id, which a
-- partitioned table requires of them. For the same reason `id` has a plain index, not a
-- unique one (a unique index on id alone cannot exist across partitions); ids are UUID
-- v7 minted by the server, and nothing refers to a message by a foreign key.
CREATE TABLE messages (
    room_id       uuid NOT NULL REFERENCES rooms (id),
    seq           bigint NOT NULL,
    id            uuid NOT NULL,
    sender_id     uuid NOT NULL REFERENCES users (id),
    client_msg_id text NOT NULL,
    kind          text NOT NULL,
    content       text NOT NULL,
    media_id      uuid,
    created_at    bigint NOT NULL,
    edited_at     bigint,
    deleted_at    bigint,
    -- The gap-free order of a room, which is also the history page index.
    PRIMARY KEY (room_id, seq),
    -- The idempotency key: the same clientMsgId sent to two nodes is one message
    -- (INSERT … ON CONFLICT DO NOTHING relies on it).
    CONSTRAINT messages_idempotency UNIQUE (room_id, sender_id, client_msg_id)
);
CREATE INDEX messages_id ON messages (id);
-- Who may fetch a media object: members of the rooms where a message carries it.
CREATE INDEX messages_media ON messages (media_id) WHERE media_id IS NOT NULL;

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      bigint NOT NULL,
    actor   uuid,
    action  text NOT NULL,
    target  text,
    detail  text
);

-- Uploaded files. The bytes live in the media store under their SHA-256, so the same
-- file uploaded twice is stored once; each upload still gets its own record, which is
-- what access rules and orphan collection work on.
CREATE TABLE media (
    id            uuid PRIMARY KEY,
    uploader_id   uuid NOT NULL REFERENCES users (id),
    sha256        text NOT NULL,
    kind          text NOT NULL,                 -- image | video | audio | file
    mime_type     text NOT NULL,                 -- sniffed from the bytes
    size          bigint NOT NULL,
    filename      text NOT NULL,
    width         bigint,
    height        bigint,
    thumb_sha256  text,
    thumb_mime    text,
    created_at    bigint NOT NULL
);
CREATE INDEX media_sha256 ON media (sha256);
CREATE INDEX media_thumb_sha256 ON media (thumb_sha256) WHERE thumb_sha256 IS NOT NULL;
CREATE INDEX media_created ON media (created_at);

-- Web Push subscriptions (RFC 8030): one row per browser/app install. The endpoint is
-- unique: a browser has one subscription per application server key, so registering it
-- again (perhaps as another user after a re-login) updates the row instead of doubling it.
CREATE TABLE push_subscriptions (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    endpoint    text NOT NULL UNIQUE,
    p256dh      bytea NOT NULL,                  -- the browser's P-256 key, 65 bytes uncompressed
    auth        bytea NOT NULL,                  -- 16-byte authentication secret
    created_at  bigint NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
