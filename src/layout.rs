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

    /// `{root}/.fake`: the fake WhatsApp server's world (`TGWA_WA_BACKEND=fake`).
    pub fn fake_dir(&self) -> PathBuf {
        self.root.join(".fake")
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

    /// Creates the data directory (0700) if missing. The data directory itself may be a
    /// symbolic link (an operator may keep it on another disk); everything inside may not.
    pub fn ensure_root(&self) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
    }

    /// Creates `{root}/{tid}` (0700) if missing. A user folder that is a symbolic link is
    /// refused, as the scan refuses it: nothing is written through it.
    pub fn ensure_user_dir(&self, tid: TelegramId) -> std::io::Result<PathBuf> {
        self.ensure_root()?;
        let d = self.user_dir(tid);
        create_private_dir(&d)?;
        Ok(d)
    }

    /// Moves `files` (those that exist, with their `-wal`/`-shm`/`-journal`) into one new
    /// trash folder, keeping each file's folder name. Returns where each went. Refuses (and
    /// moves nothing more) when `.trash` or a file's folder is a symbolic link, so a removal
    /// never writes through a link to somewhere outside the data directory.
    pub fn move_to_trash(&self, files: &[PathBuf]) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
        refuse_symlink(&self.trash_root())?;
        let trash = self.new_trash_dir();
        let mut moved = Vec::new();
        for f in files {
            if let Some(parent) = f.parent().filter(|p| *p != self.root && !p.as_os_str().is_empty()) {
                refuse_symlink(parent)?;
            }
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

/// `mkdir -p` with mode 0700 for what it creates. Refuses a `p` that is a symbolic link
/// (checked without following it, before and after creating), so a `.trash`, `.locks`,
/// `.sim` or user folder replaced by a link is never written through.
pub fn create_private_dir(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    refuse_symlink(p)?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(p)?;
    refuse_symlink(p)
}

/// An error if `p` is a symbolic link (not followed); fine if it is anything else or missing.
pub fn refuse_symlink(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is a symbolic link; refusing to write through it", mask_path(p)),
        )),
        _ => Ok(()),
    }
}

/// A path for a log line or an error message with every phone number in it masked: an
/// account file's phone as [`PhoneNumber::masked`] does (its Telegram ID kept), and any
/// other run of 8 to 15 digits by [`crate::ids::mask_digits_in`]. A folder named by digits
/// alone is a Telegram ID folder and is kept as it is.
pub fn mask_path(p: &Path) -> String {
    let mut out = Vec::new();
    for c in p.components() {
        let s = c.as_os_str().to_string_lossy();
        let shown = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<TelegramId>().is_ok() {
            s.into_owned()
        } else if let Some(f) = parse_account_file(&s) {
            format!(
                "{}-{}-{}.db{}",
                f.kind.prefix(),
                f.telegram_id,
                f.phone.masked().trim_start_matches('+'),
                f.suffix
            )
        } else {
            crate::ids::mask_digits_in(&s)
        };
        out.push(shown);
    }
    let joined = out.join("/");
    // `components()` turns a leading `/` into its own component: keep it single.
    if p.is_absolute() {
        format!("/{}", joined.trim_start_matches('/'))
    } else {
        joined
    }
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

    #[test]
    fn paths_are_masked_for_logs() {
        assert_eq!(
            mask_path(Path::new(
                "/srv/DB USER TELEGRAM/123456789/whatsmeow-123456789-6281234567890.db-wal"
            )),
            "/srv/DB USER TELEGRAM/123456789/whatsmeow-123456789-62*******7890.db-wal"
        );
        assert_eq!(
            mask_path(Path::new("42/bot_data-42-6281234567890.db")),
            "42/bot_data-42-62*******7890.db"
        );
        // A file that does not follow the pattern is masked too.
        assert_eq!(
            mask_path(Path::new("42/backup 6281234567890.txt")),
            "42/backup 62*******7890.txt"
        );
        assert!(!mask_path(Path::new("42/whatsmeow-42-6281234567890.db.old")).contains("6281234567890"));
    }

    #[cfg(unix)]
    fn symlinked_dir(dir: &Path, link: &Path) -> PathBuf {
        let target = dir.join("elsewhere");
        std::fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&target, link).unwrap();
        target
    }

    #[test]
    fn a_symlinked_user_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path().join("data"));
        l.ensure_root().unwrap();
        let tid = TelegramId::new(7).unwrap();
        let target = symlinked_dir(dir.path(), &l.user_dir(tid));
        let e = l.ensure_user_dir(tid).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    }

    #[test]
    fn removal_does_not_write_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path().join("data"));
        let tid = TelegramId::new(7).unwrap();
        let phone = PhoneNumber::from_digits("6281234567890").unwrap();
        l.ensure_user_dir(tid).unwrap();
        let f = l.session_file(tid, &phone);
        std::fs::write(&f, b"x").unwrap();
        // A .trash that is a link: nothing moves into its target.
        let target = symlinked_dir(dir.path(), &l.trash_root());
        assert!(l.move_to_trash(std::slice::from_ref(&f)).is_err());
        assert!(f.exists());
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
        std::fs::remove_file(l.trash_root()).unwrap();

        // A user folder that is a link: its files (elsewhere) are not moved.
        let other = TelegramId::new(8).unwrap();
        let real = dir.path().join("real8");
        std::fs::create_dir_all(&real).unwrap();
        std::os::unix::fs::symlink(&real, l.user_dir(other)).unwrap();
        let g = l.session_file(other, &phone);
        std::fs::write(real.join(g.file_name().unwrap()), b"y").unwrap();
        assert!(l.move_to_trash(std::slice::from_ref(&g)).is_err());
        assert!(real.join(g.file_name().unwrap()).exists());

        // Locks and the simulator's folder refuse links the same way.
        let locks = l.lock_dir();
        symlinked_dir(&dir.path().join("x"), &locks);
        assert!(create_private_dir(&locks).is_err());
    }

    #[test]
    fn a_symlinked_data_dir_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("disk");
        std::fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("data")).unwrap();
        let l = Layout::new(dir.path().join("data"));
        l.ensure_user_dir(TelegramId::new(7).unwrap()).unwrap();
        assert!(target.join("7").is_dir());
    }
}
