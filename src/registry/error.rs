//! Registry answers that are failures, turned into [`Error`]s that know their exit code, whether a
//! retry can help, and what the user should try.
//!
//! This is the one place that decides what is retryable: network errors, 408, 429, 500, 502, 503, 504,
//! 522 and 524. Never 403, 404, nor a 401 (the transport already refreshed the token once), and a 400
//! only when it is `MANIFEST_BLOB_UNKNOWN` (see [`BLOB_LINK_RACE_WAIT`]).

use std::time::Duration;

use reqwest::{Response, StatusCode};

use crate::error::{Error, ErrorKind};

/// Statuses worth retrying.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 522 | 524)
}

/// The `{"errors":[{code,message,detail}]}` body of a distribution error.
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Debug, serde::Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// What a failed response said, in one line: `404 Not Found: NAME_UNKNOWN repository name not known`.
pub fn describe(status: StatusCode, body: &[u8]) -> (String, Vec<String>) {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let codes: Vec<String> = parsed.errors.iter().map(|e| e.code.clone()).collect();
    let mut text = status.to_string();
    let detail: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if !detail.is_empty() {
        text = format!("{text}: {}", detail.join("; "));
    } else if let Ok(s) = std::str::from_utf8(body) {
        // A proxy's HTML page or plain text: keep one short line of it.
        let line = s.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('<')).unwrap_or("");
        if !line.is_empty() && line.len() < 200 {
            text = format!("{text}: {line}");
        }
    }
    (text, codes)
}

/// How much of an error body is read: enough for any registry's JSON errors and a proxy's HTML page;
/// a hostile server cannot make hoist buffer more.
pub const ERROR_BODY_LIMIT: usize = 64 << 10;
/// How much of a token service's answer is read (JWTs with long access lists stay far below).
pub const TOKEN_BODY_LIMIT: usize = 1 << 20;

/// Reads a response body, refusing one over `limit` bytes (by its `Content-Length`, or as it streams
/// in when there is none), so a body's size is bounded before it is in memory.
pub async fn read_capped(mut resp: Response, limit: usize) -> Result<bytes::Bytes, Error> {
    let too_big = |n: String| {
        Error::other(format!("the answer is {n} bytes, over hoist's {limit}-byte limit for it"))
            .with_hint("the server is misbehaving, or this is not a registry")
    };
    if let Some(len) = resp.content_length().filter(|l| *l > limit as u64) {
        return Err(too_big(len.to_string()));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(from_reqwest)? {
        if buf.len() + chunk.len() > limit {
            return Err(too_big(format!("more than {limit}")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Up to `limit` bytes of a body (the rest is dropped unread): for error bodies, where a cut message is
/// still useful and the status already says what happened.
async fn read_prefix(mut resp: Response, limit: usize) -> bytes::Bytes {
    let mut buf = bytes::BytesMut::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = limit - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= limit {
            break;
        }
    }
    buf.freeze()
}

/// Turns a failed response into an error (reads at most [`ERROR_BODY_LIMIT`] of the body).
pub async fn from_response(resp: Response) -> Error {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = read_prefix(resp, ERROR_BODY_LIMIT).await;
    from_status(status, &body, retry_after)
}

/// The error for a status and body.
pub fn from_status(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> Error {
    let (text, codes) = describe(status, body);
    let code = status.as_u16();
    let kind = match code {
        401 | 403 => ErrorKind::Auth,
        c if is_retryable_status(c) => ErrorKind::Network,
        _ => ErrorKind::Other,
    };
    let mut err = Error::new(kind, text);
    if is_retryable_status(code) {
        err = err.retryable(retry_after);
    } else if code == 400 && codes.iter().any(|c| c == "MANIFEST_BLOB_UNKNOWN") {
        err = err.retryable(Some(BLOB_LINK_RACE_WAIT));
    }
    match code {
        403 => err.with_hint(
            "the registry refused: the account lacks push permission on this repository, or (Harbor) the project's quota is \
             exceeded, it is a proxy-cache project, or the registry is read-only — the message above says which",
        ),
        413 => err.with_hint(
            "a proxy in front of the registry caps request bodies (nginx: client_max_body_size): blob uploads shrink \
             their chunks by themselves (--chunk-size SIZE starts smaller), anything else needs a higher limit",
        ),
        _ if codes.iter().any(|c| c == "NAME_UNKNOWN") => {
            err.with_hint("the repository's project or namespace does not exist (Harbor: create the project first)")
        }
        _ => err,
    }
}

/// How long to wait before putting a manifest again after `400 MANIFEST_BLOB_UNKNOWN`.
///
/// Server quirk (distribution 2.8, filesystem storage): every finished upload of a blob rewrites the
/// repository's link file for it in place — truncate, then write. A manifest PUT that reads the link in
/// between finds it empty and answers `400 DIGEST_INVALID` + `MANIFEST_BLOB_UNKNOWN` for a blob that is
/// there. Parallel jobs pushing the same layer (or the same empty config of artifacts) to one repository
/// meet it. hoist only puts a manifest after every blob it names is in the repository, so the answer is
/// retried, after this short wait (as if the server had sent `Retry-After`): a blob that is really missing
/// costs `--retries` × this, about a second by default.
pub const BLOB_LINK_RACE_WAIT: Duration = Duration::from_millis(300);

/// Whether a transport error is the server's certificate being refused (rustls reports it in the chain).
pub fn is_certificate_error(err: &reqwest::Error) -> bool {
    let chain = error_chain(err);
    chain.contains("certificate") || chain.contains("UnknownIssuer") || chain.contains("invalid peer")
}

/// Turns a transport error into an error: network kind, retryable unless it is a certificate problem.
pub fn from_reqwest(err: reqwest::Error) -> Error {
    let tls_problem = is_certificate_error(&err);
    let e = Error::network(from_reqwest_ref(&err));
    if tls_problem {
        e.with_hint(
            "the registry's certificate is not trusted: pass its CA with --ca-file FILE (or CI_SERVER_TLS_CA_FILE, \
             /etc/docker/certs.d/<host:port>/ca.crt); --insecure skips verification",
        )
    } else {
        e.retryable(None)
    }
}

/// A transport error's text with its URL shown safely (reqwest puts the whole URL in its message:
/// an upload's `_state`, a storage redirect's signature).
pub fn from_reqwest_ref(err: &reqwest::Error) -> String {
    let text = error_chain(err);
    match err.url() {
        Some(u) => text.replace(u.as_str(), &crate::model::DisplaySafeUrl::new(u.clone()).to_string()),
        None => text,
    }
}

/// `outer: inner: innermost`, without repeating identical lines.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_classified() {
        for code in 100u16..600 {
            let status = StatusCode::from_u16(code).unwrap();
            let e = from_status(status, b"", None);
            let retry = e.retry().is_some();
            assert_eq!(retry, [408, 429, 500, 502, 503, 504, 522, 524].contains(&code), "{code}");
            if [401, 403].contains(&code) {
                assert_eq!(e.kind(), ErrorKind::Auth);
            }
            if [400, 404, 413].contains(&code) {
                assert_eq!(e.kind(), ErrorKind::Other);
            }
        }
    }

    #[test]
    fn a_manifest_blob_unknown_is_retried_after_a_short_wait_other_400s_are_not() {
        let body = br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},
            {"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
        let e = from_status(StatusCode::BAD_REQUEST, body, None);
        assert_eq!(e.retry(), Some(Some(BLOB_LINK_RACE_WAIT)));
        assert_eq!(e.kind(), ErrorKind::Other);
        for code in ["MANIFEST_INVALID", "DIGEST_INVALID", "BLOB_UNKNOWN", "TAG_INVALID"] {
            let body = format!(r#"{{"errors":[{{"code":"{code}","message":"x"}}]}}"#);
            assert_eq!(from_status(StatusCode::BAD_REQUEST, body.as_bytes(), None).retry(), None, "{code}");
        }
        // Only a 400 says it: the same code under 404 is not this race.
        let body = br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"x"}]}"#;
        assert_eq!(from_status(StatusCode::NOT_FOUND, body, None).retry(), None);
    }

    #[test]
    fn describes_distribution_error_bodies() {
        let body =
            br#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry","detail":{}}]}"#;
        let (text, codes) = describe(StatusCode::NOT_FOUND, body);
        assert_eq!(text, "404 Not Found: BLOB_UPLOAD_UNKNOWN blob upload unknown to registry");
        assert_eq!(codes, ["BLOB_UPLOAD_UNKNOWN"]);
        let e = from_status(StatusCode::TOO_MANY_REQUESTS, b"", Some(Duration::from_secs(3)));
        assert_eq!(e.retry(), Some(Some(Duration::from_secs(3))));
        let e = from_status(StatusCode::PAYLOAD_TOO_LARGE, b"<html><h1>413</h1></html>", None);
        assert!(e.hint().unwrap().contains("--chunk-size"));
    }

    /// A one-connection HTTP server on loopback answering every request with `head` then `body`
    /// repeated `repeat` times (an "endless" body when large), for the bounded-read tests.
    async fn serve(head: String, body: &'static [u8], repeat: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(head.as_bytes()).await;
            for _ in 0..repeat {
                if s.write_all(body).await.is_err() {
                    return; // the client hung up: what a bounded read does
                }
            }
        });
        format!("http://{addr}/")
    }

    fn http() -> reqwest::Client {
        let tls = super::super::tls::client_config("127.0.0.1", &Default::default()).unwrap();
        reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap()
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_a_cap() {
        let http = http();
        // A declared length over the cap is refused before anything is read.
        let url = serve("HTTP/1.1 200 OK\r\nContent-Length: 5242880\r\n\r\n".into(), b"", 0).await;
        let e = read_capped(http.get(url).send().await.unwrap(), 4 << 20).await.unwrap_err();
        assert!(e.to_string().contains("5242880 bytes, over hoist's 4194304-byte limit"), "{e}");
        // No length, and more than the cap streams in: refused once the cap is passed.
        let url = serve("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".into(), &[b'x'; 1024], 8 * 1024).await;
        let e = read_capped(http.get(url).send().await.unwrap(), 4 << 20).await.unwrap_err();
        assert!(e.to_string().contains("more than 4194304"), "{e}");
        // An error body that never ends: the first 64 KiB make the message, the rest is not read.
        let url = serve(
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n".into(),
            b"NAME_UNKNOWN endless proxy page line\n",
            10_000_000,
        )
        .await;
        let e = from_response(http.get(url).send().await.unwrap()).await;
        assert!(e.to_string().starts_with("404 Not Found: NAME_UNKNOWN endless proxy page line"), "{e}");
    }

    #[tokio::test]
    async fn oversized_headers_are_an_error_not_a_hang() {
        let huge = "x".repeat(2 << 20);
        let url = serve(format!("HTTP/1.1 200 OK\r\nX-Huge: {huge}\r\nContent-Length: 0\r\n\r\n"), b"", 0).await;
        let e = http().get(url).send().await.map_err(from_reqwest).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    }
}
