//! `hoist ls REPO`: the tags of a repository, one per line.

use clap::Args;

use super::common::{reporter, RegistryArgs};
use crate::ci::ProcessEnv;
use crate::error::Result;
use crate::model::Reference;
use crate::push::Clients;

pub const EXAMPLES: &str = "\
Examples:
  hoist ls harbor.example.com/proj/app
  hoist ls localhost:5000/app --json | jq -r '.tags[]'

Pages of the tag list are followed (the Link header) until the last one.";

#[derive(Debug, Args)]
pub struct LsArgs {
    /// The repository: host[:port]/repository (a tag or digest given is ignored).
    pub repository: String,
    /// Print {"repository": ..., "tags": [...]} instead of one tag per line.
    #[arg(long)]
    pub json: bool,
    /// Tags asked for per request (the `n` parameter); the registry's default when not given.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: Option<u32>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: LsArgs) -> Result<()> {
    let repo: Reference = args.repository.parse()?;
    let env = ProcessEnv;
    let opts = args.registry.push_options(&env, 1, Vec::new())?;
    let _reporter = reporter(&args.registry, true);
    let clients = Clients::new(&opts, &env);
    let tags = crate::remote::inspect::ls(&clients, &repo, args.page_size).await?;
    if args.json {
        let json = serde_json::json!({"repository": repo.name(), "tags": tags});
        println!("{}", serde_json::to_string_pretty(&json).expect("json"));
    } else {
        for t in tags {
            println!("{t}");
        }
    }
    Ok(())
}
