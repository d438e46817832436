//! A real CNCF distribution registry (Debian's `docker-registry`, 2.8.x) on loopback, one per test: writes a
//! `config.yml` into a tempdir (filesystem storage there, deletes enabled, access log on), picks a free
//! `127.0.0.1` port (retrying if another process grabs it first), spawns `docker-registry serve`, waits until
//! `GET /v2/` answers, and kills the process on drop. Optional TLS (a throwaway CA from [`super::tls`]),
//! htpasswd (bcrypt) or token auth (an in-process [`TokenIssuer`]). The registry's own log — including one
//! combined-format access line per request, e.g.
//! `127.0.0.1 - - [23/Nov/2026:10:55:43 +0000] "GET /v2/foo/blobs/sha256:… HTTP/1.1" 404 157 "" "curl/7.88.1"` —
//! is kept in a file and parsed by [`Registry::access_log`].

use super::http::{self, HttpAuth, HttpResponse};
use super::tls::TestCa;
use super::token::{TokenIssuer, TokenIssuerOpts};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a registry may take to answer `GET /v2/` after spawning.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The registry's authentication.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// `auth: htpasswd` with one bcrypt user.
    Htpasswd { user: String, pass: String },
    /// `auth: token` backed by an in-process [`TokenIssuer`].
    Token(TokenIssuerOpts),
}

impl Auth {
    pub fn htpasswd(user: &str, pass: &str) -> Auth {
        Auth::Htpasswd { user: user.to_string(), pass: pass.to_string() }
    }
}

/// How to start a [`Registry`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOpts {
    /// Serve HTTPS with a throwaway CA ([`Registry::ca_pem_path`]).
    pub tls: bool,
    pub auth: Auth,
    /// Extra YAML appended verbatim at the top level of config.yml (e.g. `validation:` or `proxy:`).
    pub extra_config: String,
    /// The registry binary: `None` is distribution 2.8's `docker-registry`.
    pub binary: Option<std::path::PathBuf>,
}

impl RegistryOpts {
    pub fn plain() -> Self {
        Self::default()
    }

    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Runs distribution v3's `registry` (built by scripts/go-tools.sh) instead of 2.8's `docker-registry`.
    pub fn distribution_v3(mut self) -> Self {
        self.binary = Some(super::require_go_tool("registry"));
        self
    }
}

/// One access-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine {
    pub method: String,
    /// Request target as sent (path and query).
    pub path: String,
    pub status: u16,
    pub user_agent: String,
}

impl AccessLine {
    /// `Some((repo, digest))` when this is a request on `/v2/<repo>/blobs/<digest>` (not uploads).
    pub fn blob(&self) -> Option<(String, String)> {
        let p = self.path.split('?').next()?.strip_prefix("/v2/")?;
        let (repo, digest) = p.rsplit_once("/blobs/")?;
        if digest.starts_with("uploads") || digest.contains('/') {
            return None;
        }
        Some((repo.to_string(), digest.to_string()))
    }

    /// `Some((repo, reference))` for `/v2/<repo>/manifests/<reference>`.
    pub fn manifest(&self) -> Option<(String, String)> {
        let p = self.path.split('?').next()?.strip_prefix("/v2/")?;
        let (repo, r) = p.rsplit_once("/manifests/")?;
        Some((repo.to_string(), r.to_string()))
    }
}

/// A running registry; killed on drop.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    log_path: PathBuf,
    ca: Option<TestCa>,
    auth: Auth,
    token_issuer: Option<TokenIssuer>,
}

impl Registry {
    /// A plain-HTTP registry without auth.
    pub fn plain() -> Registry {
        Registry::start(RegistryOpts::default())
    }

    /// Starts a registry; panics (with the log) if it does not answer within [`START_TIMEOUT`].
    pub fn start(opts: RegistryOpts) -> Registry {
        let bin = opts.binary.clone().unwrap_or_else(|| super::require_tool("docker-registry"));
        let dir = tempfile::Builder::new().prefix("hoist-registry").tempdir().expect("tempdir for registry");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("create storage dir");
        let ca = opts.tls.then(|| TestCa::generate(&dir.path().join("tls")));

        let mut token_issuer = None;
        let auth_yaml = match &opts.auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, pass } => {
                let hash = bcrypt::hash_with_result(pass, 4).expect("bcrypt").format_for_version(bcrypt::Version::TwoY);
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{user}:{hash}\n")).expect("write htpasswd");
                format!("auth:\n  htpasswd:\n    realm: hoist-test-registry\n    path: {}\n", path.display())
            }
            Auth::Token(topts) => {
                let issuer = TokenIssuer::start(topts.clone());
                let yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    issuer.realm(),
                    topts.service,
                    topts.issuer,
                    issuer.cert_path().display()
                );
                token_issuer = Some(issuer);
                yaml
            }
        };

        let log_path = dir.path().join("registry.log");
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let tls_yaml = match &ca {
                Some(ca) => format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    ca.server_cert_path.display(),
                    ca.server_key_path.display()
                ),
                None => String::new(),
            };
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: hoist-test-secret\n{tls_yaml}\
                 {auth_yaml}{extra}\n",
                storage = storage.display(),
                extra = opts.extra_config,
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("write config.yml");
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).expect("open registry log");
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&config_path)
                .current_dir(dir.path())
                .env_remove("REGISTRY_HTTP_ADDR")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));

            let host = format!("127.0.0.1:{port}");
            let ca_der = ca.as_ref().map(|c| c.ca_der.clone());
            match wait_ready(&mut child, &host, ca_der.as_deref()) {
                Ok(()) => {
                    return Registry { child: Some(child), port, dir, log_path, ca, auth: opts.auth, token_issuer };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_err = format!("{e}\n--- registry log ---\n{log}");
                    if !log.contains("address already in use") {
                        panic!("docker-registry did not start: {last_err}");
                    }
                    // Someone took the port between our probe and the registry's bind: try another.
                    let _ = std::fs::remove_file(&log_path);
                }
            }
        }
        panic!("docker-registry did not start after 5 attempts: {last_err}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://…`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.ca.is_some() { "https" } else { "http" }, self.host())
    }

    pub fn is_tls(&self) -> bool {
        self.ca.is_some()
    }

    /// The test CA's PEM file (TLS registries only).
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca.as_ref().expect("ca_pem_path() on a registry started without tls").ca_pem_path
    }

    /// A folder holding only `ca.crt` (skopeo `--cert-dir`), for TLS registries.
    pub fn ca_dir(&self) -> Option<&Path> {
        self.ca.as_ref().map(|c| c.ca_dir.as_path())
    }

    pub fn ca(&self) -> Option<&TestCa> {
        self.ca.as_ref()
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The credentials that work: the htpasswd user, or the token issuer's first user.
    pub fn credentials(&self) -> Option<(String, String)> {
        match &self.auth {
            Auth::None => None,
            Auth::Htpasswd { user, pass } => Some((user.clone(), pass.clone())),
            Auth::Token(_) => self.token_issuer.as_ref().and_then(|t| t.opts().default_credentials()),
        }
    }

    /// The in-process token issuer of an `Auth::Token` registry.
    /// The token issuer, when this registry uses token auth.
    pub fn token_issuer_opt(&self) -> Option<&TokenIssuer> {
        self.token_issuer.as_ref()
    }

    pub fn token_issuer(&self) -> &TokenIssuer {
        self.token_issuer.as_ref().expect("token_issuer() on a registry started without token auth")
    }

    /// The filesystem storage root (`docker/registry/v2/...` below it).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's tempdir (config.yml, log, certs, storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The registry's whole log so far (stderr app log and stdout access log).
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// A position in the log: pass it to [`Registry::access_log_since`] to see only later requests.
    pub fn log_mark(&self) -> usize {
        std::fs::metadata(&self.log_path).map(|m| m.len() as usize).unwrap_or(0)
    }

    /// Every access-log line so far. Waits briefly first: the registry writes a line just after the response.
    pub fn access_log(&self) -> Vec<AccessLine> {
        self.access_log_since(0)
    }

    /// Access-log lines written after `mark` (from [`Registry::log_mark`]).
    pub fn access_log_since(&self, mark: usize) -> Vec<AccessLine> {
        std::thread::sleep(Duration::from_millis(100));
        let text = self.log_text();
        let text = text.get(mark..).unwrap_or("");
        text.lines().filter_map(parse_access_line).collect()
    }

    /// Blob GETs (not HEADs) since `mark`: (repo, digest, status).
    pub fn blob_gets_since(&self, mark: usize) -> Vec<(String, String, u16)> {
        self.access_log_since(mark)
            .into_iter()
            .filter(|l| l.method == "GET")
            .filter_map(|l| l.blob().map(|(r, d)| (r, d, l.status)))
            .collect()
    }

    /// One HTTP request straight to the registry (trusting the test CA when TLS).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        auth: &HttpAuth,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http::request(method, &self.host(), path, self.ca.as_ref().map(|c| c.ca_der.as_slice()), auth, headers, body)
            .unwrap_or_else(|e| panic!("{method} {}{path}: {e}", self.url()))
    }

    /// `GET path` with the registry's working credentials: Basic for htpasswd; for token auth, a token for
    /// `scopes` fetched from the issuer (counted by it).
    pub fn get_authed(&self, path: &str, scopes: &[&str], headers: &[(&str, &str)]) -> HttpResponse {
        let auth = self.auth_for(scopes);
        self.request("GET", path, &auth, headers, b"")
    }

    /// Credentials for direct requests (see [`Registry::get_authed`]).
    pub fn auth_for(&self, scopes: &[&str]) -> HttpAuth {
        match &self.auth {
            Auth::None => HttpAuth::None,
            Auth::Htpasswd { user, pass } => HttpAuth::Basic(user.clone(), pass.clone()),
            Auth::Token(_) => {
                let (u, p) = self.credentials().expect("token issuer has a user");
                let r = self.token_issuer().fetch(Some((&u, &p)), scopes);
                assert_eq!(r.status, 200, "token request failed: {}", r.text());
                HttpAuth::Bearer(r.json()["token"].as_str().expect("token").to_string())
            }
        }
    }

    /// The manifest stored under `repo:reference`, as bytes (Accept: every manifest type).
    pub fn manifest_bytes(&self, repo: &str, reference: &str) -> Option<Vec<u8>> {
        let scope = format!("repository:{repo}:pull");
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json";
        let r = self.get_authed(&format!("/v2/{repo}/manifests/{reference}"), &[&scope], &[("Accept", accept)]);
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("GET manifest {repo}:{reference}: {s} {}", r.text()),
        }
    }

    /// The tags of `repo` (empty when the repository does not exist).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let scope = format!("repository:{repo}:pull");
        let r = self.get_authed(&format!("/v2/{repo}/tags/list"), &[&scope], &[]);
        match r.status {
            200 => r.json()["tags"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t.as_str().map(String::from)).collect())
                .unwrap_or_default(),
            404 => Vec::new(),
            s => panic!("GET tags of {repo}: {s} {}", r.text()),
        }
    }

    /// Whether `repo` has blob `digest` (HEAD, authorised).
    pub fn has_blob(&self, repo: &str, digest: &str) -> bool {
        let scope = format!("repository:{repo}:pull");
        let auth = self.auth_for(&[&scope]);
        let r = self.request("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &auth, &[], b"");
        r.status == 200
    }

    /// The OS process id of the registry.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills the registry now (e.g. to test a push against a vanished server). Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

fn wait_ready(child: &mut Child, host: &str, ca_der: Option<&[u8]>) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("docker-registry exited early: {status}"));
        }
        if http::request("GET", host, "/v2/", ca_der, &HttpAuth::None, &[], b"").is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("GET {host}/v2/ did not answer within {START_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses a combined-log-format line: `IP - USER [DATE] "METHOD PATH PROTO" STATUS SIZE "REFERER" "UA"`.
pub fn parse_access_line(line: &str) -> Option<AccessLine> {
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once('"')?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status: u16 = rest.split_whitespace().next()?.parse().ok()?;
    let user_agent = rest.rsplit_once("\" \"").map(|(_, ua)| ua.trim_end_matches('"').to_string()).unwrap_or_default();
    Some(AccessLine { method, path, status, user_agent })
}
