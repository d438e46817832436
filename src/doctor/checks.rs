//! `hoist doctor`'s diagnoses: pure functions from what was observed (a DNS answer, a TLS probe, what `GET /v2/`
//! returned, a token's granted actions, Harbor's permission list…) to a [`Step`] — ✔, ⚠ or ✘ with the fix.
//! No I/O here, so unit tests cover every diagnosis text; [`super::run`] gathers the facts.

use crate::error::ErrorKind;
use crate::progress::human_bytes;
use crate::registry::client::Ping;
use crate::registry::credentials::{robot_name_issue, CredentialSource};
use crate::registry::harbor::{ApiAnswer, ImmutableRule, Permission, ProjectSummary};
use crate::registry::harbor_scan::ScannerRegistration;
use crate::registry::tls::{TlsProbe, TrustSource};

/// A step's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// Works.
    Pass,
    /// Works for a push, but something else will bite (listing, a near-full quota, a suspicious name).
    Warn,
    /// A push would fail here.
    Fail,
    /// Not applicable, or could not be checked.
    Skip,
}

impl Mark {
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Pass => "✔",
            Mark::Warn => "⚠",
            Mark::Fail => "✘",
            Mark::Skip => "–",
        }
    }
}

/// One checked step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// A stable id (`dns`, `tcp`, `tls`, `api`, `credentials`, `login`, `robot-name`, `token`, `harbor-project`…).
    pub check: &'static str,
    #[serde(rename = "status")]
    pub mark: Mark,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The exit-code class of a failure.
    #[serde(skip)]
    pub kind: ErrorKind,
}

impl Step {
    pub fn pass(check: &'static str, message: impl Into<String>) -> Step {
        Step { check, mark: Mark::Pass, message: message.into(), fix: None, kind: ErrorKind::Other }
    }
    pub fn skip(check: &'static str, message: impl Into<String>) -> Step {
        Step { check, mark: Mark::Skip, ..Step::pass(check, message) }
    }
    pub fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Step {
        Step { check, mark: Mark::Warn, fix: Some(fix.into()), ..Step::pass(check, message) }
    }
    pub fn fail(check: &'static str, kind: ErrorKind, message: impl Into<String>, fix: impl Into<String>) -> Step {
        Step { check, mark: Mark::Fail, message: message.into(), fix: Some(fix.into()), kind }
    }
}

const WEB_UI: &str = "this is a web UI, not the registry API; self-managed GitLab registries usually listen on :5050 \
                      (use CI_REGISTRY's host:port), Harbor serves /v2/ on its own host";

/// DNS: the addresses `host` resolved to, or the resolver's error.
pub fn dns(host: &str, answer: &Result<Vec<std::net::IpAddr>, String>) -> Step {
    match answer {
        Ok(addrs) if !addrs.is_empty() => Step::pass(
            "dns",
            format!("{host} resolves to {}", addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")),
        ),
        Ok(_) => {
            Step::fail("dns", ErrorKind::Network, format!("{host} has no address"), "check the registry's host name")
        }
        Err(e) => Step::fail(
            "dns",
            ErrorKind::Network,
            format!("{host} does not resolve: {e}"),
            "check the host name for typos (HARBOR_URL, CI_REGISTRY), and that the runner can reach your DNS",
        ),
    }
}

/// TCP: whether a connection to `addr` opened.
pub fn tcp(addr: &str, outcome: &Result<std::time::Duration, String>) -> Step {
    match outcome {
        Ok(took) => Step::pass("tcp", format!("connected to {addr} in {} ms", took.as_millis())),
        Err(e) => Step::fail(
            "tcp",
            ErrorKind::Network,
            format!("cannot connect to {addr}: {e}"),
            "check the port (self-managed GitLab registries usually listen on :5050), firewalls, and the runner's proxy",
        ),
    }
}

/// Says where a CA file came from: `--ca-file` or `CI_SERVER_TLS_CA_FILE`.
fn trust_origin(source: &TrustSource, ci_ca_file: Option<&str>) -> String {
    match source {
        TrustSource::CaFile(p) if ci_ca_file.is_some_and(|c| std::path::Path::new(c) == p) => {
            format!("CI_SERVER_TLS_CA_FILE ({})", p.display())
        }
        TrustSource::CaFile(p) => format!("--ca-file {}", p.display()),
        other => other.to_string(),
    }
}

/// TLS: which CA verified the certificate, or why none did. `plain_ok`: plain HTTP is acceptable here (loopback).
pub fn tls(probe: &TlsProbe, ci_ca_file: Option<&str>, plain_ok: bool) -> Step {
    if probe.not_tls {
        return if plain_ok {
            Step::pass("tls", "the registry speaks plain HTTP (accepted for loopback hosts)")
        } else {
            Step::fail(
                "tls",
                ErrorKind::Network,
                "the server does not speak TLS on this port",
                "use the registry's HTTPS port, or --plain-http if it really serves plain HTTP (credentials are then refused off loopback)",
            )
        };
    }
    let consulted = probe.sources.iter().map(|s| trust_origin(s, ci_ca_file)).collect::<Vec<_>>().join(", ");
    let client =
        probe.client_cert.as_ref().map(|c| format!("; client certificate {}", c.display())).unwrap_or_default();
    if probe.ok {
        if probe.insecure {
            return Step::warn(
                "tls",
                format!("handshake done WITHOUT verifying the certificate (--insecure){client}"),
                "pass the registry's CA with --ca-file instead of --insecure",
            );
        }
        let by = probe.verified_by.as_ref().map(|s| trust_origin(s, ci_ca_file)).unwrap_or_else(|| "?".into());
        return Step::pass("tls", format!("certificate verified by {by}{client}"));
    }
    let why = probe.error.clone().unwrap_or_else(|| "handshake failed".into());
    Step::fail(
        "tls",
        ErrorKind::Network,
        format!("certificate not trusted: {why} (trusted: {consulted})"),
        "pass the registry's CA with --ca-file FILE, set CI_SERVER_TLS_CA_FILE, or put it in \
         /etc/docker/certs.d/<host:port>/ca.crt; --insecure skips verification",
    )
}

/// `GET /v2/`: a registry answers 200 or 401 with a challenge; a web UI answers HTML or 404.
pub fn api(ping: &Ping) -> Step {
    let html = ping.content_type.as_deref().is_some_and(|c| c.contains("html"))
        || ping.body_head.trim_start().to_ascii_lowercase().starts_with("<!doctype html")
        || ping.body_head.trim_start().to_ascii_lowercase().starts_with("<html");
    let what = match ping.status {
        200 => "200, no credentials needed".to_string(),
        401 => format!("401 asking for {}", ping.challenges.first().map_or("credentials", |c| c.as_str())),
        s => s.to_string(),
    };
    if html || ping.status == 404 {
        return Step::fail(
            "api",
            ErrorKind::Other,
            format!("GET {} answered {}{}", ping.url, ping.status, if html { " with an HTML page" } else { "" }),
            WEB_UI,
        );
    }
    if ping.status == 200 || (ping.status == 401 && !ping.challenges.is_empty()) {
        let version = ping.api_version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default();
        return Step::pass("api", format!("GET {} answered {what}{version}", ping.url));
    }
    Step::fail(
        "api",
        if ping.status >= 500 { ErrorKind::Network } else { ErrorKind::Other },
        format!("GET {} answered {what}", ping.url),
        "this does not look like an OCI registry: check the host and port, and any proxy in front of it",
    )
}

/// Which source supplied the credentials (`None`: none found) and whether the registry asks for any.
pub fn credentials(found: Option<(&str, &CredentialSource)>, registry_wants_auth: bool) -> Step {
    match found {
        Some((user, src)) => Step::pass("credentials", format!("user {user:?} from {src}")),
        None if !registry_wants_auth => Step::pass("credentials", "none found, none needed (anonymous registry)"),
        None => Step::fail(
            "credentials",
            ErrorKind::Auth,
            "no credentials found for this registry",
            "pass -u USER --password-stdin, set HARBOR_USERNAME/HARBOR_PASSWORD (Harbor) or CI_REGISTRY_USER/\
             CI_REGISTRY_PASSWORD (for CI_REGISTRY), set DOCKER_AUTH_CONFIG, or run `hoist login`",
        ),
    }
}

/// The robot-name check: ⚠ when the name looks wrong but the registry took it, ✘ when it was refused.
pub fn robot_name(user: &str, login_ok: bool) -> Option<Step> {
    let issue = robot_name_issue(user)?;
    let fix = "set the username exactly as Harbor shows it (robot$<project>+<name>)";
    Some(if login_ok {
        Step::warn("robot-name", issue, fix)
    } else {
        Step::fail("robot-name", ErrorKind::Auth, issue, fix)
    })
}

/// GitLab's job-token user (`gitlab-ci-token`) and deploy tokens (`gitlab+deploy-token-N`) only work on
/// GitLab's own registry (`CI_REGISTRY`).
pub fn gitlab_token_elsewhere(user: &str, host: &str, ci_registry: Option<&str>, login_ok: bool) -> Option<Step> {
    let kind = if user == "gitlab-ci-token" {
        "the CI job token user (gitlab-ci-token)"
    } else if user.starts_with("gitlab+deploy-token") {
        "a GitLab deploy token"
    } else {
        return None;
    };
    if ci_registry.is_some_and(|r| crate::ci::host_of(r) == host) {
        return None;
    }
    let message = format!(
        "{kind} is used against {host}, which is not GitLab's registry ({})",
        ci_registry.map_or("CI_REGISTRY is not set".to_string(), |r| format!("CI_REGISTRY={r}"))
    );
    let fix = "GitLab tokens only work on GitLab's registry: for Harbor use a robot account (HARBOR_USERNAME/HARBOR_PASSWORD)";
    Some(if login_ok {
        Step::warn("gitlab-token", message, fix)
    } else {
        Step::fail("gitlab-token", ErrorKind::Auth, message, fix)
    })
}

/// The login itself: Basic on `/v2/`, or a token without scope. `refusal` is the registry's answer when it refused.
pub fn login(user: &str, source: &CredentialSource, refusal: Option<&str>, bearer: bool) -> Step {
    let how = if bearer { "the token service accepted" } else { "Basic auth on /v2/ accepted" };
    match refusal {
        None => Step::pass("login", format!("{how} {user:?}")),
        Some(why) => Step::fail(
            "login",
            ErrorKind::Auth,
            format!("the registry refused {user:?} (from {source}): {why}"),
            "check the password or token (a robot's secret is shown once, at creation; expired robots are refused), and \
             that the username is the registry's, not GitLab's",
        ),
    }
}

/// The token for `repository`: which actions it grants (`None`: the registry uses Basic or opaque tokens).
pub fn token(repository: &str, actions: Option<&[String]>, harbor: bool) -> Step {
    let Some(actions) = actions else {
        return Step::skip("token", format!("no JWT to read for {repository} (Basic auth or an opaque token)"));
    };
    let has = |a: &str| actions.iter().any(|x| x == a || x == "*");
    let list = if actions.is_empty() { "nothing".to_string() } else { actions.join(",") };
    if has("push") {
        return Step::pass("token", format!("token for {repository} grants {list}"));
    }
    let (message, fix) = if actions.is_empty() {
        (
            format!("token for {repository} grants nothing (asked for pull,push)"),
            if harbor {
                "Harbor hands wrong credentials an anonymous token: check the password; else the project does not exist \
                 or the account is no member of it — give the robot Pull and Push on the project"
            } else {
                "the account has no access to this repository: check its permissions (and the repository path)"
            },
        )
    } else {
        (
            format!("token for {repository} grants {list}, not push"),
            "the account can read but not push: give it push permission (Harbor robots: Push on Repository)",
        )
    };
    Step::fail("token", ErrorKind::Auth, message, fix)
}

/// Harbor project existence: `HEAD /projects?project_name=` status.
pub fn harbor_project(project: &str, head_status: u16, proxy_cache: bool) -> Step {
    match head_status {
        200 if proxy_cache => Step::fail(
            "harbor-project",
            ErrorKind::Auth,
            format!("project {project:?} is a proxy-cache project: Harbor refuses pushes to it (403)"),
            "push to a regular project; proxy-cache projects only mirror an upstream registry",
        ),
        200 => Step::pass("harbor-project", format!("project {project:?} exists")),
        404 => Step::fail(
            "harbor-project",
            ErrorKind::Other,
            format!("project {project:?} does not exist on this Harbor"),
            "create it (Projects > New Project) or fix the project in the reference / HARBOR_PROJECT; Harbor never \
             creates projects on push",
        ),
        s => Step::skip("harbor-project", format!("HEAD /api/v2.0/projects?project_name={project} answered {s}")),
    }
}

/// The robot's (or user's) permissions on the project, as `users/current/permissions` lists them (relative).
pub fn harbor_permissions(project: &str, answer: &ApiAnswer<Vec<Permission>>) -> Vec<Step> {
    let Some(perms) = &answer.body else {
        return vec![Step::skip(
            "harbor-permissions",
            format!("cannot read the permissions on {project:?}: {}", answer.error.as_deref().unwrap_or("no answer")),
        )];
    };
    let has = |res: &str, act: &str| perms.iter().any(|p| p.resource == res && (p.action == act || p.action == "*"));
    let mut steps = Vec::new();
    let (pull, push) = (has("repository", "pull"), has("repository", "push"));
    let listing = has("repository", "list") || has("artifact", "list");
    let reading = has("repository", "read") || has("artifact", "read");
    if push {
        steps.push(Step::pass(
            "harbor-permissions",
            format!("Pull{} and Push on {project:?}", if pull { "" } else { " (implied)" }),
        ));
    } else {
        let held: Vec<String> = perms.iter().map(|p| format!("{}:{}", p.resource, p.action)).collect();
        let explain = if listing || reading {
            " — List and Read are API permissions (browse artifacts in the UI/API); they do not include Pull or Push, \
             which are the registry's"
        } else {
            ""
        };
        steps.push(Step::fail(
            "harbor-permissions",
            ErrorKind::Auth,
            format!(
                "no Push on {project:?} (holds {}){explain}",
                if held.is_empty() { "nothing".into() } else { held.join(", ") }
            ),
            "edit the robot account: Repository > Push (push implies pull)",
        ));
    }
    if !listing {
        steps.push(Step::warn(
            "harbor-list",
            format!(
                "no List on {project:?}: pushes and pulls work, but listing tags and artifacts (hoist ls, the Harbor \
                     and GitLab UIs, GitLab's Harbor integration) answers 403 — List/Read are not implied by Pull/Push"
            ),
            "add Repository > List and Artifact > List (and Read) to the robot if anything lists",
        ));
    }
    steps
}

/// `hoist doctor --scan`: whether the account may start scans and read their reports (`scan:create`,
/// `artifact-addition:read`), and whether the project has an active scanner.
pub fn harbor_scan(
    project: &str,
    perms: Option<&ApiAnswer<Vec<Permission>>>,
    scanner: &ApiAnswer<ScannerRegistration>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    match perms.and_then(|a| a.body.as_ref()) {
        None => steps.push(Step::skip(
            "harbor-scan-permissions",
            format!("cannot read the permissions on {project:?}: a scan's 403 would tell"),
        )),
        Some(perms) => {
            let has =
                |res: &str, act: &str| perms.iter().any(|p| p.resource == res && (p.action == act || p.action == "*"));
            let missing: Vec<&str> = [("scan", "create"), ("artifact-addition", "read")]
                .into_iter()
                .filter(|(r, a)| !has(r, a))
                .map(|(r, a)| if r == "scan" && a == "create" { "scan:create" } else { "artifact-addition:read" })
                .collect();
            steps.push(if missing.is_empty() {
                Step::pass("harbor-scan-permissions", format!("may start scans and read reports on {project:?}"))
            } else {
                Step::fail(
                    "harbor-scan-permissions",
                    ErrorKind::Auth,
                    format!("hoist scan needs {} on {project:?}", missing.join(" and ")),
                    "edit the robot account: Scan > Create and Artifact Addition > Read",
                )
            });
        }
    }
    steps.push(match (&scanner.body, scanner.status) {
        (Some(reg), _) if reg.disabled => Step::fail(
            "harbor-scanner",
            ErrorKind::Other,
            format!("the scanner of {project:?} ({}) is deactivated: scans answer 412", reg.name),
            "a Harbor admin re-activates it under Administration > Interrogation Services",
        ),
        (Some(reg), _) => Step::pass(
            "harbor-scanner",
            format!(
                "project {project:?} scans with {}{}",
                reg.name,
                reg.health.as_deref().map(|h| format!(" ({h})")).unwrap_or_default()
            ),
        ),
        (None, 404) => Step::fail(
            "harbor-scanner",
            ErrorKind::Other,
            format!("project {project:?} has no scanner: scans answer 412"),
            "a Harbor admin adds one (Trivy ships with Harbor) under Administration > Interrogation Services",
        ),
        (None, 401 | 403) => Step::warn(
            "harbor-scanner",
            format!("cannot see the scanner of {project:?} ({})", scanner.error.as_deref().unwrap_or("")),
            "add Scanner > Read to the robot for this check (hoist scan itself does not need it)",
        ),
        (None, _) => Step::skip(
            "harbor-scanner",
            format!("the scanner of {project:?}: {}", scanner.error.as_deref().unwrap_or("no answer")),
        ),
    });
    steps
}

/// Immutable tag rules against pushing `repository` (without the project) : `tag`.
pub fn harbor_immutable(project: &str, repository: &str, tag: &str, answer: &ApiAnswer<Vec<ImmutableRule>>) -> Step {
    let Some(rules) = &answer.body else {
        return Step::skip(
            "harbor-immutable",
            format!(
                "cannot read {project:?}'s immutable tag rules: {}",
                answer.error.as_deref().unwrap_or("no answer")
            ),
        );
    };
    match rules.iter().find(|r| r.protects(repository, tag)) {
        Some(rule) => Step::fail(
            "harbor-immutable",
            ErrorKind::Other,
            format!(
                "{} makes {project}/{repository}:{tag} immutable: once it exists, every push of {tag} is refused \
                 with 412 PRECONDITION (even of the same digest)",
                rule.describe()
            ),
            format!(
                "push a unique tag (e.g. $CI_COMMIT_SHORT_SHA or a version) instead of {tag:?}, or exclude {tag:?} \
                 from the rule (Project > Policy > Tag Immutability)"
            ),
        ),
        None => Step::pass(
            "harbor-immutable",
            format!("no immutable tag rule protects {tag:?} ({} rule(s) on {project:?})", rules.len()),
        ),
    }
}

/// The project's storage quota (`hard` −1 = unlimited).
pub fn harbor_quota(project: &str, answer: &ApiAnswer<ProjectSummary>) -> Step {
    let quota = answer.body.as_ref().and_then(|s| s.quota.as_ref());
    let Some(q) = quota else {
        return Step::skip(
            "harbor-quota",
            format!("cannot read {project:?}'s quota: {}", answer.error.as_deref().unwrap_or("not in the summary")),
        );
    };
    let used = q.used.get("storage").copied().unwrap_or(0).max(0) as u64;
    match q.hard.get("storage").copied() {
        None | Some(-1) => Step::pass("harbor-quota", format!("{} used, no storage limit", human_bytes(used))),
        Some(hard) => {
            let hard = hard.max(0) as u64;
            let text = format!("{} of {} used", human_bytes(used), human_bytes(hard));
            if used >= hard {
                Step::fail(
                    "harbor-quota",
                    ErrorKind::Auth,
                    format!("quota full: {text} — Harbor refuses new blobs with 403"),
                    "raise the project's quota or delete artifacts (and run garbage collection)",
                )
            } else if used * 10 >= hard * 9 {
                Step::warn(
                    "harbor-quota",
                    format!("quota nearly full: {text}"),
                    "raise the quota or clean up before it fills",
                )
            } else {
                Step::pass("harbor-quota", text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::harbor::Selector;

    fn ping(status: u16, ct: &str, body: &str, challenge: Option<&str>) -> Ping {
        Ping {
            url: "https://gitlab.example.com/v2/".into(),
            status,
            content_type: Some(ct.into()),
            api_version: None,
            challenges: challenge.map(String::from).into_iter().collect(),
            body_head: body.into(),
        }
    }

    #[test]
    fn web_ui_is_named_as_such() {
        let s = api(&ping(200, "text/html; charset=utf-8", "<!DOCTYPE html><html>", None));
        assert_eq!(s.mark, Mark::Fail);
        assert!(s.fix.unwrap().contains(
            "this is a web UI, not the registry API; self-managed GitLab registries usually listen on :5050"
        ));
        let s = api(&ping(404, "text/plain", "404 page not found", None));
        assert_eq!(s.mark, Mark::Fail);
        assert_eq!(api(&ping(401, "application/json", "{}", Some("Bearer realm=x"))).mark, Mark::Pass);
        assert_eq!(api(&ping(200, "application/json", "{}", None)).mark, Mark::Pass);
        let s = api(&ping(502, "text/plain", "", None));
        assert_eq!((s.mark, s.kind), (Mark::Fail, ErrorKind::Network));
    }

    #[test]
    fn tls_names_the_source() {
        let mut p = TlsProbe {
            ok: true,
            verified_by: Some(TrustSource::CaFile("/ci/ca.pem".into())),
            error: None,
            not_tls: false,
            sources: vec![TrustSource::System, TrustSource::CaFile("/ci/ca.pem".into())],
            client_cert: None,
            insecure: false,
        };
        assert_eq!(
            tls(&p, Some("/ci/ca.pem"), false).message,
            "certificate verified by CI_SERVER_TLS_CA_FILE (/ci/ca.pem)"
        );
        assert_eq!(tls(&p, None, false).message, "certificate verified by --ca-file /ci/ca.pem");
        p.ok = false;
        p.verified_by = None;
        p.error = Some("invalid peer certificate: UnknownIssuer".into());
        let s = tls(&p, None, false);
        assert_eq!((s.mark, s.kind), (Mark::Fail, ErrorKind::Network));
        assert!(s.message.contains("UnknownIssuer") && s.message.contains("the system's CA roots"), "{}", s.message);
        assert!(s.fix.unwrap().contains("--ca-file"));
        p.not_tls = true;
        assert_eq!(tls(&p, None, true).mark, Mark::Pass);
        assert_eq!(tls(&p, None, false).mark, Mark::Fail);
    }

    #[test]
    fn robot_and_gitlab_token_names() {
        assert_eq!(robot_name("robot+ci", false).unwrap().mark, Mark::Fail);
        assert_eq!(robot_name("robot+ci", true).unwrap().mark, Mark::Warn);
        assert!(robot_name("robot$p+ci", false).is_none());
        let s = gitlab_token_elsewhere("gitlab-ci-token", "harbor.io", Some("gitlab.io:5050"), false).unwrap();
        assert!(s.message.contains("not GitLab's registry (CI_REGISTRY=gitlab.io:5050)"), "{}", s.message);
        assert!(gitlab_token_elsewhere("gitlab+deploy-token-12", "h.io", None, true).unwrap().mark == Mark::Warn);
        assert!(gitlab_token_elsewhere("gitlab-ci-token", "gitlab.io:5050", Some("gitlab.io:5050"), false).is_none());
        assert!(gitlab_token_elsewhere("robot$p+ci", "h.io", None, false).is_none());
    }

    #[test]
    fn token_actions() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(token("p/a", Some(&v(&["pull", "push"])), false).mark, Mark::Pass);
        let s = token("p/a", Some(&v(&["pull"])), false);
        assert_eq!((s.mark, s.kind), (Mark::Fail, ErrorKind::Auth));
        assert_eq!(s.message, "token for p/a grants pull, not push");
        assert!(token("p/a", Some(&[]), true).fix.unwrap().contains("anonymous token"));
        assert_eq!(token("p/a", None, false).mark, Mark::Skip);
    }

    #[test]
    fn harbor_permissions_explain_list_and_read() {
        let perms = |p: &[(&str, &str)]| ApiAnswer {
            status: 200,
            body: Some(p.iter().map(|(r, a)| Permission { resource: r.to_string(), action: a.to_string() }).collect()),
            error: None,
        };
        let steps = harbor_permissions("p", &perms(&[("repository", "pull"), ("repository", "push")]));
        assert_eq!(steps.iter().map(|s| s.mark).collect::<Vec<_>>(), [Mark::Pass, Mark::Warn]);
        assert!(steps[1].message.contains("no List on \"p\""));
        let steps = harbor_permissions("p", &perms(&[("repository", "list"), ("artifact", "read")]));
        assert_eq!(steps.len(), 1);
        assert!(steps[0].message.contains("List and Read are API permissions"), "{}", steps[0].message);
        assert_eq!(steps[0].mark, Mark::Fail);
        let denied = ApiAnswer { status: 401, body: None, error: Some("401 Unauthorized".into()) };
        assert_eq!(harbor_permissions("p", &denied)[0].mark, Mark::Skip);
    }

    #[test]
    fn harbor_scan_names_missing_permissions_and_scanner() {
        let perms = |pairs: &[(&str, &str)]| ApiAnswer {
            status: 200,
            body: Some(
                pairs.iter().map(|(r, a)| Permission { resource: r.to_string(), action: a.to_string() }).collect(),
            ),
            error: None,
        };
        let scanner = |status: u16, disabled: bool| ApiAnswer {
            status,
            body: (status == 200).then(|| ScannerRegistration {
                name: "Trivy".into(),
                disabled,
                health: Some("healthy".into()),
            }),
            error: (status != 200).then(|| format!("{status}")),
        };
        let s = harbor_scan("p", Some(&perms(&[("scan", "create")])), &scanner(200, false));
        assert_eq!(s[0].mark, Mark::Fail);
        assert!(s[0].message.contains("artifact-addition:read") && !s[0].message.contains("scan:create"), "{s:?}");
        assert_eq!(s[1].mark, Mark::Pass);
        let ok = perms(&[("scan", "create"), ("artifact-addition", "read")]);
        assert_eq!(harbor_scan("p", Some(&ok), &scanner(200, false))[0].mark, Mark::Pass);
        assert_eq!(harbor_scan("p", Some(&ok), &scanner(200, true))[1].mark, Mark::Fail);
        assert_eq!(harbor_scan("p", Some(&ok), &scanner(404, false))[1].mark, Mark::Fail);
        assert_eq!(harbor_scan("p", Some(&ok), &scanner(403, false))[1].mark, Mark::Warn);
    }

    #[test]
    fn harbor_immutable_and_quota() {
        let rule = ImmutableRule {
            id: 1,
            tag_selectors: vec![Selector {
                kind: "doublestar".into(),
                decoration: "matches".into(),
                pattern: "latest".into(),
            }],
            ..Default::default()
        };
        let ans = ApiAnswer { status: 200, body: Some(vec![rule]), error: None };
        let s = harbor_immutable("p", "app", "latest", &ans);
        assert_eq!(s.mark, Mark::Fail);
        assert!(s.message.contains("412"), "{}", s.message);
        assert_eq!(harbor_immutable("p", "app", "v1", &ans).mark, Mark::Pass);
        let q = |hard: i64, used: i64| ApiAnswer {
            status: 200,
            body: Some(ProjectSummary {
                quota: Some(crate::registry::harbor::Quota {
                    hard: [("storage".to_string(), hard)].into(),
                    used: [("storage".to_string(), used)].into(),
                }),
            }),
            error: None,
        };
        assert_eq!(harbor_quota("p", &q(-1, 5)).mark, Mark::Pass);
        assert_eq!(harbor_quota("p", &q(100, 95)).mark, Mark::Warn);
        assert_eq!(harbor_quota("p", &q(100, 100)).mark, Mark::Fail);
        assert_eq!(harbor_project("p", 404, false).mark, Mark::Fail);
        assert!(harbor_project("p", 404, false).message.contains("does not exist"));
        assert_eq!(harbor_project("p", 200, true).mark, Mark::Fail);
    }
}
