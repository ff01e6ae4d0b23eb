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

// --- proxy2 ---

/// The longest HTTP response read through a proxy (a media download; WhatsApp caps
/// documents at 2 GB, far above what a bot sends or reads).
const MAX_HTTP_RESPONSE: usize = 256 * 1024 * 1024;

/// whatsapp-rust's HTTP client for a proxied account: media uploads and downloads (and any
/// other HTTPS the library makes, such as app-state blobs) go through the account's proxy,
/// like its WebSocket, so WhatsApp's media hosts see the proxy's address too. One request
/// per tunnel (`Connection: close`): media requests are few and large.
#[derive(Clone, Debug)]
pub struct ProxyHttpClient {
    proxy: ProxyUrl,
    /// Where every request goes instead of its own host (`http://host:port`, plain): the
    /// fake's media listener in fake builds. The `Host` header keeps the host meant.
    target: Option<(String, u16)>,
    /// Bound on one whole exchange.
    timeout: Duration,
}

impl ProxyHttpClient {
    /// Through `proxy` to each request's own host, or to `target` (`http://host:port`).
    pub fn new(proxy: ProxyUrl, target: Option<String>) -> Self {
        let target = target.and_then(|t| {
            let uri: http::Uri = t.parse().ok()?;
            Some((uri.host()?.to_string(), uri.port_u16().unwrap_or(80)))
        });
        Self {
            proxy,
            target,
            timeout: Duration::from_secs(300),
        }
    }

    fn fail(&self, reason: impl Into<String>) -> ProxyError {
        ProxyError {
            proxy: self.proxy.to_string(),
            reason: reason.into(),
        }
    }

    async fn exchange(
        &self,
        request: whatsapp_rust::http::HttpRequest,
    ) -> whatsapp_rust::anyhow::Result<whatsapp_rust::http::HttpResponse> {
        let uri: http::Uri = request.url.parse()?;
        let host = uri
            .host()
            .ok_or_else(|| whatsapp_rust::anyhow::anyhow!("no host in the request URL"))?
            .to_string();
        let authority = uri.authority().map_or(host.clone(), |a| a.as_str().to_string());
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let tls = uri.scheme_str() == Some("https");
        let (dial_host, dial_port, tls) = match &self.target {
            Some((h, p)) => (h.clone(), *p, false),
            None => (host.clone(), uri.port_u16().unwrap_or(if tls { 443 } else { 80 }), tls),
        };
        let tunnel = tokio::time::timeout(self.timeout.min(Duration::from_secs(20)), async {
            open_tunnel(&self.proxy, &dial_host, dial_port).await
        })
        .await
        .map_err(|_| self.fail("no tunnel in time"))?
        .map_err(|reason| self.fail(reason))?;
        let connector = if tls {
            whatsapp_rust::transport::default_tls_connector()
        } else {
            whatsapp_rust::transport::Connector::Plain
        };
        let mut s = connector
            .wrap(&host, tunnel)
            .await
            .map_err(|e| whatsapp_rust::anyhow::anyhow!("TLS through the proxy: {e}"))?;
        let body = request.body.unwrap_or_default();
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
            request.method,
            body.len()
        );
        for (k, v) in &request.headers {
            if !["host", "connection", "content-length"].contains(&k.to_ascii_lowercase().as_str()) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await?;
        s.write_all(&body).await?;
        s.flush().await?;
        let mut raw = Vec::new();
        // A server may close without TLS's close_notify: what arrived is still the answer,
        // checked against its length below.
        let read = (&mut s).take(MAX_HTTP_RESPONSE as u64 + 1).read_to_end(&mut raw).await;
        if let Err(e) = read {
            if e.kind() != std::io::ErrorKind::UnexpectedEof || raw.is_empty() {
                return Err(e.into());
            }
        }
        if raw.len() > MAX_HTTP_RESPONSE {
            whatsapp_rust::anyhow::bail!("the response is larger than {MAX_HTTP_RESPONSE} bytes");
        }
        parse_response(&raw)
    }
}

#[whatsapp_rust::async_trait]
impl whatsapp_rust::http::HttpClient for ProxyHttpClient {
    async fn execute(
        &self,
        request: whatsapp_rust::http::HttpRequest,
    ) -> whatsapp_rust::anyhow::Result<whatsapp_rust::http::HttpResponse> {
        tokio::time::timeout(self.timeout, self.exchange(request))
            .await
            .map_err(|_| whatsapp_rust::anyhow::anyhow!("no HTTP answer through the proxy within {:?}", self.timeout))?
    }
}

/// An HTTP/1.1 response read to its end: status, then the body by `Content-Length`,
/// chunked encoding, or up to the close. Any status is `Ok` (the library reads 401/404).
fn parse_response(raw: &[u8]) -> whatsapp_rust::anyhow::Result<whatsapp_rust::http::HttpResponse> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| whatsapp_rust::anyhow::anyhow!("no complete HTTP response head"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_code: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| whatsapp_rust::anyhow::anyhow!("not an HTTP status line"))?;
    let (mut length, mut chunked) = (None, false);
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { continue };
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        if rest.len() < n {
            whatsapp_rust::anyhow::bail!("the response ended after {} of {n} bytes", rest.len());
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(whatsapp_rust::http::HttpResponse { status_code, body })
}

/// RFC 9112 section 7.1 chunked transfer coding (extensions and trailers skipped).
fn dechunk(mut rest: &[u8]) -> whatsapp_rust::anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| whatsapp_rust::anyhow::anyhow!("a chunk size line is cut short"))?;
        let line = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| whatsapp_rust::anyhow::anyhow!("a bad chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            whatsapp_rust::anyhow::bail!("a chunk is cut short");
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_responses_by_length_chunks_or_close() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((r.status_code, r.body.as_slice()), (200, &b"abc"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\n\r\ngone").unwrap();
        assert_eq!((r.status_code, r.body.as_slice()), (404, &b"gone"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").is_err());
    }
}
