-- /admin announcements: a text an operator sends to every Telegram user of the bot, one
-- recipient at a time, resumable across restarts. A recipient is marked 'running' just before
-- its sendMessage; one found 'running' at start-up was interrupted by a crash and becomes
-- 'unknown' (it may have been delivered), never sent again.
CREATE TABLE announcements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    text        TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('draft', 'running', 'paused', 'cancelled', 'done')),
    created_by  INTEGER NOT NULL,
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE announcement_recipients (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id) ON DELETE CASCADE,
    telegram_id     INTEGER NOT NULL,
    state           TEXT    NOT NULL
        CHECK (state IN ('pending', 'running', 'sent', 'blocked', 'failed', 'unknown')),
    result          TEXT,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (announcement_id, telegram_id)
) WITHOUT ROWID;
-- Small facts the operator's features keep across restarts (the daily digest's last date).
CREATE TABLE admin_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
