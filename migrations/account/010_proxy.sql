-- The account's proxy (issue 21): one row at most. Kept here, in the account's own 0600 file
-- beside its session keys, rather than in the shared master database.
CREATE TABLE account_proxy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    url        TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
