//! The state every handler sees ([`App`]: the account manager, the jobs, the signing codec,
//! and the handles bound to an account's owner: prompts, pairing and QR messages, each ended
//! with the account), and who sent an update ([`Caller`], resolved per update).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use teloxide::prelude::*;
use teloxide::types::{ChatId, MessageId};
use tracing::warn;

use crate::account::{Account, AccountStatus};
use crate::ids::{AccountId, TelegramId};

use super::callback;
use super::callback::CallbackCodec;
use super::i18n::Lang;
use crate::jobs::{JobOptions, Jobs};
use crate::manager::{AccountManager, UserContext};
use teloxide::net::Download;
use teloxide::{DownloadError, RequestError};

/// Free text the bot is waiting for from a user (after a button asked for it). It lives
/// until the text arrives, the user sends any other command or presses any other button, or
/// `TGWA_PROMPT_TIMEOUT_SECS` pass, so a stray text can never act on an old question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The account the input is for.
    pub account: AccountId,
    /// What the text means.
    pub kind: callback::InputKind,
    /// The group it concerns, for group actions.
    pub group: Option<crate::wa::GroupId>,
    /// Text gathered by an earlier step (the broadcast message).
    pub data: Option<String>,
    /// What the prompt acts on, as the user knows it (the group's name, or the account's
    /// number): named when it asks, re-asks and expires.
    pub target: String,
    /// When it was asked; it expires a configured time later.
    pub created_at: Instant,
    /// The file gathered by an earlier step (the broadcast's photo, voice note, ...), kept
    /// in the account's folder.
    pub media: Option<crate::jobs::JobMedia>,
    // --- ways ---
    /// The message that asks (in the user's chat): a wrong answer edits it with the reason,
    /// and an answer takes its «Batal» away.
    pub prompt: Option<teloxide::types::MessageId>,
}

impl Pending {
    /// A prompt asked now.
    pub fn new(
        account: AccountId,
        kind: callback::InputKind,
        group: Option<crate::wa::GroupId>,
        target: String,
    ) -> Self {
        Self {
            account,
            kind,
            group,
            data: None,
            target,
            created_at: Instant::now(),
            media: None,
            prompt: None,
        }
    }

    /// True once `timeout` has passed since it was asked.
    pub fn is_expired(&self, timeout: Duration) -> bool {
        self.created_at.elapsed() >= timeout
    }

    /// The job an earlier step named in [`Pending::data`] (scheduling or saving a job's
    /// template), if it holds one.
    pub fn job(&self) -> Option<crate::jobs::JobId> {
        self.data
            .as_deref()
            .and_then(|d| d.parse::<i64>().ok())
            .map(crate::jobs::JobId::new)
    }
}

/// State shared by all handlers. A cheap `Clone` handle.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    /// The account registry and live sessions.
    manager: AccountManager,
    /// Signs and checks callback data.
    codec: CallbackCodec,
    /// Free-text input each user is expected to send next.
    pending: Mutex<HashMap<TelegramId, Pending>>,
    /// The message showing a running pairing, per owner and account (edited by the
    /// countdown). Cleared when the pairing ends and when the account ends.
    pairing_msgs: Mutex<HashMap<(TelegramId, AccountId), (ChatId, MessageId)>>,
    /// The photo message showing the current QR, per owner and account. Cleared likewise.
    qr_msgs: Mutex<HashMap<(TelegramId, AccountId), (ChatId, MessageId)>>,
    /// Users whose next text is the number `/pair` or `/qr` (sent alone) asked for; true
    /// for `/qr`. Ended like a prompt, by any other command or button.
    pair_prompts: Mutex<HashMap<TelegramId, bool>>,
    /// The bulk job engine.
    jobs: Jobs,
    /// The operators' announcements to every user.
    announcements: crate::announcement::Announcements,
    /// Incoming WhatsApp messages for their owners (`crate::inbox`).
    inbox: crate::inbox::Inbox,
}

impl App {
    /// State over `manager`; the callback secret lives in `{data_dir}/.secret`.
    pub fn new(manager: AccountManager) -> std::io::Result<Self> {
        let codec = CallbackCodec::load_or_create(&manager.layout().root().join(".secret"))?;
        let jobs = Jobs::new(manager.clone(), JobOptions::from_config(manager.config()));
        jobs.attach();
        let announcements = crate::announcement::Announcements::new(manager.clone(), manager.config().announce_delay);
        let inbox = crate::inbox::Inbox::attach(
            manager.clone(),
            crate::inbox::InboxOptions::from_config(manager.config()),
        );
        let app = Self {
            inner: Arc::new(AppInner {
                manager,
                codec,
                pending: Mutex::new(HashMap::new()),
                pairing_msgs: Mutex::new(HashMap::new()),
                qr_msgs: Mutex::new(HashMap::new()),
                pair_prompts: Mutex::new(HashMap::new()),
                jobs,
                announcements,
                inbox,
            }),
        };
        app.inner
            .manager
            .add_hook(Arc::new(HandlesHook(Arc::downgrade(&app.inner))));
        Ok(app)
    }

    /// Drops every handle bound to `account` of `owner`: its pending prompt, its pairing and
    /// QR messages. Called when the account ends (removed, logged out, re-paired, pairing
    /// abandoned), so nothing of it is ever used for whoever has the number next.
    pub(crate) fn end_account_handles(&self, owner: TelegramId, account: AccountId) {
        {
            let removed = {
                let mut p = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
                if p.get(&owner).is_some_and(|p| p.account == account) {
                    p.remove(&owner)
                } else {
                    None
                }
            };
            self.drop_prompt_file(owner, removed);
        }
        self.set_pairing_msg(owner, account, None);
        self.set_qr_msg(owner, account, None);
    }

    /// The account manager.
    pub fn manager(&self) -> &AccountManager {
        &self.inner.manager
    }

    /// The bulk job engine.
    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    /// The announcement engine.
    pub fn announcements(&self) -> &crate::announcement::Announcements {
        &self.inner.announcements
    }

    /// The inbox.
    pub fn inbox(&self) -> &crate::inbox::Inbox {
        &self.inner.inbox
    }

    /// The callback codec.
    pub fn codec(&self) -> &CallbackCodec {
        &self.inner.codec
    }

    /// Waits for `tid`'s text for `p` (replacing any earlier prompt of theirs).
    pub(crate) fn set_pending(&self, tid: TelegramId, p: Pending) {
        let file = p.media.as_ref().map(|m| m.file.clone());
        let old = self.pending_map().insert(tid, p);
        // A prompt put back (asked again) keeps its file; one replaced by another drops it.
        let old = old.filter(|o| o.media.as_ref().map(|m| &m.file) != file.as_ref());
        self.drop_prompt_file(tid, old);
    }

    /// Notes which message asks for the prompt waiting for `tid` (sent after it was set).
    pub(crate) fn set_pending_prompt(&self, tid: TelegramId, message: teloxide::types::MessageId) {
        if let Some(p) = self.pending_map().get_mut(&tid) {
            p.prompt = Some(message);
        }
    }

    /// The prompt waiting for `tid`'s text, removed (expired or not: the caller says which).
    /// An expired prompt comes back without its file, which is deleted: nothing may use it.
    pub(crate) fn take_pending(&self, tid: TelegramId) -> Option<Pending> {
        let mut p = self.pending_map().remove(&tid)?;
        if p.is_expired(self.prompt_timeout()) && p.media.is_some() {
            let file = Pending {
                media: p.media.take(),
                ..p.clone()
            };
            self.drop_prompt_file(tid, Some(file));
        }
        Some(p)
    }

    /// Ends `tid`'s prompt, if any; true when one was waiting.
    pub(crate) fn clear_pending(&self, tid: TelegramId) -> bool {
        let asked_number = self.take_pair_prompt(tid).is_some();
        let removed = self.pending_map().remove(&tid);
        let had = removed.is_some();
        self.drop_prompt_file(tid, removed);
        had || asked_number
    }

    // --- media2 ---
    /// Deletes the file of a prompt that ended without handing it to a job (cancelled,
    /// replaced, expired, its account ended), in the background.
    fn drop_prompt_file(&self, tid: TelegramId, p: Option<Pending>) {
        let Some((account, media)) = p.and_then(|p| Some((p.account, p.media?))) else {
            return;
        };
        let manager = self.inner.manager.clone();
        tokio::spawn(async move {
            if let Ok(acc) = manager.account_of(tid, account).await {
                crate::jobs::media_files::remove_later(crate::jobs::media_dir(&acc), media.file).await;
            }
        });
    }

    /// Takes the files of prompts that expired (their owners never came back): the prompt
    /// stays, so a late answer is still told it expired. Returns how many went.
    pub(crate) fn expire_prompt_files(&self) -> usize {
        let timeout = self.prompt_timeout();
        let expired: Vec<(TelegramId, Pending)> = self
            .pending_map()
            .iter_mut()
            .filter(|(_, p)| p.media.is_some() && p.is_expired(timeout))
            .map(|(tid, p)| {
                let file = Pending {
                    media: p.media.take(),
                    ..p.clone()
                };
                (*tid, file)
            })
            .collect();
        let n = expired.len();
        for (tid, p) in expired {
            self.drop_prompt_file(tid, Some(p));
        }
        n
    }

    /// Waits for `tid`'s number after `/pair` (or `/qr` when `qr`) was sent alone.
    pub(crate) fn set_pair_prompt(&self, tid: TelegramId, qr: bool) {
        self.pair_prompt_map().insert(tid, qr);
    }

    /// The number prompt waiting for `tid`, removed: `Some(qr)`.
    pub(crate) fn take_pair_prompt(&self, tid: TelegramId) -> Option<bool> {
        self.pair_prompt_map().remove(&tid)
    }

    fn pair_prompt_map(&self) -> std::sync::MutexGuard<'_, HashMap<TelegramId, bool>> {
        self.inner.pair_prompts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a prompt waits (`TGWA_PROMPT_TIMEOUT_SECS`).
    pub(crate) fn prompt_timeout(&self) -> Duration {
        self.inner.manager.config().prompt_timeout
    }

    fn pending_map(&self) -> std::sync::MutexGuard<'_, HashMap<TelegramId, Pending>> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pairing message of `owner`'s account `id`, if one is being followed.
    pub(crate) fn pairing_msg(&self, owner: TelegramId, id: AccountId) -> Option<(ChatId, MessageId)> {
        self.inner
            .pairing_msgs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(owner, id))
            .copied()
    }

    /// Sets or clears (`None`) the pairing message; returns the previous one.
    pub(crate) fn set_pairing_msg(
        &self,
        owner: TelegramId,
        id: AccountId,
        v: Option<(ChatId, MessageId)>,
    ) -> Option<(ChatId, MessageId)> {
        let mut m = self.inner.pairing_msgs.lock().unwrap_or_else(|e| e.into_inner());
        match v {
            Some(v) => m.insert((owner, id), v),
            None => m.remove(&(owner, id)),
        }
    }

    /// The QR message of `owner`'s account `id`, if one is shown.
    pub(crate) fn qr_msg(&self, owner: TelegramId, id: AccountId) -> Option<(ChatId, MessageId)> {
        self.inner
            .qr_msgs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(owner, id))
            .copied()
    }

    /// Sets or clears (`None`) the QR message.
    pub(crate) fn set_qr_msg(&self, owner: TelegramId, id: AccountId, v: Option<(ChatId, MessageId)>) {
        let mut m = self.inner.qr_msgs.lock().unwrap_or_else(|e| e.into_inner());
        match v {
            Some(v) => m.insert((owner, id), v),
            None => m.remove(&(owner, id)),
        };
    }
}

/// The front-end's [`crate::manager::AccountHook`]: ends the handles of an account that
/// ends. Holds the state weakly.
struct HandlesHook(std::sync::Weak<AppInner>);

#[async_trait::async_trait]
impl crate::manager::AccountHook for HandlesHook {
    async fn account_ending(&self, acc: &Account, why: crate::manager::Ending) {
        // An abandoned pairing's messages belong to its countdown (`pairing::follow_pairing`),
        // which tells the owner why it ended and then clears them itself.
        if why == crate::manager::Ending::PairingAbandoned {
            return;
        }
        if let Some(inner) = self.0.upgrade() {
            App { inner }.end_account_handles(acc.telegram_id, acc.id);
        }
    }
}

/// Who sent an update, resolved per update.
#[derive(Debug, Clone)]
pub struct Caller {
    /// From `from.id`.
    pub tid: TelegramId,
    /// The private chat with them.
    pub chat: ChatId,
    /// Their language.
    pub lang: Lang,
    /// Their accounts and active account.
    pub ctx: UserContext,
}

impl Caller {
    /// True when the caller has at least one registered account (a pairing does not count).
    pub fn has_account(&self) -> bool {
        self.ctx.accounts.iter().any(|a| a.status != AccountStatus::Pairing)
    }

    /// The active account, if any.
    pub fn active(&self) -> Option<&Account> {
        self.ctx.active.as_ref().filter(|a| a.status != AccountStatus::Pairing)
    }
}

pub(crate) async fn resolve(app: &App, user: &teloxide::types::User) -> Option<Caller> {
    let tid = i64::try_from(user.id.0).ok().and_then(|v| TelegramId::new(v).ok())?;
    match app.manager().context(tid, user.language_code.as_deref()).await {
        Ok(ctx) => Some(Caller {
            tid,
            chat: ChatId(tid.get()),
            lang: Lang::from_code(&ctx.user.language),
            ctx,
        }),
        Err(e) => {
            warn!(telegram_id = %tid, error = %e, "could not load the caller's context");
            None
        }
    }
}

pub(crate) async fn resolve_message(msg: Message, app: App) -> Option<Caller> {
    let user = msg.from.as_ref()?;
    resolve(&app, user).await
}

pub(crate) async fn resolve_callback(q: CallbackQuery, app: App) -> Option<Caller> {
    resolve(&app, &q.from).await
}

/// Anything a bot handler needs of the requester.
pub trait Req:
    Requester<Err = RequestError> + for<'d> Download<Err<'d> = DownloadError> + Clone + Send + Sync + 'static
{
}

impl<T> Req for T where
    T: Requester<Err = RequestError> + for<'d> Download<Err<'d> = DownloadError> + Clone + Send + Sync + 'static
{
}

/// Re-reads the caller's context after a change, so the next screen shows it.
pub(crate) async fn refreshed(app: &App, c: &Caller) -> anyhow::Result<Caller> {
    app.manager().invalidate(c.tid);
    let ctx = app.manager().context(c.tid, None).await?;
    Ok(Caller {
        lang: Lang::from_code(&ctx.user.language),
        ctx,
        ..c.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_expires_after_its_timeout() {
        let mut p = Pending::new(
            AccountId::new(1).unwrap(),
            callback::InputKind::Rename,
            None,
            "g".into(),
        );
        assert!(!p.is_expired(Duration::from_secs(600)));
        assert!(p.is_expired(Duration::ZERO));
        // (An Instant in the past may not exist right after boot.)
        if let Some(then) = Instant::now().checked_sub(Duration::from_secs(601)) {
            p.created_at = then;
            assert!(p.is_expired(Duration::from_secs(600)));
        }
    }
}
