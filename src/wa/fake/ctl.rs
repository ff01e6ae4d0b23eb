//! The fake's control socket, `DATA_DIR/.fake/ctl.sock` (mode 0600, in the 0700 `.fake`
//! folder): `tgwa fake <verb>` writes one JSON request line ([`tgwa_fakewa::ctl::Request`])
//! and reads one JSON answer line. Served on the runtime by one accept task, each client
//! on a task of its own; the world's lock is held only as long as the verb takes.
//!
//! A socket left by a process that died is replaced at start; the file is removed when the
//! backend is dropped at shutdown ([`Served::stop`]).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tgwa_fakewa::ctl::{handle, Request, Response};
use tgwa_fakewa::FakeWhatsApp;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tracing::{debug, warn};

/// The socket's file name under the fake's folder.
pub const SOCKET: &str = "ctl.sock";

/// The longest request line read (a `send` text included).
const MAX_REQUEST: u64 = 256 * 1024;

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A control socket being served.
pub struct Served {
    path: PathBuf,
    stop: watch::Sender<bool>,
}

impl Served {
    /// Stops serving and removes the socket file.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        remove(&self.path);
    }
}

fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(error = %e, "could not remove the fake's control socket"),
    }
}

/// Binds `path` (replacing a stale socket there) and serves `fake` on `rt` until stopped.
pub fn serve(rt: &tokio::runtime::Handle, fake: FakeWhatsApp, path: &Path) -> std::io::Result<Served> {
    // Whatever is there is a leftover: a running fake on the same folder would be a second
    // `tgwa run` on one data directory, which the process lock already refuses.
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path)?;
    }
    let listener = {
        let _guard = rt.enter();
        UnixListener::bind(path)?
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let (stop, mut stopped) = watch::channel(false);
    rt.spawn(async move {
        loop {
            tokio::select! {
                res = listener.accept() => match res {
                    Ok((stream, _)) => {
                        tokio::spawn(answer(fake.clone(), stream));
                    }
                    Err(e) => {
                        warn!(error = %e, "the fake's control socket failed");
                        break;
                    }
                },
                _ = stopped.changed() => break,
            }
        }
    });
    Ok(Served {
        path: path.to_path_buf(),
        stop,
    })
}

/// Reads one request from `stream` and writes the answer.
async fn answer(fake: FakeWhatsApp, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    let response = match tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                debug!(?req, "fake control request");
                // The backend's rule for who is on WhatsApp holds here too: a number not
                // ending `00` may write.
                if let Request::Send { from, .. } = &req {
                    if !from.ends_with("00") {
                        fake.add_user(from);
                    }
                }
                handle(&fake, req)
            }
            Err(e) => refused(format!("not a request: {e}")),
        },
        Ok(Err(e)) => refused(format!("could not read the request: {e}")),
        Err(_) => refused("no request in time".to_string()),
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_default();
    out.push(b'\n');
    if let Err(e) = write.write_all(&out).await {
        debug!(error = %e, "the control client went away");
    }
}

fn refused(message: String) -> Response {
    Response {
        ok: false,
        message,
        data: serde_json::Value::Null,
    }
}
