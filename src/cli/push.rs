//! `hoist push SOURCE DEST...`

use clap::Args;

use super::common::{OutputArgs, RegistryArgs};
use crate::ci::ProcessEnv;
use crate::error::{Error, Result};
use crate::layout::Source;
use crate::model::Reference;
use crate::progress::{Mode, Reporter};

pub const EXAMPLES: &str = "\
Examples:
  hoist push oci:./out registry.example.com/team/app:1.0
  hoist push oci:./out:v2 harbor.example.com/proj/app:v2 harbor.example.com/proj/app:latest
  hoist push image.tar localhost:5000/app:dev --digest-file app.digest
  echo \"$HARBOR_PASSWORD\" | hoist push oci:out h.example.com/p/app -u 'robot$p+ci' --password-stdin";

#[derive(Debug, Args)]
pub struct PushArgs {
    /// What to push: oci:DIR, oci:DIR:TAG, oci:DIR@DIGEST, docker-archive:FILE, a layout directory or a .tar.
    pub source: String,
    /// Where: host[:port]/repository[:tag]; several tags share one upload of the blobs.
    #[arg(required = true)]
    pub dest: Vec<String>,
    /// Blobs uploaded at once.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Try to mount missing blobs from this repository of the same registry (repeatable).
    #[arg(long, value_name = "REPO")]
    pub mount_from: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: PushArgs) -> Result<()> {
    let source = Source::parse(&args.source)?;
    let dests = args.dest.iter().map(|d| d.parse::<Reference>()).collect::<Result<Vec<_>>>()?;
    if args.jobs == 0 {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let env = ProcessEnv;
    let opts = args.registry.push_options(&env, args.jobs, args.mount_from.clone())?;
    let reporter = Reporter::new(Mode::detect(args.output.quiet));
    let loaded = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || source.load())
            .await
            .map_err(|e| Error::other(format!("reading source: {e}")))?
    };
    let (artifact, _spool) = loaded?;
    let report = crate::push::push(&artifact, &dests, &opts, &env, &reporter).await?;
    reporter.summary(&report.summary());
    args.output.emit(&report)
}
