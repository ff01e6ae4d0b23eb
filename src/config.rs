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
    /// Whether outgoing Telegram calls go through teloxide's `Throttle` (on in production).
    pub telegram_throttle: bool,
    /// Days a logged-out or banned account keeps its files before they move to trash.
    pub purge_after_days: u64,
    /// Bound on disconnecting every session at shutdown.
    pub shutdown_timeout: Duration,
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
}

impl std::fmt::Debug for Config {
    // Hand-written so the token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<set>"))
            .field("telegram_api_url", &self.telegram_api_url)
            .field("data_dir", &self.data_dir)
            .field("master_db", &self.master_db)
            .field("admin_ids", &self.admin_ids)
            .field("max_accounts", &self.max_accounts)
            .field("max_accounts_per_user", &self.max_accounts_per_user)
            .field("wa_backend", &self.wa_backend)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads `.env` (if present) into the environment, then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        let vars: HashMap<String, String> = std::env::vars().collect();
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
        Ok(Self {
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
            telegram_throttle: match get("TGWA_TELEGRAM_THROTTLE").unwrap_or("1") {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                other => return Err(err("TGWA_TELEGRAM_THROTTLE", format!("{other:?}: use 1 or 0"))),
            },
            purge_after_days: num("TGWA_PURGE_AFTER_DAYS", 7, 0)?,
            shutdown_timeout: Duration::from_secs(num("TGWA_SHUTDOWN_TIMEOUT_SECS", 10, 1)?),
            pool_cache_size: num("TGWA_POOL_CACHE_SIZE", 256, 2)? as usize,
            job_item_delay: Duration::from_millis(num("TGWA_JOB_ITEM_DELAY_MS", 3000, 0)?),
            job_jitter: Duration::from_millis(num("TGWA_JOB_JITTER_MS", 2000, 0)?),
            job_daily_cap: num("TGWA_JOB_DAILY_CAP", 1000, 1)? as u32,
            job_max_items: num("TGWA_JOB_MAX_ITEMS", 1000, 1)? as usize,
            upload_max_bytes: num("TGWA_UPLOAD_MAX_BYTES", 1_048_576, 1)?,
            max_create_groups: num("TGWA_MAX_CREATE_GROUPS", 50, 1)? as usize,
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
        Self::from_map(&vars).expect("test config is valid")
    }
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
}
