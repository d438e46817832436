//! `hoist scan [REF]`: Harbor's vulnerability scan of a pushed image, back in the pipeline (see [`crate::scan`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::common::{reporter, write_atomic, RegistryArgs};
use crate::ci::context::{CiContext, TagPolicy};
use crate::ci::{vars, Env, ProcessEnv};
use crate::error::{Error, Result};
use crate::model::Reference;
use crate::push::Clients;
use crate::scan::findings::Severity;
use crate::scan::{self, gitlab, ScanOptions, Target};

pub const EXAMPLES: &str = "\
Examples:
  hoist scan                                # in CI: $HOIST_IMAGE_REF (the build's dotenv report)
  hoist scan harbor.example.com/team/app@sha256:… --fail-on high
  hoist scan harbor.example.com/team/app:1.0 \\
    --gitlab-report gl-container-scanning-report.json --junit gl-scan-junit.xml
  hoist scan harbor.example.com/team/app:1.0 --json | jq -r '.findings[].id'

Starts Harbor's scan (reuses a finished scan of the same digest unless --rescan; waits for one
already running, e.g. scan-on-push), waits up to --timeout, reads the report (an index: its
platforms' reports merged), applies the project's CVE allowlist, and prints a summary with the
link to the artifact in Harbor on stderr. The robot needs `scan:create` and
`artifact-addition:read` (hoist doctor --scan checks them).

Exit codes: 0 scanned, nothing at or above --fail-on; 5 a finding at or above --fail-on;
1 the scan failed (Error/Stopped, --timeout, no scanner, not scannable, not Harbor);
2 usage; 3 credentials or permissions; 4 network or TLS.";

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The image: host[:port]/project/repository[:tag|@digest]. Default: $HOIST_IMAGE_REF (the dotenv report of
    /// hoist build/push), else the CI destination with the pipeline's first tag.
    pub reference: Option<String>,
    /// Scan again even when Harbor holds a finished scan of this digest.
    #[arg(long)]
    pub rescan: bool,
    /// How long to wait for Harbor's scan: 10m, 90s, 1h30m (a bare number is seconds).
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Exit 5 when a finding at or above SEVERITY remains (after the allowlist and --ignore-unfixed):
    /// critical, high, medium, low, negligible, unknown.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,
    /// Leave out findings without a released fix (from the counts, the reports and --fail-on).
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Write GitLab's container-scanning report (schema 15.0.7) to FILE (artifacts:reports:container_scanning).
    #[arg(long, value_name = "FILE")]
    pub gitlab_report: Option<PathBuf>,
    /// Write the findings as a JUnit report to FILE (artifacts:reports:junit): a failed test case per finding at
    /// or above --fail-on, shown in merge requests on every GitLab tier.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print the normalized findings, counts and verdict as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// The report's `default_branch_image`, so GitLab tracks a finding across pipelines. Default: the scanned
    /// repository with tag `latest` (what hoist pushes on the default branch).
    #[arg(long, value_name = "REF")]
    pub default_branch_image: Option<String>,
    /// No progress output (warnings, errors and the summary still go to stderr).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let nanos = if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
        t.parse::<i64>().ok().map(|n| n.saturating_mul(1_000_000_000))
    } else {
        crate::builder::config::parse_duration(t)
    };
    match nanos {
        Some(n) if n > 0 => Ok(Duration::from_nanos(n as u64)),
        _ => Err(format!("{s:?} is not a duration like 10m, 90s or 1h")),
    }
}

fn parse_severity(s: &str) -> std::result::Result<Severity, String> {
    Severity::parse(s)
        .filter(|v| *v != Severity::None)
        .ok_or_else(|| format!("{s:?} is not a severity: critical, high, medium, low, negligible or unknown"))
}

/// REF, else `$HOIST_IMAGE_REF` (a digest, preferred), else the CI destination with the pipeline's first tag.
fn resolve(arg: Option<&str>, env: &dyn Env) -> Result<Reference> {
    if let Some(a) = arg {
        return a.parse();
    }
    if let Some(r) = env.non_empty(vars::HOIST_IMAGE_REF) {
        return r.trim().parse();
    }
    let ctx = CiContext::from_env(env, None);
    let dests = ctx.destinations(&[], &TagPolicy::parse("default")?, &[]).map_err(|e| {
        Error::usage(
            "nothing to scan: give REF, or run after hoist build/push (HOIST_IMAGE_REF from its dotenv report)",
        )
        .with_hint(e.hint().unwrap_or("hoist scan harbor.example.com/team/app@sha256:…").to_string())
    })?;
    dests.into_iter().next().ok_or_else(|| Error::usage("nothing to scan: give REF"))
}

pub async fn run(args: ScanArgs) -> Result<()> {
    let env = ProcessEnv;
    let reference = resolve(args.reference.as_deref(), &env)?;
    let target = Target::new(reference)?;
    let opts = args.registry.push_options(&env, 1, Vec::new())?;
    let reporter = reporter(&args.registry, args.quiet);
    let clients = Clients::new(&opts, &env);
    let client = clients.get(target.reference.api_host()).await?;
    let started = scan::gitlab_now();
    let t0 = std::time::Instant::now();
    let sopts = ScanOptions {
        rescan: args.rescan,
        timeout: args.timeout,
        ignore_unfixed: args.ignore_unfixed,
        fail_on: args.fail_on,
    };
    let outcome = scan::scan(&client, &target, &sopts, &reporter).await?;

    let repository = target.reference.name();
    if let Some(file) = &args.gitlab_report {
        let ctx = gitlab::ReportContext {
            image: outcome.reference.clone(),
            default_branch_image: Some(
                args.default_branch_image.clone().unwrap_or_else(|| format!("{repository}:latest")),
            ),
            repository: repository.clone(),
            scanner: outcome.scanner.clone(),
            start_time: scan::gitlab_time(outcome.start_time.as_deref()).unwrap_or(started),
            end_time: scan::gitlab_time(outcome.end_time.as_deref()).unwrap_or_else(scan::gitlab_now),
            operating_system: "Unknown".to_string(),
        };
        let report = gitlab::container_scanning_report(&ctx, &outcome.findings);
        write_atomic(file, &serde_json::to_vec_pretty(&report).expect("report serializes"))?;
    }
    if let Some(file) = &args.junit {
        let xml = gitlab::junit(&outcome.reference, &outcome.findings, outcome.fail_on, t0.elapsed().as_secs_f64());
        write_atomic(file, xml.as_bytes())?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome).expect("outcome serializes"));
    }
    reporter.summary(outcome.render().trim_end());
    outcome.verdict()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::MapEnv;

    #[test]
    fn timeouts_and_severities() {
        assert_eq!(parse_timeout("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_timeout("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_timeout("0").is_err() && parse_timeout("soon").is_err());
        assert_eq!(parse_severity("HIGH"), Ok(Severity::High));
        assert!(parse_severity("none").is_err());
    }

    #[test]
    fn the_reference_comes_from_the_argument_the_dotenv_report_or_the_ci_destination() {
        let d = format!("sha256:{}", "a".repeat(64));
        let env = MapEnv::new([
            ("HOIST_IMAGE_REF", &*format!("h.io/team/app@{d}")),
            ("HARBOR_URL", "https://h.io"),
            ("HARBOR_PROJECT", "team"),
            ("CI_PROJECT_NAME", "app"),
        ]);
        assert_eq!(resolve(Some("x.io/p/a:1"), &env).unwrap().to_string(), "x.io/p/a:1");
        assert_eq!(resolve(None, &env).unwrap().digest().unwrap().to_string(), d);
        let env = MapEnv::new([("HARBOR_URL", "https://h.io"), ("HARBOR_PROJECT", "team"), ("CI_PROJECT_NAME", "app")]);
        assert_eq!(resolve(None, &env).unwrap().to_string(), "h.io/team/app:latest");
        assert_eq!(resolve(None, &MapEnv::default()).unwrap_err().kind(), crate::error::ErrorKind::Usage);
    }
}
