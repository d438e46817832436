//! Adding entries to a document kept under a tag that several jobs may update at once — cosign's
//! `sha256-<hex>.sig` and `.att` tags (one layer per signature or attestation) and the referrers
//! fallback index `sha256-<hex>` ([`super::referrers`]; one descriptor per attached artifact). One
//! read-merge-write loop serves them all: read the tag, add what is missing, write it back.
//!
//! Race safety: the write is conditional (`If-Match` on the ETag read, `If-None-Match: *` for a new
//! tag) and a 412 means "read again". distribution 2.8 — and so Harbor's registry — ignores both
//! headers, so a write can silently replace another job's: after writing, hoist waits a little longer
//! than a read-modify-write takes and reads the tag again, twice; if an entry is gone it adds it again.
//! A job that read before our write finishes its own write within that wait, so what we then see stays.
//! Bounded: [`MAX_ROUNDS`] rounds and [`MAX_TIME`]. Callers that add several entries to one tag add
//! them in one call, so the waits are paid once (a build's SBOMs and provenance: one update).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::error::{Error, Result};
use crate::model::{Blob, Manifest};
use crate::registry::ops::{NoProgress, Put, PutIf, Repository};

/// Read-modify-write rounds before giving up (8 parallel writers settle well within it).
pub const MAX_ROUNDS: usize = 32;
/// Time spent on one tag update before giving up.
const MAX_TIME: Duration = Duration::from_secs(120);
/// Confirmations (re-reads after a wait) that must each see the entries.
const CONFIRMATIONS: usize = 2;

/// What to do with the tag's current manifest.
pub enum Merge {
    /// Every entry is there already.
    Present,
    /// Write this manifest (after uploading `blobs` the registry lacks).
    Write { manifest: Manifest, blobs: Vec<Blob> },
    /// The tag holds something that is not this kind of document: it is left alone, for this reason.
    Unusable(String),
}

/// What [`append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Writes of the tag the registry took (0: every entry was already there).
    pub writes: u32,
    /// Read-modify-write rounds taken (more than one: another job wrote at the same time).
    pub rounds: usize,
    /// Set when the tag was found unusable ([`Merge::Unusable`]) and left alone.
    pub unusable: Option<String>,
}

impl Appended {
    /// Whether hoist wrote the tag.
    pub fn written(&self) -> bool {
        self.writes > 0
    }
}

/// Adds entries to the document under `tag`: `merge` gets the current manifest (`None`: no tag yet)
/// and says what to write; `present` tells whether a manifest read back holds every entry.
pub async fn append(
    repo: &Repository,
    tag: &str,
    merge: impl Fn(Option<&Manifest>) -> Result<Merge>,
    present: impl Fn(&Manifest) -> Result<bool>,
) -> Result<Appended> {
    let began = Instant::now();
    let mut writes = 0u32;
    for round in 1..=MAX_ROUNDS {
        if began.elapsed() > MAX_TIME {
            break;
        }
        let started = Instant::now();
        let (current, precondition) = read(repo, tag).await?;
        let (manifest, blobs) = match merge(current.as_ref())? {
            // Already there; or our earlier write was replaced and someone else's carried ours along.
            Merge::Present => return Ok(Appended { writes, rounds: round, unusable: None }),
            Merge::Unusable(reason) => return Ok(Appended { writes, rounds: round, unusable: Some(reason) }),
            Merge::Write { manifest, blobs } => (manifest, blobs),
        };
        for blob in &blobs {
            if !repo.blob_exists(&blob.digest).await? {
                repo.upload_blob(blob, &[], None, Arc::new(NoProgress)).await?;
            }
        }
        if repo.put_manifest_if(tag, &manifest, &precondition).await? == Put::PreconditionFailed {
            // Another writer got in first: re-read and merge again after a short wait.
            tokio::time::sleep(jitter(Duration::from_millis(20 * round.min(10) as u64))).await;
            continue;
        }
        writes += 1;
        // Wait longer than another job's read-modify-write takes, then check ours survived.
        let settle = (started.elapsed() * 3).clamp(Duration::from_millis(150), Duration::from_secs(2));
        let mut kept = true;
        for _ in 0..CONFIRMATIONS {
            tokio::time::sleep(jitter(settle)).await;
            match read(repo, tag).await?.0 {
                Some(m) if present(&m)? => {}
                _ => {
                    kept = false;
                    break;
                }
            }
        }
        if kept {
            return Ok(Appended { writes, rounds: round, unusable: None });
        }
    }
    Err(Error::other(format!(
        "adding to {}/{}:{tag}: other jobs kept replacing it; gave up after {writes} writes in {:.0} s",
        repo.client.host(),
        repo.name,
        began.elapsed().as_secs_f64()
    ))
    .with_hint(
        "many jobs are updating this tag at once on a registry without conditional writes: run the job again; \
         on Harbor, a tag immutability rule matching the tag refuses every write with 412",
    ))
}

/// The tag's manifest and what to make the write back conditional on.
async fn read(repo: &Repository, tag: &str) -> Result<(Option<Manifest>, PutIf)> {
    Ok(match repo.get_manifest_etag(tag).await? {
        None => (None, PutIf::NoneMatch),
        Some((m, etag)) => (Some(m), etag.map_or(PutIf::Always, PutIf::Match)),
    })
}

/// `base` plus up to half of it again, at random, so parallel jobs do not stay in step.
fn jitter(base: Duration) -> Duration {
    base + base.mul_f64(rand::rng().random_range(0.0..0.5))
}
