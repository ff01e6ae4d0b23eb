//! Writes a converted device through whatsapp-rust's own store (`SqliteStore` and its
//! `DeviceStore` / `SignalStore` / `ProtocolStore` traits), so the file is what the crate itself
//! would have written, then reads it back through the crate and through tgwa's probe.

use std::path::Path;
use std::sync::Arc;

use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::store::traits::{DeviceStore, ProtocolStore, SignalStore};
use whatsapp_rust::store::SqliteStore;

use super::convert::Converted;
use crate::wa::Probe;

/// What a written store holds, counted back from the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub pre_keys: usize,
    pub identities: usize,
    pub sessions: usize,
    pub lid_mappings: usize,
}

/// Why writing or checking the new store failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the new store: {0}")]
    Store(String),
    #[error("the new store does not check out: {0}")]
    Check(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

fn store_err(e: impl std::fmt::Display) -> WriteError {
    WriteError::Store(e.to_string())
}

/// Writes `c` into a new whatsapp-rust store at `path` (which must not exist), checks it and
/// leaves it as one self-contained file (no `-wal`/`-shm`), mode 0600.
pub async fn write(path: &Path, c: &Converted) -> Result<Counts, WriteError> {
    let url = path
        .to_str()
        .filter(|s| !s.contains(['?', '#']))
        .ok_or_else(|| WriteError::Store(format!("unusable path {}", path.display())))?
        .to_string();
    {
        let p = path.to_path_buf();
        crate::db::blocking(move || {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)?;
            Ok(())
        })
        .await
        .map_err(store_err)?;
    }
    {
        let store = SqliteStore::new(&url).await.map_err(store_err)?;
        store.save(&c.device).await.map_err(store_err)?;
        let ids: Vec<(Arc<str>, [u8; 32])> = c.identities.iter().map(|(a, k)| (Arc::from(a.as_str()), *k)).collect();
        store.put_identities_batch(&ids).await.map_err(store_err)?;
        let sessions: Vec<(Arc<str>, Bytes)> = c
            .sessions
            .iter()
            .map(|(a, r)| (Arc::from(a.as_str()), Bytes::from(r.clone())))
            .collect();
        store.put_sessions_batch(&sessions).await.map_err(store_err)?;
        for (keys, uploaded) in [(&c.pre_keys_uploaded, true), (&c.pre_keys_pending, false)] {
            let batch: Vec<(u32, Bytes)> = keys.iter().map(|(id, r)| (*id, Bytes::from(r.clone()))).collect();
            if !batch.is_empty() {
                store.store_prekeys_batch(&batch, uploaded).await.map_err(store_err)?;
            }
        }
        if !c.lid_map.is_empty() {
            store.put_lid_mappings(&c.lid_map).await.map_err(store_err)?;
        }
        // Read back through the crate: the device must load as the same paired device.
        let loaded = store
            .load()
            .await
            .map_err(store_err)?
            .ok_or_else(|| WriteError::Check("no device after saving".into()))?;
        if loaded.pn != c.device.pn || loaded.lid != c.device.lid {
            return Err(WriteError::Check("the device loads with other JIDs".into()));
        }
        if loaded.noise_key.public_key != c.device.noise_key.public_key
            || loaded.identity_key.public_key != c.device.identity_key.public_key
            || loaded.account.as_deref() != c.device.account.as_deref()
        {
            return Err(WriteError::Check("the device loads with other keys".into()));
        }
    }
    let p = path.to_path_buf();
    let expected = c.device.pn.as_ref().map(|j| j.to_string()).unwrap_or_default();
    crate::db::blocking(move || Ok(finish(&p, &expected)))
        .await
        .map_err(store_err)?
}

/// Folds the WAL into the file and leaves it in rollback-journal mode, so one rename moves
/// the whole store (whatsapp-rust turns WAL back on when it opens it), then probes it.
fn finish(path: &Path, expected_jid: &str) -> Result<Counts, WriteError> {
    {
        let conn = rusqlite::Connection::open(path).map_err(store_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(store_err)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(store_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
            .map_err(store_err)?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(WriteError::Check(format!(
                "still in {mode} mode (is it open elsewhere?)"
            )));
        }
    }
    for side in ["-wal", "-shm", "-journal"] {
        let mut s = path.as_os_str().to_owned();
        s.push(side);
        if Path::new(&s).exists() {
            return Err(WriteError::Check(format!("{side} file left behind")));
        }
    }
    match crate::wa::real::probe::probe_blocking(path) {
        Ok(Probe::Paired { jid }) if jid == expected_jid => {}
        Ok(Probe::Paired { jid }) => return Err(WriteError::Check(format!("probe reads JID {jid}"))),
        Ok(Probe::Unpaired) => return Err(WriteError::Check("probe reads an unpaired device".into())),
        Err(e) => return Err(WriteError::Check(format!("probe: {e}"))),
    }
    count(path)
}

/// Counts the rows the conversion wrote.
pub fn count(path: &Path) -> Result<Counts, WriteError> {
    let conn = crate::db::open_read_only(path).map_err(store_err)?;
    let n = |table: &str| -> Result<usize, WriteError> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
            .map(|v| v as usize)
            .map_err(store_err)
    };
    Ok(Counts {
        pre_keys: n("prekeys")?,
        identities: n("identities")?,
        sessions: n("sessions")?,
        lid_mappings: n("lid_pn_mapping")?,
    })
}
