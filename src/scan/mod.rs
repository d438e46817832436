//! `hoist scan`: Harbor's vulnerability scan of a pushed artifact, brought back into the pipeline.
//!
//! [`scan`] starts Harbor's scan (or reuses a finished one, or waits for scan-on-push's), polls the artifact's scan
//! overview with backoff until it ends or `--timeout`, reads the report (an index's children's reports merged as
//! Harbor merges them), applies the project's CVE allowlist and `--ignore-unfixed`, and returns an [`Outcome`].
//! Every Harbor status it can meet is turned into words with the fix here. All calls go through the one transport
//! ([`crate::registry::harbor_scan`]); the files for GitLab are written by [`gitlab`], the findings are [`findings`].

pub mod findings;
pub mod gitlab;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::Reference;
use crate::progress::Reporter;
use crate::registry::harbor::{ApiAnswer, Harbor};
use crate::registry::harbor_scan::{Artifact, CveAllowlist, Scanner, VulnReport};
use crate::registry::Client;
use findings::{Filters, Finding, Severity};

/// The first wait between polls; each next one is 1.5 times longer, up to [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_secs(1);
const POLL_MAX: Duration = Duration::from_secs(10);

/// How a scan is run and judged.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Scan again even when Harbor holds a finished scan of this digest.
    pub rescan: bool,
    pub timeout: Duration,
    pub ignore_unfixed: bool,
    pub fail_on: Option<Severity>,
}

/// What to scan, in Harbor's terms.
#[derive(Debug, Clone)]
pub struct Target {
    pub reference: Reference,
    /// The Harbor project (the repository's first component).
    pub project: String,
    /// The repository inside the project (may hold `/`).
    pub repository: String,
}

impl Target {
    pub fn new(reference: Reference) -> Result<Target> {
        let Some((project, repository)) = reference.repository().split_once('/') else {
            return Err(Error::usage(format!(
                "{reference}: a Harbor repository is PROJECT/NAME, and this one has no project"
            ))
            .with_hint("give host/project/name[:tag|@digest]"));
        };
        Ok(Target { project: project.to_string(), repository: repository.to_string(), reference })
    }

    /// The digest when given, else the tag (Harbor resolves either).
    fn api_reference(&self) -> String {
        match (self.reference.digest(), self.reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        }
    }
}

/// A finished scan, judged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The reference asked for.
    pub reference: String,
    pub digest: String,
    pub project: String,
    pub repository: String,
    /// The platforms' digests when the artifact is an index (their reports are merged).
    pub children: Vec<String>,
    pub scanner: Option<Scanner>,
    /// When Harbor's scanner wrote the report (RFC 3339).
    pub generated_at: Option<String>,
    /// Harbor's scan start and end (RFC 3339), when it says.
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Whether an earlier finished scan of this digest was reused.
    pub reused: bool,
    /// The artifact's page in Harbor's web UI.
    pub harbor_url: String,
    pub filters: Filters,
    /// Findings dropped by `--ignore-unfixed`.
    pub ignored_unfixed: usize,
    /// Per severity (not allowlisted): total and fixable.
    pub counts: BTreeMap<String, SeverityCount>,
    pub fail_on: Option<Severity>,
    /// How many findings fail `--fail-on`.
    pub failing: usize,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SeverityCount {
    pub total: usize,
    pub fixable: usize,
}

/// Runs the scan of `target` on `client`'s Harbor.
pub async fn scan(client: &Client, target: &Target, opts: &ScanOptions, reporter: &Reporter) -> Result<Outcome> {
    let harbor = Harbor::new(client);
    let what = target.reference.to_string();
    if !harbor.ping().await? {
        return Err(not_harbor(&target.reference));
    }
    let (p, r) = (target.project.as_str(), target.repository.as_str());
    let first = harbor.artifact(p, r, &target.api_reference()).await?;
    let artifact = artifact_or_error(first, target)?;
    let digest = artifact.digest.clone();
    let before = artifact.scan().map(|s| (s.report_id.clone(), s.end_time.clone(), s.scan_status.clone()));
    let status = before.as_ref().map(|b| b.2.clone()).unwrap_or_default();

    let mut reused = false;
    let mut started = false;
    match status.as_str() {
        "Success" if !opts.rescan => {
            reused = true;
            reporter.note(&format!(
                "scan: reusing Harbor's finished scan of {digest}{} (--rescan scans again)",
                artifact.scan().and_then(|s| s.end_time.clone()).map(|t| format!(" from {t}")).unwrap_or_default()
            ));
        }
        "Pending" | "Scheduled" | "Running" if !opts.rescan => {
            reporter.note(&format!("scan: Harbor is already scanning {digest} ({status}): waiting for it"));
        }
        _ => {
            let ans = harbor.start_scan(p, r, &digest).await?;
            match ans.status {
                200..=202 => {
                    started = true;
                    let shown = if what.ends_with(&digest) { what.clone() } else { format!("{what} ({digest})") };
                    reporter.note(&format!("scan: Harbor started scanning {shown}"));
                }
                // Scan-on-push (or another job) got there first: wait for that scan.
                409 => reporter.note(&format!(
                    "scan: a scan of {digest} is already pending or running (scan-on-push): waiting for it"
                )),
                _ => return Err(start_error(&ans, target, &artifact)),
            }
        }
    }

    let artifact =
        if reused { artifact } else { wait(&harbor, target, &digest, opts, reporter, started, before).await? };
    let summary = artifact.scan().cloned().unwrap_or_default();

    // The report: the artifact's own, or for an index its children's, merged.
    let children = artifact.children();
    let sources = if children.is_empty() { vec![digest.clone()] } else { children.clone() };
    let mut reports: Vec<(String, VulnReport)> = Vec::new();
    for d in &sources {
        let ans = harbor.vulnerabilities(p, r, d).await?;
        match ans.body {
            Some(map) => {
                if let Some(report) = pick_report(map) {
                    reports.push((d.clone(), report));
                }
            }
            None => return Err(report_error(&ans, target, d)),
        }
    }
    let mut merged = findings::merge(&reports);

    let filters = Filters { ignore_unfixed: opts.ignore_unfixed, ..allowlist(&harbor, p, now_epoch(), reporter).await };
    let ignored_unfixed = findings::apply(&mut merged.findings, &filters);
    let counts = findings::counts(&merged.findings)
        .into_iter()
        .map(|(s, (total, fixable))| (s.as_str().to_string(), SeverityCount { total, fixable }))
        .collect();
    let failing = findings::failing(&merged.findings, opts.fail_on).len();
    Ok(Outcome {
        reference: what,
        harbor_url: ui_link(client, artifact.project_id, r, &digest),
        digest,
        project: p.to_string(),
        repository: r.to_string(),
        children,
        scanner: merged.scanner.or(summary.scanner),
        generated_at: merged.generated_at,
        start_time: summary.start_time,
        end_time: summary.end_time,
        reused,
        filters,
        ignored_unfixed,
        counts,
        fail_on: opts.fail_on,
        failing,
        findings: merged.findings,
    })
}

/// Polls the artifact's scan overview until the scan ends, with backoff, up to `opts.timeout`. `before`: the scan
/// state seen before a scan was started (a new scan's Success must not be mistaken for the old one's).
async fn wait(
    harbor: &Harbor<'_>,
    target: &Target,
    digest: &str,
    opts: &ScanOptions,
    reporter: &Reporter,
    started: bool,
    before: Option<(String, Option<String>, String)>,
) -> Result<Artifact> {
    let (p, r) = (target.project.as_str(), target.repository.as_str());
    let _section = reporter.section("hoist_scan", &format!("waiting for Harbor's scan of {digest}"));
    let waiting = reporter.waiting("scan:");
    let deadline = Instant::now() + opts.timeout;
    let mut delay = POLL_FIRST;
    let mut error_repolled = false;
    loop {
        let ans = harbor.artifact(p, r, digest).await?;
        let artifact = artifact_or_error(ans, target)?;
        let s = artifact.scan().cloned().unwrap_or_default();
        let same_as_before = started
            && before.as_ref().is_some_and(|(id, end, _)| *id == s.report_id && *end == s.end_time && !id.is_empty());
        let state = if same_as_before { "Pending".to_string() } else { s.scan_status.clone() };
        let last = match s.complete_percent {
            Some(pc) if state == "Running" => format!("Running {pc}%"),
            _ if state.is_empty() => "not started".to_string(),
            _ => state.clone(),
        };
        waiting.update(&last);
        match state.as_str() {
            "Success" => {
                reporter.note(&format!("scan: Harbor's scan of {digest} finished in {:.0} s", waiting.seconds()));
                return Ok(artifact);
            }
            // Harbor marks a scan Error when its job starts before the pushed artifact is fully recorded (right
            // after a push): look once more before calling it failed.
            "Error" if !error_repolled => error_repolled = true,
            "Error" | "Stopped" => {
                let log = if s.report_id.is_empty() {
                    "(Harbor gave no report id, so no log)".to_string()
                } else {
                    harbor.scan_log(p, r, digest, &s.report_id).await.unwrap_or_else(|e| e.to_string())
                };
                let quoted: String = log.trim().lines().take(40).map(|l| format!("\n  | {l}")).collect();
                return Err(Error::other(format!(
                    "Harbor's scan of {} ended with {state}; its log:{quoted}",
                    target.reference
                ))
                .with_hint(if state == "Stopped" {
                    "someone stopped the scan in Harbor: run hoist scan again (--rescan)"
                } else {
                    "the log above is the scanner's (Trivy's); a download or database error is often passing: run again \
                     with --rescan, else show the log to your Harbor admin"
                }));
            }
            _ => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::other(format!(
                "Harbor's scan of {} did not finish within {} (last state: {last})",
                target.reference,
                human_duration(opts.timeout)
            ))
            .with_hint(
                "raise --timeout; a scan waits in Harbor's job service queue behind others (Administration → Job \
                 Service shows the queue)",
            ));
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay.mul_f64(1.5)).min(POLL_MAX);
    }
}

/// The report to read from `{MIME: report}`: the generic format first, as the Accept header asks.
fn pick_report(map: std::collections::HashMap<String, VulnReport>) -> Option<VulnReport> {
    let mut v: Vec<(String, VulnReport)> = map.into_iter().collect();
    v.sort_by_key(|(k, _)| (!k.contains("vnd.security.vulnerability.report"), k.clone()));
    v.into_iter().next().map(|(_, r)| r)
}

/// The project's CVE allowlist (or the system's, when the project reuses it) as filters; a note when it cannot be
/// read or has expired.
async fn allowlist(harbor: &Harbor<'_>, project: &str, now: i64, reporter: &Reporter) -> Filters {
    let mut filters = Filters::default();
    let ans = match harbor.project(project).await {
        Ok(a) => a,
        Err(e) => {
            filters.allowlist_note = Some(format!("the project could not be read ({e})"));
            return filters;
        }
    };
    let Some(p) = ans.body else {
        let note = format!(
            "project {project}'s CVE allowlist could not be read ({}): findings are not filtered by it; give the robot \
             project read to use it",
            ans.error.unwrap_or_default()
        );
        reporter.warn(&note);
        filters.allowlist_note = Some(note);
        return filters;
    };
    let reuse_system = p
        .metadata
        .as_ref()
        .and_then(|m| m.get("reuse_sys_cve_allowlist").cloned().flatten())
        .is_some_and(|v| v == "true");
    let (list, whose): (Option<CveAllowlist>, String) = if reuse_system {
        match harbor.system_allowlist().await {
            Ok(ApiAnswer { body: Some(l), .. }) => (Some(l), "the system".to_string()),
            Ok(ApiAnswer { error, .. }) => {
                let note = format!(
                    "project {project} reuses the system CVE allowlist, which could not be read ({}): findings are not \
                     filtered by it",
                    error.unwrap_or_default()
                );
                reporter.warn(&note);
                filters.allowlist_note = Some(note);
                return filters;
            }
            Err(e) => {
                filters.allowlist_note = Some(e.to_string());
                return filters;
            }
        }
    } else {
        (p.cve_allowlist, format!("project {project}"))
    };
    let Some(list) = list else { return filters };
    let ids: Vec<String> = list
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.cve_id.trim().to_string())
        .filter(|i| !i.is_empty())
        .collect();
    match list.expires_at {
        Some(t) if t > 0 && t <= now && !ids.is_empty() => {
            let note = format!(
                "{whose}'s CVE allowlist expired at {}: its {} CVE(s) count again",
                crate::builder::config::rfc3339(t as u64),
                ids.len()
            );
            reporter.warn(&note);
            filters.allowlist_note = Some(note);
        }
        _ => {
            if !ids.is_empty() {
                filters.allowlist_note = Some(format!("{whose}'s CVE allowlist"));
            }
            filters.allowlist = ids;
        }
    }
    filters
}

/// `10m`, `1m30s`, `45s`.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, sec) => format!("{sec}s"),
        (m, 0) => format!("{m}m"),
        (m, sec) => format!("{m}m{sec}s"),
    }
}

fn now_epoch() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `https://harbor/harbor/projects/{id}/repositories/{repo, / as %2F}/artifacts-tab/artifacts/{digest}`.
fn ui_link(client: &Client, project_id: i64, repository: &str, digest: &str) -> String {
    let base = client.base_url().as_str().trim_end_matches('/');
    format!(
        "{base}/harbor/projects/{project_id}/repositories/{}/artifacts-tab/artifacts/{digest}",
        repository.replace('/', "%2F")
    )
}

fn not_harbor(r: &Reference) -> Error {
    Error::other(format!(
        "{} is not Harbor (no /api/v2.0/ping answering Pong): it has no scanner API to ask",
        r.api_host()
    ))
    .with_hint(
        "hoist scan reads Harbor's scans; GitLab's container registry (and a plain registry) scans nothing itself — \
         there, use GitLab's Container-Scanning CI template, or push to Harbor (the Harbor integration's HARBOR_* \
         variables make it hoist's CI destination)",
    )
}

/// The artifact, or why it could not be read.
fn artifact_or_error(ans: ApiAnswer<Artifact>, t: &Target) -> Result<Artifact> {
    if let Some(a) = ans.body {
        return Ok(a);
    }
    let e = ans.error.unwrap_or_default();
    Err(match ans.status {
        401 => Error::auth(format!("Harbor refused the credentials reading {} ({e})", t.reference))
            .with_hint("check HARBOR_USERNAME/HARBOR_PASSWORD (or --username/--password-stdin)"),
        403 => Error::auth(format!("the account may not read artifacts of project {} ({e})", t.project))
            .with_hint("give the robot account `artifact:read` (Harbor: Robot Accounts → Permissions: Artifact Read)"),
        404 => Error::other(format!("{} is not in Harbor ({e})", t.reference))
            .with_hint("push it first, and check the project and repository names (case matters)"),
        _ => Error::other(format!("reading {} from Harbor: {e}", t.reference)),
    })
}

/// Why `POST …/scan` refused, with the fix.
fn start_error(ans: &ApiAnswer<()>, t: &Target, artifact: &Artifact) -> Error {
    let e = ans.error.clone().unwrap_or_default();
    match ans.status {
        412 => Error::other(format!("Harbor has no usable scanner for project {} ({e})", t.project)).with_hint(
            "a Harbor admin adds or re-activates one under Administration → Interrogation Services (Trivy ships with \
             Harbor), and a project admin picks it under the project's Configuration",
        ),
        400 | 422 => Error::other(format!(
            "Harbor cannot scan {}: {} artifacts are not scannable ({e})",
            t.reference,
            if artifact.kind.is_empty() { "these".to_string() } else { artifact.kind.clone() }
        ))
        .with_hint(
            "Harbor's scanners read container images; a Helm chart or other artifact has nothing to scan — scan the \
             image instead, or drop hoist scan from this job",
        ),
        401 => Error::auth(format!("Harbor refused the credentials starting a scan ({e})"))
            .with_hint("check HARBOR_USERNAME/HARBOR_PASSWORD (or --username/--password-stdin)"),
        403 => Error::auth(format!("the account may not start scans in project {} ({e})", t.project)).with_hint(
            "give the robot account `scan:create` (Harbor: Robot Accounts → Permissions: Scan Create) and, to read the \
             report, `artifact-addition:read` (Artifact Addition Read)",
        ),
        404 => Error::other(format!("{} is not in Harbor ({e})", t.reference))
            .with_hint("push it first, and check the project and repository names"),
        _ => Error::other(format!("starting Harbor's scan of {}: {e}", t.reference)),
    }
}

/// Why the report could not be read, with the fix.
fn report_error<T>(ans: &ApiAnswer<T>, t: &Target, digest: &str) -> Error {
    let e = ans.error.clone().unwrap_or_default();
    match ans.status {
        403 => Error::auth(format!("the account may not read scan reports in project {} ({e})", t.project)).with_hint(
            "give the robot account `artifact-addition:read` (Harbor: Robot Accounts → Permissions: Artifact Addition \
             Read)",
        ),
        _ => Error::other(format!("reading Harbor's vulnerability report of {digest}: {e}")),
    }
}

/// `2026-01-02T03:04:05Z` (or with an offset or fraction) → `2026-01-02T03:04:05` UTC, GitLab's format.
pub fn gitlab_time(rfc3339: Option<&str>) -> Option<String> {
    let epoch = crate::builder::config::parse_rfc3339(rfc3339?)?;
    Some(crate::builder::config::rfc3339(epoch).trim_end_matches('Z').to_string())
}

/// Now, in GitLab's format.
pub fn gitlab_now() -> String {
    crate::builder::config::rfc3339(now_epoch().max(0) as u64).trim_end_matches('Z').to_string()
}

impl Outcome {
    /// The summary for people (stderr): counts by severity with the fixable ones, the allowlist and filters in
    /// force, the worst findings, the link to Harbor.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let scanner =
            self.scanner.as_ref().map(|s| format!(" by {} {} ({})", s.name, s.version, s.vendor)).unwrap_or_default();
        let platforms =
            if self.children.is_empty() { String::new() } else { format!(", {} platforms", self.children.len()) };
        let digest = if self.reference.ends_with(&self.digest) { String::new() } else { format!(" ({})", self.digest) };
        let platforms = if platforms.is_empty() { platforms } else { format!(" ({})", &platforms[2..]) };
        out.push_str(&format!("scan: {}{digest}{platforms} scanned{scanner}\n", self.reference));
        let counted: usize = self.counts.values().map(|c| c.total).sum();
        let parts: Vec<String> = Severity::ALL
            .iter()
            .filter_map(|s| self.counts.get(s.as_str()).map(|c| (s, c)))
            .map(|(s, c)| format!("{s} {} ({} fixable)", c.total, c.fixable))
            .collect();
        if counted == 0 {
            out.push_str("  no vulnerabilities\n");
        } else {
            let noun = if counted == 1 { "vulnerability" } else { "vulnerabilities" };
            out.push_str(&format!("  {counted} {noun}: {}\n", parts.join(", ")));
        }
        let allowlisted: Vec<&Finding> = self.findings.iter().filter(|f| f.allowlisted).collect();
        if !self.filters.allowlist.is_empty() {
            out.push_str(&format!(
                "  allowlisted by {}: {} ({} finding(s) not counted)\n",
                self.filters.allowlist_note.as_deref().unwrap_or("the CVE allowlist"),
                self.filters.allowlist.join(", "),
                allowlisted.len()
            ));
        }
        if self.filters.ignore_unfixed {
            out.push_str(&format!("  --ignore-unfixed: {} finding(s) without a fix left out\n", self.ignored_unfixed));
        }
        let worst: Vec<&Finding> = self.findings.iter().filter(|f| !f.allowlisted).take(5).collect();
        if !worst.is_empty() {
            out.push_str("  worst:\n");
            for f in worst {
                let fix = f.fix_version.as_ref().map_or("no fix yet".to_string(), |v| format!("fixed in {v}"));
                out.push_str(&format!("    {:<10} {:<20} {} {} ({fix})\n", f.severity, f.id, f.package, f.version));
            }
        }
        if let Some(t) = self.fail_on {
            out.push_str(&format!(
                "  --fail-on {t}: {}\n",
                if self.failing == 0 {
                    "passed".to_string()
                } else {
                    format!("{} finding(s) at or above {t}", self.failing)
                }
            ));
        }
        out.push_str(&format!("  Harbor: {}\n", self.harbor_url));
        out
    }

    /// The `--fail-on` verdict as the error to exit with (exit code 6).
    pub fn verdict(&self) -> Result<()> {
        match self.fail_on {
            Some(t) if self.failing > 0 => Err(Error::new(
                crate::error::ErrorKind::Findings,
                format!("scan: {} vulnerability finding(s) at or above {t} in {}", self.failing, self.reference),
            )
            .with_hint(
                "upgrade the packages named above (rebuild on a newer base image), or accept a risk in the Harbor \
                 project's CVE allowlist",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_need_a_project() {
        let t = Target::new(
            "h.io/team/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000".parse().unwrap(),
        )
        .unwrap();
        assert_eq!((t.project.as_str(), t.repository.as_str()), ("team", "a/b"));
        assert!(t.api_reference().starts_with("sha256:"));
        assert_eq!(Target::new("h.io/team/app:1".parse().unwrap()).unwrap().api_reference(), "1");
        assert!(Target::new("h.io/app:1".parse().unwrap()).is_err());
    }

    #[test]
    fn gitlab_times() {
        assert_eq!(gitlab_time(Some("2026-01-02T03:04:05.123Z")).as_deref(), Some("2026-01-02T03:04:05"));
        assert_eq!(gitlab_time(Some("2026-01-02T05:04:05+02:00")).as_deref(), Some("2026-01-02T03:04:05"));
        assert_eq!(gitlab_time(Some("nonsense")), None);
        assert_eq!(gitlab_now().len(), 19);
        assert_eq!(human_duration(Duration::from_secs(600)), "10m");
        assert_eq!(human_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(human_duration(Duration::from_secs(3)), "3s");
    }
}
