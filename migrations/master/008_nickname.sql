-- Issue 19: a nickname per account («Toko Batik», «CS 2») so an owner of several numbers
-- can tell them apart; shown next to the number. NULL = none. 1 to 32 characters, checked by
-- `account::Nickname` before it is written.
ALTER TABLE whatsapp_accounts ADD COLUMN nickname TEXT;
