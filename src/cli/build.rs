//! `hoist build [CONTEXT]`: build an image from a Dockerfile without a container runtime, then push
//! it to every `-t` and/or write it as an OCI layout (`--output oci:DIR[:TAG]`); `--check` validates
//! only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::common::{CiArgs, ForceArgs, MirrorArgs, OutputArgs, RegistryArgs};
use crate::builder::{self as build, source::Platform, BuildOptions};
use crate::ci::context::{ref_slug, tag_slug, CiContext};
use crate::ci::{vars, Env, ProcessEnv};
use crate::error::{Context, Error, Result};
use crate::model::{Digest, Reference};
use crate::progress::{Mode, Reporter};
use crate::push::{push_streamed, Clients, LayerStreams, PushReport, Streamed};

pub const EXAMPLES: &str = "\
Examples:
  hoist build . -t registry.example.com/team/app:1.0
  hoist build ctx -f ctx/Dockerfile.prod --build-arg VERSION=1.2 --target runtime --output oci:out:1.2
  hoist build --check --json
  hoist build          # GitLab CI: to $HARBOR_PROJECT/$CI_PROJECT_NAME, pipeline tags
  hoist build -t worker --extra-tag stable --dotenv build.env
  hoist build . -t registry.example.com/team/app:1.0 --sbom --sbom-file gl-sbom.cdx.json --provenance --sign
  hoist build --no-provenance       # CI: none (default: on where the registry keeps referrers)
  HOIST_PROVENANCE=min hoist build  # CI: provenance everywhere (a fallback tag where needed)";

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context directory.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Push the image here (repeatable): host[:port]/repository[:tag]. In GitLab CI: without -t (and
    /// without --output) the image goes to the CI destination; NAME[:TAG] without a host goes under
    /// $HARBOR_PROJECT; a -t without a tag gets the pipeline's tags.
    #[arg(long = "tag", short = 't', value_name = "DEST")]
    pub tags: Vec<String>,
    /// A build argument, KEY=VALUE (repeatable); KEY alone takes the value from the environment.
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// Build this stage instead of the last one.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Add a label to the image config (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Add an annotation to the manifest (repeatable).
    #[arg(long = "annotation", value_name = "K=V")]
    pub annotations: Vec<String>,
    /// Also write the image as an OCI layout, oci:DIR[:TAG] (TAG defaults to latest), or as a
    /// `docker load`-able archive, docker-archive:FILE.
    #[arg(long, value_name = "oci:DIR[:TAG]|docker-archive:FILE")]
    pub output: Option<String>,
    /// The platform(s) to build for, comma-separated: each picks its base image from an index and
    /// sets TARGETPLATFORM/TARGETOS/TARGETARCH/TARGETVARIANT; several make an image index.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH")]
    pub platform: String,
    /// Put everything the build adds into one layer (base image layers are kept as they are).
    #[arg(long)]
    pub squash: bool,
    /// Validate the Dockerfile and the context only; nothing is built, pushed or written.
    #[arg(long)]
    pub check: bool,
    /// With --check: print the parsed instructions as JSON on stdout.
    #[arg(long, requires = "check")]
    pub json: bool,
    /// How the layers this build writes are compressed: gzip (every client reads it) or zstd
    /// (smaller and faster; needs containerd ≥ 1.5, podman or docker ≥ 23 to pull).
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd"], value_name = "ALGO")]
    pub compression: String,
    /// The compression level, fast … small: gzip 1–9 (default 1; libdeflate's levels 1–9, each 4 MiB
    /// block on its own core), zstd 1–19 (default 3). See docs/compression.md.
    #[arg(long, value_name = "N")]
    pub compression_level: Option<u32>,
    /// Do not use the local layer cache ($HOIST_CACHE_DIR, else $XDG_CACHE_HOME/hoist, else
    /// ~/.cache/hoist; never pruned automatically: delete it to reclaim space). Layers are still
    /// reused from images in the registry (--no-cache-from to stop that).
    #[arg(long)]
    pub no_cache: bool,
    /// Reuse the layers of this image (repeatable; also $HOIST_CACHE_FROM, comma-separated): a layer
    /// whose content (diff_id) it lists is mounted from it, not compressed or uploaded again. Always
    /// looked in, with no flag: what the -t tags point at now, the pipeline's branch and default-branch
    /// tags in the same repository, and the base images. Only manifests and configs are read.
    #[arg(long = "cache-from", value_name = "IMAGE")]
    pub cache_from: Vec<String>,
    /// Do not look for reusable layers in registries: every layer not in the local cache is
    /// compressed and uploaded (without hashing it first).
    #[arg(long, conflicts_with = "cache_from")]
    pub no_cache_from: bool,
    /// Layers written and blobs uploaded at once.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub ci: CiArgs,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub output_args: OutputArgs,
    #[command(flatten)]
    pub signing: super::sign::SignFlags,
    #[command(flatten)]
    pub provenance: ProvenanceFlags,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "SBOM and provenance")]
pub struct ProvenanceFlags {
    /// Attach SLSA provenance v1 (an in-toto statement) to the pushed image as a referrer; with
    /// --sign also signed (a DSSE envelope, and cosign's sha256-<hex>.att tag). min: build-arg names
    /// only, no times (reproducible); max: also the values of build args given as K=V (never those
    /// taken from the environment) and startedOn/finishedOn. Without it: $HOIST_PROVENANCE
    /// (off|auto|min|max); unset, in GitLab CI `auto` — attached at min where the registry keeps
    /// referrers itself (its referrers API answers; Harbor), so no fallback tag appears unasked — and
    /// off elsewhere. See docs/sbom-provenance.md.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "min", require_equals = true, value_name = "LEVEL")]
    pub provenance: Option<crate::provenance::Level>,
    /// Attach no provenance, whatever $HOIST_PROVENANCE says and in CI too.
    #[arg(long, conflicts_with = "provenance")]
    pub no_provenance: bool,
    /// Write the provenance statement (JSON) to FILE, for GitLab's `artifacts:`. Alone (without
    /// --provenance) it attaches nothing.
    #[arg(long, value_name = "FILE")]
    pub provenance_file: Option<PathBuf>,
    /// Attach an SBOM to the pushed image, as two referrers: SPDX 2.3 JSON (application/spdx+json)
    /// and CycloneDX 1.6 JSON (application/vnd.cyclonedx+json); on Harbor also the SPDX in the form
    /// Harbor's UI shows (application/vnd.goharbor.harbor.sbom.v1). `all` (the default): the base
    /// image's packages — an SBOM it carries (a referrer, BuildKit's attestation), else its dpkg,
    /// apk and rpm (sqlite, Berkeley DB, ndb) databases and os-release, read from its layers once and
    /// cached — and those in the files this build added (Go and `cargo auditable` binaries,
    /// npm/yarn/pnpm lockfiles and package.json, Python dist-info/egg-info, Java archives, go.mod,
    /// Cargo.lock).
    /// `added`: only the added files; nothing of the base is read.
    #[arg(long, value_parser = ["all", "added"], num_args = 0..=1, default_missing_value = "all", require_equals = true, value_name = "WHAT")]
    pub sbom: Option<String>,
    /// Write the CycloneDX SBOM, with GitLab's container-scanning properties, to FILE (for
    /// `artifacts:reports:cyclonedx`). Alone (without --sbom) it attaches nothing.
    #[arg(long, value_name = "FILE")]
    pub sbom_file: Option<PathBuf>,
}

impl ProvenanceFlags {
    /// Whether the SBOM lists the base image's packages (`--sbom`, `--sbom=all`, or `--sbom-file`
    /// without `--sbom=added`).
    pub fn sbom_base(&self) -> bool {
        match self.sbom.as_deref() {
            Some(what) => what != "added",
            None => self.sbom_file.is_some(),
        }
    }
}

fn pairs(flag: &str, items: &[String], from_env: bool) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env && !item.is_empty() => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            _ => return Err(Error::usage(format!("{flag} {item:?}: expected KEY=VALUE"))),
        }
    }
    Ok(out)
}

/// Where `--output` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    Oci { dir: PathBuf, tag: String },
    DockerArchive { file: PathBuf },
}

/// `oci:DIR[:TAG]` or `docker-archive:FILE`.
fn parse_output(s: &str) -> Result<Output> {
    if let Some(file) = s.strip_prefix("docker-archive:") {
        if file.is_empty() {
            return Err(Error::usage("--output docker-archive: needs a file name"));
        }
        return Ok(Output::DockerArchive { file: file.into() });
    }
    let Some(rest) = s.strip_prefix("oci:") else {
        return Err(Error::usage(format!("--output {s:?}: expected oci:DIR[:TAG] or docker-archive:FILE")));
    };
    match rest.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => {
            crate::model::validate_tag(tag)?;
            Ok(Output::Oci { dir: dir.into(), tag: tag.to_string() })
        }
        _ if !rest.is_empty() => Ok(Output::Oci { dir: rest.into(), tag: "latest".into() }),
        _ => Err(Error::usage("--output oci: needs a directory")),
    }
}

pub async fn run(args: BuildArgs) -> Result<()> {
    let started_on = now_rfc3339();
    if args.jobs == 0 {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let env = ProcessEnv;
    let platforms = args.platform.split(',').map(|p| Platform::parse(p.trim())).collect::<Result<Vec<_>>>()?;
    let epoch = build::config::build_epoch(&env)?;
    let ci_context = args.ci.context(&env);
    // CI metadata first, so --label/--annotation override it.
    let ci_meta = ci_context.metadata(Some(build::config::rfc3339(epoch)));
    let mut labels = ci_meta.clone();
    labels.extend(pairs("--label", &args.labels, false)?);
    let mut annotations = ci_meta;
    annotations.extend(pairs("--annotation", &args.annotations, false)?);
    let opts = BuildOptions {
        context: args.context.clone(),
        file: args.file.clone(),
        build_args: pairs("--build-arg", &args.build_args, true)?,
        target: args.target.clone(),
        labels,
        annotations,
        platform: platforms[0].clone(),
        epoch,
        jobs: args.jobs,
        squash: args.squash,
        compression: build::layer::Compression::parse(&args.compression, args.compression_level)?,
        cache: if args.no_cache { None } else { build::cache::default_dir(&env) },
        mirrors: args.mirrors.load(&env)?,
        stream: None,
        cache_from: None,
        reporter: None,
        sbom_base: args.provenance.sbom_base(),
    };
    if args.check {
        if args.json {
            // Exactly one JSON document on stdout, failures included; the exit code still says
            // whether the check passed.
            let (doc, result) = build::check_report(&opts);
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
            result
        } else {
            build::check(&opts)?;
            eprintln!("{}: ok", opts.file.as_deref().unwrap_or(&opts.context.join("Dockerfile")).display());
            Ok(())
        }
    } else {
        let output = args.output.as_deref().map(parse_output).transpose()?;
        // No -t and no --output: the CI destination (an error outside CI says what to set).
        let dests: Vec<Reference> = if args.tags.is_empty() && output.is_some() {
            Vec::new()
        } else {
            args.ci.destinations(&ci_context, &args.tags)?
        };
        let cache_from = if args.no_cache_from {
            None
        } else {
            Some(cache_candidates(&dests, &ci_context, &args.cache_from, env.non_empty(vars::HOIST_CACHE_FROM))?)
        };
        let mut push_opts = args.registry.push_options(&env, args.jobs, Vec::new())?;
        push_opts.force = args.force.force;
        push_opts.client.insecure_hosts = opts.mirrors.insecure_hosts();
        let signer = args.signing.load(&env)?;
        if signer.is_some() && dests.is_empty() {
            return Err(Error::usage("--sign signs what is pushed to a registry: add -t REGISTRY/REPO:TAG"));
        }
        if args.provenance.sbom.is_some() && dests.is_empty() {
            return Err(Error::usage(
                "--sbom attaches to what is pushed to a registry: add -t REGISTRY/REPO:TAG \
                 (or use --sbom-file alone to only write the CycloneDX file)",
            ));
        }
        if args.provenance.provenance.is_some() && dests.is_empty() {
            return Err(Error::usage(
                "--provenance attaches to what is pushed to a registry: add -t REGISTRY/REPO:TAG \
                 (or use --provenance-file alone to only write the statement)",
            ));
        }
        let wanted = provenance_wanted(&args.provenance, &env, ci_context.in_gitlab)?;
        let reporter = Reporter::for_env(Mode::detect(args.output_args.quiet), &env);
        args.ci.warn(&ci_context, &env, &reporter);
        let clients = Clients::new(&push_opts, &env);
        // A tag that holds a chart (or another artifact) is refused before a layer streams.
        crate::push::guard_tags_before(&clients, &dests, &crate::model::media::ArtifactKind::Image, &reporter).await?;
        // Layers go to the first destination while they are compressed; the push counts them.
        let streams = match dests.first() {
            Some(dest) => Some(LayerStreams::open(dest, &clients, &reporter).await?),
            None => None,
        };
        let stream = streams.as_ref().map(|s| s.sink());
        let mut images = Vec::new();
        for platform in &platforms {
            let _section =
                reporter.section("hoist_build", &format!("building {} for {platform}", opts.context.display()));
            let opts = BuildOptions {
                platform: platform.clone(),
                stream: stream.clone(),
                cache_from: cache_from.clone(),
                reporter: Some(reporter.clone()),
                ..opts.clone()
            };
            let built = build::build(&opts, &clients, push_opts.retry).await?;
            log_reuse(&reporter, &built);
            images.push((platform.clone(), built));
        }
        let mut packages: Vec<crate::sbom::Package> = Vec::new();
        // The OS the base's os-release names (the first platform's), for GitLab's SBOM properties.
        let os = images.iter().find_map(|(_, b)| b.base_sbom.as_ref().and_then(|s| s.os.clone()));
        if args.provenance.sbom.is_some() || args.provenance.sbom_file.is_some() {
            // Every package of the SBOM: the added files' and, unless --sbom=added, the base's.
            for (_, b) in &images {
                packages.extend(
                    crate::sbom::catalogue_cached(&b.added, opts.cache.as_deref()).map_err(crate::sbom::context)?,
                );
                let os = b.base_sbom.as_ref().and_then(|s| s.os.as_ref());
                packages.extend(crate::sbom::distro::in_tree(&b.added, os).map_err(crate::sbom::context)?);
                if let Some(base) = &b.base_sbom {
                    reporter.note(&format!(
                        "--sbom: {} packages of the base, from {}",
                        base.packages.len(),
                        base.source
                    ));
                    packages.extend(base.packages.iter().cloned());
                }
            }
            packages.sort();
            packages.dedup();
        }
        let platform_digests: Vec<Digest> = images.iter().map(|(_, b)| b.artifact.root().digest.clone()).collect();
        let mut inputs: Vec<(String, Digest)> = Vec::new();
        for b in images.iter().flat_map(|(_, b)| b.inputs.iter()) {
            let entry = (b.reference.to_string(), b.digest.clone());
            if !inputs.contains(&entry) {
                inputs.push(entry);
            }
        }
        for w in images.first().map(|(_, b)| b.warnings.clone()).unwrap_or_default() {
            reporter.warn(&w);
        }
        for n in images.iter().flat_map(|(_, b)| b.notes.iter()) {
            reporter.note(n);
        }
        let (hits, total) = images.iter().fold((0, 0), |(h, t), (_, b)| (h + b.cached_layers.0, t + b.cached_layers.1));
        if hits > 0 {
            reporter.note(&format!("{hits} of {total} layers came from the cache (--no-cache to rebuild them)"));
        }
        let layers: Vec<crate::push::BuildLayer> = images.iter().flat_map(|(_, b)| b.layers.clone()).collect();
        let (mut artifact, spools) = if images.len() == 1 {
            let (_, built) = images.pop().expect("one image");
            (built.artifact, vec![built.spool])
        } else {
            build::combine(images, &opts.annotations)
        };
        let spool = spools[0].path().to_path_buf();
        let mut report = if dests.is_empty() {
            let root = artifact.root();
            PushReport {
                references: Vec::new(),
                digest: root.digest.clone(),
                media_type: root.media_type.clone(),
                size: root.bytes.len() as u64,
                blobs: Vec::new(),
                seconds: 0.0,
                retries: BTreeMap::new(),
                layers: Vec::new(),
            }
        } else {
            let report = {
                let _section = reporter.section("hoist_push", &format!("pushing to {}", super::push::list(&dests)));
                let streamed = match &streams {
                    Some(s) => s.finish().await,
                    None => Streamed::default(),
                };
                push_streamed(&artifact, &dests, &clients, &reporter, &streamed).await?
            };
            reporter.summary(&report.summary());
            report
        };
        report.layers = layers;
        // Provenance: asked for, or (auto) where the registry keeps referrers itself — one GET.
        let attach_level = match (wanted, dests.first()) {
            (_, None) | (Wanted::Off, _) => None,
            (Wanted::Level(level), Some(_)) => Some(level),
            (Wanted::Auto, Some(dest)) => {
                // The default: a registry that cannot be asked gets no provenance, and the build goes on.
                let keeps = match keeps_referrers(&clients, dest, &report.digest).await {
                    Ok(true) => true,
                    Ok(false) => {
                        reporter.note(&format!(
                            "provenance not attached: {} has no referrers API, and hoist writes a fallback tag \
                             only when asked (--provenance, or HOIST_PROVENANCE=min)",
                            dest.registry()
                        ));
                        false
                    }
                    Err(e) => {
                        reporter.warn(&format!("provenance not attached: {e}"));
                        false
                    }
                };
                keeps.then_some(crate::provenance::Level::Min)
            }
        };
        let mut docs = Documents::default();
        if attach_level.is_some() || args.provenance.provenance_file.is_some() {
            let level = attach_level.or(wanted.level()).unwrap_or(crate::provenance::Level::Min);
            let name = dests.first().map_or_else(|| args.output.clone().unwrap_or_default(), |d| d.name());
            let mut subjects = vec![(name.clone(), report.digest.clone())];
            if platform_digests.len() > 1 {
                subjects.extend(platform_digests.iter().map(|d| (name.clone(), d.clone())));
            }
            let statement = crate::provenance::statement(
                &crate::provenance::Inputs {
                    level,
                    subjects,
                    dockerfile: opts.file.as_deref().unwrap_or(&opts.context.join("Dockerfile")).display().to_string(),
                    target: opts.target.clone(),
                    platforms: platforms.iter().map(|p| p.to_string()).collect(),
                    build_args: provenance_build_args(&args.build_args, &opts.build_args),
                    internal: [
                        ("compression".to_string(), serde_json::json!(args.compression)),
                        ("compressionLevel".to_string(), serde_json::json!(args.compression_level)),
                        ("squash".to_string(), serde_json::json!(args.squash)),
                    ]
                    .into(),
                    images: inputs,
                    started_on: Some(started_on),
                    finished_on: Some(now_rfc3339()),
                },
                &env,
            );
            if let Some(file) = &args.provenance.provenance_file {
                crate::fsutil::write_atomic(file, &statement)?;
            }
            if attach_level.is_some() {
                (docs.provenance, docs.envelope) =
                    crate::provenance::attachments(&statement, signer.as_ref().map(|s| &s.key));
            }
        }
        if args.provenance.sbom.is_some() || args.provenance.sbom_file.is_some() {
            let name = dests.first().map_or_else(|| args.output.clone().unwrap_or_default(), |d| d.name());
            let created = build::config::rfc3339(epoch);
            let describe = crate::sbom::Describe {
                name: &name,
                digest: &report.digest,
                tag: dests.first().and_then(|d| d.tag()),
                created: &created,
                os: os.as_ref(),
            };
            if let Some(file) = &args.provenance.sbom_file {
                crate::fsutil::write_atomic(file, &crate::sbom::cyclonedx(&packages, &describe, true))?;
            }
            if args.provenance.sbom.is_some() {
                let spdx = crate::sbom::spdx(&packages, &describe);
                docs.sbom = vec![
                    document(crate::sbom::SPDX_MEDIA_TYPE, None, spdx.clone()),
                    document(
                        crate::sbom::CYCLONEDX_MEDIA_TYPE,
                        None,
                        crate::sbom::cyclonedx(&packages, &describe, false),
                    ),
                ];
                let harbor = crate::registry::harbor::SBOM_MEDIA_TYPE;
                docs.harbor_sbom = Some(document(harbor, Some(harbor), spdx));
                docs.packages = packages.len();
            }
        }
        if signer.is_some() || !docs.provenance.is_empty() || !docs.sbom.is_empty() {
            attach_documents(&report, &docs, signer.as_ref(), &clients, &reporter).await?;
        }
        if let Some(output) = output {
            build::base::fetch_remote_blobs(&mut artifact, &clients, push_opts.retry, &spool).await?;
            match output {
                Output::Oci { dir, tag } => {
                    crate::layout::oci::write(&dir, &artifact, Some(&tag))?;
                    report.references.push(format!("oci:{}:{tag}", dir.display()));
                }
                Output::DockerArchive { file } => {
                    let tags: Vec<String> = dests.iter().filter(|d| d.tag().is_some()).map(|d| d.to_string()).collect();
                    build::archive::write_docker_archive(&file, &artifact, &tags, opts.epoch)?;
                    report.references.push(format!("docker-archive:{}", file.display()));
                }
            }
        }
        args.output_args.emit(&report)?;
        drop(spools);
        Ok(())
    }
}

/// Every `--build-arg` name, with its value only when written on the command line as K=V.
fn provenance_build_args(flags: &[String], resolved: &BTreeMap<String, String>) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for item in flags {
        match item.split_once('=') {
            Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
            None if resolved.contains_key(item) => out.insert(item.clone(), None),
            None => None,
        };
    }
    out
}

fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    build::config::rfc3339(now)
}

/// What a build pushed, as the subject of an attached document, and each repository it went to (once).
fn pushed_subject(report: &PushReport) -> Result<(crate::remote::referrers::Subject, Vec<Reference>)> {
    let subject = crate::remote::referrers::Subject {
        media_type: report.media_type.clone(),
        digest: report.digest.clone(),
        size: report.size,
    };
    let mut repos: Vec<Reference> = Vec::new();
    for r in &report.references {
        let r: Reference = r.parse()?;
        if !repos.iter().any(|x| x.name() == r.name()) {
            repos.push(r);
        }
    }
    Ok((subject, repos))
}

/// What `--provenance` / `--no-provenance` / `$HOIST_PROVENANCE` / CI ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Off,
    /// At `min` where the registry keeps referrers itself (decided after the push).
    Auto,
    Level(crate::provenance::Level),
}

impl Wanted {
    fn level(self) -> Option<crate::provenance::Level> {
        match self {
            Wanted::Level(l) => Some(l),
            _ => None,
        }
    }
}

/// First match wins: `--no-provenance`, `--provenance[=LEVEL]`, `$HOIST_PROVENANCE`
/// (`off|auto|min|max`), then `auto` in GitLab CI and off elsewhere.
fn provenance_wanted(flags: &ProvenanceFlags, env: &dyn Env, in_ci: bool) -> Result<Wanted> {
    use crate::provenance::Level;
    if flags.no_provenance {
        return Ok(Wanted::Off);
    }
    if let Some(level) = flags.provenance {
        return Ok(Wanted::Level(level));
    }
    let Some(value) = env.non_empty(vars::HOIST_PROVENANCE) else {
        return Ok(if in_ci { Wanted::Auto } else { Wanted::Off });
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "false" | "0" => Ok(Wanted::Off),
        "auto" => Ok(Wanted::Auto),
        "min" => Ok(Wanted::Level(Level::Min)),
        "max" => Ok(Wanted::Level(Level::Max)),
        _ => Err(Error::usage(format!("{} {value:?}: expected off, auto, min or max", vars::HOIST_PROVENANCE))),
    }
}

/// Whether the registry of `dest` keeps the referrers list itself: its referrers API answers (one
/// GET of the pushed image's referrers).
async fn keeps_referrers(clients: &Clients<'_>, dest: &Reference, digest: &Digest) -> Result<bool> {
    let ctx = || format!("asking {} whether it has the referrers API", dest.name());
    let repo = crate::remote::open(clients, dest, "pull").await.with_context(ctx)?;
    Ok(repo.get_referrers(digest, None).await.with_context(ctx)?.is_some())
}

/// The documents a build attaches to what it pushed.
#[derive(Default)]
struct Documents {
    /// The provenance statement, and its signed envelope with --sign.
    provenance: Vec<crate::remote::referrers::Attachment>,
    /// The signed envelope again, for cosign's `.att` tag.
    envelope: Option<Vec<u8>>,
    /// The SPDX and CycloneDX SBOMs.
    sbom: Vec<crate::remote::referrers::Attachment>,
    /// The SPDX SBOM in Harbor's form: attached where the registry is Harbor.
    harbor_sbom: Option<crate::remote::referrers::Attachment>,
    packages: usize,
}

/// A one-layer document of `media_type` (also its artifact type, as Trivy's `--sbom-sources oci`
/// wants), with the config media type `config` when not the empty one.
fn document(media_type: &str, config: Option<&str>, bytes: Vec<u8>) -> crate::remote::referrers::Attachment {
    crate::remote::referrers::Attachment {
        artifact_type: media_type.to_string(),
        annotations: BTreeMap::new(),
        layers: vec![crate::remote::referrers::Layer {
            media_type: if config.is_some() { crate::sbom::SPDX_MEDIA_TYPE } else { media_type }.to_string(),
            bytes: bytes.into(),
            annotations: BTreeMap::new(),
        }],
        config_media_type: config.map(str::to_string),
    }
}

/// Signs what was pushed (with --sign) and attaches `docs`, in each repository pushed to: the
/// signature referrer and the documents in one [`crate::remote::referrers::attach_all`] (one fallback
/// tag update on registries without the referrers API), while cosign's `.sig` and `.att` tags are
/// written; the Harbor form of the SBOM only where the registry is Harbor.
async fn attach_documents(
    report: &PushReport,
    docs: &Documents,
    signer: Option<&crate::sign::SignOptions>,
    clients: &Clients<'_>,
    reporter: &std::sync::Arc<Reporter>,
) -> Result<()> {
    let (subject, repos) = pushed_subject(report)?;
    for r in repos {
        let signature = signer.map(|s| crate::sign::Signature::new(&r, &subject, s));
        let mut all: Vec<_> = signature.iter().filter_map(|s| s.attachment()).collect();
        all.extend(docs.provenance.iter().chain(&docs.sbom).cloned());
        if let Some(harbor_form) = &docs.harbor_sbom {
            if crate::registry::harbor::Harbor::detect(&*clients.get(r.api_host()).await?).await {
                all.push(harbor_form.clone());
            }
        }
        let att = async {
            match &docs.envelope {
                Some(e) => crate::provenance::write_att_tag(clients, &r, &subject, e.clone()).await.map(Some),
                None => Ok(None),
            }
        };
        let sig = async {
            match &signature {
                Some(s) => s.write_legacy(clients, &r).await,
                None => Ok(None),
            }
        };
        let attach = async {
            if all.is_empty() {
                return Ok(Vec::new());
            }
            crate::remote::referrers::attach_all(clients, &r, &subject, &all, reporter).await
        };
        let (attached, att, sig) = tokio::join!(attach, att, sig);
        let (mut attached, att, sig) = (attached?, att?, sig?);
        if let Some(signature) = signature {
            let referrer = signature.attachment().is_some().then(|| attached.remove(0));
            let signed = signature.report(sig, referrer);
            reporter.note(&format!("signed {} ({})", signed.reference, signed.describe()));
        }
        if attached.is_empty() {
            continue;
        }
        let mut what: Vec<String> = attached
            .iter()
            .map(|a| {
                let label = match a.descriptor.kind() {
                    crate::provenance::IN_TOTO_MEDIA_TYPE => "provenance".to_string(),
                    crate::provenance::DSSE_MEDIA_TYPE => "signed provenance".to_string(),
                    crate::sbom::SPDX_MEDIA_TYPE => {
                        format!("SBOM ({} packages) SPDX", docs.packages)
                    }
                    crate::sbom::CYCLONEDX_MEDIA_TYPE => "CycloneDX".to_string(),
                    crate::registry::harbor::SBOM_MEDIA_TYPE => "Harbor's SBOM form".to_string(),
                    other => other.to_string(),
                };
                format!("{label} {}", a.descriptor.digest.short())
            })
            .collect();
        if let Some(t) = att {
            what.push(if t.written { t.tag } else { format!("{} (there already)", t.tag) });
        }
        let listed = match attached.first().map(|a| &a.listing) {
            Some(crate::remote::referrers::Listing::Registry) => "listed by the registry".to_string(),
            Some(crate::remote::referrers::Listing::FallbackTag { tag, writes }) => {
                format!("listed in the fallback tag {tag} ({writes} write{})", if *writes == 1 { "" } else { "s" })
            }
            _ => "not listed".to_string(),
        };
        reporter.note(&format!("attached to {}@{}: {}; {listed}", r.name(), report.digest, what.join(", ")));
    }
    Ok(())
}

/// The images whose layers the build may reuse, most likely first: every destination as tagged,
/// then in each destination repository the pipeline's ref slug tag and the default branch's tag (the
/// previous pipeline's image), then `--cache-from` and `$HOIST_CACHE_FROM`. Duplicates are dropped.
fn cache_candidates(
    dests: &[Reference],
    ci: &CiContext,
    flags: &[String],
    env_value: Option<String>,
) -> Result<Vec<Reference>> {
    let mut out: Vec<Reference> = dests.iter().filter(|d| d.tag().is_some()).cloned().collect();
    let branch_tags: Vec<String> = [ci.ref_slug.clone(), ci.default_branch.as_deref().map(ref_slug)]
        .into_iter()
        .flatten()
        .map(|t| tag_slug(&t))
        .collect();
    for d in dests {
        for t in &branch_tags {
            out.push(d.with_tag(t)?);
        }
    }
    let from_env: Vec<String> = env_value.map_or_else(Vec::new, |v| {
        v.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    });
    for (item, origin) in
        flags.iter().map(|f| (f, "--cache-from")).chain(from_env.iter().map(|f| (f, vars::HOIST_CACHE_FROM)))
    {
        let r: Reference = item.parse().map_err(|e: Error| {
            Error::usage(format!("{origin} {item:?}: {}", e.message()))
                .with_hint("give an image reference, host[:port]/repository[:tag|@digest]")
        })?;
        out.push(r);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.to_string()));
    Ok(out)
}

/// One line per layer the build made: reused from which image, or why it was built.
fn log_reuse(reporter: &Reporter, built: &build::Built) {
    let c = &built.candidates;
    if !c.unread.is_empty() {
        reporter.note(&format!("layer reuse: not read: {}", c.unread_list()));
    }
    let n = built.layers.len();
    for (i, l) in built.layers.iter().enumerate() {
        let what = format!("layer {}/{n} {}", i + 1, l.digest.short());
        let size = crate::progress::human_bytes(l.size);
        let line = match (&l.origin, &l.from, &l.why) {
            (crate::push::LayerOrigin::Registry, Some(from), _) => format!("{what} reused from {from} ({size})"),
            (crate::push::LayerOrigin::Cache, _, why) => {
                format!(
                    "{what} from the local layer cache ({size}); not in the registry's images: {}",
                    why.as_deref().unwrap_or("-")
                )
            }
            (_, _, why) => format!("{what} built ({size}): {}", why.as_deref().unwrap_or("-")),
        };
        reporter.note(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_candidates_are_the_destinations_branch_tags_and_flags_in_order() {
        let env = crate::ci::MapEnv::new([("CI_COMMIT_REF_SLUG", "feature-x"), ("CI_DEFAULT_BRANCH", "Main/Line")]);
        let ci = CiContext::from_env(&env, None);
        let dests: Vec<Reference> =
            ["reg.example/team/app:1.2", "reg.example/team/app:feature-x"].iter().map(|d| d.parse().unwrap()).collect();
        let got = cache_candidates(
            &dests,
            &ci,
            &["reg.example/team/other:main".into()],
            Some("reg.example/cache/a:1, reg.example/team/app:1.2".into()),
        )
        .unwrap();
        let got: Vec<String> = got.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            got,
            [
                "reg.example/team/app:1.2",
                "reg.example/team/app:feature-x",
                "reg.example/team/app:main-line",
                "reg.example/team/other:main",
                "reg.example/cache/a:1",
            ]
        );
        let e = cache_candidates(&[], &ci, &["Bad Ref".into()], None).unwrap_err();
        assert!(e.to_string().contains("--cache-from \"Bad Ref\""), "{e}");
        let e = cache_candidates(&[], &ci, &[], Some("UPPER/x".into())).unwrap_err();
        assert!(e.to_string().contains("HOIST_CACHE_FROM"), "{e}");
    }

    #[test]
    fn provenance_flags_win_over_the_variable_which_wins_over_the_ci_default() {
        use crate::provenance::Level;
        let flags = |provenance: Option<Level>, no_provenance: bool| ProvenanceFlags {
            provenance,
            no_provenance,
            provenance_file: None,
            sbom: None,
            sbom_file: None,
        };
        let none = crate::ci::MapEnv::new([("GITLAB_CI", "true")]);
        let var = |v: &str| crate::ci::MapEnv::new([("HOIST_PROVENANCE", v)]);
        assert_eq!(provenance_wanted(&flags(None, false), &none, true).unwrap(), Wanted::Auto);
        assert_eq!(provenance_wanted(&flags(None, false), &none, false).unwrap(), Wanted::Off);
        assert_eq!(provenance_wanted(&flags(None, false), &var("MAX"), false).unwrap(), Wanted::Level(Level::Max));
        assert_eq!(provenance_wanted(&flags(None, false), &var("off"), true).unwrap(), Wanted::Off);
        assert_eq!(provenance_wanted(&flags(None, false), &var("auto"), false).unwrap(), Wanted::Auto);
        assert_eq!(
            provenance_wanted(&flags(Some(Level::Min), false), &var("off"), true).unwrap(),
            Wanted::Level(Level::Min)
        );
        assert_eq!(provenance_wanted(&flags(None, true), &var("max"), true).unwrap(), Wanted::Off);
        let e = provenance_wanted(&flags(None, false), &var("yes"), true).unwrap_err();
        assert!(e.to_string().contains("off, auto, min or max"), "{e}");
    }

    #[test]
    fn parses_outputs_and_pairs() {
        assert_eq!(parse_output("oci:out:v1").unwrap(), Output::Oci { dir: "out".into(), tag: "v1".into() });
        assert_eq!(parse_output("oci:out").unwrap(), Output::Oci { dir: "out".into(), tag: "latest".into() });
        assert_eq!(parse_output("docker-archive:a.tar").unwrap(), Output::DockerArchive { file: "a.tar".into() });
        assert!(parse_output("tar:x").is_err());
        let p = pairs("--label", &["a=b".into(), "c=".into()], false).unwrap();
        assert_eq!(p.get("a").map(String::as_str), Some("b"));
        assert_eq!(p.get("c").map(String::as_str), Some(""));
        assert!(pairs("--label", &["nokey".into()], false).is_err());
    }
}
