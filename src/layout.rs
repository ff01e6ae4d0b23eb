//! The data directory's layout. Every path is built here from typed IDs, so nothing a user
//! types can name a file outside `DB USER TELEGRAM/`.

use std::path::{Path, PathBuf};

use crate::ids::{PhoneNumber, TelegramId};

/// The two files an account owns in its owner's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// `whatsmeow-{tid}-{phone}.db`: the WhatsApp session.
    Session,
    /// `bot_data-{tid}-{phone}.db`: the account's bot data.
    BotData,
}

impl FileKind {
    fn prefix(self) -> &'static str {
        match self {
            FileKind::Session => "whatsmeow",
            FileKind::BotData => "bot_data",
        }
    }
}

/// A file name that follows the account pattern, with an optional SQLite side-file suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFileName {
    /// Which of the two files.
    pub kind: FileKind,
    /// The Telegram ID in the name (may differ from the folder's: the scan checks).
    pub telegram_id: TelegramId,
    /// The phone number in the name.
    pub phone: PhoneNumber,
    /// `""` for the database itself, `"-wal"`, `"-shm"` or `"-journal"` for side files.
    pub suffix: &'static str,
}

/// Where everything lives under the data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A layout rooted at `root` (`DB USER TELEGRAM` by default).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `{root}/{tid}`
    pub fn user_dir(&self, tid: TelegramId) -> PathBuf {
        self.root.join(tid.to_string())
    }

    /// The file name of one of an account's files.
    pub fn file_name(kind: FileKind, tid: TelegramId, phone: &PhoneNumber) -> String {
        format!("{}-{}-{}.db", kind.prefix(), tid, phone.digits())
    }

    /// `{root}/{tid}/whatsmeow-{tid}-{phone}.db`
    pub fn session_file(&self, tid: TelegramId, phone: &PhoneNumber) -> PathBuf {
        self.user_dir(tid).join(Self::file_name(FileKind::Session, tid, phone))
    }

    /// `{root}/{tid}/bot_data-{tid}-{phone}.db`
    pub fn bot_data_file(&self, tid: TelegramId, phone: &PhoneNumber) -> PathBuf {
        self.user_dir(tid).join(Self::file_name(FileKind::BotData, tid, phone))
    }

    /// `{root}/.trash`
    pub fn trash_root(&self) -> PathBuf {
        self.root.join(".trash")
    }

    /// `{root}/.sim`: the simulator's shared world.
    pub fn sim_dir(&self) -> PathBuf {
        self.root.join(".sim")
    }

    /// `{root}/.locks`: per-account advisory lock files.
    pub fn lock_dir(&self) -> PathBuf {
        self.root.join(".locks")
    }

    /// A fresh `{root}/.trash/<timestamp>` name (not created).
    pub fn new_trash_dir(&self) -> PathBuf {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        self.trash_root().join(stamp)
    }

    /// Creates the data directory (0700) if missing.
    pub fn ensure_root(&self) -> std::io::Result<()> {
        create_private_dir(&self.root)
    }

    /// Creates `{root}/{tid}` (0700) if missing.
    pub fn ensure_user_dir(&self, tid: TelegramId) -> std::io::Result<PathBuf> {
        self.ensure_root()?;
        let d = self.user_dir(tid);
        create_private_dir(&d)?;
        Ok(d)
    }

    /// Moves `files` (those that exist, with their `-wal`/`-shm`/`-journal`) into one new
    /// trash folder, keeping each file's folder name. Returns where each went.
    pub fn move_to_trash(&self, files: &[PathBuf]) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
        let trash = self.new_trash_dir();
        let mut moved = Vec::new();
        for f in files {
            for candidate in with_side_files(f) {
                if std::fs::symlink_metadata(&candidate).is_err() {
                    continue;
                }
                let parent = candidate
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(PathBuf::from)
                    .unwrap_or_default();
                let dest_dir = trash.join(parent);
                create_private_dir(&trash)?;
                create_private_dir(&dest_dir)?;
                let dest = dest_dir.join(candidate.file_name().unwrap_or_default());
                std::fs::rename(&candidate, &dest)?;
                moved.push((candidate, dest));
            }
        }
        Ok(moved)
    }
}

/// The database file itself and its SQLite side files.
pub fn with_side_files(db: &Path) -> Vec<PathBuf> {
    let mut out = vec![db.to_path_buf()];
    for s in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(s);
        out.push(PathBuf::from(name));
    }
    out
}

/// Deletes a database file and its side files; missing ones are fine. Only for files that
/// hold nothing (see `manager::AccountManager::discard_pairing`): everything else goes to trash.
pub fn remove_with_side_files(db: &Path) -> std::io::Result<()> {
    for f in with_side_files(db) {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// `mkdir -p` with mode 0700 for what it creates.
pub fn create_private_dir(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
}

/// Parses `whatsmeow-{tid}-{phone}.db[-wal|-shm|-journal]` or `bot_data-...`; `None` for any
/// other name.
pub fn parse_account_file(name: &str) -> Option<AccountFileName> {
    let (base, suffix) = ["-wal", "-shm", "-journal"]
        .iter()
        .find_map(|s| name.strip_suffix(s).map(|b| (b, *s)))
        .unwrap_or((name, ""));
    let stem = base.strip_suffix(".db")?;
    let (kind, rest) = if let Some(r) = stem.strip_prefix("whatsmeow-") {
        (FileKind::Session, r)
    } else if let Some(r) = stem.strip_prefix("bot_data-") {
        (FileKind::BotData, r)
    } else {
        return None;
    };
    let (tid, phone) = rest.split_once('-')?;
    Some(AccountFileName {
        kind,
        telegram_id: tid.parse().ok()?,
        phone: PhoneNumber::from_digits(phone).ok()?,
        suffix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let l = Layout::new("/data");
        let tid = TelegramId::new(42).unwrap();
        let phone = PhoneNumber::from_digits("6281234567890").unwrap();
        let s = l.session_file(tid, &phone);
        assert_eq!(s, PathBuf::from("/data/42/whatsmeow-42-6281234567890.db"));
        let b = l.bot_data_file(tid, &phone);
        assert_eq!(b, PathBuf::from("/data/42/bot_data-42-6281234567890.db"));
        let parsed = parse_account_file("whatsmeow-42-6281234567890.db-wal").unwrap();
        assert_eq!(parsed.kind, FileKind::Session);
        assert_eq!(parsed.telegram_id, tid);
        assert_eq!(parsed.phone, phone);
        assert_eq!(parsed.suffix, "-wal");
    }

    #[test]
    fn hostile_names_do_not_parse() {
        for n in [
            "whatsmeow-42-6281234567890.txt",
            "whatsmeow-42-../../etc.db",
            "whatsmeow--1-6281234567890.db",
            "whatsmeow-042-6281234567890.db",
            "whatsmeow-42-%2e%2e.db",
            "whatsmeow-42-62812\u{0}34567890.db",
            "other-42-6281234567890.db",
            "whatsmeow-42-123.db",
            "whatsmeow-42.db",
        ] {
            assert!(parse_account_file(n).is_none(), "{n:?}");
        }
    }

    #[test]
    fn trash_keeps_files() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path());
        let tid = TelegramId::new(7).unwrap();
        let phone = PhoneNumber::from_digits("6281234567890").unwrap();
        l.ensure_user_dir(tid).unwrap();
        let f = l.session_file(tid, &phone);
        std::fs::write(&f, b"x").unwrap();
        std::fs::write(format!("{}-wal", f.display()), b"y").unwrap();
        let moved = l.move_to_trash(std::slice::from_ref(&f)).unwrap();
        assert_eq!(moved.len(), 2);
        assert!(!f.exists());
        assert!(moved
            .iter()
            .all(|(_, to)| to.exists() && to.starts_with(l.trash_root())));
    }
}
