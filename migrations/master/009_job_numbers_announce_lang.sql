-- Issue 17 (bot17). Job numbers unique per user: jobs live in each account's own file with
-- that file's ids, so a user with two accounts would see two "#3". The last number given to
-- each user is kept here, in the one database every account shares.
CREATE TABLE job_numbers (
    telegram_id INTEGER PRIMARY KEY,
    last        INTEGER NOT NULL
);
-- An announcement may also be written in English; `text` stays the Indonesian one (or the
-- only one). A user gets the text of their language, falling back to the other.
ALTER TABLE announcements ADD COLUMN text_en TEXT;
