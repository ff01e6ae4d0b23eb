//! The fake world on disk, so a restarted server still knows its accounts, linked devices,
//! groups and the messages it accepted.
//!
//! One JSON file ([`crate::FakeOptions::state_file`]), replaced atomically (a temporary file
//! beside it, then a rename; mode 0600). The server never writes on its hot path: locking
//! the world only bumps a counter ([`Persister::touch`]); a saver thread wakes every
//! [`crate::FakeOptions::save_every`], copies the world under its lock when the counter
//! moved, and serializes and writes the copy outside it. [`crate::FakeWhatsApp::flush`] and
//! the drop of the last handle write at once.
//!
//! Connections, registrations in progress and pairing-code flows are not kept: they die
//! with the process on the real server too. A file that cannot be read or parsed is moved
//! aside (`world.json.corrupt-<unix ms>`) with a warning, and the world starts empty.
//!
//! Two servers on one file (a restart in one test process, while the old server's last
//! handles still linger): each server writes a random token to `<file>.owner` when it has
//! loaded the file, and a server that finds another token there stops saving instead of
//! overwriting the newer state. (The file's inode would not do: a freed inode is reused by
//! the next temporary file at once.)

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;
use wacore_libsignal::protocol::KeyPair;

use crate::world::{Account, Group, SentMessage, World};

/// The version of the file's layout; a file of another version is treated as corrupt.
const FORMAT: u32 = 1;

/// Declares the world's fields that are kept, one line each: a new field of [`World`] is
/// kept by adding its name and type here (it must be `Clone + Serialize + Deserialize`).
/// A field missing from an older file keeps [`World::new`]'s value.
macro_rules! kept_fields {
    ($($field:ident : $ty:ty),* $(,)?) => {
        /// The kept part of the world.
        #[derive(Default, Serialize, Deserialize)]
        pub(crate) struct WorldState {
            $(#[serde(default, skip_serializing_if = "Option::is_none")]
            $field: Option<$ty>,)*
        }

        impl WorldState {
            /// A copy of the kept fields (taken under the world's lock; cheap next to disk).
            pub(crate) fn capture(w: &World) -> Self {
                Self { $($field: Some(w.$field.clone()),)* }
            }

            /// Puts the kept fields into `w`, leaving the rest as they are.
            pub(crate) fn restore(self, w: &mut World) {
                $(if let Some(v) = self.$field { w.$field = v; })*
            }
        }
    };
}

kept_fields! {
    accounts: BTreeMap<String, Account>,
    groups: BTreeMap<String, Group>,
    sent: Vec<SentMessage>,
    add_refusals: HashMap<String, u16>,
    usync_errors: HashMap<String, u16>,
    canonical: HashMap<String, String>,
    hidden_phones: HashSet<String>,
    next_lid: u64,
    next_group: u64,
    next_id: u64,
    wrote: BTreeSet<(String, String)>,
    queue: Vec<crate::queue::Queued>,
}

/// What the file holds.
#[derive(Serialize, Deserialize)]
pub(crate) struct Snapshot {
    format: u32,
    /// The server's static Noise key: clients cache it and open with it after a restart.
    server_key: Option<KeyPair>,
    world: WorldState,
}

impl Snapshot {
    pub(crate) fn new(server_key: &KeyPair, world: &World) -> Self {
        Self {
            format: FORMAT,
            server_key: Some(server_key.clone()),
            world: WorldState::capture(world),
        }
    }

    /// The server key and the world this snapshot describes.
    pub(crate) fn into_parts(self) -> (Option<KeyPair>, World) {
        let mut w = World::new();
        self.world.restore(&mut w);
        (self.server_key, w)
    }
}

/// The messages recorded in a state file, without loading the rest of the world: for
/// tests that look at what a (possibly stopped) server accepted.
pub fn read_sent_messages(state_file: &Path) -> std::io::Result<Vec<SentMessage>> {
    #[derive(Deserialize)]
    struct OnlySent {
        #[serde(default)]
        sent: Option<Vec<SentMessage>>,
    }
    #[derive(Deserialize)]
    struct File {
        world: OnlySent,
    }
    let bytes = std::fs::read(state_file)?;
    let f: File = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    Ok(f.world.sent.unwrap_or_default())
}

/// Reads `path`: `None` when there is no file, or when it was unreadable or corrupt (then it
/// is moved aside and a warning logged). Never fails.
pub(crate) fn load(path: &Path) -> Option<Snapshot> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            move_aside(path, &e.to_string());
            return None;
        }
    };
    match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(s) if s.format == FORMAT => Some(s),
        Ok(s) => {
            move_aside(path, &format!("unknown format {}", s.format));
            None
        }
        Err(e) => {
            move_aside(path, &e.to_string());
            None
        }
    }
}

/// Renames a bad state file to `<name>.corrupt-<unix ms>` so the next start does not trip
/// on it and a person can still look at it.
fn move_aside(path: &Path, why: &str) {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{ms}"));
    let aside = PathBuf::from(aside);
    match std::fs::rename(path, &aside) {
        Ok(()) => warn!(file = %path.display(), moved_to = %aside.display(), error = why,
            "the fake WhatsApp state file is unreadable; starting with an empty world"),
        Err(e) => warn!(file = %path.display(), error = why, rename_error = %e,
            "the fake WhatsApp state file is unreadable and could not be moved aside; starting with an empty world"),
    }
}

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Writes `bytes` to `path` atomically (a temporary file in the same folder, then renamed
/// over it), mode 0600. Not synced to disk: a reader never sees half a file and a killed
/// process leaves the last whole one, which is all a test server needs; an fsync per save
/// would make every send of the fake backend wait for the disk.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = with_suffix(path, ".tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    // A temporary file left by a crash may have another mode.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Where a server keeps its world, and what it last wrote there.
pub(crate) struct Persister {
    path: PathBuf,
    /// `<file>.owner`: the token of the newest server on the file.
    owner_file: PathBuf,
    /// This server's token.
    token: String,
    /// Bumped each time the world is locked: it may have changed.
    touched: AtomicU64,
    writer: Mutex<Writer>,
}

#[derive(Default)]
struct Writer {
    /// `touched` as of the last write.
    saved: u64,
    /// Whether this server wrote its token to the owner file yet.
    claimed: bool,
    /// Set once another server took the file over: this one no longer writes.
    superseded: bool,
}

impl Persister {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            owner_file: with_suffix(&path, ".owner"),
            token: format!("{:016x}", rand::random::<u64>()),
            path,
            touched: AtomicU64::new(1),
            writer: Mutex::new(Writer::default()),
        }
    }

    /// The world may have changed.
    pub(crate) fn touch(&self) {
        self.touched.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the world if it may have changed since the last write. `snapshot` is called
    /// (it takes the world's lock) only when a write is due; the write happens after it
    /// returned.
    pub(crate) fn save(&self, snapshot: impl FnOnce() -> Snapshot) -> std::io::Result<()> {
        let mut wr = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let touched = self.touched.load(Ordering::Relaxed);
        if wr.superseded || touched == wr.saved {
            return Ok(());
        }
        if !wr.claimed {
            write_atomic(&self.owner_file, self.token.as_bytes())?;
            wr.claimed = true;
        } else if std::fs::read(&self.owner_file).is_ok_and(|t| t != self.token.as_bytes()) {
            wr.superseded = true;
            warn!(file = %self.path.display(),
                "another fake WhatsApp server took over the state file; this one stops saving");
            return Ok(());
        }
        let bytes = serde_json::to_vec(&snapshot()).map_err(std::io::Error::other)?;
        write_atomic(&self.path, &bytes)?;
        wr.saved = touched;
        Ok(())
    }
}

/// Saves every `every` while the server lives; ends (within one period) once the last
/// handle is gone, the drop having written the final state.
pub(crate) fn spawn_saver<T: Send + Sync + 'static>(
    owner: Weak<T>,
    every: Duration,
    save: fn(&T),
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("fakewa-save".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(owner) = owner.upgrade() else { break };
            save(&owner);
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use whatsapp_rust::bot::Bot;
    use whatsapp_rust::store::SqliteStore;
    use whatsapp_rust::Client;

    use super::*;
    use crate::{FakeOptions, FakeWhatsApp};

    fn kept(path: &Path) -> FakeOptions {
        FakeOptions {
            state_file: Some(path.to_path_buf()),
            ..FakeOptions::default()
        }
    }

    #[test]
    fn the_world_survives_a_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        let first = FakeWhatsApp::new(kept(&path));
        first.add_user("6281200000001");
        first.link_device("6281200000001", 3, [7; 32]);
        let g = first.create_group("6281200000001", "Arisan", &["6281200000002"], true);
        first.set_join_approval(&g, true);
        first.set_canonical("5511987654321", "55119987654321");
        first.refuse_add("6281200000009", 403);
        first.usync_error_for("6281200000008", 429);
        first.hide_phone_in_lid_groups("6281200000002");
        first.world().sent.push(SentMessage {
            from: "6281200000001".into(),
            to: g.clone(),
            id: "3EB0AA".into(),
            recipients: vec!["6281200000002:0".into()],
            text: None,
            encryption: Vec::new(),
            media: None,
            read_by_phone: false,
        });
        assert!(first.note_text("3EB0AA", "halo"));
        assert!(!first.note_text("never-sent", "x"), "an unknown id is not recorded");
        let (lid1, lid2) = (first.lid_of("6281200000001"), first.lid_of("6281200000002"));
        let server_key = first.server_identity().key.public_key;
        let (groups, sent) = (first.groups(), first.sent_messages());
        let identity = first.world().accounts["6281200000001"].phone_identity.clone();
        drop(first);

        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = FakeWhatsApp::new(kept(&path));
        assert_eq!(second.groups(), groups);
        assert_eq!(second.sent_messages(), sent);
        assert_eq!(sent[0].text.as_deref(), Some("halo"));
        assert_eq!(read_sent_messages(&path).unwrap(), sent);
        assert_eq!(second.server_identity().key.public_key, server_key);
        assert_eq!(
            (second.lid_of("6281200000001"), second.lid_of("6281200000002")),
            (lid1, lid2.clone())
        );
        assert!(second.has_linked_device("6281200000001"));
        let w = second.world();
        let acc = &w.accounts["6281200000001"];
        assert_eq!(acc.devices[&3].noise, Some([7; 32]));
        assert_eq!(
            acc.phone_identity.private_key.serialize(),
            identity.private_key.serialize()
        );
        assert_eq!(w.canonical["5511987654321"], "55119987654321");
        assert_eq!(w.add_refusals["6281200000009"], 403);
        assert_eq!(w.usync_errors["6281200000008"], 429);
        assert!(w.hidden_phones.contains("6281200000002"));
        drop(w);
        // The counters carry on: a new account and a new group get new ids.
        second.add_user("6281200000003");
        assert_ne!(second.lid_of("6281200000003"), lid2);
        let g2 = second.create_group("6281200000003", "Baru", &[], false);
        assert_ne!(g2, g);
    }

    #[test]
    fn a_field_missing_from_an_older_file_keeps_its_fresh_value() {
        let state: WorldState = serde_json::from_str(r#"{"sent": []}"#).unwrap();
        let mut w = World::new();
        let lid_before = w.next_lid;
        state.restore(&mut w);
        assert_eq!(w.next_lid, lid_before);
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_the_world_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        std::fs::write(&path, b"{ not json").unwrap();
        let fake = FakeWhatsApp::new(kept(&path));
        assert!(fake.groups().is_empty());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("world.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(std::fs::read(dir.path().join(&aside[0])).unwrap(), b"{ not json");
        // The new empty world took the file's place.
        assert!(load(&path).is_some());
    }

    #[test]
    fn an_older_server_stops_saving_once_a_newer_one_took_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        let old = FakeWhatsApp::new(kept(&path));
        old.add_user("6281200000001");
        old.flush().unwrap();
        let new = FakeWhatsApp::new(kept(&path));
        new.add_user("6281200000002");
        new.flush().unwrap();
        // The old server changes its world and saves: the newer file stays.
        old.create_group("6281200000001", "Stale", &[], false);
        old.flush().unwrap();
        drop(old);
        let again = FakeWhatsApp::new(kept(&path));
        assert!(again.groups().is_empty());
        assert!(again.world().accounts.contains_key("6281200000002"));
    }

    #[tokio::test]
    async fn the_background_saver_writes_changes_without_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        let fake = FakeWhatsApp::new(FakeOptions {
            save_every: Duration::from_millis(20),
            ..kept(&path)
        });
        let g = fake.create_group("6281200000001", "Cepat", &[], false);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let on_disk = load(&path).map(|s| s.into_parts().1.groups.contains_key(&g));
            if on_disk == Some(true) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the change never reached the file"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(fake);
    }

    /// A client on `session` against `fake`: its client, the QR codes it shows, and a signal
    /// per login.
    async fn client(
        fake: &FakeWhatsApp,
        session: &Path,
    ) -> (
        whatsapp_rust::bot::BotHandle,
        Arc<Client>,
        tokio::sync::mpsc::UnboundedReceiver<String>,
        tokio::sync::mpsc::UnboundedReceiver<()>,
    ) {
        let store = SqliteStore::new(&session.display().to_string()).await.unwrap();
        let (qr_tx, qr) = tokio::sync::mpsc::unbounded_channel();
        let (up_tx, up) = tokio::sync::mpsc::unbounded_channel();
        let bot = Bot::builder()
            .with_backend(store)
            .with_transport_factory(fake.transport_factory())
            .with_http_client(fake.http_client())
            .with_version(crate::VERSION)
            .skip_history_sync()
            .on_qr_code(move |code, _| {
                let _ = qr_tx.send(code);
                async {}
            })
            .on_connected(move |_| {
                let _ = up_tx.send(());
                async {}
            })
            .build()
            .await
            .unwrap();
        let handle = bot.spawn();
        let client = handle.client();
        (handle, client, qr, up)
    }

    async fn within<T>(what: &str, f: impl std::future::Future<Output = Option<T>>) -> T {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .unwrap_or_else(|_| panic!("no {what} within 30 s"))
            .unwrap_or_else(|| panic!("{what}: the stream ended"))
    }

    /// Disconnects within a bound, then makes sure the run loop is gone.
    async fn stop(handle: whatsapp_rust::bot::BotHandle, client: &Arc<Client>) {
        let _ = tokio::time::timeout(Duration::from_secs(5), client.disconnect()).await;
        handle.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_server_logs_a_stored_session_in_and_still_has_its_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.json");
        let session = dir.path().join("session.db");
        let phone = "6281200000001";

        let first = FakeWhatsApp::new(kept(&path));
        let (handle, c, mut qr, mut up) = client(&first, &session).await;
        let code = within("QR code", qr.recv()).await;
        first.scan_qr(&code, phone).unwrap();
        within("login after pairing", up.recv()).await;
        let g = first.create_group(phone, "Tetap ada", &["6281200000002"], false);
        stop(handle, &c).await;
        // What the fake backend does when it is dropped: the client's lingering tasks may
        // still hold the server, so its own drop may come later.
        first.flush().unwrap();
        drop(first);

        // Not `trust_unknown_devices`: the device is known from the file.
        let second = FakeWhatsApp::new(kept(&path));
        assert!(!second.options().trust_unknown_devices);
        let (handle, client, _qr, mut up) = client(&second, &session).await;
        within("login after the restart", up.recv()).await;
        let groups = client.groups().get_participating().await.unwrap();
        let subjects: Vec<String> = groups.values().map(|m| m.subject.clone()).collect();
        assert!(groups.keys().any(|j| j.to_string() == g), "{subjects:?}");
        assert_eq!(subjects, vec!["Tetap ada".to_string()]);
        stop(handle, &client).await;
    }
}
