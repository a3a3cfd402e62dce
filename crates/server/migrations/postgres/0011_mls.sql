-- End-to-end encrypted rooms (MLS, RFC 9420). The server is the delivery service: it keeps
-- the directory of devices and their key packages, each encrypted room's epoch, the MLS
-- messages in the room's seq order, and welcomes until their device takes them. It never
-- holds a key that decrypts anything.

-- Set at creation and never turned off. mls_epoch is the group's current epoch (NULL for
-- a plain room): a commit is stored only if made in it, and moves it on by one.
ALTER TABLE rooms ADD COLUMN encrypted boolean NOT NULL DEFAULT false;
ALTER TABLE rooms ADD COLUMN mls_epoch bigint;

-- A message of kind 'mls' carries its MLSMessage in mls_data, and what the server read of
-- its framing (application / proposal / commit, and the epoch it was made in); its content
-- stays empty, so nothing of it reaches the search index.
ALTER TABLE messages ADD COLUMN mls_kind text;
ALTER TABLE messages ADD COLUMN mls_epoch bigint;
ALTER TABLE messages ADD COLUMN mls_data text;                -- base64, as on the wire

-- A device is one session's: only that session uploads its key packages, and the device
-- is revoked when the session ends. One live device per session.
CREATE TABLE mls_devices (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id),
    session_id    uuid NOT NULL REFERENCES sessions (id),
    name          text NOT NULL,
    signature_key bytea NOT NULL,              -- Ed25519 public key, in every key package
    created_at    bigint NOT NULL,
    revoked_at    bigint
);
CREATE INDEX mls_devices_user ON mls_devices (user_id) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX mls_devices_session ON mls_devices (session_id) WHERE revoked_at IS NULL;

-- Key packages, by their KeyPackageRef (RFC 9420 §5.2), which is how a Welcome names the
-- device it is for. A claimed one-time package keeps its row (claimed_at, claimed_by) so
-- a Welcome made from it still finds its device, and so one claimer's share can be
-- counted; the last-resort package (one per device) is handed out again and again.
CREATE TABLE mls_key_packages (
    key_ref     bytea PRIMARY KEY,
    device_id   uuid NOT NULL REFERENCES mls_devices (id),
    data        bytea NOT NULL,
    last_resort boolean NOT NULL,
    created_at  bigint NOT NULL,
    claimed_at  bigint,
    claimed_by  uuid
);
CREATE INDEX mls_key_packages_free ON mls_key_packages (device_id, created_at)
    WHERE claimed_at IS NULL AND NOT last_resort;
CREATE UNIQUE INDEX mls_key_packages_last_resort ON mls_key_packages (device_id)
    WHERE last_resort AND claimed_at IS NULL;

-- Welcomes wait here until their device takes them.
CREATE TABLE mls_welcomes (
    id         uuid PRIMARY KEY,
    device_id  uuid NOT NULL REFERENCES mls_devices (id),
    room_id    uuid NOT NULL REFERENCES rooms (id),
    seq        bigint NOT NULL,                 -- the commit that added the device
    data       bytea NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX mls_welcomes_device ON mls_welcomes (device_id, created_at);
