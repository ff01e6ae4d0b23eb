//! Real whatsapp-rust clients over the in-process fake WhatsApp server: N clients each do
//! the full Noise handshake and login (`<success>`, pre-keys, passive/active, offline
//! queue) until `Connected`.
//!
//! Each figure is measured in a fresh process (this binary started again with
//! `TGWA_BENCH_ROLE=connect`), from before its first client to after all N are connected and
//! settled, so memory the allocator kept from an earlier round cannot hide the cost: the time
//! until all N are connected at the production login concurrency (`TGWA_LOGIN_CONCURRENCY`,
//! 8) and at 64; resident memory per connected client with the production SQLite settings
//! (`RealOptions::default().cache_size_kib`, `db::configure_sqlite_process`), the SQLite
//! share of it (`sqlite3_memory_used`) and the fake server's share (the
//! heap its tasks hold: they run on a runtime of their own, whose allocations are counted);
//! descriptors per client; CPU per 1,000 clients while they idle (keepalives) for
//! `TGWA_BENCH_IDLE_SECS` (default 10), counted from `TGWA_BENCH_SETTLE_SECS` (default 10)
//! after the last login, the fake's threads counted apart. The baseline is N bare Noise
//! handshakes against the same server with no client around them.
//!
//! `TGWA_BENCH_CLIENTS` sets N (default 50; 3 with `TGWA_BENCH_SMOKE=1`, with a second of
//! settle and idle). The N stores are copies (`.db` and its `-wal`) of one store paired by
//! QR; the fake trusts the copies' device, so every client logs in as the same device and
//! pairing N accounts is not measured.
//!
//! Prints one line: `real_clients clients=N ... ratio=<connect at 64> / <baseline>`. Each
//! measuring process also writes to stderr its session stores' own SQLite counters, averaged
//! per store (`sqlite3_db_status`: page cache, schema, prepared statements, lookaside slots,
//! page hits and reads). Experiments (not production settings): `TGWA_BENCH_CACHE_KIB`,
//! `TGWA_BENCH_LOOKASIDE=size,count`, `TGWA_BENCH_PCACHE_INIT=pages`; `TGWA_BENCH_SKIP64=1`
//! runs only the production login concurrency.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::wa::real::{RealBackend, RealOptions};
use tgwa::wa::{SessionSpec, WaBackend, WaEvent, WaSession};
use tgwa_fakewa::{FakeOptions, FakeWhatsApp};
use whatsapp_rust::transport::{Transport, TransportEvent, TransportFactory};

#[path = "support/mod.rs"]
mod support;

/// Counts the heap held by allocations made on the fake server's threads, so its share of
/// the process's memory is measured apart. Each allocation carries a 16-byte header saying
/// where it was made; the headers' own total is subtracted from the figures too.
struct Counting;

static FAKE_HEAP: AtomicI64 = AtomicI64::new(0);
static LIVE_ALLOCS: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static IN_FAKE: Cell<bool> = const { Cell::new(false) };
}

fn header(l: &Layout) -> usize {
    l.align().max(16)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let h = header(&l);
        // SAFETY: size + header with the header's alignment is a valid layout for `System`.
        let base = unsafe { System.alloc(Layout::from_size_align_unchecked(l.size() + h, h)) };
        if base.is_null() {
            return base;
        }
        let fake = IN_FAKE.try_with(|c| c.get()).unwrap_or(false);
        // SAFETY: `base` has room for the header, aligned for a usize.
        unsafe { *(base as *mut usize) = fake as usize };
        if fake {
            FAKE_HEAP.fetch_add(l.size() as i64, Ordering::Relaxed);
        }
        LIVE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: within the allocation.
        unsafe { base.add(h) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, l: Layout) {
        let h = header(&l);
        // SAFETY: `ptr` came from `alloc` above with the same layout.
        let base = unsafe { ptr.sub(h) };
        if unsafe { *(base as *const usize) } == 1 {
            FAKE_HEAP.fetch_sub(l.size() as i64, Ordering::Relaxed);
        }
        LIVE_ALLOCS.fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(base, Layout::from_size_align_unchecked(l.size() + h, h)) };
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs the fake's transports (and so the server task each one spawns) on the fake's own
/// runtime, so its CPU and heap are counted apart from the clients'.
struct OnFakeRuntime {
    inner: Arc<dyn TransportFactory>,
    rt: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl TransportFactory for OnFakeRuntime {
    async fn create_transport(
        &self,
    ) -> Result<
        (
            Arc<dyn Transport>,
            whatsapp_rust::async_channel::Receiver<TransportEvent>,
        ),
        anyhow::Error,
    > {
        let inner = self.inner.clone();
        self.rt.spawn(async move { inner.create_transport().await }).await?
    }
}

/// CPU seconds of this process (all its threads, those that ended included: `getrusage`)
/// and of the fake's threads (from /proc/self/task; they live as long as the fake). Summing
/// /proc/self/task for the whole process instead loses the CPU of threads that ended within
/// the window (blocking-pool threads do), which once gave a negative idle figure at 6,000.
fn thread_cpu_s() -> (f64, f64) {
    let (_, fake) = task_cpu_s();
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime) + secs(ru.ru_stime), fake)
}

/// CPU seconds of this process's live threads: (all, the fake's), from /proc/self/task.
fn task_cpu_s() -> (f64, f64) {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let (mut all, mut fake) = (0.0, 0.0);
    for t in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else { continue };
        let name = stat.get(stat.find('(').map_or(0, |i| i + 1)..close).unwrap_or("");
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name.
        let cpu = (f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
            / tick;
        all += cpu;
        if name.starts_with("fakewa") {
            fake += cpu;
        }
    }
    (all, fake)
}

/// Bytes SQLite holds (page caches included), for every connection in the process.
fn sqlite_bytes() -> i64 {
    // SAFETY: a read of SQLite's own counter.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

/// The session stores' connections, by file: the last one opened on each `c-N.db`. The
/// opens before it on the same file (tgwa's readability check) are closed by the time the
/// figures are read, and nothing opens a client's store again while it runs.
static STORES: std::sync::Mutex<std::collections::BTreeMap<String, usize>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Called by SQLite for every connection it opens (`sqlite3_auto_extension`): notes the
/// session stores' handles so their own counters can be read.
unsafe extern "C" fn note_store(
    db: *mut rusqlite::ffi::sqlite3,
    _err: *mut *mut std::ffi::c_char,
    _api: *const rusqlite::ffi::sqlite3_api_routines,
) -> std::ffi::c_int {
    // SAFETY: `db` is the connection being opened; its main file name lives as long as it.
    let name = unsafe { rusqlite::ffi::sqlite3_db_filename(db, c"main".as_ptr()) };
    if !name.is_null() {
        // SAFETY: a NUL-terminated string owned by `db`.
        let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy();
        if name.contains("/c-") {
            STORES.lock().expect("stores").insert(name.into_owned(), db as usize);
        }
    }
    rusqlite::ffi::SQLITE_OK
}

/// Per-store SQLite figures, averaged over the noted stores (KiB, and page reads): page
/// cache in use, schema, prepared statements, lookaside slots in use (and their high mark),
/// cache hits and misses since the store opened.
fn store_status() -> String {
    use rusqlite::ffi as f;
    let stores = STORES.lock().expect("stores");
    let n = stores.len().max(1) as f64;
    let mut sums = [0f64; 7];
    for &db in stores.values() {
        let db = db as *mut f::sqlite3;
        let get = |op, hw: bool| {
            let (mut cur, mut high) = (0, 0);
            // SAFETY: every noted connection is still open (see `STORES`).
            unsafe { f::sqlite3_db_status(db, op, &mut cur, &mut high, 0) };
            f64::from(if hw { high } else { cur })
        };
        let row = [
            get(f::SQLITE_DBSTATUS_CACHE_USED, false) / 1024.0,
            get(f::SQLITE_DBSTATUS_SCHEMA_USED, false) / 1024.0,
            get(f::SQLITE_DBSTATUS_STMT_USED, false) / 1024.0,
            get(f::SQLITE_DBSTATUS_LOOKASIDE_USED, false),
            get(f::SQLITE_DBSTATUS_LOOKASIDE_USED, true),
            get(f::SQLITE_DBSTATUS_CACHE_HIT, false),
            get(f::SQLITE_DBSTATUS_CACHE_MISS, false),
        ];
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
    format!(
        "stores={} store_cache_kib={:.1} store_schema_kib={:.1} store_stmt_kib={:.1} \
         store_lookaside_slots={:.1} store_lookaside_slots_high={:.1} store_cache_hits={:.1} store_cache_misses={:.1}",
        stores.len(),
        sums[0] / n,
        sums[1] / n,
        sums[2] / n,
        sums[3] / n,
        sums[4] / n,
        sums[5] / n,
        sums[6] / n,
    )
}

/// Process-wide SQLite settings for experiments, before any connection opens:
/// `TGWA_BENCH_LOOKASIDE=size,count` and `TGWA_BENCH_PCACHE_INIT=pages` (the bulk page
/// allocation each connection makes up front).
fn sqlite_experiments() {
    use rusqlite::ffi as f;
    if let Ok(v) = std::env::var("TGWA_BENCH_LOOKASIDE") {
        let (sz, cnt) = v.split_once(',').expect("size,count");
        let (sz, cnt): (i32, i32) = (sz.parse().expect("size"), cnt.parse().expect("count"));
        // SAFETY: before SQLite is initialised (no connection opened yet in this process).
        let rc = unsafe { f::sqlite3_config(f::SQLITE_CONFIG_LOOKASIDE, sz, cnt) };
        assert_eq!(rc, f::SQLITE_OK, "lookaside config");
    }
    if let Ok(v) = std::env::var("TGWA_BENCH_PCACHE_INIT") {
        let n: i32 = v.parse().expect("pages");
        // SAFETY: as above; no buffer of our own (NULL), `n` pages of bulk allocation.
        let rc = unsafe { f::sqlite3_config(f::SQLITE_CONFIG_PAGECACHE, std::ptr::null_mut::<u8>(), 0i32, n) };
        assert_eq!(rc, f::SQLITE_OK, "pagecache config");
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

const PHONE: &str = "6281255500001";

fn spec(dir: &std::path::Path, name: &str) -> SessionSpec {
    SessionSpec {
        telegram_id: TelegramId::new(1).expect("tid"),
        session_file: dir.join(format!("{name}.db")),
        phone: PhoneNumber::from_digits(PHONE).expect("phone"),
    }
}

async fn wait_for(rx: &mut tgwa::wa::EventRx, mut ok: impl FnMut(&WaEvent) -> Option<String>) -> String {
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(300), rx.recv()).await {
            Ok(Some(ev)) => {
                if let Some(v) = ok(&ev) {
                    return v;
                }
                seen.push(ev);
            }
            other => panic!("event stream: {other:?}; events before it: {seen:?}"),
        }
    }
}

/// Pairs one store by QR and returns its path.
async fn paired_store(fake: &FakeWhatsApp, be: &RealBackend, dir: &std::path::Path) -> std::path::PathBuf {
    let s = spec(dir, "paired");
    let path = s.session_file.clone();
    let (session, mut rx) = be.start(s).await.expect("start");
    session.start_qr().await.expect("qr");
    let qr = wait_for(&mut rx, |e| match e {
        WaEvent::Qr { code, .. } => Some(code.clone()),
        _ => None,
    })
    .await;
    fake.scan_qr(&qr, PHONE).expect("scan");
    wait_for(&mut rx, |e| matches!(e, WaEvent::Connected).then(String::new)).await;
    session.disconnect(Duration::from_secs(5)).await;
    path
}

/// `n` copies of the paired store in `dir`: the `.db` and its `-wal` (without the `-wal`
/// a copy is an unpaired device: the pairing is still in the log).
fn copies(store: &std::path::Path, dir: &std::path::Path, n: usize) -> Vec<SessionSpec> {
    let mut wal = store.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    (0..n)
        .map(|i| {
            let s = spec(dir, &format!("c-{i}"));
            std::fs::copy(store, &s.session_file).expect("copy store");
            if wal.exists() {
                let mut to = s.session_file.as_os_str().to_owned();
                to.push("-wal");
                std::fs::copy(&wal, std::path::PathBuf::from(to)).expect("copy store's -wal");
            }
            s
        })
        .collect()
}

/// Starts a client on each of `specs`, `concurrency` logins at a time, and returns them
/// once all are connected, with the time it took.
async fn connect_all(
    be: &RealBackend,
    specs: Vec<SessionSpec>,
    concurrency: usize,
) -> (Vec<(Arc<dyn WaSession>, tgwa::wa::EventRx)>, Duration) {
    let t = Instant::now();
    let clients: Vec<_> = futures::stream::iter(specs)
        .map(|s| async move {
            let (session, mut rx) = be.start(s).await.expect("start");
            wait_for(&mut rx, |e| match e {
                WaEvent::Connected => Some(String::new()),
                WaEvent::ConnectFailed { .. } | WaEvent::LoggedOut { .. } => panic!("{e:?}"),
                _ => None,
            })
            .await;
            (session, rx)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (clients, t.elapsed())
}

/// One bare Noise XX handshake with the server: client hello, server hello, client finish,
/// and the server's first encrypted frame.
async fn bare_handshake(fake: &FakeWhatsApp) {
    use whatsapp_rust::wacore::noise::framing::{encode_frame, FrameDecoder};
    use whatsapp_rust::wacore::noise::XxHandshakeState;
    use whatsapp_rust::wacore_binary::consts::WA_CONN_HEADER;
    use whatsapp_rust::waproto::whatsapp as wa;

    let (transport, events) = fake.transport().create_transport().await.expect("transport");
    let payload = wa::ClientPayload {
        username: Some(PHONE.parse().expect("digits")),
        device: Some(1),
        ..Default::default()
    };
    let payload = whatsapp_rust::waproto::buffa::Message::encode_to_vec(&payload);
    let mut hs = XxHandshakeState::new(
        whatsapp_rust::wacore::crypto::generate_curve_key_pair(),
        payload,
        &WA_CONN_HEADER,
    )
    .expect("state");
    let hello = hs.build_client_hello().expect("hello");
    let framed = encode_frame(&hello, Some(&WA_CONN_HEADER)).expect("frame");
    transport.send(framed.into()).await.expect("send");
    let mut dec = FrameDecoder::new();
    let mut frames = 0;
    while frames < 2 {
        match events.recv().await {
            Ok(TransportEvent::DataReceived(d)) => {
                dec.feed(&d);
                while let Some(f) = dec.decode_frame() {
                    frames += 1;
                    if frames == 1 {
                        let finish = hs.read_server_hello_and_build_client_finish(&f).expect("server hello");
                        transport
                            .send(encode_frame(&finish, None).expect("frame").into())
                            .await
                            .expect("send");
                    }
                }
            }
            Ok(TransportEvent::Connected) => {}
            // The fresh static key is no paired device: the server refuses the login after
            // the handshake, which is when this baseline stops counting.
            Ok(TransportEvent::Disconnected(_)) | Err(_) => break,
        }
    }
    transport.disconnect().await;
}

/// The figures of one fresh process (`TGWA_BENCH_ROLE=connect`), one `key=value` line.
fn child_connect() {
    let n = env_u64("TGWA_BENCH_CLIENTS", 3) as usize;
    let concurrency = env_u64("TGWA_BENCH_CONCURRENCY", 8) as usize;
    let settle = Duration::from_secs(env_u64("TGWA_BENCH_SETTLE_SECS", 10));
    let idle = Duration::from_secs(env_u64("TGWA_BENCH_IDLE_SECS", 10));
    let store = std::path::PathBuf::from(std::env::var("TGWA_BENCH_STORE").expect("TGWA_BENCH_STORE"));
    // The production process's SQLite settings (`tgwa::cli::main` applies them first).
    assert!(
        tgwa::db::configure_sqlite_process(),
        "SQLite configured before any connection"
    );
    sqlite_experiments();
    // SAFETY: registers a function with the right signature; it lives for the whole process.
    unsafe { rusqlite::ffi::sqlite3_auto_extension(Some(note_store)) };
    let cache_kib = env_u64("TGWA_BENCH_CACHE_KIB", u64::from(RealOptions::default().cache_size_kib)) as u32;
    let fake_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fakewa")
        .on_thread_start(|| IN_FAKE.with(|c| c.set(true)))
        .enable_all()
        .build()
        .expect("fake runtime");
    let rt = support::runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeWhatsApp::new(FakeOptions {
        // The copies' device was paired with the parent's server: trusted here.
        trust_unknown_devices: true,
        ..FakeOptions::default()
    });
    let factory: Arc<dyn TransportFactory> = Arc::new(OnFakeRuntime {
        inner: fake.transport(),
        rt: fake_rt.handle().clone(),
    });
    let be = RealBackend::with_options(
        RealOptions::default()
            .with_transport_factory(factory)
            .with_http_client(Arc::new(fake.http_client()))
            .with_version(tgwa_fakewa::VERSION)
            .with_cache_size_kib(cache_kib),
    );
    let specs = copies(&store, dir.path(), n);
    rt.block_on(async {
        let (rss0, sql0, fake0, allocs0, fds0) = (
            rss_kib(),
            sqlite_bytes(),
            FAKE_HEAP.load(Ordering::Relaxed),
            LIVE_ALLOCS.load(Ordering::Relaxed),
            open_fds(),
        );
        let (clients, took) = connect_all(&be, specs, concurrency).await;
        // The work that follows a login (pre-key count, passive mode, offline queue) ends
        // within seconds; the figures are taken after it.
        tokio::time::sleep(settle).await;
        let per = |x: f64| x / n as f64;
        let headers_kib = (LIVE_ALLOCS.load(Ordering::Relaxed) - allocs0) as f64 * 16.0 / 1024.0;
        let fake_kib = (FAKE_HEAP.load(Ordering::Relaxed) - fake0) as f64 / 1024.0;
        let rss = rss_kib().saturating_sub(rss0) as f64 - headers_kib;
        let sqlite_kib = (sqlite_bytes() - sql0) as f64 / 1024.0;
        let fds = open_fds() as f64 - fds0 as f64;
        eprintln!("real_clients: breakdown {}", store_status());
        eprintln!("real_clients: idle window of {idle:?} starts");
        let (all0, fake_cpu0) = thread_cpu_s();
        tokio::time::sleep(idle).await;
        let (all1, fake_cpu1) = thread_cpu_s();
        let core_pct_per_1000 = |cpu: f64| cpu / idle.as_secs_f64() * 100.0 * 1000.0 / n as f64;
        let fake_cpu = fake_cpu1 - fake_cpu0;
        let client_cpu = (all1 - all0) - fake_cpu;
        eprintln!("real_clients: after idle {}", store_status());
        println!(
            "child connect_s={:.3} rss_per_client_kib={:.1} sqlite_per_client_kib={:.1} fake_per_client_kib={:.1} \
             fds_per_client={:.2} idle_core_pct_per_1000={:.3} fake_idle_core_pct_per_1000={:.3}",
            took.as_secs_f64(),
            per(rss - fake_kib),
            per(sqlite_kib),
            per(fake_kib),
            per(fds),
            core_pct_per_1000(client_cpu),
            core_pct_per_1000(fake_cpu),
        );
        futures::future::join_all(clients.iter().map(|(s, _)| s.disconnect(Duration::from_secs(5)))).await;
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    fake_rt.shutdown_timeout(Duration::from_secs(2));
}

/// Runs this benchmark again as a fresh process with `extra`; returns its `child` line's
/// `key=value` pairs.
fn run_child(extra: &[(&str, String)]) -> std::collections::HashMap<String, String> {
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(exe)
        .env("TGWA_BENCH_ROLE", "connect")
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("start the measuring process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "measuring process failed: {stdout}");
    let line = stdout.lines().find(|l| l.starts_with("child ")).expect("a child line");
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn main() {
    if std::env::var("TGWA_BENCH_ROLE").is_ok_and(|r| r == "connect") {
        return child_connect();
    }
    let smoke = support::smoke();
    let n = support::size("TGWA_BENCH_CLIENTS", 50, 3);
    let secs = |var: &str| env_u64(var, if smoke { 1 } else { 10 }).to_string();
    let login_concurrency = env_u64("TGWA_LOGIN_CONCURRENCY", 8) as usize;
    let rt = support::runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, baseline) = rt.block_on(async {
        let fake = FakeWhatsApp::default();
        let be = RealBackend::with_options(
            RealOptions::default()
                .with_transport_factory(fake.transport())
                .with_http_client(Arc::new(fake.http_client()))
                .with_version(tgwa_fakewa::VERSION),
        );
        let store = paired_store(&fake, &be, dir.path()).await;
        // Baseline: N bare handshakes, 64 at a time.
        let t = Instant::now();
        futures::stream::iter(0..n)
            .for_each_concurrent(64, |_| bare_handshake(&fake))
            .await;
        (store, t.elapsed())
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let common = |c: usize| {
        vec![
            ("TGWA_BENCH_CLIENTS", n.to_string()),
            ("TGWA_BENCH_CONCURRENCY", c.to_string()),
            ("TGWA_BENCH_SETTLE_SECS", secs("TGWA_BENCH_SETTLE_SECS")),
            ("TGWA_BENCH_IDLE_SECS", secs("TGWA_BENCH_IDLE_SECS")),
            ("TGWA_BENCH_STORE", store.display().to_string()),
        ]
    };
    let at_login = run_child(&common(login_concurrency));
    // `TGWA_BENCH_SKIP64=1`: only the production concurrency (for quicker experiments).
    let at_64 = if std::env::var("TGWA_BENCH_SKIP64").is_ok_and(|v| v == "1") {
        Default::default()
    } else {
        run_child(&common(64))
    };
    let get = |m: &std::collections::HashMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
    let c64: f64 = get(&at_64, "connect_s").parse().unwrap_or(f64::NAN);
    println!(
        "real_clients clients={n} login_concurrency={login_concurrency} connect_s={} connect64_s={} \
         rss_per_client_kib={} sqlite_per_client_kib={} fake_per_client_kib={} fds_per_client={} \
         idle_s={} idle_core_pct_per_1000={} fake_idle_core_pct_per_1000={} \
         rss_per_client_kib_at64={} baseline_s={:.3} ratio={:.2}",
        get(&at_login, "connect_s"),
        c64,
        get(&at_login, "rss_per_client_kib"),
        get(&at_login, "sqlite_per_client_kib"),
        get(&at_login, "fake_per_client_kib"),
        get(&at_login, "fds_per_client"),
        secs("TGWA_BENCH_IDLE_SECS"),
        get(&at_login, "idle_core_pct_per_1000"),
        get(&at_login, "fake_idle_core_pct_per_1000"),
        get(&at_64, "rss_per_client_kib"),
        baseline.as_secs_f64(),
        c64 / baseline.as_secs_f64().max(1e-9),
    );
}
