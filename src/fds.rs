//! File descriptors for thousands of accounts: the soft `RLIMIT_NOFILE` raised to the hard
//! limit at start (systemd's default soft limit of 1,024 is full after about 260 accounts),
//! and the figures `tgwa check` compares with it.

use std::io;

/// Descriptors one connected account keeps open beyond the shared ones, on the real backend:
/// its whatsapp-rust store (one pooled SQLite connection: `.db`, `-wal`, `-shm`) and its
/// socket, plus one spare. Measured by `benches/startup.rs` (`fds_per_account=`).
pub const PER_ACCOUNT: u64 = 5;

/// Descriptors per open pool of the cache of accounts' `bot_data` pools (up to two
/// connections, each `.db` and `-wal`, and one `-shm` per file), bounded by
/// `TGWA_POOL_CACHE_SIZE` however many accounts there are.
pub const PER_CACHED_POOL: u64 = 5;

/// Descriptors the process holds whatever the number of accounts (runtime, master database,
/// Telegram connections, log output), with room to spare.
pub const BASE: u64 = 64;

/// The soft and hard limits on open files.
pub fn nofile_limits() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` only writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// The highest soft limit the kernel takes: the hard limit, or `fs/nr_open` when the hard
/// limit is "unlimited" (Linux refuses more than `nr_open`).
fn ceiling(hard: u64) -> u64 {
    if hard != libc::RLIM_INFINITY {
        return hard;
    }
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// The limit `tgwa run` will have once it raised its soft limit.
pub fn reachable_limit() -> io::Result<u64> {
    nofile_limits().map(|(_, hard)| ceiling(hard))
}

/// Raises the soft limit on open files to the hard limit. Returns (before, after).
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let (soft, hard) = nofile_limits()?;
    let want = ceiling(hard);
    if soft >= want {
        return Ok((soft, soft));
    }
    let lim = libc::rlimit {
        rlim_cur: want,
        rlim_max: hard,
    };
    // SAFETY: `setrlimit` only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((soft, want))
}

/// How many descriptors the process has open now (`None` without `/proc`).
pub fn open_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

/// Descriptors `accounts` connected accounts need with `pool_cache` pools open.
pub fn needed(accounts: u64, pool_cache: u64) -> u64 {
    BASE + accounts * PER_ACCOUNT + pool_cache * PER_CACHED_POOL
}

// --- scale20 ---
/// How many account pools the cache may hold open for running job workers beyond its LRU
/// (see [`crate::db::PoolCache::hold_blocking`]): what is left of 80 % of `limit` once the
/// base, `sessions` accounts' own descriptors ([`PER_ACCOUNT`] each; none on the simulator)
/// and the LRU's `pool_cache` pools are counted, at [`PER_CACHED_POOL`] per held pool. So
/// holding pools never brings the process nearer its limit than `tgwa check` warns about.
pub fn held_pool_budget(limit: u64, sessions: u64, pool_cache: u64) -> usize {
    let usable = limit.saturating_mul(4) / 5;
    let used = BASE + sessions.saturating_mul(PER_ACCOUNT) + pool_cache.saturating_mul(PER_CACHED_POOL);
    (usable.saturating_sub(used) / PER_CACHED_POOL) as usize
}

/// Whether `need` descriptors come near `limit` (more than 80 % of it).
pub fn near_limit(need: u64, limit: u64) -> bool {
    need.saturating_mul(5) > limit.saturating_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (_, after) = raise_nofile_limit().expect("raise");
        let (soft, hard) = nofile_limits().expect("limits");
        assert_eq!(soft, after);
        assert!(soft == hard || hard == libc::RLIM_INFINITY);
        assert!(open_count().is_some_and(|n| n > 0));
    }

    #[test]
    fn the_estimate_warns_near_the_limit() {
        // systemd's default: 260 accounts and the default pool cache do not fit in 1,024.
        assert!(near_limit(needed(260, 256), 1024));
        assert!(!near_limit(needed(10_000, 256), 65_536));
        assert!(near_limit(needed(12_000, 256), 65_536));
    }

    #[test]
    fn held_pools_fit_under_the_warning() {
        // Simulator, 20,000 descriptors: the rest after the LRU goes to held pools.
        let held = held_pool_budget(20_000, 0, 256) as u64;
        assert_eq!(held, (16_000 - BASE - 256 * PER_CACHED_POOL) / PER_CACHED_POOL);
        assert!(!near_limit(needed(0, 256) + held * PER_CACHED_POOL, 20_000));
        // 10,000 real sessions under 65,536: a few left to hold, nothing over the warning.
        let held = held_pool_budget(65_536, 10_000, 256) as u64;
        assert_eq!(held, 216);
        assert!(!near_limit(needed(10_000, 256) + held * PER_CACHED_POOL, 65_536));
        // systemd's default limit: nothing to hold.
        assert_eq!(held_pool_budget(1_024, 260, 256), 0);
    }
}
