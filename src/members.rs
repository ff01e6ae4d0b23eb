//! Member exports (issue 19): a group's members as a spreadsheet (`.csv`) and as phone
//! contacts (`.vcf`, vCard 3.0), and the members of many groups as one `.csv`.
//!
//! Members WhatsApp knows only by a LID (a hidden number) are kept as such: the number column
//! stays empty and the LID column says what they are; a contact card for one carries no
//! telephone number, never a made-up one.

use crate::text::csv_document;
use crate::wa::{PersonId, RosterEntry};

/// The words of an export's header and cells, in the reader's language.
#[derive(Debug, Clone, Copy)]
pub struct ExportWords {
    /// "Number", "WhatsApp name", "Admin", "LID (number hidden)", "Group", "Group ID".
    pub number: &'static str,
    pub name: &'static str,
    pub admin: &'static str,
    pub lid: &'static str,
    pub group: &'static str,
    pub group_id: &'static str,
    /// The admin column's values: an admin, the group's creator, anyone else.
    pub yes: &'static str,
    pub creator: &'static str,
    pub no: &'static str,
}

impl ExportWords {
    /// Indonesian.
    pub const ID: ExportWords = ExportWords {
        number: "Nomor",
        name: "Nama WhatsApp",
        admin: "Admin",
        lid: "LID (nomor disembunyikan)",
        group: "Grup",
        group_id: "ID grup",
        yes: "ya",
        creator: "ya (pembuat)",
        no: "tidak",
    };
    /// English.
    pub const EN: ExportWords = ExportWords {
        number: "Number",
        name: "WhatsApp name",
        admin: "Admin",
        lid: "LID (number hidden)",
        group: "Group",
        group_id: "Group ID",
        yes: "yes",
        creator: "yes (creator)",
        no: "no",
    };
}

/// `number, name, admin, lid` cells of one member. The number is digits with the country
/// code (as WhatsApp writes it), so a spreadsheet neither treats it as a formula nor drops
/// a sign.
fn member_cells(m: &RosterEntry, w: &ExportWords) -> [String; 4] {
    let (number, lid) = match &m.id {
        PersonId::Phone(p) => (p.digits().to_string(), String::new()),
        PersonId::Lid(l) => (String::new(), format!("{l}@lid")),
    };
    let admin = if m.is_super_admin {
        w.creator
    } else if m.is_admin {
        w.yes
    } else {
        w.no
    };
    [number, m.name.clone().unwrap_or_default(), admin.to_string(), lid]
}

/// One group's members as CSV (UTF-8 with a BOM, header in the reader's language).
pub fn members_csv(members: &[RosterEntry], w: &ExportWords) -> String {
    let header = [w.number, w.name, w.admin, w.lid].map(str::to_string);
    csv_document(std::iter::once(header).chain(members.iter().map(|m| member_cells(m, w))))
}

/// Several groups' members as one CSV: `group, group id` then the member's cells.
pub fn groups_csv(groups: &[(String, String, Vec<RosterEntry>)], w: &ExportWords) -> String {
    let header = [w.group, w.group_id, w.number, w.name, w.admin, w.lid].map(str::to_string);
    let rows = groups.iter().flat_map(|(name, id, members)| {
        members.iter().map(move |m| {
            let [n, nm, a, l] = member_cells(m, w);
            [name.clone(), id.clone(), n, nm, a, l]
        })
    });
    csv_document(std::iter::once(header).chain(rows))
}

/// A vCard text value escaped (RFC 2426 §4, RFC 6350 §3.4): backslash, comma, semicolon and
/// line breaks.
pub fn vcard_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A content line folded to at most 75 octets per physical line (RFC 6350 §3.2): a CRLF and
/// one space before each continuation, never inside a UTF-8 character.
pub fn vcard_fold(line: &str) -> String {
    const LIMIT: usize = 75;
    let mut out = String::with_capacity(line.len() + 8);
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > LIMIT {
            out.push_str("\r\n ");
            // The space counts towards the continuation line's 75 octets.
            used = 1;
        }
        out.push(c);
        used += n;
    }
    out.push_str("\r\n");
    out
}

/// One contact card per member (vCard 3.0): `FN` is the WhatsApp name, else the number;
/// `TEL;type=CELL` the number with `+`. A LID-only member gets a card without `TEL`, its
/// LID in a `NOTE`. `group` names the group in each card's `NOTE`/`CATEGORIES`.
pub fn members_vcf(members: &[RosterEntry], group: &str) -> String {
    let mut out = String::new();
    for m in members {
        let shown = match (&m.name, &m.id) {
            (Some(n), _) if !n.trim().is_empty() => n.trim().to_string(),
            (_, PersonId::Phone(p)) => format!("+{}", p.digits()),
            (_, PersonId::Lid(l)) => format!("WhatsApp LID {l}"),
        };
        let fname = vcard_escape(&shown);
        out.push_str("BEGIN:VCARD\r\nVERSION:3.0\r\n");
        out.push_str(&vcard_fold(&format!("FN:{fname}")));
        // N is required in 3.0: the whole name as the given name.
        out.push_str(&vcard_fold(&format!("N:;{fname};;;")));
        match &m.id {
            PersonId::Phone(p) => out.push_str(&format!("TEL;type=CELL:+{}\r\n", p.digits())),
            PersonId::Lid(l) => out.push_str(&vcard_fold(&format!(
                "NOTE:WhatsApp LID {l}@lid (number hidden by WhatsApp)"
            ))),
        }
        if !group.is_empty() {
            out.push_str(&vcard_fold(&format!("CATEGORIES:{}", vcard_escape(group))));
        }
        out.push_str("END:VCARD\r\n");
    }
    out
}

/// A file name from a group's name: letters, digits, `-` and `_` kept, the rest `_`, at
/// most 40 characters; `group` when nothing is left.
pub fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let s = s.trim_matches('_').to_string();
    if s.is_empty() {
        "group".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PhoneNumber;

    fn m(id: PersonId, name: Option<&str>, admin: bool) -> RosterEntry {
        RosterEntry {
            id,
            name: name.map(str::to_string),
            is_admin: admin,
            is_super_admin: false,
        }
    }

    #[test]
    fn escaping_and_folding_follow_the_rfc() {
        assert_eq!(vcard_escape("a,b;c\\d\ne\r\nf"), "a\\,b\\;c\\\\d\\ne\\nf");
        let long = format!("FN:{}", "é".repeat(60));
        let folded = vcard_fold(&long);
        for line in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets", line.len());
        }
        // Unfolding gives the line back.
        assert_eq!(folded.replace("\r\n ", "").trim_end(), long);
    }

    #[test]
    fn lid_members_are_marked_never_numbered() {
        let list = vec![
            m(
                PersonId::Phone(PhoneNumber::from_digits("6281234567890").unwrap()),
                Some("Budi, \"Pak\"; 🙂"),
                true,
            ),
            m(PersonId::Lid("123456789012345".into()), None, false),
        ];
        let csv = members_csv(&list, &ExportWords::EN);
        assert!(csv.starts_with('\u{feff}'));
        assert!(csv.contains("6281234567890,\"Budi, \"\"Pak\"\"; 🙂\",yes,\n"), "{csv}");
        assert!(csv.contains(",,no,123456789012345@lid"), "{csv}");
        let vcf = members_vcf(&list, "Arisan");
        assert_eq!(vcf.matches("BEGIN:VCARD").count(), 2);
        assert_eq!(vcf.matches("TEL;").count(), 1);
        assert!(vcf.contains("FN:Budi\\, \"Pak\"\\; 🙂\r\n"), "{vcf}");
        assert!(vcf.contains("NOTE:WhatsApp LID 123456789012345@lid"));
    }
}
