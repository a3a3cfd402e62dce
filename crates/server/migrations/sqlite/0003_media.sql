-- Uploaded files. The bytes live in the media store under their SHA-256, so the same
-- file uploaded twice is stored once; each upload still gets its own record, which is
-- what access rules and orphan collection work on.
CREATE TABLE media (
    id            BLOB PRIMARY KEY,
    uploader_id   BLOB NOT NULL REFERENCES users (id),
    sha256        TEXT NOT NULL,
    kind          TEXT NOT NULL,                 -- image | video | audio | file
    mime_type     TEXT NOT NULL,                 -- sniffed from the bytes
    size          INTEGER NOT NULL,
    filename      TEXT NOT NULL,
    width         INTEGER,
    height        INTEGER,
    thumb_sha256  TEXT,
    thumb_mime    TEXT,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX media_sha256 ON media (sha256);
CREATE INDEX media_thumb_sha256 ON media (thumb_sha256) WHERE thumb_sha256 IS NOT NULL;
CREATE INDEX media_created ON media (created_at);

-- Who may fetch a media object: members of the rooms where a message carries it.
CREATE INDEX messages_media ON messages (media_id) WHERE media_id IS NOT NULL;
