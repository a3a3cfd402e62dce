-- Palaver's schema on SQLite. Ids are 16-byte UUID v7 blobs (they sort by time);
-- instants are integer milliseconds since the Unix epoch, UTC.

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,          -- stored lowercase: names are case-insensitive
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,                 -- argon2id PHC string
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER                        -- set when the last connection closes
) STRICT;
CREATE INDEX users_display_name ON users (display_name COLLATE NOCASE);

-- A login on one device. Access tokens carry the session id, so ending the session
-- ends them too; refresh tokens rotate inside a session.
CREATE TABLE sessions (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Only the SHA-256 of a refresh token is kept. A token is used once; presenting a used
-- one again means it was stolen, and ends the whole session.
CREATE TABLE refresh_tokens (
    token_hash  BLOB PRIMARY KEY,
    session_id  BLOB NOT NULL REFERENCES sessions (id),
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;

CREATE TABLE rooms (
    id            BLOB PRIMARY KEY,
    name          TEXT NOT NULL,                 -- empty for 1:1 rooms
    is_group      INTEGER NOT NULL,
    direct_key    TEXT UNIQUE,                   -- "smaller-uuid:larger-uuid" for 1:1 rooms: one per pair
    created_at    INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL DEFAULT 0,    -- the seq of the newest message; the next is last_seq + 1
    last_activity INTEGER NOT NULL
) STRICT;

CREATE TABLE members (
    room_id       BLOB NOT NULL REFERENCES rooms (id),
    user_id       BLOB NOT NULL REFERENCES users (id),
    role          TEXT NOT NULL,                 -- owner / admin / member
    joined_at     INTEGER NOT NULL,
    delivered_seq INTEGER NOT NULL DEFAULT 0,    -- receipts are watermarks: everything up to here
    read_seq      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX members_user ON members (user_id);

CREATE TABLE messages (
    id            BLOB PRIMARY KEY,
    room_id       BLOB NOT NULL REFERENCES rooms (id),
    seq           INTEGER NOT NULL,
    sender_id     BLOB NOT NULL REFERENCES users (id),
    client_msg_id TEXT NOT NULL,
    kind          TEXT NOT NULL,
    content       TEXT NOT NULL,
    media_id      BLOB,
    created_at    INTEGER NOT NULL,
    edited_at     INTEGER,
    deleted_at    INTEGER
) STRICT;
-- The gap-free order of a room, and the idempotency key: both enforced here, so no bug
-- above can store a duplicate or reuse a seq.
CREATE UNIQUE INDEX messages_room_seq ON messages (room_id, seq);
CREATE UNIQUE INDEX messages_idempotency ON messages (room_id, sender_id, client_msg_id);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   BLOB,
    action  TEXT NOT NULL,
    target  TEXT,
    detail  TEXT
) STRICT;
