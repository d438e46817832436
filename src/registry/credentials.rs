//! Credentials: the `Secret` and `Credential` newtypes (never printed) and where they come from.
//!
//! Precedence, first match wins (the README documents the same list):
//! 1. `--username` + `--password-stdin`;
//! 2. the environment: `HARBOR_USERNAME`/`HARBOR_PASSWORD` for the Harbor host (`HARBOR_URL`, else
//!    `HARBOR_HOST`), `CI_REGISTRY_USER`/`CI_REGISTRY_PASSWORD` for `CI_REGISTRY`,
//!    `CI_DEPENDENCY_PROXY_USER`/`CI_DEPENDENCY_PROXY_PASSWORD` for `CI_DEPENDENCY_PROXY_SERVER`
//!    (GitLab's Dependency Proxy, a pull-through mirror; `:443` optional on either side);
//! 3. `DOCKER_AUTH_CONFIG` (a docker `config.json` document);
//! 4. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
//!
//! Within a docker config, as docker does: `credHelpers[host]`, else `credsStore`, else `auths[host]`
//! (`auth` = base64 `user:pass`, or `username`/`password`). Helpers are `docker-credential-<name> get`.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::ci::{host_of, vars, Env};
use crate::error::{Error, Result};

/// A secret string: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself — only for putting on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A username and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: Secret,
}

impl Credential {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credential {
        Credential { username: username.into(), password: Secret::new(password) }
    }
    /// The `Authorization: Basic …` value.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password.expose());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({}, <redacted>)", self.username)
    }
}

/// Where a credential was found — said in errors and `--verbose` output so users know what was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    Flags,
    HarborEnv,
    GitlabEnv,
    DependencyProxyEnv,
    DockerAuthConfig,
    DockerConfigFile(String),
    Helper(String),
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Flags => f.write_str("--username/--password-stdin"),
            CredentialSource::HarborEnv => f.write_str("HARBOR_USERNAME/HARBOR_PASSWORD"),
            CredentialSource::GitlabEnv => f.write_str("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"),
            CredentialSource::DependencyProxyEnv => {
                f.write_str("CI_DEPENDENCY_PROXY_USER/CI_DEPENDENCY_PROXY_PASSWORD")
            }
            CredentialSource::DockerAuthConfig => f.write_str("DOCKER_AUTH_CONFIG"),
            CredentialSource::DockerConfigFile(p) => write!(f, "{p}"),
            CredentialSource::Helper(h) => write!(f, "docker-credential-{h}"),
        }
    }
}

// The robot-name rules live with the CI environment (below the transport): re-exported for every caller.
pub use crate::ci::robot::{normalize_harbor_username, robot_name_issue};

/// Finds the credential for registry `host` (`host[:port]`), following the documented precedence.
pub fn resolve(host: &str, flags: Option<Credential>, env: &dyn Env) -> Result<Option<(Credential, CredentialSource)>> {
    if let Some(c) = flags {
        return Ok(Some((c, CredentialSource::Flags)));
    }
    let host = host.to_ascii_lowercase();
    if let Some(c) = harbor_env(&host, env) {
        return Ok(Some((c, CredentialSource::HarborEnv)));
    }
    if let (Some(reg), Some(user), Some(pass)) =
        (env.non_empty(vars::CI_REGISTRY), env.non_empty(vars::CI_REGISTRY_USER), env.var(vars::CI_REGISTRY_PASSWORD))
    {
        if host_of(&reg) == host {
            return Ok(Some((Credential::new(user, pass), CredentialSource::GitlabEnv)));
        }
    }
    if let (Some(server), Some(user), Some(pass)) = (
        env.non_empty(vars::CI_DEPENDENCY_PROXY_SERVER),
        env.non_empty(vars::CI_DEPENDENCY_PROXY_USER),
        env.var(vars::CI_DEPENDENCY_PROXY_PASSWORD),
    ) {
        // GitLab writes the server as `host:443`; image references usually leave the port out.
        let bare = |h: &str| h.strip_suffix(":443").unwrap_or(h).to_string();
        if bare(&host_of(&server)) == bare(&host) {
            return Ok(Some((Credential::new(user, pass), CredentialSource::DependencyProxyEnv)));
        }
    }
    if let Some(doc) = env.non_empty(vars::DOCKER_AUTH_CONFIG) {
        let cfg = DockerConfig::parse(&doc).map_err(|e| e.context("reading DOCKER_AUTH_CONFIG"))?;
        if let Some(found) = cfg.lookup(&host, CredentialSource::DockerAuthConfig)? {
            return Ok(Some(found));
        }
    }
    if let Some(path) = docker_config_path(env).filter(|p| p.is_file()) {
        let shown = path.display().to_string();
        let doc = std::fs::read_to_string(&path).map_err(|e| Error::io(format!("reading {shown}"), e))?;
        let cfg = DockerConfig::parse(&doc).map_err(|e| e.context(format!("reading {shown}")))?;
        return cfg.lookup(&host, CredentialSource::DockerConfigFile(shown));
    }
    Ok(None)
}

/// docker's `config.json`: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path(env: &dyn Env) -> Option<std::path::PathBuf> {
    match (env.non_empty(vars::DOCKER_CONFIG), env.non_empty(vars::HOME)) {
        (Some(dir), _) => Some(std::path::Path::new(&dir).join("config.json")),
        (None, Some(home)) => Some(std::path::Path::new(&home).join(".docker").join("config.json")),
        _ => None,
    }
}

fn harbor_env(host: &str, env: &dyn Env) -> Option<Credential> {
    let (harbor, _) = crate::ci::harbor_host(env)?;
    // HARBOR_HOST has no port; match it against the host part of a `host:port` destination too.
    let host_no_port = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if harbor != host && harbor != host_no_port {
        return None;
    }
    let user = env.non_empty(vars::HARBOR_USERNAME)?;
    let pass = env.var(vars::HARBOR_PASSWORD)?;
    Some(Credential::new(normalize_harbor_username(&user), pass))
}

/// The parts of docker's `config.json` hoist uses.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthEntry(<redacted>)")
    }
}

impl DockerConfig {
    fn parse(doc: &str) -> Result<DockerConfig> {
        // serde_json's message names a line and column, never the document's content.
        serde_json::from_str(doc).map_err(|e| Error::usage(format!("not a docker config.json document: {e}")))
    }

    fn lookup(&self, host: &str, source: CredentialSource) -> Result<Option<(Credential, CredentialSource)>> {
        if let Some(key) = find_key(self.cred_helpers.keys(), host) {
            let helper = &self.cred_helpers[&key];
            return Ok(helper_get(helper, host)?.map(|c| (c, CredentialSource::Helper(helper.clone()))));
        }
        if let Some(store) = &self.creds_store {
            if let Some(c) = helper_get(store, host)? {
                return Ok(Some((c, CredentialSource::Helper(store.clone()))));
            }
        }
        let Some(key) = find_key(self.auths.keys(), host) else {
            return Ok(None);
        };
        let entry = &self.auths[&key];
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Error::usage(format!("the auth entry for {key} is not base64 of user:password")))?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or_else(|| Error::usage(format!("the auth entry for {key} is not base64 of user:password")))?;
            return Ok(Some((Credential::new(u, p), source)));
        }
        match (&entry.username, &entry.password) {
            (Some(u), Some(p)) => Ok(Some((Credential::new(u.clone(), p.clone()), source))),
            _ => Ok(None),
        }
    }
}

fn find_key<'a>(mut keys: impl Iterator<Item = &'a String>, host: &str) -> Option<String> {
    keys.find(|k| registry_key_matches(k, host)).cloned()
}

/// Whether a config key (`host`, `https://host/`, `https://index.docker.io/v1/`) names `host`.
pub fn registry_key_matches(key: &str, host: &str) -> bool {
    let k = host_of(key);
    k == host || (host == "registry-1.docker.io" || host == "docker.io") && (k == "index.docker.io" || k == "docker.io")
}

/// Runs `docker-credential-<helper> get` with the server on stdin (docker's helper protocol).
fn helper_get(helper: &str, host: &str) -> Result<Option<Credential>> {
    let program = format!("docker-credential-{helper}");
    let ctx = || format!("asking credential helper {program} for {host}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::auth(format!("cannot run it: {e}"))
                .context(ctx())
                .with_hint(format!("install {program} on PATH, or remove it from the docker config"))
        })?;
    child.stdin.take().expect("piped").write_all(host.as_bytes()).map_err(|e| Error::io("writing to helper", e))?;
    let out = child.wait_with_output().map_err(|e| Error::io("waiting for helper", e))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string() + String::from_utf8_lossy(&out.stderr).trim();
        if msg.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(Error::auth(format!("it failed ({}): {msg}", out.status)).context(ctx()));
    }
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let reply: Reply = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::auth(format!("its answer is not the helper protocol's JSON: {e}")).context(ctx()))?;
    Ok(Some(Credential::new(reply.username, reply.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::MapEnv;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn secrets_never_format() {
        let c = Credential::new("robot$p+ci", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?} {}", c.password, c.password).contains("hunter2"));
        assert_eq!(c.basic_header(), format!("Basic {}", b64("robot$p+ci:hunter2")));
    }

    #[test]
    fn flags_beat_environment() {
        let env = MapEnv::new([("HARBOR_URL", "https://h.io/"), ("HARBOR_USERNAME", "a"), ("HARBOR_PASSWORD", "b")]);
        let (c, src) = resolve("h.io", Some(Credential::new("x", "y")), &env).unwrap().unwrap();
        assert_eq!((c.username.as_str(), src), ("x", CredentialSource::Flags));
    }

    #[test]
    fn robot_name_issue_spots_eaten_and_doubled_names() {
        for bad in ["robot+ci", "robot$+ci", "robot$", "robot", "proj+ci", "robot$$proj+ci"] {
            assert!(robot_name_issue(bad).is_some(), "{bad} should be flagged");
        }
        for good in ["robot$proj+ci", "robot$system-bot", "gitlab-ci-token", "admin", "deploy-token-1"] {
            assert_eq!(robot_name_issue(good), None, "{good} should pass");
        }
        assert!(robot_name_issue("robot+ci").unwrap().contains("eaten"));
        assert!(robot_name_issue("robot$$p+ci").unwrap().contains("$$"));
    }

    #[test]
    fn harbor_env_matches_host_and_collapses_robot_escape() {
        let env = MapEnv::new([
            ("HARBOR_URL", "https://harbor.example.com:8443/"),
            ("HARBOR_HOST", "harbor.example.com"),
            ("HARBOR_USERNAME", "robot$$proj+ci"),
            ("HARBOR_PASSWORD", "pw"),
        ]);
        let (c, src) = resolve("harbor.example.com:8443", None, &env).unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.expose(), src),
            ("robot$proj+ci", "pw", CredentialSource::HarborEnv)
        );
        assert!(resolve("other.example.com", None, &env).unwrap().is_none());
        let env = MapEnv::new([("HARBOR_HOST", "h.io"), ("HARBOR_USERNAME", "u"), ("HARBOR_PASSWORD", "p")]);
        assert!(resolve("h.io:5000", None, &env).unwrap().is_some(), "HARBOR_HOST has no port");
    }

    #[test]
    fn gitlab_env_then_docker_auth_config() {
        let doc = format!(
            r#"{{"auths":{{"https://reg.io/v1/":{{"auth":"{}"}},"other.io":{{"username":"u2","password":"p2"}}}}}}"#,
            b64("u1:p:1")
        );
        let env = MapEnv::new([
            ("CI_REGISTRY", "gitlab.io:5050"),
            ("CI_REGISTRY_USER", "gitlab-ci-token"),
            ("CI_REGISTRY_PASSWORD", "tok"),
            ("DOCKER_AUTH_CONFIG", doc.as_str()),
        ]);
        let (c, src) = resolve("gitlab.io:5050", None, &env).unwrap().unwrap();
        assert_eq!((c.username.as_str(), src), ("gitlab-ci-token", CredentialSource::GitlabEnv));
        let (c, src) = resolve("reg.io", None, &env).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose(), src), ("u1", "p:1", CredentialSource::DockerAuthConfig));
        let (c, _) = resolve("other.io", None, &env).unwrap().unwrap();
        assert_eq!(c.username, "u2");
        assert!(resolve("none.io", None, &env).unwrap().is_none());
    }

    #[test]
    fn dependency_proxy_credentials_for_its_server_port_443_optional() {
        let env = MapEnv::new([
            ("CI_DEPENDENCY_PROXY_SERVER", "gitlab.example.com:443"),
            ("CI_DEPENDENCY_PROXY_USER", "gitlab-ci-token"),
            ("CI_DEPENDENCY_PROXY_PASSWORD", "tok"),
            ("CI_REGISTRY", "gitlab.example.com:5050"),
            ("CI_REGISTRY_USER", "reg-user"),
            ("CI_REGISTRY_PASSWORD", "x"),
        ]);
        for host in ["gitlab.example.com", "gitlab.example.com:443"] {
            let (c, src) = resolve(host, None, &env).unwrap().unwrap();
            assert_eq!(
                (c.username.as_str(), c.password.expose(), src),
                ("gitlab-ci-token", "tok", CredentialSource::DependencyProxyEnv)
            );
        }
        assert_eq!(resolve("gitlab.example.com:5050", None, &env).unwrap().unwrap().1, CredentialSource::GitlabEnv);
        assert!(resolve("gitlab.example.com:8443", None, &env).unwrap().is_none());
    }

    #[test]
    fn malformed_docker_auth_config_is_an_error_without_its_content() {
        let env = MapEnv::new([("DOCKER_AUTH_CONFIG", "{\"auths\": secret-stuff")]);
        let e = resolve("h.io", None, &env).unwrap_err();
        assert!(e.to_string().contains("DOCKER_AUTH_CONFIG"), "{e}");
        assert!(!e.to_string().contains("secret-stuff"), "{e}");
    }

    #[test]
    fn docker_hub_keys() {
        assert!(registry_key_matches("https://index.docker.io/v1/", "registry-1.docker.io"));
        assert!(!registry_key_matches("https://index.docker.io/v1/", "h.io"));
    }
}
