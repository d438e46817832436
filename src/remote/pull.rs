//! `hoist pull`: an image from a registry onto disk — into an OCI image layout (every platform, or
//! one), written through the layout writer: each blob downloaded to a temporary file, verified, then
//! renamed into place; manifests and `index.json` last, each replaced atomically. Blobs the layout
//! already holds are not downloaded again.
//!
//! Sources are read through registry mirrors (`--registry-mirror`, `HOIST_REGISTRY_MIRRORS`,
//! registries.conf) first, the origin last.
//!
//! Or one platform's filesystem ([`to_rootfs`]), unpacked by the one unpacker ([`crate::rootfs`]).
//! Its layers are first downloaded (in parallel) to a spool and verified, then applied in order: a
//! byte is unpacked only once its layer's digest is proven, and a retry can start a layer over,
//! which a tar stream half-applied to the tree could not.

use std::path::Path;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{read_via, Parsed};
use crate::builder::source::Platform;
use crate::error::{Context, Error, Result};
use crate::layout::oci::{self, NewBlob};
use crate::model::{Blob, BlobSource, Manifest, Reference};
use crate::progress::Reporter;
use crate::push::{BlobReport, Clients, PushReport};
use crate::registry::mirrors::Mirrors;
use crate::registry::ops::{BlobOutcome, Repository};

/// Pulls `reference` (only `platform`'s image when given) into the OCI layout at `dir`, naming it
/// `tag` in `index.json` (untagged when `None`). `jobs` blobs download at once.
pub async fn to_layout(
    clients: &Clients<'_>,
    reference: &Reference,
    platform: Option<&Platform>,
    mirrors: &Mirrors,
    dir: &Path,
    tag: Option<&str>,
    reporter: &Arc<Reporter>,
) -> Result<PushReport> {
    let started = std::time::Instant::now();
    let ctx = || format!("pulling {reference} to {}", dir.display());
    refuse_foreign_dir(dir).with_context(ctx)?;
    let (repo, mut artifact) = read_via(clients, reference, platform, mirrors, reporter).await.with_context(ctx)?;
    let blobs = fetch_all(&repo, artifact.blobs.iter(), dir, clients, reporter).await.with_context(ctx)?;
    for b in &mut artifact.blobs {
        b.source = BlobSource::File { path: oci::blob_path(dir, &b.digest), offset: 0 };
    }
    oci::write(dir, &artifact, tag)?;
    let name = match tag {
        Some(t) => format!("oci:{}:{t}", dir.display()),
        None => format!("oci:{}", dir.display()),
    };
    Ok(report(name, artifact.root(), blobs, started, &repo))
}

/// The report of a pull: what was written where, and what happened to each blob.
fn report(
    name: String,
    root: &Manifest,
    blobs: Vec<BlobReport>,
    started: std::time::Instant,
    repo: &Repository,
) -> PushReport {
    PushReport {
        references: vec![name],
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        size: root.bytes.len() as u64,
        blobs,
        seconds: started.elapsed().as_secs_f64(),
        retries: repo.retry_counts(),
        layers: Vec::new(),
    }
}

/// Downloads `blobs` into the layout (or spool) at `dir`, `--jobs` at a time.
async fn fetch_all<'b>(
    repo: &Repository,
    blobs: impl Iterator<Item = &'b Blob>,
    dir: &Path,
    clients: &Clients<'_>,
    reporter: &Arc<Reporter>,
) -> Result<Vec<BlobReport>> {
    stream::iter(blobs)
        .map(|b| fetch(repo, b, dir, reporter))
        .buffer_unordered(clients.options().jobs.max(1))
        .try_collect()
        .await
}

/// Pulls `platform`'s image of `reference` (the only image, when it is not an index) and unpacks
/// its layers into `dest`, which must be new or empty. Returns the transfer report and what the
/// unpacker materialized.
pub async fn to_rootfs(
    clients: &Clients<'_>,
    reference: &Reference,
    platform: &Platform,
    mirrors: &Mirrors,
    dest: &Path,
    reporter: &Arc<Reporter>,
) -> Result<(PushReport, crate::rootfs::Report)> {
    let started = std::time::Instant::now();
    let ctx = || format!("pulling {reference} ({platform}) to {}", dest.display());
    let (repo, artifact) = read_via(clients, reference, Some(platform), mirrors, reporter).await.with_context(ctx)?;
    let root = artifact.root();
    let Parsed::Image(image) = Parsed::of(root)? else {
        return Err(Error::other("an index inside an index has no single filesystem").context(ctx()));
    };
    let spool = tempfile::Builder::new()
        .prefix("hoist-pull-")
        .tempdir()
        .map_err(|e| Error::io("creating a spool directory", e).context(ctx()))?;
    let layers = image.layers.iter().filter_map(|l| artifact.blobs.iter().find(|b| b.digest == l.digest));
    let blobs = fetch_all(&repo, layers, spool.path(), clients, reporter).await.with_context(ctx)?;
    reporter.note(&format!("unpacking {} layer(s) into {}", image.layers.len(), dest.display()));
    let mut readers = Vec::new();
    for l in &image.layers {
        let path = oci::blob_path(spool.path(), &l.digest);
        let file = std::fs::File::open(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let desc = crate::rootfs::OciDescriptor {
            media_type: l.media_type.clone(),
            digest: l.digest.to_string(),
            size: l.size as i64,
            ..Default::default()
        };
        readers.push((desc, std::io::BufReader::with_capacity(256 * 1024, file)));
    }
    let opts = crate::rootfs::Options { chown: running_as_root(), ..Default::default() };
    let target = dest.to_path_buf();
    let unpacked = tokio::task::spawn_blocking(move || crate::rootfs::apply_layers(readers, &target, &opts))
        .await
        .map_err(|e| Error::other(format!("the unpacking thread failed: {e}")))??;
    drop(spool);
    Ok((report(format!("rootfs:{}", dest.display()), root, blobs, started, &repo), unpacked))
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective uid): only then
/// can the unpacker give files the owners the layers name.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `pulled …: N blobs: D downloaded (X), S already there in T s (rate)`.
pub fn summary(reference: &Reference, report: &PushReport) -> String {
    let downloaded: Vec<&BlobReport> = report.blobs.iter().filter(|b| b.outcome == BlobOutcome::Downloaded).collect();
    let bytes: u64 = downloaded.iter().map(|b| b.bytes).sum();
    format!(
        "pulled {reference} to {}: {} blobs: {} downloaded ({}), {} already there in {:.1} s ({})",
        report.references.join(", "),
        report.blobs.len(),
        downloaded.len(),
        crate::progress::human_bytes(bytes),
        report.blobs.len() - downloaded.len(),
        report.seconds,
        crate::progress::rate(bytes, report.seconds)
    )
}

/// A directory that exists, holds files and is no OCI layout is somebody's data: refuse to write in it.
fn refuse_foreign_dir(dir: &Path) -> Result<()> {
    let Ok(mut entries) = std::fs::read_dir(dir) else { return Ok(()) };
    if entries.next().is_some() && !dir.join("oci-layout").is_file() {
        return Err(Error::usage(format!("{} exists and is not an OCI image layout", dir.display()))
            .with_hint("pull into an empty or new directory, or into an existing layout"));
    }
    Ok(())
}

async fn fetch(repo: &Repository, blob: &Blob, dir: &Path, reporter: &Arc<Reporter>) -> Result<BlobReport> {
    let report = |outcome, bytes, seconds| BlobReport::of(repo, blob, outcome, bytes, seconds);
    if oci::has_blob(dir, &blob.digest, blob.size) {
        reporter.skipped(blob);
        return Ok(report(BlobOutcome::Skipped, 0, 0.0));
    }
    let new = NewBlob::create(dir, &blob.digest)?;
    let progress = reporter.start_as(blob, "downloading");
    repo.download_blob(&blob.digest, blob.size, &new.file, &*progress).await?;
    new.commit()?;
    reporter.finish(&progress, BlobOutcome::Downloaded, blob.size);
    Ok(report(BlobOutcome::Downloaded, blob.size, progress.seconds()))
}
