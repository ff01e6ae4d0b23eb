//! The media servers: the `media_conn` query that hands a client its upload token and
//! hosts, the HTTPS upload and download endpoints (served in-process through
//! whatsapp-rust's `HttpClient` trait, so nothing touches a network), and what a fake phone
//! does with a media message it receives: download the encrypted file and decrypt it.
//!
//! Resumable uploads: whatsapp-rust 0.7 asks first, for every encrypted file of 5 MiB or more
//! (`upload.rs`, `RESUMABLE_UPLOAD_THRESHOLD`, after WA Web's `_checkIfAlreadyUploaded`),
//! whether its token is already on the server; the fake answers "complete" for a token it
//! holds (see `resume_check`). Not modelled: a partly received upload (the fake never
//! keeps part of a body, so it never answers an offset and never sees `file_offset`),
//! expiring URLs (404/410 on download), host fallback, thumbnails and streaming sidecars'
//! contents.

use std::collections::HashMap;

use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};
use wacore::download::{DownloadUtils, MediaType};
use wacore::iq::mediaconn::{HostType, MediaConnHostExtended, MediaConnResponseExtended};
use wacore::protocol::ProtocolNode;
use wacore_binary::Node;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse};

use crate::world::{result, World};
use crate::FakeWhatsApp;

/// The host the fake's `media_conn` names (WhatsApp's own primary media host name).
pub const MEDIA_HOST: &str = "mmg.whatsapp.net";

/// Files uploaded to the media servers. In memory only: the state file does not keep them.
#[derive(Default)]
pub(crate) struct MediaStore {
    /// The `auth` token the last `media_conn` answer handed out; uploads must carry it.
    pub auth: String,
    /// Encrypted files by direct path.
    pub files: HashMap<String, Vec<u8>>,
    /// Uploads accepted, oldest first.
    pub uploads: Vec<Upload>,
    // --- media2 ---
    /// The direct path of every accepted upload, by its token (for the resume check).
    pub by_token: HashMap<String, String>,
}

/// One accepted upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// `image`, `audio`, `video`, `document` (the `/mms/<type>` it was posted to).
    pub mms_type: String,
    /// Its direct path.
    pub direct_path: String,
    /// Encrypted size in bytes.
    pub size: usize,
}

/// What a recipient's phone found in a media message it received: the message's fields and
/// the file it downloaded and decrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMedia {
    /// `image`, `video`, `audio` or `document`.
    pub kind: String,
    /// The message's MIME type.
    pub mime: String,
    /// An audio message's push-to-talk flag (a voice note).
    pub ptt: bool,
    /// The caption, if any.
    pub caption: Option<String>,
    /// The document's file name, if any.
    pub file_name: Option<String>,
    /// SHA-256 (hex) of the decrypted file; `None` when the phone could not download or
    /// decrypt it.
    pub sha256: Option<String>,
    /// Size of the decrypted file.
    pub size: usize,
    /// Where the file lies on the media servers: one path for every message that carried
    /// the same upload.
    pub direct_path: Option<String>,
}

/// `<iq xmlns="w:m" type="set"><media_conn/></iq>` answered with a token and hosts, in the
/// shape whatsmeow's `queryMediaConn` (`mediaconn.go`) and Baileys' `refreshMediaConn`
/// read: `<media_conn auth=… ttl=… auth_ttl=… max_buckets=…>` with `<host hostname=…>`
/// children (wacore `MediaConnResponseExtended`). No public source gives the values the
/// server uses; the TTLs here are an hour. The token changes on every query, as a refreshed
/// one does after the client's 401/403 (whatsapp-rust `is_media_auth_error`).
pub(crate) fn media_conn(fake: &FakeWhatsApp, iq: &Node) -> Node {
    let auth = crate::world::random_token(40);
    fake.world().media.auth = auth.clone();
    let hosts = vec![
        MediaConnHostExtended::primary(
            MEDIA_HOST.into(),
            "mmg-fna.whatsapp.net".into(),
            "127.0.0.1".into(),
            "::1".into(),
            vec!["image".into(), "video".into(), "audio".into(), "document".into()],
            Vec::new(),
        ),
        MediaConnHostExtended::simple("mmg-fallback.whatsapp.net".into(), HostType::Fallback),
    ];
    let node = MediaConnResponseExtended::mock(auth, 3600, hosts).into_node();
    result(iq, vec![node])
}

/// whatsapp-rust's HTTP client, answered by the fake's media servers in-process.
#[derive(Clone)]
pub struct FakeMediaHttp {
    pub(crate) fake: FakeWhatsApp,
}

#[async_trait]
impl HttpClient for FakeMediaHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        self.fake.note_ingress(|i| i.in_process_http += 1);
        Ok(serve(&self.fake, &request))
    }
}

/// One request to the media hosts, however it arrived (in-process, or on the loopback
/// HTTP listener of `ws.rs`).
pub(crate) fn serve(fake: &FakeWhatsApp, request: &HttpRequest) -> HttpResponse {
    let (host, path, query) = split_url(&request.url);
    let mut w = fake.world();
    if host != MEDIA_HOST {
        // Nothing else is served (app-state blobs, version checks): the fake has no
        // network behind it.
        return status(404);
    }
    if request.method == "POST" {
        return upload(&mut w, path, &query, request.body.as_deref().unwrap_or(&[]));
    }
    match w.media.files.get(path) {
        Some(bytes) => HttpResponse {
            status_code: 200,
            body: bytes.clone(),
        },
        None => status(404),
    }
}

/// A POST to `/mms/<type>/<token>?auth=…&token=…` (whatsapp-rust `build_upload_request`,
/// whatsmeow `upload.go`): the token is the base64url SHA-256 of the encrypted body, the
/// auth the one `media_conn` handed out (401 otherwise, which makes the client refresh
/// it). The answer is the JSON whatsmeow's `UploadResponse` and whatsapp-rust's
/// `RawUploadResponse` read: `url` and `direct_path`.
fn upload(w: &mut World, path: &str, query: &HashMap<String, String>, body: &[u8]) -> HttpResponse {
    let Some(rest) = path.strip_prefix("/mms/") else {
        return status(404);
    };
    let (mms_type, token) = rest.split_once('/').unwrap_or((rest, ""));
    if query.get("auth").map(String::as_str) != Some(w.media.auth.as_str()) || w.media.auth.is_empty() {
        return status(401);
    }
    if query.contains_key("resume") {
        return resume_check(w, token);
    }
    let digest = crate::world::sha256(body);
    if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) != token || body.is_empty() {
        return status(400);
    }
    let n = w.media.uploads.len() + 1;
    // Real direct paths look like `/v/t62.7117-24/<ids>.enc?ccb=…&oh=…&oe=…`; the query is
    // left out because whatsapp-rust appends its own with `?`.
    let direct_path = format!("/v/t62.7117-24/{n}_{}.enc", &token[..token.len().min(16)]);
    w.media.files.insert(direct_path.clone(), body.to_vec());
    w.media.uploads.push(Upload {
        mms_type: mms_type.to_string(),
        direct_path: direct_path.clone(),
        size: body.len(),
    });
    w.media.by_token.insert(token.to_string(), direct_path.clone());
    let json = serde_json::json!({
        "url": format!("https://{MEDIA_HOST}{direct_path}"),
        "direct_path": direct_path,
    });
    HttpResponse {
        status_code: 200,
        body: json.to_string().into_bytes(),
    }
}

// --- media2 ---
/// The `?resume=1` check (whatsapp-rust `build_resume_check_request`): for a token the server
/// already holds in full, `{"resume":"complete","url":…,"direct_path":…}`, the JSON
/// whatsapp-rust's `UploadProgressResponse` reads, and the client takes that upload without
/// sending the body again. For a token it does not hold no source says what the server
/// sends; the fake keeps answering 404, which `parse_upload_progress` (any status >= 400)
/// reads as "not found: upload from the start".
fn resume_check(w: &World, token: &str) -> HttpResponse {
    let Some(direct_path) = w.media.by_token.get(token) else {
        return status(404);
    };
    let json = serde_json::json!({
        "resume": "complete",
        "url": format!("https://{MEDIA_HOST}{direct_path}"),
        "direct_path": direct_path,
    });
    HttpResponse {
        status_code: 200,
        body: json.to_string().into_bytes(),
    }
}

fn status(code: u16) -> HttpResponse {
    HttpResponse {
        status_code: code,
        body: Vec::new(),
    }
}

/// `https://host/path?a=b&c=d` into its host, path and query.
fn split_url(url: &str) -> (&str, &str, HashMap<String, String>) {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let (host, path_q) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (path, q) = path_q.split_once('?').unwrap_or((path_q, ""));
    let query = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (host, path, query)
}

/// What a phone makes of `m` if it carries a file: the message's fields, and the file
/// downloaded from the media servers, checked against `file_enc_sha256` and decrypted with
/// `media_key` (wacore `DownloadUtils::verify_and_decrypt`, as any client does).
pub(crate) fn received(w: &World, m: &waproto::whatsapp::Message) -> Option<ReceivedMedia> {
    struct Fields<'a> {
        kind: &'static str,
        ty: MediaType,
        mime: &'a Option<String>,
        direct_path: &'a Option<String>,
        media_key: &'a Option<Vec<u8>>,
        enc_sha: &'a Option<Vec<u8>>,
        file_sha: &'a Option<Vec<u8>>,
        caption: Option<String>,
        file_name: Option<String>,
        ptt: bool,
    }
    let f = if let Some(i) = m.image_message.as_option() {
        Fields {
            kind: "image",
            ty: MediaType::Image,
            mime: &i.mimetype,
            direct_path: &i.direct_path,
            media_key: &i.media_key,
            enc_sha: &i.file_enc_sha256,
            file_sha: &i.file_sha256,
            caption: i.caption.clone(),
            file_name: None,
            ptt: false,
        }
    } else if let Some(v) = m.video_message.as_option() {
        Fields {
            kind: "video",
            ty: MediaType::Video,
            mime: &v.mimetype,
            direct_path: &v.direct_path,
            media_key: &v.media_key,
            enc_sha: &v.file_enc_sha256,
            file_sha: &v.file_sha256,
            caption: v.caption.clone(),
            file_name: None,
            ptt: false,
        }
    } else if let Some(a) = m.audio_message.as_option() {
        Fields {
            kind: "audio",
            ty: MediaType::Audio,
            mime: &a.mimetype,
            direct_path: &a.direct_path,
            media_key: &a.media_key,
            enc_sha: &a.file_enc_sha256,
            file_sha: &a.file_sha256,
            caption: None,
            file_name: None,
            ptt: a.ptt.unwrap_or(false),
        }
    } else if let Some(d) = m.document_message.as_option() {
        Fields {
            kind: "document",
            ty: MediaType::Document,
            mime: &d.mimetype,
            direct_path: &d.direct_path,
            media_key: &d.media_key,
            enc_sha: &d.file_enc_sha256,
            file_sha: &d.file_sha256,
            caption: d.caption.clone(),
            file_name: d.file_name.clone(),
            ptt: false,
        }
    } else {
        return None;
    };
    let plain = (|| {
        let enc = w.media.files.get(f.direct_path.as_deref()?)?;
        if f.enc_sha.as_deref() != Some(&crate::world::sha256(enc)[..]) {
            return None;
        }
        let plain = DownloadUtils::verify_and_decrypt(enc, f.media_key.as_deref()?, f.ty).ok()?;
        (f.file_sha.as_deref() == Some(&crate::world::sha256(&plain)[..])).then_some(plain)
    })();
    Some(ReceivedMedia {
        kind: f.kind.to_string(),
        mime: f.mime.clone().unwrap_or_default(),
        ptt: f.ptt,
        caption: f.caption,
        file_name: f.file_name,
        size: plain.as_ref().map_or(0, Vec::len),
        direct_path: f.direct_path.clone(),
        sha256: plain.map(|p| hex(&crate::world::sha256(&p))),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The phone of `from` sends a photo (`image`) or a document to `to`, as a phone does:
/// encrypts the file (wacore `encrypt_media`), puts it on the media servers, and sends an
/// image or document message with its reference. Returns the message id.
pub(crate) fn send_file_from(
    fake: &FakeWhatsApp,
    from: &str,
    to: &str,
    kind: &str,
    bytes: &[u8],
    file_name: &str,
    caption: &str,
) -> anyhow::Result<String> {
    let ty = if kind == "image" {
        MediaType::Image
    } else {
        MediaType::Document
    };
    let enc = wacore::upload::encrypt_media(bytes, ty)?;
    let direct_path = {
        let mut w = fake.world();
        let n = w.media.uploads.len() + 1;
        let path = format!("/v/t62.7117-24/{n}_phone.enc");
        w.media.files.insert(path.clone(), enc.data_to_upload.clone());
        w.media.uploads.push(Upload {
            mms_type: ty.mms_type().to_string(),
            direct_path: path.clone(),
            size: enc.data_to_upload.len(),
        });
        path
    };
    let url = Some(format!("https://{MEDIA_HOST}{direct_path}"));
    let caption = (!caption.is_empty()).then(|| caption.to_string());
    let mut m = waproto::whatsapp::Message::default();
    if ty == MediaType::Image {
        m.image_message = waproto::whatsapp::message::ImageMessage {
            url,
            mimetype: Some("image/jpeg".into()),
            caption,
            file_sha256: Some(enc.file_sha256.to_vec()),
            file_length: Some(bytes.len() as u64),
            media_key: Some(enc.media_key.to_vec()),
            file_enc_sha256: Some(enc.file_enc_sha256.to_vec()),
            direct_path: Some(direct_path),
            ..Default::default()
        }
        .into();
    } else {
        m.document_message = waproto::whatsapp::message::DocumentMessage {
            url,
            mimetype: Some("application/pdf".into()),
            file_name: Some(file_name.to_string()),
            title: Some(file_name.to_string()),
            caption,
            file_sha256: Some(enc.file_sha256.to_vec()),
            file_length: Some(bytes.len() as u64),
            media_key: Some(enc.media_key.to_vec()),
            file_enc_sha256: Some(enc.file_enc_sha256.to_vec()),
            direct_path: Some(direct_path),
            ..Default::default()
        }
        .into();
    }
    crate::phone::send_message_from(fake, from, to, &m, crate::phone::SendOpts::default())
}

// --- media2 ---
#[cfg(test)]
mod resume_tests {
    use super::*;

    #[tokio::test]
    async fn the_resume_check_finds_a_token_already_uploaded_and_only_that() {
        let fake = FakeWhatsApp::new(crate::FakeOptions::default());
        fake.world().media.auth = "a1".into();
        let http = fake.http_client();
        let body: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::world::sha256(&body));
        let url = |extra: &str| format!("https://{MEDIA_HOST}/mms/document/{token}?auth=a1&token={token}{extra}");
        let before = http.execute(HttpRequest::post(url("&resume=1"))).await.unwrap();
        assert_eq!(before.status_code, 404, "nothing uploaded yet");
        let up = http
            .execute(HttpRequest::post(url("")).with_body(body.clone()))
            .await
            .unwrap();
        assert_eq!(up.status_code, 200);
        let up: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
        let check = http.execute(HttpRequest::post(url("&resume=1"))).await.unwrap();
        let check: serde_json::Value = serde_json::from_slice(&check.body).unwrap();
        assert_eq!(check["resume"], "complete");
        assert_eq!(check["direct_path"], up["direct_path"]);
        assert_eq!(check["url"], up["url"]);
        assert_eq!(fake.world().media.uploads.len(), 1, "the check stores nothing");
    }
}
