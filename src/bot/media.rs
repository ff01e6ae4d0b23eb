//! Photos, documents, videos, voice notes and audio sent to the bot where it asks for a
//! message (to a number, to a group, a broadcast): what kind of file it is, whether Telegram
//! lets the bot fetch it and WhatsApp takes it, fetching it, and how the preview names it.

use teloxide::prelude::*;
use teloxide::types::FileId;
use tracing::warn;

use crate::wa::MediaKind;
// --- media2 ---
use super::kit::app::{App, Caller, Req};
use super::kit::i18n::{esc, t2, Lang};
use super::kit::send::send_file_by_id;
use crate::account::Account;
use crate::jobs::{JobKind, JobMedia};
use crate::wa::{ChatTarget, MediaRef, WaError, WaSession};

/// The Bot API's limit on files a bot may download ("up to 20 MB in size", Bot API
/// `getFile`); a larger file cannot be fetched at all without a local Bot API server.
pub const TELEGRAM_DOWNLOAD_LIMIT: u64 = 20 * 1024 * 1024;

/// A file in a Telegram message, before it is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgMedia {
    /// What WhatsApp will get.
    pub kind: MediaKind,
    /// Telegram's file ID, for `getFile`.
    pub file_id: FileId,
    /// The size Telegram announced.
    pub size: u64,
    /// Its MIME type.
    pub mime: String,
    /// Its name (a photo has none: `photo.jpg`).
    pub file_name: String,
}

/// The file a message carries, if it is one WhatsApp can send: the largest size of a photo;
/// a document, video, voice note or audio as it is. A voice note is OGG/Opus in Telegram as
/// in WhatsApp, so it travels unchanged.
pub fn telegram_media(msg: &Message) -> Option<TgMedia> {
    fn mime_or<M: std::fmt::Display>(m: Option<&M>, d: &str) -> String {
        m.map(|m| m.to_string()).unwrap_or_else(|| d.to_string())
    }
    if let Some(p) = msg.photo().and_then(|s| s.iter().max_by_key(|p| p.width * p.height)) {
        return Some(TgMedia {
            kind: MediaKind::Photo,
            file_id: p.file.id.clone(),
            size: u64::from(p.file.size),
            mime: "image/jpeg".into(),
            file_name: "photo.jpg".into(),
        });
    }
    if let Some(d) = msg.document() {
        return Some(TgMedia {
            kind: MediaKind::Document,
            file_id: d.file.id.clone(),
            size: u64::from(d.file.size),
            mime: mime_or(d.mime_type.as_ref(), "application/octet-stream"),
            file_name: d.file_name.clone().unwrap_or_else(|| "file".into()),
        });
    }
    if let Some(v) = msg.video() {
        return Some(TgMedia {
            kind: MediaKind::Video,
            file_id: v.file.id.clone(),
            size: u64::from(v.file.size),
            mime: mime_or(v.mime_type.as_ref(), "video/mp4"),
            file_name: v.file_name.clone().unwrap_or_else(|| "video.mp4".into()),
        });
    }
    if let Some(v) = msg.voice() {
        return Some(TgMedia {
            kind: MediaKind::Voice,
            file_id: v.file.id.clone(),
            size: u64::from(v.file.size),
            // What WhatsApp clients expect of a voice note (whatsmeow and Baileys send
            // `audio/ogg; codecs=opus` with `ptt`); Telegram's voice notes are that codec.
            mime: "audio/ogg; codecs=opus".into(),
            file_name: "voice.ogg".into(),
        });
    }
    if let Some(a) = msg.audio() {
        return Some(TgMedia {
            kind: MediaKind::Audio,
            file_id: a.file.id.clone(),
            size: u64::from(a.file.size),
            mime: mime_or(a.mime_type.as_ref(), "audio/mpeg"),
            file_name: a.file_name.clone().unwrap_or_else(|| "audio.mp3".into()),
        });
    }
    None
}

/// The kind's name, lower case, for sentences.
pub fn kind_name(lang: Lang, kind: MediaKind) -> String {
    let (id, en) = match kind {
        MediaKind::Photo => ("foto", "photo"),
        MediaKind::Document => ("dokumen", "document"),
        MediaKind::Video => ("video", "video"),
        MediaKind::Voice => ("pesan suara", "voice note"),
        MediaKind::Audio => ("audio", "audio"),
    };
    t2(lang, id, en)
}

/// A size the way people read it: `850 KB`, `12.5 MB`.
pub fn size_text(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", bytes.div_ceil(1024).max(1))
    }
}

/// One line naming a file: `📎 Foto «photo.jpg», 12 KB`.
pub fn describe(lang: Lang, kind: MediaKind, file_name: &str, size: u64) -> String {
    let mut name = kind_name(lang, kind);
    if let Some(first) = name.get(..1) {
        name = first.to_uppercase() + &name[1..];
    }
    format!("📎 {name} «{}», {}", esc(file_name), size_text(size))
}

/// Why the file cannot be sent, before anything is fetched: over what the Bot API lets a
/// bot download, or over WhatsApp's limit for its kind (each named).
pub fn size_refusal(lang: Lang, m: &TgMedia) -> Option<String> {
    if m.size > TELEGRAM_DOWNLOAD_LIMIT {
        return Some(
            t2(
                lang,
                "File {size} terlalu besar: Telegram hanya mengizinkan bot mengunduh file sampai 20 MB.",
                "The file ({size}) is too large: Telegram lets bots download files of up to 20 MB only.",
            )
            .replace("{size}", &size_text(m.size)),
        );
    }
    over_whatsapp_limit(lang, m.kind, m.size)
}

/// Why WhatsApp will not take a file of `size` bytes of this kind, if it will not.
pub fn over_whatsapp_limit(lang: Lang, kind: MediaKind, size: u64) -> Option<String> {
    let limit = kind.limit();
    (size > limit).then(|| {
        t2(
            lang,
            "File {size} terlalu besar untuk WhatsApp: batas {kind} adalah {limit} MB.",
            "The file ({size}) is too large for WhatsApp: the limit for a {kind} is {limit} MB.",
        )
        .replace("{size}", &size_text(size))
        .replace("{kind}", &kind_name(lang, kind))
        .replace("{limit}", &(limit >> 20).to_string())
    })
}

/// Fetches the file from Telegram; `Err` carries the reason to show.
pub async fn fetch<R: Req>(bot: &R, lang: Lang, m: &TgMedia) -> Result<Vec<u8>, String> {
    if let Some(why) = size_refusal(lang, m) {
        return Err(why);
    }
    let failed = || {
        t2(
            lang,
            "File tidak bisa diambil dari Telegram; kirim lagi.",
            "The file could not be fetched from Telegram; send it again.",
        )
    };
    let file = bot.get_file(m.file_id.clone()).await.map_err(|e| {
        warn!(error = %e, "getFile failed");
        failed()
    })?;
    let mut buf = Vec::new();
    if let Err(e) = bot.download_file(&file.path, &mut buf).await {
        warn!(error = %e, "file download failed");
        return Err(failed());
    }
    if buf.is_empty() {
        return Err(t2(lang, "File kosong.", "The file is empty."));
    }
    // The announced size is Telegram's word; the bytes are what WhatsApp would get.
    if let Some(why) = over_whatsapp_limit(lang, m.kind, buf.len() as u64) {
        return Err(why);
    }
    Ok(buf)
}

// --- media2 ---

/// Telegram's limit on a caption (characters after parsing).
const MAX_CAPTION: usize = 1024;

/// What the first recipient sees with the file: the text with their name put in and one
/// choice of every variation; nothing for a voice note (WhatsApp shows none with one).
pub fn caption_as_sent(m: &JobMedia, text: &str, first: Option<&str>) -> String {
    if m.kind == MediaKind::Voice {
        return String::new();
    }
    match first {
        Some(item) => crate::jobs::render(text, item, &mut rand::thread_rng()),
        None => text.to_string(),
    }
}

/// The broadcast's file shown back to the user before its confirmation (Telegram's copy, by
/// its ID: nothing uploaded again), with the caption the first recipient gets; the
/// confirmation with its buttons follows directly. True when it was shown.
pub(crate) async fn preview<R: Req>(bot: &R, app: &App, c: &Caller, kind: &JobKind, items: &[String]) -> bool {
    let JobKind::Broadcast { text, media: Some(m) } = kind else {
        return false;
    };
    let Some(id) = m.tg_file_id.clone() else {
        return false;
    };
    let mut caption = caption_as_sent(m, text, items.first().map(String::as_str));
    if caption.chars().count() > MAX_CAPTION {
        caption = caption.chars().take(MAX_CAPTION - 1).collect::<String>() + "…";
    }
    send_file_by_id(bot, app.manager(), c.chat, m.kind, FileId(id), &caption, None)
        .await
        .is_some()
}

/// Sends a stored broadcast file with `caption` to `to` (the account's own number for a test):
/// with the job's upload when it has one, else uploaded from the account's folder (the bytes
/// checked against the job's hash first, as the job does). Returns the message ID and the
/// upload made here, if one was.
pub async fn send_stored(
    s: &dyn WaSession,
    acc: &Account,
    m: &JobMedia,
    to: &ChatTarget,
    caption: &str,
) -> Result<(String, Option<MediaRef>), WaError> {
    if let Some(u) = &m.uploaded {
        return Ok((s.send_uploaded(to, u, caption).await?, None));
    }
    let path = crate::jobs::media_dir(acc).join(&m.file);
    let bytes = crate::db::blocking(move || std::fs::read(&path).map_err(|e| crate::db::DbError::Task(e.to_string())))
        .await
        .map_err(|e| WaError::Storage(format!("the broadcast's file: {e}")))?;
    if crate::wa::sha256_hex(&bytes) != m.sha256 {
        return Err(WaError::Storage("the broadcast's file changed on disk".into()));
    }
    let uploaded = s.upload_media(m.kind, &bytes, &m.mime, &m.file_name).await?;
    let id = s.send_uploaded(to, &uploaded, caption).await?;
    Ok((id, Some(uploaded)))
}

/// The task that takes the files of prompts left to expire (checked as often as a prompt
/// can expire, at most every minute), until `shutdown`.
pub async fn expire_prompt_files(app: App, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let every = app
        .prompt_timeout()
        .clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let n = app.expire_prompt_files();
                if n > 0 {
                    tracing::debug!(n, "files of expired prompts deleted");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_named_in_both_languages() {
        let big = TgMedia {
            kind: MediaKind::Video,
            file_id: FileId("x".into()),
            size: 25 * 1024 * 1024,
            mime: "video/mp4".into(),
            file_name: "v.mp4".into(),
        };
        assert!(size_refusal(Lang::Id, &big).unwrap().contains("20 MB"));
        assert!(size_refusal(Lang::En, &big).unwrap().contains("20 MB"));
        let over = TgMedia {
            size: 17 * 1024 * 1024,
            ..big.clone()
        };
        assert!(size_refusal(Lang::Id, &over).unwrap().contains("16 MB"));
        assert!(size_refusal(Lang::En, &over).unwrap().contains("16 MB"));
        let doc = TgMedia {
            kind: MediaKind::Document,
            ..over
        };
        assert_eq!(size_refusal(Lang::En, &doc), None, "documents may be up to 100 MB");
        assert_eq!(size_text(1000), "1 KB");
        assert_eq!(size_text(3 * 1024 * 1024 / 2), "1.5 MB");
    }
}
