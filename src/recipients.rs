//! Recipient lists for a broadcast: numbers, each with an optional name for `{nama}`.
//!
//! A line is `0812…`, `0812…,Budi`, `0812…;Budi`, `0812…<TAB>Budi` or `0812… Budi`; a
//! spreadsheet's CSV with a header row (`nomor,nama`, `name;phone`, …) is read by its columns.
//! A line of several numbers (`0812…, 0813…`) is still several recipients, as before names
//! existed.

use std::collections::BTreeSet;

use crate::ids::PhoneNumber;

/// Header words of the number column.
const NUMBER_HEADERS: [&str; 9] = [
    "nomor", "no", "nomer", "number", "phone", "hp", "telepon", "whatsapp", "wa",
];
/// Header words of the name column.
const NAME_HEADERS: [&str; 4] = ["nama", "name", "nama lengkap", "full name"];

/// The recipients in `text` (deduplicated by number; the first name given wins) and the
/// lines or pieces that are not numbers.
pub fn parse(text: &str, default_cc: &str) -> (Vec<(PhoneNumber, Option<String>)>, Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty()).peekable();
    // (number column, name column) from a header row.
    let mut columns: Option<(usize, Option<usize>)> = None;
    if let Some(first) = lines.peek() {
        columns = header(first);
        if columns.is_some() {
            lines.next();
        }
    }
    let mut add = |p: PhoneNumber, name: Option<String>| {
        if seen.insert(p.clone()) {
            ok.push((p, name));
        }
    };
    for line in lines {
        let fields = split(line);
        if let Some((num_col, name_col)) = columns {
            let cell = fields.get(num_col).map(String::as_str).unwrap_or("");
            match PhoneNumber::parse(cell, default_cc) {
                Ok(p) => add(p, name_col.and_then(|i| clean_name(fields.get(i)))),
                Err(_) => bad.push(line.chars().take(40).collect()),
            }
            continue;
        }
        // `0812-3456-7890 Budi Santoso`: a number, a space, then a name.
        if let [only] = fields.as_slice() {
            if let Some((p, name)) = spaced_name(only, default_cc) {
                add(p, Some(name));
                continue;
            }
        }
        let parsed: Vec<Option<PhoneNumber>> = fields.iter().map(|f| PhoneNumber::parse(f, default_cc).ok()).collect();
        match parsed.as_slice() {
            // Every piece a number (or one piece): a list of numbers, as always.
            all if all.iter().all(Option::is_some) || fields.len() == 1 => {
                for (f, p) in fields.iter().zip(all) {
                    match p {
                        Some(p) => add(p.clone(), None),
                        None => bad.push(f.chars().take(40).collect()),
                    }
                }
            }
            // A number, then its name.
            [Some(p), ..] => add(p.clone(), clean_name(fields.get(1))),
            // A name, then the number.
            [None, Some(p), ..] => add(p.clone(), clean_name(fields.first())),
            _ => bad.push(line.chars().take(40).collect()),
        }
    }
    (ok, bad)
}

/// The columns a header row names, if `line` is one.
fn header(line: &str) -> Option<(usize, Option<usize>)> {
    let cells: Vec<String> = split(line).iter().map(|c| c.to_lowercase()).collect();
    let num = cells.iter().position(|c| NUMBER_HEADERS.contains(&c.as_str()))?;
    let name = cells.iter().position(|c| NAME_HEADERS.contains(&c.as_str()));
    Some((num, name))
}

/// A line's fields: split at `,`, `;` or a tab, with double quotes around a field (a
/// spreadsheet's CSV) taken off and `""` inside read as one quote.
fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' | ';' | '\t' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(ch),
        }
    }
    out.push(cur.trim().to_string());
    // A trailing separator (`0812…,`) adds no field.
    while out.len() > 1 && out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

/// A number followed by a name after a space, when the whole is no number.
fn spaced_name(field: &str, default_cc: &str) -> Option<(PhoneNumber, String)> {
    if PhoneNumber::parse(field, default_cc).is_ok() {
        return None;
    }
    let at = field.find(|c: char| c.is_alphabetic())?;
    let (num, name) = field.split_at(at);
    let p = PhoneNumber::parse(num.trim(), default_cc).ok()?;
    let name = clean_name(Some(&name.to_string()))?;
    Some((p, name))
}

fn clean_name(s: Option<&String>) -> Option<String> {
    s.map(|n| n.chars().take(60).collect::<String>().trim().to_string())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, Option<String>)> {
        let (ok, _) = parse(text, "62");
        ok.into_iter().map(|(p, n)| (p.digits().to_string(), n)).collect()
    }

    #[test]
    fn a_name_may_follow_each_number() {
        let got = names("0812-3456-7890,Budi\n0813 1111 2222;Siti Aminah\n0814 2222 3333\n0815 3333 4444\tJoko\n");
        assert_eq!(
            got,
            vec![
                ("6281234567890".into(), Some("Budi".into())),
                ("6281311112222".into(), Some("Siti Aminah".into())),
                ("6281422223333".into(), None),
                ("6281533334444".into(), Some("Joko".into())),
            ]
        );
    }

    #[test]
    fn a_csv_with_a_header_is_read_by_its_columns() {
        let csv = "Nama,Nomor\n\"Wati, S.Pd\",081234567890\nAgus,0813-1111-2222\n,0814 2222 3333\nbukan nomor,abc\n";
        let (ok, bad) = parse(csv, "62");
        let got: Vec<_> = ok.into_iter().map(|(p, n)| (p.digits().to_string(), n)).collect();
        assert_eq!(
            got,
            vec![
                ("6281234567890".into(), Some("Wati, S.Pd".into())),
                ("6281311112222".into(), Some("Agus".into())),
                ("6281422223333".into(), None),
            ]
        );
        assert_eq!(bad, vec!["bukan nomor,abc".to_string()]);
    }

    #[test]
    fn lines_of_numbers_stay_lists_of_numbers() {
        let (ok, bad) = parse("0812-3456-7890\n+62 812 3456 7890, abc; 123\n\n6281111111111", "62");
        // A number then words is a number and its name; the repeat keeps the first (no name).
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].1, None);
        assert!(bad.is_empty(), "{bad:?}");
        let (ok, bad) = parse("abc\n123", "62");
        assert!(ok.is_empty());
        assert_eq!(bad, vec!["abc".to_string(), "123".to_string()]);
        let (ok, _) = parse("081234567890, 081311112222", "62");
        assert_eq!(ok.len(), 2);
        assert!(ok.iter().all(|(_, n)| n.is_none()));
    }

    #[test]
    fn a_name_may_follow_a_number_after_a_space() {
        let got = names("0812-3456-7890 Budi Santoso\n+62 813 1111 2222 Siti\n");
        assert_eq!(
            got,
            vec![
                ("6281234567890".into(), Some("Budi Santoso".into())),
                ("6281311112222".into(), Some("Siti".into())),
            ]
        );
        let (ok, bad) = parse("Budi\n", "62");
        assert!(ok.is_empty());
        assert_eq!(bad, vec!["Budi".to_string()]);
    }

    #[test]
    fn the_first_name_of_a_repeated_number_wins() {
        let got = names("081234567890,Budi\n081234567890,Andi\n");
        assert_eq!(got, vec![("6281234567890".into(), Some("Budi".into()))]);
    }
}
