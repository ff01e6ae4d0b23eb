-- Issue 17: the unsent items of a cancelled job can be sent by a new job. They are marked
-- `rerun` in the old job in the same transaction that copies them, so no item is ever in two
-- jobs that could both run it.
CREATE TABLE job_items_new (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    input      TEXT    NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'ok', 'failed', 'unknown', 'rerun')),
    result     TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);
INSERT INTO job_items_new (job_id, seq, input, state, result, updated_at)
    SELECT job_id, seq, input, state, result, updated_at FROM job_items;
DROP TABLE job_items;
ALTER TABLE job_items_new RENAME TO job_items;
