//! The transport for one registry host: picks the scheme, holds the HTTP client (rustls, hickory DNS),
//! the credential and the token cache, and sends requests through the auth handshake described in
//! [`super::auth`].
//!
//! Requests are given as closures that build them afresh, because a streamed body cannot be replayed:
//! when a 401 asks for a new token, the closure builds the request (and reopens its body) again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use url::Url;

use super::auth::{self, Challenge, Token, TokenCache, TokenResponse};
use super::chunking::Chunking;
use super::credentials::{Credential, CredentialSource};
use super::error as rerr;
use super::events::{self, Trace};
use super::tls::{self, TlsOptions};
use crate::error::{Error, Result};
use crate::model::{is_loopback_host, DisplaySafeUrl};

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Use plain HTTP even for non-loopback hosts (`--plain-http`).
    pub plain_http: bool,
    pub tls: TlsOptions,
    /// Idle connections kept per host (the push concurrency).
    pub max_idle: usize,
    /// Hosts registries.conf marks `insecure = true` (`*.example.com` patterns too): for them alone,
    /// certificates are not verified and plain HTTP is tried when HTTPS fails, as containers/image
    /// does (see [`super::mirrors::Mirrors::insecure_hosts`]).
    pub insecure_hosts: Vec<String>,
}

impl ClientOptions {
    /// These options as they apply to `host`: a registries.conf `insecure = true` host gets `--insecure`'s
    /// TLS (said every run, as `--insecure` is).
    pub fn for_host(&self, host: &str) -> ClientOptions {
        if self.is_insecure_host(host) && !self.tls.insecure {
            eprintln!("warning: {host} is marked insecure in registries.conf: its TLS certificate is not verified, and plain HTTP is used when HTTPS fails");
            return ClientOptions { tls: TlsOptions { insecure: true, ..self.tls.clone() }, ..self.clone() };
        }
        self.clone()
    }

    /// Whether registries.conf marks `host` insecure.
    pub fn is_insecure_host(&self, host: &str) -> bool {
        let bare = host.split(':').next().unwrap_or_default();
        self.insecure_hosts.iter().any(|h| match h.strip_prefix('*') {
            Some(domain) => bare.ends_with(domain) && bare.len() > domain.len(),
            None => h == host,
        })
    }
}

/// A connected registry: scheme known, credentials (if any) checked.
pub struct Client {
    host: String,
    base: Url,
    http: reqwest::Client,
    credential: Option<(Credential, CredentialSource)>,
    challenge: Mutex<Option<Challenge>>,
    tokens: TokenCache,
    token_requests: AtomicU64,
    /// The upload chunk size for this registry (learned from 413s, or `--chunk-size`).
    chunking: Chunking,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &DisplaySafeUrl::new(self.base.clone()))
            .field("credential", &self.credential)
            .finish()
    }
}

/// A request builder that can be called again for a retry or a re-authentication.
pub type Build<'a> = &'a (dyn Fn(&reqwest::Client) -> Result<RequestBuilder> + Sync);

impl Client {
    /// Connects to `host` (`host[:port]`): picks HTTPS or HTTP, and learns how it authenticates from
    /// `GET /v2/`.
    ///
    /// Loopback hosts are tried over HTTPS first and fall back to plain HTTP, as docker treats
    /// `localhost`; other hosts use HTTPS unless `--plain-http`.
    pub async fn connect(
        host: &str,
        opts: &ClientOptions,
        credential: Option<(Credential, CredentialSource)>,
    ) -> Result<Arc<Client>> {
        let opts = &opts.for_host(host);
        let http = build_http(host, opts)?;
        let (base, resp) = open(host, opts, &http).await?;
        if base.scheme() == "http" && !is_loopback_host(host) && credential.is_some() {
            return Err(Error::usage(format!(
                "refusing to send credentials for {host} over plain HTTP (only loopback registries may use HTTP with credentials)"
            )));
        }
        let client = Client {
            host: host.to_string(),
            base,
            http,
            credential,
            challenge: Mutex::new(None),
            tokens: TokenCache::default(),
            token_requests: AtomicU64::new(0),
            chunking: Chunking::default(),
        };
        client.learn_from_ping(resp).await?;
        events::trace(|| client.connected_trace());
        Ok(Arc::new(client))
    }

    /// `GET /v2/` on `host` exactly as [`Client::connect`] sends it, reported as seen rather than judged
    /// (`hoist doctor` diagnoses a web UI's HTML or 404 from it).
    pub async fn ping(host: &str, opts: &ClientOptions) -> Result<Ping> {
        let opts = &opts.for_host(host);
        let http = build_http(host, opts)?;
        let (base, resp) = open(host, opts, &http).await?;
        let status = resp.status().as_u16();
        let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let api_version = header(reqwest::header::HeaderName::from_static("docker-distribution-api-version"));
        let challenges = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let body = resp.bytes().await.unwrap_or_default();
        let body_head = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        Ok(Ping {
            url: base.join("v2/").expect("static path").to_string(),
            status,
            content_type,
            api_version,
            challenges,
            body_head,
        })
    }

    async fn learn_from_ping(&self, resp: Response) -> Result<()> {
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            self.remember_challenge(&resp);
            return Ok(());
        }
        if status.is_success() {
            return Ok(());
        }
        let host = self.host.clone();
        let err = rerr::from_response(resp).await.context(format!("GET {}v2/", DisplaySafeUrl::new(self.base.clone())));
        Err(if status == StatusCode::NOT_FOUND {
            err.context(format!("{host} is not a registry endpoint")).with_hint(
                "check the host and port; self-managed GitLab registries usually listen on :5050 (CI_REGISTRY), not on the GitLab web host",
            )
        } else {
            err.context(format!("connecting to registry {host}"))
        })
    }

    fn remember_challenge(&self, resp: &Response) {
        let parsed = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(auth::parse_challenge)
            // Prefer Bearer when a registry offers both.
            .max_by_key(|c| matches!(c, Challenge::Bearer { .. }));
        if let Some(c) = parsed {
            *self.challenge.lock().expect("challenge lock") = Some(c);
        }
    }

    /// How big upload bodies may be on this registry.
    pub fn chunking(&self) -> &Chunking {
        &self.chunking
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// What verbose mode says once a registry is reached: scheme, auth scheme, and whose credential.
    fn connected_trace(&self) -> Trace {
        let auth = match &*self.challenge.lock().expect("challenge lock") {
            None => "none asked".to_string(),
            Some(Challenge::Basic) => "Basic".to_string(),
            Some(Challenge::Bearer { realm, service }) => format!(
                "Bearer (realm {}, service {})",
                crate::model::safe_url::display_safe(realm),
                service.as_deref().unwrap_or("-")
            ),
        };
        Trace::Connected {
            host: self.host.clone(),
            base: DisplaySafeUrl::new(self.base.clone()),
            auth,
            user: self.credential.as_ref().map(|(c, _)| c.username.clone()),
            source: self.credential.as_ref().map(|(_, s)| s.to_string()),
        }
    }
    pub fn base(&self) -> &Url {
        &self.base
    }
    /// Number of token requests made so far (for the summary and the tests).
    pub fn token_requests(&self) -> u64 {
        self.token_requests.load(Ordering::Relaxed)
    }
    pub fn credential_source(&self) -> Option<&CredentialSource> {
        self.credential.as_ref().map(|(_, s)| s)
    }

    /// A URL on this registry: `v2/<repo>/blobs/uploads/`, or an absolute/relative `Location`.
    pub fn url(&self, path_or_location: &str) -> Result<Url> {
        self.base
            .join(path_or_location)
            .map_err(|e| Error::other(format!("registry gave an unusable location {path_or_location:?}: {e}")))
    }

    /// Sends a request built by `build`, authenticating for `scopes`. Returns the response whatever its
    /// status, except that a 401 first triggers one re-authentication and resend.
    pub async fn send(&self, scopes: &[String], build: Build<'_>) -> Result<Response> {
        let mut authz = self.authorization(scopes, None).await?;
        for attempt in 0..2 {
            let mut req = build(&self.http)?;
            if let Some(a) = &authz {
                req = req.header(AUTHORIZATION, a.as_str());
            }
            let resp = execute(&self.http, req).await.map_err(rerr::from_reqwest)?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(resp);
            }
            let before = self.challenge.lock().expect("challenge lock").clone();
            self.remember_challenge(&resp);
            let after = self.challenge.lock().expect("challenge lock").clone();
            let fresh = self.authorization(scopes, authz.as_deref()).await?;
            // Nothing new to offer (no credential, or Basic already sent): the 401 stands.
            if fresh == authz && before == after {
                return Ok(resp);
            }
            authz = fresh;
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Turns a failed response into an error, with credential hints on 401.
    pub async fn fail(&self, resp: Response) -> Error {
        let status = resp.status();
        let err = rerr::from_response(resp).await;
        if status != StatusCode::UNAUTHORIZED {
            return err;
        }
        match &self.credential {
            None => err.with_hint(format!(
                "no credentials were found for {}: pass --username and --password-stdin, set HARBOR_USERNAME/HARBOR_PASSWORD or \
                 CI_REGISTRY_USER/CI_REGISTRY_PASSWORD, or log in with a docker config",
                self.host
            )),
            Some((c, src)) => err.with_hint(username_hint(&c.username, src)),
        }
    }

    /// The `Authorization` value for `scopes`. `stale` is a value that just got a 401: a token equal
    /// to it is fetched again.
    async fn authorization(&self, scopes: &[String], stale: Option<&str>) -> Result<Option<String>> {
        let challenge = self.challenge.lock().expect("challenge lock").clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credential.as_ref().map(|(c, _)| c.basic_header())),
            Some(Challenge::Bearer { realm, service }) => {
                let slot = self.tokens.slot(&auth::scope_key(scopes));
                let mut guard = slot.lock().await;
                let valid = guard.as_ref().filter(|t| {
                    t.refresh_at > Instant::now() && stale != Some(format!("Bearer {}", t.value.expose()).as_str())
                });
                if let Some(t) = valid {
                    return Ok(Some(format!("Bearer {}", t.value.expose())));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes).await?;
                let value = format!("Bearer {}", token.value.expose());
                *guard = Some(token);
                Ok(Some(value))
            }
        }
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<Token> {
        let ctx = || format!("getting a token from {}", crate::model::safe_url::display_safe(realm));
        let mut url = Url::parse(realm)
            .map_err(|e| Error::other(format!("the registry's token realm is not a URL: {e}")).context(ctx()))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let mut req = self.http.get(url.clone());
        if let Some((cred, _)) = &self.credential {
            let host = url.host_str().unwrap_or_default();
            if url.scheme() == "http" && !is_loopback_host(host) {
                return Err(Error::usage(format!(
                    "refusing to send credentials to token service {} over plain HTTP",
                    DisplaySafeUrl::new(url.clone())
                )));
            }
            req = req.header(AUTHORIZATION, cred.basic_header());
        }
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        let fetched_at = Instant::now();
        let resp = execute(&self.http, req).await.map_err(|e| rerr::from_reqwest(e).context(ctx()))?;
        if !resp.status().is_success() {
            return Err(self.fail(resp).await.context(ctx()));
        }
        let body = rerr::read_capped(resp, rerr::TOKEN_BODY_LIMIT).await.map_err(|e| e.context(ctx()))?;
        let body: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| Error::auth(format!("the answer is not a token: {e}")).context(ctx()))?;
        let token =
            body.into_token(fetched_at).ok_or_else(|| Error::auth("the answer holds no token").context(ctx()))?;
        events::trace(|| Trace::Token {
            realm: DisplaySafeUrl::new(url.clone()),
            service: service.map(str::to_string),
            asked: scopes.to_vec(),
            granted: auth::jwt_scopes(token.value.expose()),
        });
        Ok(token)
    }

    /// The challenge `GET /v2/` answered with (`None`: the registry asked for no credentials).
    pub fn challenge(&self) -> Option<Challenge> {
        self.challenge.lock().expect("challenge lock").clone()
    }

    /// Checks the credential the way `docker login` does: Basic on `GET /v2/` for a Basic registry; a token
    /// without scope for a Bearer registry (even Harbor refuses bad credentials there: with a scope it would
    /// hand out an anonymous token instead).
    pub async fn verify_credentials(&self) -> Result<()> {
        let url = self.url("v2/")?;
        let resp = self.send(&[], &|h| Ok(h.get(url.clone()))).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self.fail(resp).await.context(format!("logging in to {}", self.host)))
    }

    /// The actions the registry's token grants on `repository` for `scopes`: `None` when the registry does
    /// not use tokens or its token is opaque (not a JWT).
    pub async fn granted_actions(&self, repository: &str, scopes: &[String]) -> Result<Option<Vec<String>>> {
        let Some(authz) = self.authorization(scopes, None).await? else {
            return Ok(None);
        };
        Ok(authz.strip_prefix("Bearer ").and_then(|token| auth::jwt_actions(token, repository)))
    }

    /// `GET` (or `HEAD`) of a non-registry path on this host — Harbor's `/api/v2.0/…` — with the credential
    /// as Basic auth. reqwest is built without a cookie store, so no cookie is ever kept between calls
    /// (Harbor: a kept `sid` cookie turns later POSTs into "CSRF token invalid").
    pub async fn api_get(&self, path_and_query: &str, head: bool, headers: &[(&str, &str)]) -> Result<Response> {
        let method = if head { reqwest::Method::HEAD } else { reqwest::Method::GET };
        self.api_send(method, path_and_query, headers).await
    }

    /// Like [`Client::api_get`] with any method and no body (Harbor's `POST …/scan` takes none).
    pub async fn api_send(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        let url = self.url(path_and_query.trim_start_matches('/'))?;
        let shown = method.to_string();
        let mut req = self.http.request(method, url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some((cred, _)) = &self.credential {
            req = req.header(AUTHORIZATION, cred.basic_header());
        }
        execute(&self.http, req)
            .await
            .map_err(|e| rerr::from_reqwest(e).context(format!("{shown} {path_and_query} on {}", self.host)))
    }

    /// `scheme://host[:port]/` of this registry (for links to its web UI).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Makes sure we can push to `repository` before uploading anything: fetches the token for
    /// `scopes` and, when it is a JWT, checks that it grants push. Token services hand out a token
    /// with fewer rights than asked (Harbor even gives bad credentials an anonymous token), so a token
    /// alone proves nothing.
    pub async fn check_push_access(&self, repository: &str, scopes: &[String]) -> Result<()> {
        let Some(actions) = self.granted_actions(repository, scopes).await? else {
            return Ok(());
        };
        if actions.iter().any(|a| a == "push" || a == "*") {
            return Ok(());
        }
        let who = match &self.credential {
            Some((c, src)) => format!("{} (from {src})", c.username),
            None => "anonymous (no credentials found)".to_string(),
        };
        let err = Error::auth(format!(
            "the registry's token grants {who} {} on {}/{repository}, not push",
            if actions.is_empty() { "nothing".to_string() } else { actions.join(",") },
            self.host
        ));
        Err(match &self.credential {
            Some((c, src)) if actions.is_empty() => err.with_hint(username_hint(&c.username, src)),
            Some(_) => err.with_hint("the account can read but not push: give it push permission on the project"),
            None => err.with_hint("pass --username and --password-stdin, or set HARBOR_USERNAME/HARBOR_PASSWORD"),
        })
    }
}

/// Sends the first `GET /v2/` to `host`, choosing the scheme: loopback hosts are tried over HTTPS first and fall
/// back to plain HTTP, as docker treats `localhost`; other hosts use HTTPS unless `--plain-http`.
async fn open(host: &str, opts: &ClientOptions, http: &reqwest::Client) -> Result<(Url, Response)> {
    let mut first_err = None;
    let schemes: &[&str] = if opts.is_insecure_host(host) && !opts.plain_http {
        &["https", "http"]
    } else {
        schemes_to_try(host, opts.plain_http)
    };
    for scheme in schemes {
        let base = Url::parse(&format!("{scheme}://{host}/"))
            .map_err(|e| Error::usage(format!("invalid registry host {host:?}: {e}")))?;
        match execute(http, http.get(base.join("v2/").expect("static path"))).await {
            Ok(resp) => return Ok((base, resp)),
            Err(e) => {
                // A server that speaks TLS with a certificate we do not trust is a TLS registry:
                // say so, rather than fall back to HTTP (it would answer 400 to plain HTTP).
                let cert_problem = rerr::is_certificate_error(&e);
                let err = rerr::from_reqwest(e);
                if cert_problem {
                    return Err(err.context(format!("connecting to registry {host}")));
                }
                first_err.get_or_insert(err);
            }
        }
    }
    let err = first_err.expect("at least one scheme tried");
    Err(err.context(format!("connecting to registry {host}")))
}

/// What `GET /v2/` answered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ping {
    pub url: String,
    pub status: u16,
    pub content_type: Option<String>,
    /// `Docker-Distribution-API-Version` (registries send `registry/2.0`).
    pub api_version: Option<String>,
    /// Every `WWW-Authenticate` value.
    pub challenges: Vec<String>,
    /// The first 512 bytes of the body, as text.
    pub body_head: String,
}

/// What to check when a username is refused.
fn username_hint(username: &str, src: &CredentialSource) -> String {
    let mut hint =
        format!("the registry refused user {username:?} (credentials from {src}); check the password or token");
    if let Some(issue) = super::credentials::robot_name_issue(username) {
        hint.push_str("; ");
        hint.push_str(&issue);
    }
    hint
}

/// The schemes to try for `host`, in order: HTTPS only, unless `--plain-http` (HTTP only) or the host is
/// loopback (HTTPS, then HTTP, as docker treats `localhost`). A non-loopback host never falls back to
/// plain HTTP by itself.
fn schemes_to_try(host: &str, plain_http: bool) -> &'static [&'static str] {
    if plain_http {
        &["http"]
    } else if is_loopback_host(host) {
        &["https", "http"]
    } else {
        &["https"]
    }
}

/// Whether a redirect from `from` to `to` may be followed: anything but HTTPS → plain HTTP to a
/// non-loopback host (a downgrade would expose the request and its answer).
fn redirect_allowed(from: &Url, to: &Url) -> bool {
    !(from.scheme() == "https" && to.scheme() == "http" && !is_loopback_host(to.host_str().unwrap_or_default()))
}

/// Sends one request: the single place every HTTP exchange of hoist goes through, so verbose mode sees
/// them all (method, safe URL, status, sizes, time — never a header).
pub(super) async fn execute(
    http: &reqwest::Client,
    req: RequestBuilder,
) -> std::result::Result<Response, reqwest::Error> {
    let req = req.build()?;
    if !events::tracing() {
        return http.execute(req).await;
    }
    let method = req.method().to_string();
    let url = DisplaySafeUrl::new(req.url().clone());
    let sent = req
        .body()
        .and_then(|b| b.as_bytes())
        .map(|b| b.len() as u64)
        .or_else(|| req.headers().get(reqwest::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok()));
    let started = Instant::now();
    let result = http.execute(req).await;
    let elapsed = started.elapsed();
    events::trace(|| match &result {
        Ok(resp) => Trace::Exchange {
            method,
            redirected_to: (resp.url() != url.expose()).then(|| DisplaySafeUrl::new(resp.url().clone())),
            url,
            status: Some(resp.status().as_u16()),
            error: None,
            sent,
            received: resp.content_length(),
            elapsed,
        },
        Err(e) => Trace::Exchange {
            method,
            url,
            status: None,
            error: Some(rerr::from_reqwest_ref(e)),
            sent,
            received: None,
            redirected_to: None,
            elapsed,
        },
    });
    result
}

pub(super) fn build_http(host: &str, opts: &ClientOptions) -> Result<reqwest::Client> {
    let tls = tls::client_config(host, &opts.tls)?;
    reqwest::Client::builder()
        .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(opts.max_idle.max(1))
        // Registries redirect blob GETs to storage; never from HTTPS down to plain HTTP off loopback.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let from = attempt.previous().last().cloned();
            if attempt.previous().len() > 5 {
                attempt.error("more than 5 redirects")
            } else if from.is_some_and(|f| !redirect_allowed(&f, attempt.url())) {
                let to = DisplaySafeUrl::new(attempt.url().clone());
                attempt.error(format!("refusing a redirect from HTTPS to plain HTTP ({to})"))
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|e| Error::other(format!("setting up HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_silent_downgrade_to_http_off_loopback() {
        assert_eq!(schemes_to_try("harbor.example.com", false), ["https"]);
        assert_eq!(schemes_to_try("harbor.example.com:8443", false), ["https"]);
        assert_eq!(schemes_to_try("10.0.0.5:5000", false), ["https"]);
        assert_eq!(schemes_to_try("localhost:5000", false), ["https", "http"]);
        assert_eq!(schemes_to_try("127.0.0.1:5000", false), ["https", "http"]);
        assert_eq!(schemes_to_try("[::1]:5000", false), ["https", "http"]);
        assert_eq!(schemes_to_try("harbor.example.com", true), ["http"], "only when asked with --plain-http");
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(!redirect_allowed(&u("https://h.io/v2/a/blobs/x"), &u("http://s3.example.com/b?sig=1")));
        assert!(redirect_allowed(&u("https://h.io/v2/a/blobs/x"), &u("https://s3.example.com/b")));
        assert!(redirect_allowed(&u("http://127.0.0.1:5000/v2/"), &u("http://127.0.0.1:9000/b")));
        assert!(redirect_allowed(&u("https://127.0.0.1:5000/v2/"), &u("http://127.0.0.1:9000/b")));
    }

    #[tokio::test]
    async fn credentials_never_go_to_a_plain_http_token_service_off_loopback() {
        let client = Client {
            host: "h.io".into(),
            base: Url::parse("https://h.io/").unwrap(),
            http: build_http("h.io", &ClientOptions::default()).unwrap(),
            credential: Some((Credential::new("u", "Secret-pw-1"), CredentialSource::Flags)),
            challenge: Mutex::new(None),
            tokens: TokenCache::default(),
            token_requests: AtomicU64::new(0),
            chunking: Chunking::default(),
        };
        let e = client.fetch_token("http://auth.example.com/token", Some("reg"), &[]).await.unwrap_err();
        assert!(e.to_string().contains("refusing to send credentials to token service"), "{e}");
        assert_eq!(client.token_requests(), 0, "nothing was sent");
        assert!(!format!("{client:?}").contains("Secret-pw-1"));
    }

    #[test]
    fn username_hints_spot_eaten_robot_names() {
        assert!(username_hint("robot+ci", &CredentialSource::HarborEnv).contains("eaten"));
        assert!(username_hint("robot$+ci", &CredentialSource::HarborEnv).contains("eaten"));
        assert!(!username_hint("robot$proj+ci", &CredentialSource::HarborEnv).contains("eaten"));
    }
}
