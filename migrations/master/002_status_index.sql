-- Counting live accounts (the server limit, checked on every registration) reads this small
-- index instead of every row of the table.
CREATE INDEX whatsapp_accounts_status ON whatsapp_accounts (status);
