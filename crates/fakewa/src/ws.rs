//! The fake on a real socket: a WebSocket listener on loopback that serves the same world
//! as the in-process transport, for clients that dial (through a proxy, or another client
//! library such as Baileys).
//!
//! The wire is WhatsApp Web's: each WebSocket binary message carries bytes of the Noise
//! stream, the first one starting with the `WA` connection header, then 3-byte big-endian
//! length-prefixed frames (whatsapp-rust `whatsapp-rust-tokio-transport` `from_websocket`
//! sends each frame as one binary message; Baileys `src/Socket/Client/websocket.ts` does the
//! same, and `noise-handler.ts` `decodeFrame` reassembles frames split across messages, as
//! `conn` does here). Close and error handling mirror what the client's transport reads:
//! a close frame is a clean server close, a dropped TCP stream a read error.
//!
//! The media hosts can listen on loopback too ([`FakeWhatsApp::serve_http_on`]), for
//! clients whose media requests must take a network path (through an account's proxy).
//! Both listeners record who reached them ([`Ingress`]), beside the in-process transport's
//! and HTTP client's counts, so a test can prove every byte of an account came through
//! its proxy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_websockets::{CloseCode, Message, ServerBuilder};
use whatsapp_rust::transport::{DisconnectReason, TransportEvent};

use crate::transport::Ctl;
use crate::FakeWhatsApp;

/// A running WebSocket listener of the fake. Dropping it stops accepting (connections
/// already open keep going until either side closes them).
pub struct WsServer {
    addr: SocketAddr,
    stats: Arc<WsStats>,
    task: JoinHandle<()>,
}

/// What the listener saw, for tests that must prove who reached it.
#[derive(Default)]
struct WsStats {
    /// The remote address of every TCP connection accepted, in order.
    peers: Mutex<Vec<SocketAddr>>,
    /// Bytes of WebSocket payload read from clients.
    bytes_in: AtomicU64,
}

impl WsServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL a client dials: `ws://127.0.0.1:<port>/ws/chat` (the path of WhatsApp's own
    /// `wss://web.whatsapp.com/ws/chat`; the fake accepts any path).
    pub fn url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    /// The remote address of every connection accepted so far.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.stats.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Payload bytes read from clients so far.
    pub fn bytes_in(&self) -> u64 {
        self.stats.bytes_in.load(Ordering::SeqCst)
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeWhatsApp {
    /// Listens for WebSocket clients on `addr` (e.g. `127.0.0.1:0`). Must be called inside
    /// a Tokio runtime.
    pub async fn serve_ws(&self, addr: &str) -> std::io::Result<WsServer> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_ws_listener(listener, Duration::ZERO)
    }

    /// As [`serve_ws`](Self::serve_ws), with every message to a client held back by
    /// `latency`, as a server one network hop away answers. A loopback socket answers in
    /// microseconds, faster than any client meets WhatsApp: Baileys 6.7.21 does not await
    /// its `noise.finishInit()` after sending the handshake's finish (`socket.ts`
    /// `validateConnection`), so an answer that arrives before that promise resolves is read
    /// with the handshake keys and the stream fails. WhatsApp's own latency hides that race;
    /// this models the latency, not a kinder server.
    pub async fn serve_ws_with_latency(&self, addr: &str, latency: Duration) -> std::io::Result<WsServer> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_ws_listener(listener, latency)
    }

    /// As [`serve_ws`](Self::serve_ws), from synchronous code: binds `addr` now and serves
    /// on `rt`.
    pub fn serve_ws_on(&self, rt: &tokio::runtime::Handle, addr: &str) -> std::io::Result<WsServer> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let _guard = rt.enter();
        self.serve_ws_listener(TcpListener::from_std(std_listener)?, Duration::ZERO)
    }

    fn serve_ws_listener(&self, listener: TcpListener, latency: Duration) -> std::io::Result<WsServer> {
        let addr = listener.local_addr()?;
        let stats = Arc::new(WsStats::default());
        let (fake, st) = (self.clone(), stats.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                st.peers.lock().unwrap_or_else(|e| e.into_inner()).push(peer);
                fake.note_ingress(|i| i.ws_peers.push(peer.to_string()));
                if fake.is_offline() {
                    // As the in-process transport refuses: the socket closes at once.
                    drop(tcp);
                    continue;
                }
                tokio::spawn(serve_socket(fake.clone(), tcp, st.clone(), latency));
            }
        });
        Ok(WsServer { addr, stats, task })
    }
}

/// One client socket: the WebSocket upgrade, then the same connection loop as in-process.
async fn serve_socket(fake: FakeWhatsApp, tcp: TcpStream, stats: Arc<WsStats>, latency: Duration) {
    let _ = tcp.set_nodelay(true);
    let ws = match ServerBuilder::new().accept(tcp).await {
        Ok((_req, ws)) => ws,
        Err(e) => {
            tracing::debug!(error = %e, "fake WhatsApp: WebSocket upgrade failed");
            return;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = async_channel::unbounded();
    let id = fake.next_conn_id();
    tokio::spawn(crate::conn::serve(fake, id, ctl_rx, ctl_tx.clone(), ev_tx));
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(m)) if m.is_binary() => {
                    let data = Bytes::from(m.into_payload());
                    stats.bytes_in.fetch_add(data.len() as u64, Ordering::SeqCst);
                    if ctl_tx.send(Ctl::Data(data)).is_err() {
                        break;
                    }
                }
                // Pings are answered by tokio-websockets; text is not part of the protocol.
                Some(Ok(m)) if !m.is_close() => {}
                _ => {
                    let _ = ctl_tx.send(Ctl::ClientClosed);
                    break;
                }
            },
            ev = ev_rx.recv() => match ev {
                Ok(TransportEvent::DataReceived(b)) => {
                    if !latency.is_zero() {
                        tokio::time::sleep(latency).await;
                    }
                    if sink.send(Message::binary(b)).await.is_err() {
                        let _ = ctl_tx.send(Ctl::ClientClosed);
                        break;
                    }
                }
                Ok(TransportEvent::Disconnected(DisconnectReason::ServerClose { .. })) => {
                    let _ = sink.send(Message::close(Some(CloseCode::NORMAL_CLOSURE), "")).await;
                    break;
                }
                // A drop, or the connection task ended: the TCP stream goes without a word.
                Ok(TransportEvent::Disconnected(_)) | Err(_) => break,
                Ok(_) => {}
            },
        }
    }
}

// --- proxy2 ---

/// How clients reached the fake: what a test reads to prove that every byte of an account
/// came through its proxy (`tgwa fake ingress` from another process).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ingress {
    /// Remote address of every socket the WebSocket listener accepted, in order.
    pub ws_peers: Vec<String>,
    /// Remote address of every socket the media HTTP listener accepted, in order.
    pub http_peers: Vec<String>,
    /// Connections made through the in-process transport (no socket at all).
    pub in_process_conns: u64,
    /// Media requests answered through the in-process HTTP client.
    pub in_process_http: u64,
}

/// The media hosts on a loopback socket (plain HTTP/1.1), for clients whose media requests
/// must travel a real network path, such as through an account's proxy. Dropping it stops
/// accepting.
pub struct HttpServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// `http://127.0.0.1:<port>`: where a client sends what it meant for
    /// `https://mmg.whatsapp.net` (the `Host` header keeps the host it meant).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The longest request head read, and the largest body (WhatsApp takes files up to 2 GB;
/// tests send far less).
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 128 * 1024 * 1024;

impl FakeWhatsApp {
    /// Serves the media hosts on `addr` (e.g. `127.0.0.1:0`), from synchronous code: binds
    /// now and serves on `rt`. Each request is answered as the in-process HTTP client
    /// answers it (`media.rs`), from the host its `Host` header names.
    ///
    /// WhatsApp's media hosts speak HTTPS; this listener speaks plain HTTP because no
    /// certificate the client would trust can be made here (as the WebSocket listener is
    /// `ws://`). TLS itself is not modelled; the path a request takes (the proxy) is.
    pub fn serve_http_on(&self, rt: &tokio::runtime::Handle, addr: &str) -> std::io::Result<HttpServer> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let _guard = rt.enter();
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        let fake = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                fake.note_ingress(|i| i.http_peers.push(peer.to_string()));
                let fake = fake.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_http_socket(&fake, tcp).await {
                        tracing::debug!(error = %e, "fake WhatsApp: media HTTP request failed");
                    }
                });
            }
        });
        Ok(HttpServer { addr, task })
    }
}

/// One request, one answer, then the socket closes (`Connection: close`).
async fn serve_http_socket(fake: &FakeWhatsApp, mut tcp: TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("request head too long"));
        }
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("closed before the request head ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let (method, target) = (first.next().unwrap_or_default(), first.next().unwrap_or("/"));
    let mut headers = std::collections::HashMap::new();
    for l in lines.filter(|l| !l.is_empty()) {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    if len > MAX_BODY {
        return Err(bad("body too large"));
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let mut chunk = vec![0u8; (len - body.len()).min(64 * 1024)];
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("closed before the body ended"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    let host = headers.get("host").cloned().unwrap_or_default();
    let request = whatsapp_rust::http::HttpRequest {
        url: format!("https://{host}{target}"),
        method: method.to_string(),
        headers,
        body: (method == "POST").then(|| body.into()),
    };
    let answer = crate::media::serve(fake, &request);
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.status_code,
        if answer.status_code == 200 { "OK" } else { "Error" },
        answer.body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    tcp.write_all(&answer.body).await?;
    tcp.shutdown().await
}
