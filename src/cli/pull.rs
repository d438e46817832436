//! `hoist pull REF --output oci:DIR[:TAG]` (an OCI layout) or `--rootfs DIR` (one platform's files).

use clap::Args;

use super::common::{platform, reporter, MirrorArgs, OutputArgs, RegistryArgs};
use crate::builder::source::Platform;
use crate::ci::ProcessEnv;
use crate::error::{Error, Result};
use crate::layout::{Selector, Source};
use crate::model::Reference;
use crate::push::Clients;

pub const EXAMPLES: &str = "\
Examples:
  hoist pull harbor.example.com/proj/app:1.0 --output oci:./app
  hoist pull localhost:5000/app:1.0 --platform linux/arm64 --output oci:./arm:1.0
  hoist pull harbor.example.com/proj/app:1.0 --rootfs ./rootfs

--output: every platform of an index unless --platform picks one. Blobs are verified and renamed
into place when complete; blobs the layout already holds are not downloaded again.
--rootfs: one platform (--platform, default linux/<this machine's arch>), layers applied in order
with whiteouts into a new or empty directory; path escapes, device files and links out of the root
are refused. Without root, files keep your ownership (the layers' owners are not applied).";

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: host[:port]/repository[:tag|@digest].
    pub reference: String,
    /// Write an OCI layout: oci:DIR or oci:DIR:TAG (TAG defaults to the reference's tag).
    #[arg(long, short = 'o', value_name = "DEST", required_unless_present = "rootfs", conflicts_with = "rootfs")]
    pub output: Option<String>,
    /// Unpack one platform's filesystem into DIR (new or empty).
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<std::path::PathBuf>,
    /// Only this platform's image of an index: os/arch[/variant].
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Blobs downloaded at once.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
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
    let env = ProcessEnv;
    let mirrors = args.mirrors.load(&env)?;
    let mut opts = args.registry.push_options(&env, args.jobs, Vec::new())?;
    opts.client.insecure_hosts = mirrors.insecure_hosts();
    let reporter = reporter(&args.registry, args.output_args.quiet);
    let clients = Clients::new(&opts, &env);
    if let Some(dir) = &args.rootfs {
        let platform = platform.unwrap_or_else(host_platform);
        let (report, unpacked) =
            crate::remote::pull::to_rootfs(&clients, &reference, &platform, &mirrors, dir, &reporter).await?;
        for s in &unpacked.skipped {
            reporter.warn(&format!("left out {s}"));
        }
        reporter.summary(&format!(
            "{}; unpacked {} entries ({}) from {} layer(s)",
            crate::remote::pull::summary(&reference, &report),
            unpacked.entries.len(),
            crate::progress::human_bytes(unpacked.bytes),
            unpacked.layers
        ));
        return args.output_args.emit(&report);
    }
    let output = args.output.as_deref().unwrap_or_default();
    let bad_output = || {
        Error::usage(format!("--output {output:?}: expected oci:DIR or oci:DIR:TAG"))
            .with_hint("e.g. --output oci:./app:1.0")
    };
    if !output.starts_with("oci:") {
        return Err(bad_output());
    }
    let (dir, tag) = match Source::parse(output)? {
        Source::OciLayout { dir, selector: Selector::Tag(t) } => (dir, Some(t)),
        Source::OciLayout { dir, selector: Selector::Only } => (dir, reference.tag().map(str::to_string)),
        _ => return Err(bad_output()),
    };
    if let Some(t) = &tag {
        crate::model::validate_tag(t)?;
    }
    let report = crate::remote::pull::to_layout(
        &clients,
        &reference,
        platform.as_ref(),
        &mirrors,
        &dir,
        tag.as_deref(),
        &reporter,
    )
    .await?;
    reporter.summary(&crate::remote::pull::summary(&reference, &report));
    args.output_args.emit(&report)
}

/// `linux/<this machine's architecture>` in Go's names (what registries' indexes use).
fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    Platform { os: "linux".into(), architecture: architecture.into(), variant: None }
}
