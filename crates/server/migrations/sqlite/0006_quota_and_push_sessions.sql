-- Hardening (issue 13): storage quotas (finding 5) and push subscriptions bound to the
-- session that registered them (finding 11b). Numbered 0006: 0005 is consent's.

-- What a user's uploads occupy is the sum of their records' sizes, thumbnails included,
-- so each record keeps its thumbnail's size too. NULL: no thumbnail, or one recorded
-- before this migration (those count nothing; a thumbnail is small and bounded).
ALTER TABLE media ADD COLUMN thumb_size INTEGER;
-- The sum is taken before every upload is stored: one range of this index, which holds
-- every column it reads.
CREATE INDEX media_uploader ON media (uploader_id, size, thumb_size);

-- The session that registered a subscription. NULL for one registered before this
-- migration: it stays its user's until that user registers it again, deletes it, or the
-- push service says it is gone.
ALTER TABLE push_subscriptions ADD COLUMN session_id BLOB REFERENCES sessions (id);
CREATE INDEX push_subscriptions_session ON push_subscriptions (session_id)
    WHERE session_id IS NOT NULL;

-- A session that ends (logout, a reused refresh token, any revocation) takes its
-- subscriptions with it, in the same transaction: nothing is pushed to a device after
-- its user logged out there.
CREATE TRIGGER sessions_ended_push AFTER UPDATE OF revoked_at ON sessions
WHEN NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL
BEGIN
    DELETE FROM push_subscriptions WHERE session_id = NEW.id;
END;
