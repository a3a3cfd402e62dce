-- Message search (docs/PROTOCOL.md, "Search"; src/store/sqlite/search.rs). The tokens
-- come from the server's tokenizer (src/store/tokens.rs): words, and in CJK every
-- character and every pair of neighbours, joined by spaces; the `ascii` tokenizer splits
-- only there. The table keeps only the index (content=''), can forget a row when a
-- message is edited or deleted (contentless_delete=1), and holds no positions
-- (detail=none: the server checks phrases against the message itself). Its rowid is the
-- message's rowid, written in the transaction that stores the message.
--
-- Messages stored before this migration are not indexed (see docs/PROTOCOL.md).
CREATE VIRTUAL TABLE message_search USING fts5(
    tokens,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'ascii'
);
