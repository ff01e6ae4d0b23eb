//! Real whatsapp-rust clients over the in-process fake WhatsApp server: N clients each do
//! the full Noise handshake and login (`<success>`, pre-keys, passive/active, offline
//! queue) until `Connected`.
//!
//! Measures, in one run: the time until all N are connected at the production login
//! concurrency (`TGWA_LOGIN_CONCURRENCY`, 8) and at 64; resident memory per connected
//! client; CPU seconds the process spends while they idle (keepalives) for
//! `TGWA_BENCH_IDLE_SECS` (default 10; the figure is 60), counted from
//! `TGWA_BENCH_SETTLE_SECS` (default 10) after the last login; and, as the baseline, N
//! bare Noise handshakes against the same server with no client around them.
//!
//! `TGWA_BENCH_CLIENTS` sets N (default 50). The N stores are copies of one store paired by
//! QR, so every client logs in as the same device: the server-side cost per login is the
//! same, and pairing N accounts is not measured.
//!
//! Prints one line: `real_clients clients=N ... ratio=<connect at 64> / <baseline>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::wa::real::{RealBackend, RealOptions};
use tgwa::wa::{SessionSpec, WaBackend, WaEvent, WaSession};
use tgwa_fakewa::FakeWhatsApp;
use whatsapp_rust::transport::TransportEvent;

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

/// User plus system CPU seconds of this process so far.
fn cpu_s() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
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

/// Starts N clients on copies of the paired store, `concurrency` logins at a time, and
/// returns them once all are connected, with the time it took.
async fn connect_all(
    be: &RealBackend,
    store: &std::path::Path,
    dir: &std::path::Path,
    n: usize,
    concurrency: usize,
    tag: &str,
) -> (Vec<(Arc<dyn WaSession>, tgwa::wa::EventRx)>, Duration) {
    let mut specs = Vec::with_capacity(n);
    for i in 0..n {
        let s = spec(dir, &format!("{tag}-{i}"));
        std::fs::copy(store, &s.session_file).expect("copy store");
        specs.push(s);
    }
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

fn main() {
    let n = env_u64("TGWA_BENCH_CLIENTS", 50) as usize;
    let idle = Duration::from_secs(env_u64("TGWA_BENCH_IDLE_SECS", 10));
    let settle = Duration::from_secs(env_u64("TGWA_BENCH_SETTLE_SECS", 10));
    let login_concurrency = env_u64("TGWA_LOGIN_CONCURRENCY", 8) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = FakeWhatsApp::default();
        let be = RealBackend::with_options(
            RealOptions::default()
                .with_transport_factory(fake.transport())
                .with_version(tgwa_fakewa::VERSION)
                .with_cache_size_kib(64),
        );
        let store = paired_store(&fake, &be, dir.path()).await;

        // Baseline: N bare handshakes, 64 at a time.
        let t = Instant::now();
        futures::stream::iter(0..n)
            .for_each_concurrent(64, |_| bare_handshake(&fake))
            .await;
        let baseline = t.elapsed();

        let (clients, at_login) = connect_all(&be, &store, dir.path(), n, login_concurrency, "a").await;
        for (s, _) in &clients {
            s.disconnect(Duration::from_secs(5)).await;
        }
        drop(clients);
        tokio::time::sleep(Duration::from_secs(2)).await;

        let before = rss_kib();
        let (clients, at_64) = connect_all(&be, &store, dir.path(), n, 64, "b").await;
        // The work that follows a login (pre-key count, passive mode, offline queue) ends
        // within seconds; idle starts after it.
        tokio::time::sleep(settle).await;
        let rss_per_client = (rss_kib().saturating_sub(before)) as f64 / n as f64;

        // On stderr, so a profiler can be attached to exactly this window.
        eprintln!("real_clients: idle window of {idle:?} starts");
        let cpu0 = cpu_s();
        tokio::time::sleep(idle).await;
        let idle_cpu = cpu_s() - cpu0;
        let pct_of_core_per_1000 = idle_cpu / idle.as_secs_f64() * 100.0 * 1000.0 / n as f64;
        for (s, _) in &clients {
            s.disconnect(Duration::from_secs(5)).await;
        }
        println!(
            "real_clients clients={n} login_concurrency={login_concurrency} connect_s={:.2} connect64_s={:.2} \
             rss_per_client_kib={rss_per_client:.1} idle_s={} idle_cpu_s={idle_cpu:.3} \
             idle_core_pct_per_1000={pct_of_core_per_1000:.2} baseline_s={:.3} ratio={:.2}",
            at_login.as_secs_f64(),
            at_64.as_secs_f64(),
            idle.as_secs(),
            baseline.as_secs_f64(),
            at_64.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
        );
    });
}
