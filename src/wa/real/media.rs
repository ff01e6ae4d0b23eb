//! Media over whatsapp-rust: one encrypted upload (`Client::upload`, which asks the server
//! for a media connection and posts to its hosts through the client's HTTP client), and the
//! message protobufs that carry the upload's reference to any number of chats.

use std::time::Duration;

use whatsapp_rust::download::MediaType;
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::waproto::whatsapp::{message, Message};

use super::RealSession;
use crate::wa::{MediaKind, MediaRef, WaError};

/// Bound on one upload: the file may be 100 MB on a slow link.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// The media type an upload of `kind` is encrypted and posted as (its HKDF info string and
/// `/mms/<type>` path, wacore `MediaType`).
fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Photo => MediaType::Image,
        MediaKind::Document => MediaType::Document,
        MediaKind::Video => MediaType::Video,
        MediaKind::Voice | MediaKind::Audio => MediaType::Audio,
    }
}

/// Encrypts and uploads `bytes` once; the reference can then be sent to every recipient.
pub(super) async fn upload(
    s: &RealSession,
    kind: MediaKind,
    bytes: &[u8],
    mime: &str,
    file_name: &str,
) -> Result<MediaRef, WaError> {
    if bytes.is_empty() {
        return Err(WaError::Invalid("an empty file cannot be sent".into()));
    }
    if bytes.len() as u64 > kind.limit() {
        return Err(WaError::Invalid(format!(
            "the file is over WhatsApp's {} MB limit",
            kind.limit() >> 20
        )));
    }
    s.ready().await?;
    let up = s
        .client
        .upload(bytes.to_vec(), media_type(kind), UploadOptions::default());
    let r = match tokio::time::timeout(UPLOAD_TIMEOUT, up).await {
        Err(_) => return Err(WaError::Timeout),
        // Any upload failure (a host down, auth refused twice) sent nothing to anyone and
        // may pass: the caller may try again later.
        Ok(Err(e)) => return Err(WaError::Other(format!("uploading the file: {e:#}"))),
        Ok(Ok(r)) => r,
    };
    Ok(MediaRef {
        kind,
        mime: mime.to_string(),
        file_name: file_name.to_string(),
        size: r.file_length,
        url: r.url,
        direct_path: r.direct_path,
        media_key: r.media_key.to_vec(),
        file_sha256: r.file_sha256.to_vec(),
        file_enc_sha256: r.file_enc_sha256.to_vec(),
        media_key_timestamp: r.media_key_timestamp,
        streaming_sidecar: r.streaming_sidecar,
    })
}

/// The message that carries `m` with `caption`: an image, document, video or audio message
/// built from the upload's reference, as whatsmeow's and Baileys' senders build them. A
/// voice note is an audio message with `ptt` (push to talk), which WhatsApp plays inline;
/// audio messages have no caption.
pub(super) fn message(m: &MediaRef, caption: &str) -> Message {
    let caption = (!caption.trim().is_empty()).then(|| caption.to_string());
    let mut out = Message::default();
    match m.kind {
        MediaKind::Photo => {
            out.image_message = message::ImageMessage {
                url: Some(m.url.clone()),
                mimetype: Some(m.mime.clone()),
                caption,
                file_sha256: Some(m.file_sha256.clone()),
                file_length: Some(m.size),
                media_key: Some(m.media_key.clone()),
                file_enc_sha256: Some(m.file_enc_sha256.clone()),
                direct_path: Some(m.direct_path.clone()),
                media_key_timestamp: Some(m.media_key_timestamp),
                ..Default::default()
            }
            .into();
        }
        MediaKind::Document => {
            out.document_message = message::DocumentMessage {
                url: Some(m.url.clone()),
                mimetype: Some(m.mime.clone()),
                title: Some(m.file_name.clone()),
                file_name: Some(m.file_name.clone()),
                caption,
                file_sha256: Some(m.file_sha256.clone()),
                file_length: Some(m.size),
                media_key: Some(m.media_key.clone()),
                file_enc_sha256: Some(m.file_enc_sha256.clone()),
                direct_path: Some(m.direct_path.clone()),
                media_key_timestamp: Some(m.media_key_timestamp),
                ..Default::default()
            }
            .into();
        }
        MediaKind::Video => {
            out.video_message = message::VideoMessage {
                url: Some(m.url.clone()),
                mimetype: Some(m.mime.clone()),
                caption,
                file_sha256: Some(m.file_sha256.clone()),
                file_length: Some(m.size),
                media_key: Some(m.media_key.clone()),
                file_enc_sha256: Some(m.file_enc_sha256.clone()),
                direct_path: Some(m.direct_path.clone()),
                media_key_timestamp: Some(m.media_key_timestamp),
                streaming_sidecar: m.streaming_sidecar.clone(),
                ..Default::default()
            }
            .into();
        }
        MediaKind::Voice | MediaKind::Audio => {
            out.audio_message = message::AudioMessage {
                url: Some(m.url.clone()),
                mimetype: Some(m.mime.clone()),
                file_sha256: Some(m.file_sha256.clone()),
                file_length: Some(m.size),
                media_key: Some(m.media_key.clone()),
                file_enc_sha256: Some(m.file_enc_sha256.clone()),
                direct_path: Some(m.direct_path.clone()),
                media_key_timestamp: Some(m.media_key_timestamp),
                streaming_sidecar: m.streaming_sidecar.clone(),
                ptt: Some(m.kind == MediaKind::Voice),
                ..Default::default()
            }
            .into();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploaded(kind: MediaKind) -> MediaRef {
        MediaRef {
            kind,
            mime: "audio/ogg; codecs=opus".into(),
            file_name: "voice.ogg".into(),
            size: 10,
            url: "https://mmg.whatsapp.net/x".into(),
            direct_path: "/v/x".into(),
            media_key: vec![1; 32],
            file_sha256: vec![2; 32],
            file_enc_sha256: vec![3; 32],
            media_key_timestamp: 5,
            streaming_sidecar: None,
        }
    }

    #[test]
    fn a_voice_note_is_push_to_talk_audio_without_a_caption() {
        let m = message(&uploaded(MediaKind::Voice), "ignored");
        let a = m.audio_message.as_option().expect("an audio message");
        assert_eq!(a.ptt, Some(true));
        assert_eq!(a.mimetype.as_deref(), Some("audio/ogg; codecs=opus"));
        assert_eq!(a.direct_path.as_deref(), Some("/v/x"));
        let m = message(&uploaded(MediaKind::Audio), "");
        assert_eq!(m.audio_message.as_option().and_then(|a| a.ptt), Some(false));
        let m = message(&uploaded(MediaKind::Photo), "Halo");
        assert_eq!(
            m.image_message.as_option().and_then(|i| i.caption.clone()).as_deref(),
            Some("Halo")
        );
    }
}
