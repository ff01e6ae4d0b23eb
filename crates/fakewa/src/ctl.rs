//! The control protocol of a running fake: one JSON request, one JSON answer. tgwa serves
//! it on a Unix socket (`tgwa fake <verb>`); the world's side is here so every verb means
//! the same as the method it calls.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Ban, FakeWhatsApp, RateScope};

/// What a control client asks. Numbers are digits, country code first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "kebab-case")]
pub enum Request {
    /// [`FakeWhatsApp::ban`]: banned for good, locked (`lock`), or for `temporary` seconds.
    Ban {
        number: String,
        #[serde(default)]
        temporary: Option<u64>,
        #[serde(default)]
        lock: bool,
    },
    /// [`FakeWhatsApp::timelock`] for `secs` seconds.
    Timelock { number: String, secs: u64 },
    /// [`FakeWhatsApp::rate_limit`] of `scope` (`usync` or `groups`) for `secs` seconds.
    RateLimit { number: String, scope: String, secs: u64 },
    /// [`FakeWhatsApp::replace_session`].
    Replace { number: String },
    /// [`FakeWhatsApp::unlink`].
    Unlink { number: String },
    /// [`FakeWhatsApp::set_number_offline`] `true`.
    Offline { number: String },
    /// [`FakeWhatsApp::set_number_offline`] `false`.
    Online { number: String },
    /// [`FakeWhatsApp::send_from`]: `to` is digits or a group JID.
    Send { from: String, to: String, text: String },
    /// [`FakeWhatsApp::sent_messages`].
    Sent,
    // --- members ---
    /// [`FakeWhatsApp::request_to_join`]: `number` asks to join `group` (a `...@g.us` JID).
    RequestJoin { group: String, number: String },
    // --- proxy2 ---
    /// [`FakeWhatsApp::ingress`]: how clients reached the server.
    Ingress,
}

/// The answer: `ok` with a short line (and data for `sent`), or refused with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the world did it.
    pub ok: bool,
    /// One line for a person: what was done, or why not.
    pub message: String,
    /// Details: the message id of a `send`, the messages of `sent`.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    fn done(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            message: message.into(),
            data: serde_json::Value::Null,
        }
    }

    fn refused(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
            data: serde_json::Value::Null,
        }
    }
}

/// The number a request names, when the world knows it.
fn known(fake: &FakeWhatsApp, number: &str) -> Result<(), Response> {
    if fake.is_user(number) {
        Ok(())
    } else {
        Err(Response::refused(format!("{number} is not on the fake WhatsApp")))
    }
}

/// Does what `req` asks to `fake`.
pub fn handle(fake: &FakeWhatsApp, req: Request) -> Response {
    match run(fake, req) {
        Ok(r) | Err(r) => r,
    }
}

fn run(fake: &FakeWhatsApp, req: Request) -> Result<Response, Response> {
    Ok(match req {
        Request::Ban {
            number,
            temporary,
            lock,
        } => {
            known(fake, &number)?;
            let (ban, what) = match (temporary, lock) {
                (Some(_), true) => return Err(Response::refused("a ban is either temporary or a lock, not both")),
                (Some(secs), false) => (Ban::Temporary { code: 101, secs }, format!("banned for {secs} s")),
                (None, true) => (Ban::Locked, "locked".to_string()),
                (None, false) => (Ban::Banned, "banned".to_string()),
            };
            let n = fake.ban(&number, ban);
            Response::done(format!("{number} {what}; {n} stream(s) ended"))
        }
        Request::Timelock { number, secs } => {
            known(fake, &number)?;
            fake.timelock(&number, Duration::from_secs(secs));
            Response::done(format!("{number} may not write to new contacts for {secs} s"))
        }
        Request::RateLimit { number, scope, secs } => {
            known(fake, &number)?;
            let s = match scope.as_str() {
                "usync" => RateScope::Usync,
                "groups" => RateScope::Groups,
                other => return Err(Response::refused(format!("unknown scope {other} (usync or groups)"))),
            };
            fake.rate_limit(&number, s, Duration::from_secs(secs));
            Response::done(format!("{number} rate-limited ({scope}) for {secs} s"))
        }
        Request::Replace { number } => {
            known(fake, &number)?;
            let n = fake.replace_session(&number);
            if n == 0 {
                return Err(Response::refused(format!("{number} has no open session to replace")));
            }
            Response::done(format!("{number}: {n} session(s) replaced"))
        }
        Request::Unlink { number } => {
            known(fake, &number)?;
            if !fake.has_linked_device(&number) {
                return Err(Response::refused(format!("{number} has no linked device")));
            }
            let n = fake.unlink(&number);
            Response::done(format!("{number}: linked device removed; {n} stream(s) ended"))
        }
        Request::Offline { number } => {
            known(fake, &number)?;
            fake.set_number_offline(&number, true);
            Response::done(format!("{number} is offline"))
        }
        Request::Online { number } => {
            known(fake, &number)?;
            fake.set_number_offline(&number, false);
            Response::done(format!("{number} is online again"))
        }
        Request::Send { from, to, text } => {
            let id = fake
                .send_from(&from, &to, &text)
                .map_err(|e| Response::refused(e.to_string()))?;
            let mut r = Response::done(format!("sent {id} from {from} to {to}"));
            r.data = serde_json::json!({ "id": id });
            r
        }
        Request::Sent => {
            let sent = fake.sent_messages();
            let mut r = Response::done(format!("{} message(s) accepted", sent.len()));
            r.data = serde_json::to_value(&sent).unwrap_or_default();
            r
        }
        // --- members ---
        Request::RequestJoin { group, number } => {
            if fake.group(&group).is_none() {
                return Err(Response::refused(format!("there is no group {group}")));
            }
            fake.request_to_join(&group, &number);
            Response::done(format!("{number} asked to join {group}"))
        }
        // --- proxy2 ---
        Request::Ingress => {
            let i = fake.ingress();
            let mut r = Response::done(format!(
                "{} WebSocket and {} HTTP socket(s) accepted; {} in-process connection(s), {} in-process HTTP request(s)",
                i.ws_peers.len(),
                i.http_peers.len(),
                i.in_process_conns,
                i.in_process_http
            ));
            r.data = serde_json::to_value(&i).unwrap_or_default();
            r
        }
    })
}
