//! Scheduled jobs: the clock they follow, the times users type («besok 08:00», «Senin 09:30»,
//! `24/12 08:00`), and the one task per process that starts each job at its time.
//!
//! A scheduled job is a row of the account's `jobs` table in state `scheduled` with its
//! `run_at` (UTC). The engine ([`crate::jobs::Jobs`]) keeps an in-memory index of every
//! scheduled job, loaded at start-up; the scheduler sleeps until the earliest `run_at` (or a
//! change to the index or the clock) and starts what is due. Starting is one guarded update
//! (`scheduled` to `running`, only while still `scheduled`), so a job starts once even when
//! the process dies at that moment; from then on the engine's exactly-once items apply.

use std::time::Duration;

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveTime, TimeZone, Timelike, Weekday};
use tokio::sync::watch;
use tracing::{info, warn};

pub use crate::clock::Clock;
use crate::jobs::Jobs;

/// Why a typed time was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    #[error("not a time this bot understands")]
    Unrecognised,
    #[error("no such date or time")]
    Invalid,
    #[error("that time has already passed")]
    Past,
    #[error("more than a year ahead")]
    TooFar,
}

/// Indonesian and English day names, and their short forms, to weekdays.
const DAYS: [(&str, Weekday); 24] = [
    ("senin", Weekday::Mon),
    ("selasa", Weekday::Tue),
    ("rabu", Weekday::Wed),
    ("kamis", Weekday::Thu),
    ("jumat", Weekday::Fri),
    ("jum'at", Weekday::Fri),
    ("sabtu", Weekday::Sat),
    ("minggu", Weekday::Sun),
    ("ahad", Weekday::Sun),
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
    ("sen", Weekday::Mon),
];

/// Reads a time typed by a user in time zone `tz`, `now` being Unix seconds: «besok 08:00»,
/// «lusa 8.30», «Senin 09:30», «nanti 14:00», «hari ini jam 14», `14:00` (today),
/// `24/12 08:00`, `24/12/2026 08:00`, `2026-12-24 08:00`, English words too (`tomorrow`,
/// `today`, `Monday`). A trailing `WIB` is allowed. Returns the moment as Unix seconds; a
/// moment not after `now` is [`WhenError::Past`].
pub fn parse_when(input: &str, now: i64, tz: FixedOffset) -> Result<i64, WhenError> {
    let lower = input.trim().to_lowercase().replace(',', " ");
    let mut words: Vec<&str> = lower.split_whitespace().collect();
    if words.last().is_some_and(|w| ["wib", "wita", "wit"].contains(w)) {
        words.pop();
    }
    let today = tz
        .timestamp_opt(now, 0)
        .single()
        .ok_or(WhenError::Invalid)?
        .date_naive();
    let (date, rest, day_name) = date_part(&words, today)?;
    let rest: Vec<&str> = rest
        .iter()
        .copied()
        .filter(|w| !["jam", "pukul", "pkl", "pkl.", "at"].contains(w))
        .collect();
    let [time] = rest.as_slice() else {
        return Err(WhenError::Unrecognised);
    };
    let time = parse_clock(time).ok_or(WhenError::Unrecognised)?;
    let at = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(time))
            .single()
            .map(|t| t.timestamp())
            .ok_or(WhenError::Invalid)
    };
    let mut when = at(date)?;
    if day_name && when <= now {
        // «Senin 09:30» said on a Monday after 09:30: next week's.
        when = at(date + chrono::Duration::days(7))?;
    }
    if when <= now {
        return Err(WhenError::Past);
    }
    if when > now + 366 * 86_400 {
        return Err(WhenError::TooFar);
    }
    Ok(when)
}

/// The date the words name (and the words left), and whether it came from a day name.
fn date_part<'a>(words: &'a [&'a str], today: NaiveDate) -> Result<(NaiveDate, &'a [&'a str], bool), WhenError> {
    let Some(first) = words.first() else {
        return Err(WhenError::Unrecognised);
    };
    let day = |n: i64| today + chrono::Duration::days(n);
    match *first {
        "besok" | "tomorrow" | "bsk" => return Ok((day(1), &words[1..], false)),
        "lusa" => return Ok((day(2), &words[1..], false)),
        "nanti" | "today" | "later" | "tonight" => return Ok((today, &words[1..], false)),
        "hari" if words.get(1) == Some(&"ini") => return Ok((today, &words[2..], false)),
        _ => {}
    }
    if let Some((_, wd)) = DAYS.iter().find(|(n, _)| n == first) {
        let ahead = (wd.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64).rem_euclid(7);
        return Ok((day(ahead), &words[1..], true));
    }
    if let Some(d) = parse_date(first, today)? {
        return Ok((d, &words[1..], false));
    }
    // A time alone is today.
    Ok((today, words, false))
}

/// `24/12`, `24-12`, `24/12/2026`, `24/12/26`, `2026-12-24`; `None` when it is no date at
/// all. A day and month without a year is the next such day from `today`.
fn parse_date(s: &str, today: NaiveDate) -> Result<Option<NaiveDate>, WhenError> {
    let parts: Vec<&str> = s.split(['/', '-', '.']).collect();
    if parts.len() < 2
        || parts.len() > 3
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Ok(None);
    }
    // `14.30` is a time, not the 14th of a 30th month.
    if parts.len() == 2 && s.contains('.') {
        return Ok(None);
    }
    let n = |p: &str| p.parse::<u32>().map_err(|_| WhenError::Invalid);
    let date = if parts.len() == 3 && parts[0].len() == 4 {
        NaiveDate::from_ymd_opt(n(parts[0])? as i32, n(parts[1])?, n(parts[2])?)
    } else if parts.len() == 3 {
        let mut y = n(parts[2])? as i32;
        if y < 100 {
            y += 2000;
        }
        NaiveDate::from_ymd_opt(y, n(parts[1])?, n(parts[0])?)
    } else {
        let (d, m) = (n(parts[0])?, n(parts[1])?);
        match NaiveDate::from_ymd_opt(today.year(), m, d) {
            Some(x) if x >= today => Some(x),
            Some(_) => NaiveDate::from_ymd_opt(today.year() + 1, m, d),
            None => None,
        }
    };
    date.map(Some).ok_or(WhenError::Invalid)
}

/// `08:00`, `8.30`, `14`, `9:05`: a time of day.
fn parse_clock(s: &str) -> Option<NaiveTime> {
    let (h, m) = match s.split_once([':', '.']) {
        Some((h, m)) => (h, m),
        None => (s, "0"),
    };
    let ok = |p: &str| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !ok(h) || !ok(m) {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// A moment as the user reads it: `Sen 08 Des 2026 08:00` in their time zone.
pub fn show(at: i64, tz: FixedOffset, english: bool) -> String {
    let Some(t) = tz.timestamp_opt(at, 0).single() else {
        return at.to_string();
    };
    let (days, months): (&[&str; 7], &[&str; 12]) = if english {
        (
            &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            &[
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ],
        )
    } else {
        (
            &["Sen", "Sel", "Rab", "Kam", "Jum", "Sab", "Min"],
            &[
                "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
            ],
        )
    };
    let zone = match tz.local_minus_utc() {
        25_200 => "WIB".to_string(),
        28_800 => "WITA".to_string(),
        32_400 => "WIT".to_string(),
        s => format!("UTC{:+}", s / 3600),
    };
    format!(
        "{} {:02} {} {} {:02}:{:02} {zone}",
        days[t.weekday().num_days_from_monday() as usize],
        t.day(),
        months[t.month0() as usize],
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// The longest the scheduler sleeps without looking at its index again: a wall clock set
/// forward (or a suspended machine) is noticed within this, so a job starts within a minute
/// of its time. Each look is in memory only.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// How long a start that failed on its database waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The scheduler: waits for `ready` (the start-up logins), loads every account's scheduled
/// jobs, then starts each at its time until `shutdown`. Jobs whose time passed while the
/// process was down start at once and their owners are told.
pub async fn run(jobs: Jobs, clock: Clock, mut ready: watch::Receiver<bool>, mut shutdown: watch::Receiver<bool>) {
    let started = clock.now();
    tokio::select! {
        r = ready.wait_for(|r| *r) => if r.is_err() { return },
        _ = shutdown.wait_for(|s| *s) => return,
    }
    match jobs.load_schedule().await {
        Ok(n) if n > 0 => info!(jobs = n, "scheduled jobs loaded"),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "could not load the scheduled jobs"),
    }
    let changed = jobs.schedule_changed();
    let mut moved = clock.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Registered before the look, so a change made during it is not missed.
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = clock.now();
        let mut failed = false;
        for (account, job, run_at) in jobs.take_due(now) {
            failed |= !jobs.start_scheduled(account, job, run_at, run_at < started).await;
        }
        let wait = match jobs.next_run_at() {
            Some(at) => Duration::from_secs((at - clock.now()).max(0) as u64).min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        // A job put back after a database error is tried again a little later, not at once.
        let wait = if failed { wait.max(RETRY_AFTER) } else { wait };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut notified => {}
            _ = Clock::moved(&mut moved) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wib() -> FixedOffset {
        FixedOffset::east_opt(7 * 3600).unwrap()
    }

    /// Monday 2026-12-07 10:00 WIB.
    fn now() -> i64 {
        wib().with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap().timestamp()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        wib().with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp()
    }

    #[test]
    fn relative_days_day_names_and_dates_are_read_in_the_users_zone() {
        let p = |s: &str| parse_when(s, now(), wib());
        assert_eq!(p("besok 08:00"), Ok(at(2026, 12, 8, 8, 0)));
        assert_eq!(p("Besok jam 8"), Ok(at(2026, 12, 8, 8, 0)));
        assert_eq!(p("tomorrow 8.30"), Ok(at(2026, 12, 8, 8, 30)));
        assert_eq!(p("lusa 07:15 WIB"), Ok(at(2026, 12, 9, 7, 15)));
        assert_eq!(p("nanti 14:00"), Ok(at(2026, 12, 7, 14, 0)));
        assert_eq!(p("hari ini pukul 14.00"), Ok(at(2026, 12, 7, 14, 0)));
        assert_eq!(p("14:00"), Ok(at(2026, 12, 7, 14, 0)));
        assert_eq!(p("Rabu 09:30"), Ok(at(2026, 12, 9, 9, 30)));
        assert_eq!(p("friday 09:30"), Ok(at(2026, 12, 11, 9, 30)));
        assert_eq!(p("Jumat 09:30"), Ok(at(2026, 12, 11, 9, 30)));
        // Today is Monday: later today, or next week's Monday once the time has passed.
        assert_eq!(p("Senin 11:00"), Ok(at(2026, 12, 7, 11, 0)));
        assert_eq!(p("Senin 09:30"), Ok(at(2026, 12, 14, 9, 30)));
        assert_eq!(p("24/12 08:00"), Ok(at(2026, 12, 24, 8, 0)));
        assert_eq!(p("24-12-2026 08:00"), Ok(at(2026, 12, 24, 8, 0)));
        assert_eq!(p("2026-12-24 08:00"), Ok(at(2026, 12, 24, 8, 0)));
        // A day and month already past this year is next year's.
        assert_eq!(p("01/01 08:00"), Ok(at(2027, 1, 1, 8, 0)));
    }

    #[test]
    fn past_impossible_and_unreadable_times_are_refused() {
        let p = |s: &str| parse_when(s, now(), wib());
        assert_eq!(p("hari ini 09:00"), Err(WhenError::Past));
        assert_eq!(p("10:00"), Err(WhenError::Past));
        assert_eq!(p("2026-12-01 08:00"), Err(WhenError::Past));
        assert_eq!(p("31/02 08:00"), Err(WhenError::Invalid));
        assert_eq!(p("besok 25:00"), Err(WhenError::Unrecognised));
        assert_eq!(p("kapan-kapan"), Err(WhenError::Unrecognised));
        assert_eq!(p(""), Err(WhenError::Unrecognised));
        assert_eq!(p("besok"), Err(WhenError::Unrecognised));
        assert_eq!(p("2028-12-24 08:00"), Err(WhenError::TooFar));
    }

    #[test]
    fn moments_are_shown_in_the_users_zone_and_language() {
        assert_eq!(show(at(2026, 12, 8, 8, 0), wib(), false), "Sel 08 Des 2026 08:00 WIB");
        assert_eq!(show(at(2026, 12, 8, 8, 0), wib(), true), "Tue 08 Dec 2026 08:00 WIB");
    }

    #[test]
    fn a_test_clock_moves_by_hand() {
        let c = Clock::starting_at(1_000_000);
        assert!((c.now() - 1_000_000).abs() <= 1);
        c.advance(Duration::from_secs(120));
        assert!((c.now() - 1_000_120).abs() <= 1);
    }
}
