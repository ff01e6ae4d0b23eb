-- Master database: every account on this server, its owner, and who did what.

CREATE TABLE whatsapp_accounts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    telegram_id       INTEGER NOT NULL CHECK (telegram_id > 0),
    phone_number      TEXT    NOT NULL UNIQUE,
    jid               TEXT,
    db_path           TEXT    NOT NULL,
    bot_data_db_path  TEXT    NOT NULL,
    status            TEXT    NOT NULL
        CHECK (status IN ('pairing', 'active', 'logged_out', 'banned', 'unpaired', 'removed')),
    last_error        TEXT,
    banned_until      INTEGER,
    status_changed_at INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX whatsapp_accounts_owner ON whatsapp_accounts (telegram_id, status);

CREATE TABLE telegram_users (
    telegram_id       INTEGER PRIMARY KEY CHECK (telegram_id > 0),
    language          TEXT    NOT NULL DEFAULT 'id',
    active_account_id INTEGER REFERENCES whatsapp_accounts (id) ON DELETE SET NULL,
    role              TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    blocked           INTEGER NOT NULL DEFAULT 0,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    telegram_id  INTEGER,
    account_id   INTEGER,
    action       TEXT    NOT NULL,
    detail       TEXT
);
CREATE INDEX audit_log_account ON audit_log (account_id, at);
