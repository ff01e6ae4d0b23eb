//! Memory per idle WhatsApp client: starts N real whatsapp-rust clients against a transport
//! that never answers (one session file each) and compares the process's RSS growth with a
//! baseline measured in the same run: N tokio tasks each holding an open rusqlite connection.
//!
//! Prints one line:
//! `wa_memory clients=N rss_per_client_kib=X baseline_kib=Y ratio=X/Y`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::wa::real::{self, RealBackend};
use tgwa::wa::{SessionSpec, WaBackend, WaSession};

#[path = "support/mod.rs"]
mod support;

/// Resident set size of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn spec(dir: &std::path::Path, i: usize) -> SessionSpec {
    let phone = PhoneNumber::from_digits(&format!("62812{:08}", i)).expect("phone");
    SessionSpec {
        telegram_id: TelegramId::new(1).expect("tid"),
        session_file: dir.join(format!("whatsmeow-1-{}.db", phone.digits())),
        phone,
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let n = support::size("TGWA_BENCH_CLIENTS", 200, 3);
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = Arc::new(RealBackend::with_options(
            real::silent_options().with_socket_wait(Duration::from_secs(1)),
        ));

        // One client first, so process-wide one-time costs (TLS provider, shared thread
        // pools, lazy tables) are not charged to the N that follow.
        let warm = dir.path().join("warm");
        std::fs::create_dir_all(&warm).expect("mkdir");
        let (w, _wrx) = backend.start(spec(&warm, 0)).await.expect("warm-up client");
        settle().await;

        // Baseline: N tasks, each holding an open SQLite connection on its own file.
        let base_dir = dir.path().join("baseline");
        std::fs::create_dir_all(&base_dir).expect("mkdir");
        let before = rss_kib();
        let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let mut holders = Vec::with_capacity(n);
        for i in 0..n {
            let path = base_dir.join(format!("{i}.db"));
            let mut stop = stop_tx.subscribe();
            holders.push(tokio::spawn(async move {
                let conn = rusqlite::Connection::open(&path).expect("open");
                conn.execute_batch(
                    "PRAGMA journal_mode=WAL; PRAGMA cache_size=-256;
                     CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);
                     INSERT INTO t (v) VALUES (randomblob(512));",
                )
                .expect("init");
                let _ = stop.recv().await;
                drop(conn);
            }));
        }
        settle().await;
        let baseline_kib = rss_kib().saturating_sub(before) as f64 / n as f64;

        // The clients.
        let client_dir = dir.path().join("clients");
        std::fs::create_dir_all(&client_dir).expect("mkdir");
        let before = rss_kib();
        let sessions: Vec<Arc<dyn WaSession>> = futures::stream::iter(0..n)
            .map(|i| {
                let backend = backend.clone();
                let spec = spec(&client_dir, i + 1);
                async move {
                    let (s, rx) = backend.start(spec).await.expect("start client");
                    // Keep the receiver alive with its session.
                    std::mem::forget(rx);
                    s
                }
            })
            .buffer_unordered(4)
            .collect()
            .await;
        settle().await;
        let per_client_kib = rss_kib().saturating_sub(before) as f64 / n as f64;

        let ratio = if baseline_kib > 0.0 {
            per_client_kib / baseline_kib
        } else {
            f64::INFINITY
        };
        println!(
            "wa_memory clients={n} rss_per_client_kib={per_client_kib:.1} baseline_kib={baseline_kib:.1} ratio={ratio:.2}"
        );

        // Tear down quickly: an abort is fine here.
        futures::future::join_all(sessions.iter().map(|s| s.disconnect(Duration::from_millis(200)))).await;
        w.disconnect(Duration::from_millis(200)).await;
        let _ = stop_tx.send(());
        for h in holders {
            let _ = h.await;
        }
        drop(sessions);
        drop(dir);
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}
