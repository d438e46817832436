//! `hoist sbom REF`: the SBOM of an existing image — the one it carries, else its layers read.

use clap::{Args, ValueEnum};

use super::common::{platform, reporter, RegistryArgs};
use crate::builder::source::Platform;
use crate::ci::ProcessEnv;
use crate::error::{Error, Result};
use crate::model::{Digest, Reference};
use crate::push::Clients;
use crate::remote::{IndexDoc, Parsed};
use crate::sbom::image::ImageSbom;

pub const EXAMPLES: &str = "\
Examples:
  hoist sbom registry.example.com/team/app:1.0 > app.spdx.json
  hoist sbom registry.example.com/team/app:1.0 --format gitlab --output gl-sbom.cdx.json
  hoist sbom localhost:5000/base:12 --platform linux/arm64 --format cyclonedx
  hoist sbom oci:./out:app

An SBOM attached to the image (an application/spdx+json, application/vnd.cyclonedx+json or
Harbor SBOM referrer, or BuildKit's attestation in its index) is used as it is. Otherwise every
layer is read once, top layer first (files a higher layer deleted or replaced do not count): the
dpkg (status, status.d/*), apk and rpm (sqlite, Berkeley DB, ndb) databases with os-release; Go binaries'
build info and go.mod; `cargo auditable` binaries and Cargo.lock; package.json, package-lock.json,
yarn.lock, pnpm-lock.yaml; Python *.dist-info/METADATA and *.egg-info/PKG-INFO; Java archives
(pom.properties, MANIFEST.MF). See docs/sbom-provenance.md.";

/// The document written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// CycloneDX 1.6 JSON with GitLab's container-scanning properties (artifacts:reports:cyclonedx).
    Gitlab,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The image: host[:port]/repository[:tag|@digest], or an OCI layout oci:DIR[:TAG|@DIGEST].
    pub reference: String,
    /// The document to write.
    #[arg(long, value_enum, default_value = "spdx")]
    pub format: Format,
    /// Write the document to FILE (atomically) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Of an index, this platform's image: os/arch[/variant] (needed when it has several).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The image an SBOM describes: its name, tag, manifest digest and config's `created`.
struct Subject {
    name: String,
    tag: Option<String>,
    digest: Digest,
    created: String,
}

pub async fn run(args: SbomArgs) -> Result<()> {
    let want = platform(args.platform.as_deref())?;
    let reporter = reporter(&args.registry, false);
    let (subject, sbom) = if args.reference.starts_with("oci:") {
        from_layout(&args.reference, want.as_ref())?
    } else {
        let env = ProcessEnv;
        let opts = args.registry.push_options(&env, 1, Vec::new())?;
        let clients = Clients::new(&opts, &env);
        from_registry(&clients, &args.reference.parse()?, want.as_ref()).await?
    };
    reporter.note(&format!("{}: {} packages, from {}", args.reference, sbom.packages.len(), sbom.source));
    let describe = crate::sbom::Describe {
        name: &subject.name,
        digest: &subject.digest,
        tag: subject.tag.as_deref(),
        created: &subject.created,
        os: sbom.os.as_ref(),
    };
    let doc = match args.format {
        Format::Spdx => crate::sbom::spdx(&sbom.packages, &describe),
        Format::Cyclonedx => crate::sbom::cyclonedx(&sbom.packages, &describe, false),
        Format::Gitlab => crate::sbom::cyclonedx(&sbom.packages, &describe, true),
    };
    match &args.output {
        Some(file) => crate::fsutil::write_atomic(file, &doc),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&doc)
                .and_then(|_| out.write_all(b"\n"))
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("writing to stdout", e))
        }
    }
}

/// The entry of `index` to describe: the one for `want`, else its only image (attestation
/// manifests, `unknown/unknown`, do not count).
fn pick<'a>(index: &'a IndexDoc, want: Option<&Platform>) -> Result<&'a crate::remote::Descriptor> {
    if let Some(want) = want {
        return crate::remote::pick(index, want);
    }
    let images: Vec<_> =
        index.manifests.iter().filter(|d| d.platform_name().is_some_and(|p| !p.starts_with("unknown/"))).collect();
    match images.as_slice() {
        [one] => Ok(one),
        _ => Err(Error::usage("the reference is an image index with several images: say which with --platform")
            .with_hint(format!(
                "it has: {}",
                images.iter().filter_map(|d| d.platform_name()).collect::<Vec<_>>().join(", ")
            ))),
    }
}

fn layers_of(doc: &crate::remote::ManifestDoc) -> Vec<(Digest, u64)> {
    doc.layers.iter().map(|l| (l.digest.clone(), l.size)).collect()
}

/// The config's `created`, else the epoch (the document stays the same for the same image).
fn created_of(config: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(config).unwrap_or_default();
    v["created"].as_str().unwrap_or("1970-01-01T00:00:00Z").to_string()
}

async fn from_registry(
    clients: &Clients<'_>,
    reference: &Reference,
    want: Option<&Platform>,
) -> Result<(Subject, ImageSbom)> {
    let repo = crate::remote::open(clients, reference, "pull").await?;
    let root = repo.get_manifest(&reference.manifest_reference()).await?;
    let (manifest, index) = match Parsed::of(&root)? {
        Parsed::Index(ix) => {
            let d = pick(&ix, want).map_err(|e| e.context(reference.to_string()))?;
            (repo.get_manifest(d.digest.as_str()).await?, Some(root.digest.clone()))
        }
        Parsed::Image(_) => (root, None),
    };
    let Parsed::Image(doc) = Parsed::of(&manifest)? else {
        return Err(Error::other(format!("{reference}: an index inside an index is not an image")));
    };
    let config = repo.get_blob_bytes(&doc.config.digest).await?;
    let sbom = crate::sbom::image::of_registry(&repo, &manifest.digest, index.as_ref(), &layers_of(&doc)).await?;
    let subject = Subject {
        name: reference.name(),
        tag: reference.tag().map(str::to_string),
        digest: manifest.digest,
        created: created_of(&config),
    };
    Ok((subject, sbom))
}

fn from_layout(source: &str, want: Option<&Platform>) -> Result<(Subject, ImageSbom)> {
    let crate::layout::Source::OciLayout { dir, selector } = crate::layout::Source::parse(source)? else {
        return Err(Error::usage(format!("{source}: not an OCI layout")));
    };
    let artifact = crate::layout::oci::read(&dir, &selector)?;
    let root = artifact.root();
    let manifest = match Parsed::of(root)? {
        Parsed::Index(ix) => {
            let d = pick(&ix, want)?;
            artifact.manifests.iter().find(|m| m.digest == d.digest).cloned().ok_or_else(|| {
                Error::other(format!("{source}: the index names {} but the layout lacks it", d.digest))
            })?
        }
        Parsed::Image(_) => root.clone(),
    };
    let Parsed::Image(doc) = Parsed::of(&manifest)? else {
        return Err(Error::other(format!("{source}: an index inside an index is not an image")));
    };
    let config_path = crate::layout::oci::blob_path(&dir, &doc.config.digest);
    let config = crate::fsutil::read_limited(&config_path, crate::model::media::MAX_CONFIG_BYTES, "the image config")?;
    let sbom = crate::sbom::image::of_layout(&dir, &layers_of(&doc))?;
    let tag = match &selector {
        crate::layout::Selector::Tag(t) => Some(t.clone()),
        _ => None,
    };
    let subject =
        Subject { name: dir.display().to_string(), tag, digest: manifest.digest, created: created_of(&config) };
    Ok((subject, sbom))
}
