-- Server administrators, disabled accounts, closed rooms, audit filters and moderation:
-- the same as sqlite/0011. Numbered 0008: 0009 and 0010 are others'.

-- A stored role: the first account is an administrator (set when it registers; here
-- for a server that had accounts before the role existed), and `admin.usernames` names
-- more. A disabled account cannot log in and has no live session.
ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN disabled_at bigint;
UPDATE users SET is_admin = true
 WHERE id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1);

-- Ending every session of a user finds them by user.
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- A room an administrator deleted: every member was removed, nobody sees it again; its
-- rows stay for the audit trail.
ALTER TABLE rooms ADD COLUMN deleted_at bigint;

-- The audit log is read newest first, filtered by actor, action or target.
CREATE INDEX audit_log_actor ON audit_log (actor, id) WHERE actor IS NOT NULL;
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target, id) WHERE target IS NOT NULL;

-- Moderation: a member muted in a room may not send until `muted_until`.
ALTER TABLE members ADD COLUMN muted_until bigint;

-- A banned user is not a member and cannot join or be added again until unbanned.
CREATE TABLE room_bans (
    room_id    uuid NOT NULL REFERENCES rooms (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    banned_by  uuid NOT NULL REFERENCES users (id),
    created_at bigint NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

-- A user's report of a message, for the administrators. One open report per reporter
-- and message; resolving or dismissing closes it.
CREATE TABLE reports (
    id          uuid PRIMARY KEY,
    message_id  uuid NOT NULL,                     -- no foreign key: messages are keyed by room (0001)
    room_id     uuid NOT NULL REFERENCES rooms (id),
    reporter_id uuid NOT NULL REFERENCES users (id),
    reason      text NOT NULL,
    created_at  bigint NOT NULL,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'dismissed')),
    closed_by   uuid REFERENCES users (id),
    closed_at   bigint
);
CREATE UNIQUE INDEX reports_open ON reports (reporter_id, message_id) WHERE status = 'open';
CREATE INDEX reports_status ON reports (status, id);
