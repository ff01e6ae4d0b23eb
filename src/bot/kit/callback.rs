//! Callback data: a compact typed encoding, signed for the user it was sent to.
//!
//! Format: `<payload>~<tag>`, where the payload is `verb[:arg[:arg]]` and the tag is the
//! first 6 bytes of HMAC-SHA256(secret, presser's Telegram ID ‖ payload), base64url. A button
//! only decodes when pressed by the user it was made for, so data copied from another user's
//! chat, or made up, is refused before any account is looked at. Handlers still check
//! ownership of every account ID in the payload.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::i18n::Lang;
use crate::ids::{AccountId, PhoneNumber, TelegramId};
use crate::wa::{GroupId, PersonId};

/// Telegram's limit on callback data.
pub const MAX_LEN: usize = 64;

/// Every button the bot emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cb {
    /// The main menu.
    Menu,
    /// Help text.
    Help,
    /// The language picker.
    LangMenu,
    /// Set the language.
    SetLang(Lang),
    /// The account list.
    Accounts,
    /// One account's page.
    Account(AccountId),
    /// Make this the active account.
    Switch(AccountId),
    /// Ask to log out.
    Logout(AccountId),
    /// Confirmed log out.
    LogoutYes(AccountId),
    /// Ask to remove.
    Remove(AccountId),
    /// Confirmed removal.
    RemoveYes(AccountId),
    /// Cancel a running pairing.
    PairCancel(AccountId),
    /// Start a new pairing of this number (new code, retry, pair again).
    PairNew(PhoneNumber),
    /// Log an account in again whose session stopped (opened on another device).
    Reconnect(AccountId),
    /// The active account's groups, one page.
    Groups(AccountId, u32),
    /// One group's page.
    Group(AccountId, GroupId),
    /// Show the group's invite link.
    GroupLink(AccountId, GroupId),
    /// Revoke the group's invite link (asks first).
    GroupRevoke(AccountId, GroupId),
    /// Confirmed revoke.
    GroupRevokeYes(AccountId, GroupId),
    /// List the group's members.
    GroupMembers(AccountId, GroupId),
    /// Ask to leave the group.
    GroupLeave(AccountId, GroupId),
    /// Confirmed leave.
    GroupLeaveYes(AccountId, GroupId),
    /// Toggle announce-only.
    GroupAnnounce(AccountId, GroupId, bool),
    /// Toggle locked info.
    GroupLock(AccountId, GroupId, bool),
    /// Ask for text input for a group action (rename, description, members, send).
    GroupInput(AccountId, GroupId, InputKind),
    /// Export invite links of groups where the account is admin.
    ExportLinks(AccountId),
    /// Ask for text input for an account-wide action.
    Input(AccountId, InputKind),
    /// Start a job that waits in draft.
    JobStart(AccountId, i64),
    /// Pause a running job.
    JobPause(AccountId, i64),
    /// Resume a paused job.
    JobResume(AccountId, i64),
    /// Cancel a job.
    JobCancel(AccountId, i64),
    /// The messages menu.
    Messages(AccountId),
    /// Send the waiting broadcast text to these groups.
    BroadcastTo(AccountId, BroadcastTarget),
    /// Cancel the prompt waiting for the user's text (the button under the prompt).
    InputCancel,
    /// No-op (page counters).
    Noop,
    /// An operator screen or action (`bot::admin`); refused unless the presser is in
    /// `TGWA_ADMIN_IDS`, checked on every press.
    Admin(AdminCb),
    /// The account's inbox: its switches and "Pesan masuk", one page of chats.
    Inbox(AccountId, u32),
    /// Switch the inbox on or off.
    InboxToggle(AccountId, bool),
    /// Switch forwarding of group messages that mention the account on or off.
    InboxMentions(AccountId, bool),
    // --- sched ---
    /// Ask when a draft (or scheduled) job should start.
    JobSchedule(AccountId, i64),
    /// The account's scheduled jobs.
    Scheduled(AccountId),
    /// Send the broadcast's first message to the account's own number.
    JobTest(AccountId, i64),
    /// Ask a name to save the broadcast's text under.
    TemplateSave(AccountId, i64),
    /// The account's templates.
    Templates(AccountId),
    /// Broadcast a template's text.
    TemplateUse(AccountId, i64),
    /// Delete a template.
    TemplateDelete(AccountId, i64),
    // --- members ---
    /// Send the group's members as .csv and .vcf.
    MembersExport(AccountId, GroupId),
    /// Send the members of every group where the account is admin as one .csv.
    MembersExportAll(AccountId),
    /// The group's pending join requests, one page.
    JoinRequests(AccountId, GroupId, u32),
    /// Approve (`true`) or reject one requester.
    JoinAnswer(AccountId, GroupId, PersonId, bool),
    /// Ask to approve (`true`) or reject every pending request.
    JoinAnswerAll(AccountId, GroupId, bool),
    /// Confirmed: approve or reject every pending request.
    JoinAnswerAllYes(AccountId, GroupId, bool),
    /// Set "approve new members" on or off.
    JoinApproval(AccountId, GroupId, bool),
    /// Clear the account's nickname (setting one is `Input(_, InputKind::Nickname)`).
    NicknameClear(AccountId),
    // --- ways ---
    /// Ask for a number to link (`true`: with a QR), as `/pair` alone does: the way on from
    /// «AKSES DITOLAK» and from a refused pairing.
    PairStart(bool),
    /// The account's jobs screen, one page.
    Jobs(AccountId, u32),
    /// One job of the jobs screen: its progress, buttons and report.
    JobView(AccountId, i64),
    /// Send a job's report again.
    JobReport(AccountId, i64),
    /// Confirmed cancel of a job that already started.
    JobCancelYes(AccountId, i64),
    /// A new job of the items a cancelled job never ran.
    JobRerun(AccountId, i64),
}

/// The operator's buttons. They name accounts of any owner, so they never pass the owner
/// check of [`Cb::account`]; `bot::admin` checks the presser is an operator instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCb {
    /// The overview.
    Overview,
    /// Every account, one page.
    Accounts(u32),
    /// One account with its recent audit history.
    Account(AccountId),
    /// Ask to disconnect the account's session.
    Disconnect(AccountId),
    /// Confirmed disconnect of the account's pairing generation (a confirmation made before
    /// a re-pair must not act on the new one).
    DisconnectYes(AccountId, i64),
    /// Ask to force-logout the account.
    Logout(AccountId),
    /// Confirmed force-logout of the account's pairing generation.
    LogoutYes(AccountId, i64),
    /// Ask to pause every running job of the account.
    PauseJobs(AccountId),
    /// Confirmed pause, for the account's pairing generation.
    PauseJobsYes(AccountId, i64),
    /// Ask to suspend a Telegram user (shown from one of their accounts).
    Suspend(TelegramId, AccountId),
    /// Confirmed suspend.
    SuspendYes(TelegramId, AccountId),
    /// Ask to lift a suspension.
    Unsuspend(TelegramId, AccountId),
    /// Confirmed lift.
    UnsuspendYes(TelegramId, AccountId),
    /// Announcements: how to write one, and the recent ones.
    Announcements,
    /// One announcement's progress.
    AnnounceView(i64),
    /// Confirmed: send the draft announcement to every user.
    AnnounceYes(i64),
    /// Pause a running announcement.
    AnnouncePause(i64),
    /// Resume a paused announcement.
    AnnounceResume(i64),
    /// Cancel (a draft, or one that has not finished).
    AnnounceCancel(i64),
}

/// Where a broadcast goes when the user picks a button rather than pasting numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BroadcastTarget {
    /// Every group the account is in.
    AllGroups,
    /// Groups where the account is admin.
    AdminGroups,
}

/// Which free-text input a button asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    Rename,
    Describe,
    AddMembers,
    RemoveMembers,
    PromoteMembers,
    DemoteMembers,
    SendGroup,
    SendNumber,
    CreateGroups,
    JoinGroups,
    LeaveGroups,
    Broadcast,
    CheckNumbers,
    SearchGroups,
    // --- sched ---
    /// When a job starts (its ID in the prompt's data).
    ScheduleAt,
    /// A template's name (the job whose text it keeps in the prompt's data).
    TemplateName,
    // --- members ---
    Nickname,
}

impl InputKind {
    /// Every kind, each with its callback code.
    const ALL: [(InputKind, &'static str); 17] = [
        (InputKind::Rename, "rn"),
        (InputKind::Describe, "ds"),
        (InputKind::AddMembers, "ma"),
        (InputKind::RemoveMembers, "mr"),
        (InputKind::PromoteMembers, "mp"),
        (InputKind::DemoteMembers, "md"),
        (InputKind::SendGroup, "sg"),
        (InputKind::SendNumber, "sn"),
        (InputKind::CreateGroups, "cg"),
        (InputKind::JoinGroups, "jg"),
        (InputKind::LeaveGroups, "lg"),
        (InputKind::Broadcast, "bc"),
        (InputKind::CheckNumbers, "ck"),
        (InputKind::SearchGroups, "sr"),
        // --- sched ---
        (InputKind::ScheduleAt, "sa"),
        (InputKind::TemplateName, "tn"),
        // --- members ---
        (InputKind::Nickname, "nk"),
    ];

    /// Every kind of input, in declaration order.
    pub fn every() -> impl Iterator<Item = InputKind> {
        Self::ALL.into_iter().map(|(k, _)| k)
    }

    fn code(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, c)| *c)
            .unwrap_or("??")
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, c)| *c == s).map(|(k, _)| *k)
    }
}

impl Cb {
    fn payload(&self) -> String {
        use Cb::*;
        let g = |a: &AccountId, gid: &GroupId| format!("{a}:{}", gid.user());
        match self {
            Menu => "m".into(),
            Help => "h".into(),
            LangMenu => "l".into(),
            SetLang(l) => format!("l:{}", l.code()),
            Accounts => "a".into(),
            Account(a) => format!("ad:{a}"),
            Switch(a) => format!("as:{a}"),
            Logout(a) => format!("lo:{a}"),
            LogoutYes(a) => format!("lo!:{a}"),
            Remove(a) => format!("rm:{a}"),
            RemoveYes(a) => format!("rm!:{a}"),
            PairCancel(a) => format!("pc:{a}"),
            PairNew(p) => format!("pn:{}", p.digits()),
            Reconnect(a) => format!("rc:{a}"),
            Groups(a, page) => format!("gl:{a}:{page}"),
            Group(a, gid) => format!("g:{}", g(a, gid)),
            GroupLink(a, gid) => format!("gk:{}", g(a, gid)),
            GroupRevoke(a, gid) => format!("gr:{}", g(a, gid)),
            GroupRevokeYes(a, gid) => format!("gr!:{}", g(a, gid)),
            GroupMembers(a, gid) => format!("gm:{}", g(a, gid)),
            GroupLeave(a, gid) => format!("gx:{}", g(a, gid)),
            GroupLeaveYes(a, gid) => format!("gx!:{}", g(a, gid)),
            GroupAnnounce(a, gid, on) => format!("ga:{}:{}", g(a, gid), *on as u8),
            GroupLock(a, gid, on) => format!("gL:{}:{}", g(a, gid), *on as u8),
            GroupInput(a, gid, k) => format!("gi:{}:{}", g(a, gid), k.code()),
            ExportLinks(a) => format!("ex:{a}"),
            Input(a, k) => format!("in:{a}:{}", k.code()),
            JobStart(a, j) => format!("js:{a}:{j}"),
            JobPause(a, j) => format!("jp:{a}:{j}"),
            JobResume(a, j) => format!("jr:{a}:{j}"),
            JobCancel(a, j) => format!("jc:{a}:{j}"),
            Messages(a) => format!("ms:{a}"),
            BroadcastTo(a, t) => format!("bt:{a}:{}", matches!(t, BroadcastTarget::AdminGroups) as u8),
            InputCancel => "ic".into(),
            Noop => "_".into(),
            Inbox(a, page) => format!("ib:{a}:{page}"),
            InboxToggle(a, on) => format!("it:{a}:{}", *on as u8),
            InboxMentions(a, on) => format!("iM:{a}:{}", *on as u8),
            // --- sched ---
            JobSchedule(a, j) => format!("jS:{a}:{j}"),
            Scheduled(a) => format!("sc:{a}"),
            JobTest(a, j) => format!("jt:{a}:{j}"),
            TemplateSave(a, j) => format!("ts:{a}:{j}"),
            Templates(a) => format!("tl:{a}"),
            TemplateUse(a, t) => format!("tu:{a}:{t}"),
            TemplateDelete(a, t) => format!("td:{a}:{t}"),
            // --- members ---
            MembersExport(a, gid) => format!("Mx:{}", g(a, gid)),
            MembersExportAll(a) => format!("MX:{a}"),
            JoinRequests(a, gid, page) => format!("Mq:{}:{page}", g(a, gid)),
            JoinAnswer(a, gid, who, yes) => format!("Mj:{}:{}:{}", g(a, gid), who.code(), *yes as u8),
            JoinAnswerAll(a, gid, yes) => format!("Ma:{}:{}", g(a, gid), *yes as u8),
            JoinAnswerAllYes(a, gid, yes) => format!("Ma!:{}:{}", g(a, gid), *yes as u8),
            JoinApproval(a, gid, on) => format!("Mm:{}:{}", g(a, gid), *on as u8),
            NicknameClear(a) => format!("Nc:{a}"),
            PairStart(qr) => format!("ps:{}", *qr as u8),
            Jobs(a, page) => format!("jl:{a}:{page}"),
            JobView(a, j) => format!("jv:{a}:{j}"),
            JobReport(a, j) => format!("jR:{a}:{j}"),
            JobCancelYes(a, j) => format!("jc!:{a}:{j}"),
            JobRerun(a, j) => format!("jx:{a}:{j}"),
            Admin(a) => match a {
                AdminCb::Overview => "A".into(),
                AdminCb::Accounts(page) => format!("Al:{page}"),
                AdminCb::Account(id) => format!("Ad:{id}"),
                AdminCb::Disconnect(id) => format!("Ax:{id}"),
                AdminCb::DisconnectYes(id, g) => format!("Ax!:{id}:{g}"),
                AdminCb::Logout(id) => format!("Ao:{id}"),
                AdminCb::LogoutYes(id, g) => format!("Ao!:{id}:{g}"),
                AdminCb::PauseJobs(id) => format!("Ap:{id}"),
                AdminCb::PauseJobsYes(id, g) => format!("Ap!:{id}:{g}"),
                AdminCb::Suspend(t, id) => format!("As:{t}:{id}"),
                AdminCb::SuspendYes(t, id) => format!("As!:{t}:{id}"),
                AdminCb::Unsuspend(t, id) => format!("Au:{t}:{id}"),
                AdminCb::UnsuspendYes(t, id) => format!("Au!:{t}:{id}"),
                AdminCb::Announcements => "An".into(),
                AdminCb::AnnounceView(n) => format!("Anv:{n}"),
                AdminCb::AnnounceYes(n) => format!("An!:{n}"),
                AdminCb::AnnouncePause(n) => format!("Anp:{n}"),
                AdminCb::AnnounceResume(n) => format!("Anr:{n}"),
                AdminCb::AnnounceCancel(n) => format!("Anc:{n}"),
            },
        }
    }

    fn parse_payload(s: &str) -> Option<Self> {
        use Cb::*;
        let parts: Vec<&str> = s.split(':').collect();
        let acc = |i: usize| parts.get(i).and_then(|v| v.parse::<AccountId>().ok());
        let gid = |i: usize| parts.get(i).and_then(|v| GroupId::parse(&format!("{v}@g.us")));
        let flag = |i: usize| match parts.get(i) {
            Some(&"1") => Some(true),
            Some(&"0") => Some(false),
            _ => None,
        };
        let job = |i: usize| parts.get(i).and_then(|v| v.parse::<i64>().ok()).filter(|j| *j > 0);
        let generation = |i: usize| parts.get(i).and_then(|v| v.parse::<i64>().ok()).filter(|g| *g >= 0);
        let n = parts.len();
        let cb = match (parts[0], n) {
            ("m", 1) => Menu,
            ("h", 1) => Help,
            ("l", 1) => LangMenu,
            ("l", 2) => SetLang(match parts[1] {
                "id" => Lang::Id,
                "en" => Lang::En,
                _ => return None,
            }),
            ("a", 1) => Accounts,
            ("ad", 2) => Account(acc(1)?),
            ("as", 2) => Switch(acc(1)?),
            ("lo", 2) => Logout(acc(1)?),
            ("lo!", 2) => LogoutYes(acc(1)?),
            ("rm", 2) => Remove(acc(1)?),
            ("rm!", 2) => RemoveYes(acc(1)?),
            ("pc", 2) => PairCancel(acc(1)?),
            ("pn", 2) => PairNew(PhoneNumber::from_digits(parts[1]).ok()?),
            ("rc", 2) => Reconnect(acc(1)?),
            ("gl", 3) => Groups(acc(1)?, parts[2].parse().ok().filter(|p: &u32| *p < 100_000)?),
            ("g", 3) => Group(acc(1)?, gid(2)?),
            ("gk", 3) => GroupLink(acc(1)?, gid(2)?),
            ("gr", 3) => GroupRevoke(acc(1)?, gid(2)?),
            ("gr!", 3) => GroupRevokeYes(acc(1)?, gid(2)?),
            ("gm", 3) => GroupMembers(acc(1)?, gid(2)?),
            ("gx", 3) => GroupLeave(acc(1)?, gid(2)?),
            ("gx!", 3) => GroupLeaveYes(acc(1)?, gid(2)?),
            ("ga", 4) => GroupAnnounce(acc(1)?, gid(2)?, flag(3)?),
            ("gL", 4) => GroupLock(acc(1)?, gid(2)?, flag(3)?),
            ("gi", 4) => GroupInput(acc(1)?, gid(2)?, InputKind::parse(parts[3])?),
            ("ex", 2) => ExportLinks(acc(1)?),
            ("in", 3) => Input(acc(1)?, InputKind::parse(parts[2])?),
            ("js", 3) => JobStart(acc(1)?, job(2)?),
            ("jp", 3) => JobPause(acc(1)?, job(2)?),
            ("jr", 3) => JobResume(acc(1)?, job(2)?),
            ("jc", 3) => JobCancel(acc(1)?, job(2)?),
            ("ms", 2) => Messages(acc(1)?),
            ("bt", 3) => BroadcastTo(
                acc(1)?,
                if flag(2)? {
                    BroadcastTarget::AdminGroups
                } else {
                    BroadcastTarget::AllGroups
                },
            ),
            ("ib", 3) => Inbox(acc(1)?, parts[2].parse().ok().filter(|p: &u32| *p < 100_000)?),
            ("it", 3) => InboxToggle(acc(1)?, flag(2)?),
            ("iM", 3) => InboxMentions(acc(1)?, flag(2)?),
            // --- sched ---
            ("jS", 3) => JobSchedule(acc(1)?, job(2)?),
            ("sc", 2) => Scheduled(acc(1)?),
            ("jt", 3) => JobTest(acc(1)?, job(2)?),
            ("ts", 3) => TemplateSave(acc(1)?, job(2)?),
            ("tl", 2) => Templates(acc(1)?),
            ("tu", 3) => TemplateUse(acc(1)?, job(2)?),
            ("td", 3) => TemplateDelete(acc(1)?, job(2)?),
            // --- members ---
            ("Mx", 3) => MembersExport(acc(1)?, gid(2)?),
            ("MX", 2) => MembersExportAll(acc(1)?),
            ("Mq", 4) => JoinRequests(acc(1)?, gid(2)?, parts[3].parse().ok().filter(|p: &u32| *p < 100_000)?),
            ("Mj", 5) => JoinAnswer(acc(1)?, gid(2)?, PersonId::from_code(parts[3])?, flag(4)?),
            ("Ma", 4) => JoinAnswerAll(acc(1)?, gid(2)?, flag(3)?),
            ("Ma!", 4) => JoinAnswerAllYes(acc(1)?, gid(2)?, flag(3)?),
            ("Mm", 4) => JoinApproval(acc(1)?, gid(2)?, flag(3)?),
            ("Nc", 2) => NicknameClear(acc(1)?),
            ("ps", 2) => PairStart(flag(1)?),
            ("jl", 3) => Jobs(acc(1)?, parts[2].parse().ok().filter(|p: &u32| *p < 100_000)?),
            ("jv", 3) => JobView(acc(1)?, job(2)?),
            ("jR", 3) => JobReport(acc(1)?, job(2)?),
            ("jc!", 3) => JobCancelYes(acc(1)?, job(2)?),
            ("jx", 3) => JobRerun(acc(1)?, job(2)?),
            ("ic", 1) => InputCancel,
            ("_", 1) => Noop,
            ("A", 1) => Admin(AdminCb::Overview),
            ("Al", 2) => Admin(AdminCb::Accounts(parts[1].parse().ok().filter(|p: &u32| *p < 100_000)?)),
            ("Ad", 2) => Admin(AdminCb::Account(acc(1)?)),
            ("Ax", 2) => Admin(AdminCb::Disconnect(acc(1)?)),
            ("Ax!", 3) => Admin(AdminCb::DisconnectYes(acc(1)?, generation(2)?)),
            ("Ao", 2) => Admin(AdminCb::Logout(acc(1)?)),
            ("Ao!", 3) => Admin(AdminCb::LogoutYes(acc(1)?, generation(2)?)),
            ("Ap", 2) => Admin(AdminCb::PauseJobs(acc(1)?)),
            ("Ap!", 3) => Admin(AdminCb::PauseJobsYes(acc(1)?, generation(2)?)),
            ("As", 3) => Admin(AdminCb::Suspend(parts[1].parse().ok()?, acc(2)?)),
            ("As!", 3) => Admin(AdminCb::SuspendYes(parts[1].parse().ok()?, acc(2)?)),
            ("Au", 3) => Admin(AdminCb::Unsuspend(parts[1].parse().ok()?, acc(2)?)),
            ("Au!", 3) => Admin(AdminCb::UnsuspendYes(parts[1].parse().ok()?, acc(2)?)),
            ("An", 1) => Admin(AdminCb::Announcements),
            ("Anv", 2) => Admin(AdminCb::AnnounceView(job(1)?)),
            ("An!", 2) => Admin(AdminCb::AnnounceYes(job(1)?)),
            ("Anp", 2) => Admin(AdminCb::AnnouncePause(job(1)?)),
            ("Anr", 2) => Admin(AdminCb::AnnounceResume(job(1)?)),
            ("Anc", 2) => Admin(AdminCb::AnnounceCancel(job(1)?)),
            _ => return None,
        };
        // Canonical form only: anything that does not re-encode to itself was not made by us.
        (cb.payload() == s).then_some(cb)
    }

    /// Whether the button's data fits Telegram's 64 bytes (a long LID in a long group ID
    /// may not): a button that does not fit is not offered.
    pub fn fits(&self) -> bool {
        self.payload().len() + 1 + 8 <= MAX_LEN
    }

    /// The account this button acts on, if any (checked for ownership by the handlers).
    pub fn account(&self) -> Option<AccountId> {
        use Cb::*;
        match self {
            Account(a)
            | Switch(a)
            | Logout(a)
            | LogoutYes(a)
            | Remove(a)
            | RemoveYes(a)
            | PairCancel(a)
            | Reconnect(a)
            | Groups(a, _)
            | Group(a, _)
            | GroupLink(a, _)
            | GroupRevoke(a, _)
            | GroupRevokeYes(a, _)
            | GroupMembers(a, _)
            | GroupLeave(a, _)
            | GroupLeaveYes(a, _)
            | GroupAnnounce(a, _, _)
            | GroupLock(a, _, _)
            | GroupInput(a, _, _)
            | ExportLinks(a)
            | Input(a, _)
            | JobStart(a, _)
            | JobPause(a, _)
            | JobResume(a, _)
            | JobCancel(a, _)
            | Messages(a)
            | BroadcastTo(a, _)
            | Inbox(a, _)
            | InboxToggle(a, _)
            | InboxMentions(a, _)
            // --- sched ---
            | JobSchedule(a, _)
            | Scheduled(a)
            | JobTest(a, _)
            | TemplateSave(a, _)
            | Templates(a)
            | TemplateUse(a, _)
            | TemplateDelete(a, _) => Some(*a),
            // --- members ---
            | MembersExport(a, _)
            | MembersExportAll(a)
            | JoinRequests(a, _, _)
            | JoinAnswer(a, _, _, _)
            | JoinAnswerAll(a, _, _)
            | JoinAnswerAllYes(a, _, _)
            | JoinApproval(a, _, _)
            | NicknameClear(a) => Some(*a),
            Menu | Help | LangMenu | SetLang(_) | Accounts | PairNew(_) | InputCancel | Noop | Admin(_) => None,
            PairStart(_) => None,
            Jobs(a, _) | JobView(a, _) | JobReport(a, _) | JobCancelYes(a, _) | JobRerun(a, _) => Some(*a),
        }
    }
}

impl Cb {
    /// One button of every kind the bot can emit, naming account `a`, group `g`, job `job`
    /// and phone `phone`: used by tests that replay every callback kind as another user.
    pub fn every_kind(a: AccountId, g: &GroupId, job: i64, phone: &PhoneNumber) -> Vec<Cb> {
        let mut v = vec![
            Cb::Menu,
            Cb::Help,
            Cb::LangMenu,
            Cb::SetLang(Lang::En),
            Cb::SetLang(Lang::Id),
            Cb::Accounts,
            Cb::Account(a),
            Cb::Switch(a),
            Cb::Logout(a),
            Cb::LogoutYes(a),
            Cb::Remove(a),
            Cb::RemoveYes(a),
            Cb::PairCancel(a),
            Cb::PairNew(phone.clone()),
            Cb::Reconnect(a),
            Cb::Groups(a, 12),
            Cb::Group(a, g.clone()),
            Cb::GroupLink(a, g.clone()),
            Cb::GroupRevoke(a, g.clone()),
            Cb::GroupRevokeYes(a, g.clone()),
            Cb::GroupMembers(a, g.clone()),
            Cb::GroupLeave(a, g.clone()),
            Cb::GroupLeaveYes(a, g.clone()),
            Cb::GroupAnnounce(a, g.clone(), true),
            Cb::GroupLock(a, g.clone(), false),
            Cb::ExportLinks(a),
            Cb::JobStart(a, job),
            Cb::JobPause(a, job),
            Cb::JobResume(a, job),
            Cb::JobCancel(a, job),
            Cb::Messages(a),
            Cb::BroadcastTo(a, BroadcastTarget::AllGroups),
            Cb::BroadcastTo(a, BroadcastTarget::AdminGroups),
            Cb::InputCancel,
            Cb::Noop,
            Cb::Admin(AdminCb::Overview),
            Cb::Admin(AdminCb::Accounts(1)),
            Cb::Admin(AdminCb::Account(a)),
            Cb::Admin(AdminCb::Disconnect(a)),
            Cb::Admin(AdminCb::DisconnectYes(a, 3)),
            Cb::Admin(AdminCb::Logout(a)),
            Cb::Admin(AdminCb::LogoutYes(a, 3)),
            Cb::Admin(AdminCb::PauseJobs(a)),
            Cb::Admin(AdminCb::PauseJobsYes(a, 3)),
            Cb::Admin(AdminCb::Suspend(phone_owner(), a)),
            Cb::Admin(AdminCb::SuspendYes(phone_owner(), a)),
            Cb::Admin(AdminCb::Unsuspend(phone_owner(), a)),
            Cb::Admin(AdminCb::UnsuspendYes(phone_owner(), a)),
            Cb::Admin(AdminCb::Announcements),
            Cb::Admin(AdminCb::AnnounceView(job)),
            Cb::Admin(AdminCb::AnnounceYes(job)),
            Cb::Admin(AdminCb::AnnouncePause(job)),
            Cb::Admin(AdminCb::AnnounceResume(job)),
            Cb::Admin(AdminCb::AnnounceCancel(job)),
            Cb::Inbox(a, 1),
            Cb::InboxToggle(a, true),
            Cb::InboxToggle(a, false),
            Cb::InboxMentions(a, true),
            Cb::InboxMentions(a, false),
            // --- sched ---
            Cb::JobSchedule(a, job),
            Cb::Scheduled(a),
            Cb::JobTest(a, job),
            Cb::TemplateSave(a, job),
            Cb::Templates(a),
            Cb::TemplateUse(a, job),
            Cb::TemplateDelete(a, job),
            // --- members ---
            Cb::MembersExport(a, g.clone()),
            Cb::MembersExportAll(a),
            Cb::JoinRequests(a, g.clone(), 3),
            Cb::JoinAnswer(a, g.clone(), PersonId::Phone(phone.clone()), true),
            Cb::JoinAnswer(a, g.clone(), PersonId::Lid("123456789012345".into()), false),
            Cb::JoinAnswerAll(a, g.clone(), true),
            Cb::JoinAnswerAllYes(a, g.clone(), false),
            Cb::JoinApproval(a, g.clone(), true),
            Cb::NicknameClear(a),
            // --- ways ---
            Cb::PairStart(false),
            Cb::PairStart(true),
            Cb::Jobs(a, 1),
            Cb::JobView(a, job),
            Cb::JobReport(a, job),
            Cb::JobCancelYes(a, job),
            Cb::JobRerun(a, job),
        ];
        for (k, _) in InputKind::ALL {
            v.push(Cb::Input(a, k));
            v.push(Cb::GroupInput(a, g.clone(), k));
        }
        v
    }

    /// Never called: a match without a wildcard, so adding a kind without adding it to
    /// [`Cb::every_kind`] is noticed here.
    #[allow(dead_code)]
    fn every_kind_is_complete(cb: &Cb) {
        use Cb::*;
        match cb {
            Menu | Help | LangMenu | SetLang(_) | Accounts | Account(_) | Switch(_) | Logout(_) | LogoutYes(_)
            | Remove(_) | RemoveYes(_) | PairCancel(_) | PairNew(_) | Reconnect(_) | Groups(..) | Group(..)
            | GroupLink(..) | GroupRevoke(..) | GroupRevokeYes(..) | GroupMembers(..) | GroupLeave(..)
            | GroupLeaveYes(..) | GroupAnnounce(..) | GroupLock(..) | GroupInput(..) | ExportLinks(_) | Input(..)
            | JobStart(..) | JobPause(..) | JobResume(..) | JobCancel(..) | Messages(_) | BroadcastTo(..)
            | InputCancel | Noop | Admin(_) | Inbox(..) | InboxToggle(..) | InboxMentions(..) => {}
            // --- sched ---
            JobSchedule(..) | Scheduled(_) | JobTest(..) | TemplateSave(..) | Templates(_) | TemplateUse(..)
            | TemplateDelete(..) => {}
            // --- members ---
            MembersExport(..) | MembersExportAll(_) | JoinRequests(..) | JoinAnswer(..) | JoinAnswerAll(..)
            | JoinAnswerAllYes(..) | JoinApproval(..) | NicknameClear(_) => {}
            PairStart(_) | Jobs(..) | JobView(..) | JobReport(..) | JobCancelYes(..) | JobRerun(..) => {}
        }
    }
}

impl AdminCb {
    /// Never called: a match without a wildcard, so adding an operator button without adding
    /// it to [`Cb::every_kind`] is noticed here.
    #[allow(dead_code)]
    fn every_kind_is_complete(cb: &AdminCb) {
        use AdminCb::*;
        match cb {
            Overview | Accounts(_) | Account(_) | Disconnect(_) | DisconnectYes(..) | Logout(_) | LogoutYes(..)
            | PauseJobs(_) | PauseJobsYes(..) | Suspend(..) | SuspendYes(..) | Unsuspend(..) | UnsuspendYes(..)
            | Announcements | AnnounceView(_) | AnnounceYes(_) | AnnouncePause(_) | AnnounceResume(_)
            | AnnounceCancel(_) => {}
        }
    }
}

/// A fixed Telegram ID for the sample buttons of [`Cb::every_kind`].
fn phone_owner() -> TelegramId {
    TelegramId::new(1_000_001).unwrap_or_else(|_| unreachable!("1000001 is a valid Telegram ID"))
}

/// Why callback data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CbError {
    #[error("callback data is not in our format")]
    Malformed,
    #[error("callback data was not made for this user")]
    Forged,
}

/// The callback secret could not be used; start-up stops (see `App::new`).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file exists but is not a usable key.
    #[error("the callback secret {0} is unusable: {1}; restore it from a backup, or delete it to make a new one (buttons already sent will stop working)")]
    Unusable(String, String),
    /// A new file could not be written.
    #[error("cannot create the callback secret {0}: {1}")]
    Create(String, #[source] std::io::Error),
}

impl From<SecretError> for std::io::Error {
    // `App::new` reports start-up failures as I/O errors; the message says what to do.
    fn from(e: SecretError) -> Self {
        std::io::Error::other(e.to_string())
    }
}

/// Signs and checks callback data with the server's secret.
#[derive(Clone)]
pub struct CallbackCodec {
    key: [u8; 32],
}

const TAG_BYTES: usize = 6;

impl CallbackCodec {
    /// A codec with this key.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// Loads the secret from `path` (32 bytes), creating it (0600, exclusively) with random
    /// bytes only when it does not exist. The secret survives restarts so old menus keep
    /// working; one that is unreadable, a symbolic link, or not exactly 32 bytes is an error,
    /// never silently replaced (a new key would invalidate every button already sent).
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let shown = || crate::layout::mask_path(path);
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(SecretError::Unusable(shown(), "it is a symbolic link".into()))
            }
            Ok(_) => return Self::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SecretError::Unusable(shown(), e.to_string())),
        }
        let key: [u8; 32] = rand::random();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| SecretError::Create(shown(), e))?;
        }
        let created = {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            // create_new: if another process made the file meanwhile, its key is the one used.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| {
                    f.write_all(&key)?;
                    f.sync_all()
                })
        };
        match created {
            Ok(()) => {
                tracing::info!(path = %shown(), "created a new callback secret");
                Ok(Self::new(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => {
                // A half-written file would be refused at the next start: take it away now.
                let _ = std::fs::remove_file(path);
                Err(SecretError::Create(shown(), e))
            }
        }
    }

    fn load(path: &Path) -> Result<Self, SecretError> {
        let shown = || crate::layout::mask_path(path);
        let bytes = std::fs::read(path).map_err(|e| SecretError::Unusable(shown(), e.to_string()))?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::Unusable(shown(), format!("it holds {} bytes, not 32", bytes.len())))?;
        Ok(Self::new(key))
    }

    fn tag(&self, tid: TelegramId, payload: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(&tid.get().to_le_bytes());
        mac.update(payload.as_bytes());
        let out = mac.finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&out[..TAG_BYTES])
    }

    /// The data for a button shown to `tid`. At most 64 bytes by construction.
    pub fn encode(&self, tid: TelegramId, cb: &Cb) -> String {
        let payload = cb.payload();
        let data = format!("{payload}~{}", self.tag(tid, &payload));
        debug_assert!(data.len() <= MAX_LEN, "callback data too long: {data}");
        data
    }

    /// Decodes data pressed by `tid`: malformed or not signed for `tid` is an error.
    pub fn decode(&self, tid: TelegramId, data: &str) -> Result<Cb, CbError> {
        if data.len() > MAX_LEN {
            return Err(CbError::Malformed);
        }
        let (payload, tag) = data.rsplit_once('~').ok_or(CbError::Malformed)?;
        let want = self.tag(tid, payload);
        // Length is public; compare the bytes without an early exit.
        if tag.len() != want.len() || tag.bytes().zip(want.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
            return Err(CbError::Forged);
        }
        Cb::parse_payload(payload).ok_or(CbError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Cb> {
        let a = AccountId::new(123_456).unwrap();
        let g = GroupId::parse("120363012345678901@g.us").unwrap();
        Cb::every_kind(a, &g, 99_999, &PhoneNumber::from_digits("628123456789012").unwrap())
    }

    #[test]
    fn round_trip_and_fit_in_64_bytes() {
        let c = CallbackCodec::new([7; 32]);
        let me = TelegramId::new(9_000_000_000).unwrap();
        for cb in samples() {
            let data = c.encode(me, &cb);
            assert!(data.len() <= MAX_LEN, "{data} is {} bytes", data.len());
            assert_eq!(c.decode(me, &data), Ok(cb));
        }
    }

    #[test]
    fn other_users_and_forgeries_are_refused() {
        let c = CallbackCodec::new([7; 32]);
        let a = TelegramId::new(1).unwrap();
        let b = TelegramId::new(2).unwrap();
        for cb in samples() {
            let data = c.encode(a, &cb);
            assert_eq!(c.decode(b, &data), Err(CbError::Forged), "{data}");
        }
        let other_key = CallbackCodec::new([8; 32]);
        assert_eq!(other_key.decode(a, &c.encode(a, &Cb::Menu)), Err(CbError::Forged));
        for junk in ["", "~", "m", "m~", "as:1~AAAAAAAA", &"x".repeat(65), "as:-1", "as:01"] {
            assert!(c.decode(a, junk).is_err(), "{junk:?}");
        }
        // A well-signed payload that is not canonical is still refused.
        let tag = c.tag(a, "as:01");
        assert_eq!(c.decode(a, &format!("as:01~{tag}")), Err(CbError::Malformed));
    }

    #[test]
    fn secret_persists() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".secret");
        let c1 = CallbackCodec::load_or_create(&p).unwrap();
        let c2 = CallbackCodec::load_or_create(&p).unwrap();
        let t = TelegramId::new(5).unwrap();
        assert_eq!(c2.decode(t, &c1.encode(t, &Cb::Menu)), Ok(Cb::Menu));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_bad_secret_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".secret");
        for bad in [&b""[..], &[1u8; 31][..], &[1u8; 33][..]] {
            std::fs::write(&p, bad).unwrap();
            let e = CallbackCodec::load_or_create(&p).err().expect("refused");
            assert!(matches!(e, SecretError::Unusable(..)), "{e}");
            assert_eq!(std::fs::read(&p).unwrap(), bad, "the file is left as it was");
        }
        std::fs::remove_file(&p).unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, [3u8; 32]).unwrap();
        std::os::unix::fs::symlink(&target, &p).unwrap();
        assert!(CallbackCodec::load_or_create(&p).is_err());
        std::fs::remove_file(&p).unwrap();
        // Unreadable (a directory in its place).
        std::fs::create_dir(&p).unwrap();
        assert!(CallbackCodec::load_or_create(&p).is_err());
    }
}
