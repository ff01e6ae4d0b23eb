//! A tiny SOCKS5 relay on loopback (RFC 1928, username/password auth of RFC 1929, `CONNECT`
//! only), for proving that a client reached a server only through it: it records the local
//! address of every outbound connection it opens and counts the bytes it carries.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running relay; stops when dropped.
pub struct Relay {
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Stats {
    /// The local address of each connection the relay opened to a target.
    outbound: Mutex<Vec<SocketAddr>>,
    /// Bytes carried, both ways.
    bytes: AtomicU64,
    /// Handshakes refused (bad credentials).
    refused: AtomicU64,
}

impl Relay {
    /// Starts a relay that wants `creds` (user, password), or no auth when `None`.
    pub async fn start(creds: Option<(&str, &str)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let stats = Arc::new(Stats::default());
        let creds = creds.map(|(u, p)| (u.to_string(), p.to_string()));
        let st = stats.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, creds.clone(), st.clone()));
            }
        });
        Self { addr, stats, task }
    }

    /// `socks5://[user:pass@]127.0.0.1:<port>`.
    pub fn url(&self, creds: Option<(&str, &str)>) -> String {
        match creds {
            Some((u, p)) => format!("socks5://{u}:{p}@{}", self.addr),
            None => format!("socks5://{}", self.addr),
        }
    }

    /// The local addresses of the connections it opened to targets.
    pub fn outbound(&self) -> Vec<SocketAddr> {
        self.stats.outbound.lock().unwrap().clone()
    }

    /// Bytes carried so far, both ways.
    pub fn bytes(&self) -> u64 {
        self.stats.bytes.load(Ordering::SeqCst)
    }

    /// Handshakes refused for bad credentials.
    pub fn refused(&self) -> u64 {
        self.stats.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut c: TcpStream, creds: Option<(String, String)>, st: Arc<Stats>) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    c.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    c.read_exact(&mut methods).await?;
    match &creds {
        None => c.write_all(&[5, 0]).await?,
        Some((user, pass)) => {
            if !methods.contains(&2) {
                c.write_all(&[5, 0xff]).await?;
                return Ok(());
            }
            c.write_all(&[5, 2]).await?;
            let mut v = [0u8; 2];
            c.read_exact(&mut v).await?;
            let mut u = vec![0u8; usize::from(v[1])];
            c.read_exact(&mut u).await?;
            let mut pl = [0u8; 1];
            c.read_exact(&mut pl).await?;
            let mut p = vec![0u8; usize::from(pl[0])];
            c.read_exact(&mut p).await?;
            if u != user.as_bytes() || p != pass.as_bytes() {
                st.refused.fetch_add(1, Ordering::SeqCst);
                c.write_all(&[1, 1]).await?;
                return Ok(());
            }
            c.write_all(&[1, 0]).await?;
        }
    }
    let mut req = [0u8; 4];
    c.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            c.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut n = [0u8; 1];
            c.read_exact(&mut n).await?;
            let mut h = vec![0u8; usize::from(n[0])];
            c.read_exact(&mut h).await?;
            String::from_utf8_lossy(&h).into_owned()
        }
        _ => {
            c.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            return Ok(());
        }
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    let Ok(target) = TcpStream::connect((host.as_str(), port)).await else {
        c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    st.outbound.lock().unwrap().push(target.local_addr()?);
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
    splice(c, target, st, |st, n| {
        st.bytes.fetch_add(n, Ordering::SeqCst);
    })
    .await;
    Ok(())
}

/// Carries bytes both ways between `c` and `out` until either side ends, calling `count` for
/// every chunk as it passes (so a test sees the bytes while the connection is still open).
/// Shared with the HTTP CONNECT relay.
pub(crate) async fn splice<S: Send + Sync + 'static>(c: TcpStream, out: TcpStream, st: Arc<S>, count: fn(&S, u64)) {
    let (cr, cw) = c.into_split();
    let (tr, tw) = out.into_split();
    let up = tokio::spawn(pump(cr, tw, st.clone(), count));
    pump(tr, cw, st, count).await;
    up.abort();
}

/// Copies one direction, counting every chunk.
async fn pump<S>(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    st: Arc<S>,
    count: fn(&S, u64),
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                count(&st, n as u64);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}
