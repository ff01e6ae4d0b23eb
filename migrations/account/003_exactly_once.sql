-- Exactly once: an item is `running` only from just before its WhatsApp call until its result
-- is recorded, so a `running` item found at startup may have been executed. `unknown` is such
-- an item of a kind that must not run twice: done or not, it is never run again.
-- Jobs remember the account (ID and pairing generation) they were made for, so a worker never
-- runs them through a later owner or pairing of the same number.
CREATE TABLE job_items_new (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    input      TEXT    NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'ok', 'failed', 'unknown')),
    result     TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);
INSERT INTO job_items_new (job_id, seq, input, state, result, updated_at)
    SELECT job_id, seq, input, state, result, updated_at FROM job_items;
DROP TABLE job_items;
ALTER TABLE job_items_new RENAME TO job_items;

ALTER TABLE jobs ADD COLUMN account_id INTEGER;
ALTER TABLE jobs ADD COLUMN generation INTEGER;
