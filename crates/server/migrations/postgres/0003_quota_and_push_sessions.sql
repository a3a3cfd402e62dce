-- Hardening (issue 13): storage quotas (finding 5) and push subscriptions bound to the
-- session that registered them (finding 11b). The same as SQLite's 0006 (0002 is
-- consent's).

-- What a user's uploads occupy is the sum of their records' sizes, thumbnails included,
-- so each record keeps its thumbnail's size too. NULL: no thumbnail, or one recorded
-- before this migration (those count nothing; a thumbnail is small and bounded).
ALTER TABLE media ADD COLUMN thumb_size bigint;
-- The sum is taken before every upload is stored: an index-only scan of this index.
CREATE INDEX media_uploader ON media (uploader_id) INCLUDE (size, thumb_size);

-- The session that registered a subscription. NULL for one registered before this
-- migration: it stays its user's until that user registers it again, deletes it, or the
-- push service says it is gone.
ALTER TABLE push_subscriptions ADD COLUMN session_id uuid REFERENCES sessions (id);
CREATE INDEX push_subscriptions_session ON push_subscriptions (session_id)
    WHERE session_id IS NOT NULL;

-- A session that ends (logout, a reused refresh token, any revocation) takes its
-- subscriptions with it, in the same transaction: nothing is pushed to a device after
-- its user logged out there. The function keeps the schema it was created in, whatever
-- the search_path of the connection that fires it.
CREATE FUNCTION sessions_ended_push() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM push_subscriptions WHERE session_id = NEW.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER sessions_ended_push AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
    EXECUTE FUNCTION sessions_ended_push();
