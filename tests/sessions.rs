//! Live WhatsApp sessions over the simulator: pairing outcomes, logout and ban, restart,
//! bounded restore, isolation of the manager's API, the context cache, purge and shutdown.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tgwa::account::{AccountError, AccountStatus};
use tgwa::config::Config;
use tgwa::ids::{AccountId, PhoneNumber, TelegramId};
use tgwa::manager::AccountManager;
use tgwa::supervisor::{LiveState, Notice, PairError};
use tgwa::wa::{self, EventRx, Probe, SessionSpec, WaBackend, WaError, WaEvent, WaSession};
use tokio::sync::mpsc;

fn config(dir: &Path, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert(
        "TGWA_DATA_DIR".into(),
        dir.join("DB USER TELEGRAM").display().to_string(),
    );
    vars.insert("TGWA_MASTER_DB".into(), dir.join("bot_data.db").display().to_string());
    vars.insert("TGWA_WA_BACKEND".into(), "sim".into());
    vars.insert("TGWA_SIM_PAIR_DELAY_MS".into(), "50".into());
    vars.insert("TGWA_SIM_CODE_TTL_MS".into(), "400".into());
    vars.insert("TGWA_LOGIN_JITTER_MS".into(), "0".into());
    vars.insert("TGWA_MAX_ACCOUNTS".into(), "1000".into());
    vars.insert("TGWA_SHUTDOWN_TIMEOUT_SECS".into(), "5".into());
    // The cooldowns have their own test below.
    vars.insert("TGWA_PAIR_COOLDOWN_SECS".into(), "0".into());
    vars.insert("TGWA_PAIR_MAX_PER_HOUR".into(), "0".into());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_map(&vars).unwrap()
}

async fn open(cfg: Config) -> AccountManager {
    let backend = wa::backend_for(&cfg).await.unwrap();
    AccountManager::open(cfg, backend).await.unwrap()
}

fn tid(n: i64) -> TelegramId {
    TelegramId::new(n).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_digits(s).unwrap()
}

/// Waits for the first notice matching `pred`, up to `secs`.
async fn wait_notice(rx: &mut mpsc::UnboundedReceiver<Notice>, secs: u64, pred: impl Fn(&Notice) -> bool) -> Notice {
    let fut = async {
        loop {
            match rx.recv().await {
                Some(n) if pred(&n) => return n,
                Some(_) => continue,
                None => panic!("notice channel closed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("timed out waiting for a notice")
}

async fn pair_ok(
    m: &AccountManager,
    rx: &mut mpsc::UnboundedReceiver<Notice>,
    owner: TelegramId,
    p: &str,
) -> AccountId {
    let (acc, code) = m.start_pairing(owner, phone(p)).await.unwrap();
    assert_eq!(code.code.len(), 8, "{code:?}");
    assert_eq!(code.display().len(), 9);
    let want = acc.id;
    wait_notice(
        rx,
        10,
        |n| matches!(n, Notice::Paired { account, .. } if *account == want),
    )
    .await;
    want
}

async fn wait_state(m: &AccountManager, id: AccountId, want: LiveState) {
    let owner = m.get(id).await.unwrap().unwrap().telegram_id;
    let mut rx = m.watch_status(owner, id).await.unwrap().expect("session is live");
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| s.state == want))
        .await
        .expect("timed out waiting for the state")
        .expect("supervisor ended");
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn ordinary_pairing_registers_activates_and_connects() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[])).await;
    let mut rx = m.take_notices().unwrap();
    let owner = tid(1001);
    let id = pair_ok(&m, &mut rx, owner, "6281200001111").await;
    let acc = m.account_of(owner, id).await.unwrap();
    assert_eq!(acc.status, AccountStatus::Active);
    assert!(acc.jid.is_some());
    wait_state(&m, id, LiveState::Connected).await;
    let ctx = m.context(owner, None).await.unwrap();
    assert_eq!(ctx.active.map(|a| a.id), Some(id));
    let user_dir = dir.path().join("DB USER TELEGRAM/1001");
    assert_eq!(acc.db_path, user_dir.join("whatsmeow-1001-6281200001111.db"));
    assert_eq!(acc.bot_data_db_path, user_dir.join("bot_data-1001-6281200001111.db"));
    assert_eq!(mode(&user_dir), 0o700);
    assert_eq!(mode(&acc.db_path), 0o600);
    assert_eq!(mode(&acc.bot_data_db_path), 0o600);
    assert!(matches!(
        m.backend().probe(&acc.db_path).await,
        Ok(Probe::Paired { .. })
    ));
    m.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn rate_limited_pairing_reports_retry_and_registers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[])).await;
    let owner = tid(1002);
    let err = m.start_pairing(owner, phone("6281200000429")).await.unwrap_err();
    match err {
        PairError::Wa(WaError::RateLimited { retry_after }) => assert_eq!(retry_after, Some(Duration::from_secs(60))),
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert!(m.by_phone(&phone("6281200000429")).await.unwrap().is_none());
    assert!(!m.layout().session_file(owner, &phone("6281200000429")).exists());
    // The per-user pairing slot is free again.
    let mut rx = m.take_notices().unwrap();
    pair_ok(&m, &mut rx, owner, "6281200002222").await;
    m.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn expired_code_cleans_up_files_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[])).await;
    let mut rx = m.take_notices().unwrap();
    let owner = tid(1003);
    let p = phone("6281200000408");
    let (acc, _code) = m.start_pairing(owner, p.clone()).await.unwrap();
    assert_eq!(m.get(acc.id).await.unwrap().unwrap().status, AccountStatus::Pairing);
    let n = wait_notice(&mut rx, 10, |n| matches!(n, Notice::PairFailed { .. })).await;
    assert!(
        matches!(n, Notice::PairFailed { ref reason, .. } if reason.contains("expired")),
        "{n:?}"
    );
    assert!(m.get(acc.id).await.unwrap().is_none(), "no account row is left behind");
    assert!(
        !acc.db_path.exists() && !acc.bot_data_db_path.exists(),
        "files moved out of the user folder"
    );
    // A pairing that never completed leaves nothing anywhere: not its folder, not in trash.
    assert!(!m.layout().user_dir(owner).exists(), "the user folder it made is gone");
    assert!(!m.layout().trash_root().exists(), "nothing went to trash");
    assert!(m.accounts_of(owner).await.unwrap().is_empty());
}

#[tokio::test]
async fn logout_from_phone_is_marked_and_files_kept() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[])).await;
    let mut rx = m.take_notices().unwrap();
    let owner = tid(1004);
    let id = pair_ok(&m, &mut rx, owner, "6281200000401").await;
    let n = wait_notice(&mut rx, 15, |n| matches!(n, Notice::LoggedOut { .. })).await;
    assert!(matches!(n, Notice::LoggedOut { owner: o, account, .. } if o == owner && account == id));
    let acc = m.account_of(owner, id).await.unwrap();
    assert_eq!(acc.status, AccountStatus::LoggedOut);
    assert!(acc.db_path.exists() && acc.bot_data_db_path.exists(), "files are kept");
    assert!(matches!(
        m.session_of(owner, id).await,
        Err(AccountError::WrongState(AccountStatus::LoggedOut))
    ));
}

#[tokio::test]
async fn temporary_ban_is_marked_with_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[])).await;
    let mut rx = m.take_notices().unwrap();
    let owner = tid(1005);
    let id = pair_ok(&m, &mut rx, owner, "6281200000402").await;
    let n = wait_notice(&mut rx, 15, |n| matches!(n, Notice::Banned { .. })).await;
    let Notice::Banned { until, reason, .. } = n else {
        unreachable!()
    };
    let now = chrono::Utc::now().timestamp();
    assert!(until > now + 3000 && until <= now + 3600, "until {until}, now {now}");
    assert_eq!(reason, "101");
    let acc = m.account_of(owner, id).await.unwrap();
    assert_eq!(acc.status, AccountStatus::Banned);
    assert_eq!(acc.banned_until, Some(until));
}

#[tokio::test]
async fn restart_reconnects_every_active_account() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let m = open(config(dir.path(), &[])).await;
        let mut rx = m.take_notices().unwrap();
        let a = pair_ok(&m, &mut rx, tid(2001), "6281200003001").await;
        let b = pair_ok(&m, &mut rx, tid(2002), "6281200003002").await;
        m.shutdown(Duration::from_secs(5)).await;
        (a, b)
    };
    let m = open(config(dir.path(), &[])).await;
    let s = m.restore_all(Duration::from_secs(10), Duration::ZERO).await.unwrap();
    assert_eq!((s.total, s.connected), (2, 2), "{s:?}");
    assert_eq!(m.live_status_unchecked(a).unwrap().state, LiveState::Connected);
    assert_eq!(m.live_status_unchecked(b).unwrap().state, LiveState::Connected);
    m.shutdown(Duration::from_secs(5)).await;
    assert_eq!(m.live_count(), 0);
}

/// Wraps the simulator and counts sessions that started but have not connected yet.
struct Counting {
    inner: Arc<dyn WaBackend>,
    in_flight: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

#[async_trait]
impl WaBackend for Counting {
    async fn start(&self, spec: SessionSpec) -> Result<(Arc<dyn WaSession>, EventRx), WaError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        let (session, mut events) = self.inner.start(spec).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let in_flight = self.in_flight.clone();
        tokio::spawn(async move {
            let mut counted = true;
            while let Some(ev) = events.recv().await {
                if counted && ev == WaEvent::Connected {
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    counted = false;
                }
                if tx.send(ev).is_err() {
                    break;
                }
            }
            if counted {
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Ok((session, rx))
    }

    async fn probe(&self, session_file: &Path) -> Result<Probe, WaError> {
        self.inner.probe(session_file).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_accounts_restore_within_the_concurrency_bound() {
    const N: i64 = 500;
    let dir = tempfile::tempdir().unwrap();
    {
        let m = open(config(dir.path(), &[])).await;
        let mut rx = m.take_notices().unwrap();
        let mut tasks = Vec::new();
        for i in 0..N {
            let m = m.clone();
            tasks.push(tokio::spawn(async move {
                m.start_pairing(tid(10_000 + i), phone(&format!("62813{:06}5", i)))
                    .await
                    .map(|(a, _)| a.id)
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let mut paired = 0;
        while paired < N {
            wait_notice(&mut rx, 30, |n| matches!(n, Notice::Paired { .. })).await;
            paired += 1;
        }
        m.shutdown(Duration::from_secs(10)).await;
    }
    let cfg = config(dir.path(), &[("TGWA_LOGIN_CONCURRENCY", "8")]);
    let sim = wa::backend_for(&cfg).await.unwrap();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let backend = Arc::new(Counting {
        inner: sim,
        in_flight: in_flight.clone(),
        max: max.clone(),
    });
    let m = AccountManager::open(cfg, backend).await.unwrap();
    let s = m.restore_all(Duration::from_secs(30), Duration::ZERO).await.unwrap();
    assert_eq!(s.total, N as usize);
    assert_eq!(s.connected, N as usize, "{s:?}");
    let peak = max.load(Ordering::SeqCst);
    assert!(peak <= 8, "at most 8 logins in flight, saw {peak}");
    assert!(peak >= 2, "logins ran concurrently (peak {peak})");
    m.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn no_manager_api_reaches_another_users_account() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[])).await;
    let mut rx = m.take_notices().unwrap();
    let (alice, bob) = (tid(3001), tid(3002));
    let a1 = pair_ok(&m, &mut rx, alice, "6281200004001").await;
    let a2 = pair_ok(&m, &mut rx, alice, "6281200004002").await;
    let b1 = pair_ok(&m, &mut rx, bob, "6281200004003").await;
    for theirs in [a1, a2] {
        assert!(matches!(m.account_of(bob, theirs).await, Err(AccountError::NotOwner)));
        assert!(matches!(m.session_of(bob, theirs).await, Err(AccountError::NotOwner)));
        assert!(matches!(m.live_status(bob, theirs).await, Err(AccountError::NotOwner)));
        assert!(matches!(m.watch_status(bob, theirs).await, Err(AccountError::NotOwner)));
        assert!(matches!(m.set_active(bob, theirs).await, Err(AccountError::NotOwner)));
        assert!(matches!(
            m.cancel_pairing(bob, theirs).await,
            Err(AccountError::NotOwner)
        ));
        assert!(matches!(m.logout(bob, theirs).await, Err(AccountError::NotOwner)));
        assert!(matches!(m.remove(bob, theirs).await, Err(AccountError::NotOwner)));
        // Still Alice's, untouched and connected.
        let acc = m.account_of(alice, theirs).await.unwrap();
        assert_eq!(acc.status, AccountStatus::Active);
    }
    assert!(matches!(m.account_of(alice, b1).await, Err(AccountError::NotOwner)));
    let bobs: Vec<AccountId> = m.accounts_of(bob).await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(bobs, vec![b1]);
    let ctx = m.context(bob, None).await.unwrap();
    assert!(ctx.accounts.iter().all(|a| a.telegram_id == bob));
    assert_eq!(ctx.active.map(|a| a.id), Some(b1));
    // Alice's number cannot be paired by Bob.
    assert!(matches!(
        m.start_pairing(bob, phone("6281200004001")).await,
        Err(PairError::Account(AccountError::OwnedByOther))
    ));
    m.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn context_cache_expires_without_touching_connections() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[("TGWA_SESSION_TIMEOUT_SECS", "1")])).await;
    let mut rx = m.take_notices().unwrap();
    let owner = tid(4001);
    let id = pair_ok(&m, &mut rx, owner, "6281200005001").await;
    wait_state(&m, id, LiveState::Connected).await;
    m.context(owner, None).await.unwrap();
    assert_eq!(m.cached_contexts(), 1);
    assert_eq!(m.sweep_contexts(std::time::Instant::now()), 0);
    let later = std::time::Instant::now() + Duration::from_secs(2);
    assert_eq!(m.sweep_contexts(later), 1);
    assert_eq!(m.cached_contexts(), 0);
    assert_eq!(m.live_status_unchecked(id).unwrap().state, LiveState::Connected);
    m.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn logged_out_accounts_are_purged_to_trash_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[("TGWA_PURGE_AFTER_DAYS", "7")])).await;
    let mut rx = m.take_notices().unwrap();
    let owner = tid(5001);
    let id = pair_ok(&m, &mut rx, owner, "6281200000401").await;
    wait_notice(&mut rx, 15, |n| matches!(n, Notice::LoggedOut { .. })).await;
    assert_eq!(
        m.purge_expired().await.unwrap(),
        0,
        "inside the grace period nothing moves"
    );
    let db = rusqlite::Connection::open(dir.path().join("bot_data.db")).unwrap();
    db.execute(
        "UPDATE whatsapp_accounts SET status_changed_at = 0 WHERE id = ?1",
        [id.get()],
    )
    .unwrap();
    assert_eq!(m.purge_expired().await.unwrap(), 1);
    let row = m.get(id).await.unwrap().unwrap();
    assert_eq!(row.status, AccountStatus::Removed);
    assert!(!row.db_path.exists());
    assert!(m.layout().trash_root().read_dir().unwrap().count() >= 1);
}

#[tokio::test]
async fn shutdown_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[])).await;
    let mut rx = m.take_notices().unwrap();
    for i in 0..5 {
        pair_ok(&m, &mut rx, tid(6000 + i), &format!("628120000600{i}")).await;
    }
    let t = std::time::Instant::now();
    m.shutdown(Duration::from_secs(2)).await;
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(m.live_count(), 0);
}

#[tokio::test]
async fn a_removed_number_gets_a_new_id_for_its_next_owner_and_history_stays() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[])).await;
    let mut rx = m.take_notices().unwrap();
    let (a, b) = (tid(7001), tid(7002));
    let p = "6281270010001";
    let old = pair_ok(&m, &mut rx, a, p).await;
    m.remove(a, old).await.unwrap();
    let new = pair_ok(&m, &mut rx, b, p).await;
    assert_ne!(old, new, "a removed account's ID is never handed to the next owner");
    let row = m.get(old).await.unwrap().expect("the removed row stays as history");
    assert_eq!((row.telegram_id, row.status), (a, AccountStatus::Removed));
    // Neither owner reaches the other's account, by either ID.
    assert!(matches!(m.account_of(a, new).await, Err(AccountError::NotOwner)));
    assert!(matches!(m.account_of(a, old).await, Err(AccountError::NotFound)));
    assert!(matches!(m.account_of(b, old).await, Err(AccountError::NotOwner)));
    assert!(matches!(m.session_of(a, new).await, Err(AccountError::NotOwner)));
    assert_eq!(m.account_of(b, new).await.unwrap().id, new);
    m.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_different_phone_linking_the_number_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(dir.path(), &[])).await;
    let mut rx = m.take_notices().unwrap();
    let owner = tid(7003);
    // `0409`: the phone that confirms is another number. By code and by QR.
    for qr in [false, true] {
        let p = phone("6281270030409");
        let acc = if qr {
            m.start_qr_pairing(owner, p.clone()).await.unwrap()
        } else {
            m.start_pairing(owner, p.clone()).await.unwrap().0
        };
        let n = wait_notice(&mut rx, 10, |n| matches!(n, Notice::PairFailed { .. })).await;
        assert!(
            matches!(&n, Notice::PairFailed { reason, .. } if reason == tgwa::supervisor::REASON_WRONG_NUMBER),
            "{n:?}"
        );
        assert!(m.get(acc.id).await.unwrap().is_none(), "nothing registered");
        assert!(m.by_phone(&p).await.unwrap().is_none());
        assert!(!m.layout().user_dir(owner).exists(), "no files kept");
        assert!(!m.layout().trash_root().exists(), "not even in trash");
        assert_eq!(
            m.live_count(),
            0,
            "the wrong device was unlinked and its session stopped"
        );
    }
    m.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn pairing_code_requests_have_cooldowns_per_user_and_per_number() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(
        dir.path(),
        &[
            ("TGWA_PAIR_COOLDOWN_SECS", "30"),
            ("TGWA_PAIR_MAX_PER_HOUR", "5"),
            ("TGWA_SIM_CODE_TTL_MS", "60000"),
        ],
    ))
    .await;
    let (a, b) = (tid(7004), tid(7005));
    // `0408` never confirms, like a code sent to someone else's phone.
    let victim = phone("6281270040408");
    let (acc, _) = m.start_pairing(a, victim.clone()).await.unwrap();
    m.cancel_pairing(a, acc.id).await.unwrap();
    // "New code" for the same number, at once: refused, with the wait.
    match m.start_pairing(a, victim.clone()).await {
        Err(PairError::Cooldown { wait }) => assert!(wait > Duration::from_secs(20), "{wait:?}"),
        other => panic!("expected a cooldown, got {other:?}"),
    }
    // The same user, another number: refused (the user's own cooldown).
    assert!(matches!(
        m.start_pairing(a, phone("6281270041408")).await,
        Err(PairError::Cooldown { .. })
    ));
    // Refused requests leave no row and no files.
    assert!(m.by_phone(&victim).await.unwrap().is_none());
    // Another user, the same number: a's requests do not use up b's allowance (the number
    // may be b's).
    let (other, _) = m.start_pairing(b, victim.clone()).await.unwrap();
    m.cancel_pairing(b, other.id).await.unwrap();
    // Then b's own cooldown holds b, whatever the number.
    assert!(matches!(
        m.start_pairing(b, phone("6281270052408")).await,
        Err(PairError::Cooldown { .. })
    ));
    assert!(!m.layout().user_dir(b).exists());
    m.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn waiting_pairings_do_not_hold_the_server_ceiling_hostage() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(config(
        dir.path(),
        &[("TGWA_MAX_ACCOUNTS", "1"), ("TGWA_SIM_CODE_TTL_MS", "60000")],
    ))
    .await;
    let mut rx = m.take_notices().unwrap();
    // Three throwaway users start pairings that are never confirmed.
    for (u, p) in [
        (7101, "6281271010408"),
        (7102, "6281271020408"),
        (7103, "6281271030408"),
    ] {
        m.start_pairing(tid(u), phone(p)).await.unwrap();
    }
    // A real user still pairs.
    let real = pair_ok(&m, &mut rx, tid(7104), "6281271040001").await;
    assert_eq!(m.get(real).await.unwrap().unwrap().status, AccountStatus::Active);
    // Now the server is full: a new pairing is refused at once.
    assert!(matches!(
        m.start_pairing(tid(7105), phone("6281271050001")).await,
        Err(PairError::Account(AccountError::ServerFull { max: 1 }))
    ));
    m.shutdown(Duration::from_secs(5)).await;
}

/// The simulator, except that WhatsApp refuses every session for good right after it connects.
struct Refusing {
    inner: Arc<dyn WaBackend>,
}

#[async_trait]
impl WaBackend for Refusing {
    async fn start(&self, spec: SessionSpec) -> Result<(Arc<dyn WaSession>, EventRx), WaError> {
        let (session, mut events) = self.inner.start(spec).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let connected = ev == WaEvent::Connected;
                if tx.send(ev).is_err() || connected {
                    let _ = tx.send(WaEvent::ConnectFailed {
                        code: 403,
                        reason: "forbidden".into(),
                    });
                    break;
                }
            }
        });
        Ok((session, rx))
    }

    async fn probe(&self, session_file: &Path) -> Result<Probe, WaError> {
        self.inner.probe(session_file).await
    }
}

#[tokio::test]
async fn a_terminal_connect_failure_stops_the_session_and_tells_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[]);
    let inner = wa::backend_for(&cfg).await.unwrap();
    let m = AccountManager::open(cfg, Arc::new(Refusing { inner })).await.unwrap();
    let mut rx = m.take_notices().unwrap();
    let owner = tid(7201);
    let id = pair_ok(&m, &mut rx, owner, "6281272010001").await;
    let n = wait_notice(&mut rx, 10, |n| matches!(n, Notice::ConnectRefused { .. })).await;
    assert!(
        matches!(&n, Notice::ConnectRefused { owner: o, account, reason, .. }
            if *o == owner && *account == id && reason.contains("403")),
        "{n:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while m.live_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refused session kept running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Still registered: a restart tries again.
    assert_eq!(m.get(id).await.unwrap().unwrap().status, AccountStatus::Active);
    m.shutdown(Duration::from_secs(5)).await;
}
