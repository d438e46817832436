//! Images that are already in a registry, and the verbs built on reading them: `copy` and `tag`
//! (here), `ls`/`inspect` ([`inspect`]), `pull` ([`pull`]), `index create` ([`index`]).
//!
//! [`read`] walks a reference down to its blob descriptors — every manifest below an index, children
//! before their index, exact bytes kept — without fetching a single layer: the blobs stay
//! [`BlobSource::Remote`], so the push engine mounts them (same registry) or streams them GET → PUT
//! (another registry), and `pull` downloads them into a layout. Everything goes through the one
//! transport ([`Repository`]) and the push engine; nothing here speaks HTTP.

pub mod append;
pub mod index;
pub mod inspect;
pub mod pull;
pub mod referrers;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;

use crate::builder::source::Platform;
use crate::error::{Context, Error, Result};
use crate::model::{media, Artifact, Blob, BlobSource, Digest, Manifest, Reference};
use crate::progress::Reporter;
use crate::push::{Clients, PushReport};
use crate::registry::mirrors::Mirrors;
use crate::registry::ops::Repository;

/// Indexes nested deeper than this are refused (a loop or a hostile registry).
const MAX_DEPTH: usize = 4;

/// A descriptor as manifests carry it: only the fields hoist needs, the rest ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// An index entry's platform, kept as JSON (unknown keys and values survive a rewrite).
    #[serde(default)]
    pub platform: Option<serde_json::Value>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// `os/arch[/variant]` of an index entry, when it has a platform.
    pub fn platform_name(&self) -> Option<String> {
        self.platform.as_ref().and_then(platform_name)
    }
}

/// `os/arch[/variant]` of a platform object (an index entry's or an image config's top level).
pub fn platform_name(v: &serde_json::Value) -> Option<String> {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|x| !x.is_empty());
    let mut name = format!("{}/{}", s("os")?, s("architecture")?);
    if let Some(variant) = s("variant") {
        name.push('/');
        name.push_str(variant);
    }
    Some(name)
}

/// Whether `name` (`os/arch[/variant]`) is `want`; a `want` without a variant matches any variant.
pub fn platform_matches(name: &str, want: &Platform) -> bool {
    let mut parts = name.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    os == Some(want.os.as_str())
        && arch == Some(want.architecture.as_str())
        && (want.variant.is_none() || variant == want.variant.as_deref())
}

/// An image index, as far as hoist reads one.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexDoc {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image (or artifact) manifest, as far as hoist reads one.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestDoc {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest's bytes parsed as what its media type says.
pub enum Parsed {
    Index(IndexDoc),
    Image(ManifestDoc),
}

impl Parsed {
    pub fn of(m: &Manifest) -> Result<Parsed> {
        let bad = |what: &str, e: serde_json::Error| {
            Error::other(format!("manifest {} ({}) is not a valid {what}: {e}", m.digest, m.media_type))
        };
        if media::is_index(&m.media_type) {
            serde_json::from_slice(&m.bytes).map(Parsed::Index).map_err(|e| bad("image index", e))
        } else {
            serde_json::from_slice(&m.bytes).map(Parsed::Image).map_err(|e| bad("image manifest", e))
        }
    }
}

/// Opens `reference`'s repository asking for `actions` (`pull`, or `pull,push`).
pub async fn open(clients: &Clients<'_>, reference: &Reference, actions: &str) -> Result<Repository> {
    let client = clients.get(reference.api_host()).await?;
    Ok(Repository::new(client, reference.repository(), actions, &[], clients.options().retry))
}

/// Reads `reference` into an [`Artifact`] whose blobs stay in the registry: its root manifest and,
/// for an index, every manifest below it (children first, root last). With `platform`, an index is
/// replaced by its one matching child (an error listing the platforms when none matches).
pub async fn read(repo: &Repository, reference: &Reference, platform: Option<&Platform>) -> Result<Artifact> {
    let root = repo.get_manifest(&reference.manifest_reference()).await?;
    let root = match (platform, Parsed::of(&root)?) {
        (Some(want), Parsed::Index(index)) => {
            let child = pick(&index, want).map_err(|e| e.context(format!("{reference}")))?;
            repo.get_manifest(child.digest.as_str()).await?
        }
        _ => root,
    };
    let mut walk = Walk {
        repo,
        source: BlobSource::Remote {
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
        },
        blobs: Vec::new(),
        manifests: Vec::new(),
        seen: HashSet::new(),
    };
    walk.manifest(root, 0).await?;
    Ok(Artifact { blobs: walk.blobs, manifests: walk.manifests })
}

/// [`read`] through registry mirrors: each candidate `mirrors` gives for `reference` (its mirrors,
/// the origin last) is tried in turn. Returns the repository that served it (blobs are read or
/// mounted from there) and the artifact. A failing mirror is said on stderr and the next tried.
pub async fn read_via(
    clients: &Clients<'_>,
    reference: &Reference,
    platform: Option<&Platform>,
    mirrors: &Mirrors,
    reporter: &Reporter,
) -> Result<(Repository, Artifact)> {
    let candidates = mirrors.candidates(reference)?;
    let last = candidates.len() - 1;
    let mut failed = Vec::new();
    for (i, source) in candidates.iter().enumerate() {
        let attempt = async {
            let repo = open(clients, source, "pull").await?;
            let artifact = read(&repo, source, platform).await?;
            Ok::<_, Error>((repo, artifact))
        };
        match attempt.await {
            Ok(found) => {
                if i < last {
                    reporter.note(&format!("reading {reference} from its mirror {source}"));
                }
                return Ok(found);
            }
            Err(e) if i < last => {
                reporter.note(&format!("mirror {source} for {reference}: {e}; trying the next source"));
                failed.push(source.to_string());
            }
            Err(e) if !failed.is_empty() => {
                return Err(e.with_hint(format!("its mirrors failed too: {}", failed.join(", "))))
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the origin is always a candidate")
}

/// The entry of `index` for `want`; the error lists what the index has.
pub fn pick<'a>(index: &'a IndexDoc, want: &Platform) -> Result<&'a Descriptor> {
    let named = |d: &&Descriptor| d.platform_name().is_some_and(|n| platform_matches(&n, want));
    index.manifests.iter().find(named).ok_or_else(|| {
        let have: Vec<String> = index.manifests.iter().filter_map(Descriptor::platform_name).collect();
        Error::usage(format!("the image index has no image for {want}"))
            .with_hint(format!("it has: {}", if have.is_empty() { "no platforms".into() } else { have.join(", ") }))
    })
}

struct Walk<'a> {
    repo: &'a Repository,
    source: BlobSource,
    blobs: Vec<Blob>,
    manifests: Vec<Manifest>,
    seen: HashSet<Digest>,
}

impl Walk<'_> {
    fn manifest(&mut self, m: Manifest, depth: usize) -> Pin<Box<dyn Future<Output = Result<()>> + Send + '_>> {
        Box::pin(async move {
            if depth > MAX_DEPTH {
                return Err(Error::other(format!("manifest {}: indexes nested too deeply", m.digest)));
            }
            match Parsed::of(&m)? {
                Parsed::Index(index) => {
                    for child in &index.manifests {
                        if self.seen.contains(&child.digest) {
                            continue;
                        }
                        let cm = self
                            .repo
                            .get_manifest(child.digest.as_str())
                            .await
                            .with_context(|| format!("in index {}", m.digest.short()))?;
                        self.manifest(cm, depth + 1).await?;
                    }
                }
                Parsed::Image(image) => {
                    for d in std::iter::once(&image.config).chain(&image.layers) {
                        if self.seen.insert(d.digest.clone()) {
                            self.blobs.push(Blob {
                                digest: d.digest.clone(),
                                size: d.size,
                                media_type: d.media_type.clone(),
                                source: self.source.clone(),
                            });
                        }
                    }
                }
            }
            if self.seen.insert(m.digest.clone()) {
                self.manifests.push(m);
            }
            Ok(())
        })
    }
}

/// `hoist copy`: every manifest and blob of `src` (read through its `mirrors` first) to `dest`
/// through the push engine — mounted when both are on one registry, streamed blob by blob (GET body
/// → upload PUT) otherwise, skipped where the destination has them already.
pub async fn copy(
    src: &Reference,
    dest: &Reference,
    mirrors: &Mirrors,
    with_referrers: bool,
    clients: &Clients<'_>,
    reporter: &Arc<Reporter>,
) -> Result<PushReport> {
    let ctx = || format!("copying {src} to {dest}");
    let (from, artifact) = read_via(clients, src, None, mirrors, reporter).await.with_context(ctx)?;
    let root = artifact.root();
    reporter.note(&format!(
        "{src} is {} {} ({} manifest{}, {} blob{}, {})",
        if media::is_index(&root.media_type) { "index" } else { "image" },
        root.digest,
        artifact.manifests.len(),
        plural(artifact.manifests.len()),
        artifact.blobs.len(),
        plural(artifact.blobs.len()),
        crate::progress::human_bytes(artifact.blob_bytes())
    ));
    let mut report =
        crate::push::push_with(&artifact, std::slice::from_ref(dest), clients, reporter).await.with_context(ctx)?;
    if with_referrers {
        // From the repository that served the image (a mirror has what the origin has attached, or
        // nothing): the root and every manifest below it can have referrers.
        let served = if from.client.host() == src.api_host() && from.name == src.repository() {
            src.clone()
        } else {
            Reference::from_str(&format!("{}/{}", from.client.host(), from.name))
                .map_err(|e| e.context("naming the mirror that served the image"))?
        };
        let subjects: Vec<Digest> = artifact.manifests.iter().rev().map(|m| m.digest.clone()).collect();
        let copied = referrers::copy(&served, dest, &subjects, clients, reporter).await.with_context(ctx)?;
        report.blobs.extend(copied.blobs);
    }
    Ok(report)
}

/// `hoist tag`: puts `reference`'s manifest, exact bytes, under each of `tags` in the same
/// repository. No blob moves. A tag that already points at the digest is left alone and said so
/// (Harbor's immutable tags answer 412 even to an identical push).
pub async fn tag(
    reference: &Reference,
    tags: &[String],
    clients: &Clients<'_>,
    reporter: &Reporter,
) -> Result<PushReport> {
    let started = std::time::Instant::now();
    let ctx = || format!("tagging {reference}");
    let repo = open(clients, reference, "pull,push").await.with_context(ctx)?;
    repo.check_push_access().await.with_context(ctx)?;
    let m = repo.get_manifest(&reference.manifest_reference()).await.with_context(ctx)?;
    let mut references = Vec::new();
    for t in tags {
        let target = reference.with_tag(t)?;
        crate::push::guard_tag(&repo, &target, t, &m, clients.options().force, reporter).await?;
        if repo.put_manifest_if_changed(t, &m).await.with_context(ctx)? {
            reporter.note(&format!("tagged {target} → {}", m.digest));
        } else {
            reporter.note(&format!("{target} already points at {}: nothing to do", m.digest));
        }
        references.push(target.to_string());
    }
    Ok(PushReport {
        references,
        digest: m.digest.clone(),
        media_type: m.media_type.clone(),
        size: m.bytes.len() as u64,
        blobs: Vec::new(),
        seconds: started.elapsed().as_secs_f64(),
        retries: repo.retry_counts(),
        layers: Vec::new(),
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_name_and_match() {
        let v = serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
        assert_eq!(platform_name(&v).as_deref(), Some("linux/arm64/v8"));
        assert_eq!(platform_name(&serde_json::json!({"os": "linux"})), None);
        let want = Platform::parse("linux/arm64").unwrap();
        assert!(platform_matches("linux/arm64/v8", &want));
        assert!(!platform_matches("linux/amd64", &want));
        assert!(!platform_matches("linux/arm64/v7", &Platform::parse("linux/arm64/v8").unwrap()));
    }

    #[test]
    fn pick_names_what_an_index_has() {
        let d = |arch: &str| {
            serde_json::json!({"mediaType": media::OCI_MANIFEST, "digest": Digest::sha256_of(arch.as_bytes()),
                "size": 1, "platform": {"os": "linux", "architecture": arch}})
        };
        let index: IndexDoc =
            serde_json::from_value(serde_json::json!({"manifests": [d("amd64"), d("arm64")]})).unwrap();
        assert_eq!(pick(&index, &Platform::parse("linux/arm64").unwrap()).unwrap().digest, Digest::sha256_of(b"arm64"));
        let e = pick(&index, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(e.hint(), Some("it has: linux/amd64, linux/arm64"));
    }
}
