-- An operator can suspend a Telegram user (/admin): refused like a user with no account, while
-- their WhatsApp sessions stay up. 1 = suspended.
ALTER TABLE telegram_users ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
