//! A tiny blocking HTTP/1.1 client (plain TCP or rustls with the test CA) for talking to the test registry and
//! token issuer directly: readiness probes, auth checks, reading what the registry stores. One request per
//! connection (`Connection: close`), 10 s socket timeouts, no redirects; independent of hoist's own HTTP code.

use base64::Engine as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// Credentials to send with a request.
#[derive(Debug, Clone, Default)]
pub enum HttpAuth {
    #[default]
    None,
    Basic(String, String),
    Bearer(String),
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("response body is not JSON ({e}): status {} body {:?}", self.status, self.text())
        })
    }
}

/// Sends one request to `host` (`127.0.0.1:PORT`). `tls_ca_der`: `Some(CA)` for HTTPS trusting only that CA.
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    tls_ca_der: Option<&[u8]>,
    auth: &HttpAuth,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let tcp = TcpStream::connect(host)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;

    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: hoist-test-harness\r\nContent-Length: {}\r\n",
        body.len()
    );
    match auth {
        HttpAuth::None => {}
        HttpAuth::Basic(u, p) => {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            head.push_str(&format!("Authorization: Basic {b}\r\n"));
        }
        HttpAuth::Bearer(t) => head.push_str(&format!("Authorization: Bearer {t}\r\n")),
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");

    let mut raw = Vec::new();
    match tls_ca_der {
        None => {
            let mut s = tcp;
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
            s.flush()?;
            read_all(&mut s, &mut raw)?;
        }
        Some(ca) => {
            let config = client_config(ca);
            let server_name = rustls::pki_types::ServerName::try_from(
                host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host).to_string(),
            )
            .map_err(|e| std::io::Error::other(format!("bad server name: {e}")))?;
            let conn = rustls::ClientConnection::new(config, server_name).map_err(std::io::Error::other)?;
            let mut s = rustls::StreamOwned::new(conn, tcp);
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
            s.flush()?;
            read_all(&mut s, &mut raw)?;
        }
    }
    parse_response(&raw, method == "HEAD")
}

/// Reads to EOF, treating a TLS close without close_notify (Go servers do that) as EOF.
fn read_all(r: &mut impl Read, out: &mut Vec<u8>) -> std::io::Result<()> {
    match r.read_to_end(out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => Ok(()),
        Err(e) => Err(e),
    }
}

fn client_config(ca_der: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(ca_der.to_vec())).expect("add test CA to root store");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn parse_response(raw: &[u8], head_only: bool) -> std::io::Result<HttpResponse> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of response head"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("response head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("empty response"))?;
    let status: u16 =
        status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
