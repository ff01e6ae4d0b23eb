//! Baileys side by side (issue 21): N Baileys sockets (`benches/peer/harness.mjs`, Node) and
//! N whatsapp-rust sessions (tgwa's real adapter, in a child process of this same binary)
//! against one fake WhatsApp on a loopback WebSocket, hosted here. Both sides pair by QR with
//! the fake's phones, log in again from their stored credentials (the time to connect all N
//! is taken there), then stay idle for the same time while each reports its own process's
//! RSS and CPU. One text goes from a Baileys session to a tgwa account and one back.
//!
//! Prints one line: `peer n=N baileys_rss_per_session_kib=.. tgwa_rss_per_session_kib=..
//! baileys_idle_cpu_pct_per_1000=.. tgwa_idle_cpu_pct_per_1000=.. baileys_connect_ms=..
//! tgwa_connect_ms=.. baileys_to_tgwa=ok|no tgwa_to_baileys=ok|no unmodelled=.. ratio=X`
//! (`ratio`: Baileys' memory per session over tgwa's). Without `node` or
//! `benches/peer/node_modules` (run `npm ci` there) it prints `peer skipped=... ratio=n/a`.
//!
//! Env: `TGWA_BENCH_CLIENTS` (N, default 200; 2 at smoke size), `TGWA_BENCH_IDLE_MS`
//! (default 20000; 2000 at smoke size).

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use tgwa_fakewa::{FakeOptions, FakeWhatsApp};

#[path = "support/mod.rs"]
mod support;

#[path = "peer/tgwa_side.rs"]
mod tgwa_side;

/// How long either side may take to pair and log in all N.
const SIDE_BOUND: Duration = Duration::from_secs(600);
/// How long a text may take to arrive.
const MSG_BOUND: Duration = Duration::from_secs(30);

fn main() {
    if std::env::var("PEER_ROLE").as_deref() == Ok("tgwa") {
        tgwa_side::main();
        return;
    }
    let peer_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer");
    if let Some(why) = cannot_run(&peer_dir) {
        println!("peer skipped=\"{why}\" ratio=n/a");
        return;
    }
    let n = support::size("TGWA_BENCH_CLIENTS", 200, 2);
    let idle_ms = support::size("TGWA_BENCH_IDLE_MS", 20_000, 2_000);
    let rt = support::runtime();
    let line = rt.block_on(run(&peer_dir, n, idle_ms));
    println!("{line}");
}

/// Why the Baileys side cannot run here, if it cannot.
fn cannot_run(peer_dir: &Path) -> Option<String> {
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node not found".into());
    }
    if !peer_dir.join("node_modules/baileys").exists() {
        return Some("benches/peer/node_modules missing: run npm ci in benches/peer".into());
    }
    None
}

async fn run(peer_dir: &Path, n: usize, idle_ms: usize) -> String {
    let fake = FakeWhatsApp::new(FakeOptions {
        pair_delay: Duration::from_millis(100),
        // Both sides reach only the WebSocket, not the fake's in-process media hosts.
        inline_app_state: true,
        ..FakeOptions::default()
    });
    // A few milliseconds per answer, as a server one hop away (see `serve_ws_with_latency`).
    let ws = fake
        .serve_ws_with_latency("127.0.0.1:0", Duration::from_millis(5))
        .await
        .expect("the fake's WebSocket");
    let dir = tempfile::tempdir().expect("tempdir");
    let b_phones: Vec<String> = (0..n).map(|i| format!("62813{:08}", i + 1)).collect();
    let t_phones: Vec<String> = (0..n).map(|i| format!("62814{:08}", i + 1)).collect();
    let env = |phones: &[String], sub: &str| -> Vec<(String, String)> {
        vec![
            ("PEER_WS_URL".into(), ws.url()),
            ("PEER_PHONES".into(), phones.join(",")),
            ("PEER_DIR".into(), dir.path().join(sub).display().to_string()),
            ("PEER_IDLE_MS".into(), idle_ms.to_string()),
        ]
    };
    let mut node = Command::new("node");
    node.arg("harness.mjs").current_dir(peer_dir);
    let exe = std::env::current_exe().expect("own path");
    let mut own = Command::new(exe);
    own.env("PEER_ROLE", "tgwa");
    let mut b = Side::spawn("baileys", node, env(&b_phones, "baileys"), &fake, b_phones.clone());
    let mut t = Side::spawn("tgwa", own, env(&t_phones, "tgwa"), &fake, t_phones.clone());
    let (b_up, t_up) = tokio::join!(b.wait_for("LOGGEDIN"), t.wait_for("LOGGEDIN"));
    // Both logged in and idling: one text each way, while the idle time runs.
    let (mut to_t, mut to_b) = ("no", "no");
    if b_up.is_some() && t_up.is_some() {
        b.send(&format!("SEND 0 {} hello from baileys", t_phones[0])).await;
        t.send(&format!("SEND 0 {} hello from tgwa", b_phones[0])).await;
        let (got_t, got_b) = tokio::join!(t.wait_within("MSG 0", MSG_BOUND), b.wait_within("MSG 0", MSG_BOUND));
        to_t = if got_t.is_some_and(|l| l.contains("hello from baileys")) {
            "ok"
        } else {
            "no"
        };
        to_b = if got_b.is_some_and(|l| l.contains("hello from tgwa")) {
            "ok"
        } else {
            "no"
        };
    }
    // The same idle window for both, started together.
    b.send("IDLE").await;
    t.send("IDLE").await;
    let (b_res, t_res) = tokio::join!(b.wait_for("RESULT"), t.wait_for("RESULT"));
    b.stop().await;
    t.stop().await;
    let unmodelled: Vec<String> = fake
        .unmodelled()
        .into_iter()
        .map(|(k, v)| format!("{}x{v}", k.replace(' ', ":")))
        .collect();
    let figures = |r: Option<String>, name: &str, errors: &[String]| -> Figures {
        match r.as_deref().map(parse) {
            Some(f) => f,
            None => {
                eprintln!("peer: the {name} side reported no RESULT; its last lines: {errors:#?}");
                Figures::default()
            }
        }
    };
    let bf = figures(b_res, "baileys", &b.tail);
    let tf = figures(t_res, "tgwa", &t.tail);
    let ratio = if tf.per_session_kib(n) > 0.0 {
        format!("{:.2}", bf.per_session_kib(n) / tf.per_session_kib(n))
    } else {
        "n/a".into()
    };
    format!(
        "peer n={n} idle_ms={idle_ms} baileys_rss_per_session_kib={:.0} tgwa_rss_per_session_kib={:.0} \
         baileys_idle_cpu_pct_per_1000={:.2} tgwa_idle_cpu_pct_per_1000={:.2} baileys_connect_ms={} \
         tgwa_connect_ms={} baileys_to_tgwa={to_t} tgwa_to_baileys={to_b} ws_peers={} unmodelled={} ratio={ratio}",
        bf.per_session_kib(n),
        tf.per_session_kib(n),
        bf.cpu_pct_per_1000(n),
        tf.cpu_pct_per_1000(n),
        bf.get("connect_ms"),
        tf.get("connect_ms"),
        ws.peers().len(),
        if unmodelled.is_empty() {
            "none".to_string()
        } else {
            unmodelled.join(",")
        },
    )
}

/// One side's `RESULT` line.
#[derive(Default)]
struct Figures(HashMap<String, f64>);

impl Figures {
    fn get(&self, k: &str) -> f64 {
        self.0.get(k).copied().unwrap_or(0.0)
    }
    fn per_session_kib(&self, n: usize) -> f64 {
        (self.get("rss_kib") - self.get("base_rss_kib")).max(0.0) / n.max(1) as f64
    }
    /// Idle CPU as a percentage of one core, scaled to 1,000 sessions.
    fn cpu_pct_per_1000(&self, n: usize) -> f64 {
        let idle = self.get("idle_ms").max(1.0);
        self.get("idle_cpu_ms") / idle * 100.0 * 1000.0 / n.max(1) as f64
    }
}

fn parse(line: &str) -> Figures {
    Figures(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| v.parse().ok().map(|v| (k.to_string(), v)))
            .collect(),
    )
}

/// A child process speaking the line protocol of `harness.mjs`: its QR codes are scanned by
/// the fake's phones here; other lines are handed to [`Side::wait_for`].
struct Side {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    /// The last lines seen, for a failure report.
    tail: Vec<String>,
}

impl Side {
    fn spawn(
        name: &'static str,
        mut cmd: Command,
        env: Vec<(String, String)>,
        fake: &FakeWhatsApp,
        phones: Vec<String>,
    ) -> Self {
        cmd.envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting the {name} side: {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        let (fake, phones) = (fake.clone(), Arc::new(phones));
        tokio::spawn(async move {
            let mut rd = BufReader::new(stdout).lines();
            let verbose = std::env::var_os("PEER_VERBOSE").is_some();
            while let Ok(Some(line)) = rd.next_line().await {
                if verbose {
                    eprintln!("peer[{name}]: {line:.200}");
                }
                if let Some(rest) = line.strip_prefix("QR ") {
                    scan(&fake, &phones, rest);
                    continue;
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            tail: Vec::new(),
        }
    }

    /// The first line starting with `prefix`, within [`SIDE_BOUND`]; `None` if the side
    /// ended or failed first.
    async fn wait_for(&mut self, prefix: &str) -> Option<String> {
        self.wait_within(prefix, SIDE_BOUND).await
    }

    /// As [`Side::wait_for`], within `bound`.
    async fn wait_within(&mut self, prefix: &str, bound: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(l)) if l.starts_with(prefix) => return Some(l),
                Ok(Some(l)) => {
                    let failed = l.starts_with("ERROR");
                    self.tail.push(l);
                    if self.tail.len() > 20 {
                        self.tail.remove(0);
                    }
                    if failed {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    async fn send(&mut self, line: &str) {
        let _ = self.stdin.write_all(format!("{line}\n").as_bytes()).await;
        let _ = self.stdin.flush().await;
    }

    async fn stop(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.start_kill();
    }
}

/// `QR <i> <code>`: phone i scans it, after the fake's pairing delay.
fn scan(fake: &FakeWhatsApp, phones: &[String], rest: &str) {
    let Some((i, code)) = rest.split_once(' ') else { return };
    let Some(phone) = i.parse::<usize>().ok().and_then(|i| phones.get(i)) else {
        return;
    };
    if let Err(e) = fake.scan_qr(code, phone) {
        // A QR rotated before the scan: the next one is scanned instead.
        eprintln!("peer: phone {phone} could not scan: {e}");
    }
}
