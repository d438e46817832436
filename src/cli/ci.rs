//! `hoist ci refs`: prints the references `hoist build`/`hoist push` would push to in this job (the CI
//! destination and the pipeline's tags), one per line — for scripts that hand them to other verbs (the
//! `multiarch` component tags its index with them) and for checking a pipeline's setup.

use clap::{Args, Subcommand};

use super::common::CiArgs;
use crate::ci::ProcessEnv;
use crate::error::Result;

pub const EXAMPLES: &str = "\
Examples:
  hoist ci refs                        # e.g. harbor.example.com/team/app:0a1b2c3d, …:main, …:latest
  hoist ci refs -t worker --tag-policy sha
  set -- $(hoist ci refs); hoist index create \"$1\" \"$REF_AMD64\" \"$REF_ARM64\"";

#[derive(Debug, Args)]
pub struct CiCmdArgs {
    #[command(subcommand)]
    pub command: CiCommand,
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Print the references this job's `hoist build`/`hoist push` would push to, one per line.
    #[command(after_help = EXAMPLES)]
    Refs(RefsArgs),
}

#[derive(Debug, Args)]
pub struct RefsArgs {
    /// As `hoist build -t`: host[:port]/repository[:tag], or NAME[:TAG] under $HARBOR_PROJECT (repeatable).
    #[arg(long = "tag", short = 't', value_name = "DEST")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub ci: CiArgs,
}

pub async fn run(args: CiCmdArgs) -> Result<()> {
    match args.command {
        CiCommand::Refs(a) => {
            let refs = a.ci.destinations(&a.ci.context(&ProcessEnv), &a.tags)?;
            for r in refs {
                println!("{r}");
            }
            Ok(())
        }
    }
}
