//! Text that crosses the boundary with spreadsheets and uploaded files: CSV cells that a
//! spreadsheet program cannot run as formulas, and uploaded `.txt` files decoded whatever
//! their byte-order mark.

/// The UTF-8 byte-order mark. Spreadsheet programs read a CSV file as UTF-8 only when it
/// starts with one (otherwise group names in Indonesian or with emoji come out garbled).
pub const UTF8_BOM: &str = "\u{feff}";

/// One CSV cell: neutralised against formula injection, then quoted when it needs it.
///
/// A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula
/// by Excel, LibreOffice and Google Sheets (a WhatsApp group named `=HYPERLINK(...)` would
/// become a live link); prefixing `'` makes it plain text, as OWASP recommends.
pub fn csv_cell(s: &str) -> String {
    let neutral = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// A CSV document: the BOM, then each row of cells joined by commas, CRLF-free (`\n`).
pub fn csv_document<R, C>(rows: R) -> String
where
    R: IntoIterator<Item = C>,
    C: IntoIterator,
    C::Item: AsRef<str>,
{
    let mut out = String::from(UTF8_BOM);
    for row in rows {
        let cells: Vec<String> = row.into_iter().map(|c| csv_cell(c.as_ref())).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Why an uploaded file is not text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not valid UTF-8 (and no UTF-16 byte-order mark), or it holds NUL characters.
    #[error("the file is not text")]
    NotText,
}

/// Decodes an uploaded text file: UTF-8 with or without a BOM (the BOM is dropped, so the
/// first line is read like any other), and UTF-16 little- or big-endian with its BOM (what
/// Windows Notepad writes as "Unicode").
pub fn decode_upload(bytes: &[u8]) -> Result<String, DecodeError> {
    let text = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        std::str::from_utf8(rest).map_err(|_| DecodeError::NotText)?.to_string()
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        utf16(rest, u16::from_le_bytes)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        utf16(rest, u16::from_be_bytes)?
    } else {
        std::str::from_utf8(bytes)
            .map_err(|_| DecodeError::NotText)?
            .to_string()
    };
    if text.contains('\0') {
        return Err(DecodeError::NotText);
    }
    Ok(text)
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, DecodeError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(DecodeError::NotText);
    }
    let units = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| DecodeError::NotText)
}

// --- ways ---

/// Orders names the way people read them: case aside, and runs of digits by their value, so
/// "Angkatan 2" comes before "Angkatan 10".
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ka, kb) = (natural_key(a), natural_key(b));
    ka.cmp(&kb).then_with(|| a.cmp(b))
}

/// A name as comparable pieces: text lower-cased, numbers as (length without leading zeros,
/// digits), which orders them by value however long they are.
fn natural_key(s: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digit = c.is_ascii_digit();
        let mut run = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() != digit {
                break;
            }
            run.push(d);
            chars.next();
        }
        if digit {
            let trimmed = run.trim_start_matches('0').to_string();
            out.push((String::new(), trimmed.len(), trimmed));
        } else {
            out.push((run.to_lowercase(), 0, String::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_naturally() {
        let mut v = vec!["Angkatan 10", "angkatan 2", "Angkatan 1", "Arisan", "Angkatan 02b"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["Angkatan 1", "angkatan 2", "Angkatan 02b", "Angkatan 10", "Arisan"]);
    }

    #[test]
    fn formulas_are_neutralised() {
        for (raw, want) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("+62812", "'+62812"),
            ("-1+1", "'-1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("Arisan RT 1", "Arisan RT 1"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn documents_start_with_a_bom() {
        let doc = csv_document([["name", "link"], ["=1+1", "https://chat.whatsapp.com/A"]]);
        assert_eq!(doc, "\u{feff}name,link\n'=1+1,https://chat.whatsapp.com/A\n");
        assert!(doc.as_bytes().starts_with(b"\xEF\xBB\xBF"));
    }

    #[test]
    fn uploads_decode_whatever_their_bom() {
        let text = "6281234567890\n6281111111111\n";
        assert_eq!(decode_upload(text.as_bytes()).unwrap(), text);
        let mut bom8 = b"\xEF\xBB\xBF".to_vec();
        bom8.extend_from_slice(text.as_bytes());
        assert_eq!(decode_upload(&bom8).unwrap(), text, "the first line keeps its number");
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for u in text.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(decode_upload(&le).unwrap(), text);
        assert_eq!(decode_upload(&be).unwrap(), text);
        // Broken input is refused, never half-read.
        assert_eq!(decode_upload(&le[..le.len() - 1]), Err(DecodeError::NotText));
        assert_eq!(decode_upload(&[0xFF, 0xFE, 0x00, 0xD8]), Err(DecodeError::NotText));
        assert_eq!(decode_upload(b"\xC3\x28"), Err(DecodeError::NotText));
        assert_eq!(decode_upload(b"a\0b"), Err(DecodeError::NotText));
        // UTF-16 without a BOM has NULs in ASCII text: refused as not text.
        assert_eq!(decode_upload(&le[2..]), Err(DecodeError::NotText));
    }
}
