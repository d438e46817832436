//! A **fake Harbor** for the tests — not Harbor (which cannot run here), but an axum server following Harbor's
//! documented API (`../shared/reference/harbor-api-v2.0-swagger.yaml`) and the field notes, in front of a real
//! distribution registry with token auth:
//!
//! - `/service/token` (realm of every challenge, `service=harbor-registry`): Harbor's behaviour — bad credentials
//!   **with a scope** get 200 and an anonymous token, without a scope 401; tokens are signed by the harness's ES256
//!   [`TokenIssuer`] (the registry trusts it), granting what the robot's project permissions allow.
//! - `/v2/`: `GET /v2/` with Basic credentials answers 200 or 401 as Harbor does; everything else is proxied to the
//!   registry, with `WWW-Authenticate` and `Location` rewritten to the fake's own address.
//! - `/api/v2.0/`: `ping`, `HEAD /projects?project_name=`, `GET /projects?name=`, `GET /projects/{name}`
//!   (`X-Is-Resource-Name`; 403 for a robot without project read on a private project),
//!   `GET /users/current/permissions?scope=/project/{id}&relative=true`, `GET /projects/{name}/immutabletagrules`,
//!   `GET /projects/{name}/summary` (quota) — with Harbor's `{"errors":[{"code","message"}]}` error shapes.
//! - the scan API (`hoist scan`): `POST …/repositories/{repo}/artifacts/{ref}/scan` (202; 409 while a scan is
//!   pending or running; 412 without an active scanner; 400 for a chart; 403 without `scan:create`),
//!   `GET …/artifacts/{ref}?with_scan_overview=true` (the overview only with `X-Accept-Vulnerabilities`, as Harbor;
//!   Pending → Running → Success over a set number of reads, or Error, or Running forever — see [`FakeScan`]),
//!   `GET …/additions/vulnerabilities` (403 without `artifact-addition:read`; an index's children each have theirs),
//!   `GET …/scan/{report_id}/log`, `GET /projects/{name}/scanner`, `GET /system/CVEAllowlist`, and the project's
//!   `cve_allowlist`. Repository names holding `/` must come encoded twice (`a%252Fb`), as Harbor's router needs:
//!   once-encoded, the fake answers 404 like Harbor. Artifacts are read from the real registry behind the fake
//!   (digest, index children, chart or image), with an internal reader account (`!harbor-core`).
//!
//! - Referrers (Harbor 2.9+): a manifest PUT whose body has a `subject` is answered with `OCI-Subject` and
//!   recorded as an accessory of the subject, classified as Harbor does (`signature.cosign` for cosign's
//!   `application/vnd.dev.cosign.artifact.sig.v1+json`, `signature.notation`, `harbor.sbom`, else
//!   `subject.accessory`); `GET /v2/<name>/referrers/<digest>` serves them as an index (200 with an empty
//!   index for an unknown subject, never 404; `?artifactType=` filters and says so in `OCI-Filters-Applied`;
//!   401 when the registry refuses the caller a HEAD of the subject);
//!   `GET /api/v2.0/projects/{p}/repositories/{r}/artifacts/{digest}/accessories` lists them with their `type`.
//!   Kept in memory only: what is attached before the fake started, or by legacy `.sig` tags, is not seen.
//!
//! Robots are plain users here (`robot$proj+name`); their permissions are Harbor's (resource, action) pairs.

use super::http::{self, HttpAuth};
use super::registry::{Auth, Registry, RegistryOpts};
use super::server::ServerThread;
use super::token::{Grant, TokenIssuerOpts};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One project on the fake.
#[derive(Debug, Clone)]
pub struct FakeProject {
    pub id: i64,
    pub name: String,
    pub public: bool,
    /// Immutable tag rules as Harbor's API returns them (`ImmutableRule` JSON).
    pub immutable_rules: Vec<serde_json::Value>,
    /// Storage quota in bytes (`-1` = unlimited) and usage.
    pub quota_hard: i64,
    pub quota_used: i64,
    /// The project's scanner: `Some((name, deactivated))`; `None`: no scanner at all (scans answer 412).
    pub scanner: Option<(String, bool)>,
    /// How scans of this project's artifacts go.
    pub scan: FakeScan,
    /// Scan-on-push: every artifact is already being scanned when first seen (a `POST …/scan` then answers 409).
    pub scan_on_push: bool,
    /// The project's CVE allowlist and its expiry (seconds since the epoch).
    pub allowlist: Vec<String>,
    pub allowlist_expires_at: Option<i64>,
}

/// How the fake's scanner behaves (counted in reads of the artifact's scan overview after the scan starts).
#[derive(Debug, Clone)]
pub enum FakeScan {
    /// Pending at the first read, Running (with a percentage) until read `polls`, then Success; the report holds
    /// `vulns` (Harbor's vulnerability items). An item with `"x_fake_child": N` is only in an index's N-th child.
    Succeeds { polls: u32, vulns: Vec<serde_json::Value> },
    /// Error from read `polls` on, with this scan log.
    Fails { polls: u32, log: String },
    /// Running for ever (a stuck job service).
    Never,
}

impl FakeScan {
    /// Success after 3 reads with [`FakeScan::sample_vulns`].
    pub fn default_success() -> FakeScan {
        FakeScan::Succeeds { polls: 3, vulns: FakeScan::sample_vulns() }
    }

    /// Five findings in Trivy's shape: a fixable Critical with a CWE, an unfixed High, a fixable GHSA Medium, an
    /// unfixed Negligible, and a fixable Low found only in an index's second child.
    pub fn sample_vulns() -> Vec<serde_json::Value> {
        let v = |id: &str, pkg: &str, ver: &str, fix: &str, sev: &str, cwe: &[&str]| {
            serde_json::json!({
                "id": id, "package": pkg, "version": ver, "fix_version": fix, "severity": sev,
                "description": format!("{id}: a flaw in {pkg} <{ver}> & more"),
                "links": [format!("https://avd.aquasec.com/nvd/{}", id.to_ascii_lowercase())],
                "layer": null, "cwe_ids": cwe,
                "preferred_cvss": {"score_v3": 9.8, "score_v2": null, "vector_v3": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "vector_v2": ""},
                "vendor_attributes": {}
            })
        };
        let mut low = v("CVE-2024-0005", "curl", "8.5.0-2", "8.6.0-1", "Low", &[]);
        low["x_fake_child"] = 1.into();
        vec![
            v("CVE-2024-0001", "openssl", "3.0.11-1", "3.0.13-1", "Critical", &["CWE-787"]),
            v("CVE-2024-0002", "zlib1g", "1:1.2.13", "", "High", &[]),
            v("GHSA-aaaa-bbbb-cccc", "requests", "2.31.0", "2.32.0", "Medium", &["CWE-20"]),
            v("CVE-2023-0003", "bash", "5.2.15-2", "", "Negligible", &[]),
            low,
        ]
    }
}

impl FakeProject {
    pub fn new(id: i64, name: &str) -> FakeProject {
        FakeProject {
            id,
            name: name.into(),
            public: false,
            immutable_rules: Vec::new(),
            quota_hard: -1,
            quota_used: 0,
            scanner: Some(("Trivy".into(), false)),
            scan: FakeScan::default_success(),
            scan_on_push: false,
            allowlist: Vec::new(),
            allowlist_expires_at: None,
        }
    }

    pub fn scanning(mut self, scan: FakeScan) -> FakeProject {
        self.scan = scan;
        self
    }

    pub fn scanner(mut self, scanner: Option<(&str, bool)>) -> FakeProject {
        self.scanner = scanner.map(|(n, d)| (n.to_string(), d));
        self
    }

    pub fn scan_on_push(mut self) -> FakeProject {
        self.scan_on_push = true;
        self
    }

    pub fn allowlist(mut self, cves: &[&str], expires_at: Option<i64>) -> FakeProject {
        self.allowlist = cves.iter().map(|c| c.to_string()).collect();
        self.allowlist_expires_at = expires_at;
        self
    }

    /// Adds Harbor's rule "tags matching `tag_pattern` in repositories matching `**`".
    pub fn immutable(mut self, tag_pattern: &str) -> FakeProject {
        let id = self.immutable_rules.len() as i64 + 1;
        self.immutable_rules.push(serde_json::json!({
            "id": id, "priority": 0, "disabled": false, "action": "immutable", "template": "immutable_template",
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tag_pattern}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}
        }));
        self
    }

    pub fn quota(mut self, hard: i64, used: i64) -> FakeProject {
        self.quota_hard = hard;
        self.quota_used = used;
        self
    }
}

/// A robot account (or user) and its permissions: (project, resource, action).
#[derive(Debug, Clone)]
pub struct FakeRobot {
    pub name: String,
    pub secret: String,
    pub perms: Vec<(String, String, String)>,
}

impl FakeRobot {
    pub fn new(name: &str, secret: &str) -> FakeRobot {
        FakeRobot { name: name.into(), secret: secret.into(), perms: Vec::new() }
    }

    /// Grants `resource:action` pairs on `project`, e.g. `&["repository:pull", "repository:push"]`.
    pub fn can(mut self, project: &str, perms: &[&str]) -> FakeRobot {
        for p in perms {
            let (r, a) = p.split_once(':').expect("resource:action");
            self.perms.push((project.into(), r.into(), a.into()));
        }
        self
    }

    /// What a typical CI robot gets: pull, push, list and read on repositories and artifacts, immutable-tag list.
    pub fn ci(name: &str, secret: &str, project: &str) -> FakeRobot {
        FakeRobot::new(name, secret).can(
            project,
            &[
                "repository:pull",
                "repository:push",
                "repository:list",
                "artifact:list",
                "artifact:read",
                "immutable-tag:list",
                "project:read",
            ],
        )
    }

    fn has(&self, project: &str, resource: &str, action: &str) -> bool {
        self.perms.iter().any(|(p, r, a)| p == project && r == resource && a == action)
    }
}

struct Shared {
    projects: Vec<FakeProject>,
    robots: Vec<FakeRobot>,
    registry_host: String,
    issuer_host: String,
    self_host: String,
    /// The registry, read by the scan API with the internal reader account.
    registry: Arc<Registry>,
    /// Scan jobs by artifact digest.
    scans: Mutex<HashMap<String, ScanJob>>,
    /// Every scan request the fake answered: (method, path as sent, status).
    scan_requests: Arc<Mutex<Vec<(String, String, u16)>>>,
    /// Accessories recorded from manifest PUTs with a `subject`, in push order.
    accessories: std::sync::Mutex<Vec<FakeAccessory>>,
}

/// A manifest pushed with a `subject`, as the fake recorded it.
#[derive(Debug, Clone)]
struct FakeAccessory {
    repository: String,
    subject: String,
    /// Harbor's accessory type (`signature.cosign`, `signature.notation`, `harbor.sbom`, `subject.accessory`).
    kind: String,
    /// The descriptor the referrers API lists (mediaType, digest, size, artifactType, annotations).
    descriptor: serde_json::Value,
}

/// Harbor's accessory type for an artifact type (its subject middleware's classification).
pub fn harbor_accessory_type(artifact_type: &str) -> &'static str {
    match artifact_type {
        "application/vnd.dev.cosign.artifact.sig.v1+json" => "signature.cosign",
        "application/vnd.cncf.notary.signature" => "signature.notation",
        "application/vnd.goharbor.harbor.sbom.v1" => "harbor.sbom",
        _ => "subject.accessory",
    }
}

/// One artifact's scan.
#[derive(Debug, Clone)]
struct ScanJob {
    report_id: String,
    plan: FakeScan,
    /// Overview reads since the scan started.
    reads: u32,
    /// Children of an index (they get their own reports when it succeeds).
    children: Vec<String>,
    started_at: String,
}

impl ScanJob {
    fn status(&self) -> &'static str {
        match &self.plan {
            FakeScan::Succeeds { polls, .. } if self.reads >= *polls => "Success",
            FakeScan::Fails { polls, .. } if self.reads >= *polls => "Error",
            _ if self.reads <= 1 => "Pending",
            _ => "Running",
        }
    }
}

/// The running fake Harbor (and its registry); stops on drop.
pub struct HarborFake {
    port: u16,
    registry: Arc<Registry>,
    scan_requests: Arc<Mutex<Vec<(String, String, u16)>>>,
    _server: ServerThread,
}

/// The internal account the fake reads the registry with (sorts first, so it is the registry's default).
const CORE_USER: &str = "!harbor-core";
const CORE_SECRET: &str = "fake-harbor-core-reader";

impl HarborFake {
    /// Starts the registry (token auth, `service=harbor-registry`) and the fake in front of it.
    pub fn start(projects: Vec<FakeProject>, robots: Vec<FakeRobot>) -> HarborFake {
        let mut topts = TokenIssuerOpts::default();
        topts.users.clear();
        topts.service = "harbor-registry".into();
        topts.issuer = "harbor-token-issuer".into();
        topts.bad_credentials_get_anonymous_token = true;
        for r in &robots {
            topts.users.insert(r.name.clone(), r.secret.clone());
            // Token grants follow the robot's registry permissions; every robot gets an entry so that none
            // is granted everything.
            let grants = topts.grants.entry(r.name.clone()).or_default();
            for p in &projects {
                let actions: Vec<&str> =
                    ["pull", "push"].into_iter().filter(|a| r.has(&p.name, "repository", a)).collect();
                let actions = if actions.contains(&"push") { vec!["pull", "push"] } else { actions };
                if !actions.is_empty() {
                    grants.push(Grant::new(&format!("{}/*", p.name), &actions));
                }
            }
        }
        topts.users.insert(CORE_USER.into(), CORE_SECRET.into());
        let core = topts.grants.entry(CORE_USER.into()).or_default();
        for p in &projects {
            core.push(Grant::new(&format!("{}/*", p.name), &["pull"]));
        }
        let registry = Arc::new(Registry::start(RegistryOpts::plain().auth(Auth::Token(topts))));
        let scan_requests = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake harbor");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            projects,
            robots,
            registry_host: registry.host(),
            issuer_host: registry.token_issuer().host(),
            self_host: format!("127.0.0.1:{port}"),
            registry: registry.clone(),
            scans: Mutex::new(HashMap::new()),
            scan_requests: scan_requests.clone(),
            accessories: std::sync::Mutex::new(Vec::new()),
        });
        let app =
            axum::Router::new().fallback(handle).layer(axum::extract::DefaultBodyLimit::disable()).with_state(shared);
        let server = ServerThread::axum("fake-harbor", 2, listener, app);
        eprintln!(
            "[harness] FAKE Harbor (tests/it/harness/harbor.rs, an API fake, not Harbor) on 127.0.0.1:{port}, \
             in front of docker-registry on {}",
            registry.host()
        );
        HarborFake { port, registry, scan_requests, _server: server }
    }

    /// `127.0.0.1:PORT` of the fake (the "Harbor host").
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The real registry behind the fake.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `GET /api/v2.0/projects/{project}/repositories/{repo}/artifacts/{digest}/accessories` as `user`
    /// (Basic): each accessory's (digest, Harbor's type), in the order the API lists them.
    pub fn accessories(&self, project: &str, repo: &str, digest: &str, user: (&str, &str)) -> Vec<(String, String)> {
        let path = format!("/api/v2.0/projects/{project}/repositories/{repo}/artifacts/{digest}/accessories");
        let auth = HttpAuth::Basic(user.0.into(), user.1.into());
        let acc = http::request("GET", &self.host(), &path, None, &auth, &[], b"").expect("the accessories API");
        assert_eq!(acc.status, 200, "{path}: {}", String::from_utf8_lossy(&acc.body));
        let acc: serde_json::Value = serde_json::from_slice(&acc.body).expect("JSON");
        acc.as_array()
            .expect("a list")
            .iter()
            .map(|a| (a["digest"].as_str().unwrap_or("").to_string(), a["type"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// The scan-API requests answered so far: (method, path as sent, status).
    pub fn scan_requests(&self) -> Vec<(String, String, u16)> {
        self.scan_requests.lock().expect("lock").clone()
    }
}

fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn json(body: serde_json::Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b = v.strip_prefix("Basic ")?;
    let s = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?).ok()?;
    s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string()))
}

impl Shared {
    /// The authenticated robot: `Ok(None)` anonymous, `Err` bad credentials.
    fn user(&self, headers: &HeaderMap) -> Result<Option<&FakeRobot>, ()> {
        match basic(headers) {
            None => Ok(None),
            Some((u, p)) => self.robots.iter().find(|r| r.name == u && r.secret == p).map(Some).ok_or(()),
        }
    }

    fn project(&self, name_or_id: &str, by_name: bool) -> Option<&FakeProject> {
        self.projects.iter().find(|p| {
            if by_name {
                p.name == name_or_id
            } else {
                name_or_id.parse::<i64>().map_or(p.name == name_or_id, |id| p.id == id)
            }
        })
    }

    fn challenge(&self) -> String {
        format!("Bearer realm=\"http://{}/service/token\",service=\"harbor-registry\"", self.self_host)
    }
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let q: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if path == "/service/token" {
        return token(&s, &parts.headers, &query, q.iter().any(|(k, _)| k == "scope")).await;
    }
    if path == "/v2/" && parts.method == Method::GET && basic(&parts.headers).is_some() {
        // Harbor's core checks Basic credentials on /v2/ itself.
        return match s.user(&parts.headers) {
            Ok(_) => json(serde_json::json!({})),
            Err(()) => {
                let mut r = errors(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required");
                r.headers_mut().insert(header::WWW_AUTHENTICATE, s.challenge().parse().expect("header"));
                r
            }
        };
    }
    if path.starts_with("/v2/") {
        if parts.method == Method::GET {
            if let Some((name, digest)) = path.strip_prefix("/v2/").and_then(|p| p.rsplit_once("/referrers/")) {
                return referrers(&s, name, digest, param("artifactType"), &parts.headers).await;
            }
        }
        let with_subject = (parts.method == Method::PUT)
            .then(|| path.strip_prefix("/v2/").and_then(|p| p.rsplit_once("/manifests/")))
            .flatten()
            .and_then(|(name, _)| accessory_of(name, &parts.headers, &body));
        let mut resp = proxy(&s, &parts.method, &parts.uri, &parts.headers, body).await;
        if let Some(acc) = with_subject.filter(|_| resp.status() == StatusCode::CREATED) {
            resp.headers_mut().insert("oci-subject", acc.subject.parse().expect("digest header"));
            let mut all = s.accessories.lock().expect("accessories lock");
            if !all.iter().any(|a| a.repository == acc.repository && a.descriptor["digest"] == acc.descriptor["digest"])
            {
                all.push(acc);
            }
        }
        return resp;
    }
    let Some(api) = path.strip_prefix("/api/v2.0") else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html")], "<html>fake Harbor portal</html>")
            .into_response();
    };
    if api == "/ping" {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "Pong").into_response();
    }
    let user = match s.user(&parts.headers) {
        Ok(u) => u,
        Err(()) => return errors(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "unauthorized"),
    };
    let by_name = parts.headers.get("x-is-resource-name").is_some_and(|v| v == "true");
    let segs: Vec<&str> = api.trim_start_matches('/').split('/').collect();
    // The scan API and the artifact reads it serves; the accessories list is answered below.
    if matches!(segs.as_slice(), ["projects", _, "repositories", ..]) && segs.last() != Some(&"accessories") {
        let accept = parts.headers.get("x-accept-vulnerabilities").and_then(|v| v.to_str().ok()).map(str::to_string);
        let path_q = parts.uri.path_and_query().map_or(String::new(), |p| p.to_string());
        let shared = s.clone();
        let (method, segs_owned) = (parts.method.clone(), segs.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        let robot = user.cloned();
        let r = tokio::task::spawn_blocking(move || {
            let segs: Vec<&str> = segs_owned.iter().map(String::as_str).collect();
            scan_api(&shared, &method, &segs, robot.as_ref(), accept.as_deref())
        })
        .await
        .expect("join");
        s.scan_requests.lock().expect("lock").push((parts.method.to_string(), path_q, r.status().as_u16()));
        return r;
    }
    match (parts.method.clone(), segs.as_slice()) {
        (Method::GET, ["system", "CVEAllowlist"]) => {
            if user.is_none() {
                return errors(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "unauthorized");
            }
            json(serde_json::json!({"id": 1, "project_id": 0, "expires_at": null, "items": []}))
        }
        (Method::GET, ["projects", name, "scanner"]) => {
            let Some(p) = s.project(name, by_name) else {
                return errors(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("project {name} not found"));
            };
            if !user.is_some_and(|u| u.has(&p.name, "scanner", "read")) {
                return errors(StatusCode::FORBIDDEN, "FORBIDDEN", "forbidden");
            }
            match &p.scanner {
                Some((n, disabled)) => json(serde_json::json!({
                    "uuid": "fake-scanner", "name": n, "url": "http://trivy-adapter:8080", "disabled": disabled,
                    "is_default": true, "health": if *disabled { "unhealthy" } else { "healthy" }
                })),
                None => errors(StatusCode::NOT_FOUND, "NOT_FOUND", "no scanner registration found"),
            }
        }
        (Method::HEAD, ["projects"]) => {
            let found = param("project_name").is_some_and(|n| s.project(&n, true).is_some());
            if found { StatusCode::OK } else { StatusCode::NOT_FOUND }.into_response()
        }
        (Method::GET, ["projects"]) => {
            let name = param("name").unwrap_or_default();
            let visible: Vec<serde_json::Value> = s
                .projects
                .iter()
                .filter(|p| p.name.contains(&name))
                .filter(|p| p.public || user.is_some_and(|u| u.perms.iter().any(|(pp, _, _)| *pp == p.name)))
                .map(project_json)
                .collect();
            json(serde_json::Value::Array(visible))
        }
        (Method::GET, ["users", "current", "permissions"]) => {
            let Some(u) = user else {
                return errors(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "unauthorized");
            };
            let scope = param("scope").unwrap_or_default();
            let id = scope.strip_prefix("/project/").unwrap_or("");
            let Some(p) = s.project(id, false) else {
                return json(serde_json::json!([]));
            };
            let relative = param("relative").as_deref() == Some("true");
            let perms: Vec<serde_json::Value> = u
                .perms
                .iter()
                .filter(|(pp, _, _)| *pp == p.name)
                .map(|(_, r, a)| {
                    let resource = if relative { r.clone() } else { format!("/project/{}/{r}", p.id) };
                    serde_json::json!({"resource": resource, "action": a})
                })
                .collect();
            json(serde_json::Value::Array(perms))
        }
        (Method::GET, ["projects", project, "repositories", repo, "artifacts", reference, "accessories"]) => {
            let Some(p) = s.project(project, true) else {
                return errors(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("project {project} not found"));
            };
            if !(p.public || user.is_some_and(|u| u.has(&p.name, "repository", "pull"))) {
                return errors(StatusCode::FORBIDDEN, "FORBIDDEN", "forbidden");
            }
            // Harbor's repository_name is URL-encoded twice (`a%252Fb`); the path was decoded once here.
            let repo = repo.replace("%2F", "/").replace("%2f", "/");
            let full = format!("{project}/{repo}");
            let list: Vec<serde_json::Value> = s
                .accessories
                .lock()
                .expect("accessories lock")
                .iter()
                .filter(|a| a.repository == full && a.subject == *reference)
                .enumerate()
                .map(|(i, a)| {
                    serde_json::json!({
                        "id": i + 1, "artifact_id": i + 1, "subject_artifact_digest": a.subject,
                        "subject_artifact_repo": full, "size": a.descriptor["size"],
                        "digest": a.descriptor["digest"], "type": a.kind, "icon": ""
                    })
                })
                .collect();
            json(serde_json::Value::Array(list))
        }
        (Method::GET, ["projects", name, rest @ ..]) => {
            let Some(p) = s.project(name, by_name) else {
                return errors(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("project {name} not found"));
            };
            let (resource, action) = match rest {
                [] | ["summary"] => ("project", "read"),
                ["immutabletagrules"] => ("immutable-tag", "list"),
                _ => {
                    return errors(
                        StatusCode::NOT_FOUND,
                        "NOT_FOUND",
                        "not found (the fake serves only what doctor reads)",
                    )
                }
            };
            let allowed = user.is_some_and(|u| u.has(&p.name, resource, action)) || (rest.is_empty() && p.public);
            if !allowed && user.is_none() {
                return errors(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "unauthorized");
            }
            if !allowed {
                return errors(StatusCode::FORBIDDEN, "FORBIDDEN", "forbidden");
            }
            match rest {
                [] => json(project_json(p)),
                ["summary"] => json(serde_json::json!({
                    "repo_count": 0,
                    "quota": {"hard": {"storage": p.quota_hard}, "used": {"storage": p.quota_used}}
                })),
                _ => json(serde_json::Value::Array(p.immutable_rules.clone())),
            }
        }
        _ => errors(StatusCode::NOT_FOUND, "NOT_FOUND", "not found (the fake serves only what doctor reads)"),
    }
}

fn project_json(p: &FakeProject) -> serde_json::Value {
    let items: Vec<serde_json::Value> = p.allowlist.iter().map(|c| serde_json::json!({"cve_id": c})).collect();
    serde_json::json!({
        "project_id": p.id, "name": p.name, "owner_id": 1, "owner_name": "admin", "repo_count": 0,
        "metadata": {"public": p.public.to_string(), "reuse_sys_cve_allowlist": "false"},
        "cve_allowlist": {"id": p.id, "project_id": p.id, "expires_at": p.allowlist_expires_at, "items": items}
    })
}

/// `%2F` → `/` (one level of percent-decoding).
fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The artifact as Harbor describes it, read from the registry: (digest, type, media type, children).
fn read_artifact(
    s: &Shared,
    repo: &str,
    reference: &str,
) -> Option<(String, &'static str, String, Vec<serde_json::Value>)> {
    let bytes = s.registry.manifest_bytes(repo, reference)?;
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
    let m: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let media = m["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json").to_string();
    let children: Vec<serde_json::Value> = m["manifests"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| serde_json::json!({"child_digest": c["digest"], "platform": c["platform"], "urls": null}))
                .collect()
        })
        .unwrap_or_default();
    let kind = if m["config"]["mediaType"].as_str().is_some_and(|t| t.contains("helm")) { "CHART" } else { "IMAGE" };
    Some((digest, kind, media, children))
}

const REPORT_MIME: &str = "application/vnd.security.vulnerability.report; version=1.1";

/// `…/repositories/{repo}/artifacts/{ref}[/scan|/scan/{id}/log|/additions/vulnerabilities]` (blocking: it reads
/// the registry).
fn scan_api(s: &Shared, method: &Method, segs: &[&str], user: Option<&FakeRobot>, accept: Option<&str>) -> Response {
    let ["projects", project, "repositories", repo_enc, "artifacts", reference, rest @ ..] = segs else {
        return errors(StatusCode::NOT_FOUND, "NOT_FOUND", "not found");
    };
    let Some(p) = s.project(project, true) else {
        return errors(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("project {project} not found"));
    };
    // Harbor's router: a once-encoded `/` is a path separator by the time it routes, so the name must come twice
    // encoded.
    let once = pct_decode(repo_enc);
    if once.contains('/') {
        return errors(StatusCode::NOT_FOUND, "NOT_FOUND", "not found (a repository name's / must be encoded twice)");
    }
    let repo = format!("{}/{}", p.name, pct_decode(&once));
    let reference = pct_decode(reference);
    let Some(u) = user else {
        return errors(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "unauthorized");
    };
    let can = |r: &str, a: &str| u.has(&p.name, r, a);
    let Some((digest, kind, media, children)) = read_artifact(s, &repo, &reference) else {
        return errors(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("artifact {repo}:{reference} not found"));
    };
    let child_digests: Vec<String> =
        children.iter().filter_map(|c| c["child_digest"].as_str().map(str::to_string)).collect();
    let mut scans = s.scans.lock().expect("lock");
    let new_job = |scans: &HashMap<String, ScanJob>| ScanJob {
        report_id: format!("fake-report-{}", scans.len() + 1),
        plan: p.scan.clone(),
        reads: 0,
        children: child_digests.clone(),
        started_at: "2026-12-06T01:00:00Z".into(),
    };
    if p.scan_on_push && p.scanner.as_ref().is_some_and(|(_, d)| !d) && kind != "CHART" && !scans.contains_key(&digest)
    {
        let job = new_job(&scans);
        scans.insert(digest.clone(), job);
    }
    match (method, rest) {
        (&Method::POST, ["scan"]) => {
            if !can("scan", "create") {
                return errors(StatusCode::FORBIDDEN, "FORBIDDEN", "forbidden");
            }
            if p.scanner.as_ref().is_none_or(|(_, disabled)| *disabled) {
                return errors(
                    StatusCode::PRECONDITION_FAILED,
                    "PRECONDITION",
                    &format!("no available scanner for project {}", p.name),
                );
            }
            if kind == "CHART" {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    "the configured scanner Trivy does not support scanning artifact with mime type                      application/vnd.cncf.helm.config.v1+json",
                );
            }
            if scans.get(&digest).is_some_and(|j| matches!(j.status(), "Pending" | "Running")) {
                return errors(StatusCode::CONFLICT, "CONFLICT", "a previous scan process is Pending");
            }
            let job = new_job(&scans);
            scans.insert(digest, job);
            (StatusCode::ACCEPTED, "").into_response()
        }
        (&Method::GET, []) => {
            if !can("artifact", "read") {
                return errors(StatusCode::FORBIDDEN, "FORBIDDEN", "forbidden");
            }
            let mut a = serde_json::json!({
                "id": 7, "project_id": p.id, "repository_id": 3, "digest": digest, "type": kind,
                "media_type": "application/vnd.oci.image.config.v1+json", "manifest_media_type": media,
                "references": if children.is_empty() { serde_json::Value::Null } else { children.clone().into() },
                "tags": [], "push_time": "2026-12-06T00:59:00Z"
            });
            // The overview only for callers that say which report they read, as Harbor.
            if accept.is_some_and(|h| h.contains("vnd.security.vulnerability.report")) {
                let state = match scans.get_mut(&digest) {
                    Some(job) => {
                        job.reads += 1;
                        Some(job.clone())
                    }
                    None => parent_success(&scans, &digest),
                };
                if let Some(job) = state {
                    let status = job.status();
                    let percent = match &job.plan {
                        FakeScan::Succeeds { polls, .. } | FakeScan::Fails { polls, .. } => {
                            (job.reads * 100 / (*polls).max(1)).min(100)
                        }
                        FakeScan::Never => 50,
                    };
                    let done = matches!(status, "Success" | "Error");
                    a["scan_overview"] = serde_json::json!({ REPORT_MIME: {
                        "report_id": job.report_id, "scan_status": status, "complete_percent": percent,
                        "start_time": job.started_at,
                        "end_time": if done { serde_json::Value::from("2026-12-06T01:00:07Z") } else { serde_json::Value::Null },
                        "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "v0.58.1"}
                    }});
                }
            }
            json(a)
        }
        (&Method::GET, ["scan", report_id, "log"]) => {
            if !can("scan", "read") && !can("artifact", "read") {
                return errors(StatusCode::FORBIDDEN, "FORBIDDEN", "forbidden");
            }
            match scans.get(&digest) {
                Some(ScanJob { report_id: id, plan: FakeScan::Fails { log, .. }, .. }) if id == report_id => {
                    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], log.clone()).into_response()
                }
                _ => errors(StatusCode::NOT_FOUND, "NOT_FOUND", "no log for this report"),
            }
        }
        (&Method::GET, ["additions", "vulnerabilities"]) => {
            if !can("artifact-addition", "read") {
                return errors(StatusCode::FORBIDDEN, "FORBIDDEN", "forbidden");
            }
            if !accept.is_some_and(|h| h.contains("vnd.security.vulnerability.report")) {
                return json(serde_json::json!({}));
            }
            let (job, child_index) = match scans.get(&digest) {
                Some(j) => (Some(j.clone()), 0),
                None => {
                    let parent = scans.values().find(|j| j.children.contains(&digest)).cloned();
                    let idx = parent.as_ref().and_then(|j| j.children.iter().position(|c| *c == digest)).unwrap_or(0);
                    (parent, idx)
                }
            };
            let Some(ScanJob { plan: FakeScan::Succeeds { vulns, .. }, .. }) = job.filter(|j| j.status() == "Success")
            else {
                return json(serde_json::json!({}));
            };
            let vulns: Vec<serde_json::Value> = vulns
                .into_iter()
                .filter(|v| v["x_fake_child"].as_u64().is_none_or(|c| c as usize == child_index))
                .map(|mut v| {
                    v.as_object_mut().expect("object").remove("x_fake_child");
                    v["artifact_digests"] = serde_json::json!([digest]);
                    v
                })
                .collect();
            json(serde_json::json!({ REPORT_MIME: {
                "generated_at": "2026-12-06T01:00:06.5Z",
                "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "v0.58.1"},
                "severity": "Critical",
                "vulnerabilities": vulns
            }}))
        }
        _ => errors(StatusCode::NOT_FOUND, "NOT_FOUND", "not found (the fake serves only the scan API here)"),
    }
}

/// A child of an index whose scan succeeded shows that scan as its own.
fn parent_success(scans: &HashMap<String, ScanJob>, digest: &str) -> Option<ScanJob> {
    scans.values().find(|j| j.children.iter().any(|c| c == digest) && j.status() == "Success").cloned()
}

/// Harbor's token service: no scope + bad credentials → 401; otherwise the issuer answers (bad credentials with a
/// scope get an anonymous token there, as on Harbor).
async fn token(s: &Shared, headers: &HeaderMap, query: &str, has_scope: bool) -> Response {
    if !has_scope && s.user(headers).is_err() {
        return errors(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid credentials");
    }
    let auth = basic(headers).map_or(HttpAuth::None, |(u, p)| HttpAuth::Basic(u, p));
    let host = s.issuer_host.clone();
    let path = format!("/token?{query}");
    let r = tokio::task::spawn_blocking(move || http::request("GET", &host, &path, None, &auth, &[], b""))
        .await
        .expect("join")
        .expect("token issuer behind the fake Harbor");
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, [(header::CONTENT_TYPE, "application/json")], r.body).into_response()
}

/// Forwards a `/v2/…` request to the registry, rewriting the auth challenge and upload locations to the fake.
async fn proxy(s: &Shared, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, body: Bytes) -> Response {
    const PASS: &[&str] = &["authorization", "accept", "content-type", "content-range", "range"];
    let fwd: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| PASS.contains(&k.as_str()))
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
        .collect();
    let host = s.registry_host.clone();
    let (method, target) = (method.to_string(), uri.path_and_query().map_or("/", |p| p.as_str()).to_string());
    let r = tokio::task::spawn_blocking(move || {
        let h: Vec<(&str, &str)> = fwd.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        http::request(&method, &host, &target, None, &HttpAuth::None, &h, &body)
    })
    .await
    .expect("join");
    let Ok(r) = r else {
        return errors(StatusCode::BAD_GATEWAY, "UNKNOWN", "registry unreachable");
    };
    let mut out = Response::builder().status(r.status);
    for (k, v) in &r.headers {
        let v = match k.as_str() {
            "www-authenticate" => s.challenge(),
            "location" => v.replace(&s.registry_host, &s.self_host),
            "connection" | "transfer-encoding" | "content-length" => continue,
            _ => v.clone(),
        };
        out = out.header(k, v);
    }
    out.body(axum::body::Body::from(r.body)).expect("response")
}

/// The accessory a manifest PUT to `name` records when its body has a `subject`.
fn accessory_of(name: &str, headers: &HeaderMap, body: &Bytes) -> Option<FakeAccessory> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let subject = v.pointer("/subject/digest")?.as_str()?.to_string();
    let artifact_type = v
        .get("artifactType")
        .and_then(|t| t.as_str())
        .or_else(|| v.pointer("/config/mediaType").and_then(|t| t.as_str()))
        .unwrap_or_default()
        .to_string();
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_default();
    let mut descriptor = serde_json::json!({
        "mediaType": media_type, "digest": super::sha256_digest(body), "size": body.len(),
        "artifactType": artifact_type,
    });
    if let Some(a) = v.get("annotations").filter(|a| a.is_object()) {
        descriptor["annotations"] = a.clone();
    }
    Some(FakeAccessory {
        repository: name.to_string(),
        subject,
        kind: harbor_accessory_type(&artifact_type).to_string(),
        descriptor,
    })
}

/// `GET /v2/<name>/referrers/<digest>`: the accessories of the subject as an image index. The caller's token
/// is checked by asking the registry for the subject (`HEAD`) with it: a 401 there is this answer too.
async fn referrers(
    s: &Shared,
    name: &str,
    digest: &str,
    artifact_type: Option<String>,
    headers: &HeaderMap,
) -> Response {
    let head: axum::http::Uri = format!("/v2/{name}/manifests/{digest}").parse().expect("uri");
    let check = proxy(s, &Method::HEAD, &head, headers, Bytes::new()).await;
    if check.status() == StatusCode::UNAUTHORIZED || check.status() == StatusCode::FORBIDDEN {
        return check;
    }
    let manifests: Vec<serde_json::Value> = s
        .accessories
        .lock()
        .expect("accessories lock")
        .iter()
        .filter(|a| a.repository == name && a.subject == digest)
        .filter(|a| artifact_type.as_ref().is_none_or(|t| a.descriptor["artifactType"] == *t))
        .map(|a| a.descriptor.clone())
        .collect();
    let body = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests
    });
    let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, "application/vnd.oci.image.index.v1+json")], body.to_string())
        .into_response();
    if artifact_type.is_some() {
        r.headers_mut().insert("oci-filters-applied", "artifactType".parse().expect("header"));
    }
    r
}
