-- End-to-end encrypted rooms (issue 17): the same as PostgreSQL's 0011, whose comments say why.

ALTER TABLE rooms ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN mls_epoch INTEGER;

ALTER TABLE messages ADD COLUMN mls_kind TEXT;
ALTER TABLE messages ADD COLUMN mls_epoch INTEGER;
ALTER TABLE messages ADD COLUMN mls_data TEXT;

CREATE TABLE mls_devices (
    id            BLOB PRIMARY KEY,
    user_id       BLOB NOT NULL REFERENCES users (id),
    session_id    BLOB NOT NULL REFERENCES sessions (id),
    name          TEXT NOT NULL,
    signature_key BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX mls_devices_user ON mls_devices (user_id) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX mls_devices_session ON mls_devices (session_id) WHERE revoked_at IS NULL;

CREATE TABLE mls_key_packages (
    key_ref     BLOB PRIMARY KEY,
    device_id   BLOB NOT NULL REFERENCES mls_devices (id),
    data        BLOB NOT NULL,
    last_resort INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    claimed_at  INTEGER,
    claimed_by  BLOB
);
CREATE INDEX mls_key_packages_free ON mls_key_packages (device_id, created_at)
    WHERE claimed_at IS NULL AND NOT last_resort;
CREATE UNIQUE INDEX mls_key_packages_last_resort ON mls_key_packages (device_id)
    WHERE last_resort AND claimed_at IS NULL;

CREATE TABLE mls_welcomes (
    id         BLOB PRIMARY KEY,
    device_id  BLOB NOT NULL REFERENCES mls_devices (id),
    room_id    BLOB NOT NULL REFERENCES rooms (id),
    seq        INTEGER NOT NULL,
    data       BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX mls_welcomes_device ON mls_welcomes (device_id, created_at);
