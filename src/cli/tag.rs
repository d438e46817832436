//! `hoist tag REF TAG...`: more tags for a manifest already in the registry.

use clap::Args;

use super::common::{reporter, ForceArgs, OutputArgs, RegistryArgs};
use crate::ci::ProcessEnv;
use crate::error::{Error, Result};
use crate::model::{validate_tag, Reference};
use crate::push::Clients;

pub const EXAMPLES: &str = "\
Examples:
  hoist tag harbor.example.com/proj/app:$CI_COMMIT_SHA 1.4.0 latest
  hoist tag localhost:5000/app@sha256:... stable

The manifest is put again under each tag, byte for byte: no blob moves. A tag that already points at
that digest is left alone (Harbor's immutable tags refuse even an identical push with 412).
To put an image in another repository or registry, use hoist copy.";

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The manifest to tag: host[:port]/repository[:tag|@digest].
    pub reference: String,
    /// New tags in the same repository.
    #[arg(required = true)]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub signing: super::sign::SignFlags,
}

pub async fn run(args: TagArgs) -> Result<()> {
    let reference: Reference = args.reference.parse()?;
    for t in &args.tags {
        if t.contains('/') || t.contains('@') {
            return Err(Error::usage(format!("{t:?} is not a tag")).with_hint(
                "hoist tag takes tags of the same repository; to put an image in another repository, use hoist copy",
            ));
        }
        validate_tag(t)?;
    }
    let env = ProcessEnv;
    let mut opts = args.registry.push_options(&env, 1, Vec::new())?;
    opts.force = args.force.force;
    let signer = args.signing.load(&env)?;
    let reporter = reporter(&args.registry, args.output.quiet);
    let clients = Clients::new(&opts, &env);
    let report = crate::remote::tag(&reference, &args.tags, &clients, &reporter).await?;
    if let Some(signer) = &signer {
        super::sign::sign_pushed(signer, &report, &opts, &env, &reporter).await?;
    }
    args.output.emit(&report)
}
