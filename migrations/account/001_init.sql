-- One account's bot data: settings, cached groups, bulk jobs and their items, messages sent.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE groups_cache (
    jid          TEXT PRIMARY KEY,
    name         TEXT    NOT NULL,
    member_count INTEGER NOT NULL,
    is_admin     INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    state         TEXT    NOT NULL
        CHECK (state IN ('draft', 'running', 'paused', 'cancelled', 'done')),
    pause_reason  TEXT,
    params        TEXT    NOT NULL DEFAULT '{}',
    telegram_id   INTEGER NOT NULL,
    chat_id       INTEGER NOT NULL,
    message_id    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE job_items (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    input      TEXT    NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'ok', 'failed')),
    result     TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX job_items_pending ON job_items (job_id, state, seq);

CREATE TABLE message_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    to_jid  TEXT    NOT NULL,
    text    TEXT    NOT NULL,
    ok      INTEGER NOT NULL,
    error   TEXT
);
