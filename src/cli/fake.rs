//! `tgwa fake <verb>`: one request to the control socket of the fake WhatsApp of the
//! `tgwa run` that uses the same data directory (`DATA_DIR/.fake/ctl.sock`, see
//! `wa::fake::ctl`). Exit 0 done, 1 refused by the fake world, 2 no fake running there, bad
//! arguments, or a build without the fake.
//!
//! The verbs and the wire format exist in every build (a blocking Unix socket and JSON, no
//! runtime); only a build with `insecure-fake-whatsapp` has a fake to talk to.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::config::Config;
use crate::ids::PhoneNumber;

/// How long to wait for the fake's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the fake world is asked to do.
#[derive(Debug, Clone, Subcommand)]
pub enum FakeVerb {
    /// WhatsApp bans the number (for good, locked, or for a while): its stream ends and
    /// every later login is refused.
    Ban {
        number: String,
        /// A temporary ban of this many seconds.
        #[arg(long, value_name = "SECS", conflicts_with = "lock")]
        temporary: Option<u64>,
        /// The account is locked instead of banned.
        #[arg(long)]
        lock: bool,
    },
    /// Messages from the number to contacts that never wrote to it are refused (463).
    Timelock {
        number: String,
        #[arg(long = "for", value_name = "SECS")]
        secs: u64,
    },
    /// The number's contact queries (`usync`) or group operations (`groups`) get 429.
    RateLimit {
        number: String,
        #[arg(value_parser = ["usync", "groups"])]
        scope: String,
        #[arg(long = "for", value_name = "SECS")]
        secs: u64,
    },
    /// The linked device logs in elsewhere: this session is replaced.
    Replace { number: String },
    /// The phone removes the linked device.
    Unlink { number: String },
    /// The number loses its connection and cannot connect again until `online`.
    Offline { number: String },
    /// The number may connect again.
    Online { number: String },
    /// A WhatsApp user writes to an account or a group.
    Send {
        #[arg(long)]
        from: String,
        /// A number, or a group id (`...@g.us`).
        #[arg(long)]
        to: String,
        text: String,
    },
    /// What the server accepted, and what the recipients' phones read.
    Sent,
    // --- members ---
    /// A WhatsApp user asks to join a group that needs an admin's approval.
    RequestJoin {
        /// The group id (`...@g.us`).
        group: String,
        number: String,
    },
    // --- proxy2 ---
    /// How clients reached the fake: the sockets its WebSocket and media listeners accepted,
    /// and the connections and media requests that came in-process.
    Ingress,
}

/// Runs `verb` against the fake under `config`'s data directory; returns the exit code.
pub fn run(config: &Config, verb: FakeVerb, json: bool) -> i32 {
    if !cfg!(feature = "insecure-fake-whatsapp") {
        eprintln!("tgwa: this build has no fake WhatsApp (build with --features insecure-fake-whatsapp)");
        return 2;
    }
    let request = match request(config, verb) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tgwa: {e}");
            return 2;
        }
    };
    let socket = socket_path(config);
    let answer = match ask(&socket, &request) {
        Ok(a) => a,
        Err(Unreachable(why)) => {
            eprintln!("tgwa: no fake WhatsApp is running on this data directory ({why})");
            return 2;
        }
    };
    print(&answer, json);
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        0
    } else {
        1
    }
}

/// The control socket a `tgwa run` with this configuration serves, if it runs the fake.
pub fn socket_of(config: &Config) -> Option<std::path::PathBuf> {
    (config.wa_backend == crate::config::WaBackendKind::Fake).then(|| socket_path(config))
}

/// Removes the control socket left at `path`, if any.
pub fn remove_socket(path: Option<&std::path::Path>) {
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}

fn socket_path(config: &Config) -> std::path::PathBuf {
    crate::layout::Layout::new(&config.data_dir).fake_dir().join("ctl.sock")
}

/// A number as the rest of tgwa reads it, as digits.
fn number(config: &Config, input: &str) -> Result<String, String> {
    PhoneNumber::parse(input, &config.default_country_code)
        .map(|p| p.digits().to_string())
        .map_err(|e| format!("{input:?} is not a phone number: {e}"))
}

/// The JSON request for `verb`.
fn request(config: &Config, verb: FakeVerb) -> Result<Value, String> {
    let n = |s: &str| number(config, s);
    Ok(match verb {
        FakeVerb::Ban {
            number,
            temporary,
            lock,
        } => {
            json!({ "verb": "ban", "number": n(&number)?, "temporary": temporary, "lock": lock })
        }
        FakeVerb::Timelock { number, secs } => json!({ "verb": "timelock", "number": n(&number)?, "secs": secs }),
        FakeVerb::RateLimit { number, scope, secs } => {
            json!({ "verb": "rate-limit", "number": n(&number)?, "scope": scope, "secs": secs })
        }
        FakeVerb::Replace { number } => json!({ "verb": "replace", "number": n(&number)? }),
        FakeVerb::Unlink { number } => json!({ "verb": "unlink", "number": n(&number)? }),
        FakeVerb::Offline { number } => json!({ "verb": "offline", "number": n(&number)? }),
        FakeVerb::Online { number } => json!({ "verb": "online", "number": n(&number)? }),
        FakeVerb::Send { from, to, text } => {
            let to = if to.trim().ends_with("@g.us") {
                to.trim().to_string()
            } else {
                n(&to)?
            };
            json!({ "verb": "send", "from": n(&from)?, "to": to, "text": text })
        }
        FakeVerb::Sent => json!({ "verb": "sent" }),
        // --- members ---
        FakeVerb::RequestJoin { group, number } => {
            let group = crate::wa::GroupId::parse(group.trim()).ok_or_else(|| format!("not a group id: {group}"))?;
            json!({ "verb": "request-join", "group": group.as_str(), "number": n(&number)? })
        }
        // --- proxy2 ---
        FakeVerb::Ingress => json!({ "verb": "ingress" }),
    })
}

/// Why the fake could not be asked.
struct Unreachable(String);

/// Sends `request` and reads the answer.
fn ask(socket: &std::path::Path, request: &Value) -> Result<Value, Unreachable> {
    let mut stream = UnixStream::connect(socket).map_err(|e| Unreachable(e.to_string()))?;
    let gone = |e: std::io::Error| Unreachable(format!("the fake went away: {e}"));
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(gone)?;
    let mut line = serde_json::to_vec(request).map_err(|e| Unreachable(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(gone)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(gone)?;
    serde_json::from_str(&answer).map_err(|e| Unreachable(format!("not an answer from a fake: {e}")))
}

/// Prints the answer: as JSON, or its line (and, for `sent`, one line per message).
fn print(answer: &Value, json: bool) {
    if json {
        println!("{answer}");
        return;
    }
    let message = answer.get("message").and_then(Value::as_str).unwrap_or_default();
    if answer.get("ok").and_then(Value::as_bool) != Some(true) {
        eprintln!("tgwa: the fake refused: {message}");
        return;
    }
    println!("{message}");
    if let Some(list) = answer.get("data").and_then(Value::as_array) {
        for m in list {
            let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
            println!(
                "{} {} -> {}: {}",
                field("id"),
                field("from"),
                field("to"),
                field("text")
            );
        }
    }
}
