//! What several benchmarks share: linking simulated accounts through the real pairing path,
//! the runtime and their settings. Not every benchmark uses every piece.
#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use tgwa::ids::{AccountId, PhoneNumber, TelegramId};
use tgwa::manager::AccountManager;
use tgwa::supervisor::Notice;

/// Pairs every `(owner, phone)` (32 at a time) and waits until all are linked; returns their
/// account IDs in the order pairing finished. Takes the manager's notices. A user pairs one
/// number at a time, so an owner with several accounts has them linked one round each.
pub async fn pair_all(m: &AccountManager, accounts: Vec<(TelegramId, PhoneNumber)>) -> Vec<AccountId> {
    let mut notices = m.take_notices().expect("notices not taken yet");
    let mut rounds: Vec<Vec<(TelegramId, PhoneNumber)>> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (owner, phone) in accounts {
        let round = seen.entry(owner).and_modify(|r| *r += 1).or_insert(0usize);
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        rounds[*round].push((owner, phone));
    }
    let mut ids = Vec::new();
    for round in rounds {
        let n = round.len();
        futures::stream::iter(round)
            .for_each_concurrent(32, |(owner, phone)| async move {
                m.start_pairing(owner, phone).await.expect("pairing starts");
            })
            .await;
        let mut linked = 0;
        while linked < n {
            match tokio::time::timeout(Duration::from_secs(60), notices.recv()).await {
                Ok(Some(Notice::Paired { account, .. })) => {
                    ids.push(account);
                    linked += 1;
                }
                Ok(Some(_)) => {}
                other => panic!("pairing stalled at {linked}/{n}: {other:?}"),
            }
        }
    }
    ids
}

/// A whole number from the environment, or `default`.
pub fn env_or(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The runtime every benchmark runs on: two workers, as on the target machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Whether the benchmark runs at its smoke size (`TGWA_BENCH_SMOKE=1`): a few accounts and
/// a second of idle, so CI can run every benchmark once and see that it still works.
pub fn smoke() -> bool {
    std::env::var("TGWA_BENCH_SMOKE").is_ok_and(|v| v == "1")
}

/// `var` from the environment, else `smoke_size` at the smoke size, else `default`.
pub fn size(var: &str, default: usize, smoke_size: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke() { smoke_size } else { default })
}
