//! Artifacts attached to an image (OCI 1.1 referrers): [`attach`] one, [`list`] and [`tree`] what is
//! attached, [`copy`] everything attached along with an image. The one mechanism every attaching
//! verb goes through (signatures, SBOMs, provenance).
//!
//! An attached artifact is a manifest with `subject` (the image's descriptor), `artifactType`, the
//! empty config (`application/vnd.oci.empty.v1+json`, `{}`) and its payload as layers, as the OCI
//! image spec 1.1 recommends. Who keeps the list of what is attached:
//! - a registry with the referrers API answers the manifest PUT with `OCI-Subject` and serves
//!   `GET /v2/<name>/referrers/<digest>` (Harbor 2.9+, zot);
//! - otherwise hoist keeps the *fallback tag* `sha256-<hex>` of the subject: an image index listing
//!   one descriptor per attached artifact (distribution 2.8 and v3, GitLab's registry, Quay…).
//!
//! The fallback tag is a shared, read-modify-write document: several jobs attaching to one image at
//! once (a signature, an SBOM, a provenance) race on it. Each write goes with `If-Match: <ETag>`
//! (`If-None-Match: *` when the tag is new) and a 412 means re-read and merge again. Registries that
//! ignore conditional writes (distribution 2.8 does) are handled by reading back after writing: the
//! descriptors must be there, and still there after a settle delay longer than any writer's
//! read-to-write time, or the merge starts over. Bounded in attempts and time. The loop is
//! [`super::append`]'s, the same that keeps cosign's `.sig`/`.att` tags; [`attach_all`] lists all of
//! a build's attachments (SBOMs, provenance, its envelope) in one update, so the settle delay is paid
//! once per build, not once per document.
//!
//! A fallback tag that is not an index, or that the registry resolves to the image itself (GitLab's
//! registry answers `manifests/sha256-<hex>` with the image, oras-go #1396), is not a referrers list:
//! it is never overwritten, and listing says "no referrers" with the reason.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::append::{append, Merge};
use super::{open, read};
use crate::error::{Context, Error, Result};
use crate::model::{media, Blob, Digest, Manifest, Reference};
use crate::progress::Reporter;
use crate::push::{open_for_push, push_blobs, BlobReport, Clients};
use crate::registry::ops::{Put, PutIf, Repository};

/// The media type of the empty config (and of an empty layer) of an artifact manifest.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's content: `{}`.
pub const EMPTY_JSON: &[u8] = b"{}";
/// Referrers of referrers are followed this deep (a signature of an SBOM of an image is 2).
pub const MAX_DEPTH: usize = 4;
/// The legacy cosign tags copied along with an image: signatures and attestations.
pub const COSIGN_TAG_SUFFIXES: [&str; 2] = [".sig", ".att"];

/// The image (or index) an artifact is attached to: what its `subject` descriptor says. Callers that
/// just pushed it know all three (a push report has them) and need not read the image again —
/// Harbor refuses to serve unsigned images under a signing policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Subject {
    /// The subject a manifest the registry served is.
    pub fn of(m: &Manifest) -> Subject {
        Subject { media_type: m.media_type.clone(), digest: m.digest.clone(), size: m.bytes.len() as u64 }
    }
}

/// One payload layer of an [`Attachment`]: its media type, exact bytes and layer annotations (cosign
/// keeps a signature in `dev.cosignproject.cosign/signature` there).
#[derive(Clone)]
pub struct Layer {
    pub media_type: String,
    pub bytes: Bytes,
    pub annotations: BTreeMap<String, String>,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer").field("media_type", &self.media_type).field("size", &self.bytes.len()).finish()
    }
}

/// What to attach: the artifact type, the manifest's annotations, and the payload layers (none is
/// allowed: the spec then puts the empty blob as the one layer).
#[derive(Debug, Clone, Default)]
pub struct Attachment {
    pub artifact_type: String,
    pub annotations: BTreeMap<String, String>,
    pub layers: Vec<Layer>,
    /// The config's media type when not the empty one's (its content stays `{}`): Harbor classifies
    /// its own SBOM accessory by the config media type (`application/vnd.goharbor.harbor.sbom.v1`).
    pub config_media_type: Option<String>,
}

/// A descriptor of an attached artifact, as referrers lists (API answer or fallback tag) carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Referrer {
    /// The descriptor of an artifact manifest: its `artifactType`, else its config's media type, and
    /// every annotation of the manifest.
    pub fn of(m: &Manifest) -> Result<Referrer> {
        let v: Value = serde_json::from_slice(&m.bytes)
            .map_err(|e| Error::other(format!("manifest {} is not JSON: {e}", m.digest)))?;
        let artifact_type = v
            .get("artifactType")
            .and_then(Value::as_str)
            .or_else(|| v.pointer("/config/mediaType").and_then(Value::as_str))
            .map(str::to_string);
        let annotations = v
            .get("annotations")
            .and_then(|a| serde_json::from_value::<BTreeMap<String, String>>(a.clone()).ok())
            .unwrap_or_default();
        Ok(Referrer {
            media_type: m.media_type.clone(),
            digest: m.digest.clone(),
            size: m.bytes.len() as u64,
            artifact_type,
            annotations,
        })
    }

    /// The artifact type to show: `artifactType`, or `-` when a list entry has none.
    pub fn kind(&self) -> &str {
        self.artifact_type.as_deref().unwrap_or("-")
    }
}

/// Where the list of an image's referrers lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Listing {
    /// The registry keeps it (`OCI-Subject` on the PUT; listed by `GET /v2/<name>/referrers/<digest>`).
    Registry,
    /// The fallback tag `sha256-<hex>`, which hoist updated (`writes` PUTs of it; 0: already listed).
    FallbackTag { tag: String, writes: u32 },
    /// Nowhere: the registry has no referrers API and its fallback tag is unusable (`reason`). The
    /// artifact is stored and reachable by digest, but listing the image will not show it.
    Unlisted { reason: String },
}

/// What [`attach`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attached {
    /// `host/repository@digest` of the artifact manifest.
    pub reference: String,
    /// The artifact manifest's descriptor, as the referrers list carries it.
    pub descriptor: Referrer,
    pub subject: Subject,
    pub listing: Listing,
    pub blobs: Vec<BlobReport>,
}

/// The artifact manifest for `attachment` on `subject`, and the blobs it names (the empty config,
/// then the payload layers; the empty blob as the one layer when there is no payload).
pub fn build(subject: &Subject, attachment: &Attachment) -> Result<(Manifest, Vec<Blob>)> {
    if attachment.artifact_type.trim().is_empty() {
        return Err(Error::usage("an attached artifact needs an artifact type"));
    }
    let empty = Blob::from_bytes(EMPTY_MEDIA_TYPE, Bytes::from_static(EMPTY_JSON));
    let mut blobs = vec![empty.clone()];
    let mut layers = Vec::new();
    for l in &attachment.layers {
        let b = Blob::from_bytes(l.media_type.clone(), l.bytes.clone());
        let mut d = json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size});
        if !l.annotations.is_empty() {
            d["annotations"] = json!(l.annotations);
        }
        layers.push(d);
        if !blobs.iter().any(|x| x.digest == b.digest) {
            blobs.push(b);
        }
    }
    if layers.is_empty() {
        layers.push(json!({"mediaType": EMPTY_MEDIA_TYPE, "digest": empty.digest, "size": empty.size}));
    }
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": attachment.artifact_type,
        "config": {
            "mediaType": attachment.config_media_type.as_deref().unwrap_or(EMPTY_MEDIA_TYPE),
            "digest": empty.digest,
            "size": empty.size,
        },
        "layers": layers,
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    });
    if !attachment.annotations.is_empty() {
        m["annotations"] = json!(attachment.annotations);
    }
    let bytes = serde_json::to_vec(&m).expect("a JSON value serializes");
    if bytes.len() as u64 > media::MAX_MANIFEST_BYTES {
        return Err(Error::usage("the artifact manifest would be over 4 MiB (too many or too large annotations)"));
    }
    Ok((Manifest::new(media::OCI_MANIFEST, bytes), blobs))
}

/// Attaches `attachment` to `subject` in `repository` (a reference whose tag and digest are ignored):
/// [`attach_all`] with one attachment.
pub async fn attach(
    clients: &Clients<'_>,
    repository: &Reference,
    subject: &Subject,
    attachment: &Attachment,
    reporter: &Arc<Reporter>,
) -> Result<Attached> {
    let mut done = attach_all(clients, repository, subject, std::slice::from_ref(attachment), reporter).await?;
    Ok(done.remove(0))
}

/// Attaches every one of `attachments` to `subject` in `repository` (a reference whose tag and digest
/// are ignored): pushes their payload blobs and the empty config through the push engine, then each
/// artifact manifest by digest (one the registry already has is not sent again), then makes sure the
/// subject's referrers list names them all — the registry's when its PUT answer carries `OCI-Subject`,
/// else the fallback tag `sha256-<hex>`, updated **once** for all of them (see the module docs). Safe
/// to run in parallel with other attachers of the same image. A registry whose fallback tag is unusable
/// (GitLab's) gets the artifacts stored and [`Listing::Unlisted`], with a warning through `reporter`.
/// Returns what was done for each attachment, in order.
pub async fn attach_all(
    clients: &Clients<'_>,
    repository: &Reference,
    subject: &Subject,
    attachments: &[Attachment],
    reporter: &Arc<Reporter>,
) -> Result<Vec<Attached>> {
    let built: Vec<(Manifest, Vec<Blob>)> = attachments.iter().map(|a| build(subject, a)).collect::<Result<_>>()?;
    let mut blobs: Vec<Blob> = Vec::new();
    for b in built.iter().flat_map(|(_, b)| b) {
        if !blobs.iter().any(|x| x.digest == b.digest) {
            blobs.push(b.clone());
        }
    }
    let kinds: Vec<&str> = attachments.iter().map(|a| a.artifact_type.as_str()).collect();
    let ctx = || format!("attaching {} to {}@{}", kinds.join(", "), repository.name(), subject.digest);
    let (repo, mount_from) =
        open_for_push(clients, repository.api_host(), repository.repository(), &blobs, &[], reporter)
            .await
            .with_context(ctx)?;
    repo.check_push_access().await.with_context(ctx)?;
    let reports = push_blobs(&repo, &blobs, &mount_from, clients, reporter).await.with_context(ctx)?;
    let manifests: Vec<Manifest> = built.iter().map(|(m, _)| m.clone()).collect();
    let listing = put_referrers(&repo, &subject.digest, &manifests).await.with_context(ctx)?;
    if let Listing::Unlisted { reason } = &listing {
        for (a, m) in attachments.iter().zip(&manifests) {
            reporter.warn(&format!(
                "{} is stored as {}@{} but not listed as a referrer of {}: {reason}",
                a.artifact_type,
                repository.name(),
                m.digest,
                subject.digest
            ));
        }
    }
    built
        .iter()
        .map(|(m, own)| {
            Ok(Attached {
                reference: format!("{}@{}", repository.name(), m.digest),
                descriptor: Referrer::of(m)?,
                subject: subject.clone(),
                listing: listing.clone(),
                blobs: reports.iter().filter(|r| own.iter().any(|b| b.digest == r.digest)).cloned().collect(),
            })
        })
        .collect()
}

/// Puts the artifact manifest `m` (whose `subject` is `subject`, its blobs already in `repo`) by
/// digest, and has it listed: [`put_referrers`] with one manifest.
pub async fn put_referrer(repo: &Repository, subject: &Digest, m: &Manifest) -> Result<Listing> {
    put_referrers(repo, subject, std::slice::from_ref(m)).await
}

/// Puts the artifact manifests (each with `subject` as its subject, their blobs already in `repo`) by
/// digest — skipping those the registry already has, so an unchanged rebuild writes nothing — and has
/// them listed: by the registry when a PUT is answered with `OCI-Subject` (or, when nothing had to be
/// sent, when the registry serves the referrers API), else in the fallback tag, in one update.
pub async fn put_referrers(repo: &Repository, subject: &Digest, manifests: &[Manifest]) -> Result<Listing> {
    let mut api = None;
    for m in manifests {
        if repo.manifest_digest(m.digest.as_str()).await?.as_ref() == Some(&m.digest) {
            continue;
        }
        if let Put::Stored { oci_subject } = repo.put_manifest_if(m.digest.as_str(), m, &PutIf::Always).await? {
            api = Some(api.unwrap_or(true) && oci_subject.is_some());
        }
    }
    let api = match api {
        Some(api) => api,
        // Nothing sent: whether the registry keeps the list is asked directly (one GET).
        None => repo.get_referrers(subject, None).await?.is_some(),
    };
    if api {
        return Ok(Listing::Registry);
    }
    let entries = manifests.iter().map(Referrer::of).collect::<Result<Vec<_>>>()?;
    add_to_fallback_tag(repo, subject, &entries).await
}

/// The fallback tag of a subject: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.hex())
}

/// Why a fallback tag's manifest is not a referrers list, or `None` when it is one.
fn unusable(tag: &str, m: &Manifest, subject: &Digest) -> Option<String> {
    if m.digest == *subject {
        return Some(format!(
            "the registry answers the fallback tag {tag} with the image itself (GitLab's registry resolves \
             sha256-<hex> tags to the digest): it has no referrers API and no usable fallback tag"
        ));
    }
    if !media::is_index(&m.media_type) {
        return Some(format!("the fallback tag {tag} is a {}, not an image index: it is left alone", m.media_type));
    }
    None
}

/// The entries of a fallback index.
fn entries(m: &Manifest) -> Result<Vec<Value>> {
    let v: Value = serde_json::from_slice(&m.bytes)
        .map_err(|e| Error::other(format!("the fallback tag's index {} is not JSON: {e}", m.digest)))?;
    Ok(v.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default())
}

fn lists(entries: &[Value], digest: &Digest) -> bool {
    entries.iter().any(|e| e.get("digest").and_then(Value::as_str) == Some(digest.as_str()))
}

/// Adds `new` to the fallback tag of `subject` (see the module docs) through the one read-merge-write
/// loop of [`super::append`]: entries already listed are not added again (all listed: no write).
async fn add_to_fallback_tag(repo: &Repository, subject: &Digest, new: &[Referrer]) -> Result<Listing> {
    let tag = fallback_tag(subject);
    let what = || {
        let digests: Vec<String> = new.iter().map(|e| e.digest.short().to_string()).collect();
        format!("adding {} to the fallback tag {}/{}:{tag}", digests.join(", "), repo.client.host(), repo.name)
    };
    let merge = |current: Option<&Manifest>| -> Result<Merge> {
        let (mut index, listed) = match current {
            None => (json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []}), Vec::new()),
            Some(m) => {
                if let Some(reason) = unusable(&tag, m, subject) {
                    return Ok(Merge::Unusable(reason));
                }
                let listed = entries(m)?;
                (serde_json::from_slice::<Value>(&m.bytes).expect("parsed by entries()"), listed)
            }
        };
        let missing: Vec<&Referrer> = new.iter().filter(|e| !lists(&listed, &e.digest)).collect();
        if missing.is_empty() {
            return Ok(Merge::Present);
        }
        if !index["manifests"].is_array() {
            index["manifests"] = json!([]);
        }
        let list = index["manifests"].as_array_mut().expect("an array");
        list.extend(missing.iter().map(|e| serde_json::to_value(e).expect("a descriptor serializes")));
        if index.get("mediaType").is_none() {
            index["mediaType"] = json!(media::OCI_INDEX);
        }
        let bytes = serde_json::to_vec(&index).expect("a JSON value serializes");
        Ok(Merge::Write { manifest: Manifest::new(media::OCI_INDEX, bytes), blobs: Vec::new() })
    };
    let present = |m: &Manifest| -> Result<bool> {
        if unusable(&tag, m, subject).is_some() {
            return Ok(false);
        }
        let listed = entries(m)?;
        Ok(new.iter().all(|e| lists(&listed, &e.digest)))
    };
    let done = append(repo, &tag, merge, present).await.with_context(what)?;
    Ok(match done.unusable {
        Some(reason) => Listing::Unlisted { reason },
        None => Listing::FallbackTag { tag, writes: done.writes },
    })
}

/// What is attached to one image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrers {
    /// Where the list came from: `api`, `fallback-tag`, or `none` (with `reason`).
    pub source: Source,
    pub referrers: Vec<Referrer>,
}

/// Where [`list`] found the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// `GET /v2/<name>/referrers/<digest>`.
    Api,
    /// The fallback tag `sha256-<hex>` (absent: nothing attached).
    FallbackTag { tag: String },
    /// No usable list (`reason` says why: GitLab's registry resolving the tag to the image, or a tag
    /// that is not an index).
    None { reason: String },
}

/// What is attached to `subject` in `repo`, filtered to `artifact_type` when given: the referrers
/// API's answer when the registry has one (filtered here when `OCI-Filters-Applied` does not say the
/// registry did), else the fallback tag's entries.
pub async fn list(repo: &Repository, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
    let keep = |r: &Referrer| artifact_type.is_none_or(|t| r.artifact_type.as_deref() == Some(t));
    let parse = |entries: Vec<Value>| -> Vec<Referrer> {
        entries.into_iter().filter_map(|e| serde_json::from_value::<Referrer>(e).ok()).filter(keep).collect()
    };
    if let Some(page) = repo.get_referrers(subject, artifact_type).await? {
        let filtered =
            page.filters_applied.as_deref().is_some_and(|f| f.split(',').any(|x| x.trim() == "artifactType"));
        let referrers = if filtered {
            page.manifests.into_iter().filter_map(|e| serde_json::from_value::<Referrer>(e).ok()).collect()
        } else {
            // The registry ignored `?artifactType=` (it may: the spec makes filtering optional).
            parse(page.manifests)
        };
        return Ok(Referrers { source: Source::Api, referrers });
    }
    let tag = fallback_tag(subject);
    let found = repo.get_manifest_etag(&tag).await?;
    let Some((m, _)) = found else {
        return Ok(Referrers { source: Source::FallbackTag { tag }, referrers: Vec::new() });
    };
    if let Some(reason) = unusable(&tag, &m, subject) {
        return Ok(Referrers { source: Source::None { reason }, referrers: Vec::new() });
    }
    Ok(Referrers { source: Source::FallbackTag { tag }, referrers: parse(entries(&m)?) })
}

/// One attached artifact and what is attached to it in turn.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    #[serde(flatten)]
    pub referrer: Referrer,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<Node>,
}

/// Everything attached to `subject`, recursively (a signature of an SBOM too), [`MAX_DEPTH`] deep;
/// `artifact_type` filters the first level only. Returns the first level's source and the nodes.
pub async fn tree(repo: &Repository, subject: &Digest, artifact_type: Option<&str>) -> Result<(Source, Vec<Node>)> {
    let top = list(repo, subject, artifact_type).await?;
    let mut seen = HashSet::from([subject.clone()]);
    let nodes = below(repo, top.referrers, 1, &mut seen).await?;
    Ok((top.source, nodes))
}

fn below<'a>(
    repo: &'a Repository,
    referrers: Vec<Referrer>,
    depth: usize,
    seen: &'a mut HashSet<Digest>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Node>>> + Send + 'a>> {
    Box::pin(async move {
        let mut nodes = Vec::new();
        for r in referrers {
            if !seen.insert(r.digest.clone()) {
                continue;
            }
            let children = if depth < MAX_DEPTH {
                let next = list(repo, &r.digest, None).await?.referrers;
                below(repo, next, depth + 1, seen).await?
            } else {
                Vec::new()
            };
            nodes.push(Node { referrer: r, referrers: children });
        }
        Ok(nodes)
    })
}

/// What [`copy`] copied.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Copied {
    /// Attached artifacts copied (every level).
    pub referrers: usize,
    /// Legacy cosign tags copied (`sha256-<hex>.sig` / `.att`).
    pub cosign_tags: Vec<String>,
    pub blobs: Vec<BlobReport>,
}

/// Copies everything attached to each of `subjects` (digests present in both `src` and `dest`'s
/// repositories: an image, or an index and its children) from `src`'s repository to `dest`'s,
/// recursively, each artifact through the push engine's blob step and [`put_referrer`] (the
/// destination's API or its fallback tag, rebuilt there); plus the legacy cosign tags
/// `sha256-<hex>.sig` and `.att` of every digest copied, under the same tags. Nothing to do when both
/// are the same repository.
pub async fn copy(
    src: &Reference,
    dest: &Reference,
    subjects: &[Digest],
    clients: &Clients<'_>,
    reporter: &Arc<Reporter>,
) -> Result<Copied> {
    let mut copied = Copied::default();
    if src.api_host() == dest.api_host() && src.repository() == dest.repository() {
        return Ok(copied);
    }
    let ctx = || format!("copying what is attached to {} to {}", src.name(), dest.name());
    let from = open(clients, src, "pull").await.with_context(ctx)?;
    let (to, _) =
        open_for_push(clients, dest.api_host(), dest.repository(), &[], &[], reporter).await.with_context(ctx)?;
    let mut seen: HashSet<Digest> = HashSet::new();
    // (subject, depth): artifacts attached to each are copied, then what is attached to those.
    let mut queue: Vec<(Digest, usize)> = subjects.iter().map(|d| (d.clone(), 0)).collect();
    while let Some((subject, depth)) = queue.pop() {
        if !seen.insert(subject.clone()) {
            continue;
        }
        copy_cosign_tags(&from, &to, src, dest, &subject, clients, reporter, &mut copied).await.with_context(ctx)?;
        if depth >= MAX_DEPTH {
            continue;
        }
        let found = list(&from, &subject, None).await.with_context(ctx)?;
        if let Source::None { reason } = &found.source {
            reporter.note(&format!("{}@{}: {reason}", src.name(), subject.short()));
        }
        for r in found.referrers {
            let rctx = || format!("copying {} {} attached to {}", r.kind(), r.digest.short(), subject.short());
            let artifact = read(&from, &src.with_digest(r.digest.clone()), None).await.with_context(rctx)?;
            let (repo, mount_from) =
                open_for_push(clients, dest.api_host(), dest.repository(), &artifact.blobs, &[], reporter)
                    .await
                    .with_context(rctx)?;
            let reports =
                push_blobs(&repo, &artifact.blobs, &mount_from, clients, reporter).await.with_context(rctx)?;
            copied.blobs.extend(reports);
            let (root, children) = artifact.manifests.split_last().expect("an artifact has a root");
            for m in children {
                repo.put_manifest(m.digest.as_str(), m).await.with_context(rctx)?;
            }
            let listing = put_referrer(&repo, &subject, root).await.with_context(rctx)?;
            if let Listing::Unlisted { reason } = listing {
                reporter.warn(&format!(
                    "{} {} is copied to {} but not listed as a referrer there: {reason}",
                    r.kind(),
                    r.digest,
                    dest.name()
                ));
            }
            copied.referrers += 1;
            queue.push((r.digest.clone(), depth + 1));
        }
    }
    if copied.referrers > 0 || !copied.cosign_tags.is_empty() {
        reporter.note(&format!(
            "copied {} attached artifact{} and {} cosign tag{} to {}",
            copied.referrers,
            if copied.referrers == 1 { "" } else { "s" },
            copied.cosign_tags.len(),
            if copied.cosign_tags.len() == 1 { "" } else { "s" },
            dest.name()
        ));
    }
    Ok(copied)
}

/// Copies `sha256-<hex>.sig` and `.att` of `subject` when `from` has them (the tag is replaced at the
/// destination: it names the same digest's signatures).
#[allow(clippy::too_many_arguments)]
async fn copy_cosign_tags(
    from: &Repository,
    to: &Repository,
    src: &Reference,
    dest: &Reference,
    subject: &Digest,
    clients: &Clients<'_>,
    reporter: &Arc<Reporter>,
    copied: &mut Copied,
) -> Result<()> {
    for suffix in COSIGN_TAG_SUFFIXES {
        let tag = format!("{}{suffix}", fallback_tag(subject));
        let Some(digest) = from.manifest_digest(&tag).await? else { continue };
        if digest == *subject {
            // A registry resolving the tag to the image itself (GitLab's quirk): not a cosign tag.
            continue;
        }
        if to.manifest_digest(&tag).await? == Some(digest.clone()) {
            continue;
        }
        let artifact = read(from, &src.with_tag(&tag)?, None).await?;
        crate::push::push_with(&artifact, &[dest.with_tag(&tag)?], clients, reporter)
            .await
            .map(|report| copied.blobs.extend(report.blobs))?;
        copied.cosign_tags.push(tag);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn subject() -> Subject {
        Subject { media_type: media::OCI_MANIFEST.into(), digest: Digest::sha256_of(b"image"), size: 5 }
    }

    #[test]
    fn build_makes_an_oci_1_1_artifact_manifest() {
        let a = Attachment {
            artifact_type: "application/vnd.example.sbom".into(),
            annotations: BTreeMap::from([("org.example.k".into(), "v".into())]),
            layers: vec![Layer {
                media_type: "application/spdx+json".into(),
                bytes: Bytes::from_static(b"{\"spdx\":1}"),
                annotations: BTreeMap::from([("sig".into(), "abc".into())]),
            }],
            config_media_type: None,
        };
        let (m, blobs) = build(&subject(), &a).unwrap();
        let v: Value = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(v["artifactType"], "application/vnd.example.sbom");
        assert_eq!(v["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(v["config"]["digest"], "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(v["config"]["size"], 2);
        assert_eq!(v["subject"]["digest"], subject().digest.as_str());
        assert_eq!(v["layers"][0]["annotations"]["sig"], "abc");
        assert_eq!(blobs.len(), 2);
        let r = Referrer::of(&m).unwrap();
        assert_eq!(r.artifact_type.as_deref(), Some("application/vnd.example.sbom"));
        assert_eq!(r.annotations.get("org.example.k").map(String::as_str), Some("v"));
        assert_eq!(r.size, m.bytes.len() as u64);
    }

    #[test]
    fn an_empty_payload_gets_the_empty_layer_and_a_type_is_required() {
        let a = Attachment { artifact_type: "application/vnd.example.marker".into(), ..Default::default() };
        let (m, blobs) = build(&subject(), &a).unwrap();
        let v: Value = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(v["layers"][0]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(blobs.len(), 1);
        assert!(build(&subject(), &Attachment::default()).is_err());
    }

    #[test]
    fn referrer_falls_back_to_the_config_media_type() {
        let bytes = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.old.sig","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let r = Referrer::of(&Manifest::new(media::OCI_MANIFEST, &bytes[..])).unwrap();
        assert_eq!(r.artifact_type.as_deref(), Some("application/vnd.old.sig"));
    }

    /// A registry on loopback holding manifests in memory that honours conditional writes (`ETag` on
    /// GET; `If-Match` / `If-None-Match: *` on PUT, 412 when they fail) and has no referrers API; counts
    /// the 412s it answered.
    async fn conditional_registry() -> (Repository, Arc<std::sync::atomic::AtomicUsize>) {
        use axum::http::{HeaderMap, StatusCode as S};
        use axum::routing::get;
        use std::collections::HashMap;
        use std::sync::Mutex;
        type Store = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;
        let store: Store = Arc::default();
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (get_store, put_store, put_refused) = (store.clone(), store.clone(), refused.clone());
        let router = axum::Router::new()
            .route(
                "/v2/app/manifests/{reference}",
                get(move |axum::extract::Path(r): axum::extract::Path<String>| {
                    let store = get_store.clone();
                    async move {
                        match store.lock().unwrap().get(&r) {
                            Some((ct, b)) => {
                                let etag = format!("\"{}\"", Digest::sha256_of(b));
                                (S::OK, [("content-type", ct.clone()), ("etag", etag)], b.clone())
                            }
                            None => (
                                S::NOT_FOUND,
                                [("content-type", "application/json".into()), ("etag", String::new())],
                                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#.to_vec(),
                            ),
                        }
                    }
                })
                .put(
                    move |axum::extract::Path(r): axum::extract::Path<String>, h: HeaderMap, body: Bytes| {
                        let (store, refused) = (put_store.clone(), put_refused.clone());
                        async move {
                            // A slow registry: racing writers overlap.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            let mut map = store.lock().unwrap();
                            let current = map.get(&r).map(|(_, b)| format!("\"{}\"", Digest::sha256_of(b)));
                            let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
                            let ok = match (header("if-match"), header("if-none-match")) {
                                (Some(m), _) => current.as_deref() == Some(m.as_str()),
                                (None, Some(_)) => current.is_none(),
                                (None, None) => true,
                            };
                            if !ok {
                                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                return S::PRECONDITION_FAILED;
                            }
                            let ct = header("content-type").unwrap_or_default();
                            map.insert(r, (ct, body.to_vec()));
                            S::CREATED
                        }
                    },
                ),
            )
            .route("/v2/", get(|| async { "{}" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let client = crate::registry::Client::connect(&host, &Default::default(), None).await.unwrap();
        let retry = crate::registry::ops::RetryPolicy { retries: 0, ..Default::default() };
        (Repository::new(client, "app", "pull,push", &[], retry), refused)
    }

    #[tokio::test]
    async fn eight_racing_writers_with_conditional_writes_lose_nothing() {
        let (repo, refused) = conditional_registry().await;
        let repo = Arc::new(repo);
        let subject = Digest::sha256_of(b"image");
        let entries: Vec<Referrer> = (0..8)
            .map(|i| Referrer {
                media_type: media::OCI_MANIFEST.into(),
                digest: Digest::sha256_of(format!("artifact {i}").as_bytes()),
                size: 100,
                artifact_type: Some(format!("application/vnd.example.{i}")),
                annotations: BTreeMap::from([("i".to_string(), i.to_string())]),
            })
            .collect();
        let tasks: Vec<_> = entries
            .iter()
            .cloned()
            .map(|e| {
                let (repo, subject) = (repo.clone(), subject.clone());
                tokio::spawn(async move { add_to_fallback_tag(&repo, &subject, std::slice::from_ref(&e)).await })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await.unwrap().unwrap(), Listing::FallbackTag { .. }));
        }
        let listed = list(&repo, &subject, None).await.unwrap();
        assert_eq!(listed.source, Source::FallbackTag { tag: fallback_tag(&subject) });
        let mut got: Vec<Digest> = listed.referrers.iter().map(|r| r.digest.clone()).collect();
        let mut want: Vec<Digest> = entries.iter().map(|r| r.digest.clone()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "every entry once");
        assert_eq!(listed.referrers.iter().find(|r| r.digest == entries[3].digest), Some(&entries[3]));
        // The writers did race (the registry refused stale writes) and recovered by re-reading.
        assert!(refused.load(std::sync::atomic::Ordering::Relaxed) > 0, "no write was ever refused");
        // Filtering by artifact type, client-side (no API).
        let one = list(&repo, &subject, Some("application/vnd.example.5")).await.unwrap();
        assert_eq!(one.referrers, vec![entries[5].clone()]);
    }

    #[tokio::test]
    async fn several_entries_are_listed_in_one_write_and_what_is_listed_is_not_written_again() {
        let (repo, _) = conditional_registry().await;
        let subject = Digest::sha256_of(b"image");
        let entry = |i: usize| Referrer {
            media_type: media::OCI_MANIFEST.into(),
            digest: Digest::sha256_of(format!("document {i}").as_bytes()),
            size: 10 + i as u64,
            artifact_type: Some(format!("application/vnd.example.{i}")),
            annotations: BTreeMap::new(),
        };
        let three: Vec<Referrer> = (0..3).map(entry).collect();
        let tag = fallback_tag(&subject);
        assert_eq!(
            add_to_fallback_tag(&repo, &subject, &three).await.unwrap(),
            Listing::FallbackTag { tag: tag.clone(), writes: 1 }
        );
        assert_eq!(
            add_to_fallback_tag(&repo, &subject, &three).await.unwrap(),
            Listing::FallbackTag { tag: tag.clone(), writes: 0 },
            "everything listed already: no write"
        );
        let four: Vec<Referrer> = (0..4).map(entry).collect();
        assert_eq!(
            add_to_fallback_tag(&repo, &subject, &four[1..]).await.unwrap(),
            Listing::FallbackTag { tag: tag.clone(), writes: 1 }
        );
        let listed = list(&repo, &subject, None).await.unwrap();
        assert_eq!(listed.referrers, four, "each entry once, in the order added");
    }

    #[test]
    fn a_fallback_tag_that_is_the_image_or_not_an_index_is_unusable() {
        let s = subject();
        let image = Manifest::new(media::OCI_MANIFEST, &b"image"[..]);
        assert_eq!(image.digest, s.digest);
        let tag = fallback_tag(&s.digest);
        assert!(tag.starts_with("sha256-") && tag.len() == 7 + 64);
        assert!(unusable(&tag, &image, &s.digest).unwrap().contains("GitLab"));
        let other = Manifest::new(media::OCI_MANIFEST, &b"other"[..]);
        assert!(unusable(&tag, &other, &s.digest).unwrap().contains("not an image index"));
        let index = Manifest::new(media::OCI_INDEX, &br#"{"schemaVersion":2,"manifests":[]}"#[..]);
        assert_eq!(unusable(&tag, &index, &s.digest), None);
    }
}
