-- Message search (docs/PROTOCOL.md, "Search"; src/store/postgres/search.rs), the same as
-- SQLite's 0007 in this engine's terms: one row per indexed message, written in the
-- transaction that stores it, its tokens (from the server's tokenizer,
-- src/store/tokens.rs) under a GIN index so that `tokens @> $query` finds the rows that
-- hold every token. Edits replace the row, deletions remove it.
--
-- Messages stored before this migration are not indexed (see docs/PROTOCOL.md).
CREATE TABLE message_search (
    id       uuid NOT NULL,
    room_id  uuid NOT NULL,
    tokens   text[] NOT NULL
);
CREATE INDEX message_search_tokens ON message_search USING gin (tokens);
-- Newest first, and edits and deletions by id.
CREATE INDEX message_search_id ON message_search (id);
