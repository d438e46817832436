//! `hoist inspect REF`: what a reference is, without downloading a layer.

use std::io::Write;

use clap::Args;

use super::common::{platform, reporter, RegistryArgs};
use crate::ci::ProcessEnv;
use crate::error::{Error, Result};
use crate::model::Reference;
use crate::push::Clients;
use crate::remote::inspect::Show;

pub const EXAMPLES: &str = "\
Examples:
  hoist inspect harbor.example.com/proj/app:1.0
  hoist inspect localhost:5000/app:1.0 --json | jq -r .digest
  hoist inspect localhost:5000/app:1.0 --platform linux/arm64 --config | jq .config.Env
  hoist inspect localhost:5000/app:1.0 --raw > manifest.json

Shows the digest, media type, size, platforms of an index, the config summary (platform, created,
entrypoint, cmd, env, ports, labels), layers and annotations.";

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: host[:port]/repository[:tag|@digest].
    pub reference: String,
    /// Print the description as JSON.
    #[arg(long, conflicts_with_all = ["raw", "config"])]
    pub json: bool,
    /// Print the manifest exactly as the registry stores it (its sha256 is the digest).
    #[arg(long, conflicts_with = "config")]
    pub raw: bool,
    /// Print the image config exactly as stored (an index needs --platform unless it has one image).
    #[arg(long)]
    pub config: bool,
    /// Of an index, inspect this platform's image: os/arch[/variant].
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: InspectArgs) -> Result<()> {
    let reference: Reference = args.reference.parse()?;
    let platform = platform(args.platform.as_deref())?;
    let show = if args.raw {
        Show::Raw
    } else if args.config {
        Show::Config
    } else {
        Show::Summary
    };
    let env = ProcessEnv;
    let opts = args.registry.push_options(&env, 1, Vec::new())?;
    let _reporter = reporter(&args.registry, true);
    let clients = Clients::new(&opts, &env);
    let (description, bytes) = crate::remote::inspect::inspect(&clients, &reference, platform.as_ref(), show).await?;
    let mut out = std::io::stdout().lock();
    let written = match (bytes, args.json) {
        (Some(b), _) => out.write_all(&b),
        (None, true) => writeln!(out, "{}", serde_json::to_string_pretty(&description).expect("json")),
        (None, false) => out.write_all(description.text().as_bytes()),
    };
    written.and_then(|_| out.flush()).map_err(|e| Error::io("writing to stdout", e))
}
