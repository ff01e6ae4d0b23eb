//! Words shared by screens: an account's state, a local time in `TGWA_TIMEZONE`, WhatsApp's
//! refusals in the user's words, and HTML stripped for toasts.

use crate::account::{Account, AccountStatus};
use crate::supervisor::{LiveState, LiveStatus};
use crate::wa::WaError;

use super::i18n::{tr, Key, Lang};

/// Alerts are plain text: strip the little HTML our strings carry.
pub(crate) fn plain_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for ch in s.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The label of an account's state: the live one when a session runs, else the stored one.
pub(crate) fn state_label(lang: Lang, acc: &Account, live: Option<&LiveStatus>) -> &'static str {
    let key = match live.map(|l| l.state) {
        Some(LiveState::Connected) => Key::StateConnected,
        Some(LiveState::Connecting) => Key::StateConnecting,
        Some(LiveState::Disconnected) => Key::StateDisconnected,
        Some(LiveState::Pairing) => Key::StatePairing,
        Some(LiveState::LoggedOut) => Key::StateLoggedOut,
        Some(LiveState::Banned) if acc.banned_until.is_none() => Key::StateBannedForGood,
        Some(LiveState::Banned) => Key::StateBanned,
        Some(LiveState::Stopped)
            if live.and_then(|l| l.last_error.as_deref()) == Some(crate::supervisor::REASON_REPLACED) =>
        {
            Key::StateReplaced
        }
        Some(LiveState::Unpaired) => Key::StateUnpaired,
        Some(LiveState::PairFailed | LiveState::Stopped) | None => match acc.status {
            AccountStatus::Active if acc.last_error.as_deref() == Some(crate::supervisor::REASON_REPLACED) => {
                Key::StateReplaced
            }
            AccountStatus::Active => Key::StateStopped,
            AccountStatus::Pairing => Key::StatePairing,
            AccountStatus::LoggedOut => Key::StateLoggedOut,
            AccountStatus::Banned if acc.banned_until.is_none() => Key::StateBannedForGood,
            AccountStatus::Banned => Key::StateBanned,
            AccountStatus::Unpaired => Key::StateUnpaired,
            AccountStatus::Removed => Key::StateStopped,
        },
    };
    tr(lang, key)
}

/// `2026-12-07 19:05 WIB`: a Unix time in `TGWA_TIMEZONE`, named by its zone (never UTC
/// unless the operator chose it).
pub(crate) fn local_time(config: &crate::config::Config, unix: i64) -> String {
    let off = config.utc_offset;
    let zone = match off.local_minus_utc() {
        25200 => "WIB".to_string(),
        28800 => "WITA".to_string(),
        32400 => "WIT".to_string(),
        0 => "UTC".to_string(),
        s => format!(
            "UTC{}{:02}:{:02}",
            if s < 0 { '-' } else { '+' },
            s.abs() / 3600,
            s.abs() % 3600 / 60
        ),
    };
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| format!("{} {zone}", t.with_timezone(&off).format("%Y-%m-%d %H:%M")))
        .unwrap_or_default()
}

/// Explains a WhatsApp failure to the user.
pub(crate) fn wa_error_text(lang: Lang, e: &WaError) -> String {
    let (id, en) = match e {
        WaError::NotConnected => ("akun sedang tidak terhubung", "the account is not connected"),
        WaError::RateLimited { .. } => (
            "WhatsApp membatasi permintaan, coba lagi nanti",
            "WhatsApp is rate-limiting, try later",
        ),
        WaError::Timeout => ("WhatsApp tidak menjawab tepat waktu", "WhatsApp did not answer in time"),
        WaError::NotPaired | WaError::LoggedOut(_) => (
            "akun sudah logout, hubungkan lagi",
            "the account is logged out, link it again",
        ),
        WaError::NotFound(_) => (
            "tidak ditemukan (mungkin sudah keluar dari grup)",
            "not found (perhaps no longer in the group)",
        ),
        WaError::Forbidden(_) => ("butuh hak admin grup", "needs group admin rights"),
        WaError::Invalid(_) => ("permintaan tidak valid", "invalid request"),
        WaError::Storage(_) | WaError::Other(_) => ("kesalahan WhatsApp", "WhatsApp error"),
        WaError::ReachOutLimited { .. } => (
            "WhatsApp membatasi pesan dari nomor ini ke kontak baru",
            "WhatsApp limits messages from this number to new contacts",
        ),
        WaError::Banned { .. } => ("nomor ini diblokir oleh WhatsApp", "WhatsApp banned this number"),
        // --- peer ---
        WaError::Proxy(_) => (
            "proxy akun ini gagal (bukan gangguan WhatsApp)",
            "this account's proxy failed (not a WhatsApp outage)",
        ),
    };
    // WhatsApp's own detail is English and technical: it goes to the log, not to the user.
    tracing::debug!(error = %e, "WhatsApp refused");
    let base = if lang == Lang::En { en } else { id };
    base.to_string()
}
