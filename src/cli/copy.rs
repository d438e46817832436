//! `hoist copy SRC DEST`: an image or index from one registry reference to another.

use clap::Args;

use super::common::{reporter, ForceArgs, MirrorArgs, OutputArgs, RegistryArgs};
use crate::ci::ProcessEnv;
use crate::error::{Error, Result};
use crate::model::Reference;
use crate::push::Clients;

pub const EXAMPLES: &str = "\
Examples:
  hoist copy registry.gitlab.com/team/app:1.0 harbor.example.com/prod/app:1.0
  hoist copy harbor.example.com/dev/app:$CI_COMMIT_SHA harbor.example.com/prod/app:1.0 --digest-file app.digest
  hoist copy localhost:5000/app@sha256:... localhost:5000/app:stable

Every platform of an index is copied (children first). On one registry blobs are mounted, between
registries they stream GET → PUT one by one (never held in memory); blobs the destination has are
skipped. Credentials are looked up per registry (--username applies to both).

What is attached to the image and to each image of an index (signatures, SBOMs, provenance; and
what is attached to those) is copied along, with the legacy cosign tags sha256-<hex>.sig/.att:
the destination lists them through its referrers API or a rebuilt fallback tag. --no-referrers
copies the image alone.";

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// What to copy: host[:port]/repository[:tag|@digest].
    pub source: String,
    /// Where: host[:port]/repository[:tag].
    pub dest: String,
    /// Blobs copied at once.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Copy the image alone, without the artifacts attached to it (signatures, SBOMs) and the
    /// cosign sha256-<hex>.sig/.att tags.
    #[arg(long)]
    pub no_referrers: bool,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub signing: super::sign::SignFlags,
}

pub async fn run(args: CopyArgs) -> Result<()> {
    let src: Reference = args.source.parse()?;
    let dest: Reference = args.dest.parse()?;
    if args.jobs == 0 {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let env = ProcessEnv;
    let mirrors = args.mirrors.load(&env)?;
    let mut opts = args.registry.push_options(&env, args.jobs, Vec::new())?;
    opts.force = args.force.force;
    opts.client.insecure_hosts = mirrors.insecure_hosts();
    let signer = args.signing.load(&env)?;
    let reporter = reporter(&args.registry, args.output.quiet);
    let clients = Clients::new(&opts, &env);
    let report = crate::remote::copy(&src, &dest, &mirrors, !args.no_referrers, &clients, &reporter).await?;
    reporter.summary(&report.summary());
    if let Some(signer) = &signer {
        super::sign::sign_pushed(signer, &report, &opts, &env, &reporter).await?;
    }
    args.output.emit(&report)
}
