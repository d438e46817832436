//! A fault-injecting HTTP/1.1 proxy for the test registry: [`FaultProxy::start`] listens on `127.0.0.1:0` and
//! forwards every request to a plain-HTTP upstream (a [`super::Registry`]), streaming bodies both ways (one
//! upstream connection per request, nothing buffered whole), sending `Host: <upstream>` and rewriting
//! `Location`/`Link` response headers that name the upstream's absolute URL (`http://127.0.0.1:UP/v2/…`, as
//! distribution writes them) so they name the proxy. Tests script faults with [`Rule`]s, which may be added while
//! the proxy runs:
//!
//! - [`Fault::Status`]: answer without forwarding (500/502/503/504, 429 + `Retry-After`, 413, a distribution
//!   `BLOB_UPLOAD_UNKNOWN` 404, …). The request body is read and discarded first, so the client reliably reads
//!   the answer instead of failing to write into a closed socket.
//! - [`Fault::CutBody`]: forward the request but stop after `after_bytes` of its body: the upstream request is
//!   aborted (the registry sees a short body) and the client connection is closed without an answer.
//! - [`Fault::DropResponse`]: forward the whole request, wait for (and drain) the upstream response, then close
//!   the client connection without answering: the registry applied it, the client does not know.
//! - [`Fault::Delay`]: wait, then forward.
//! - [`Fault::MaxBody`]: a body-size cap, as nginx's `client_max_body_size`: a request whose body is over the cap
//!   gets nginx's 413 page and never reaches the upstream; a body of unknown length (chunked) is read up to the
//!   cap first (nginx buffers request bodies) and refused as soon as it exceeds it. Others are forwarded.
//!
//! Every request is logged ([`FaultProxy::requests`]) with the status the client got, the status the upstream
//! answered and the fault applied; [`FaultProxy::fired`] counts a rule's firings. Everything is time-bounded
//! ([`PROXY_TIMEOUT`] from a request's head to the upstream's answer, delays and request body included; the
//! same idle limit on every body and on reading request heads), and dropping the proxy stops its runtime and
//! every connection it holds. HTTP/1.1 and plain HTTP only, on both sides.

use super::server::ServerThread;
use super::skopeo::{run, skopeo_cmd};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// How long a request may take from its head to the upstream's answer (a delay and the request body included),
/// how long a client may take to send a request head, and how long any body may stall, before the proxy gives
/// up and closes the connection.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a [`Fault::CutBody`] waits after the cut point before aborting the upstream request, so that the
/// bytes before the cut have left the proxy.
const CUT_FLUSH: Duration = Duration::from_millis(150);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Which request paths a [`Matcher`] accepts. Matched against the path only (no query string).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PathMatch {
    #[default]
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(s) => path == s,
            PathMatch::Prefix(s) => path.starts_with(s.as_str()),
            PathMatch::Suffix(s) => path.ends_with(s.as_str()),
            PathMatch::Contains(s) => path.contains(s.as_str()),
        }
    }
}

/// Which requests a [`Rule`] applies to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matcher {
    /// `Some("PATCH")`: only that method (case-insensitive); `None`: any.
    pub method: Option<String>,
    pub path: PathMatch,
    /// `Some(n)`: only requests declaring `Content-Length` > n (requests without a `Content-Length`, e.g.
    /// chunked ones, never match).
    pub body_over: Option<u64>,
    /// Let the first `skip` matching requests through untouched, then fire (`skip: 1` breaks "the second PATCH").
    pub skip: usize,
}

impl Matcher {
    /// Every request.
    pub fn any() -> Matcher {
        Matcher::default()
    }

    /// Every request with this method.
    pub fn method(method: &str) -> Matcher {
        Matcher { method: Some(method.to_string()), ..Matcher::default() }
    }

    pub fn path(mut self, path: PathMatch) -> Matcher {
        self.path = path;
        self
    }

    /// Shorthand for `.path(PathMatch::Contains(s))`.
    pub fn path_contains(self, s: &str) -> Matcher {
        self.path(PathMatch::Contains(s.to_string()))
    }

    pub fn body_over(mut self, n: u64) -> Matcher {
        self.body_over = Some(n);
        self
    }

    pub fn skip(mut self, k: usize) -> Matcher {
        self.skip = k;
        self
    }

    /// Whether a request matches (ignoring `skip`).
    pub fn matches(&self, method: &str, path: &str, body_len: Option<u64>) -> bool {
        if let Some(m) = &self.method {
            if !m.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        if let Some(n) = self.body_over {
            if body_len.is_none_or(|len| len <= n) {
                return false;
            }
        }
        self.path.matches(path)
    }
}

/// What the proxy does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `code` with these headers and body, without forwarding (the request body is read and dropped).
    Status { code: u16, headers: Vec<(String, String)>, body: String },
    /// Forward the request, but after `after_bytes` bytes of its body abort the upstream request and close the
    /// client connection without an answer. If the body is not longer than `after_bytes`, all of it reaches the
    /// upstream (which may then apply the request) and the client connection is still closed unanswered.
    CutBody { after_bytes: u64 },
    /// Forward the whole request, wait for the upstream's whole response, then close the client connection
    /// without answering.
    DropResponse,
    /// Wait this long, then forward normally.
    Delay(Duration),
    /// Refuse (413, nothing forwarded) every request whose body is over `limit` bytes, declared or counted;
    /// forward the others. Give it `Matcher::any()` and `.always()`: it is the proxy's body cap.
    MaxBody { limit: u64 },
}

impl Fault {
    /// `code` with a small plain-text body.
    pub fn status(code: u16) -> Fault {
        let reason = StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("fault");
        Fault::Status {
            code,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: format!("{code} {reason} (injected by the test proxy)\n"),
        }
    }

    /// `code` with exactly these headers and body.
    pub fn status_with(code: u16, headers: &[(&str, &str)], body: &str) -> Fault {
        Fault::Status {
            code,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.to_string(),
        }
    }

    /// `code` with a distribution error body `{"errors":[{"code":…,"message":…,"detail":null}]}`.
    pub fn registry_error(code: u16, error_code: &str, message: &str) -> Fault {
        let body = serde_json::json!({"errors": [{"code": error_code, "message": message, "detail": null}]});
        Fault::Status {
            code,
            headers: vec![
                ("Content-Type".into(), "application/json; charset=utf-8".into()),
                ("Docker-Distribution-Api-Version".into(), "registry/2.0".into()),
            ],
            body: format!("{body}\n"),
        }
    }

    /// 429 TOOMANYREQUESTS with `Retry-After: <retry_after>` (seconds or an HTTP date).
    pub fn too_many_requests(retry_after: &str) -> Fault {
        match Fault::registry_error(429, "TOOMANYREQUESTS", "too many requests") {
            Fault::Status { code, mut headers, body } => {
                headers.push(("Retry-After".into(), retry_after.to_string()));
                Fault::Status { code, headers, body }
            }
            _ => unreachable!(),
        }
    }

    /// 413 Request Entity Too Large, as a fronting nginx answers it (HTML body).
    pub fn payload_too_large() -> Fault {
        Fault::status_with(
            413,
            &[("Content-Type", "text/html")],
            "<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 Request Entity \
             Too Large</h1></center></body></html>\n",
        )
    }

    /// 404 BLOB_UPLOAD_UNKNOWN, as distribution answers for an unknown or expired upload session.
    pub fn blob_upload_unknown() -> Fault {
        Fault::registry_error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
    }

    pub fn cut_body(after_bytes: u64) -> Fault {
        Fault::CutBody { after_bytes }
    }

    /// A body-size cap of `limit` bytes ([`Fault::MaxBody`]).
    pub fn max_body(limit: u64) -> Fault {
        Fault::MaxBody { limit }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status { code, .. } => write!(f, "status {code}"),
            Fault::CutBody { after_bytes } => write!(f, "cut body after {after_bytes} bytes"),
            Fault::DropResponse => write!(f, "drop response"),
            Fault::Delay(d) => write!(f, "delay {d:?}"),
            Fault::MaxBody { limit } => write!(f, "max body {limit}"),
        }
    }
}

/// A scripted fault: requests matching `matcher` (after its `skip`) get `fault`, `times` times; then the rule is
/// spent. When several live rules match one request, each counts it towards its `skip`, and the first (in the
/// order added) that is past its `skip` fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matcher: Matcher,
    pub fault: Fault,
    /// How many times the rule fires; `usize::MAX` for ever.
    pub times: usize,
}

impl Rule {
    /// Fires once.
    pub fn new(matcher: Matcher, fault: Fault) -> Rule {
        Rule { matcher, fault, times: 1 }
    }

    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }

    /// Never spent.
    pub fn always(self) -> Rule {
        self.times(usize::MAX)
    }
}

/// A rule's handle, from [`FaultProxy::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub usize);

/// One request the proxy received, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    pub method: String,
    /// The request target as the client sent it.
    pub path_and_query: String,
    /// The declared `Content-Length`, if any.
    pub body_len: Option<u64>,
    /// The status the client received; `None` when it got no answer (cut, dropped, upstream failure) or the
    /// request is still in flight.
    pub status: Option<u16>,
    /// The status the upstream answered; `None` when the request was not forwarded or got no answer.
    pub upstream_status: Option<u16>,
    /// The upstream's response headers as the proxy passes them on (names lower-cased, hop-by-hop headers
    /// removed, `Location`/`Link` rewritten to the proxy) — recorded for a dropped response too, so a test can
    /// see e.g. the `Location` the client never got.
    pub upstream_headers: Vec<(String, String)>,
    /// The fault applied (`"status 503"`, `"cut body after 1024 bytes"`, `"drop response"`, `"delay 1s"`).
    pub fault: Option<String>,
    pub rule: Option<RuleId>,
    /// Why forwarding failed (upstream unreachable, timeout, client went away), if it did.
    pub error: Option<String>,
}

impl ProxyRequest {
    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or("")
    }

    /// The first upstream response header named `name` (case-insensitive).
    pub fn upstream_header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.upstream_headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

struct RuleState {
    rule: Rule,
    seen: usize,
    fired: usize,
}

impl RuleState {
    fn live(&self) -> bool {
        self.fired < self.rule.times
    }
}

#[derive(Default)]
struct State {
    rules: Vec<RuleState>,
    log: Vec<ProxyRequest>,
}

struct Shared {
    upstream: String,
    /// `http://<upstream>` and `http://<proxy>`, for rewriting response headers.
    upstream_url: String,
    proxy_url: String,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs the request and picks the fault to apply, if any. Returns the log index.
    fn begin(&self, method: &str, path_and_query: &str, body_len: Option<u64>) -> (usize, Option<(RuleId, Fault)>) {
        let path = path_and_query.split('?').next().unwrap_or("");
        let mut st = self.lock();
        let mut chosen = None;
        for (i, r) in st.rules.iter_mut().enumerate() {
            if !r.live() || !r.rule.matcher.matches(method, path, body_len) {
                continue;
            }
            r.seen += 1;
            if chosen.is_none() && r.seen > r.rule.matcher.skip {
                r.fired += 1;
                chosen = Some((RuleId(i), r.rule.fault.clone()));
            }
        }
        st.log.push(ProxyRequest {
            method: method.to_string(),
            path_and_query: path_and_query.to_string(),
            body_len,
            status: None,
            upstream_status: None,
            upstream_headers: Vec::new(),
            fault: chosen.as_ref().map(|(_, f)| f.to_string()),
            rule: chosen.as_ref().map(|(id, _)| *id),
            error: None,
        });
        (st.log.len() - 1, chosen)
    }

    fn update(&self, idx: usize, f: impl FnOnce(&mut ProxyRequest)) {
        if let Some(entry) = self.lock().log.get_mut(idx) {
            f(entry);
        }
    }
}

/// A running fault proxy in front of one plain-HTTP upstream; stops on drop.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    _server: ServerThread,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:<free port>` forwarding to `upstream_host` (`127.0.0.1:PORT`, plain HTTP).
    pub fn start(upstream_host: &str) -> FaultProxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        std_listener.set_nonblocking(true).expect("nonblocking listener");
        let port = std_listener.local_addr().expect("proxy local addr").port();
        let shared = Arc::new(Shared {
            upstream: upstream_host.to_string(),
            upstream_url: format!("http://{upstream_host}"),
            proxy_url: format!("http://127.0.0.1:{port}"),
            state: Mutex::new(State::default()),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let srv_shared = shared.clone();
        let server =
            ServerThread::spawn("fault-proxy", 2, move |stop_rx| serve(std_listener, srv_shared, stop_rx, ready_tx));
        ready_rx.recv_timeout(Duration::from_secs(10)).expect("fault proxy did not start");
        FaultProxy { port, shared, _server: server }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.proxy_url.clone()
    }

    /// The upstream's `127.0.0.1:PORT`.
    pub fn upstream(&self) -> String {
        self.shared.upstream.clone()
    }

    /// Adds a rule (effective for requests arriving from now on).
    pub fn add(&self, rule: Rule) -> RuleId {
        let mut st = self.shared.lock();
        st.rules.push(RuleState { rule, seen: 0, fired: 0 });
        RuleId(st.rules.len() - 1)
    }

    /// How many times rule `id` has fired so far.
    pub fn fired(&self, id: RuleId) -> usize {
        self.shared.lock().rules.get(id.0).map(|r| r.fired).unwrap_or_else(|| panic!("no rule {id:?}"))
    }

    /// How many requests rule `id` has matched so far (skipped ones included).
    pub fn matched(&self, id: RuleId) -> usize {
        self.shared.lock().rules.get(id.0).map(|r| r.seen).unwrap_or_else(|| panic!("no rule {id:?}"))
    }

    /// Spends every rule: from now on the proxy only forwards. Rule ids and their counts stay valid.
    pub fn clear_rules(&self) {
        for r in self.shared.lock().rules.iter_mut() {
            r.rule.times = r.fired;
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.shared.lock().log.clone()
    }

    /// Requests so far with this method whose path contains `path_part`.
    pub fn requests_matching(&self, method: &str, path_part: &str) -> Vec<ProxyRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path().contains(path_part))
            .collect()
    }

    /// Forgets the request log (rules are kept).
    pub fn clear_log(&self) {
        self.shared.lock().log.clear();
    }

    /// The request log, one line per request, for assertion messages.
    pub fn log_text(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                format!(
                    "{} {} len={:?} status={:?} upstream={:?} fault={:?} error={:?}\n",
                    r.method, r.path_and_query, r.body_len, r.status, r.upstream_status, r.fault, r.error
                )
            })
            .collect()
    }
}

async fn serve(
    std_listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop_rx: tokio::sync::oneshot::Receiver<()>,
    ready_tx: std::sync::mpsc::Sender<()>,
) {
    let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
    let _ = ready_tx.send(());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(PROXY_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = &mut stop_rx => break,
        }
    }
}

/// The service: returning `Err` makes hyper close the client connection without writing a response.
async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<ProxyBody>, BoxError> {
    let method = req.method().as_str().to_string();
    let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let body_len = content_length(req.headers());
    let (idx, chosen) = shared.begin(&method, &path_and_query, body_len);
    let result = tokio::time::timeout(PROXY_TIMEOUT, apply(&shared, idx, req, chosen.map(|(_, f)| f))).await;
    let result = match result {
        Ok(r) => r,
        Err(_) => Err(format!("no upstream answer within {PROXY_TIMEOUT:?}").into()),
    };
    match &result {
        Ok(resp) => shared.update(idx, |e| e.status = Some(resp.status().as_u16())),
        Err(err) => {
            let err = err.to_string();
            shared.update(idx, |e| {
                e.status = None;
                if e.error.is_none() {
                    e.error = Some(err);
                }
            });
        }
    }
    result
}

async fn apply(
    shared: &Shared,
    idx: usize,
    req: Request<Incoming>,
    fault: Option<Fault>,
) -> Result<Response<ProxyBody>, BoxError> {
    match fault {
        None => forward(shared, idx, req).await,
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            forward(shared, idx, req).await
        }
        Some(Fault::Status { code, headers, body }) => {
            answer_instead(req.into_body().map_err(BoxError::from).boxed_unsync(), code, headers, body).await
        }
        Some(Fault::MaxBody { limit }) => {
            let Fault::Status { code, headers, body } = Fault::payload_too_large() else { unreachable!() };
            match content_length(req.headers()) {
                Some(len) if len > limit => {
                    answer_instead(req.into_body().map_err(BoxError::from).boxed_unsync(), code, headers, body).await
                }
                Some(_) => forward(shared, idx, req).await,
                None => {
                    // Unknown length: buffer up to the cap, as nginx does, then refuse or forward.
                    let (mut parts, incoming) = req.into_parts();
                    let mut incoming = IdleTimeout::new(incoming.map_err(BoxError::from).boxed_unsync());
                    let mut buf = Vec::new();
                    while let Some(frame) = incoming.frame().await {
                        if let Ok(data) = frame?.into_data() {
                            buf.extend_from_slice(&data);
                        }
                        if buf.len() as u64 > limit {
                            return answer_instead(incoming.boxed_unsync(), code, headers, body).await;
                        }
                    }
                    parts.headers.remove(header::TRANSFER_ENCODING);
                    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(buf.len()));
                    forward_body(shared, idx, &parts, full_bytes(Bytes::from(buf))).await
                }
            }
        }
        Some(Fault::DropResponse) => {
            let (mut sender, _conn) = connect(&shared.upstream).await?;
            let (parts, body) = req.into_parts();
            let upstream_req = upstream_request(shared, &parts, body.map_err(BoxError::from).boxed_unsync())?;
            let mut resp = sender.send_request(upstream_req).await?;
            upstream_answered(shared, idx, &mut resp)?;
            // Let the upstream finish its answer, then never tell the client.
            let _ = IdleTimeout::new(resp.into_body().map_err(BoxError::from).boxed_unsync()).collect().await;
            Err("response dropped by the fault proxy".into())
        }
        Some(Fault::CutBody { after_bytes }) => {
            let (mut sender, conn) = connect(&shared.upstream).await?;
            let (parts, body) = req.into_parts();
            let (cut_tx, cut_rx) = tokio::sync::oneshot::channel::<()>();
            let upstream_req = upstream_request(shared, &parts, cut_body(body, after_bytes, cut_tx))?;
            let send = sender.send_request(upstream_req);
            tokio::pin!(send);
            tokio::select! {
                r = &mut send => {
                    // The upstream answered before the cut (the body was short, or it answered early).
                    if let Ok(mut resp) = r {
                        upstream_answered(shared, idx, &mut resp)?;
                    }
                }
                _ = cut_rx => {
                    // The body stream has errored: wait for hyper to give up on the upstream request.
                    let _ = tokio::time::timeout(Duration::from_secs(2), &mut send).await;
                }
            }
            conn.abort();
            Err(format!("request body cut after {after_bytes} bytes by the fault proxy").into())
        }
    }
}

async fn forward(shared: &Shared, idx: usize, req: Request<Incoming>) -> Result<Response<ProxyBody>, BoxError> {
    let (parts, body) = req.into_parts();
    forward_body(shared, idx, &parts, IdleTimeout::new(body.map_err(BoxError::from).boxed_unsync()).boxed_unsync())
        .await
}

/// Sends `parts` with `body` upstream and passes the answer on.
async fn forward_body(
    shared: &Shared,
    idx: usize,
    parts: &hyper::http::request::Parts,
    body: ProxyBody,
) -> Result<Response<ProxyBody>, BoxError> {
    let (mut sender, _conn) = connect(&shared.upstream).await?;
    let upstream_req = upstream_request(shared, parts, body)?;
    let mut resp = sender.send_request(upstream_req).await?;
    upstream_answered(shared, idx, &mut resp)?;
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, IdleTimeout::new(body.map_err(BoxError::from).boxed_unsync()).boxed_unsync()))
}

/// Answers `code` without forwarding, after reading the whole request body, so the client is not writing
/// into a closed socket.
async fn answer_instead(
    incoming: ProxyBody,
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
) -> Result<Response<ProxyBody>, BoxError> {
    let mut incoming = IdleTimeout::new(incoming);
    while let Some(frame) = incoming.frame().await {
        frame?;
    }
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code)?;
    for (k, v) in headers {
        resp.headers_mut().append(HeaderName::from_bytes(k.as_bytes())?, HeaderValue::from_str(&v)?);
    }
    Ok(resp)
}

/// Makes the upstream's response head fit for the client (hop-by-hop headers removed, upstream URLs in
/// `Location`/`Link`/`Content-Location` pointing at the proxy) and logs status and headers.
fn upstream_answered(shared: &Shared, idx: usize, resp: &mut Response<Incoming>) -> Result<(), BoxError> {
    let headers = resp.headers_mut();
    strip_hop_by_hop(headers);
    let from = shared.upstream_url.as_bytes();
    for name in [header::LOCATION, header::LINK, header::CONTENT_LOCATION] {
        let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
        if values.iter().any(|v| v.as_bytes().windows(from.len()).any(|w| w == from)) {
            headers.remove(&name);
            for v in values {
                let text = String::from_utf8_lossy(v.as_bytes()).replace(&shared.upstream_url, &shared.proxy_url);
                headers.append(&name, HeaderValue::from_str(&text)?);
            }
        }
    }
    let status = resp.status().as_u16();
    let logged: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    shared.update(idx, |e| {
        e.upstream_status = Some(status);
        e.upstream_headers = logged;
    });
    Ok(())
}

/// A fresh HTTP/1.1 connection to the upstream; the returned task drives it (abort it to drop the socket).
async fn connect(
    upstream: &str,
) -> Result<(hyper::client::conn::http1::SendRequest<ProxyBody>, tokio::task::JoinHandle<()>), BoxError> {
    let tcp = tokio::net::TcpStream::connect(upstream).await.map_err(|e| format!("connect to {upstream}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, task))
}

/// The request to send upstream: same method, target and end-to-end headers; `Host` is the upstream.
fn upstream_request(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    body: ProxyBody,
) -> Result<Request<ProxyBody>, BoxError> {
    let target = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = Request::builder().method(parts.method.clone()).uri(target).body(body)?;
    let headers = req.headers_mut();
    *headers = parts.headers.clone();
    strip_hop_by_hop(headers);
    // The proxy already answered any `Expect: 100-continue` itself by reading the body.
    headers.remove(header::EXPECT);
    headers.insert(header::HOST, HeaderValue::from_str(&shared.upstream)?);
    Ok(req)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn full(body: String) -> ProxyBody {
    full_bytes(Bytes::from(body))
}

fn full_bytes(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

/// The request body for [`Fault::CutBody`]: the first `after_bytes` bytes of `incoming`, then (after a short
/// pause so they leave the proxy) an error that makes hyper abort the upstream request; `cut_tx` tells the
/// service that the cut happened.
fn cut_body(incoming: Incoming, after_bytes: u64, cut_tx: tokio::sync::oneshot::Sender<()>) -> ProxyBody {
    enum St {
        Reading { body: Incoming, left: u64, tx: tokio::sync::oneshot::Sender<()> },
        Cut { body: Incoming, tx: tokio::sync::oneshot::Sender<()> },
        Done,
    }
    async fn cut(body: Incoming, tx: tokio::sync::oneshot::Sender<()>) -> Option<(Result<Frame<Bytes>, BoxError>, St)> {
        tokio::time::sleep(CUT_FLUSH).await;
        drop(body);
        let _ = tx.send(());
        Some((Err("request body cut by the fault proxy".into()), St::Done))
    }
    let stream =
        futures_util::stream::unfold(St::Reading { body: incoming, left: after_bytes, tx: cut_tx }, |st| async move {
            match st {
                St::Reading { body, left: 0, tx } | St::Cut { body, tx } => cut(body, tx).await,
                St::Reading { mut body, left, tx } => {
                    let next = match tokio::time::timeout(PROXY_TIMEOUT, body.frame()).await {
                        Ok(next) => next,
                        Err(_) => return Some((Err("request body stalled".into()), St::Done)),
                    };
                    match next {
                        None => cut(body, tx).await,
                        Some(Err(e)) => Some((Err(e.into()), St::Done)),
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) if (data.len() as u64) < left => {
                                let left = left - data.len() as u64;
                                Some((Ok(Frame::data(data)), St::Reading { body, left, tx }))
                            }
                            Ok(data) => Some((Ok(Frame::data(data.slice(..left as usize))), St::Cut { body, tx })),
                            // Trailers: not forwarded.
                            Err(_) => Some((Ok(Frame::data(Bytes::new())), St::Reading { body, left, tx })),
                        },
                    }
                }
                St::Done => None,
            }
        });
    StreamBody::new(stream).boxed_unsync()
}

/// A body that fails when no frame arrives for [`PROXY_TIMEOUT`].
struct IdleTimeout {
    inner: ProxyBody,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeout {
    fn new(inner: ProxyBody) -> IdleTimeout {
        IdleTimeout { inner, sleep: Box::pin(tokio::time::sleep(PROXY_TIMEOUT)) }
    }
}

impl Body for IdleTimeout {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.sleep.as_mut().reset(tokio::time::Instant::now() + PROXY_TIMEOUT);
                Poll::Ready(r)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(format!("body stalled for {PROXY_TIMEOUT:?}").into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `skopeo copy --all oci:LAYOUT:tag docker://<host>/<reference>` over plain HTTP (e.g. through a
/// [`FaultProxy`]: `host` = `proxy.host()`), with `creds` or none, whatever the outcome.
pub fn try_push_layout_via(
    host: &str,
    creds: Option<(&str, &str)>,
    layout: &Path,
    tag: &str,
    reference: &str,
) -> std::process::Output {
    let mut cmd = skopeo_cmd();
    cmd.arg("copy").arg("--all").arg("--dest-tls-verify=false");
    match creds {
        Some((u, p)) => cmd.arg(format!("--dest-creds={u}:{p}")),
        None => cmd.arg("--dest-no-creds"),
    };
    cmd.arg(format!("oci:{}:{tag}", layout.display()));
    cmd.arg(format!("docker://{host}/{reference}"));
    run(cmd)
}

/// `skopeo copy --all docker://<host>/<reference> oci:DEST[:tag]` over plain HTTP, whatever the outcome.
pub fn try_copy_to_layout_via(
    host: &str,
    creds: Option<(&str, &str)>,
    reference: &str,
    dest: &Path,
) -> std::process::Output {
    let mut cmd = skopeo_cmd();
    cmd.arg("copy").arg("--all").arg("--src-tls-verify=false");
    match creds {
        Some((u, p)) => cmd.arg(format!("--src-creds={u}:{p}")),
        None => cmd.arg("--src-no-creds"),
    };
    cmd.arg(format!("docker://{host}/{reference}"));
    match super::skopeo::reference_tag(reference) {
        Some(tag) => cmd.arg(format!("oci:{}:{tag}", dest.display())),
        None => cmd.arg(format!("oci:{}", dest.display())),
    };
    run(cmd)
}
