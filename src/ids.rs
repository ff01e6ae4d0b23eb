//! Identifiers that reject bad input at construction: a value of these types is always valid,
//! so file and folder names built from them cannot escape the data directory.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a phone number or ID was refused. The variants map to user-facing explanations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    #[error("empty input")]
    Empty,
    #[error("only digits, spaces, dashes, dots, parentheses and one leading + are allowed")]
    InvalidCharacter,
    #[error("too short: a phone number has at least 8 digits")]
    TooShort,
    #[error("too long: a phone number has at most 15 digits")]
    TooLong,
    #[error("a leading 00 must be followed by a country code")]
    BadInternationalPrefix,
    #[error("a country code cannot start with 0")]
    BadCountryCode,
    #[error("more than one 0 after the country code")]
    ZeroAfterCountryCode,
    #[error("a Telegram user ID is a positive number (group chats are not users)")]
    NotAUserId,
    #[error("an account ID is a positive number")]
    NotAnAccountId,
}

/// A Telegram user's ID. Positive only: negative IDs are group and channel chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct TelegramId(i64);

impl TelegramId {
    /// Accepts a positive 64-bit value.
    pub fn new(raw: i64) -> Result<Self, ParseIdError> {
        if raw > 0 {
            Ok(Self(raw))
        } else {
            Err(ParseIdError::NotAUserId)
        }
    }

    /// The raw value, for Telegram API calls and SQL.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for TelegramId {
    type Error = ParseIdError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<TelegramId> for i64 {
    fn from(v: TelegramId) -> i64 {
        v.0
    }
}

impl FromStr for TelegramId {
    type Err = ParseIdError;
    /// Canonical decimal only (no sign, no leading zero), so a folder name maps to one ID and back.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw = parse_canonical_positive(s).ok_or(ParseIdError::NotAUserId)?;
        Self::new(raw)
    }
}

impl fmt::Display for TelegramId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Row ID of an account in the master database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct AccountId(i64);

impl AccountId {
    /// Accepts a positive 64-bit value.
    pub fn new(raw: i64) -> Result<Self, ParseIdError> {
        if raw > 0 {
            Ok(Self(raw))
        } else {
            Err(ParseIdError::NotAnAccountId)
        }
    }

    /// The raw value, for SQL and callback encoding.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for AccountId {
    type Error = ParseIdError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<AccountId> for i64 {
    fn from(v: AccountId) -> i64 {
        v.0
    }
}

impl FromStr for AccountId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw = parse_canonical_positive(s).ok_or(ParseIdError::NotAnAccountId)?;
        Self::new(raw)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How many leading digits of an international number are its country code (ITU E.164
/// assignments: 1 and 7 are one digit; the two-digit codes are listed; every other is three).
fn country_code_len(digits: &str) -> usize {
    const TWO: [&str; 44] = [
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
        "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
        "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if digits.get(..2).is_some_and(|p| TWO.contains(&p)) {
        2
    } else {
        3
    }
}

/// Countries whose numbers themselves start with 0 after the country code: there the 0 is not
/// a trunk prefix and is kept.
const ZERO_IS_PART_OF_NUMBER: [&str; 5] = ["39", "378", "379", "225", "242"];

/// Removes one trunk `0` written after the country code (`62 0812...` → `62812...`).
fn drop_trunk_zero(digits: &str) -> Result<String, ParseIdError> {
    let cc_len = country_code_len(digits).min(digits.len());
    let (cc, national) = digits.split_at(cc_len);
    if ZERO_IS_PART_OF_NUMBER.contains(&cc) {
        return Ok(digits.to_string());
    }
    match national.strip_prefix('0') {
        Some(rest) if rest.starts_with('0') => Err(ParseIdError::ZeroAfterCountryCode),
        Some(rest) => Ok(format!("{cc}{rest}")),
        None => Ok(digits.to_string()),
    }
}

/// Masks every run of 8 to 15 digits in free text (a log line, an audit detail, a file
/// name) the way [`PhoneNumber::masked`] does, so a phone number cannot reach a log in full
/// whatever surrounds it. Shorter runs (IDs, counts) and longer ones (group IDs) are kept.
pub fn mask_digits_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if (8..=15).contains(&run.len()) {
            let keep = 4;
            let cc = 2;
            out.push_str(&run[..cc]);
            out.push_str(&"*".repeat(run.len() - keep - cc));
            out.push_str(&run[run.len() - keep..]);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Field labels after which a digit run is a Telegram ID, not a phone number, and stays
/// readable in logs (an operator needs the whole ID to find a user).
pub const LOG_ID_LABELS: [&str; 5] = [
    "telegram_id=",
    "telegram_id\":",
    "telegram_id\":\"",
    "chat_id=",
    "chat_id\":",
];

/// Masks every phone number in free text, also one written with separators (`+62 812-3456-7890`,
/// `0812 3456 7890`): a run of 8 to 15 digits, or digit groups joined by single spaces or
/// hyphens that add up to 8 to 15 digits, keeps its first two and last four digits. Kept as
/// they are: shorter and longer runs (counts, group IDs), dates (`2026-12-07`), decimal
/// fractions (`1.234567891s`), and a run right after one of `keep_after` (an ID label).
pub fn mask_phones_in(text: &str, keep_after: &[&str]) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut i) = (0, 0);
    while i < b.len() {
        let starts_run = b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit());
        if !starts_run {
            i += 1;
            continue;
        }
        let groups = digit_groups(b, i);
        let end = groups.last().map_or(i, |g| g.1);
        let fraction = i >= 2 && b[i - 1] == b'.' && b[i - 2].is_ascii_digit();
        let labelled = keep_after.iter().any(|l| text[..i].ends_with(l));
        out.push_str(&text[copied..i]);
        let piece = &text[i..end];
        if fraction || labelled {
            out.push_str(piece);
        } else {
            out.push_str(&mask_groups(piece, &groups, i));
        }
        copied = end;
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The digit groups from `start`: each `(from, to)`, joined by one space or hyphen.
fn digit_groups(b: &[u8], start: usize) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut j = start;
    loop {
        let from = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        groups.push((from, j));
        if j + 1 < b.len() && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit() {
            j += 1;
            continue;
        }
        return groups;
    }
}

/// Masks the digits of one candidate (`piece` starts at byte `offset` of the text).
fn mask_groups(piece: &str, groups: &[(usize, usize)], offset: usize) -> String {
    let lens: Vec<usize> = groups.iter().map(|g| g.1 - g.0).collect();
    let digits: usize = lens.iter().sum();
    let dashes = piece.contains('-');
    let date = dashes && lens.windows(3).any(|w| w == [4, 2, 2] || w == [2, 2, 4]);
    let spaced_number = groups.len() > 1
        && (8..=15).contains(&digits)
        && lens.iter().all(|&l| l < 8)
        && lens[1..].iter().all(|&l| l >= 2)
        && !date;
    if spaced_number {
        return mask_kept_ends(piece, digits);
    }
    // Each group on its own: a long one is a number written without separators.
    let mut out = String::with_capacity(piece.len());
    let mut at = offset;
    for (from, to) in groups {
        out.push_str(&piece[at - offset..*from - offset]);
        let g = &piece[*from - offset..*to - offset];
        if (8..=15).contains(&g.len()) {
            out.push_str(&mask_kept_ends(g, g.len()));
        } else {
            out.push_str(g);
        }
        at = *to;
    }
    out
}

/// `piece` with every digit but its first two and last four replaced by `*`.
fn mask_kept_ends(piece: &str, digits: usize) -> String {
    let mut seen = 0;
    piece
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen <= 2 || seen > digits - 4 {
                c
            } else {
                '*'
            }
        })
        .collect()
}

fn parse_canonical_positive(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 19 || b[0] == b'0' || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.parse().ok()
}

/// A phone number in international form, stored as ASCII digits only (country code first,
/// no `+`). 8 to 15 digits, first digit nonzero.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses what a person types: `+62 812-3456-7890`, `0812 3456 7890` (a leading 0 becomes
    /// `default_cc`), `6281234567890`, `0062...`. A trunk `0` written after the country code
    /// (`+62 0812...`, `62 0812...`) is dropped, as libphonenumber does for countries whose
    /// national prefix is 0; in the few countries where a 0 belongs to the number itself
    /// (Italy, San Marino, the Vatican, Côte d'Ivoire, Congo) it is kept.
    pub fn parse(input: &str, default_cc: &str) -> Result<Self, ParseIdError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ParseIdError::Empty);
        }
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(ParseIdError::InvalidCharacter),
            }
        }
        if digits.is_empty() {
            return Err(ParseIdError::Empty);
        }
        let international = if plus {
            drop_trunk_zero(&digits)?
        } else if let Some(r) = digits.strip_prefix("00") {
            if r.is_empty() || r.starts_with('0') {
                return Err(ParseIdError::BadInternationalPrefix);
            }
            drop_trunk_zero(r)?
        } else if let Some(r) = digits.strip_prefix('0') {
            format!("{default_cc}{r}")
        } else {
            drop_trunk_zero(&digits)?
        };
        Self::from_digits(&international)
    }

    /// Strict form used for file names and the database: digits only, country code first.
    pub fn from_digits(digits: &str) -> Result<Self, ParseIdError> {
        if digits.is_empty() {
            return Err(ParseIdError::Empty);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseIdError::InvalidCharacter);
        }
        if digits.starts_with('0') {
            return Err(ParseIdError::BadCountryCode);
        }
        if digits.len() < 8 {
            return Err(ParseIdError::TooShort);
        }
        if digits.len() > 15 {
            return Err(ParseIdError::TooLong);
        }
        Ok(Self(digits.to_string()))
    }

    /// Digits only, as used in file names and JIDs.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// The last four digits: the simulator keys its behaviour on them.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// Whether WhatsApp may know this number under another form (see
    /// [`whatsapp_digits`]): then only a usync lookup says which JID to send to.
    pub fn has_other_form(&self) -> bool {
        whatsapp_digits(&self.0) != self.0
    }

    /// `+62*******7890`: for logs and for lists shown to operators.
    pub fn masked(&self) -> String {
        let keep = 4;
        let cc = 2.min(self.0.len() - keep);
        let hidden = self.0.len() - keep - cc;
        format!("+{}{}{}", &self.0[..cc], "*".repeat(hidden), self.last4())
    }
}

/// The form WhatsApp answers a number in, so an answer can be matched to the number asked:
/// Brazilian mobiles gain the 9 after the area code (`55 AA 8xxxxxxx` to `55 AA 98xxxxxxx`),
/// Mexican mobiles are `521...` rather than `52...`, Argentine mobiles `549...` rather than
/// `54...` (the 9 that marks a mobile dialled from abroad; whatsmeow and Baileys users meet
/// all three as "the JID usync returns differs from the number typed"). Any other number is
/// returned as it is.
pub fn whatsapp_digits(digits: &str) -> String {
    let b = digits.as_bytes();
    if digits.starts_with("55") && b.len() == 12 && matches!(b[4], b'6'..=b'9') {
        return format!("{}9{}", &digits[..4], &digits[4..]);
    }
    if digits.starts_with("52") && !digits.starts_with("521") && b.len() == 12 {
        return format!("521{}", &digits[2..]);
    }
    // 54 + a 10-digit national number (area code and subscriber, no leading 9).
    if digits.starts_with("54") && !digits.starts_with("549") && b.len() == 12 {
        return format!("549{}", &digits[2..]);
    }
    digits.to_string()
}

impl TryFrom<String> for PhoneNumber {
    type Error = ParseIdError;
    fn try_from(v: String) -> Result<Self, Self::Error> {
        Self::from_digits(&v)
    }
}

impl From<PhoneNumber> for String {
    fn from(v: PhoneNumber) -> String {
        v.0
    }
}

impl fmt::Display for PhoneNumber {
    /// The one way a number is shown to people: `+62 812-3456-7890` for Indonesia (the
    /// national part as its first three digits, the middle, and the last four, so the last
    /// four that name an account stay together); other countries `+<digits>`, having no
    /// table of their country codes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.strip_prefix("62").filter(|rest| rest.len() >= 8) {
            Some(rest) => {
                let (head, tail) = rest.split_at(3);
                let (middle, last) = tail.split_at(tail.len() - 4);
                write!(f, "+62 {head}-{middle}-{last}")
            }
            None => write!(f, "+{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<String, ParseIdError> {
        PhoneNumber::parse(s, "62").map(|p| p.digits().to_string())
    }

    #[test]
    fn phone_table() {
        use ParseIdError::*;
        let ok = |s: &str| Ok(s.to_string());
        let cases: &[(&str, Result<String, ParseIdError>)] = &[
            ("+62 812-3456-7890", ok("6281234567890")),
            ("0812 3456 7890", ok("6281234567890")),
            ("6281234567890", ok("6281234567890")),
            ("0812-3456-7890", ok("6281234567890")),
            ("(0812) 3456.7890", ok("6281234567890")),
            ("  +6281234567890  ", ok("6281234567890")),
            ("006281234567890", ok("6281234567890")),
            ("+1 (415) 555-2671", ok("14155552671")),
            ("12345678", ok("12345678")),
            ("123456789012345", ok("123456789012345")),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            ("+", Err(Empty)),
            ("abc", Err(InvalidCharacter)),
            ("0812abc4567", Err(InvalidCharacter)),
            ("123", Err(TooShort)),
            ("1234567", Err(TooShort)),
            ("1234567890123456", Err(TooLong)),
            ("+62 812 3456 7890 1234", Err(TooLong)),
            ("000812345678", Err(BadInternationalPrefix)),
            ("00", Err(BadInternationalPrefix)),
            ("+0812345678", Err(BadCountryCode)),
            ("++6281234567890", Err(InvalidCharacter)),
            ("62812345678+90", Err(InvalidCharacter)),
            ("../6281234567890", Err(InvalidCharacter)),
            ("%2e%2e/62812345678", Err(InvalidCharacter)),
            ("62812\u{0}345678", Err(InvalidCharacter)),
            ("٦٢٨١٢٣٤٥٦٧٨٩", Err(InvalidCharacter)),
            ("６２８１２３４５６７８", Err(InvalidCharacter)),
            ("62812345678\n", ok("62812345678")),
            ("6281234567890/..", Err(InvalidCharacter)),
            ("62_812_345_678", Err(InvalidCharacter)),
            ("-6281234567890", ok("6281234567890")),
            // The ways people in Indonesia write one number (issue 9: a trunk 0 after the
            // country code once made 62081234567890, a number that does not exist).
            ("+62 0812-3456-7890", ok("6281234567890")),
            ("+62 (0812) 3456-7890", ok("6281234567890")),
            ("+6208123456789", ok("628123456789")),
            ("62 0812 3456 7890", ok("6281234567890")),
            ("6208123456789", ok("628123456789")),
            ("0062 0812 3456 7890", ok("6281234567890")),
            ("+62 812 3456 7890", ok("6281234567890")),
            ("+62-812-3456-7890", ok("6281234567890")),
            ("+62.812.3456.7890", ok("6281234567890")),
            ("62812-3456-7890", ok("6281234567890")),
            ("62 812 3456 7890", ok("6281234567890")),
            ("0812.3456.7890", ok("6281234567890")),
            ("(0812) 34567890", ok("6281234567890")),
            ("(021) 555-1234", ok("62215551234")),
            ("+62 21 555 1234", ok("62215551234")),
            ("+62 021 555 1234", ok("62215551234")),
            ("0857 1234 5678", ok("6285712345678")),
            ("+62 00812 3456 7890", Err(ZeroAfterCountryCode)),
            ("0812", Err(TooShort)),
            ("+62 0812", Err(TooShort)),
            ("0812 3456 7890 1234", Err(TooLong)),
            ("+62 0812 3456 7890 12345", Err(TooLong)),
            ("0812-3456-789O", Err(InvalidCharacter)),
            ("0812 3456 7890 ext 12", Err(InvalidCharacter)),
            ("+62 812 3456 7890 (rumah)", Err(InvalidCharacter)),
            ("wa.me/6281234567890", Err(InvalidCharacter)),
            // Elsewhere: a trunk 0 is dropped where it is a prefix, kept where it is a digit.
            ("+44 (0)20 7946 0018", ok("442079460018")),
            ("+49 030 123456", ok("4930123456")),
            ("+39 06 1234 5678", ok("390612345678")),
            ("+225 07 0123 4567", ok("2250701234567")),
            ("+60 012-345 6789", ok("60123456789")),
        ];
        for (input, want) in cases {
            assert_eq!(&p(input), want, "input {input:?}");
        }
        assert!(cases.len() >= 30);
    }

    #[test]
    fn country_codes_are_split_right() {
        for (d, n) in [
            ("6281", 2),
            ("14155", 1),
            ("7912", 1),
            ("8801", 3),
            ("2250", 3),
            ("4420", 2),
            ("3906", 2),
        ] {
            assert_eq!(country_code_len(d), n, "{d}");
        }
    }

    #[test]
    fn digits_in_text_are_masked() {
        assert_eq!(
            mask_digits_in("42/whatsmeow-42-6281234567890.db"),
            "42/whatsmeow-42-62*******7890.db"
        );
        assert_eq!(
            mask_digits_in("callback data was not made for this user: pp:6281234567890~AbCd"),
            "callback data was not made for this user: pp:62*******7890~AbCd"
        );
        // IDs and counts stay readable; a group ID (18 digits) is not a phone number.
        assert_eq!(mask_digits_in("as:123456 page 3"), "as:123456 page 3");
        assert_eq!(mask_digits_in("120363012345678901@g.us"), "120363012345678901@g.us");
        assert_eq!(mask_digits_in("12345678"), "12**5678");
        assert_eq!(mask_digits_in(""), "");
    }

    #[test]
    fn phone_numbers_are_masked_with_and_without_separators() {
        let m = |t: &str| mask_phones_in(t, &LOG_ID_LABELS);
        assert_eq!(
            m("Starting pair code authentication for phone: 6281312345678"),
            "Starting pair code authentication for phone: 62*******5678"
        );
        assert_eq!(m("+62 812-3456-7890"), "+62 ***-****-7890");
        assert_eq!(m("call 0812 3456 7890 now"), "call 08** **** 7890 now");
        assert_eq!(m("+1 (415) 555-0199 x"), "+1 (415) 555-0199 x");
        assert_eq!(m("+1 415 555 0199"), "+1 4** *** 0199");
        assert_eq!(
            m("6281234567890.0:1@s.whatsapp.net"),
            "62*******7890.0:1@s.whatsapp.net"
        );
        assert_eq!(
            m("42/whatsmeow-42-6281234567890.db"),
            "42/whatsmeow-42-62*******7890.db"
        );
        assert_eq!(m("a 6281234567890 6281234567891 b"), "a 62*******7890 62*******7891 b");
        // Kept: dates, times, fractions, counts, group IDs, labelled Telegram IDs.
        for keep in [
            "2026-12-07T05:22:54.123456789Z",
            "at 2026-12-07 05:22:54",
            "took 1.234567891s",
            "1 2 3 4 5 6 7 8 9",
            "120363012345678901@g.us",
            "telegram_id=5123456789 chat_id=5123456789",
            r#"{"telegram_id":"5123456789","chat_id":5123456789}"#,
        ] {
            assert_eq!(m(keep), keep);
        }
        assert_eq!(m("user 5123456789"), "user 51****6789");
    }

    #[test]
    fn whatsapp_forms() {
        // Brazil: the ninth digit; Mexico: 521; Argentina: 549.
        assert_eq!(whatsapp_digits("551187654321"), "5511987654321");
        assert_eq!(whatsapp_digits("5511987654321"), "5511987654321");
        assert_eq!(whatsapp_digits("525512345678"), "5215512345678");
        assert_eq!(whatsapp_digits("5215512345678"), "5215512345678");
        assert_eq!(whatsapp_digits("541123456789"), "5491123456789");
        assert_eq!(whatsapp_digits("5491123456789"), "5491123456789");
        // Everyone else keeps the number typed.
        assert_eq!(whatsapp_digits("6281234567890"), "6281234567890");
        assert!(PhoneNumber::from_digits("541123456789").unwrap().has_other_form());
        assert!(!PhoneNumber::from_digits("6281234567890").unwrap().has_other_form());
    }

    #[test]
    fn phone_from_digits_is_strict() {
        assert!(PhoneNumber::from_digits("6281234567890").is_ok());
        assert!(PhoneNumber::from_digits("+6281234567890").is_err());
        assert!(PhoneNumber::from_digits("081234567890").is_err());
        assert!(PhoneNumber::from_digits("62 81234567890").is_err());
    }

    #[test]
    fn phone_display_and_mask() {
        let n = PhoneNumber::parse("081234567890", "62").unwrap();
        assert_eq!(n.to_string(), "+62 812-3456-7890");
        assert_eq!(
            PhoneNumber::from_digits("628123456789").unwrap().to_string(),
            "+62 812-345-6789"
        );
        assert_eq!(
            PhoneNumber::from_digits("14155550123").unwrap().to_string(),
            "+14155550123"
        );
        assert_eq!(n.masked(), "+62*******7890");
        assert_eq!(n.last4(), "7890");
    }

    #[test]
    fn telegram_id_table() {
        let good = ["1", "42", "123456789", "9223372036854775807"];
        for g in good {
            assert!(g.parse::<TelegramId>().is_ok(), "{g}");
        }
        let bad = [
            "",
            "0",
            "-100123",
            "-1",
            "+5",
            "012",
            "abc",
            "12a",
            "1 2",
            "../1",
            "%2e%2e",
            "1\u{0}",
            "٣",
            "9223372036854775808",
            "1.5",
            " 7",
        ];
        for b in bad {
            assert!(b.parse::<TelegramId>().is_err(), "{b:?}");
        }
        assert!(TelegramId::new(-1001234).is_err());
        assert!(TelegramId::new(0).is_err());
    }

    #[test]
    fn account_id_rejects_non_positive() {
        assert!(AccountId::new(0).is_err());
        assert!("7".parse::<AccountId>().is_ok());
        assert!("-7".parse::<AccountId>().is_err());
    }
}
