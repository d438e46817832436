//! `hoist pull`: an image from a registry onto disk — into an OCI image layout (every platform, or
//! one), written through the layout writer: each blob downloaded to a temporary file, verified, then
//! renamed into place; manifests and `index.json` last, each replaced atomically. Blobs the layout
//! already holds are not downloaded again.

use std::path::Path;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{open, read};
use crate::builder::plan::Platform;
use crate::error::{Context, Error, Result};
use crate::layout::oci::{self, NewBlob};
use crate::model::{Blob, BlobSource, Reference};
use crate::progress::Reporter;
use crate::push::{BlobReport, Clients, PushReport};
use crate::registry::ops::{BlobOutcome, Repository};

/// Pulls `reference` (only `platform`'s image when given) into the OCI layout at `dir`, naming it
/// `tag` in `index.json` (untagged when `None`). `jobs` blobs download at once.
pub async fn to_layout(
    clients: &Clients<'_>,
    reference: &Reference,
    platform: Option<&Platform>,
    dir: &Path,
    tag: Option<&str>,
    reporter: &Arc<Reporter>,
) -> Result<PushReport> {
    let started = std::time::Instant::now();
    let ctx = || format!("pulling {reference} to {}", dir.display());
    refuse_foreign_dir(dir).with_context(ctx)?;
    let repo = open(clients, reference, "pull").await.with_context(ctx)?;
    let mut artifact = read(&repo, reference, platform).await.with_context(ctx)?;
    let blobs: Vec<BlobReport> = stream::iter(&artifact.blobs)
        .map(|b| fetch(&repo, b, dir, reporter))
        .buffer_unordered(clients.options().jobs.max(1))
        .try_collect()
        .await
        .with_context(ctx)?;
    for b in &mut artifact.blobs {
        b.source = BlobSource::File { path: oci::blob_path(dir, &b.digest), offset: 0 };
    }
    oci::write(dir, &artifact, tag)?;
    let root = artifact.root();
    let name = match tag {
        Some(t) => format!("oci:{}:{t}", dir.display()),
        None => format!("oci:{}", dir.display()),
    };
    Ok(PushReport {
        references: vec![name],
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        size: root.bytes.len() as u64,
        blobs,
        seconds: started.elapsed().as_secs_f64(),
        retries: repo.retry_counts(),
    })
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
    let report = |outcome, bytes, seconds| BlobReport {
        repository: format!("{}/{}", repo.client.host(), repo.name),
        digest: blob.digest.clone(),
        media_type: blob.media_type.clone(),
        size: blob.size,
        outcome,
        bytes,
        seconds,
    };
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
