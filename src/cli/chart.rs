//! `hoist chart package` and `hoist chart push`: Helm charts packaged as helm packages them (but
//! reproducibly) and pushed as helm pushes them, through hoist's one push engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::common::{chart_dotenv, reporter, ForceArgs, MirrorArgs, OutputArgs, RegistryArgs};
use crate::builder::config::{build_epoch, rfc3339};
use crate::chart::{self, PackageOptions};
use crate::ci::{chart_dest, Env, ProcessEnv};
use crate::error::{Error, Result};
use crate::progress::{human_bytes, Reporter};
use crate::push::{Clients, PushOptions};

pub const EXAMPLES: &str = "\
Examples:
  hoist chart package ./mychart -d dist
  hoist chart package ./mychart --version \"$CI_COMMIT_TAG\" --dependency-update
  hoist chart push ./mychart oci://harbor.example.com/project
  hoist chart push dist/mychart-1.2.3.tgz oci://localhost:5000/charts --digest-file chart.digest
  hoist chart push ./mychart            # in GitLab CI: $HARBOR_OCI/$HARBOR_PROJECT, else oci://$CI_REGISTRY_IMAGE

Archives are reproducible: every mtime is SOURCE_DATE_EPOCH, else CI_COMMIT_TIMESTAMP, else 0, and the
manifest's org.opencontainers.image.created is the same instant.";

#[derive(Debug, Args)]
pub struct ChartArgs {
    #[command(subcommand)]
    pub command: ChartCommand,
}

#[derive(Debug, Subcommand)]
pub enum ChartCommand {
    /// Package a chart directory into NAME-VERSION.tgz exactly as `helm package` lays it out.
    // `--version` is the chart's version here, not hoist's.
    #[command(after_help = EXAMPLES, disable_version_flag = true)]
    Package(PackageArgs),
    /// Push a chart (a directory, packaged first, or a .tgz as is) as `helm push` does.
    #[command(after_help = EXAMPLES, disable_version_flag = true)]
    Push(PushArgs),
}

/// What packaging a directory takes (shared by package and push).
#[derive(Debug, Args)]
pub struct BuildFlags {
    /// Set the chart's version (a git tag's leading `v` is dropped: v1.2.3 → 1.2.3).
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Set the chart's appVersion (kept as written).
    #[arg(long, value_name = "V")]
    pub app_version: Option<String>,
    /// Fetch the dependencies Chart.yaml declares and charts/ lacks (oci://, https://, file://),
    /// at the Chart.lock version (digest checked) or the best match of the constraint, into charts/.
    #[arg(long)]
    pub dependency_update: bool,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The chart directory (holding Chart.yaml).
    pub chart_dir: PathBuf,
    /// Where to write NAME-VERSION.tgz (created if missing).
    #[arg(long = "destination", short = 'd', default_value = ".", value_name = "OUTDIR")]
    pub destination: PathBuf,
    #[command(flatten)]
    pub build: BuildFlags,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// A chart directory (packaged first) or a chart archive (.tgz, pushed as is; a .prov beside it goes too).
    pub chart: PathBuf,
    /// oci://HOST[:PORT]/PATH; the chart lands at PATH/NAME:VERSION. Default in GitLab CI:
    /// $HARBOR_OCI/$HARBOR_PROJECT/charts (apart from the project's images), else oci://$CI_REGISTRY_IMAGE.
    pub dest: Option<String>,
    #[command(flatten)]
    pub build: BuildFlags,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub signing: super::sign::SignFlags,
}

pub async fn run(args: ChartArgs) -> Result<()> {
    match args.command {
        ChartCommand::Package(a) => package(a).await,
        ChartCommand::Push(a) => push(a).await,
    }
}

/// Fetches missing dependencies when asked, then packages `dir`.
async fn package_dir(
    dir: &Path,
    flags: &BuildFlags,
    opts: &PushOptions,
    env: &dyn Env,
    reporter: &Arc<Reporter>,
) -> Result<chart::Package> {
    let epoch = build_epoch(env)?;
    if flags.dependency_update {
        let mirrors = flags.mirrors.load(env)?;
        let mut opts = opts.clone();
        opts.client.insecure_hosts = mirrors.insecure_hosts();
        let clients = Clients::new(&opts, env);
        chart::deps::update(dir, &clients, &opts, reporter, &mirrors, epoch).await?;
    }
    let popts = PackageOptions { version: flags.version.clone(), app_version: flags.app_version.clone(), epoch };
    let dir = dir.to_path_buf();
    let pkg = tokio::task::spawn_blocking(move || chart::package_dir(&dir, &popts))
        .await
        .map_err(|e| Error::other(format!("packaging: {e}")))??;
    for w in &pkg.warnings {
        reporter.warn(w);
    }
    Ok(pkg)
}

async fn package(args: PackageArgs) -> Result<()> {
    let env = ProcessEnv;
    let reporter = reporter(&args.registry, args.quiet);
    let opts = args.registry.push_options(&env, 4, Vec::new())?;
    let pkg = package_dir(&args.chart_dir, &args.build, &opts, &env, &reporter).await?;
    let path = chart::write_atomically(&args.destination, &pkg.file_name, &pkg.tgz)?;
    reporter.summary(&format!(
        "packaged {} {} ({} file{}, {})",
        pkg.metadata.name,
        pkg.metadata.version,
        pkg.members.len(),
        if pkg.members.len() == 1 { "" } else { "s" },
        human_bytes(pkg.tgz.len() as u64)
    ));
    println!("{}", path.display());
    Ok(())
}

async fn push(args: PushArgs) -> Result<()> {
    let env = ProcessEnv;
    let reporter = reporter(&args.registry, args.output.quiet);
    let mut opts = args.registry.push_options(&env, 4, Vec::new())?;
    opts.force = args.force.force;
    let signer = args.signing.load(&env)?;
    let dest = match &args.dest {
        Some(d) => d.clone(),
        None => {
            let d = chart_dest::chart_destination(&env).ok_or_else(|| {
                Error::usage("no destination: give oci://HOST/PATH").with_hint(
                    "in GitLab CI the default is $HARBOR_OCI/$HARBOR_PROJECT (Harbor integration), else oci://$CI_REGISTRY_IMAGE",
                )
            })?;
            reporter.note(&format!("destination {} (from {})", d.url, d.from));
            d.url
        }
    };
    let epoch = build_epoch(&env)?;
    let (tgz, metadata, prov) = if args.chart.is_dir() {
        let pkg = package_dir(&args.chart, &args.build, &opts, &env, &reporter).await?;
        reporter.note(&format!(
            "packaged {} {} ({} files)",
            pkg.metadata.name,
            pkg.metadata.version,
            pkg.members.len()
        ));
        (pkg.tgz, pkg.metadata, None)
    } else {
        if args.build.version.is_some() || args.build.app_version.is_some() || args.build.dependency_update {
            return Err(Error::usage(
                "--version, --app-version and --dependency-update apply to a chart directory, not to a packaged .tgz",
            ));
        }
        let shown = args.chart.display().to_string();
        let tgz = std::fs::read(&args.chart).map_err(|e| Error::io(format!("reading chart {shown}"), e))?;
        let chart = chart::load_archive(&tgz).map_err(|e| e.context(format!("reading chart {shown}")))?;
        let prov_path = PathBuf::from(format!("{shown}.prov"));
        let prov = match std::fs::read(&prov_path) {
            Ok(p) => Some(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("reading {}", prov_path.display()), e)),
        };
        (tgz, chart.metadata, prov)
    };
    let reference = chart::oci::destination(&dest, &metadata.name, &metadata.version)?;
    if metadata.version.contains('+') {
        reporter.note(&format!(
            "the version {} has a `+`: the tag is {} (`+` is not allowed in tags)",
            metadata.version,
            metadata.version.replace('+', "_")
        ));
    }
    let artifact = chart::oci::artifact(tgz, &metadata, prov, &rfc3339(epoch));
    let report = {
        let _section = reporter.section("hoist_push", &format!("pushing {reference}"));
        crate::push::push(&artifact, std::slice::from_ref(&reference), &opts, &env, &reporter).await?
    };
    reporter.summary(&report.summary());
    if let Some(signer) = &signer {
        super::sign::sign_pushed(signer, &report, &opts, &env, &reporter).await?;
    }
    args.output.emit_with(&report, chart_dotenv(&metadata.name, &metadata.version, &reference, &report.digest))
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_are_consistent() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }
}
