-- Privacy by consent (issue 13, finding 7): the same as SQLite's 0005. Numbered 0002, the
-- number 0003 (quotas) kept free for it: sqlx applies a missing lower version to a
-- database that already has 0003.

-- A member is `joined` or `invited`; every row stored before this migration was a full
-- membership, so it becomes `joined` and nothing stored changes meaning.
ALTER TABLE members ADD COLUMN state text NOT NULL DEFAULT 'joined'
    CHECK (state IN ('joined', 'invited'));
-- Who asked an invited member in (NULL for members who joined directly).
ALTER TABLE members ADD COLUMN invited_by uuid REFERENCES users (id);
-- A user's pending invitations from one person, found when they block that person.
CREATE INDEX members_invited ON members (user_id, invited_by) WHERE state = 'invited';

-- Who blocked whom: no 1:1 rooms, invitations or presence between the two, both ways.
CREATE TABLE blocks (
    blocker_id uuid NOT NULL REFERENCES users (id),
    blocked_id uuid NOT NULL REFERENCES users (id),
    created_at bigint NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
