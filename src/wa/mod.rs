//! The seam between the bot and WhatsApp: one trait for a backend (which starts sessions) and
//! one for a live session. The real adapter (`real`) and the simulator (`sim`) implement both.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::ids::{PhoneNumber, TelegramId};

#[cfg(feature = "insecure-fake-whatsapp")]
pub mod fake;
pub mod real;
pub mod sim;

/// What the caller should do about a failed WhatsApp operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// Transient: the same call may work later.
    Retry,
    /// The session is gone: the owner has to pair the number again.
    RePair,
    /// The request itself is wrong or not allowed; retrying will not help.
    GiveUp,
    /// WhatsApp stopped the whole account (banned or locked): no call of it can work, so
    /// its work stops rather than failing item by item.
    StopAccount,
}

/// Failures of WhatsApp operations, each with its [`Advice`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum WaError {
    #[error("not connected to WhatsApp")]
    NotConnected,
    #[error("rate limited by WhatsApp")]
    RateLimited {
        /// How long WhatsApp asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    #[error("timed out waiting for WhatsApp")]
    Timeout,
    #[error("the device is not paired")]
    NotPaired,
    #[error("logged out: {0}")]
    LoggedOut(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("session storage: {0}")]
    Storage(String),
    #[error("{0}")]
    Other(String),
    /// WhatsApp refused a message because this number may not start chats with people who
    /// never wrote to it (error 463 "reach-out timelock", or 479): new or flagged accounts.
    /// `until` is when the limit ends (Unix seconds), when WhatsApp said.
    #[error("WhatsApp limits messages from this number to new contacts")]
    ReachOutLimited { until: Option<i64> },
    /// WhatsApp banned or locked the account (`until`: end of a temporary ban, Unix seconds).
    #[error("WhatsApp banned this number: {reason}")]
    Banned { reason: String, until: Option<i64> },
    // --- peer ---
    /// The account's proxy refused or is unreachable: not a WhatsApp problem (masked reason).
    #[error("{0}")]
    Proxy(String),
}

impl WaError {
    /// Whether to retry, re-pair, or give up.
    pub fn advice(&self) -> Advice {
        match self {
            WaError::NotConnected | WaError::RateLimited { .. } | WaError::Timeout | WaError::Other(_) => Advice::Retry,
            WaError::Proxy(_) => Advice::Retry,
            WaError::NotPaired | WaError::LoggedOut(_) => Advice::RePair,
            WaError::NotFound(_)
            | WaError::Forbidden(_)
            | WaError::Invalid(_)
            | WaError::Storage(_)
            | WaError::ReachOutLimited { .. } => Advice::GiveUp,
            WaError::Banned { .. } => Advice::StopAccount,
        }
    }
}

/// Something that happened to a session. The supervisor turns these into account status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaEvent {
    /// A QR string to show for QR login (WhatsApp rotates it every `ttl`).
    Qr { code: String, ttl: Duration },
    /// The phone confirmed the link; `jid` is the device's own JID.
    PairSuccess { jid: String },
    /// Pairing failed; `retry_after` is set when WhatsApp rate-limited us.
    PairFailed {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Connected and logged in.
    Connected,
    /// The connection dropped; the backend reconnects by itself.
    Disconnected { reason: String },
    /// Logged out from the phone (or the server): the session is dead.
    LoggedOut { reason: String },
    /// Another client took over this session.
    StreamReplaced,
    /// A temporary ban; `until` is Unix seconds.
    TemporaryBan { reason: String, until: i64 },
    /// WhatsApp banned (connect failure 406) or locked (403) the account for good: to the
    /// library a logout, to the owner a ban they can only appeal inside WhatsApp.
    AccountBanned { reason: String, locked: bool },
    /// WhatsApp refused this client version.
    ClientOutdated,
    /// A (re)connect attempt failed; the backend keeps trying with backoff.
    ConnectAttemptFailed { reason: String },
    /// The connection has been down for longer than the backend's outage bound. Sent once
    /// per outage; `Connected` ends it.
    Outage { reason: String, down_for: Duration },
    /// WhatsApp refused the connection for good (connect failure `code`, e.g. 409 bad user
    /// agent, 415 not found): the backend stops and the session has ended.
    ConnectFailed { code: u32, reason: String },
    /// A message someone sent this account, to it or in a group it is in. The supervisor
    /// hands it to the inbox (`crate::inbox`), which forwards it to the owner when they
    /// asked for that.
    Message {
        /// WhatsApp's message id.
        id: String,
        /// The group JID (`...@g.us`) for a group message, else the sender's phone digits.
        chat: String,
        /// The sender's phone digits. A sender addressed by LID whose stanza carries no
        /// phone number (`participant_pn` / `sender_pn`) is given as its LID JID
        /// (`...@lid`); the library's LID map is not consulted.
        sender: String,
        /// The text (`conversation` or `extendedTextMessage.text`), or a media's caption
        /// (empty when it has none).
        text: String,
        /// Everything else about it: kind, media, push name, whether it was queued offline.
        meta: MessageMeta,
    },
    // --- peer ---
    /// A connection attempt failed at the account's proxy (refused, unreachable, wrong
    /// credentials): a proxy problem, not a WhatsApp one. `proxy` is masked.
    ProxyFailed { proxy: String, reason: String },
}

/// What kind of message arrived. Photos and documents travel as files; the rest are named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Plain or extended text.
    #[default]
    Text,
    /// A photo (`imageMessage`).
    Image,
    /// A file (`documentMessage`).
    Document,
    /// A voice note or other audio (`audioMessage`).
    Voice,
    /// A video (`videoMessage`).
    Video,
    /// A sticker (`stickerMessage`).
    Sticker,
    /// Anything else with content (contacts, locations, polls, ...).
    Other,
}

impl MessageKind {
    /// The stored name (`text`, `image`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::Document => "document",
            MessageKind::Voice => "voice",
            MessageKind::Video => "video",
            MessageKind::Sticker => "sticker",
            MessageKind::Other => "other",
        }
    }

    /// The kind a stored name stands for (unknown names are `Other`).
    pub fn parse(s: &str) -> Self {
        match s {
            "text" => MessageKind::Text,
            "image" => MessageKind::Image,
            "document" => MessageKind::Document,
            "voice" => MessageKind::Voice,
            "video" => MessageKind::Video,
            "sticker" => MessageKind::Sticker,
            _ => MessageKind::Other,
        }
    }
}

/// A file carried by a message (a photo or a document), in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Media {
    /// The file's name as the sender gave it (`photo.jpg` for photos).
    pub file_name: String,
    /// Its MIME type, when known.
    pub mime: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The details of an incoming [`WaEvent::Message`] beyond its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageMeta {
    /// What it is.
    pub kind: MessageKind,
    /// The sender's WhatsApp push name (empty when WhatsApp sent none): the only name a
    /// sender known by LID alone has.
    pub push_name: String,
    /// The file of a photo or document, when the backend could fetch it.
    pub media: Option<Media>,
    /// It was queued by the server while this account was offline and arrived at login.
    pub offline: bool,
    /// A group message that mentions this account.
    pub mentions_me: bool,
    /// When the sender sent it (Unix seconds; 0 when unknown).
    pub sent_at: i64,
}

/// A pairing code as WhatsApp issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairCode {
    /// 8 characters, without the dash.
    pub code: String,
    /// How long it stays valid from now.
    pub ttl: Duration,
}

impl PairCode {
    /// `ABCD-EFGH`, as WhatsApp shows it.
    pub fn display(&self) -> String {
        if self.code.len() == 8 {
            format!("{}-{}", &self.code[..4], &self.code[4..])
        } else {
            self.code.clone()
        }
    }
}

/// What a session file holds, without connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A paired device with this JID.
    Paired { jid: String },
    /// A readable store with no paired device.
    Unpaired,
}

/// A group's JID (`...@g.us`). Validated so it can go into callback data and file names safely.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(String);

impl GroupId {
    /// Accepts `<digits>[-<digits>]@g.us`.
    pub fn parse(s: &str) -> Option<Self> {
        let user = s.strip_suffix("@g.us")?;
        let ok = !user.is_empty()
            && user.len() <= 40
            && user.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            && !user.starts_with('-')
            && !user.ends_with('-');
        ok.then(|| Self(s.to_string()))
    }

    /// The full JID.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@g.us`, used in compact callback data.
    pub fn user(&self) -> &str {
        self.0.trim_end_matches("@g.us")
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a text message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTarget {
    /// A person, by phone number.
    Phone(PhoneNumber),
    /// A group.
    Group(GroupId),
}

/// A group in the account's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub id: GroupId,
    pub name: String,
    pub member_count: usize,
    /// Whether this account is an admin there.
    pub is_admin: bool,
}

/// A group member, by phone number (LIDs are resolved by the backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub phone: PhoneNumber,
    pub is_admin: bool,
    pub is_super_admin: bool,
}

/// A group's metadata with its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub id: GroupId,
    pub name: String,
    pub description: Option<String>,
    pub announce: bool,
    pub locked: bool,
    pub members: Vec<Member>,
}

/// The result of joining through an invite link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Joined now.
    Joined(GroupId),
    /// The group's admins must approve the request first.
    PendingApproval,
}

/// What to do to a set of group members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberAction {
    Add,
    Remove,
    Promote,
    Demote,
}

/// One member's result of a [`MemberAction`]: `Err` carries WhatsApp's reason.
pub type MemberResult = (PhoneNumber, Result<(), String>);

/// The account's own profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub jid: String,
    pub phone: Option<PhoneNumber>,
    pub push_name: String,
}

// --- members ---

/// Who a group member or a join request is: a phone number, or only a LID (WhatsApp's
/// hidden-number ID, `<digits>@lid`) when WhatsApp did not tell the number. A LID is never
/// shown or exported as if it were a number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PersonId {
    /// A phone number.
    Phone(PhoneNumber),
    /// The digits of a LID (without `@lid`).
    Lid(String),
}

impl PersonId {
    /// A LID's digits, validated (1 to 20 ASCII digits).
    pub fn lid(digits: &str) -> Option<Self> {
        let ok = !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self::Lid(digits.to_string()))
    }

    /// The compact form used in callback data: `p<digits>` or `l<digits>`.
    pub fn code(&self) -> String {
        match self {
            PersonId::Phone(p) => format!("p{}", p.digits()),
            PersonId::Lid(l) => format!("l{l}"),
        }
    }

    /// Parses [`PersonId::code`].
    pub fn from_code(s: &str) -> Option<Self> {
        if let Some(d) = s.strip_prefix('p') {
            PhoneNumber::from_digits(d).ok().map(PersonId::Phone)
        } else {
            Self::lid(s.strip_prefix('l')?)
        }
    }
}

/// A group member with what is known about them, for exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// Their number, or their LID when WhatsApp hid the number.
    pub id: PersonId,
    /// Their WhatsApp (push) name, when known.
    pub name: Option<String>,
    pub is_admin: bool,
    pub is_super_admin: bool,
}

/// Someone waiting for an admin to let them into a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The requester.
    pub id: PersonId,
    /// Their WhatsApp name, when known.
    pub name: Option<String>,
    /// When they asked (Unix seconds), when WhatsApp said.
    pub requested_at: Option<i64>,
}

/// One requester's result of approving or rejecting: `Err` carries WhatsApp's reason.
pub type RequestResult = (PersonId, Result<(), String>);

/// Everything a backend needs to start one account's session.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// The owner, for logs.
    pub telegram_id: TelegramId,
    /// The account's number (for a new pairing, the number being linked).
    pub phone: PhoneNumber,
    /// `DB USER TELEGRAM/{tid}/whatsmeow-{tid}-{phone}.db`; its folder exists.
    pub session_file: PathBuf,
}

/// Receives a session's events; ends when the session has stopped for good.
pub type EventRx = mpsc::UnboundedReceiver<WaEvent>;

/// A WhatsApp implementation: starts sessions and inspects session files.
#[async_trait]
pub trait WaBackend: Send + Sync + 'static {
    /// Opens the session stored in `spec.session_file` (creating an empty store if there is
    /// none) and starts connecting in the background. A paired store logs in and emits
    /// `Connected`; an unpaired one waits for [`WaSession::request_pair_code`] or emits `Qr`.
    async fn start(&self, spec: SessionSpec) -> Result<(Arc<dyn WaSession>, EventRx), WaError>;

    /// Reads a session file without connecting: paired or not. `Err(Storage)` when the file
    /// is not a session store.
    async fn probe(&self, session_file: &Path) -> Result<Probe, WaError>;
}

/// One live session. Dropping it does not disconnect: call [`WaSession::disconnect`].
#[async_trait]
pub trait WaSession: Send + Sync {
    /// Asks WhatsApp for an 8-character pairing code for `phone`. Success arrives later as
    /// `PairSuccess`; rate limiting is `Err(RateLimited)`.
    async fn request_pair_code(&self, phone: &PhoneNumber) -> Result<PairCode, WaError>;
    /// Switches an unpaired session to QR login: from now on it emits `Qr` events (the
    /// first valid 60 s, then 20 s each) until the phone scans one (`PairSuccess`).
    async fn start_qr(&self) -> Result<(), WaError>;
    /// Withdraws an outstanding pairing code.
    async fn cancel_pair_code(&self) -> Result<(), WaError>;
    /// Unlinks this device from the phone. Files are left to the caller.
    async fn logout(&self) -> Result<(), WaError>;
    /// Disconnects and stops the session within `bound` (aborting if it must).
    async fn disconnect(&self, bound: Duration);
    /// The account's own profile.
    async fn profile(&self) -> Result<Profile, WaError>;
    /// Sends a text message; returns WhatsApp's message ID.
    async fn send_text(&self, to: &ChatTarget, text: &str) -> Result<String, WaError>;
    /// Sends a photo (`kind` `Image`) or a document with `caption`; returns WhatsApp's
    /// message ID. Backends that cannot upload media refuse with `Invalid`.
    async fn send_media(
        &self,
        to: &ChatTarget,
        kind: MessageKind,
        media: &Media,
        caption: &str,
    ) -> Result<String, WaError> {
        let _ = (to, kind, media, caption);
        Err(WaError::Invalid(
            "sending media is not supported by this backend".into(),
        ))
    }
    /// Uploads a file once (encrypted, to WhatsApp's media servers) for messages that carry
    /// it later ([`WaSession::send_uploaded`]). Backends without media refuse with `Invalid`.
    async fn upload_media(
        &self,
        kind: MediaKind,
        bytes: &[u8],
        mime: &str,
        file_name: &str,
    ) -> Result<MediaRef, WaError> {
        let _ = (kind, bytes, mime, file_name);
        Err(WaError::Invalid(
            "sending media is not supported by this backend".into(),
        ))
    }
    /// Sends a message that carries an uploaded file, with `caption` (ignored for voice
    /// notes and audio, which WhatsApp shows without one); returns WhatsApp's message ID.
    async fn send_uploaded(&self, to: &ChatTarget, media: &MediaRef, caption: &str) -> Result<String, WaError> {
        let _ = (to, media, caption);
        Err(WaError::Invalid(
            "sending media is not supported by this backend".into(),
        ))
    }
    /// Groups the account is in.
    async fn groups(&self) -> Result<Vec<GroupSummary>, WaError>;
    /// One group's metadata and members.
    async fn group_info(&self, id: &GroupId) -> Result<GroupInfo, WaError>;
    /// Creates a group with optional initial members.
    async fn create_group(&self, subject: &str, members: &[PhoneNumber]) -> Result<GroupInfo, WaError>;
    /// The group's invite link; `reset` revokes the old one first.
    async fn invite_link(&self, id: &GroupId, reset: bool) -> Result<String, WaError>;
    /// Joins through `https://chat.whatsapp.com/<code>` or a bare code.
    async fn join_group(&self, link_or_code: &str) -> Result<JoinOutcome, WaError>;
    /// Leaves a group.
    async fn leave_group(&self, id: &GroupId) -> Result<(), WaError>;
    /// Renames a group.
    async fn set_subject(&self, id: &GroupId, subject: &str) -> Result<(), WaError>;
    /// Sets (or clears, with `None`) the description.
    async fn set_description(&self, id: &GroupId, description: Option<&str>) -> Result<(), WaError>;
    /// Only admins may send.
    async fn set_announce(&self, id: &GroupId, on: bool) -> Result<(), WaError>;
    /// Only admins may edit the group's info.
    async fn set_locked(&self, id: &GroupId, on: bool) -> Result<(), WaError>;
    /// Adds, removes, promotes or demotes members; one result per number.
    async fn update_members(
        &self,
        id: &GroupId,
        action: MemberAction,
        members: &[PhoneNumber],
    ) -> Result<Vec<MemberResult>, WaError>;
    /// Which numbers have WhatsApp.
    async fn is_on_whatsapp(&self, numbers: &[PhoneNumber]) -> Result<Vec<(PhoneNumber, bool)>, WaError>;
    /// Shows "typing…" in the chat with `to` for `how_long`, then stops it, as a person
    /// would before sending. Best effort: a backend without chat states does nothing.
    async fn show_typing(&self, to: &ChatTarget, how_long: Duration) -> Result<(), WaError> {
        let _ = to;
        tokio::time::sleep(how_long).await;
        Ok(())
    }
    /// When the account's reach-out timelock ends (Unix seconds), if one is in force and
    /// WhatsApp says when. Asked once after a 463 refusal.
    async fn reach_out_until(&self) -> Option<i64> {
        None
    }

    // --- members ---
    /// One group's members with names where known and LID-only members kept as LIDs (for
    /// exports). The default has no names and no LIDs: the members of [`WaSession::group_info`].
    async fn group_roster(&self, id: &GroupId) -> Result<Vec<RosterEntry>, WaError> {
        let info = self.group_info(id).await?;
        Ok(info
            .members
            .into_iter()
            .map(|m| RosterEntry {
                id: PersonId::Phone(m.phone),
                name: None,
                is_admin: m.is_admin,
                is_super_admin: m.is_super_admin,
            })
            .collect())
    }
    /// The group's pending join requests (admins only).
    async fn join_requests(&self, id: &GroupId) -> Result<Vec<JoinRequest>, WaError> {
        let _ = id;
        Err(WaError::Invalid(
            "join requests are not supported by this backend".into(),
        ))
    }
    /// Approves (`approve`) or rejects pending join requests; one result per requester.
    async fn answer_join_requests(
        &self,
        id: &GroupId,
        approve: bool,
        who: &[PersonId],
    ) -> Result<Vec<RequestResult>, WaError> {
        let _ = (id, approve, who);
        Err(WaError::Invalid(
            "join requests are not supported by this backend".into(),
        ))
    }
    /// Whether new members need an admin's approval ("approve new members").
    async fn join_approval(&self, id: &GroupId) -> Result<bool, WaError> {
        let _ = id;
        Err(WaError::Invalid(
            "join approval is not supported by this backend".into(),
        ))
    }
    /// Turns "approve new members" on or off.
    async fn set_join_approval(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        let _ = (id, on);
        Err(WaError::Invalid(
            "join approval is not supported by this backend".into(),
        ))
    }
}

// --- media ---

/// The kind of file a media message carries, as the bot sends it to WhatsApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A photo (`imageMessage`).
    Photo,
    /// A file of any type (`documentMessage`).
    Document,
    /// A video (`videoMessage`).
    Video,
    /// A voice note: an `audioMessage` with `ptt: true`, OGG/Opus, played inline.
    Voice,
    /// Music or another audio file (`audioMessage`, `ptt: false`).
    Audio,
}

/// WhatsApp's limit on photos, videos and audio: 16 MB, as WhatsApp documents it for media
/// ("WhatsApp media size limits": 16 MB for audio and video; the Business API's own table
/// says 16 MB for video and audio, 5 MB for images, which the consumer app re-encodes
/// rather than refuses). We hold photos to the same 16 MB the app accepts.
pub const WA_MEDIA_LIMIT: u64 = 16 * 1024 * 1024;
/// WhatsApp's limit on documents as the Business API documents it: 100 MB. (The consumer
/// app now takes up to 2 GB, but a linked device uploads through the same media servers and
/// the 100 MB figure is the one WhatsApp publishes for programmatic senders.)
pub const WA_DOCUMENT_LIMIT: u64 = 100 * 1024 * 1024;
/// The largest received file an adapter downloads for its owner; a bigger one is named
/// instead (Telegram bots may send photos up to 10 MB). `crate::inbox` forwards within it.
pub const INBOX_MEDIA_LIMIT: usize = 10 * 1024 * 1024;

impl MediaKind {
    /// The stored name (`photo`, `document`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Document => "document",
            MediaKind::Video => "video",
            MediaKind::Voice => "voice",
            MediaKind::Audio => "audio",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "photo" => MediaKind::Photo,
            "document" => MediaKind::Document,
            "video" => MediaKind::Video,
            "voice" => MediaKind::Voice,
            "audio" => MediaKind::Audio,
            _ => return None,
        })
    }

    /// The largest file WhatsApp takes of this kind, in bytes.
    pub fn limit(self) -> u64 {
        match self {
            MediaKind::Document => WA_DOCUMENT_LIMIT,
            _ => WA_MEDIA_LIMIT,
        }
    }

    /// The kind an incoming message of this media is reported as.
    pub fn message_kind(self) -> MessageKind {
        match self {
            MediaKind::Photo => MessageKind::Image,
            MediaKind::Document => MessageKind::Document,
            MediaKind::Video => MessageKind::Video,
            MediaKind::Voice | MediaKind::Audio => MessageKind::Voice,
        }
    }
}

/// A file uploaded once to WhatsApp's media servers, which any number of messages can then
/// carry without uploading it again. Serializable, so a job keeps it across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRef {
    /// What it is.
    pub kind: MediaKind,
    /// Its MIME type (`image/jpeg`, `audio/ogg; codecs=opus`, ...).
    pub mime: String,
    /// The file name shown with a document.
    pub file_name: String,
    /// Its size in bytes, before encryption.
    pub size: u64,
    /// The media server's URL of the encrypted file (the simulator's: `sim://upload/<id>`).
    pub url: String,
    /// Its path on the media servers, which recipients download it by.
    pub direct_path: String,
    /// The key it was encrypted with (32 bytes; empty in the simulator).
    #[serde(default)]
    pub media_key: Vec<u8>,
    /// SHA-256 of the plain file.
    #[serde(default)]
    pub file_sha256: Vec<u8>,
    /// SHA-256 of the encrypted file.
    #[serde(default)]
    pub file_enc_sha256: Vec<u8>,
    /// When the key was made (Unix seconds).
    #[serde(default)]
    pub media_key_timestamp: i64,
    /// The per-64-KiB MAC table of audio and video, for streaming playback.
    #[serde(default)]
    pub streaming_sidecar: Option<Vec<u8>>,
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The backend the configuration asks for: the real network, or the simulator (whose world
/// lives in `{data_dir}/.sim/world.db`).
pub async fn backend_for(config: &crate::config::Config) -> Result<Arc<dyn WaBackend>, WaError> {
    match config.wa_backend {
        crate::config::WaBackendKind::WhatsApp => Ok(Arc::new(real::RealBackend::with_options(
            real::RealOptions::default()
                .with_outage_after(config.wa_outage_after)
                .with_default_proxy(config.wa_proxy.clone()),
        ))),
        crate::config::WaBackendKind::Sim => {
            let layout = crate::layout::Layout::new(&config.data_dir);
            let sim = sim::SimBackend::open(&layout, config.sim_pair_delay, config.sim_code_ttl).await?;
            Ok(sim)
        }
        #[cfg(feature = "insecure-fake-whatsapp")]
        crate::config::WaBackendKind::Fake => {
            // Loading (and first writing) the fake world's file is blocking work.
            let (dir, delay, outage) = (config.data_dir.clone(), config.sim_pair_delay, config.wa_outage_after);
            let fake = crate::db::blocking(move || Ok(fake::FakeBackend::new(&dir, delay, outage)))
                .await
                .map_err(|e| WaError::Storage(e.to_string()))??;
            // --- peer ---
            let fake = fake.with_default_proxy(config.wa_proxy.clone());
            Ok(Arc::new(fake))
        }
        #[cfg(not(feature = "insecure-fake-whatsapp"))]
        crate::config::WaBackendKind::Fake => Err(WaError::Invalid(
            "TGWA_WA_BACKEND=fake needs a build with --features insecure-fake-whatsapp".into(),
        )),
    }
}

/// Extracts the invite code from `https://chat.whatsapp.com/<code>` or a bare code; `None` if
/// it is neither.
pub fn invite_code(input: &str) -> Option<&str> {
    let s = input.trim();
    let code = s
        .strip_prefix("https://chat.whatsapp.com/")
        .or_else(|| s.strip_prefix("http://chat.whatsapp.com/"))
        .or_else(|| s.strip_prefix("chat.whatsapp.com/"))
        .unwrap_or(s);
    let code = code.split(['?', '#']).next().unwrap_or("").trim_end_matches('/');
    let ok = (16..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids() {
        assert!(GroupId::parse("120363012345678901@g.us").is_some());
        assert!(GroupId::parse("6281234567890-1600000000@g.us").is_some());
        for bad in [
            "",
            "@g.us",
            "abc@g.us",
            "123@s.whatsapp.net",
            "../1@g.us",
            "-1@g.us",
            "1:2@g.us",
        ] {
            assert!(GroupId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn invite_codes() {
        assert_eq!(
            invite_code("https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv"),
            Some("AbCdEfGhIjKlMnOpQrStUv")
        );
        assert_eq!(invite_code(" AbCdEfGhIjKlMnOpQrStUv "), Some("AbCdEfGhIjKlMnOpQrStUv"));
        assert_eq!(
            invite_code("https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv?x=1"),
            Some("AbCdEfGhIjKlMnOpQrStUv")
        );
        assert_eq!(invite_code("https://example.com/AbCdEfGhIjKlMnOpQrStUv"), None);
        assert_eq!(invite_code("short"), None);
        assert_eq!(invite_code("https://chat.whatsapp.com/../../etc/passwd"), None);
    }

    #[test]
    fn advice() {
        assert_eq!(WaError::RateLimited { retry_after: None }.advice(), Advice::Retry);
        assert_eq!(WaError::LoggedOut("x".into()).advice(), Advice::RePair);
        assert_eq!(WaError::Forbidden("x".into()).advice(), Advice::GiveUp);
        assert_eq!(WaError::ReachOutLimited { until: None }.advice(), Advice::GiveUp);
        let banned = WaError::Banned {
            reason: "406".into(),
            until: None,
        };
        assert_eq!(banned.advice(), Advice::StopAccount);
    }
}
