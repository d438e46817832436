//! `hoist referrers REF`: what is attached to an image (signatures, SBOMs, provenance), as a tree or
//! JSON; `hoist attach REF FILE...`: attach files to an image as an OCI 1.1 artifact.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;

use super::common::{reporter, RegistryArgs};
use crate::ci::ProcessEnv;
use crate::error::{Context, Error, Result};
use crate::model::{Digest, Reference};
use crate::push::Clients;
use crate::remote::referrers::{self, Attachment, Layer, Listing, Node, Source, Subject};

pub const EXAMPLES: &str = "\
Examples:
  hoist referrers harbor.example.com/proj/app:1.0
  hoist referrers localhost:5000/app@sha256:... --artifact-type application/spdx+json
  hoist referrers localhost:5000/app:1.0 --json | jq -r '.referrers[].digest'

Lists the artifacts attached to the image (and what is attached to those: a signature of an SBOM),
as `oras discover` does: from the registry's referrers API where it has one (Harbor, zot), else from
the fallback tag sha256-<hex> (distribution, GitLab's registry). Where the fallback tag is unusable
(GitLab's registry answers it with the image itself) hoist says so on stderr and lists nothing.";

pub const ATTACH_EXAMPLES: &str = "\
Examples:
  hoist attach localhost:5000/app:1.0 --artifact-type application/spdx+json sbom.spdx.json
  hoist attach harbor.example.com/proj/app@sha256:... --artifact-type application/vnd.example.report \\
      report.json:application/json --annotation org.opencontainers.image.created=2026-01-01T00:00:00Z

The files become the layers of an artifact manifest whose subject is the image (with the empty
config, as the OCI image spec 1.1 recommends); each layer is titled with its file name. The
artifact is listed by the registry when it has a referrers API, else in the fallback tag
sha256-<hex>, updated safely when several jobs attach to one image at once. Prints the
artifact's host/repository@digest.";

#[derive(Debug, Args)]
pub struct ReferrersArgs {
    /// The image: host[:port]/repository[:tag|@digest].
    pub reference: String,
    /// Only artifacts of this type (e.g. application/vnd.dev.cosign.artifact.sig.v1+json).
    #[arg(long, value_name = "TYPE")]
    pub artifact_type: Option<String>,
    /// Print JSON: the subject, where the list came from, and every referrer (nested) with its
    /// media type, digest, size, artifact type and annotations.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The image to attach to: host[:port]/repository[:tag|@digest].
    pub reference: String,
    /// The files to attach, each FILE or FILE:MEDIA_TYPE (default application/octet-stream).
    #[arg(value_name = "FILE[:MEDIA_TYPE]")]
    pub files: Vec<String>,
    /// The artifact's type (its `artifactType`), e.g. application/spdx+json.
    #[arg(long, value_name = "TYPE", required = true)]
    pub artifact_type: String,
    /// An annotation of the artifact manifest (repeatable).
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Print what was done as JSON (the artifact's descriptor, the subject, where it is listed).
    #[arg(long)]
    pub json: bool,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The digest `reference` names (its digest, or what its tag points at).
async fn resolve(repo: &crate::registry::ops::Repository, reference: &Reference) -> Result<Digest> {
    if let Some(d) = reference.digest() {
        return Ok(d.clone());
    }
    repo.manifest_digest(&reference.manifest_reference())
        .await?
        .ok_or_else(|| Error::usage(format!("{reference} does not exist")))
}

pub async fn run(args: ReferrersArgs) -> Result<()> {
    let reference: Reference = args.reference.parse()?;
    let env = ProcessEnv;
    let opts = args.registry.push_options(&env, 1, Vec::new())?;
    let reporter = reporter(&args.registry, true);
    let clients = Clients::new(&opts, &env);
    let ctx = || format!("listing the referrers of {reference}");
    let repo = crate::remote::open(&clients, &reference, "pull").await.with_context(ctx)?;
    let subject = resolve(&repo, &reference).await.with_context(ctx)?;
    let (source, nodes) = referrers::tree(&repo, &subject, args.artifact_type.as_deref()).await.with_context(ctx)?;
    if let Source::None { reason } = &source {
        reporter.warn(&format!("{}@{}: {reason}", reference.name(), subject));
    }
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let v = serde_json::json!({
            "reference": format!("{}@{}", reference.name(), subject),
            "subject": subject,
            "source": source,
            "referrers": nodes,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v).expect("json"))
    } else {
        let mut text = format!("{}@{}\n", reference.name(), subject);
        tree_text(&nodes, "", &mut text);
        out.write_all(text.as_bytes())
    };
    written.and_then(|_| out.flush()).map_err(|e| Error::io("writing to stdout", e))
}

/// `├── <artifactType>  sha256:…` per node, its referrers indented below it.
fn tree_text(nodes: &[Node], prefix: &str, out: &mut String) {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        out.push_str(&format!(
            "{prefix}{}{}  {}\n",
            if last { "└── " } else { "├── " },
            n.referrer.kind(),
            n.referrer.digest
        ));
        tree_text(&n.referrers, &format!("{prefix}{}", if last { "    " } else { "│   " }), out);
    }
}

/// `FILE[:MEDIA_TYPE]`: the media type is what follows the last `:` when it has a `/`.
fn file_arg(arg: &str) -> (PathBuf, String) {
    match arg.rsplit_once(':') {
        Some((path, mt)) if mt.contains('/') && !path.is_empty() => (PathBuf::from(path), mt.to_string()),
        _ => (PathBuf::from(arg), "application/octet-stream".to_string()),
    }
}

pub async fn attach(args: AttachArgs) -> Result<()> {
    let reference: Reference = args.reference.parse()?;
    let mut annotations = BTreeMap::new();
    for a in &args.annotations {
        let (k, v) = a
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Error::usage(format!("--annotation {a:?}: expected KEY=VALUE")))?;
        annotations.insert(k.to_string(), v.to_string());
    }
    let mut layers = Vec::new();
    for f in &args.files {
        let (path, media_type) = file_arg(f);
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if meta.len() > 512 << 20 {
            return Err(Error::usage(format!("{} is over 512 MiB: attach documents, not images", path.display())));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let title = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        layers.push(Layer {
            media_type,
            bytes: Bytes::from(bytes),
            annotations: BTreeMap::from([("org.opencontainers.image.title".to_string(), title)]),
        });
    }
    let env = ProcessEnv;
    let opts = args.registry.push_options(&env, 4, Vec::new())?;
    let reporter = reporter(&args.registry, args.quiet);
    let clients = Clients::new(&opts, &env);
    let ctx = || format!("attaching to {reference}");
    let repo = crate::remote::open(&clients, &reference, "pull").await.with_context(ctx)?;
    let subject = Subject::of(&repo.get_manifest(&reference.manifest_reference()).await.with_context(ctx)?);
    let attachment =
        Attachment { artifact_type: args.artifact_type.clone(), annotations, layers, config_media_type: None };
    let attached = referrers::attach(&clients, &reference, &subject, &attachment, &reporter).await?;
    match &attached.listing {
        Listing::Registry => reporter.note("listed by the registry (referrers API)"),
        Listing::FallbackTag { tag, writes } => reporter
            .note(&format!("listed in the fallback tag {tag} ({writes} write{})", if *writes == 1 { "" } else { "s" })),
        Listing::Unlisted { .. } => {}
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&attached).expect("json"));
    } else {
        println!("{}", attached.reference);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_args_take_a_media_type_after_the_last_colon() {
        assert_eq!(file_arg("sbom.json:application/spdx+json"), ("sbom.json".into(), "application/spdx+json".into()));
        assert_eq!(file_arg("c:report"), ("c:report".into(), "application/octet-stream".into()));
        assert_eq!(file_arg("plain.txt").1, "application/octet-stream");
    }

    #[test]
    fn the_tree_nests_referrers_of_referrers() {
        let r = |t: &str, seed: &[u8]| referrers::Referrer {
            media_type: crate::model::media::OCI_MANIFEST.into(),
            digest: Digest::sha256_of(seed),
            size: 1,
            artifact_type: Some(t.into()),
            annotations: BTreeMap::new(),
        };
        let nodes = vec![
            Node { referrer: r("sbom", b"a"), referrers: vec![Node { referrer: r("sig", b"b"), referrers: vec![] }] },
            Node { referrer: r("sig", b"c"), referrers: vec![] },
        ];
        let mut text = String::new();
        tree_text(&nodes, "", &mut text);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("├── sbom  sha256:"), "{text}");
        assert!(lines[1].starts_with("│   └── sig  sha256:"), "{text}");
        assert!(lines[2].starts_with("└── sig  sha256:"), "{text}");
    }
}
