//! `hoist index create DEST REF...`: one multi-platform index from per-platform images.

use clap::{Args, Subcommand};

use super::common::{reporter, ForceArgs, OutputArgs, RegistryArgs};
use crate::ci::ProcessEnv;
use crate::error::{Error, Result};
use crate::model::Reference;
use crate::push::Clients;

pub const EXAMPLES: &str = "\
Examples:
  hoist index create harbor.example.com/proj/app:1.0 \\
      harbor.example.com/proj/app:1.0-amd64 harbor.example.com/proj/app:1.0-arm64
  hoist index create localhost:5000/app:1.0 localhost:5000/app:1.0-riscv64 --append";

#[derive(Debug, Args)]
pub struct IndexArgs {
    #[command(subcommand)]
    pub command: IndexCommand,
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Merge images pushed separately (one job per platform) into one OCI image index.
    #[command(after_help = CREATE_EXAMPLES)]
    Create(CreateArgs),
}

const CREATE_EXAMPLES: &str = "\
Examples:
  hoist index create harbor.example.com/proj/app:1.0 \\
      harbor.example.com/proj/app:1.0-amd64 harbor.example.com/proj/app:1.0-arm64
  hoist index create localhost:5000/app:1.0 localhost:5000/app:1.0-riscv64 --append

Each image's platform is read from its config; an index given as a source adds all its entries.
Manifests and blobs are mounted or skipped in DEST's repository, never downloaded. What is attached
to each image (signatures, SBOMs: `hoist referrers`) is copied along and stays attached to its digest.";

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Where the index goes: host[:port]/repository[:tag].
    pub dest: String,
    /// The images (or indexes) to put in it.
    #[arg(required = true)]
    pub sources: Vec<String>,
    /// Add to the index DEST already holds (an entry of the same platform is replaced).
    #[arg(long)]
    pub append: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: IndexArgs) -> Result<()> {
    match args.command {
        IndexCommand::Create(args) => create(args).await,
    }
}

async fn create(args: CreateArgs) -> Result<()> {
    let dest: Reference = args.dest.parse()?;
    let sources = args.sources.iter().map(|s| s.parse::<Reference>()).collect::<Result<Vec<_>>>()?;
    if dest.digest().is_some() {
        return Err(Error::usage("the index destination needs a tag, not a digest (the index's digest is new)"));
    }
    let env = ProcessEnv;
    let mut opts = args.registry.push_options(&env, 4, Vec::new())?;
    opts.force = args.force.force;
    let reporter = reporter(&args.registry, args.output.quiet);
    let clients = Clients::new(&opts, &env);
    let report = crate::remote::index::create(&dest, &sources, args.append, &clients, &reporter).await?;
    reporter.summary(&report.summary());
    args.output.emit(&report)
}
