-- Privacy by consent (issue 13, finding 7). Numbered 0005, the number 0006 (quotas) kept
-- free for it: sqlx applies a missing lower version to a database that already has 0006.

-- A member is `joined` or `invited`: a 1:1 room from someone the invitee shares no room
-- with, or a group a stranger added them to, waits for their answer. Every membership
-- stored before this migration was a full one, so existing rows become `joined` and
-- nothing stored changes meaning.
ALTER TABLE members ADD COLUMN state TEXT NOT NULL DEFAULT 'joined'
    CHECK (state IN ('joined', 'invited'));
-- Who asked an invited member in (kept after they accept; NULL for members who joined
-- directly, and for every row stored before this migration).
ALTER TABLE members ADD COLUMN invited_by BLOB REFERENCES users (id);
-- A user's pending invitations from one person, found when they block that person.
CREATE INDEX members_invited ON members (user_id, invited_by) WHERE state = 'invited';

-- Who blocked whom. A block stops 1:1 rooms, invitations and presence between the two,
-- both ways; the blocker lists and lifts it.
CREATE TABLE blocks (
    blocker_id BLOB NOT NULL REFERENCES users (id),
    blocked_id BLOB NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
) STRICT, WITHOUT ROWID;
