//! Base images: resolving a FROM reference in its registry (or a mirror of it, see
//! [`crate::registry::mirrors`]) — the manifest (the platform's entry when the tag is an index) and
//! the config — without downloading a single layer. The layers are reused
//! by descriptor; the push engine mounts or streams them. Only an OCI layout output needs their bytes
//! ([`fetch_remote_blobs`]).

use super::source::{BaseImage, Platform};
use crate::error::{Context, Error, Result};
use crate::model::{media, Artifact, BlobSource, Digest, OciImageIndex, OciImageManifest, Reference};
use crate::push::Clients;
use crate::registry::mirrors::Mirrors;
use crate::registry::ops::{NoProgress, Progress, Repository, RetryPolicy};

/// The media type a manifest declares, or what its shape says.
fn kind_of(media_type: &str, bytes: &[u8]) -> String {
    if !media_type.is_empty() && media_type != "application/json" {
        return media_type.to_string();
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    match v.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => m.to_string(),
        None if v.get("manifests").is_some() => media::OCI_INDEX.to_string(),
        None => media::OCI_MANIFEST.to_string(),
    }
}

/// Picks the manifest for `platform` from an index.
pub fn pick_platform(index: &OciImageIndex, platform: &Platform) -> Option<(Digest, String)> {
    let matches = |variant_must_match: bool| {
        index.manifests.iter().find(|m| {
            m.platform.as_ref().is_some_and(|p| {
                p.os.to_string() == platform.os
                    && p.architecture.to_string() == platform.architecture
                    && (!variant_must_match || platform.variant.is_none() || p.variant == platform.variant)
            })
        })
    };
    let m = matches(true).or_else(|| matches(false))?;
    Some((m.digest.parse().ok()?, m.media_type.clone()))
}

/// Resolves `image` for `platform` through `clients`, trying its registry mirrors first and the
/// origin last; also returns notes on mirrors that failed (worth a warning when the origin then
/// served the image).
pub async fn resolve(
    clients: &Clients<'_>,
    image: &str,
    platform: &Platform,
    retry: RetryPolicy,
    mirrors: &Mirrors,
) -> Result<(BaseImage, Vec<String>)> {
    let reference: Reference =
        image.parse().map_err(|e: Error| Error::usage(format!("FROM {image}: {}", e.message())))?;
    let candidates = mirrors.candidates(&reference)?;
    let mut notes = Vec::new();
    let last = candidates.len() - 1;
    for (i, source) in candidates.into_iter().enumerate() {
        match resolve_at(clients, image, &source, platform, retry).await {
            Ok((digest, config, layers, index)) => {
                return Ok((BaseImage { reference, source, digest, config, layers, index }, notes));
            }
            Err(e) if i < last => notes.push(format!("mirror {source} for {image}: {e}; trying the next source")),
            Err(e) if i > 0 => return Err(e.with_hint(format!("its mirrors failed too: {}", notes.join("; ")))),
            Err(e) => return Err(e),
        }
    }
    unreachable!("the origin is always a candidate")
}

/// The manifest digest, config and layers of `image` as `source` serves it (the platform's manifest
/// when it is an index), and the index's digest when it was one.
pub(crate) async fn resolve_at(
    clients: &Clients<'_>,
    image: &str,
    source: &Reference,
    platform: &Platform,
    retry: RetryPolicy,
) -> Result<(Digest, serde_json::Value, Vec<crate::model::OciDescriptor>, Option<Digest>)> {
    let ctx = || {
        if source.to_string() == image {
            format!("resolving base image {image}")
        } else {
            format!("resolving base image {image} at {source}")
        }
    };
    let client = clients.get(source.api_host()).await.with_context(ctx)?;
    let repo = Repository::new(client, source.repository(), "pull", &[], retry);
    let mut manifest = repo.get_manifest(&source.manifest_reference()).await.with_context(ctx)?;
    let mut kind = kind_of(&manifest.media_type, &manifest.bytes);
    let mut index_digest = None;
    if media::is_index(&kind) {
        index_digest = Some(manifest.digest.clone());
        let index: OciImageIndex = serde_json::from_slice(&manifest.bytes)
            .map_err(|e| Error::other(format!("the image index is not valid: {e}")).context(ctx()))?;
        let (digest, _) = pick_platform(&index, platform).ok_or_else(|| {
            let have: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(|p| format!("{}/{}", p.os, p.architecture)))
                .collect();
            Error::usage(format!("{image} has no image for {platform}"))
                .with_hint(format!("it has: {}", have.join(", ")))
        })?;
        manifest = repo.get_manifest(digest.as_str()).await.with_context(ctx)?;
        kind = kind_of(&manifest.media_type, &manifest.bytes);
    }
    if !media::is_manifest(&kind) {
        return Err(Error::other(format!("{image} is a {kind:?}, not an image")).context(ctx()));
    }
    let m: OciImageManifest = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| Error::other(format!("the image manifest is not valid: {e}")).context(ctx()))?;
    let config_digest: Digest = m.config.digest.parse()?;
    let config_bytes = repo.get_blob_bytes(&config_digest).await.with_context(ctx)?;
    let config: serde_json::Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::other(format!("the image config is not JSON: {e}")).context(ctx()))?;
    Ok((manifest.digest, config, m.layers, index_digest))
}

/// Downloads every registry-held blob of `artifact` into `dir` (for an OCI layout output), turning
/// them into file blobs. Digests are verified.
pub async fn fetch_remote_blobs(
    artifact: &mut Artifact,
    clients: &Clients<'_>,
    retry: RetryPolicy,
    dir: &std::path::Path,
) -> Result<()> {
    for blob in &mut artifact.blobs {
        let BlobSource::Remote { registry, repository } = &blob.source else { continue };
        let path = dir.join(format!("base-{}", blob.digest.hex()));
        download_blob(clients, registry, repository, &blob.digest, blob.size, &path, retry).await?;
        blob.source = BlobSource::File { path, offset: 0 };
    }
    Ok(())
}

/// Streams one blob of `registry/repository` into `path` (through a temporary file beside it,
/// renamed into place once its digest and size are verified, so a reader never sees half a blob).
pub async fn download_blob(
    clients: &Clients<'_>,
    registry: &str,
    repository: &str,
    digest: &Digest,
    size: u64,
    path: &std::path::Path,
    retry: RetryPolicy,
) -> Result<()> {
    download_blob_with(clients, registry, repository, digest, size, path, retry, &NoProgress).await
}

/// [`download_blob`], telling `progress` of every byte received.
#[allow(clippy::too_many_arguments)]
pub async fn download_blob_with(
    clients: &Clients<'_>,
    registry: &str,
    repository: &str,
    digest: &Digest,
    size: u64,
    path: &std::path::Path,
    retry: RetryPolicy,
    progress: &dyn Progress,
) -> Result<()> {
    let host = crate::model::api_host(registry);
    let ctx = || format!("downloading layer {} from {registry}/{repository}", digest.short());
    let client = clients.get(host).await.with_context(ctx)?;
    let repo = Repository::new(client, repository, "pull", &[], retry);
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(ctx(), e))?;
    // The one verified, retried download (size and digest checked before the rename).
    repo.download_blob(digest, size, tmp.as_file(), progress).await.with_context(ctx)?;
    tmp.persist(path).map_err(|e| Error::io(ctx(), e.error))?;
    Ok(())
}
