//! What several benchmarks share: linking simulated accounts through the real pairing path.

use std::time::Duration;

use futures::StreamExt;
use tgwa::ids::{AccountId, PhoneNumber, TelegramId};
use tgwa::manager::AccountManager;
use tgwa::supervisor::Notice;

/// Pairs every `(owner, phone)` (32 at a time) and waits until all are linked; returns their
/// account IDs in the order pairing finished. Takes the manager's notices.
pub async fn pair_all(m: &AccountManager, accounts: Vec<(TelegramId, PhoneNumber)>) -> Vec<AccountId> {
    let mut notices = m.take_notices().expect("notices not taken yet");
    let n = accounts.len();
    futures::stream::iter(accounts)
        .for_each_concurrent(32, |(owner, phone)| async move {
            m.start_pairing(owner, phone).await.expect("pairing starts");
        })
        .await;
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        match tokio::time::timeout(Duration::from_secs(60), notices.recv()).await {
            Ok(Some(Notice::Paired { account, .. })) => ids.push(account),
            Ok(Some(_)) => {}
            other => panic!("pairing stalled at {}/{n}: {other:?}", ids.len()),
        }
    }
    ids
}
