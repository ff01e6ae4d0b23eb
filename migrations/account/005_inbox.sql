-- The inbox (issue 16): messages that arrived at the account, kept for the owner's Telegram.
-- A row is written before it is forwarded; its state says how far it got:
--   pending    recorded, not yet handled
--   sending    handed to Telegram, answer not yet recorded (found at startup: `unknown`)
--   forwarded  Telegram accepted it: tg_chat/tg_message is the reply link
--   held       over the owner's rate: waits for the next digest
--   digested   counted in a digest
--   unknown    a send interrupted by a crash: never sent again, counted in the next digest
--   failed     Telegram refused it for good
--   ended      the account ended (or was paired again) before it was forwarded
-- `owner` and `generation` are the account's when the message arrived: a row is forwarded,
-- and its reply link honoured, only while the account still has that owner and pairing.
CREATE TABLE inbox_messages (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    wa_id       TEXT    NOT NULL,
    chat        TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    push_name   TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL,
    text        TEXT    NOT NULL DEFAULT '',
    media       BLOB,
    media_name  TEXT,
    media_mime  TEXT,
    offline     INTEGER NOT NULL DEFAULT 0,
    sent_at     INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    owner       INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'forwarded', 'held', 'digested', 'unknown', 'failed', 'ended')),
    tg_chat     INTEGER,
    tg_message  INTEGER,
    -- WhatsApp delivers a message again when its receipt was not sent before a crash.
    UNIQUE (chat, wa_id)
);
CREATE INDEX inbox_by_state ON inbox_messages (state, seq);
CREATE INDEX inbox_by_chat ON inbox_messages (chat, seq);
CREATE UNIQUE INDEX inbox_links ON inbox_messages (tg_chat, tg_message) WHERE tg_message IS NOT NULL;
CREATE INDEX inbox_by_age ON inbox_messages (received_at);
