-- Link previews: what the server read from the page a text message's first link names.
-- Numbered 0010: 0007 is another's.

-- The cache, one row per URL, so the same link in many messages is fetched once: a
-- preview (title set) or a failure (title NULL), each until expires_at. Expired rows are
-- deleted by the preview task.
CREATE TABLE link_previews (
    url            TEXT PRIMARY KEY,
    title          TEXT,
    description    TEXT,
    site_name      TEXT,
    -- The page's picture, fetched and cleaned like an upload; ON DELETE SET NULL: a
    -- reference never outlives its record.
    image_media_id BLOB REFERENCES media (id) ON DELETE SET NULL,
    fetched_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX link_previews_expiry ON link_previews (expires_at);

-- The preview a message shows: a copy taken when it was attached (the cache may change or
-- expire; a message changes only with a change number). Deleted with the message's
-- content (store/sql/messages.rs, delete_message).
CREATE TABLE message_previews (
    message_id     BLOB PRIMARY KEY,
    room_id        BLOB NOT NULL REFERENCES rooms (id),
    url            TEXT NOT NULL,
    title          TEXT NOT NULL,
    description    TEXT,
    site_name      TEXT,
    image_media_id BLOB REFERENCES media (id) ON DELETE SET NULL
) STRICT, WITHOUT ROWID;

-- The orphan sweep asks "does anyone use this record?": both tables keep a picture.
CREATE INDEX link_previews_image ON link_previews (image_media_id)
    WHERE image_media_id IS NOT NULL;
CREATE INDEX message_previews_image ON message_previews (image_media_id)
    WHERE image_media_id IS NOT NULL;
