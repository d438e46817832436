//! `hoist doctor [REGISTRY|REF]`: what a push needs, checked step by step (see [`crate::doctor`]).

use clap::Args;

use super::common::ConnectArgs;
use crate::ci::ProcessEnv;
use crate::doctor::{self, Target};
use crate::error::{Error, Result};

pub const EXAMPLES: &str = "\
Examples:
  hoist doctor                                   # in CI: Harbor's variables, else CI_REGISTRY
  hoist doctor harbor.example.com/team/app:latest
  hoist doctor registry.gitlab.example.com:5050 --ca-file ca.pem
  hoist doctor 127.0.0.1:5000/app --json | jq '.steps[] | select(.status==\"fail\")'
  hoist doctor harbor.example.com/team/app --scan   # also what hoist scan needs

Steps: dns, tcp, tls (which CA verified it), api (GET /v2/), credentials (their source), login, robot-name,
gitlab-token, token (actions granted on the repository); on Harbor: harbor-project, harbor-permissions,
harbor-list, harbor-immutable, harbor-quota; with --scan: harbor-scan-permissions, harbor-scanner. Exit 0 when a push would work (warnings allowed), else the
first failure's code (3 credentials or permissions, 4 network or TLS, 1 anything else).";

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A registry (host[:port]) or an image reference (host[:port]/repository[:tag]) whose push rights to check.
    /// Without it: HARBOR_URL/HARBOR_HOST with HARBOR_PROJECT, else CI_REGISTRY with CI_REGISTRY_IMAGE.
    pub target: Option<String>,
    /// Print the report as JSON on stdout (`{"target","harbor","ok","steps":[{"check","status","message","fix"}]}`).
    #[arg(long)]
    pub json: bool,
    /// Also check what `hoist scan` needs on Harbor: the robot's `scan:create` and `artifact-addition:read`,
    /// and an active scanner for the project.
    #[arg(long)]
    pub scan: bool,
    #[command(flatten)]
    pub registry: ConnectArgs,
}

pub async fn run(args: DoctorArgs) -> Result<()> {
    let env = ProcessEnv;
    let target = Target::resolve(args.target.as_deref(), &env)?;
    let opts = args.registry.push_options(&env, 1, Vec::new())?;
    let report = doctor::run(target, &opts.client, opts.credential, &env, args.scan).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| Error::other(format!("doctor report: {e}")))?);
    } else {
        eprint!("{}", report.render());
    }
    match report.exit_error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
