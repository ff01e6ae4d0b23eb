//! `tgwa proxy`: the operator's proxy per WhatsApp account (issue 21). The proxy is kept in
//! the account's bot-data file (see [`crate::proxy`]) and used from the account's next
//! session start: a `tgwa run` already running keeps the proxy its sessions started with
//! until it restarts (this command cannot reach it; `/admin proxy` in Telegram reconnects
//! the account at once). Output and the audit log show it masked, never its password.

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::db::{self, Schema};
use crate::ids::PhoneNumber;
use crate::proxy::{self, ProxyUrl};

/// What `tgwa proxy` does.
#[derive(Debug, Subcommand)]
pub enum ProxyVerb {
    /// Connect this account through a proxy: `socks5://[user:pass@]host:port` or
    /// `http://[user:pass@]host:port`.
    Set {
        /// The account's number.
        phone: String,
        /// The proxy address.
        url: String,
    },
    /// Connect this account directly again (or through `TGWA_WA_PROXY`, if set).
    Clear {
        /// The account's number.
        phone: String,
    },
    /// List the accounts' proxies (masked) and the default.
    Show,
}

/// Runs one verb; the exit code (0 done, 2 bad arguments or an unknown account).
pub async fn run(config: &Config, verb: ProxyVerb) -> anyhow::Result<i32> {
    match verb {
        ProxyVerb::Set { phone, url } => {
            let p = match ProxyUrl::parse(&url) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("tgwa: {e}");
                    return Ok(2);
                }
            };
            set(config, &phone, Some(p)).await
        }
        ProxyVerb::Clear { phone } => set(config, &phone, None).await,
        ProxyVerb::Show => show(config).await.map(|()| 0),
    }
}

async fn set(config: &Config, phone: &str, p: Option<ProxyUrl>) -> anyhow::Result<i32> {
    let phone = match PhoneNumber::parse(phone, &config.default_country_code) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("tgwa: {e}");
            return Ok(2);
        }
    };
    let master = config.master_db.clone();
    let shown = p.as_ref().map_or_else(|| "direct".to_string(), ToString::to_string);
    let res = db::blocking(move || {
        let pool = db::open_pool(&master, Schema::Master, 1, None)?;
        let conn = pool.get()?;
        let Some(acc) = crate::account::by_phone(&conn, &phone).map_err(|e| db::DbError::Task(e.to_string()))? else {
            return Ok(None);
        };
        let bot = db::open_pool(&acc.bot_data_db_path, Schema::Account, 1, None)?;
        proxy::store(&*bot.get()?, p.as_ref())?;
        let detail = match &p {
            Some(p) => format!("proxy set: {p}"),
            None => "proxy cleared".to_string(),
        };
        crate::account::audit(&conn, None, Some(acc.id), "proxy_set", &detail)
            .map_err(|e| db::DbError::Task(e.to_string()))?;
        Ok(Some(acc.phone.masked()))
    })
    .await
    .context("storing the proxy")?;
    match res {
        Some(masked) => {
            println!(
                "{masked}: {shown} (used from the account's next start: a running tgwa picks it up when restarted; /admin proxy in Telegram reconnects at once)"
            );
            Ok(0)
        }
        None => {
            eprintln!("tgwa: no account with that number");
            Ok(2)
        }
    }
}

async fn show(config: &Config) -> anyhow::Result<()> {
    let accounts = crate::scan::read_master(&config.master_db).await?;
    let default = config
        .wa_proxy
        .as_ref()
        .map_or_else(|| "direct".to_string(), ToString::to_string);
    println!("default (TGWA_WA_PROXY): {default}");
    for acc in accounts {
        let session = acc.db_path.clone();
        let own = db::blocking(move || proxy::for_session_file(&session)).await;
        let shown = match own {
            Ok(Some(p)) => p.to_string(),
            Ok(None) => "-".to_string(),
            Err(e) => format!("unreadable ({e})"),
        };
        println!("{:>6} {:<16} {shown}", acc.id, acc.phone.masked());
    }
    Ok(())
}
