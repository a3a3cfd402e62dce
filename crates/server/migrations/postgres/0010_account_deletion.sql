-- Account deletion: the same as SQLite's 0013, whose comments say why
-- (0008 and 0009 are others').
ALTER TABLE users ADD COLUMN deleted_at bigint;
