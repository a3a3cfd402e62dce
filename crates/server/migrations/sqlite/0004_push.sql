-- Push notifications (0003 is the media branch's).

-- Web Push subscriptions (RFC 8030): one row per browser/app install. The endpoint is
-- unique: a browser has one subscription per application server key, so registering it
-- again (perhaps as another user after a re-login) updates the row instead of doubling it.
CREATE TABLE push_subscriptions (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id),
    endpoint    TEXT NOT NULL UNIQUE,
    p256dh      BLOB NOT NULL,                   -- the browser's P-256 key, 65 bytes uncompressed
    auth        BLOB NOT NULL,                   -- 16-byte authentication secret
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

-- A mute belongs to a membership: leaving a room forgets it with the member row.
ALTER TABLE members ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;

-- How much a notification may show: full / sender / none.
ALTER TABLE users ADD COLUMN notification_preview TEXT NOT NULL DEFAULT 'sender'
    CHECK (notification_preview IN ('full', 'sender', 'none'));
