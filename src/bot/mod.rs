//! The Telegram front-end: the handler tree, the account guard, and the shared state the
//! handlers see. Every update is resolved to its caller (`from.id`, never the chat) and that
//! caller's own accounts; nothing here holds a "current account".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;
use teloxide::types::{BotCommand, ChatId, MessageId};
use teloxide::RequestError;
use tracing::warn;

use crate::account::{Account, AccountStatus};
use crate::ids::{AccountId, TelegramId};
use crate::jobs::{JobOptions, Jobs};
use crate::manager::{AccountManager, UserContext};

pub mod admin;
pub mod callback;
pub mod flows;
pub mod groups;
pub mod i18n;
pub mod jobs_ui;
pub mod notify;
pub mod polling;
pub mod send;

use callback::CallbackCodec;
use i18n::Lang;

/// Free text the bot is waiting for from a user (after a button asked for it).
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
    /// The message showing a running pairing, per account (edited by the countdown).
    pairing_msgs: Mutex<HashMap<AccountId, (ChatId, MessageId)>>,
    /// The photo message showing the current QR, per account.
    qr_msgs: Mutex<HashMap<AccountId, (ChatId, MessageId)>>,
    /// The bulk job engine.
    jobs: Jobs,
}

impl App {
    /// State over `manager`; the callback secret lives in `{data_dir}/.secret`.
    pub fn new(manager: AccountManager) -> std::io::Result<Self> {
        let codec = CallbackCodec::load_or_create(&manager.layout().root().join(".secret"))?;
        let jobs = Jobs::new(manager.clone(), JobOptions::from_config(manager.config()));
        Ok(Self {
            inner: Arc::new(AppInner {
                manager,
                codec,
                pending: Mutex::new(HashMap::new()),
                pairing_msgs: Mutex::new(HashMap::new()),
                qr_msgs: Mutex::new(HashMap::new()),
                jobs,
            }),
        })
    }

    /// The account manager.
    pub fn manager(&self) -> &AccountManager {
        &self.inner.manager
    }

    /// The bulk job engine.
    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    /// The callback codec.
    pub fn codec(&self) -> &CallbackCodec {
        &self.inner.codec
    }

    pub(crate) fn set_pending(&self, tid: TelegramId, p: Option<Pending>) {
        let mut m = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Some(p) => m.insert(tid, p),
            None => m.remove(&tid),
        };
    }

    pub(crate) fn take_pending(&self, tid: TelegramId) -> Option<Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tid)
    }

    pub(crate) fn pairing_msg(&self, id: AccountId) -> Option<(ChatId, MessageId)> {
        self.inner
            .pairing_msgs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .copied()
    }

    pub(crate) fn set_pairing_msg(&self, id: AccountId, v: Option<(ChatId, MessageId)>) -> Option<(ChatId, MessageId)> {
        let mut m = self.inner.pairing_msgs.lock().unwrap_or_else(|e| e.into_inner());
        match v {
            Some(v) => m.insert(id, v),
            None => m.remove(&id),
        }
    }

    pub(crate) fn qr_msg(&self, id: AccountId) -> Option<(ChatId, MessageId)> {
        self.inner
            .qr_msgs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .copied()
    }

    pub(crate) fn set_qr_msg(&self, id: AccountId, v: Option<(ChatId, MessageId)>) {
        let mut m = self.inner.qr_msgs.lock().unwrap_or_else(|e| e.into_inner());
        match v {
            Some(v) => m.insert(id, v),
            None => m.remove(&id),
        };
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

async fn resolve(app: &App, user: &teloxide::types::User) -> Option<Caller> {
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

async fn resolve_message(msg: Message, app: App) -> Option<Caller> {
    let user = msg.from.as_ref()?;
    resolve(&app, user).await
}

async fn resolve_callback(q: CallbackQuery, app: App) -> Option<Caller> {
    resolve(&app, &q.from).await
}

/// The handler tree. Generic over the requester: production passes `Throttle<Bot>`, tests and
/// benchmarks a plain `Bot`.
pub fn schema<R>() -> UpdateHandler<anyhow::Error>
where
    R: flows::Req,
{
    let messages = Update::filter_message()
        .branch(dptree::filter(|m: Message| !m.chat.is_private()).endpoint(flows::not_private::<R>))
        .branch(dptree::filter_map_async(resolve_message).endpoint(flows::on_message::<R>))
        .endpoint(flows::on_unresolved_message::<R>);
    let callbacks = Update::filter_callback_query()
        .branch(dptree::filter_map_async(resolve_callback).endpoint(flows::on_callback::<R>))
        .endpoint(flows::on_unresolved_callback::<R>);
    dptree::entry().branch(messages).branch(callbacks)
}

/// The command list shown by Telegram, per language.
pub fn commands(lang: Lang) -> Vec<BotCommand> {
    let list: &[(&str, &str, &str)] = &[
        ("start", "Mulai dan menu utama", "Start and main menu"),
        ("menu", "Menu utama", "Main menu"),
        (
            "pair",
            "Hubungkan nomor WhatsApp (kode pairing)",
            "Link a WhatsApp number (pairing code)",
        ),
        ("qr", "Hubungkan nomor WhatsApp (QR)", "Link a WhatsApp number (QR)"),
        ("status", "Status akun aktif", "Active account status"),
        ("accounts", "Akun Anda", "Your accounts"),
        ("groups", "Grup akun aktif", "Groups of the active account"),
        ("lang", "Ganti bahasa", "Change language"),
        ("cancel", "Batalkan input", "Cancel input"),
        ("help", "Bantuan", "Help"),
    ];
    list.iter()
        .map(|(c, id, en)| BotCommand::new(*c, if lang == Lang::En { *en } else { *id }))
        .collect()
}

/// Registers the command lists with Telegram (Indonesian as default, English for `en`).
pub async fn set_commands<R>(bot: &R)
where
    R: Requester<Err = RequestError>,
{
    if let Err(e) = bot.set_my_commands(commands(Lang::Id)).await {
        warn!(error = %e, "setMyCommands failed");
    }
    if let Err(e) = bot.set_my_commands(commands(Lang::En)).language_code("en").await {
        warn!(error = %e, "setMyCommands (en) failed");
    }
}
