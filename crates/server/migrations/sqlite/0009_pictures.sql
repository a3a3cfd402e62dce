-- Profile pictures and group pictures. Each is an upload (a media record, an image its
-- uploader chose), named here by id; the media record keeps the bytes alive, so the
-- orphan sweep skips records named here. Numbered 0009: 0007 and 0008 are others'.

-- ON DELETE SET NULL: a reference never outlives its record, whatever deletes it.
ALTER TABLE users ADD COLUMN avatar_media_id BLOB REFERENCES media (id) ON DELETE SET NULL;
ALTER TABLE rooms ADD COLUMN picture_media_id BLOB REFERENCES media (id) ON DELETE SET NULL;

-- The sweep asks "does anyone use this record?", and deleting a record finds who to
-- clear: both by these indexes.
CREATE INDEX users_avatar ON users (avatar_media_id) WHERE avatar_media_id IS NOT NULL;
CREATE INDEX rooms_picture ON rooms (picture_media_id) WHERE picture_media_id IS NOT NULL;
