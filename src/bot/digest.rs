//! The daily digest to the operators (`TGWA_ADMIN_IDS`): what went wrong in the last 24 h:
//! accounts logged out and banned, accounts offline for more than an hour, failed job items.
//!
//! It goes out once a day at `TGWA_DIGEST_HOUR` in `TGWA_TIMEZONE` (08:00 WIB by default),
//! or as soon as the bot runs after that hour if it was down then. The local date it was sent
//! for is written to the master database (`admin_state`) before it is sent, so a restart never
//! sends it twice (a crash between the two loses that day's digest rather than repeating it).
//! [`run`] checks every minute; [`send_now`] is the one path that builds and sends it, used by
//! the scheduler and by tests.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, Timelike, Utc};
use rusqlite::OptionalExtension;
use teloxide::types::ChatId;
use tokio::sync::watch;
use tracing::{info, warn};

use super::kit::app::{App, Req};
use super::kit::i18n::{t2, Lang};
use super::kit::send::send_html;
use crate::account::{self, Account, AccountStatus};
use crate::live::LiveStatus;
use crate::supervisor::LiveState;

/// The `admin_state` key holding the local date of the last digest (`YYYY-MM-DD`).
const LAST_DATE_KEY: &str = "digest_last_date";
/// What the digest looks back over.
const WINDOW: i64 = 24 * 3600;
/// An account counts as offline once it has been so this long.
const OFFLINE_AFTER: i64 = 3600;
/// Accounts named per section; the count is always complete.
const LISTED: usize = 15;

/// The local date a digest is due for now, if one is: the digest hour has come today (in
/// `offset`) and today's has not been sent.
pub fn due(now: DateTime<Utc>, hour: u32, offset: FixedOffset, last: Option<NaiveDate>) -> Option<NaiveDate> {
    let local = now.with_timezone(&offset);
    let today = local.date_naive();
    (local.hour() >= hour && last != Some(today)).then_some(today)
}

/// One account line: its ID, owner and masked number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub id: i64,
    pub owner: i64,
    pub masked: String,
}

impl Line {
    fn of(a: &Account) -> Self {
        Self {
            id: a.id.get(),
            owner: a.telegram_id.get(),
            masked: a.phone.masked(),
        }
    }
}

/// What the digest reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Digest {
    /// Accounts logged out in the window (status `logged_out`, changed in the window).
    pub logouts: Vec<Line>,
    /// Accounts banned in the window.
    pub bans: Vec<Line>,
    /// Active accounts not connected for more than an hour (no session, or a session that is
    /// not connected).
    pub offline: Vec<Line>,
    /// Failed job items in the window, and the jobs they belong to.
    pub failed_items: usize,
    pub failed_jobs: usize,
}

/// Builds the digest from the accounts, their live status and the failed-item counts, as of
/// `now` (Unix seconds).
pub fn summarize(
    rows: &[Account],
    live: impl Fn(&Account) -> Option<LiveStatus>,
    now: i64,
    (failed_items, failed_jobs): (usize, usize),
) -> Digest {
    let since = now - WINDOW;
    let mut d = Digest {
        failed_items,
        failed_jobs,
        ..Digest::default()
    };
    for a in rows {
        match a.status {
            AccountStatus::LoggedOut if a.status_changed_at >= since => d.logouts.push(Line::of(a)),
            AccountStatus::Banned if a.status_changed_at >= since => d.bans.push(Line::of(a)),
            AccountStatus::Active => {
                let down_since = match live(a) {
                    Some(s) if s.state == LiveState::Connected => None,
                    Some(s) => Some(s.since),
                    None => Some(a.status_changed_at.max(a.updated_at)),
                };
                if down_since.is_some_and(|t| now - t > OFFLINE_AFTER) {
                    d.offline.push(Line::of(a));
                }
            }
            _ => {}
        }
    }
    d
}

/// The digest's text for an operator in `lang`; `date` is the local date it is for.
pub fn render(lang: Lang, date: NaiveDate, d: &Digest) -> String {
    let section = |id: &str, en: &str, lines: &[Line]| {
        let mut s = t2(
            lang,
            &format!("{id}: {}", lines.len()),
            &format!("{en}: {}", lines.len()),
        );
        for l in lines.iter().take(LISTED) {
            s.push_str(&format!("\n  #{} · {} · {}", l.id, l.owner, l.masked));
        }
        if lines.len() > LISTED {
            s.push_str(&format!("\n  … +{}", lines.len() - LISTED));
        }
        s
    };
    let mut t = t2(
        lang,
        &format!("📋 <b>Ringkasan harian</b> {date} (24 jam terakhir)\n"),
        &format!("📋 <b>Daily digest</b> {date} (last 24 h)\n"),
    );
    t.push_str(&format!("\n🚪 {}", section("Logout", "Logged out", &d.logouts)));
    t.push_str(&format!("\n⛔ {}", section("Diblokir (ban)", "Banned", &d.bans)));
    t.push_str(&format!(
        "\n📴 {}",
        section("Offline lebih dari 1 jam", "Offline for more than an hour", &d.offline)
    ));
    t.push_str(&format!(
        "\n❌ {}",
        t2(
            lang,
            &format!("Item pekerjaan gagal: {} ({} pekerjaan)", d.failed_items, d.failed_jobs),
            &format!("Failed job items: {} ({} jobs)", d.failed_items, d.failed_jobs),
        )
    ));
    t
}

/// Gathers the digest as of `now`, audits it, and sends it to every operator, in their
/// language.
pub async fn send_now<R: Req>(bot: &R, app: &App, date: NaiveDate, now: i64) -> anyhow::Result<()> {
    let m = app.manager();
    let rows = m.all_rows().await?;
    let failed = app.jobs().failed_since(now - WINDOW).await?;
    let d = summarize(&rows, |a| m.live_status_unchecked(a.id), now, failed);
    m.audit(
        None,
        None,
        "admin_digest",
        format!(
            "{date}: {} logouts, {} bans, {} offline, {} failed items",
            d.logouts.len(),
            d.bans.len(),
            d.offline.len(),
            d.failed_items
        ),
    )
    .await?;
    for &admin in &m.config().admin_ids {
        let lang = match m.with_master(move |c| account::user(c, admin)).await {
            Ok(Some(u)) => Lang::from_code(&u.language),
            _ => Lang::Id,
        };
        send_html(bot, m, ChatId(admin.get()), &render(lang, date, &d), None).await;
    }
    info!(%date, "daily digest sent");
    Ok(())
}

/// Reads the date of the last digest.
async fn last_date(app: &App) -> anyhow::Result<Option<NaiveDate>> {
    let v: Option<String> = app
        .manager()
        .with_master(|c| {
            Ok(
                c.query_row("SELECT value FROM admin_state WHERE key = ?1", [LAST_DATE_KEY], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
        .await?;
    Ok(v.and_then(|s| s.parse().ok()))
}

/// Writes the date of the digest being sent.
async fn set_last_date(app: &App, date: NaiveDate) -> anyhow::Result<()> {
    let v = date.to_string();
    app.manager()
        .with_master(move |c| {
            c.execute(
                "INSERT INTO admin_state (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [LAST_DATE_KEY, v.as_str()],
            )?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// The scheduler: once `restored` says the startup logins were tried, checks every minute
/// whether today's digest is due; ends with `shutdown`. Does nothing when `TGWA_DIGEST_HOUR` is
/// empty or there are no operators.
pub async fn run<R: Req>(bot: R, app: App, mut restored: watch::Receiver<bool>, mut shutdown: watch::Receiver<bool>) {
    let config = app.manager().config().clone();
    let Some(hour) = config.digest_hour else {
        return;
    };
    if config.admin_ids.is_empty() {
        return;
    }
    tokio::select! {
        // (A restore that ended without saying so lets the digest go on.)
        _ = restored.wait_for(|done| *done) => {}
        _ = shutdown.changed() => return,
    }
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = tick(&bot, &app, hour, config.utc_offset).await {
            warn!(error = %format!("{e:#}"), "daily digest failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            r = shutdown.changed() => if r.is_err() { return },
        }
    }
}

async fn tick<R: Req>(bot: &R, app: &App, hour: u32, offset: FixedOffset) -> anyhow::Result<()> {
    let now = Utc::now();
    let Some(date) = due(now, hour, offset, last_date(app).await?) else {
        return Ok(());
    };
    // Written first: once a day at most, even if the process dies while sending.
    set_last_date(app, date).await?;
    send_now(bot, app, date, now.timestamp()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, PhoneNumber, TelegramId};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn wib() -> FixedOffset {
        FixedOffset::east_opt(7 * 3600).unwrap()
    }

    #[test]
    fn due_once_a_local_day_after_the_hour() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 00:30 UTC is 07:30 WIB: before 08:00.
        assert_eq!(due(at("2026-03-02T00:30:00Z"), 8, wib(), None), None);
        // 01:00 UTC is 08:00 WIB.
        assert_eq!(due(at("2026-03-02T01:00:00Z"), 8, wib(), None), Some(d("2026-03-02")));
        assert_eq!(due(at("2026-03-02T05:00:00Z"), 8, wib(), Some(d("2026-03-02"))), None);
        // 20:00 UTC on the 2nd is already the 3rd in WIB: a new day, after 08:00? No (03:00).
        assert_eq!(due(at("2026-03-02T20:00:00Z"), 8, wib(), Some(d("2026-03-02"))), None);
        // Hour 0: due at any time of a day not yet sent.
        assert_eq!(
            due(at("2026-03-02T20:00:00Z"), 0, wib(), Some(d("2026-03-02"))),
            Some(d("2026-03-03"))
        );
        assert_eq!(
            due(at("2026-03-02T20:00:00Z"), 23, FixedOffset::east_opt(0).unwrap(), None),
            None
        );
    }

    fn acc(id: i64, phone: &str, status: AccountStatus, changed: i64) -> Account {
        Account {
            id: AccountId::new(id).unwrap(),
            telegram_id: TelegramId::new(4000 + id).unwrap(),
            phone: PhoneNumber::from_digits(phone).unwrap(),
            jid: None,
            db_path: "x".into(),
            bot_data_db_path: "y".into(),
            status,
            last_error: None,
            banned_until: None,
            status_changed_at: changed,
            created_at: 0,
            updated_at: changed,
            generation: 1,
            nickname: None,
        }
    }

    #[test]
    fn the_last_day_is_summarized_from_a_seeded_state() {
        let now = 1_000_000;
        let rows = vec![
            acc(1, "6281200000001", AccountStatus::LoggedOut, now - 3600),
            acc(2, "6281200000002", AccountStatus::LoggedOut, now - 2 * WINDOW),
            acc(3, "6281200000003", AccountStatus::Banned, now - 60),
            acc(4, "6281200000004", AccountStatus::Active, now - 5 * 3600),
            acc(5, "6281200000005", AccountStatus::Active, now - 5 * 3600),
            acc(6, "6281200000006", AccountStatus::Active, now - 5 * 3600),
            acc(7, "6281200000007", AccountStatus::Active, now - 5 * 3600),
        ];
        let live = |a: &Account| match a.id.get() {
            // Connected: fine.
            4 => Some(LiveStatus {
                state: LiveState::Connected,
                last_error: None,
                since: now - 7200,
                retry_after: None,
            }),
            // Reconnecting for two hours: offline.
            5 => Some(LiveStatus {
                state: LiveState::Disconnected,
                last_error: None,
                since: now - 7200,
                retry_after: None,
            }),
            // Down for ten minutes only.
            6 => Some(LiveStatus {
                state: LiveState::Disconnected,
                last_error: None,
                since: now - 600,
                retry_after: None,
            }),
            // 7: no session at all for five hours: offline.
            _ => None,
        };
        let d = summarize(&rows, live, now, (4, 2));
        let ids = |v: &[Line]| v.iter().map(|l| l.id).collect::<Vec<_>>();
        assert_eq!(ids(&d.logouts), vec![1]);
        assert_eq!(ids(&d.bans), vec![3]);
        assert_eq!(ids(&d.offline), vec![5, 7]);
        let date = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let t = render(Lang::Id, date, &d);
        assert!(t.contains("Ringkasan harian</b> 2026-03-02"), "{t}");
        assert!(t.contains("Logout: 1\n  #1 · 4001 · "), "{t}");
        assert!(t.contains("Diblokir (ban): 1"), "{t}");
        assert!(t.contains("Offline lebih dari 1 jam: 2"), "{t}");
        assert!(t.contains("Item pekerjaan gagal: 4 (2 pekerjaan)"), "{t}");
        assert!(!t.contains("6281200000001"), "numbers are masked: {t}");
        let en = render(Lang::En, date, &d);
        assert!(
            en.contains("Daily digest") && en.contains("Failed job items: 4 (2 jobs)"),
            "{en}"
        );
    }
}
