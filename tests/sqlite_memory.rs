//! tgwa's process-wide SQLite memory settings (`db::configure_sqlite_process`, applied first
//! by `tgwa::cli::main`) and the session store's page cache, in a process of their own: SQLite
//! takes the settings only before its first connection, so this file holds one test.

use std::time::Duration;

use tgwa::db::{self, Schema};
use tgwa::wa::real::RealOptions;
use tgwa::wa::{Probe, WaBackend};
use tgwa_fakewa::FakeWhatsApp;

#[path = "support/fakewa.rs"]
mod fakewa;

/// Lookaside slots a connection has used at most since it opened.
fn lookaside_high(conn: &rusqlite::Connection) -> i32 {
    let (mut cur, mut high) = (0, 0);
    // SAFETY: the handle is open for as long as `conn`; a read of its own counters.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_LOOKASIDE_USED,
            &mut cur,
            &mut high,
            0,
        )
    };
    assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
    high
}

#[tokio::test]
async fn with_the_memory_settings_a_store_pairs_and_logs_in_again_and_tgwa_pools_keep_lookaside() {
    assert!(db::configure_sqlite_process(), "nothing opened SQLite before this test");
    assert_eq!(RealOptions::default().cache_size_kib, 64);

    let dir = tempfile::tempdir().unwrap();
    let query = |c: &rusqlite::Connection| {
        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    // A connection opened without tgwa's init goes without lookaside (as the session stores
    // do); one from tgwa's pools has SQLite's default back.
    let bare = rusqlite::Connection::open(dir.path().join("bare.db")).unwrap();
    query(&bare);
    assert_eq!(lookaside_high(&bare), 0);
    let pool = db::open_pool(&dir.path().join("bot_data.db"), Schema::Account, 1, None).unwrap();
    let conn = pool.get().unwrap();
    query(&conn);
    assert!(lookaside_high(&conn) > 0, "tgwa's own connections keep lookaside");
    drop(conn);
    // Too late now: SQLite is initialised, and says so instead of half-applying.
    assert!(!db::configure_sqlite_process());

    // The session store with the production options (64 KiB cache, no lookaside): pairs by
    // QR, then a restart logs in again from what it wrote.
    let fake = FakeWhatsApp::default();
    let phone = "6281200000091";
    let spec = fakewa::spec(dir.path(), phone);
    let be = fakewa::backend(&fake);
    assert_eq!(be.options().cache_size_kib, 64);
    let (session, mut rx) = be.start(spec.clone()).await.expect("start");
    session.start_qr().await.expect("qr mode");
    let qr = fakewa::wait_for(&mut rx, "a QR code", |e| match e {
        tgwa::wa::WaEvent::Qr { code, .. } => Some(code.clone()),
        _ => None,
    })
    .await;
    fake.scan_qr(&qr, phone).expect("the phone scans");
    fakewa::connected(&mut rx).await;
    session.disconnect(Duration::from_secs(5)).await;
    assert!(matches!(
        be.probe(&spec.session_file).await.unwrap(),
        Probe::Paired { .. }
    ));
    let (again, mut rx) = be.start(spec).await.expect("restart");
    fakewa::connected(&mut rx).await;
    assert!(fake.is_online(phone));
    again.disconnect(Duration::from_secs(5)).await;
}
