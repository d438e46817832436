//! `hoist pull REF --output oci:DIR[:TAG]`: an image from a registry into an OCI layout.

use clap::Args;

use super::common::{platform, reporter, OutputArgs, RegistryArgs};
use crate::ci::ProcessEnv;
use crate::error::{Error, Result};
use crate::layout::{Selector, Source};
use crate::model::Reference;
use crate::push::Clients;

pub const EXAMPLES: &str = "\
Examples:
  hoist pull harbor.example.com/proj/app:1.0 --output oci:./app
  hoist pull localhost:5000/app:1.0 --platform linux/arm64 --output oci:./arm:1.0

Every platform of an index is pulled unless --platform picks one. Blobs are verified and renamed
into place when complete; blobs the layout already holds are not downloaded again.";

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: host[:port]/repository[:tag|@digest].
    pub reference: String,
    /// Where: oci:DIR or oci:DIR:TAG (TAG defaults to the reference's tag).
    #[arg(long, short = 'o', value_name = "DEST", required = true)]
    pub output: String,
    /// Only this platform's image of an index: os/arch[/variant].
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Blobs downloaded at once.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub output_args: OutputArgs,
}

pub async fn run(args: PullArgs) -> Result<()> {
    let reference: Reference = args.reference.parse()?;
    let platform = platform(args.platform.as_deref())?;
    if args.jobs == 0 {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let bad_output = || {
        Error::usage(format!("--output {:?}: expected oci:DIR or oci:DIR:TAG", args.output))
            .with_hint("e.g. --output oci:./app:1.0")
    };
    if !args.output.starts_with("oci:") {
        return Err(bad_output());
    }
    let (dir, tag) = match Source::parse(&args.output)? {
        Source::OciLayout { dir, selector: Selector::Tag(t) } => (dir, Some(t)),
        Source::OciLayout { dir, selector: Selector::Only } => (dir, reference.tag().map(str::to_string)),
        _ => return Err(bad_output()),
    };
    if let Some(t) = &tag {
        crate::model::validate_tag(t)?;
    }
    let env = ProcessEnv;
    let opts = args.registry.push_options(&env, args.jobs, Vec::new())?;
    let reporter = reporter(&args.registry, args.output_args.quiet);
    let clients = Clients::new(&opts, &env);
    let report =
        crate::remote::pull::to_layout(&clients, &reference, platform.as_ref(), &dir, tag.as_deref(), &reporter)
            .await?;
    reporter.summary(&crate::remote::pull::summary(&reference, &report));
    args.output_args.emit(&report)
}
