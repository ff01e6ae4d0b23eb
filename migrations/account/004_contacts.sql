-- People who wrote to the account directly. A young or flagged number may only write to them
-- while WhatsApp's reach-out timelock (error 463) is in force, so a broadcast keeps sending to
-- them and skips everyone else.
CREATE TABLE contacts (
    phone    TEXT    PRIMARY KEY,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL
);
