//! The operator's proxy per account from Telegram (issue 21): `/admin proxy <number> <url>`
//! sets it, `/admin proxy <number> off` removes it, and the admin account page shows it,
//! masked. The same storage as `tgwa proxy` ([`crate::proxy`]); a connected account is
//! reconnected at once through the new setting, any other uses it from its next connection.

use super::kit::app::{App, Caller, Req};
use super::kit::i18n::{esc, t2};
use super::kit::send::send_html;
use crate::ids::PhoneNumber;
use crate::proxy::ProxyUrl;

/// `/admin proxy <number> <url|off>` (the caller is an operator: checked by `admin::command`).
pub(crate) async fn command<R: Req>(bot: &R, app: &App, c: &Caller, rest: &str) -> anyhow::Result<()> {
    let m = app.manager();
    let l = c.lang;
    let mut words = rest.split_whitespace();
    let (Some(number), Some(value), None) = (words.next(), words.next(), words.next()) else {
        let usage = t2(
            l,
            "Pakai: <code>/admin proxy 0812xxxx socks5://user:pass@host:port</code> (atau <code>http://…</code>), atau <code>/admin proxy 0812xxxx off</code>.",
            "Use: <code>/admin proxy 0812xxxx socks5://user:pass@host:port</code> (or <code>http://…</code>), or <code>/admin proxy 0812xxxx off</code>.",
        );
        send_html(bot, m, c.chat, &usage, None).await;
        return Ok(());
    };
    let proxy = if ["off", "mati", "none"].contains(&value.to_ascii_lowercase().as_str()) {
        None
    } else {
        match ProxyUrl::parse(value) {
            Ok(p) => Some(p),
            Err(e) => {
                let t = t2(l, "⚠️ Alamat proxy tidak valid: ", "⚠️ Invalid proxy address: ") + &esc(&e.to_string());
                send_html(bot, m, c.chat, &t, None).await;
                return Ok(());
            }
        }
    };
    let account = match PhoneNumber::parse(number, &m.config().default_country_code) {
        Ok(p) => m.by_phone(&p).await?,
        Err(_) => None,
    };
    let Some(a) = account else {
        send_html(
            bot,
            m,
            c.chat,
            &t2(l, "Akun tidak ditemukan.", "No such account."),
            None,
        )
        .await;
        return Ok(());
    };
    let (path, stored) = (a.bot_data_db_path.clone(), proxy.clone());
    m.pools()
        .with(path, crate::db::Schema::Account, move |conn| {
            crate::proxy::store(conn, stored.as_ref())
        })
        .await?;
    let shown = proxy
        .as_ref()
        .map_or_else(|| t2(l, "langsung", "direct"), |p| p.to_string());
    let detail = match &proxy {
        Some(p) => format!("proxy set: {p}"),
        None => "proxy cleared".to_string(),
    };
    m.audit(Some(c.tid), Some(a.id), "proxy_set", detail).await?;
    // --- proxy2 --- a running account connects again now, through the new setting.
    let restarted = match m.restart_for_proxy(a.id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(account_id = %a.id, error = %e, "could not reconnect the account after its proxy changed");
            false
        }
    };
    let when = match restarted {
        true => t2(
            l,
            "Akun ini disambungkan ulang sekarang lewat pengaturan baru.",
            "The account is reconnecting through it now.",
        ),
        false => t2(
            l,
            "Dipakai mulai koneksi berikutnya akun ini (akun ini tidak sedang tersambung).",
            "Used from the account's next connection (it is not connected now).",
        ),
    };
    let t = t2(
        l,
        &format!(
            "🧱 Proxy akun {}: <code>{}</code>. {when}",
            a.phone.masked(),
            esc(&shown)
        ),
        &format!(
            "🧱 Proxy of account {}: <code>{}</code>. {when}",
            a.phone.masked(),
            esc(&shown)
        ),
    );
    send_html(bot, m, c.chat, &t, None).await;
    Ok(())
}

/// The account page's proxy line: its own proxy, else the default, masked.
pub(crate) async fn page_line(app: &App, lang: super::kit::i18n::Lang, session_file: &std::path::Path) -> String {
    let p = session_file.to_path_buf();
    let own = crate::db::blocking(move || crate::proxy::for_session_file(&p))
        .await
        .ok()
        .flatten();
    let default = app.manager().config().wa_proxy.clone();
    let shown = match (own, default) {
        (Some(p), _) => p.to_string(),
        (None, Some(d)) => format!("{d} (default)"),
        (None, None) => t2(lang, "langsung", "direct"),
    };
    t2(lang, "\nProxy: <code>", "\nProxy: <code>") + &esc(&shown) + "</code>"
}
