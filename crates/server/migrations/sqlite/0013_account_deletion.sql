-- Account deletion (issue 16). Numbered 0013: 0011 and 0012 are others'.
--
-- A deleted account keeps its row, so the messages it sent (under `accounts.deletion =
-- "keep"`) and its seqs still have a sender: the row is stripped (username freed,
-- display name "Deleted user", no password, no picture) and stamped here. Logins,
-- user search and new rooms skip stamped rows.
ALTER TABLE users ADD COLUMN deleted_at INTEGER;
