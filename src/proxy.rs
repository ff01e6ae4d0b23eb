//! A proxy per WhatsApp account (SOCKS5 or HTTP CONNECT), chosen by the operator.
//!
//! Operators with many numbers on one server ask for it first (WAHA #1771, Evolution API
//! #1870): WhatsApp sees every session from one IP otherwise. The proxy of an account is kept
//! in the account's own bot-data file (`bot_data-{tid}-{phone}.db`, mode 0600 in the user's
//! 0700 folder), beside the session file that holds the account's keys: the same protection
//! as its other secrets. `TGWA_WA_PROXY` is the default for accounts that have none.
//!
//! A [`ProxyUrl`] never prints its password: `Display` and `Debug` show
//! `socks5://user:***@host:port`, so logs, screens, CLI output and the audit log cannot leak it.
//! The dialer that uses it lives in [`crate::wa::real::proxy`].

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::db::DbError;

/// The proxy protocols a WhatsApp connection can go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// SOCKS5 (RFC 1928), with username/password auth (RFC 1929) when given. The target's
    /// host name is sent to the proxy, which resolves it (`socks5h` semantics).
    Socks5,
    /// HTTP `CONNECT` (RFC 9110 section 9.3.6), with `Proxy-Authorization: Basic` when given.
    HttpConnect,
}

/// A parsed proxy address: `socks5://[user:pass@]host:port` or `http://[user:pass@]host:port`
/// (`socks5h://` is accepted as SOCKS5). Constructed only by [`ProxyUrl::parse`].
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    kind: ProxyKind,
    host: String,
    port: u16,
    user: Option<String>,
    pass: Option<String>,
}

/// Why a proxy address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyParseError {
    #[error("the proxy must start with socks5:// or http://")]
    Scheme,
    #[error("the proxy has no host")]
    Host,
    #[error("the proxy needs a port (host:port)")]
    Port,
    #[error("the proxy address has a path, query or spaces; only scheme://[user:pass@]host:port")]
    Junk,
}

impl ProxyUrl {
    /// Parses an operator's input (see the type's docs).
    pub fn parse(input: &str) -> Result<Self, ProxyParseError> {
        let input = input.trim();
        let (kind, rest) = if let Some(r) = strip_prefix_ci(input, "socks5://").or(strip_prefix_ci(input, "socks5h://"))
        {
            (ProxyKind::Socks5, r)
        } else if let Some(r) = strip_prefix_ci(input, "http://") {
            (ProxyKind::HttpConnect, r)
        } else {
            return Err(ProxyParseError::Scheme);
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', ' ', '\t']) {
            return Err(ProxyParseError::Junk);
        }
        // The last '@' splits: a password may itself hold '@'.
        let (cred, hostport) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (user, pass) = match cred {
            Some(c) => {
                let (u, p) = c.split_once(':').unwrap_or((c, ""));
                (Some(percent_decode(u)), Some(percent_decode(p)))
            }
            None => (None, None),
        };
        let (host, port) = hostport.rsplit_once(':').ok_or(ProxyParseError::Port)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(ProxyParseError::Host);
        }
        let port: u16 = port.parse().map_err(|_| ProxyParseError::Port)?;
        if port == 0 {
            return Err(ProxyParseError::Port);
        }
        Ok(Self {
            kind,
            host: host.to_string(),
            port,
            user: user.filter(|u| !u.is_empty()),
            pass: pass.filter(|p| !p.is_empty()),
        })
    }

    /// SOCKS5 or HTTP CONNECT.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host, as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The username and password, when the proxy needs them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.user.as_deref().map(|u| (u, self.pass.as_deref().unwrap_or("")))
    }

    /// The full address with the password, for storage only: never log or show it.
    pub fn expose(&self) -> String {
        let scheme = self.scheme();
        match (&self.user, &self.pass) {
            (Some(u), Some(p)) => format!(
                "{scheme}://{}:{}@{}",
                percent_encode(u),
                percent_encode(p),
                self.hostport()
            ),
            (Some(u), None) => format!("{scheme}://{}@{}", percent_encode(u), self.hostport()),
            _ => format!("{scheme}://{}", self.hostport()),
        }
    }

    fn scheme(&self) -> &'static str {
        match self.kind {
            ProxyKind::Socks5 => "socks5",
            ProxyKind::HttpConnect => "http",
        }
    }

    fn hostport(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Masked: the password is never shown.
impl std::fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.scheme();
        match (&self.user, &self.pass) {
            (Some(u), Some(_)) => write!(f, "{scheme}://{u}:***@{}", self.hostport()),
            (Some(u), None) => write!(f, "{scheme}://{u}@{}", self.hostport()),
            _ => write!(f, "{scheme}://{}", self.hostport()),
        }
    }
}

/// Masked like `Display`, so `{:?}` in a log cannot leak the password.
impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &s[prefix.len()..])
}

/// `%XX` escapes in a user name or password (a password holding ':' or '@' is written so).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The proxy stored in an account's bot-data database, if any.
pub fn stored(conn: &Connection) -> Result<Option<ProxyUrl>, DbError> {
    let url: Option<String> = conn
        .query_row("SELECT url FROM account_proxy WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    // A row that no longer parses (edited by hand) is treated as none rather than failing
    // every start; the CLI shows it as missing and the operator sets it again.
    Ok(url.and_then(|u| ProxyUrl::parse(&u).ok()))
}

/// Stores (`Some`) or removes (`None`) an account's proxy in its bot-data database.
pub fn store(conn: &Connection, proxy: Option<&ProxyUrl>) -> Result<(), DbError> {
    match proxy {
        Some(p) => conn.execute(
            "INSERT INTO account_proxy (id, url, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at",
            rusqlite::params![p.expose(), crate::db::now()],
        )?,
        None => conn.execute("DELETE FROM account_proxy WHERE id = 1", [])?,
    };
    Ok(())
}

/// The proxy of the account whose session file is `session_file`, read from the bot-data file
/// beside it (`whatsmeow-{tid}-{phone}.db` -> `bot_data-{tid}-{phone}.db`). `None` when that
/// file, or its proxy table, does not exist yet (a pairing in progress, an older schema).
pub fn for_session_file(session_file: &Path) -> Result<Option<ProxyUrl>, DbError> {
    let Some(name) = session_file.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    let Some(rest) = name.strip_prefix("whatsmeow-") else {
        return Ok(None);
    };
    let bot_data = session_file.with_file_name(format!("bot_data-{rest}"));
    if !bot_data.exists() {
        return Ok(None);
    }
    let conn = crate::db::open_read_only(&bot_data)?;
    let has_table: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'account_proxy'",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(None);
    }
    stored(&conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_masks() {
        let p = ProxyUrl::parse("socks5://alice:s3cr%40t@10.0.0.1:1080").unwrap();
        assert_eq!(p.kind(), ProxyKind::Socks5);
        assert_eq!(p.credentials(), Some(("alice", "s3cr@t")));
        assert_eq!(p.to_string(), "socks5://alice:***@10.0.0.1:1080");
        assert!(!format!("{p:?}").contains("s3cr"));
        assert_eq!(ProxyUrl::parse(&p.expose()).unwrap(), p);
        let h = ProxyUrl::parse("HTTP://proxy.example:3128/").unwrap();
        assert_eq!(h.kind(), ProxyKind::HttpConnect);
        assert_eq!(h.credentials(), None);
        assert_eq!(h.to_string(), "http://proxy.example:3128");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(ProxyUrl::parse("ftp://h:1"), Err(ProxyParseError::Scheme));
        assert_eq!(ProxyUrl::parse("socks5://host"), Err(ProxyParseError::Port));
        assert_eq!(ProxyUrl::parse("socks5://:1080"), Err(ProxyParseError::Host));
        assert_eq!(ProxyUrl::parse("http://h:80/x"), Err(ProxyParseError::Junk));
        assert_eq!(ProxyUrl::parse("http://h:0"), Err(ProxyParseError::Port));
    }

    #[test]
    fn stored_in_the_account_database() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c, crate::db::Schema::Account).unwrap();
        assert_eq!(stored(&c).unwrap(), None);
        let p = ProxyUrl::parse("http://u:p@h:8080").unwrap();
        store(&c, Some(&p)).unwrap();
        assert_eq!(stored(&c).unwrap(), Some(p));
        store(&c, None).unwrap();
        assert_eq!(stored(&c).unwrap(), None);
    }
}
