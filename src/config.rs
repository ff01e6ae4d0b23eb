//! One typed configuration, read once from the environment (and `.env`) and passed down.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::ids::TelegramId;

/// A setting that could not be used. Names the variable so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// How log lines are written to stderr (`TGWA_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colours only when stderr is a terminal).
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Which WhatsApp implementation sessions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaBackendKind {
    /// The real network through whatsapp-rust.
    WhatsApp,
    /// The in-process simulator, for tests and local trials.
    Sim,
    /// The real adapter against the in-process fake WhatsApp server; only in a build with
    /// the `insecure-fake-whatsapp` feature.
    Fake,
}

/// Everything the process needs to know from its environment.
#[derive(Clone)]
pub struct Config {
    /// Bot token; only `run` needs it, so it is optional here and checked there.
    pub bot_token: Option<String>,
    /// Bot API base URL (a local Bot API server or a test fake).
    pub telegram_api_url: Option<String>,
    /// The per-user folders.
    pub data_dir: PathBuf,
    /// The master database file.
    pub master_db: PathBuf,
    /// Operators who get startup summaries and admin views.
    pub admin_ids: Vec<TelegramId>,
    /// Accounts per server (not counting removed ones).
    pub max_accounts: usize,
    /// Accounts per Telegram user.
    pub max_accounts_per_user: usize,
    /// Replaces a leading 0 of a typed phone number.
    pub default_country_code: String,
    /// Idle time before a cached user context is dropped.
    pub session_timeout: Duration,
    /// Real WhatsApp or the simulator.
    pub wa_backend: WaBackendKind,
    /// Simulator: delay between code issued and pairing confirmed.
    pub sim_pair_delay: Duration,
    /// Simulator: pairing code lifetime.
    pub sim_code_ttl: Duration,
    /// How many accounts log in at once at startup.
    pub login_concurrency: usize,
    /// Random delay, up to this, before each startup login (spreads hundreds of logins).
    pub login_jitter: Duration,
    /// How long startup waits for one account to connect before counting it as failed.
    pub login_timeout: Duration,
    /// How long a WhatsApp connection may stay down before its owner is told of an outage
    /// (once; the recovery after it is told once too). Shorter drops tell nobody.
    pub wa_outage_after: Duration,
    /// Whether outgoing Telegram calls are paced per chat (`bot::limiter`; on in production).
    pub telegram_throttle: bool,
    /// Days a logged-out or banned account keeps its files before they move to trash.
    pub purge_after_days: u64,
    /// Bound on disconnecting every session at shutdown.
    pub shutdown_timeout: Duration,
    /// `tgwa import` refuses Go-bot files changed more recently than this (the Go bot may
    /// still be running).
    pub import_min_age: Duration,
    /// How many per-file SQLite pools stay open at once.
    pub pool_cache_size: usize,
    /// Bulk job pacing: minimum delay between two items of one account.
    pub job_item_delay: Duration,
    /// Bulk job pacing: random extra delay added to each item, up to this.
    pub job_jitter: Duration,
    /// Bulk jobs: items one account may run per day.
    pub job_daily_cap: u32,
    /// Bulk jobs: largest list a job accepts.
    pub job_max_items: usize,
    /// Largest uploaded file accepted, in bytes.
    pub upload_max_bytes: u64,
    /// Largest N for "create groups from a pattern".
    pub max_create_groups: usize,
    /// Pairing: minimum time between two code requests of one user, or for one number.
    pub pair_cooldown: Duration,
    /// Pairing: code requests per user, and per number, in any hour (0: no cap).
    pub pair_max_per_hour: usize,
    /// `RUST_LOG` as read from the environment or `.env` (`None`: each command's default).
    pub log_filter: Option<String>,
    /// `TGWA_LOG_FORMAT`: pretty or JSON log lines.
    pub log_format: LogFormat,
    /// How long a prompt waits for the user's text before it expires.
    pub prompt_timeout: Duration,
    /// First wait before retrying a Telegram call that failed for a passing reason (doubles
    /// each try).
    pub telegram_retry_base: Duration,
    /// Bound on one Telegram HTTP request (teloxide's client timeout).
    pub telegram_timeout: Duration,
    /// Bulk messages: show "typing…" before each one, as a person would (`TGWA_TYPING`).
    pub typing: bool,
    /// Bulk messages: typing time per character of the text, before the random spread.
    pub typing_per_char: Duration,
    /// Bulk messages: the longest typing time.
    pub typing_max: Duration,
    /// Warm-up: the daily item cap of a newly linked account on its first, second, ... day
    /// (`TGWA_WARMUP_CAPS`, comma-separated); after the last day the normal daily cap holds.
    /// Empty turns the warm-up off.
    pub warmup_caps: Vec<u32>,
    /// Where `/health` and `/metrics` listen; `None` when `TGWA_HTTP_ADDR` is set empty.
    pub http_addr: Option<std::net::SocketAddr>,
    /// `/health` fails once the last successful `getUpdates` is older than this.
    pub health_max_age: Duration,
    /// Announcements (`/admin`): minimum time between two sends.
    pub announce_delay: Duration,
    /// The hour (0-23, in `utc_offset`) the daily digest goes to the operators; `None` when
    /// `TGWA_DIGEST_HOUR` is set empty.
    pub digest_hour: Option<u32>,
    /// `TGWA_TIMEZONE`: the fixed offset the operators live in (WIB, UTC+7, by default).
    pub utc_offset: chrono::FixedOffset,
    /// Inbox: messages forwarded per owner in any minute before digests take over.
    pub inbox_rate_per_min: usize,
    /// Inbox: least time between two digests of one account.
    pub inbox_digest_every: Duration,
    /// Inbox: days incoming messages are kept.
    pub inbox_retention_days: u64,
    // --- sched ---
    /// The clock scheduled jobs follow (the system clock; tests put a fake one here). The
    /// time zone users type times in is `utc_offset` (`TGWA_TIMEZONE`).
    pub clock: crate::clock::Clock,
    // --- peer ---
    /// `TGWA_WA_PROXY`: the proxy of WhatsApp accounts that have none of their own
    /// (`socks5://user:pass@host:port` or `http://...`). Printed masked.
    pub wa_proxy: Option<crate::proxy::ProxyUrl>,
    // --- bot17 ---
    /// `TGWA_CHECK_DAILY_CAP`: number checks ("is this number on WhatsApp?") per account per
    /// UTC day, a quota apart from `job_daily_cap`, which every other job kind shares.
    pub check_daily_cap: u32,
}

impl std::fmt::Debug for Config {
    // Hand-written so the token never reaches a log line; every other field is shown (the
    // `.env.example` test compares these renderings to prove each key is applied).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<set>"))
            .field("telegram_api_url", &self.telegram_api_url)
            .field("data_dir", &self.data_dir)
            .field("master_db", &self.master_db)
            .field("admin_ids", &self.admin_ids)
            .field("max_accounts", &self.max_accounts)
            .field("max_accounts_per_user", &self.max_accounts_per_user)
            .field("default_country_code", &self.default_country_code)
            .field("session_timeout", &self.session_timeout)
            .field("wa_backend", &self.wa_backend)
            .field("sim_pair_delay", &self.sim_pair_delay)
            .field("sim_code_ttl", &self.sim_code_ttl)
            .field("login_concurrency", &self.login_concurrency)
            .field("login_jitter", &self.login_jitter)
            .field("login_timeout", &self.login_timeout)
            .field("wa_outage_after", &self.wa_outage_after)
            .field("telegram_throttle", &self.telegram_throttle)
            .field("purge_after_days", &self.purge_after_days)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("pool_cache_size", &self.pool_cache_size)
            .field("job_item_delay", &self.job_item_delay)
            .field("job_jitter", &self.job_jitter)
            .field("job_daily_cap", &self.job_daily_cap)
            .field("job_max_items", &self.job_max_items)
            .field("upload_max_bytes", &self.upload_max_bytes)
            .field("max_create_groups", &self.max_create_groups)
            .field("import_min_age", &self.import_min_age)
            .field("pair_cooldown", &self.pair_cooldown)
            .field("pair_max_per_hour", &self.pair_max_per_hour)
            .field("prompt_timeout", &self.prompt_timeout)
            .field("telegram_retry_base", &self.telegram_retry_base)
            .field("telegram_timeout", &self.telegram_timeout)
            .field("http_addr", &self.http_addr)
            .field("health_max_age", &self.health_max_age)
            .field("announce_delay", &self.announce_delay)
            .field("digest_hour", &self.digest_hour)
            .field("utc_offset", &self.utc_offset)
            .field("inbox_rate_per_min", &self.inbox_rate_per_min)
            .field("inbox_digest_every", &self.inbox_digest_every)
            .field("inbox_retention_days", &self.inbox_retention_days)
            .field("log_filter", &self.log_filter)
            .field("log_format", &self.log_format)
            .field("typing", &self.typing)
            .field("typing_per_char", &self.typing_per_char)
            .field("typing_max", &self.typing_max)
            .field("warmup_caps", &self.warmup_caps)
            // --- sched ---
            .field("clock", &self.clock)
            // --- peer --- (masked by its Display)
            .field("wa_proxy", &self.wa_proxy)
            // --- bot17 ---
            .field("check_daily_cap", &self.check_daily_cap)
            .finish()
    }
}

impl Config {
    /// Reads `.env` in the working directory (if present), then the environment, which wins
    /// over `.env`. A `.env` that does not parse is an error naming its line: reading stops
    /// at a bad line, so going on would silently drop every setting after it.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = read_env_file(std::path::Path::new(".env"))?;
        vars.extend(std::env::vars());
        Self::from_map(&vars)
    }

    /// Builds the config from a map of variables; tests use this directly.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let bot_token = get("TELEGRAM_BOT_TOKEN")
            .or_else(|| get("TELOXIDE_TOKEN"))
            .map(str::to_string);
        let telegram_api_url = match get("TELEGRAM_API_URL") {
            None => None,
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => Some(u.to_string()),
            Some(_) => return Err(err("TELEGRAM_API_URL", "must start with http:// or https://")),
        };
        let data_dir = PathBuf::from(get("TGWA_DATA_DIR").unwrap_or("DB USER TELEGRAM"));
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(err(
                "TGWA_DATA_DIR",
                format!("{} exists and is not a directory", data_dir.display()),
            ));
        }
        let master_db = PathBuf::from(get("TGWA_MASTER_DB").unwrap_or("bot_data.db"));
        if master_db.is_dir() {
            return Err(err("TGWA_MASTER_DB", format!("{} is a directory", master_db.display())));
        }
        let admin_ids = match get("TGWA_ADMIN_IDS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<TelegramId>()
                        .map_err(|_| err("TGWA_ADMIN_IDS", format!("{s:?} is not a Telegram user ID")))
                })
                .collect::<Result<_, _>>()?,
        };
        let default_country_code = get("TGWA_DEFAULT_COUNTRY_CODE").unwrap_or("62").to_string();
        if default_country_code.is_empty()
            || default_country_code.len() > 3
            || default_country_code.starts_with('0')
            || !default_country_code.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err(
                "TGWA_DEFAULT_COUNTRY_CODE",
                "must be 1 to 3 digits, not starting with 0",
            ));
        }
        let wa_backend = match get("TGWA_WA_BACKEND").unwrap_or("whatsapp") {
            "whatsapp" => WaBackendKind::WhatsApp,
            "sim" => WaBackendKind::Sim,
            "fake" if cfg!(feature = "insecure-fake-whatsapp") => WaBackendKind::Fake,
            "fake" => {
                return Err(err(
                    "TGWA_WA_BACKEND",
                    "\"fake\" needs a build with `--features insecure-fake-whatsapp`, which this build lacks",
                ))
            }
            other => return Err(err("TGWA_WA_BACKEND", format!("{other:?}: use whatsapp or sim"))),
        };
        let num = |k: &'static str, default: u64, min: u64| -> Result<u64, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n >= min => Ok(n),
                    Ok(_) => Err(err(k, format!("must be at least {min}"))),
                    Err(_) => Err(err(k, format!("{v:?} is not a whole number"))),
                },
            }
        };
        // Set but empty turns the listener off; unset means the default.
        let http_addr = match vars.get("TGWA_HTTP_ADDR").map(|v| v.trim()) {
            Some("") => None,
            Some(v) => Some(
                v.parse()
                    .map_err(|_| err("TGWA_HTTP_ADDR", format!("{v:?} is not an address like 127.0.0.1:9464")))?,
            ),
            None => Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9464))),
        };
        // Set but empty turns the digest off; unset means 08:00.
        let digest_hour = match vars.get("TGWA_DIGEST_HOUR").map(|v| v.trim()) {
            Some("") => None,
            Some(v) => match v.parse::<u32>() {
                Ok(h) if h < 24 => Some(h),
                _ => {
                    return Err(err(
                        "TGWA_DIGEST_HOUR",
                        format!("{v:?}: use an hour from 0 to 23, or empty for off"),
                    ))
                }
            },
            None => Some(8),
        };
        let utc_offset = match get("TGWA_TIMEZONE") {
            None => WIB,
            Some(v) => parse_offset(v).ok_or_else(|| {
                err(
                    "TGWA_TIMEZONE",
                    format!("{v:?}: use a fixed offset like +07:00 (WIB), +08:00 (WITA) or +09:00 (WIT)"),
                )
            })?,
        };
        Ok(Self {
            announce_delay: Duration::from_millis(num("TGWA_ANNOUNCE_DELAY_MS", 100, 0)?),
            digest_hour,
            utc_offset,
            inbox_rate_per_min: num("TGWA_INBOX_RATE_PER_MIN", 20, 1)? as usize,
            inbox_digest_every: Duration::from_secs(num("TGWA_INBOX_DIGEST_SECS", 60, 1)?),
            inbox_retention_days: num("TGWA_INBOX_RETENTION_DAYS", 30, 1)?,
            // --- sched ---
            clock: crate::clock::Clock::system(),
            http_addr,
            health_max_age: Duration::from_secs(num("TGWA_HEALTH_MAX_AGE_SECS", 60, 1)?),
            bot_token,
            telegram_api_url,
            data_dir,
            master_db,
            admin_ids,
            max_accounts: num("TGWA_MAX_ACCOUNTS", 50, 1)? as usize,
            max_accounts_per_user: num("TGWA_MAX_ACCOUNTS_PER_USER", 5, 1)? as usize,
            default_country_code,
            session_timeout: Duration::from_secs(num("TGWA_SESSION_TIMEOUT_SECS", 300, 1)?),
            wa_backend,
            sim_pair_delay: Duration::from_millis(num("TGWA_SIM_PAIR_DELAY_MS", 2000, 0)?),
            sim_code_ttl: Duration::from_millis(num("TGWA_SIM_CODE_TTL_MS", 180_000, 1)?),
            login_concurrency: num("TGWA_LOGIN_CONCURRENCY", 8, 1)? as usize,
            login_jitter: Duration::from_millis(num("TGWA_LOGIN_JITTER_MS", 500, 0)?),
            login_timeout: Duration::from_secs(num("TGWA_LOGIN_TIMEOUT_SECS", 60, 1)?),
            wa_outage_after: Duration::from_secs(num("TGWA_WA_OUTAGE_SECS", 120, 1)?),
            telegram_throttle: match get("TGWA_TELEGRAM_THROTTLE").unwrap_or("1") {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                other => return Err(err("TGWA_TELEGRAM_THROTTLE", format!("{other:?}: use 1 or 0"))),
            },
            purge_after_days: num("TGWA_PURGE_AFTER_DAYS", 7, 0)?,
            shutdown_timeout: Duration::from_secs(num("TGWA_SHUTDOWN_TIMEOUT_SECS", 10, 1)?),
            import_min_age: Duration::from_secs(num("TGWA_IMPORT_MIN_AGE_SECS", 300, 0)?),
            pool_cache_size: num("TGWA_POOL_CACHE_SIZE", 256, 2)? as usize,
            job_item_delay: Duration::from_millis(num("TGWA_JOB_ITEM_DELAY_MS", 3000, 0)?),
            job_jitter: Duration::from_millis(num("TGWA_JOB_JITTER_MS", 2000, 0)?),
            job_daily_cap: num("TGWA_JOB_DAILY_CAP", 1000, 1)? as u32,
            job_max_items: num("TGWA_JOB_MAX_ITEMS", 1000, 1)? as usize,
            upload_max_bytes: num("TGWA_UPLOAD_MAX_BYTES", 1_048_576, 1)?,
            max_create_groups: num("TGWA_MAX_CREATE_GROUPS", 50, 1)? as usize,
            pair_cooldown: Duration::from_secs(num("TGWA_PAIR_COOLDOWN_SECS", 30, 0)?),
            pair_max_per_hour: num("TGWA_PAIR_MAX_PER_HOUR", 5, 0)? as usize,
            log_filter: get("RUST_LOG").map(str::to_string),
            log_format: match get("TGWA_LOG_FORMAT").unwrap_or("pretty") {
                "pretty" => LogFormat::Pretty,
                "json" => LogFormat::Json,
                other => return Err(err("TGWA_LOG_FORMAT", format!("{other:?}: use pretty or json"))),
            },
            prompt_timeout: Duration::from_secs(num("TGWA_PROMPT_TIMEOUT_SECS", 600, 1)?),
            telegram_retry_base: Duration::from_millis(num("TGWA_TELEGRAM_RETRY_BASE_MS", 500, 0)?),
            telegram_timeout: Duration::from_millis(num("TGWA_TELEGRAM_TIMEOUT_MS", 17_000, 1000)?),
            typing: match get("TGWA_TYPING").unwrap_or("1") {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                other => return Err(err("TGWA_TYPING", format!("{other:?}: use 1 or 0"))),
            },
            typing_per_char: Duration::from_millis(num("TGWA_TYPING_MS_PER_CHAR", 50, 0)?),
            typing_max: Duration::from_millis(num("TGWA_TYPING_MAX_MS", 8000, 0)?),
            warmup_caps: warmup_caps(vars.get("TGWA_WARMUP_CAPS").map(String::as_str))?,
            // --- peer ---
            wa_proxy: match get("TGWA_WA_PROXY") {
                None => None,
                // The error names the rule, never the value: it may hold a password.
                Some(v) => Some(crate::proxy::ProxyUrl::parse(v).map_err(|e| err("TGWA_WA_PROXY", e.to_string()))?),
            },
            // --- bot17 ---
            check_daily_cap: num("TGWA_CHECK_DAILY_CAP", 1000, 1)? as u32,
        })
    }

    /// A config rooted in `dir`, with the simulator and no pacing: for tests and benchmarks.
    pub fn for_tests(dir: &std::path::Path) -> Self {
        let mut vars = HashMap::new();
        vars.insert(
            "TGWA_DATA_DIR".into(),
            dir.join("DB USER TELEGRAM").display().to_string(),
        );
        vars.insert("TGWA_MASTER_DB".into(), dir.join("bot_data.db").display().to_string());
        vars.insert("TGWA_WA_BACKEND".into(), "sim".into());
        vars.insert("TGWA_SIM_PAIR_DELAY_MS".into(), "50".into());
        vars.insert("TGWA_JOB_ITEM_DELAY_MS".into(), "0".into());
        vars.insert("TGWA_JOB_JITTER_MS".into(), "0".into());
        vars.insert("TGWA_LOGIN_JITTER_MS".into(), "0".into());
        vars.insert("TGWA_TELEGRAM_THROTTLE".into(), "0".into());
        vars.insert("TGWA_PAIR_COOLDOWN_SECS".into(), "0".into());
        vars.insert("TGWA_PAIR_MAX_PER_HOUR".into(), "0".into());
        vars.insert("TGWA_HTTP_ADDR".into(), String::new());
        vars.insert("TGWA_TYPING".into(), "0".into());
        vars.insert("TGWA_WARMUP_CAPS".into(), String::new());
        Self::from_map(&vars).expect("test config is valid")
    }
}

/// The warm-up caps: unset gives the default ramp; set but empty turns the warm-up off.
/// 20 messages on the first day, doubling daily to 320 on the fifth: peers' anti-ban advice
/// (WAHA's and Baileys' users) is to start a new number with a few dozen messages a day and
/// grow it over a week, since a young number writing to many strangers is what WhatsApp
/// bans first.
fn warmup_caps(v: Option<&str>) -> Result<Vec<u32>, ConfigError> {
    let Some(v) = v.map(str::trim) else {
        return Ok(vec![20, 40, 80, 160, 320]);
    };
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(err(
                "TGWA_WARMUP_CAPS",
                format!("{p:?}: use whole numbers of at least 1, like 20,40,80 (empty: no warm-up)"),
            )),
        })
        .collect()
}

/// Western Indonesian Time, UTC+7: the operators' default.
const WIB: chrono::FixedOffset = match chrono::FixedOffset::east_opt(7 * 3600) {
    Some(o) => o,
    None => unreachable!(),
};

/// A fixed UTC offset: `+07:00`, `+7`, `7`, `-03:30`, `UTC+7`, `WIB`, `WITA`, `WIT`, `UTC`.
fn parse_offset(v: &str) -> Option<chrono::FixedOffset> {
    let v = v.trim();
    let named = match v.to_ascii_uppercase().as_str() {
        "WIB" => Some(7),
        "WITA" => Some(8),
        "WIT" => Some(9),
        "UTC" | "GMT" | "Z" => Some(0),
        _ => None,
    };
    if let Some(h) = named {
        return chrono::FixedOffset::east_opt(h * 3600);
    }
    let v = v.strip_prefix("UTC").or_else(|| v.strip_prefix("GMT")).unwrap_or(v);
    let (sign, rest) = match v.as_bytes().first()? {
        b'+' => (1, &v[1..]),
        b'-' => (-1, &v[1..]),
        // A bare number of hours is east of UTC, as in Indonesia.
        _ => (1, v),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// The variables of a `.env` file, in dotenvy's syntax (first occurrence of a key wins, as
/// dotenvy's own loader does). A missing file is an empty map; a line that does not parse is
/// an error that names the file and the line.
pub fn read_env_file(path: &std::path::Path) -> Result<HashMap<String, String>, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(err(".env", format!("cannot read {}: {e}", path.display()))),
    };
    let text = String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes)).into_owned();
    let mut vars = HashMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((k, v)) => {
                vars.entry(k).or_insert(v);
            }
            Err(dotenvy::Error::LineParse(..)) => {
                // dotenvy names neither the line nor (for a bad value) the key: find the first
                // line at which the file stops parsing. Only the key is shown, never the value
                // (it may be the token).
                let lines: Vec<&str> = text.lines().collect();
                let bad = (1..=lines.len())
                    .find(|&n| {
                        let head = lines[..n].join("\n");
                        dotenvy::from_read_iter(head.as_bytes()).any(|r| r.is_err())
                    })
                    .unwrap_or(lines.len());
                let line = lines.get(bad.saturating_sub(1)).copied().unwrap_or("");
                let key = line
                    .split_once('=')
                    .map(|(k, _)| k.trim().trim_start_matches("export ").trim())
                    .unwrap_or("");
                let value = line.split_once('=').map(|(_, v)| v.trim()).unwrap_or("");
                let hint = if value.contains(' ') && !value.starts_with(['"', '\'']) {
                    ": put a value with spaces in double quotes (KEY=\"a b\")"
                } else {
                    ""
                };
                return Err(err(
                    ".env",
                    format!(
                        "{} line {bad} ({}) does not parse{hint}",
                        path.display(),
                        key.escape_debug()
                    ),
                ));
            }
            Err(e) => return Err(err(".env", format!("{}: {e}", path.display()))),
        }
    }
    Ok(vars)
}

fn err(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_map(&m)
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = with(&[]).unwrap();
        assert_eq!(c.max_accounts, 50);
        assert_eq!(c.max_accounts_per_user, 5);
        assert_eq!(c.default_country_code, "62");
        assert_eq!(c.session_timeout, Duration::from_secs(300));
        assert_eq!(c.wa_backend, WaBackendKind::WhatsApp);
        assert_eq!(c.data_dir, PathBuf::from("DB USER TELEGRAM"));
        assert_eq!(c.master_db, PathBuf::from("bot_data.db"));
        assert_eq!(c.prompt_timeout, Duration::from_secs(600));
        assert_eq!(c.telegram_retry_base, Duration::from_millis(500));
        assert_eq!(c.telegram_timeout, Duration::from_secs(17));
        assert_eq!(c.http_addr, Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9464))));
        assert_eq!(with(&[("TGWA_HTTP_ADDR", "")]).unwrap().http_addr, None);
        assert_eq!(c.digest_hour, Some(8));
        assert_eq!(c.wa_outage_after, Duration::from_secs(120));
        assert_eq!(c.utc_offset.local_minus_utc(), 7 * 3600);
        assert_eq!(with(&[("TGWA_DIGEST_HOUR", "")]).unwrap().digest_hour, None);
        assert_eq!(with(&[("TGWA_DIGEST_HOUR", "0")]).unwrap().digest_hour, Some(0));
        // Sending like a person is on unless turned off.
        assert!(c.typing);
        assert_eq!(c.typing_per_char, Duration::from_millis(50));
        assert_eq!(c.typing_max, Duration::from_secs(8));
        assert!(!with(&[("TGWA_TYPING", "0")]).unwrap().typing);
        assert_eq!(c.warmup_caps, vec![20, 40, 80, 160, 320]);
        assert!(with(&[("TGWA_WARMUP_CAPS", "")]).unwrap().warmup_caps.is_empty());
        assert_eq!(with(&[("TGWA_WARMUP_CAPS", "5, 10")]).unwrap().warmup_caps, vec![5, 10]);
    }

    #[test]
    fn time_zones_are_fixed_offsets() {
        for (v, secs) in [
            ("+07:00", 7 * 3600),
            ("WITA", 8 * 3600),
            ("UTC+9", 9 * 3600),
            ("-03:30", -(3 * 3600 + 1800)),
            ("UTC", 0),
        ] {
            let c = with(&[("TGWA_TIMEZONE", v)]).unwrap();
            assert_eq!(c.utc_offset.local_minus_utc(), secs, "{v}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("TGWA_MAX_ACCOUNTS", "abc"),
            ("TGWA_MAX_ACCOUNTS", "0"),
            ("TGWA_ADMIN_IDS", "12,x"),
            ("TGWA_ADMIN_IDS", "-100123"),
            ("TGWA_WA_BACKEND", "waha"),
            ("TGWA_SIM_PAIR_DELAY_MS", "-1"),
            ("TELEGRAM_API_URL", "ftp://x"),
            ("TGWA_HTTP_ADDR", "localhost"),
            ("TGWA_HEALTH_MAX_AGE_SECS", "0"),
            ("TGWA_DIGEST_HOUR", "24"),
            ("TGWA_DIGEST_HOUR", "8am"),
            ("TGWA_TIMEZONE", "Asia/Jakarta"),
            ("TGWA_TIMEZONE", "+25:00"),
            ("TGWA_ANNOUNCE_DELAY_MS", "-5"),
            ("TGWA_WA_OUTAGE_SECS", "0"),
            ("TGWA_WA_OUTAGE_SECS", "2m"),
            ("TGWA_TYPING", "maybe"),
            ("TGWA_TYPING_MS_PER_CHAR", "fast"),
            ("TGWA_WARMUP_CAPS", "20,x"),
            ("TGWA_WARMUP_CAPS", "0,10"),
        ] {
            let e = with(&[(k, v)]).err().unwrap_or_else(|| panic!("{k}={v} accepted"));
            assert_eq!(e.var, k);
        }
    }

    #[test]
    fn data_dir_that_is_a_file_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = with(&[("TGWA_DATA_DIR", f.path().to_str().unwrap())]).err().unwrap();
        assert_eq!(e.var, "TGWA_DATA_DIR");
    }

    #[test]
    fn debug_never_prints_the_token() {
        let c = with(&[("TELEGRAM_BOT_TOKEN", "123:SECRET")]).unwrap();
        assert!(!format!("{c:?}").contains("SECRET"));
    }

    /// The keys a `.env` file sets, by reading its text line by line (not through dotenvy), so
    /// a parser that stops early cannot hide a key from the test.
    fn keys_in(text: &str) -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
            .collect()
    }

    #[test]
    fn shipped_env_example_parses_and_every_key_is_applied() {
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"));
        let text = std::fs::read_to_string(path).unwrap();
        let keys = keys_in(&text);
        assert!(keys.len() >= 20, "{keys:?}");
        let mut vars = read_env_file(path).unwrap_or_else(|e| panic!("{e}"));
        for k in &keys {
            assert!(vars.contains_key(k), "{k} in .env.example was not read");
        }
        // The operator fills the token in; the environment wins over the file.
        vars.insert("TELEGRAM_BOT_TOKEN".into(), "123:abc".into());
        let base = Config::from_map(&vars).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(base.data_dir, PathBuf::from("DB USER TELEGRAM"));
        assert_eq!(base.wa_backend, WaBackendKind::WhatsApp);
        assert_eq!(base.log_filter.as_deref(), Some("info"));
        let base_dbg = format!("{base:?}");
        // Each key, set to some other valid value, must change the configuration: a key the
        // program ignores (or a typo in its name) fails here.
        for k in &keys {
            let changed = ["", "7", "3", "0", "1", "json", "sim", "debug", "other dir"]
                .iter()
                .filter(|alt| vars.get(k).map(String::as_str) != Some(**alt))
                .any(|alt| {
                    let mut m = vars.clone();
                    m.insert(k.clone(), alt.to_string());
                    Config::from_map(&m).is_ok_and(|c| format!("{c:?}") != base_dbg)
                });
            assert!(changed, "{k} in .env.example is not applied to Config");
        }
    }

    #[test]
    fn shipped_env_example_values_are_the_defaults() {
        // Copying the example changes nothing but what the operator fills in.
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"));
        let mut vars = read_env_file(path).unwrap();
        vars.remove("RUST_LOG");
        let from_file = Config::from_map(&vars).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{:?}", with(&[]).unwrap()));
    }

    #[test]
    fn env_file_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::write(
            &p,
            "# comment\nTGWA_MAX_ACCOUNTS=5\nTGWA_DATA_DIR=DB USER TELEGRAM\nTGWA_WA_BACKEND=sim\n",
        )
        .unwrap();
        let e = read_env_file(&p).err().unwrap();
        assert_eq!(e.var, ".env");
        assert!(e.reason.contains("line 3"), "{e}");
        assert!(e.reason.contains("double quotes"), "{e}");
        std::fs::write(
            &p,
            "\u{feff}TGWA_DATA_DIR=\"DB USER TELEGRAM\"\nTGWA_WA_BACKEND=sim\nTGWA_WA_BACKEND=whatsapp\n",
        )
        .unwrap();
        let m = read_env_file(&p).unwrap();
        assert_eq!(m["TGWA_DATA_DIR"], "DB USER TELEGRAM");
        assert_eq!(m["TGWA_WA_BACKEND"], "sim", "first occurrence wins, as in dotenvy");
        assert!(read_env_file(&dir.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn log_format_is_checked() {
        assert_eq!(with(&[]).unwrap().log_format, LogFormat::Pretty);
        assert_eq!(
            with(&[("TGWA_LOG_FORMAT", "json")]).unwrap().log_format,
            LogFormat::Json
        );
        assert_eq!(
            with(&[("TGWA_LOG_FORMAT", "xml")]).err().unwrap().var,
            "TGWA_LOG_FORMAT"
        );
    }
}
