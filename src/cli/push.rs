//! `hoist push SOURCE DEST...`

use clap::Args;

use super::common::{CiArgs, ForceArgs, OutputArgs, RegistryArgs};
use crate::ci::ProcessEnv;
use crate::error::{Error, Result};
use crate::layout::Source;
use crate::model::Reference;

/// `a:1, a:2` for a log line.
pub(super) fn list(refs: &[Reference]) -> String {
    refs.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ")
}
use crate::progress::{Mode, Reporter};

pub const EXAMPLES: &str = "\
Examples:
  hoist push oci:./out registry.example.com/team/app:1.0
  hoist push oci:./out:v2 harbor.example.com/proj/app:v2 harbor.example.com/proj/app:latest
  hoist push image.tar localhost:5000/app:dev --digest-file app.digest
  echo \"$HARBOR_PASSWORD\" | hoist push oci:out h.example.com/p/app -u 'robot$p+ci' --password-stdin
  hoist push oci:out   # GitLab CI: to $HARBOR_PROJECT/$CI_PROJECT_NAME, pipeline tags
  hoist push oci:out worker   # GitLab CI: to $HARBOR_PROJECT/worker";

#[derive(Debug, Args)]
pub struct PushArgs {
    /// What to push: oci:DIR, oci:DIR:TAG, oci:DIR@DIGEST, docker-archive:FILE, a layout directory or a .tar.
    pub source: String,
    /// Where: host[:port]/repository[:tag]; several tags share one upload of the blobs. In GitLab CI:
    /// none = the CI destination with the pipeline's tags; NAME[:TAG] without a host = under $HARBOR_PROJECT.
    pub dest: Vec<String>,
    /// Blobs uploaded at once.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Try to mount missing blobs from this repository of the same registry (repeatable).
    #[arg(long, value_name = "REPO")]
    pub mount_from: Vec<String>,
    #[command(flatten)]
    pub ci: CiArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub signing: super::sign::SignFlags,
}

pub async fn run(args: PushArgs) -> Result<()> {
    let source = Source::parse(&args.source)?;
    if args.jobs == 0 {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let env = ProcessEnv;
    let ci = args.ci.context(&env);
    let dests = args.ci.destinations(&ci, &args.dest)?;
    let mut opts = args.registry.push_options(&env, args.jobs, args.mount_from.clone())?;
    opts.force = args.force.force;
    let signer = args.signing.load(&env)?;
    let reporter = Reporter::for_env(Mode::detect(args.output.quiet), &env);
    args.ci.warn(&ci, &env, &reporter);
    let loaded = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || source.load())
            .await
            .map_err(|e| Error::other(format!("reading source: {e}")))?
    };
    let (artifact, _spool) = loaded?;
    let report = {
        let _section = reporter.section("hoist_push", &format!("pushing to {}", list(&dests)));
        crate::push::push(&artifact, &dests, &opts, &env, &reporter).await?
    };
    reporter.summary(&report.summary());
    if let Some(signer) = &signer {
        super::sign::sign_pushed(signer, &report, &opts, &env, &reporter).await?;
    }
    args.output.emit(&report)
}
