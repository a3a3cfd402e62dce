-- Link previews: the same as SQLite's 0010, whose comments say what each column holds
-- (0004 to 0006 are others').

CREATE TABLE link_previews (
    url            text PRIMARY KEY,
    title          text,
    description    text,
    site_name      text,
    image_media_id uuid REFERENCES media (id) ON DELETE SET NULL,
    fetched_at     bigint NOT NULL,
    expires_at     bigint NOT NULL
);
CREATE INDEX link_previews_expiry ON link_previews (expires_at);

CREATE TABLE message_previews (
    message_id     uuid PRIMARY KEY,
    room_id        uuid NOT NULL REFERENCES rooms (id),
    url            text NOT NULL,
    title          text NOT NULL,
    description    text,
    site_name      text,
    image_media_id uuid REFERENCES media (id) ON DELETE SET NULL
);

CREATE INDEX link_previews_image ON link_previews (image_media_id)
    WHERE image_media_id IS NOT NULL;
CREATE INDEX message_previews_image ON message_previews (image_media_id)
    WHERE image_media_id IS NOT NULL;
