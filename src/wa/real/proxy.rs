//! Connections through an account's proxy: a [`TransportFactory`] that dials the proxy,
//! asks it for a tunnel to WhatsApp (SOCKS5 `CONNECT`, or HTTP `CONNECT`), then does over
//! that tunnel what the library's own transport does over a direct socket: TLS for `wss://`,
//! the WebSocket upgrade with WhatsApp Web's `Origin`, and `from_websocket` (whatsapp-rust's
//! tokio transport documents this as the way to add proxy support: "implement
//! `TransportFactory` directly and use `from_websocket`").
//!
//! Failures at the proxy come back as [`ProxyError`] inside the `anyhow::Error`, so the
//! session can tell "the proxy refused or died" from "WhatsApp is unreachable".

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use whatsapp_rust::async_channel;
use whatsapp_rust::transport::{Transport, TransportEvent, TransportFactory};

use crate::proxy::{ProxyKind, ProxyUrl};

/// WhatsApp Web's socket, the default target through a proxy.
pub const WHATSAPP_WS_URL: &str = "wss://web.whatsapp.com/ws/chat";
/// The `Origin` the library's own transport sends (wacore `WHATSAPP_WEB_ORIGIN`).
const WHATSAPP_ORIGIN: &str = "https://web.whatsapp.com";

/// The proxy, not WhatsApp, failed: unreachable, refused the tunnel, or wanted other
/// credentials. `proxy` is the masked address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proxy {proxy}: {reason}")]
pub struct ProxyError {
    /// The proxy, masked (never its password).
    pub proxy: String,
    /// What went wrong, in the proxy's terms.
    pub reason: String,
}

/// Dials WhatsApp (or `url`) through one proxy.
#[derive(Clone, Debug)]
pub struct ProxyTransportFactory {
    proxy: ProxyUrl,
    url: String,
    /// Bound on reaching the proxy and getting its tunnel.
    timeout: Duration,
}

impl ProxyTransportFactory {
    /// Through `proxy` to `url` (`ws://` or `wss://`; WhatsApp's when `None`).
    pub fn new(proxy: ProxyUrl, url: Option<String>) -> Self {
        Self {
            proxy,
            url: url.unwrap_or_else(|| WHATSAPP_WS_URL.to_string()),
            timeout: Duration::from_secs(20),
        }
    }

    fn fail(&self, reason: impl Into<String>) -> ProxyError {
        ProxyError {
            proxy: self.proxy.to_string(),
            reason: reason.into(),
        }
    }
}

#[whatsapp_rust::async_trait]
impl TransportFactory for ProxyTransportFactory {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>), whatsapp_rust::anyhow::Error> {
        let uri: http::Uri = self.url.parse()?;
        let host = uri
            .host()
            .ok_or_else(|| whatsapp_rust::anyhow::anyhow!("no host in {}", self.url))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = uri.scheme_str() == Some("wss");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tunnel = tokio::time::timeout(self.timeout, open_tunnel(&self.proxy, &host, port))
            .await
            .map_err(|_| self.fail(format!("no tunnel within {:?}", self.timeout)))?
            .map_err(|reason| self.fail(reason))?;
        let connector = if tls {
            whatsapp_rust::transport::default_tls_connector()
        } else {
            whatsapp_rust::transport::Connector::Plain
        };
        let stream = connector
            .wrap(&host, tunnel)
            .await
            .map_err(|e| whatsapp_rust::anyhow::anyhow!("TLS through the proxy: {e}"))?;
        let origin = http::HeaderValue::from_static(WHATSAPP_ORIGIN);
        let (ws, _) = tokio_websockets::ClientBuilder::from_uri(uri)
            .add_header(http::header::ORIGIN, origin)?
            .connect_on(stream)
            .await
            .map_err(|e| whatsapp_rust::anyhow::anyhow!("WebSocket connect through the proxy failed: {e}"))?;
        Ok(whatsapp_rust::transport::from_websocket(ws))
    }
}

/// A TCP stream to the proxy, turned into a tunnel to `host:port`. The error is the reason,
/// in words an operator can act on.
async fn open_tunnel(proxy: &ProxyUrl, host: &str, port: u16) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect((proxy.host(), proxy.port()))
        .await
        .map_err(|e| format!("cannot reach the proxy: {e}"))?;
    let _ = s.set_nodelay(true);
    match proxy.kind() {
        ProxyKind::Socks5 => socks5(&mut s, proxy.credentials(), host, port).await?,
        ProxyKind::HttpConnect => http_connect(&mut s, proxy.credentials(), host, port).await?,
    }
    Ok(s)
}

fn io(e: std::io::Error) -> String {
    format!("the proxy closed the connection ({e})")
}

/// RFC 1928 (with RFC 1929 username/password): greeting, auth, `CONNECT` by domain name.
pub(crate) async fn socks5<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    creds: Option<(&str, &str)>,
    host: &str,
    port: u16,
) -> Result<(), String> {
    let methods: &[u8] = if creds.is_some() { &[0x00, 0x02] } else { &[0x00] };
    let mut hello = vec![0x05, methods.len() as u8];
    hello.extend_from_slice(methods);
    s.write_all(&hello).await.map_err(io)?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await.map_err(io)?;
    if reply[0] != 0x05 {
        return Err("not a SOCKS5 proxy".into());
    }
    match (reply[1], creds) {
        (0x00, _) => {}
        (0x02, Some((user, pass))) => {
            if user.len() > 255 || pass.len() > 255 {
                return Err("user name or password longer than SOCKS5 allows (255)".into());
            }
            let mut auth = vec![0x01, user.len() as u8];
            auth.extend_from_slice(user.as_bytes());
            auth.push(pass.len() as u8);
            auth.extend_from_slice(pass.as_bytes());
            s.write_all(&auth).await.map_err(io)?;
            let mut r = [0u8; 2];
            s.read_exact(&mut r).await.map_err(io)?;
            if r[1] != 0x00 {
                return Err("the proxy refused the user name or password".into());
            }
        }
        (0x02, None) => return Err("the proxy needs a user name and password".into()),
        _ => return Err("the proxy accepts none of our authentication methods".into()),
    }
    if host.len() > 255 {
        return Err("host name too long for SOCKS5".into());
    }
    let mut req = vec![0x05, 0x01, 0x00, 0x03, host.len() as u8];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(io)?;
    if head[1] != 0x00 {
        return Err(format!("the proxy refused the tunnel: {}", socks5_reply(head[1])));
    }
    // The bound address the proxy reports; read and ignored.
    let skip = match head[3] {
        0x01 => 4,
        0x04 => 16,
        0x03 => {
            let mut n = [0u8; 1];
            s.read_exact(&mut n).await.map_err(io)?;
            usize::from(n[0])
        }
        _ => return Err("the proxy sent an unknown address type".into()),
    };
    let mut rest = vec![0u8; skip + 2];
    s.read_exact(&mut rest).await.map_err(io)?;
    Ok(())
}

/// RFC 1928 section 6 reply codes.
fn socks5_reply(code: u8) -> &'static str {
    match code {
        0x01 => "general failure",
        0x02 => "not allowed by its rules",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unknown error",
    }
}

/// HTTP `CONNECT host:port`; a 2xx opens the tunnel.
async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    creds: Option<(&str, &str)>,
    host: &str,
    port: u16,
) -> Result<(), String> {
    let mut req = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    if let Some((u, p)) = creds {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.map_err(io)?;
    // Read the response head byte by byte: nothing past it may be consumed, it is the tunnel.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err("the proxy's answer is too long".into());
        }
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.map_err(io)?;
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    match code {
        c if c.starts_with('2') => Ok(()),
        "407" => Err("the proxy refused the user name or password (407)".into()),
        _ => Err(format!("the proxy refused the tunnel: {status_line}")),
    }
}
