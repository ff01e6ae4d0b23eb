//! What an account's own database knows of its history with WhatsApp, written by the
//! supervisor as it happens and read by the job engine: when tgwa first linked the number
//! (the warm-up's day one) and who wrote to it (the people WhatsApp's 463 rule lets a young
//! number write to). Below both, so neither imports the other for it.

use rusqlite::{params, Connection, OptionalExtension};

use crate::db::DbError;
use crate::ids::PhoneNumber;

/// The `settings` key of when tgwa first linked the number (Unix seconds).
const LINKED_AT_KEY: &str = "linked_at";

/// Records that tgwa linked the number now, for a number paired for the first time (the
/// warm-up's day one); an earlier record is kept.
pub fn note_linked(c: &Connection, t: i64) -> Result<(), DbError> {
    c.execute(
        "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
        params![LINKED_AT_KEY, t.to_string()],
    )?;
    Ok(())
}

/// When tgwa first linked the number, if it did.
pub fn linked_at(c: &Connection) -> Result<Option<i64>, DbError> {
    let v: Option<String> = c
        .query_row("SELECT value FROM settings WHERE key = ?1", [LINKED_AT_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()))
}

/// Notes that `phone` wrote to the account (a direct message).
pub fn note_contact(c: &Connection, phone: &PhoneNumber) -> Result<(), DbError> {
    let t = crate::db::now();
    c.execute(
        "INSERT INTO contacts (phone, first_at, last_at) VALUES (?1, ?2, ?2)
         ON CONFLICT (phone) DO UPDATE SET last_at = ?2",
        params![crate::ids::whatsapp_digits(phone.digits()), t],
    )?;
    Ok(())
}

/// Whether the number `digits` ever wrote to the account.
pub fn wrote_to_us(c: &Connection, digits: &str) -> Result<bool, DbError> {
    Ok(c.query_row(
        "SELECT 1 FROM contacts WHERE phone = ?1",
        [crate::ids::whatsapp_digits(digits)],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_once_and_who_wrote() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c, crate::db::Schema::Account).unwrap();
        // The warm-up's day one is the first pairing through tgwa; none for imported accounts.
        assert_eq!(linked_at(&c).unwrap(), None);
        note_linked(&c, 500).unwrap();
        note_linked(&c, 900).unwrap();
        assert_eq!(linked_at(&c).unwrap(), Some(500));
        // Who wrote, in WhatsApp's form of the number.
        note_contact(&c, &PhoneNumber::from_digits("541123456789").unwrap()).unwrap();
        assert!(wrote_to_us(&c, "5491123456789").unwrap());
        assert!(wrote_to_us(&c, "541123456789").unwrap());
        assert!(!wrote_to_us(&c, "6281234567890").unwrap());
    }
}
