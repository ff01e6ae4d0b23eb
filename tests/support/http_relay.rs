//! A tiny HTTP `CONNECT` proxy on loopback (RFC 9110 section 9.3.6, with `Proxy-Authorization:
//! Basic` checked when it wants credentials), for proving that a client reached a server
//! only through it: it records the local address of every outbound connection it opens and
//! counts the bytes it carries. Anything but `CONNECT` is refused with 405.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running proxy; stops when dropped.
pub struct HttpRelay {
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Stats {
    /// The local address of each connection the proxy opened to a target.
    outbound: Mutex<Vec<SocketAddr>>,
    /// Bytes carried through tunnels, both ways.
    bytes: AtomicU64,
    /// Requests refused with 407 (missing or wrong credentials).
    refused: AtomicU64,
    /// The `host:port` of every tunnel asked for.
    targets: Mutex<Vec<String>>,
}

impl HttpRelay {
    /// Starts a proxy that wants `creds` (user, password), or none when `None`.
    pub async fn start(creds: Option<(&str, &str)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let stats = Arc::new(Stats::default());
        let want = creds.map(|(u, p)| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
        let st = stats.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, want.clone(), st.clone()));
            }
        });
        Self { addr, stats, task }
    }

    /// `http://[user:pass@]127.0.0.1:<port>`.
    pub fn url(&self, creds: Option<(&str, &str)>) -> String {
        match creds {
            Some((u, p)) => format!("http://{u}:{p}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// The local addresses of the connections it opened to targets.
    pub fn outbound(&self) -> Vec<SocketAddr> {
        self.stats.outbound.lock().unwrap().clone()
    }

    /// The `host:port` of every tunnel asked for, in order.
    pub fn targets(&self) -> Vec<String> {
        self.stats.targets.lock().unwrap().clone()
    }

    /// Bytes carried so far, both ways.
    pub fn bytes(&self) -> u64 {
        self.stats.bytes.load(Ordering::SeqCst)
    }

    /// Requests refused for missing or wrong credentials.
    pub fn refused(&self) -> u64 {
        self.stats.refused.load(Ordering::SeqCst)
    }
}

impl Drop for HttpRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the request head byte by byte (what follows it is already the tunnel's).
async fn read_head(c: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err(std::io::Error::other("request head too long"));
        }
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await?;
        head.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

async fn serve(mut c: TcpStream, want: Option<String>, st: Arc<Stats>) -> std::io::Result<()> {
    let head = read_head(&mut c).await?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let (method, target) = (first.next().unwrap_or_default(), first.next().unwrap_or_default());
    if method != "CONNECT" {
        c.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    let auth = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_string())
    });
    if let Some(want) = &want {
        if auth.as_deref().and_then(|a| a.strip_prefix("Basic ")) != Some(want.as_str()) {
            st.refused.fetch_add(1, Ordering::SeqCst);
            c.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"relay\"\r\nContent-Length: 0\r\n\r\n",
            )
            .await?;
            return Ok(());
        }
    }
    st.targets.lock().unwrap().push(target.to_string());
    let Ok(out) = TcpStream::connect(target).await else {
        c.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    st.outbound.lock().unwrap().push(out.local_addr()?);
    c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?;
    crate::socks5::splice(c, out, st, |st, n| {
        st.bytes.fetch_add(n, Ordering::SeqCst);
    })
    .await;
    Ok(())
}
