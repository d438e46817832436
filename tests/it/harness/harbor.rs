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
use std::sync::Arc;

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
}

impl FakeProject {
    pub fn new(id: i64, name: &str) -> FakeProject {
        FakeProject { id, name: name.into(), public: false, immutable_rules: Vec::new(), quota_hard: -1, quota_used: 0 }
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

/// The running fake Harbor (and its registry); stops on drop.
pub struct HarborFake {
    port: u16,
    registry: Registry,
    _server: ServerThread,
}

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
        let registry = Registry::start(RegistryOpts::plain().auth(Auth::Token(topts)));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake harbor");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            projects,
            robots,
            registry_host: registry.host(),
            issuer_host: registry.token_issuer().host(),
            self_host: format!("127.0.0.1:{port}"),
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
        HarborFake { port, registry, _server: server }
    }

    /// `127.0.0.1:PORT` of the fake (the "Harbor host").
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The real registry behind the fake.
    pub fn registry(&self) -> &Registry {
        &self.registry
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
    match (parts.method.clone(), segs.as_slice()) {
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
    serde_json::json!({
        "project_id": p.id, "name": p.name, "owner_id": 1, "owner_name": "admin", "repo_count": 0,
        "metadata": {"public": p.public.to_string()}
    })
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
