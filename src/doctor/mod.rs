//! `hoist doctor`: checks, step by step, what a push to a registry needs — DNS, TCP, TLS, the registry API,
//! credentials (their source, the login, the robot name, GitLab tokens used elsewhere), the token's granted
//! actions and, on Harbor, the project, the robot's permissions, immutable tag rules and the quota (and, with
//! `--scan`, what `hoist scan` needs: its two permissions and the project's scanner).
//!
//! [`run`] gathers the facts through the one transport ([`crate::registry`]); [`checks`] turns each into a
//! [`Step`]; [`Report`] renders them for people (stderr) or as JSON (stdout) and decides the exit code.

pub mod checks;

use std::time::Duration;

use crate::ci::context::CiContext;
use crate::ci::{host_of, vars, Env};
use crate::error::{Error, Result};
use crate::model::{is_loopback_host, Reference};
use crate::registry::auth::{repo_scope, Challenge};
use crate::registry::client::Client;
use crate::registry::harbor::Harbor;
use crate::registry::{credentials, probe, tls, ClientOptions, Credential};
pub use checks::{Mark, Step};

/// How long DNS, TCP and the TLS handshake may each take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What to check: a registry host, and a repository and tag when known.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    /// `host[:port]` to dial.
    pub host: String,
    /// The repository whose token is checked (`None`: only the registry is).
    pub repository: Option<String>,
    /// The tag a push would write (immutable tag rules are checked against it).
    pub tag: String,
    /// Where the target came from (`argument`, `HARBOR_URL`, `CI_REGISTRY`…).
    pub from: String,
}

impl Target {
    /// From the command-line argument (`REGISTRY` or `REF`), else from the CI environment: Harbor's variables
    /// (`HARBOR_URL`/`HARBOR_HOST` + `HARBOR_PROJECT`), else `CI_REGISTRY` (+ `CI_REGISTRY_IMAGE`).
    pub fn resolve(arg: Option<&str>, env: &dyn Env) -> Result<Target> {
        if let Some(arg) = arg {
            let bare = arg.split_once("://").map_or(arg, |(_, r)| r).trim_end_matches('/');
            if !bare.contains('/') {
                return Ok(Target {
                    host: host_of(bare),
                    repository: None,
                    tag: "latest".into(),
                    from: "argument".into(),
                });
            }
            let r: Reference = bare.parse()?;
            return Ok(Target {
                host: r.api_host().to_string(),
                repository: Some(r.repository().to_string()),
                tag: r.tag().unwrap_or("latest").to_string(),
                from: "argument".into(),
            });
        }
        // Where `hoist build`/`push` would go in this job (the one CI context), else just the registry.
        let ctx = CiContext::from_env(env, None);
        let harbor_var = if env.non_empty(vars::HARBOR_URL).is_some() { vars::HARBOR_URL } else { vars::HARBOR_HOST };
        if let Some(h) = &ctx.harbor {
            let name = ctx.name.clone().unwrap_or_else(|| "doctor-check".into());
            let repository = Some(format!("{}/{name}", h.project));
            return Ok(Target { host: h.registry.clone(), repository, tag: "latest".into(), from: harbor_var.into() });
        }
        if let Some(image) = &ctx.registry_image {
            let r: Reference = image.parse()?;
            let (host, repository) = (r.api_host().to_string(), Some(r.repository().to_string()));
            return Ok(Target { host, repository, tag: "latest".into(), from: vars::CI_REGISTRY_IMAGE.into() });
        }
        let host = env.non_empty(harbor_var).map(|h| (host_of(&h), harbor_var));
        if let Some((host, from)) =
            host.or_else(|| env.non_empty(vars::CI_REGISTRY).map(|r| (host_of(&r), vars::CI_REGISTRY)))
        {
            return Ok(Target { host, repository: None, tag: "latest".into(), from: from.into() });
        }
        Err(Error::usage(
            "no registry to check: give REGISTRY or REF, or run in CI (HARBOR_URL/HARBOR_HOST or CI_REGISTRY)",
        )
        .with_hint("hoist doctor harbor.example.com/project/app:latest"))
    }
}

/// Every step checked, in order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub target: Target,
    /// Recognised as Harbor (token realm `/service/token` or `/api/v2.0/ping` answering `Pong`).
    pub harbor: bool,
    pub ok: bool,
    pub steps: Vec<Step>,
}

impl Report {
    fn new(target: Target) -> Report {
        Report { target, harbor: false, ok: true, steps: Vec::new() }
    }

    fn add(&mut self, step: Step) -> Mark {
        let mark = step.mark;
        if mark == Mark::Fail {
            self.ok = false;
        }
        self.steps.push(step);
        mark
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let t = &self.target;
        let mut out = format!(
            "hoist doctor: {}{}{}\n",
            t.host,
            t.repository.as_ref().map(|r| format!("/{r}:{}", t.tag)).unwrap_or_default(),
            if t.from == "argument" { String::new() } else { format!(" (from {})", t.from) }
        );
        for s in &self.steps {
            out.push_str(&format!("  {} {:<18} {}\n", s.mark.symbol(), s.check, s.message));
            if let (Some(fix), Mark::Fail | Mark::Warn) = (&s.fix, s.mark) {
                out.push_str(&format!("    {:<18} fix: {fix}\n", ""));
            }
        }
        let failed = self.steps.iter().filter(|s| s.mark == Mark::Fail).count();
        let warned = self.steps.iter().filter(|s| s.mark == Mark::Warn).count();
        out.push_str(&if failed == 0 {
            format!("ready to push{}\n", if warned > 0 { format!(" ({warned} warning(s))") } else { String::new() })
        } else {
            format!("{failed} check(s) failed: a push would not work\n")
        });
        out
    }

    /// The error to exit with: the first failed step's class, naming every failed step.
    pub fn exit_error(&self) -> Option<Error> {
        let failed: Vec<&Step> = self.steps.iter().filter(|s| s.mark == Mark::Fail).collect();
        let first = failed.first()?;
        let names = failed.iter().map(|s| s.check).collect::<Vec<_>>().join(", ");
        Some(Error::new(first.kind, format!("doctor: {} check(s) failed ({names})", failed.len())))
    }
}

/// Runs every check against `target`. `flags`: credentials given on the command line.
/// `scan`: also check what `hoist scan` needs (`--scan`).
pub async fn run(target: Target, opts: &ClientOptions, flags: Option<Credential>, env: &dyn Env, scan: bool) -> Report {
    let mut report = Report::new(target);
    let _ = run_steps(&mut report, opts, flags, env, scan).await;
    report
}

/// The checks in order; returns `None` where a failure makes the later checks meaningless.
async fn run_steps(
    r: &mut Report,
    opts: &ClientOptions,
    flags: Option<Credential>,
    env: &dyn Env,
    scan: bool,
) -> Option<()> {
    let host = r.target.host.clone();
    let (name, port) = split_host_port(&host, if opts.plain_http { 80 } else { 443 });

    // DNS, then TCP to the first address that connects.
    let answer = probe::resolve(&name, PROBE_TIMEOUT).await;
    let ips = answer.clone().unwrap_or_default();
    stop_on_fail(r.add(checks::dns(&name, &answer)))?;
    let (connected, took) = probe::connect_first(&ips, port, PROBE_TIMEOUT).await;
    let shown = connected.as_ref().map_or_else(|_| format!("{name}:{port}"), |a| a.to_string());
    stop_on_fail(r.add(checks::tcp(&shown, &connected.map(|_| took))))?;
    let addr: std::net::SocketAddr = shown.parse().ok()?;

    // TLS.
    if opts.plain_http {
        r.add(Step::skip("tls", "--plain-http: no TLS"));
    } else {
        let (h, tls_opts) = (host.clone(), opts.tls.clone());
        let probe = tokio::task::spawn_blocking(move || tls::probe(&h, addr, &tls_opts, PROBE_TIMEOUT)).await;
        let step = match probe {
            Ok(Ok(p)) => {
                checks::tls(&p, env.non_empty(vars::CI_SERVER_TLS_CA_FILE).as_deref(), is_loopback_host(&host))
            }
            Ok(Err(e)) => checks::Step::fail("tls", e.kind(), e.to_string(), e.hint().unwrap_or("check --ca-file")),
            Err(e) => checks::Step::fail("tls", crate::error::ErrorKind::Other, e.to_string(), "report this bug"),
        };
        stop_on_fail(r.add(step))?;
    }

    // The registry API.
    let ping = match Client::ping(&host, opts).await {
        Ok(p) => p,
        Err(e) => {
            r.add(Step::fail("api", e.kind(), e.to_string(), e.hint().unwrap_or("check the host and port")));
            return None;
        }
    };
    stop_on_fail(r.add(checks::api(&ping)))?;

    // Credentials: where from, then the login.
    let found = match credentials::resolve(&host, flags, env) {
        Ok(f) => f,
        Err(e) => {
            r.add(Step::fail("credentials", e.kind(), e.to_string(), e.hint().unwrap_or("fix the docker config")));
            return None;
        }
    };
    r.add(checks::credentials(found.as_ref().map(|(c, s)| (c.username.as_str(), s)), ping.status == 401));
    let user = found.as_ref().map(|(c, s)| (c.username.clone(), s.clone()));
    let client = match Client::connect(&host, opts, found).await {
        Ok(c) => c,
        Err(e) => {
            r.add(Step::fail("login", e.kind(), e.to_string(), e.hint().unwrap_or("")));
            return None;
        }
    };
    let bearer = matches!(client.challenge(), Some(Challenge::Bearer { .. }));
    r.harbor = Harbor::detect(&client).await;
    if let Some((name, source)) = &user {
        let refusal = match client.verify_credentials().await {
            Ok(()) => None,
            Err(e) => Some(e.to_string()),
        };
        let ok = refusal.is_none();
        r.add(checks::login(name, source, refusal.as_deref(), bearer));
        if let Some(s) = checks::robot_name(name, ok) {
            r.add(s);
        }
        let ci_registry = env.non_empty(vars::CI_REGISTRY);
        if let Some(s) = checks::gitlab_token_elsewhere(name, &host, ci_registry.as_deref(), ok) {
            r.add(s);
        }
        if !ok {
            r.add(Step::skip("token", "not checked: every later check needs working credentials"));
            return None;
        }
    }

    let Some(repository) = r.target.repository.clone() else {
        r.add(Step::skip("token", "no repository given: pass a REF (host/project/app:tag) to check push rights"));
        return Some(());
    };

    // Harbor: the project first (a missing project explains an empty token).
    let harbor = Harbor::new(&client);
    let project_name = repository.split('/').next().unwrap_or(&repository).to_string();
    let mut project = None;
    if r.harbor {
        let exists = harbor.project_exists(&project_name).await.unwrap_or(0);
        if exists == 200 {
            project = match harbor.project(&project_name).await {
                Ok(a) if a.body.is_some() => a.body,
                // A pull/push-only robot gets 403 here on a private project; the list shows what it may see.
                _ => harbor.find_project(&project_name).await.ok().flatten(),
            };
        }
        let proxy = project.as_ref().is_some_and(|p| p.is_proxy_cache());
        if stop_on_fail(r.add(checks::harbor_project(&project_name, exists, proxy))).is_none() && exists == 404 {
            return None;
        }
    }

    // The token for the repository.
    let scopes = [repo_scope(&repository, "pull,push")];
    match client.granted_actions(&repository, &scopes).await {
        Ok(actions) => r.add(checks::token(&repository, actions.as_deref(), r.harbor)),
        Err(e) => r.add(Step::fail("token", e.kind(), e.to_string(), e.hint().unwrap_or("check the credentials"))),
    };

    if !r.harbor {
        if scan {
            r.add(Step::fail(
                "harbor-scan",
                crate::error::ErrorKind::Other,
                "not Harbor: this registry has no scanner API for hoist scan",
                "scan where the image is in Harbor; on GitLab's registry use GitLab's Container-Scanning template",
            ));
        }
        return Some(());
    }
    let mut perms_answer = None;
    match &project {
        Some(p) => {
            if let Ok(perms) = harbor.permissions(p.project_id).await {
                for s in checks::harbor_permissions(&project_name, &perms) {
                    r.add(s);
                }
                perms_answer = Some(perms);
            }
        }
        None => {
            r.add(Step::skip("harbor-permissions", format!("the account cannot see project {project_name:?}'s id")));
        }
    }
    if scan {
        if let Ok(scanner) = harbor.project_scanner(&project_name).await {
            for s in checks::harbor_scan(&project_name, perms_answer.as_ref(), &scanner) {
                r.add(s);
            }
        }
    }
    let in_project = repository.split_once('/').map_or(repository.as_str(), |(_, rest)| rest).to_string();
    if let Ok(rules) = harbor.immutable_rules(&project_name).await {
        r.add(checks::harbor_immutable(&project_name, &in_project, &r.target.tag.clone(), &rules));
    }
    if let Ok(summary) = harbor.summary(&project_name).await {
        r.add(checks::harbor_quota(&project_name, &summary));
    }
    Some(())
}

fn stop_on_fail(mark: Mark) -> Option<()> {
    (mark != Mark::Fail).then_some(())
}

/// `host:port`, `[::1]:5000`, `host` → (name, port).
fn split_host_port(host: &str, default_port: u16) -> (String, u16) {
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default_port);
        return (name.to_string(), port);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().unwrap_or(default_port)),
        _ => (host.to_string(), default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::MapEnv;

    #[test]
    fn targets_from_arguments_and_ci() {
        let none = MapEnv::default();
        let t = Target::resolve(Some("harbor.io/proj/app:1.0"), &none).unwrap();
        assert_eq!((t.host.as_str(), t.repository.as_deref(), t.tag.as_str()), ("harbor.io", Some("proj/app"), "1.0"));
        let t = Target::resolve(Some("https://127.0.0.1:5000/"), &none).unwrap();
        assert_eq!((t.host.as_str(), t.repository), ("127.0.0.1:5000", None));
        let env = MapEnv::new([
            ("HARBOR_URL", "https://Harbor.io:8443/"),
            ("HARBOR_PROJECT", "team"),
            ("CI_PROJECT_NAME", "App"),
            ("CI_REGISTRY", "gitlab.io:5050"),
        ]);
        let t = Target::resolve(None, &env).unwrap();
        assert_eq!(
            (t.host.as_str(), t.repository.as_deref(), t.from.as_str()),
            ("harbor.io:8443", Some("team/app"), "HARBOR_URL")
        );
        let env = MapEnv::new([("CI_REGISTRY", "gitlab.io:5050"), ("CI_REGISTRY_IMAGE", "gitlab.io:5050/Group/Proj")]);
        let t = Target::resolve(None, &env).unwrap();
        assert_eq!((t.host.as_str(), t.repository.as_deref()), ("gitlab.io:5050", Some("group/proj")));
        let t = Target::resolve(None, &MapEnv::new([("HARBOR_HOST", "h.io")])).unwrap();
        assert_eq!((t.host.as_str(), t.repository, t.from.as_str()), ("h.io", None, "HARBOR_HOST"));
        assert_eq!(Target::resolve(None, &none).unwrap_err().kind(), crate::error::ErrorKind::Usage);
    }

    #[test]
    fn host_ports() {
        assert_eq!(split_host_port("h.io", 443), ("h.io".into(), 443));
        assert_eq!(split_host_port("h.io:5050", 443), ("h.io".into(), 5050));
        assert_eq!(split_host_port("[::1]:5000", 443), ("::1".into(), 5000));
    }

    #[test]
    fn exit_code_is_the_first_failure() {
        let mut r =
            Report::new(Target { host: "h".into(), repository: None, tag: "latest".into(), from: "argument".into() });
        r.add(Step::pass("dns", "ok"));
        assert!(r.exit_error().is_none());
        r.add(Step::fail("login", crate::error::ErrorKind::Auth, "refused", "fix"));
        r.add(Step::fail("harbor-immutable", crate::error::ErrorKind::Other, "412", "fix"));
        let e = r.exit_error().unwrap();
        assert_eq!(e.kind().exit_code(), 3);
        assert_eq!(e.to_string(), "doctor: 2 check(s) failed (login, harbor-immutable)");
        assert!(r.render().contains("✘ login"));
    }
}
