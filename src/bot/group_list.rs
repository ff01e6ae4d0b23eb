//! An account's groups: the list (paginated, naturally sorted, searchable), the cache of
//! their names that reports and previews read, and the export of every admin group's invite
//! link. A group's own page is [`super::group_page`]. Every entry point receives an account
//! the guard has already checked belongs to the caller.

use teloxide::types::{InlineKeyboardMarkup, MessageId};

use super::kit::app::{App, Caller, Req};
use super::kit::buttons::{back_to_menu, btn};
use super::kit::callback::{Cb, InputKind};
use super::kit::i18n::{account_label, esc, t2, tr, Key};
use super::kit::send::{edit_or_send, send_document, send_html};
use super::kit::session::session;
use super::kit::text::wa_error_text;
use crate::account::Account;
use crate::ids::AccountId;
use crate::wa::{GroupId, GroupSummary};

/// Groups per page of the list.
const PAGE: usize = 8;

/// `/groups` and the Groups button: page 0 of the list.
pub(crate) async fn groups_entry<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    account: AccountId,
    edit: Option<MessageId>,
) -> anyhow::Result<()> {
    let acc = app.manager().account_of(c.tid, account).await?;
    groups_page(bot, app, c, &acc, 0, None, edit).await
}

pub(crate) async fn groups_page<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    page: u32,
    search: Option<&str>,
    edit: Option<MessageId>,
) -> anyhow::Result<()> {
    let l = c.lang;
    let Some(s) = session(bot, app, c, acc).await else {
        return Ok(());
    };
    let mut groups = match s.groups().await {
        Ok(g) => g,
        Err(e) => {
            send_html(
                bot,
                app.manager(),
                c.chat,
                &wa_error_text(l, &e),
                Some(back_to_menu(app, c)),
            )
            .await;
            return Ok(());
        }
    };
    cache_groups(app, acc, &groups).await;
    if let Some(q) = search {
        let q = q.to_lowercase();
        groups.retain(|g| g.name.to_lowercase().contains(&q));
    }
    groups.sort_by(|a, b| crate::text::natural_cmp(&a.name, &b.name));
    let pages = groups.len().div_ceil(PAGE).max(1) as u32;
    let page = page.min(pages - 1);
    let start = page as usize * PAGE;
    let mut text = match search {
        Some(q) => t2(
            l,
            "👥 <b>Grup</b> cocok dengan «{q}»: {n}",
            "👥 <b>Groups</b> matching «{q}»: {n}",
        )
        .replace("{q}", &esc(q)),
        None => t2(l, "👥 <b>Grup</b> {phone}: {n}", "👥 <b>Groups</b> of {phone}: {n}")
            .replace("{phone}", &account_label(acc)),
    }
    .replace("{n}", &groups.len().to_string());
    text.push_str(&t2(l, "\n👑 = Anda admin", "\n👑 = you are admin"));
    let mut rows = Vec::new();
    for g in groups.iter().skip(start).take(PAGE) {
        let label = format!("{}{} ({})", if g.is_admin { "👑 " } else { "" }, g.name, g.member_count);
        rows.push(vec![btn(app, c, &label, Cb::Group(acc.id, g.id.clone()))]);
    }
    if pages > 1 && search.is_none() {
        let mut nav = Vec::new();
        if page > 0 {
            nav.push(btn(app, c, "◀️", Cb::Groups(acc.id, page - 1)));
        }
        nav.push(btn(app, c, &format!("{}/{}", page + 1, pages), Cb::Noop));
        if page + 1 < pages {
            nav.push(btn(app, c, "▶️", Cb::Groups(acc.id, page + 1)));
        }
        rows.push(nav);
    }
    rows.push(vec![
        btn(
            app,
            c,
            &t2(l, "🔎 Cari", "🔎 Search"),
            Cb::Input(acc.id, InputKind::SearchGroups),
        ),
        btn(
            app,
            c,
            &t2(l, "📤 Ekspor tautan", "📤 Export links"),
            Cb::ExportLinks(acc.id),
        ),
    ]);
    rows.push(vec![
        btn(
            app,
            c,
            &t2(l, "➕ Buat grup", "➕ Create groups"),
            Cb::Input(acc.id, InputKind::CreateGroups),
        ),
        btn(
            app,
            c,
            &t2(l, "🔗 Gabung grup", "🔗 Join groups"),
            Cb::Input(acc.id, InputKind::JoinGroups),
        ),
    ]);
    rows.push(vec![
        btn(
            app,
            c,
            &t2(l, "🚪 Keluar dari grup", "🚪 Leave groups"),
            Cb::Input(acc.id, InputKind::LeaveGroups),
        ),
        btn(app, c, tr(l, Key::BtnMenu), Cb::Menu),
    ]);
    rows.insert(
        rows.len() - 1,
        vec![btn(
            app,
            c,
            &t2(l, "📤 Ekspor anggota grup admin", "📤 Export admin groups' members"),
            Cb::MembersExportAll(acc.id),
        )],
    );
    edit_or_send(
        bot,
        app.manager(),
        c.chat,
        edit,
        &text,
        Some(InlineKeyboardMarkup::new(rows)),
    )
    .await;
    Ok(())
}

/// Keeps the account's `groups_cache` current (for exports and offline views).
pub(crate) async fn cache_groups(app: &App, acc: &Account, groups: &[GroupSummary]) {
    let rows: Vec<(String, String, i64, bool)> = groups
        .iter()
        .map(|g| {
            (
                g.id.as_str().to_string(),
                g.name.clone(),
                g.member_count as i64,
                g.is_admin,
            )
        })
        .collect();
    let res = app
        .manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM groups_cache", [])?;
            {
                let mut st = tx.prepare(
                    "INSERT INTO groups_cache (jid, name, member_count, is_admin, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let t = crate::db::now();
                for (jid, name, n, admin) in &rows {
                    st.execute(rusqlite::params![jid, name, n, *admin as i64, t])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await;
    if let Err(e) = res {
        tracing::warn!(account_id = %acc.id, error = %e, "could not cache groups");
    }
}

/// Group names by JID from the account's cached list, for texts that would otherwise show a
/// `…@g.us` ID.
pub(crate) async fn cached_group_names(app: &App, acc: &Account) -> std::collections::HashMap<String, String> {
    app.manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, |conn| {
            let mut st = conn.prepare("SELECT jid, name FROM groups_cache")?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<std::collections::HashMap<_, _>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap_or_default()
}

/// Keeps the cached list's name of a group the account just renamed, so the next screen
/// (a leave confirmation, a preview) names it as the user now knows it.
pub(crate) async fn rename_cached(app: &App, acc: &Account, g: &GroupId, name: &str) {
    let (jid, name) = (g.as_str().to_string(), name.to_string());
    let res = app
        .manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, move |conn| {
            conn.execute("UPDATE groups_cache SET name = ?2 WHERE jid = ?1", [jid, name])?;
            Ok(())
        })
        .await;
    if let Err(e) = res {
        tracing::warn!(account_id = %acc.id, error = %e, "could not update the cached group name");
    }
}

/// The page of the (unfiltered) group list that shows `gid`, from the cached list in its
/// order: Back from a group returns to where the user found it.
pub(crate) async fn list_page_of(app: &App, acc: &Account, gid: &GroupId) -> u32 {
    let names = app
        .manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, |conn| {
            let mut st = conn.prepare("SELECT jid, name FROM groups_cache")?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await;
    let Ok(mut names) = names else { return 0 };
    names.sort_by(|a, b| crate::text::natural_cmp(&a.1, &b.1));
    names
        .iter()
        .position(|(jid, _)| jid == gid.as_str())
        .map_or(0, |i| (i / PAGE) as u32)
}

/// Exports the invite links of every group where the account is admin, as .txt and .csv.
pub(crate) async fn export_links<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    mid: Option<MessageId>,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    let Some(s) = session(bot, app, c, acc).await else {
        return Ok(());
    };
    let groups = match s.groups().await {
        Ok(g) => g.into_iter().filter(|g| g.is_admin).collect::<Vec<_>>(),
        Err(e) => {
            send_html(bot, m, c.chat, &wa_error_text(l, &e), Some(back_to_menu(app, c))).await;
            return Ok(());
        }
    };
    if groups.is_empty() {
        edit_or_send(
            bot,
            m,
            c.chat,
            mid,
            &t2(
                l,
                "Tidak ada grup tempat akun ini admin.",
                "There are no groups where this account is admin.",
            ),
            Some(back_to_menu(app, c)),
        )
        .await;
        return Ok(());
    }
    let total = groups.len();
    let progress = edit_or_send(bot, m, c.chat, mid, &format!("📤 0/{total}"), None).await;
    let mut txt = String::new();
    let mut rows = vec![[
        t2(l, "nama", "name"),
        t2(l, "tautan", "link"),
        t2(l, "anggota", "members"),
    ]];
    let mut failed = Vec::new();
    let mut last_edit = std::time::Instant::now();
    for (i, g) in groups.iter().enumerate() {
        match s.invite_link(&g.id, false).await {
            Ok(link) => {
                txt.push_str(&link);
                txt.push('\n');
                rows.push([g.name.clone(), link, g.member_count.to_string()]);
            }
            Err(e) => failed.push(format!("{}: {}", g.name, wa_error_text(l, &e))),
        }
        if last_edit.elapsed() > std::time::Duration::from_secs(2) {
            last_edit = std::time::Instant::now();
            edit_or_send(bot, m, c.chat, progress, &format!("📤 {}/{total}", i + 1), None).await;
        }
    }
    let mut summary = t2(
        l,
        "📤 {ok} tautan diekspor dari {total} grup admin.",
        "📤 Exported {ok} links from {total} admin groups.",
    )
    .replace("{ok}", &(total - failed.len()).to_string())
    .replace("{total}", &total.to_string());
    for f in failed.iter().take(20) {
        summary.push_str(&format!("\n❌ {}", esc(f)));
    }
    edit_or_send(bot, m, c.chat, progress, &summary, Some(back_to_menu(app, c))).await;
    send_document(bot, m, c.chat, "invite_links.txt", txt.into_bytes(), "invite_links.txt").await;
    let csv = crate::text::csv_document(rows);
    send_document(bot, m, c.chat, "invite_links.csv", csv.into_bytes(), "invite_links.csv").await;
    Ok(())
}
