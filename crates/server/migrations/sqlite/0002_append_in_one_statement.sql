-- Appending a message is one statement (see SqliteStore::append_messages): the INSERT
-- takes its seq from rooms.last_seq, and this trigger moves last_seq and the sender's
-- receipt markers in the same step. Fewer statements per message means fewer round trips
-- to SQLite's worker thread on the hottest path.
CREATE TRIGGER messages_appended AFTER INSERT ON messages
BEGIN
    UPDATE rooms SET last_seq = NEW.seq, last_activity = NEW.created_at WHERE id = NEW.room_id;
    -- Sending implies having seen everything before: the sender's markers move too.
    UPDATE members SET delivered_seq = MAX(delivered_seq, NEW.seq), read_seq = MAX(read_seq, NEW.seq)
     WHERE room_id = NEW.room_id AND user_id = NEW.sender_id;
END;
