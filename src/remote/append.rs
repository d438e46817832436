//! Adding an entry to a document kept under a tag that several jobs may update at once — cosign's
//! `sha256-<hex>.sig` tag (one layer per signature). Entries are appended, never replaced: read the
//! tag, add the entry unless it is there, write it back.
//!
//! Race safety: the write is conditional (`If-Match` on the ETag read, `If-None-Match: *` for a new
//! tag) and a 412 means "read again". distribution 2.8 — and so Harbor's registry — ignores both
//! headers, so a write can silently replace another job's: after writing, hoist waits a little longer
//! than a read-modify-write takes and reads the tag again, twice; if its entry is gone it adds it again.
//! A job that read before our write finishes its own write within that wait, so what we then see stays.
//! Bounded: [`MAX_ROUNDS`] rounds. (The referrers fallback index, `sha256-<hex>`, has the same
//! read-merge-write loop specialised in [`super::referrers`]; one could serve both.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::error::{Error, Result};
use crate::model::{Blob, Manifest};
use crate::registry::ops::{NoProgress, Put, PutIf, Repository};

/// Read-modify-write rounds before giving up.
pub const MAX_ROUNDS: usize = 20;
/// Confirmations (re-reads after a wait) that must each see the entry.
const CONFIRMATIONS: usize = 2;

/// What to do with the tag's current manifest.
pub enum Merge {
    /// The entry is there already.
    Present,
    /// Write this manifest (after uploading `blobs` the registry lacks).
    Write { manifest: Manifest, blobs: Vec<Blob> },
}

/// What [`append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// False when the entry was already there.
    pub written: bool,
    /// Read-modify-write rounds taken (more than one: another job wrote at the same time).
    pub rounds: usize,
}

/// Adds an entry to the document under `tag`: `merge` gets the current manifest (`None`: no tag yet)
/// and says what to write; `present` tells whether a manifest read back holds the entry.
pub async fn append(
    repo: &Repository,
    tag: &str,
    merge: impl Fn(Option<&Manifest>) -> Result<Merge>,
    present: impl Fn(&Manifest) -> Result<bool>,
) -> Result<Appended> {
    let mut written = false;
    for round in 1..=MAX_ROUNDS {
        let started = Instant::now();
        let (current, precondition) = read(repo, tag).await?;
        let (manifest, blobs) = match merge(current.as_ref())? {
            Merge::Present if !written => return Ok(Appended { written: false, rounds: round }),
            // Our earlier write was replaced, then someone else's write carried our entry along.
            Merge::Present => return Ok(Appended { written, rounds: round }),
            Merge::Write { manifest, blobs } => (manifest, blobs),
        };
        for blob in &blobs {
            if !repo.blob_exists(&blob.digest).await? {
                repo.upload_blob(blob, &[], None, Arc::new(NoProgress)).await?;
            }
        }
        if repo.put_manifest_if(tag, &manifest, &precondition).await? == Put::PreconditionFailed {
            tokio::time::sleep(jitter(Duration::from_millis(50))).await;
            continue;
        }
        written = true;
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
            return Ok(Appended { written, rounds: round });
        }
    }
    Err(Error::other(format!(
        "adding to {}/{}:{tag}: other jobs kept replacing it; gave up after {MAX_ROUNDS} rounds",
        repo.client.host(),
        repo.name
    ))
    .with_hint("on Harbor, a tag immutability rule matching the tag refuses every write with 412"))
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
