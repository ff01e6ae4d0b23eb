-- A removed account is history: its row (and ID) are never handed to the next user who pairs
-- the number. A new pairing inserts a new row, so the phone is unique only among rows that are
-- not removed. `generation` counts the pairings of one row (a re-pair of an own logged-out
-- number keeps the row and bumps it), so work queued for an older pairing can tell.
-- SQLite cannot drop a UNIQUE constraint: the table is rebuilt (foreign keys are off while
-- migrations run; see db::migrate), keeping the AUTOINCREMENT high-water mark so no ID is
-- ever issued twice.
CREATE TEMP TABLE _accounts_seq AS
    SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'whatsapp_accounts'), 0) AS seq;

CREATE TABLE whatsapp_accounts_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    telegram_id       INTEGER NOT NULL CHECK (telegram_id > 0),
    phone_number      TEXT    NOT NULL,
    jid               TEXT,
    db_path           TEXT    NOT NULL,
    bot_data_db_path  TEXT    NOT NULL,
    status            TEXT    NOT NULL
        CHECK (status IN ('pairing', 'active', 'logged_out', 'banned', 'unpaired', 'removed')),
    last_error        TEXT,
    banned_until      INTEGER,
    status_changed_at INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    generation        INTEGER NOT NULL DEFAULT 1
);
INSERT INTO whatsapp_accounts_new
    (id, telegram_id, phone_number, jid, db_path, bot_data_db_path, status, last_error, banned_until,
     status_changed_at, created_at, updated_at)
SELECT id, telegram_id, phone_number, jid, db_path, bot_data_db_path, status, last_error, banned_until,
       status_changed_at, created_at, updated_at
FROM whatsapp_accounts;
DROP TABLE whatsapp_accounts;
ALTER TABLE whatsapp_accounts_new RENAME TO whatsapp_accounts;
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT seq FROM _accounts_seq)) WHERE name = 'whatsapp_accounts';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'whatsapp_accounts', seq FROM _accounts_seq
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'whatsapp_accounts');
DROP TABLE _accounts_seq;

CREATE INDEX whatsapp_accounts_owner ON whatsapp_accounts (telegram_id, status);
CREATE INDEX whatsapp_accounts_status ON whatsapp_accounts (status);
CREATE UNIQUE INDEX whatsapp_accounts_live_phone ON whatsapp_accounts (phone_number) WHERE status != 'removed';
