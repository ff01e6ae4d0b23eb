-- Scheduled jobs and broadcast templates (branch `sched`, issue 19).
-- A job may wait for a time: state `scheduled` with `run_at` (Unix seconds, UTC). SQLite cannot
-- change a CHECK constraint, so `jobs` is rebuilt (foreign keys are off while migrations run,
-- so `job_items` keeps its rows and its reference). Keep this column list in step with every
-- migration before this one that adds a column to `jobs`.
CREATE TABLE jobs_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    state         TEXT    NOT NULL
        CHECK (state IN ('draft', 'scheduled', 'running', 'paused', 'cancelled', 'done')),
    pause_reason  TEXT,
    params        TEXT    NOT NULL DEFAULT '{}',
    telegram_id   INTEGER NOT NULL,
    chat_id       INTEGER NOT NULL,
    message_id    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    account_id    INTEGER,
    generation    INTEGER,
    run_at        INTEGER
);
INSERT INTO jobs_new (id, kind, state, pause_reason, params, telegram_id, chat_id, message_id,
                      created_at, updated_at, account_id, generation)
    SELECT id, kind, state, pause_reason, params, telegram_id, chat_id, message_id,
           created_at, updated_at, account_id, generation FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE state = 'scheduled';

-- Broadcast texts saved under a name, per account. `media_ref` is left for media messages
-- (branch `media`); text-only templates leave it NULL.
CREATE TABLE templates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    text       TEXT    NOT NULL,
    media_ref  TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
