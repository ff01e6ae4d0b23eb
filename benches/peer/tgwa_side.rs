//! The tgwa side of the `peer` bench: this bench binary again, run with `PEER_ROLE=tgwa`, so
//! its RSS and CPU are its own (the fake lives in the parent). N sessions of tgwa's real
//! adapter over whatsapp-rust's own WebSocket transport to the fake's URL, speaking the same
//! line protocol as `harness.mjs` on stdout (QR, PAIRED, LOGGEDIN, MSG, SENT, RESULT) and
//! reading `SEND <i> <phone> <text>` and `IDLE` on stdin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::wa::real::{RealBackend, RealOptions};
use tgwa::wa::{ChatTarget, EventRx, SessionSpec, WaBackend, WaEvent, WaSession};
use tokio::io::AsyncBufReadExt;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_default()
}

fn rss_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

/// User plus system CPU time of this process, in milliseconds.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(u.ru_utime) + ms(u.ru_stime)
}

fn spec(dir: &std::path::Path, phone: &str) -> SessionSpec {
    let tid = TelegramId::new(1).expect("tid");
    let phone = PhoneNumber::from_digits(phone).expect("phone");
    std::fs::create_dir_all(dir).expect("dir");
    SessionSpec {
        telegram_id: tid,
        session_file: dir.join(format!("whatsmeow-1-{}.db", phone.digits())),
        phone,
    }
}

/// Waits for an event `pick` accepts, printing QR codes for the parent as they come.
async fn until(i: usize, rx: &mut EventRx, pick: impl Fn(&WaEvent) -> bool) -> bool {
    while let Some(ev) = rx.recv().await {
        if let WaEvent::Qr { code, .. } = &ev {
            println!("QR {i} {code}");
        }
        if pick(&ev) {
            return true;
        }
    }
    false
}

pub fn main() {
    let rt = super::support::runtime();
    rt.block_on(async {
        let url = env("PEER_WS_URL");
        let phones: Vec<String> = env("PEER_PHONES")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let dir = std::path::PathBuf::from(env("PEER_DIR"));
        let idle = Duration::from_millis(env("PEER_IDLE_MS").parse().unwrap_or(10_000));
        let transport = whatsapp_rust::transport::TokioWebSocketTransportFactory::new().with_url(url);
        let be = Arc::new(RealBackend::with_options(
            RealOptions::default()
                .with_transport_factory(Arc::new(transport))
                .with_version(tgwa_fakewa::VERSION),
        ));
        let base = rss_kib();
        // Pair every session by QR.
        let paired: Vec<_> = futures::stream::iter(phones.iter().enumerate())
            .map(|(i, p)| {
                let (be, dir) = (be.clone(), dir.clone());
                async move {
                    let (s, mut rx) = be.start(spec(&dir, p)).await.expect("start");
                    s.start_qr().await.expect("qr");
                    let ok = until(i, &mut rx, |e| matches!(e, WaEvent::Connected)).await;
                    println!("PAIRED {i} {ok}");
                    s.disconnect(Duration::from_secs(5)).await;
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        drop(paired);
        // Log in again from the stored sessions: the time to connect all N.
        let t0 = Instant::now();
        let sessions: Vec<(Arc<dyn WaSession>, EventRx)> = futures::stream::iter(phones.iter().enumerate())
            .map(|(i, p)| {
                let (be, dir) = (be.clone(), dir.clone());
                async move {
                    let (s, mut rx) = be.start(spec(&dir, p)).await.expect("restart");
                    until(i, &mut rx, |e| matches!(e, WaEvent::Connected)).await;
                    (s, rx)
                }
            })
            // In order: session i is phone i, as the harness's socket i is.
            .buffered(64)
            .collect()
            .await;
        let connect_ms = t0.elapsed().as_millis();
        println!("LOGGEDIN {}", sessions.len());
        let mut keep = Vec::new();
        for (i, (s, mut rx)) in sessions.into_iter().enumerate() {
            keep.push(s);
            tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    if let WaEvent::Message { sender, text, .. } = ev {
                        println!("MSG {i} {sender} {text}");
                    }
                }
            });
        }
        let senders = keep.clone();
        let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut go_tx = Some(go_tx);
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "IDLE" {
                    if let Some(tx) = go_tx.take() {
                        let _ = tx.send(());
                    }
                    continue;
                }
                let mut w = l.splitn(4, ' ');
                if let (Some("SEND"), Some(i), Some(to), Some(text)) = (w.next(), w.next(), w.next(), w.next()) {
                    let (Ok(i), Ok(to)) = (i.parse::<usize>(), PhoneNumber::from_digits(to)) else {
                        continue;
                    };
                    match senders[i].send_text(&ChatTarget::Phone(to), text).await {
                        Ok(_) => println!("SENT {i}"),
                        Err(e) => println!("SENDFAILED {i} {e}"),
                    }
                }
            }
        });
        let _ = go.await;
        let (c0, t1) = (cpu_ms(), Instant::now());
        tokio::time::sleep(idle).await;
        let (cpu, idle_ms) = (cpu_ms() - c0, t1.elapsed().as_millis());
        println!(
            "RESULT n={} rss_kib={} base_rss_kib={} idle_ms={idle_ms} idle_cpu_ms={cpu:.0} connect_ms={connect_ms}",
            keep.len(),
            rss_kib(),
            base
        );
        for s in keep {
            s.disconnect(Duration::from_secs(2)).await;
        }
    });
}
