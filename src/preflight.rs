//! `tgwa check`: everything `tgwa run` needs, checked without starting it. Reads the
//! configuration (a bad one never gets here: exit 2), the data directory (modes, links,
//! foreign files), the master database (migrations pending), the callback secret, and asks
//! Telegram `getMe` with a timeout.
//!
//! Exit codes: 0 ready; 1 Telegram unreachable or something `run` would stop on; 2 no token
//! or a token Telegram rejects.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::config::Config;
use crate::db::Schema;
use crate::layout::mask_path;
use crate::telegram::{self, TelegramError};

/// How bad one finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// As it should be.
    Ok,
    /// `run` works, but something deserves a look.
    Warn,
    /// `run` would stop, or would fail its users.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// What was found, for the operator.
    pub text: String,
}

fn finding(level: Level, text: impl Into<String>) -> Finding {
    Finding {
        level,
        text: text.into(),
    }
}

/// Modes that let anyone but the owner in (group or other bits).
fn too_open(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// The data directory: its mode, its user folders' and files' modes, links inside it, and
/// (through the dry-run scan) files that are not accounts.
pub async fn data_dir_findings(config: &Config) -> Vec<Finding> {
    let root = &config.data_dir;
    let mut out = Vec::new();
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.push(finding(
                Level::Ok,
                format!(
                    "data directory {} does not exist yet (created at the first run)",
                    root.display()
                ),
            ));
            return out;
        }
        Err(e) => {
            out.push(finding(Level::Fail, format!("data directory {}: {e}", root.display())));
            return out;
        }
        Ok(m) => {
            let mode = m.permissions().mode() & 0o777;
            if too_open(mode) {
                out.push(finding(
                    Level::Warn,
                    format!(
                        "data directory {} has mode {mode:04o}; expected 0700 (chmod 700)",
                        root.display()
                    ),
                ));
            } else {
                out.push(finding(Level::Ok, format!("data directory {}", root.display())));
            }
        }
    }
    let mut open = Vec::new();
    let mut links = Vec::new();
    if let Ok(top) = std::fs::read_dir(root) {
        for e in top.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
            if m.file_type().is_symlink() {
                links.push(mask_path(&p));
                continue;
            }
            if too_open(m.permissions().mode()) && e.file_name() != ".gitkeep" {
                open.push(mask_path(&p));
            }
            if m.is_dir() {
                for f in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                    let Ok(fm) = std::fs::symlink_metadata(f.path()) else {
                        continue;
                    };
                    if fm.file_type().is_symlink() {
                        links.push(mask_path(&f.path()));
                    } else if too_open(fm.permissions().mode()) {
                        open.push(mask_path(&f.path()));
                    }
                }
            }
        }
    }
    if !open.is_empty() {
        out.push(finding(
            Level::Warn,
            format!(
                "{} entries readable by others (folders should be 0700, files 0600): {}",
                open.len(),
                open.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if !links.is_empty() {
        out.push(finding(
            Level::Warn,
            format!(
                "{} symbolic links inside the data directory (never followed): {}",
                links.len(),
                links.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    match crate::scan::scan_dry_run(config).await {
        Ok(r) => {
            let s = &r.summary;
            if s.invalid + s.orphaned > 0 {
                out.push(finding(
                    Level::Warn,
                    format!(
                        "{} invalid and {} orphaned (foreign) files: see `tgwa scan --dry-run`, `tgwa cleanup`",
                        s.invalid, s.orphaned
                    ),
                ));
            }
            if s.would_register > 0 {
                out.push(finding(
                    Level::Ok,
                    format!(
                        "{} account files will be registered at the next start",
                        s.would_register
                    ),
                ));
            }
        }
        Err(e) => out.push(finding(Level::Fail, format!("cannot scan the data directory: {e}"))),
    }
    out
}

/// The master database: present, readable, and how many migrations the next start applies.
pub fn master_findings(path: &Path) -> Vec<Finding> {
    if !path.exists() {
        return vec![finding(
            Level::Ok,
            format!(
                "master database {} does not exist yet (created at the first run)",
                path.display()
            ),
        )];
    }
    let version = crate::db::open_read_only(path)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            c.pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0))
                .map_err(|e| e.to_string())
        });
    let latest = Schema::Master.latest();
    let f = match version {
        Err(e) => finding(Level::Fail, format!("master database {}: {e}", path.display())),
        Ok(v) if v > latest => finding(
            Level::Fail,
            format!(
                "master database {} is at schema {v}, newer than this program ({latest}): use a newer tgwa",
                path.display()
            ),
        ),
        Ok(v) if v < latest => finding(
            Level::Ok,
            format!(
                "master database {}: {} migrations pending (applied at the next start)",
                path.display(),
                latest - v
            ),
        ),
        Ok(_) => finding(
            Level::Ok,
            format!("master database {} (schema {latest})", path.display()),
        ),
    };
    vec![f]
}

/// The callback secret: absent (created at the first run) or exactly 32 bytes, 0600.
pub fn secret_findings(data_dir: &Path) -> Vec<Finding> {
    let p = data_dir.join(".secret");
    let f = match std::fs::symlink_metadata(&p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            finding(Level::Ok, "callback secret missing (created at the first run)")
        }
        Err(e) => finding(Level::Fail, format!("callback secret: {e}")),
        Ok(m) if m.file_type().is_symlink() => finding(Level::Fail, "callback secret is a symbolic link"),
        Ok(m) if !m.is_file() || m.len() != 32 => finding(
            Level::Fail,
            format!(
                "callback secret {} is not a 32-byte file: `tgwa run` refuses it (restore it, or delete it to make a new one)",
                mask_path(&p)
            ),
        ),
        Ok(m) if too_open(m.permissions().mode()) => finding(
            Level::Warn,
            format!("callback secret {} is readable by others (chmod 600)", mask_path(&p)),
        ),
        Ok(_) => finding(Level::Ok, "callback secret"),
    };
    vec![f]
}

/// Runs every check, prints the report on stdout, and returns the exit code.
pub async fn run(config: &Config) -> i32 {
    let mut findings = vec![finding(
        Level::Ok,
        format!(
            "configuration (backend {:?}, up to {} accounts)",
            config.wa_backend, config.max_accounts
        ),
    )];
    findings.extend(data_dir_findings(config).await);
    let master = config.master_db.clone();
    match crate::db::blocking(move || Ok(master_findings(&master))).await {
        Ok(f) => findings.extend(f),
        Err(e) => findings.push(finding(Level::Fail, format!("master database: {e}"))),
    }
    findings.extend(secret_findings(&config.data_dir));
    if let Some(w) = config.http_addr.and_then(crate::http::exposure_warning) {
        findings.push(finding(Level::Warn, w));
    }
    let master = config.master_db.clone();
    let accounts = crate::db::blocking(move || Ok(account_rows(&master)))
        .await
        .ok()
        .flatten();
    findings.extend(descriptor_findings(
        config,
        accounts,
        crate::fds::reachable_limit().ok(),
    ));
    for f in &findings {
        print_finding(f);
    }
    let local_failed = findings.iter().any(|f| f.level == Level::Fail);
    let Some(token) = config.bot_token.clone() else {
        print_finding(&finding(
            Level::Fail,
            "TELEGRAM_BOT_TOKEN is not set (get one from @BotFather, put it in .env)",
        ));
        return 2;
    };
    let mut bot = teloxide::Bot::new(token);
    if let Some(url) = &config.telegram_api_url {
        match url.parse() {
            Ok(u) => bot = bot.set_api_url(u),
            Err(e) => {
                print_finding(&finding(Level::Fail, format!("TELEGRAM_API_URL: {e}")));
                return 2;
            }
        }
    }
    match telegram::get_me(&bot, telegram::GET_ME_TIMEOUT).await {
        Ok(me) => {
            let name = me.user.username.as_deref().unwrap_or("?");
            print_finding(&finding(
                Level::Ok,
                format!("Telegram: bot @{name} (id {})", me.user.id),
            ));
            if local_failed {
                1
            } else {
                println!("ready");
                0
            }
        }
        Err(e @ TelegramError::TokenRejected) => {
            print_finding(&finding(Level::Fail, e.to_string()));
            2
        }
        Err(e @ TelegramError::Unreachable(_)) => {
            print_finding(&finding(Level::Fail, e.to_string()));
            1
        }
    }
}

/// The accounts the master database holds (`None` when it cannot be read).
fn account_rows(path: &Path) -> Option<u64> {
    if !path.exists() {
        return Some(0);
    }
    let c = crate::db::open_read_only(path).ok()?;
    c.query_row("SELECT COUNT(*) FROM whatsapp_accounts", [], |r| r.get::<_, i64>(0))
        .ok()
        .map(|n| n.max(0) as u64)
}

/// Whether the open-files limit `tgwa run` will have (`limit`, its hard limit) holds the
/// descriptors of `accounts` connected accounts, and of `TGWA_MAX_ACCOUNTS` of them: a warning
/// above 80 %, as a new `/pair` would then fail with "Too many open files".
pub fn descriptor_findings(config: &Config, accounts: Option<u64>, limit: Option<u64>) -> Vec<Finding> {
    let Some(limit) = limit else {
        return vec![finding(Level::Warn, "cannot read the open-files limit (RLIMIT_NOFILE)")];
    };
    let cache = config.pool_cache_size as u64;
    let now = accounts.unwrap_or(0);
    let need_now = crate::fds::needed(now, cache);
    let need_max = crate::fds::needed(config.max_accounts as u64, cache);
    let advice = "raise it (LimitNOFILE= in the systemd unit, ulimits: nofile in compose.yaml, ulimit -n)";
    if crate::fds::near_limit(need_now, limit) {
        return vec![finding(
            Level::Warn,
            format!(
                "open-files limit {limit}: {now} accounts need about {need_now} descriptors ({} each); {advice}",
                crate::fds::PER_ACCOUNT
            ),
        )];
    }
    if crate::fds::near_limit(need_max, limit) {
        return vec![finding(
            Level::Warn,
            format!(
                "open-files limit {limit}: enough for {now} accounts, not for TGWA_MAX_ACCOUNTS={} (about {need_max} descriptors); {advice}",
                config.max_accounts
            ),
        )];
    }
    vec![finding(
        Level::Ok,
        format!("open-files limit {limit} (about {need_now} needed for {now} accounts)"),
    )]
}

fn print_finding(f: &Finding) {
    let tag = match f.level {
        Level::Ok => "ok  ",
        Level::Warn => "warn",
        Level::Fail => "FAIL",
    };
    // Paths come from disk: escape control characters so a name cannot forge lines.
    println!("{tag} {}", f.text.escape_debug());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_near_the_limit_are_a_warning() {
        let mut config = crate::config::Config::from_map(&std::collections::HashMap::from([(
            "TELEGRAM_BOT_TOKEN".to_string(),
            "1:x".to_string(),
        )]))
        .expect("config");
        config.max_accounts = 100;
        // systemd's default soft limit and 260 accounts: the case that failed `/pair`.
        let f = descriptor_findings(&config, Some(260), Some(1024));
        assert_eq!(f[0].level, Level::Warn, "{f:?}");
        let f = descriptor_findings(&config, Some(50), Some(65_536));
        assert_eq!(f[0].level, Level::Ok, "{f:?}");
        config.max_accounts = 20_000;
        let f = descriptor_findings(&config, Some(50), Some(65_536));
        assert_eq!(f[0].level, Level::Warn, "{f:?}");
        assert!(f[0].text.contains("TGWA_MAX_ACCOUNTS"));
    }

    #[test]
    fn master_schema_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.db");
        assert_eq!(master_findings(&p)[0].level, Level::Ok);
        let c = rusqlite::Connection::open(&p).unwrap();
        let behind = crate::db::Schema::Master.latest() - 1;
        c.pragma_update(None, "user_version", behind).unwrap();
        drop(c);
        let f = &master_findings(&p)[0];
        assert!(f.text.contains("1 migrations pending"), "{f:?}");
        let c = rusqlite::Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert_eq!(master_findings(&p)[0].level, Level::Fail);
    }

    #[test]
    fn secret_must_be_32_bytes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(secret_findings(dir.path())[0].level, Level::Ok);
        let p = dir.path().join(".secret");
        std::fs::write(&p, [0u8; 5]).unwrap();
        assert_eq!(secret_findings(dir.path())[0].level, Level::Fail);
        std::fs::write(&p, [0u8; 32]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(secret_findings(dir.path())[0].level, Level::Warn);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(secret_findings(dir.path())[0].level, Level::Ok);
    }
}
