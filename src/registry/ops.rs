//! Registry operations on one repository: does a blob exist, upload or mount it, put and get
//! manifests. Uploads are retried here — the one place that knows how to resume an upload.
//!
//! Upload protocol (OCI distribution-spec; distribution 2.8's quirks named where they bite):
//! `POST /v2/<name>/blobs/uploads/` → 202 + `Location`, then `PUT <Location>&digest=<d>` with the
//! body streamed from its source → 201. The `Location` is used exactly as given (it may be relative
//! and carries distribution's signed `_state`). A mount is `POST …/uploads/?mount=<d>&from=<repo>`:
//! 201 means mounted, 202 opens a normal upload session to use instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;

use super::body::BodySource;
use super::client::Client;
pub use super::events::{Event, NoProgress, Notice, Progress};
pub use super::retry::RetryPolicy;
use crate::error::{Error, Result};
use crate::model::media::{self, kind_of};
use crate::model::{Blob, Digest, Manifest};

/// How a blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobOutcome {
    /// Already there (HEAD answered 200).
    Skipped,
    Uploaded,
    /// Mounted from another repository of the same registry.
    Mounted,
}

/// One repository on one registry, with the scope set every request for it uses.
pub struct Repository {
    pub client: Arc<Client>,
    pub name: String,
    scopes: Vec<String>,
    retry: RetryPolicy,
    /// Retries made, by reason ("503 Service Unavailable", "network error", …).
    retries: Mutex<BTreeMap<String, u32>>,
    /// Chunk size for uploads; 0 = one streaming PUT per blob. Set by `--chunk-size`, or switched on
    /// for the rest of the run when a proxy answers 413 to a monolithic upload.
    chunk_size: AtomicU64,
    /// Where to say things once (the switch to chunked uploads).
    warn: Option<Notice>,
    /// Uploads allowed at once: starts at `--jobs`, and loses a permit each time the registry answers
    /// 429 or 503 (it is overloaded; more parallel uploads only make it worse), down to one.
    limiter: Arc<tokio::sync::Semaphore>,
    parallel: AtomicU64,
}

/// The chunk size hoist switches to after a 413: distribution handles ≥ 8 MiB chunks as cheaply as a
/// monolithic upload, and it passes ingress-nginx's common 10m/16m limits (its 1 MiB default needs
/// `--chunk-size 1MiB`).
pub const FALLBACK_CHUNK: u64 = 8 << 20;

impl Repository {
    /// A repository handle asking for `actions` (`pull` or `pull,push`) on `name`, plus pull on each
    /// repository in `mount_from` (a mount needs it).
    pub fn new(
        client: Arc<Client>,
        name: &str,
        actions: &str,
        mount_from: &[String],
        retry: RetryPolicy,
    ) -> Repository {
        let mut scopes = vec![super::auth::repo_scope(name, actions)];
        scopes.extend(mount_from.iter().filter(|r| *r != name).map(|r| super::auth::repo_scope(r, "pull")));
        Repository {
            client,
            name: name.to_string(),
            scopes,
            retry,
            retries: Mutex::new(BTreeMap::new()),
            chunk_size: AtomicU64::new(0),
            warn: None,
            limiter: Arc::new(tokio::sync::Semaphore::new(1)),
            parallel: AtomicU64::new(1),
        }
    }

    /// Allows `jobs` uploads at once (see [`Repository::upload_permit`]).
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        let jobs = jobs.max(1);
        self.limiter = Arc::new(tokio::sync::Semaphore::new(jobs));
        self.parallel = AtomicU64::new(jobs as u64);
        self
    }

    /// Waits for a slot to upload in; hold it for the duration of one blob's upload.
    pub async fn upload_permit(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.limiter.clone().acquire_owned().await.expect("the limiter is never closed")
    }

    /// Uploads allowed at once now.
    pub fn parallel(&self) -> u64 {
        self.parallel.load(Ordering::Relaxed)
    }

    /// The registry said it is overloaded: one upload fewer at a time (not below one).
    fn back_off(&self) {
        let cur = self.parallel.load(Ordering::Relaxed);
        if cur > 1 && self.parallel.compare_exchange(cur, cur - 1, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            // Take the next permit released and never give it back.
            let limiter = self.limiter.clone();
            tokio::spawn(async move {
                if let Ok(p) = limiter.acquire_owned().await {
                    p.forget();
                }
            });
            if let Some(warn) = &self.warn {
                warn(&Event::BackedOff { host: self.client.host().to_string(), parallel: cur - 1 });
            }
        }
    }

    /// Uploads in chunks of `bytes` (0 = monolithic).
    pub fn with_chunk_size(self, bytes: u64) -> Self {
        self.chunk_size.store(bytes, Ordering::Relaxed);
        self
    }

    /// Where one-time [`Event`]s go (the reporter in the CLI, which words them).
    pub fn with_warn(mut self, warn: Notice) -> Self {
        self.warn = Some(warn);
        self
    }

    fn count_retry(&self, e: &Error) {
        let reason = e.message().split(':').next().unwrap_or("error").trim().to_string();
        super::events::trace(|| super::events::Trace::Retry {
            host: self.client.host().to_string(),
            reason: e.message().to_string(),
        });
        if reason.starts_with("429") || reason.starts_with("503") {
            self.back_off();
        }
        *self.retries.lock().expect("retries lock").entry(reason).or_default() += 1;
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Retries made so far, by reason.
    pub fn retry_counts(&self) -> BTreeMap<String, u32> {
        self.retries.lock().expect("retries lock").clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("v2/{}/{rest}", self.name)
    }

    /// Runs `op` until it succeeds, fails for good, or the retries run out.
    async fn with_retries<T, F, Fut>(&self, what: &str, progress: &dyn Progress, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => match e.retry() {
                    Some(after) if attempt < self.retry.retries => {
                        self.count_retry(&e);
                        tokio::time::sleep(self.retry.delay(attempt, after)).await;
                        progress.restart();
                        attempt += 1;
                    }
                    _ => {
                        let e = if attempt > 0 { e.context(format!("after {} retries", attempt)) } else { e };
                        return Err(e.context(what));
                    }
                },
            }
        }
    }

    /// Whether the blob is already in this repository.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let url = self.client.url(&self.path(&format!("blobs/{digest}")))?;
        self.with_retries(&format!("checking blob {}", digest.short()), &NoProgress, || async {
            let resp = self.client.send(&self.scopes, &|h| Ok(h.head(url.clone()))).await?;
            match resp.status() {
                s if s.is_success() => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(self.client.fail(resp).await),
            }
        })
        .await
    }

    /// Gets a blob that is not yet here into this repository: mount it from one of `mount_from`, else
    /// upload it from its source (`source` reads `BlobSource::Remote` blobs from another registry).
    /// Callers check [`Repository::blob_exists`] first.
    pub async fn upload_blob(
        &self,
        blob: &Blob,
        mount_from: &[String],
        source: Option<&Repository>,
        progress: Arc<dyn Progress>,
    ) -> Result<BlobOutcome> {
        let what =
            format!("uploading {} {} to {}/{}", kind_of(&blob.media_type), blob.digest, self.client.host(), self.name);
        self.with_retries(&what, &*progress, || self.upload_once(blob, mount_from, source, progress.clone())).await
    }

    async fn upload_once(
        &self,
        blob: &Blob,
        mount_from: &[String],
        source: Option<&Repository>,
        progress: Arc<dyn Progress>,
    ) -> Result<BlobOutcome> {
        let mut session = None;
        for from in mount_from.iter().filter(|r| **r != self.name) {
            match self.try_mount(&blob.digest, from).await? {
                Mount::Done => return Ok(BlobOutcome::Mounted),
                Mount::Session(s) => {
                    session = Some(s);
                    break;
                }
                Mount::Refused => {}
            }
        }
        let session = match session {
            Some(s) => s,
            None => self.start_upload().await?,
        };
        let body = BodySource::new(blob, source, progress.clone()).await?;
        // Blobs streamed from another registry go in one PUT: their body cannot be cut into ranges.
        let chunk = self.chunk_size.load(Ordering::Relaxed);
        if chunk > 0 && matches!(body, BodySource::Local(..)) {
            self.upload_chunked(blob, session, chunk, &body, &*progress).await?;
            return Ok(BlobOutcome::Uploaded);
        }
        let url = with_digest(self.client.url(&session.location)?, &blob.digest);
        let resp = self
            .client
            .send(&self.scopes, &|h| {
                Ok(h.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, blob.size)
                    .body(body.body()?))
            })
            .await?;
        if resp.status().is_success() {
            return Ok(BlobOutcome::Uploaded);
        }
        if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && matches!(body, BodySource::Local(..)) {
            // A proxy caps request bodies (ingress-nginx, Cloudflare): chunk this blob and the rest.
            if self.chunk_size.compare_exchange(0, FALLBACK_CHUNK, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                if let Some(warn) = &self.warn {
                    warn(&Event::ChunkingAfter413 {
                        host: self.client.host().to_string(),
                        blob_size: blob.size,
                        chunk: FALLBACK_CHUNK,
                    });
                }
            }
            progress.restart();
            let session = self.start_upload().await?;
            self.upload_chunked(blob, session, self.chunk_size.load(Ordering::Relaxed), &body, &*progress).await?;
            return Ok(BlobOutcome::Uploaded);
        }
        Err(session_lost_is_retryable(self.client.fail(resp).await))
    }

    /// Chunked upload: `PATCH` each range (always to the newest `Location`), then an empty `PUT`.
    ///
    /// distribution 2.8 ignores `Content-Range` and appends whatever arrives, so a PATCH whose response
    /// was lost is never repeated blindly: we ask `GET <location>` for the `Range` the registry really
    /// has and go on from there. On distribution 2.8 that GET itself is refused once a PATCH landed
    /// unseen (the Location we hold carries a stale `_state` offset → 404 BLOB_UPLOAD_INVALID), and
    /// then the error is retryable and the whole blob starts over with a new POST. Registries that
    /// answer the GET (the spec's behaviour) resume where they are.
    async fn upload_chunked(
        &self,
        blob: &Blob,
        session: Session,
        chunk: u64,
        body: &BodySource,
        progress: &dyn Progress,
    ) -> Result<()> {
        let chunk = chunk.max(session.min_chunk.unwrap_or(1)).max(1);
        let mut location = session.location;
        let mut offset = 0u64;
        let mut resumes = 0u32;
        while offset < blob.size {
            let len = chunk.min(blob.size - offset);
            let url = self.client.url(&location)?;
            let range = format!("{}-{}", offset, offset + len - 1);
            let sent = self
                .client
                .send(&self.scopes, &|h| {
                    Ok(h.patch(url.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, len)
                        .header("Content-Range", range.as_str())
                        .body(body.range(offset, len)?))
                })
                .await;
            let failure = match sent {
                Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                    location = location_of(&resp)?;
                    offset = range_end(&resp).unwrap_or(offset + len);
                    continue;
                }
                Ok(resp) => session_lost_is_retryable(self.client.fail(resp).await),
                Err(e) => e,
            };
            let Some(after) = failure.retry() else { return Err(failure.context(format!("sending bytes {range}"))) };
            if resumes >= self.retry.retries || failure.message().contains("BLOB_UPLOAD_") {
                return Err(failure.context(format!("sending bytes {range}")));
            }
            resumes += 1;
            self.count_retry(&failure);
            tokio::time::sleep(self.retry.delay(resumes - 1, after)).await;
            // Where is the registry really? (A lost response may hide an applied PATCH.)
            let (loc, have) = self.upload_status(&location).await?;
            location = loc;
            offset = have;
            progress.restart();
            progress.advance(offset);
        }
        let url = with_digest(self.client.url(&location)?, &blob.digest);
        // Close with an empty body: Harbor's quota middleware counts only a non-empty PUT body.
        let resp = self.client.send(&self.scopes, &|h| Ok(h.put(url.clone()).header(CONTENT_LENGTH, 0))).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(session_lost_is_retryable(self.client.fail(resp).await).context("closing the chunked upload"))
    }

    /// `GET <location>` → (newest location, bytes the registry holds).
    async fn upload_status(&self, location: &str) -> Result<(String, u64)> {
        let url = self.client.url(location)?;
        let resp = self.client.send(&self.scopes, &|h| Ok(h.get(url.clone()))).await?;
        if !resp.status().is_success() {
            // The session is gone or its state stale: start the blob over.
            return Err(session_lost_is_retryable(self.client.fail(resp).await).retryable(None));
        }
        let loc = location_of(&resp).unwrap_or_else(|_| location.to_string());
        Ok((loc, range_end(&resp).unwrap_or(0)))
    }

    /// `POST …/blobs/uploads/` → the session.
    async fn start_upload(&self) -> Result<Session> {
        let url = self.client.url(&self.path("blobs/uploads/"))?;
        let resp = self.client.send(&self.scopes, &|h| Ok(h.post(url.clone()).header(CONTENT_LENGTH, 0))).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.client.fail(resp).await.context("starting an upload"));
        }
        Session::of(&resp)
    }

    async fn try_mount(&self, digest: &Digest, from: &str) -> Result<Mount> {
        let mut url = self.client.url(&self.path("blobs/uploads/"))?;
        url.query_pairs_mut().append_pair("mount", digest.as_str()).append_pair("from", from);
        let resp = self.client.send(&self.scopes, &|h| Ok(h.post(url.clone()).header(CONTENT_LENGTH, 0))).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Done),
            StatusCode::ACCEPTED => Ok(Mount::Session(Session::of(&resp)?)),
            // Harbor answers 401 (not 202) when the token lacks pull on `from`: upload instead.
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Ok(Mount::Refused),
            _ => Err(self.client.fail(resp).await.context(format!("mounting {} from {from}", digest.short()))),
        }
    }

    /// Puts a manifest under `reference` (a tag or its digest); returns the digest the registry stored.
    /// For a tag that already points at the same digest nothing is sent (Harbor refuses even an
    /// identical re-push to an immutable tag with 412).
    pub async fn put_manifest(&self, reference: &str, manifest: &Manifest) -> Result<Digest> {
        let what =
            format!("pushing manifest {} to {}/{}:{reference}", manifest.digest.short(), self.client.host(), self.name);
        let url = self.client.url(&self.path(&format!("manifests/{reference}")))?;
        if !reference.contains(':')
            && self.manifest_digest(reference).await.ok().flatten().as_ref() == Some(&manifest.digest)
        {
            return Ok(manifest.digest.clone());
        }
        self.with_retries(&what, &NoProgress, || async {
            let resp = self
                .client
                .send(&self.scopes, &|h| {
                    Ok(h.put(url.clone())
                        .header(CONTENT_TYPE, manifest.media_type.as_str())
                        .body(manifest.bytes.clone()))
                })
                .await?;
            if !resp.status().is_success() {
                let status = resp.status();
                let e = self.client.fail(resp).await;
                return Err(match status {
                    StatusCode::PRECONDITION_FAILED => e.with_hint(
                        "the tag is immutable in Harbor (a tag immutability rule matches it): push a new tag",
                    ),
                    StatusCode::BAD_REQUEST if manifest.bytes.len() > 4 << 20 => {
                        e.with_hint("the manifest is over 4 MiB, the registry's limit")
                    }
                    _ => e,
                });
            }
            let stored = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string);
            match stored {
                Some(d) if d != manifest.digest.as_str() => Err(Error::other(format!(
                    "the registry stored digest {d}, not the manifest's {} (it rewrote the manifest)",
                    manifest.digest
                ))),
                _ => Ok(manifest.digest.clone()),
            }
        })
        .await
    }

    /// The digest a tag points at now, `None` when the tag does not exist.
    pub async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        let url = self.client.url(&self.path(&format!("manifests/{reference}")))?;
        let resp =
            self.client.send(&self.scopes, &|h| Ok(h.head(url.clone()).header(ACCEPT, media::MANIFEST_ACCEPT))).await?;
        match resp.status() {
            s if s.is_success() => Ok(resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|d| d.parse().ok())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.client.fail(resp).await),
        }
    }

    /// Reads a manifest (tag or digest), verifying the digest when the reference is one.
    pub async fn get_manifest(&self, reference: &str) -> Result<Manifest> {
        let what = format!("reading manifest {}/{}:{reference}", self.client.host(), self.name);
        let url = self.client.url(&self.path(&format!("manifests/{reference}")))?;
        self.with_retries(&what, &NoProgress, || async {
            let resp = self
                .client
                .send(&self.scopes, &|h| Ok(h.get(url.clone()).header(ACCEPT, media::MANIFEST_ACCEPT)))
                .await?;
            if !resp.status().is_success() {
                return Err(self.client.fail(resp).await);
            }
            let content_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
                .unwrap_or_default();
            let bytes = super::error::read_capped(resp, media::MAX_MANIFEST_BYTES as usize)
                .await
                .map_err(|e| e.context("the manifest").with_hint("registries refuse manifests over 4 MiB"))?;
            let m = Manifest::new(content_type, bytes);
            if reference.contains(':') && m.digest.as_str() != reference {
                return Err(Error::other(format!("the registry returned content with digest {}", m.digest)));
            }
            Ok(m)
        })
        .await
    }

    /// Reads a small blob (a config) whole, verifying its digest; one over
    /// [`media::MAX_CONFIG_BYTES`] is refused before it is in memory.
    pub async fn get_blob_bytes(&self, digest: &Digest) -> Result<Bytes> {
        let what = format!("reading blob {} from {}/{}", digest.short(), self.client.host(), self.name);
        self.with_retries(&what, &NoProgress, || async {
            let resp = self.get_blob(digest).await?;
            let bytes = super::error::read_capped(resp, media::MAX_CONFIG_BYTES as usize).await?;
            if Digest::sha256_of(&bytes) != *digest {
                return Err(Error::other("the content does not match its digest"));
            }
            Ok(bytes)
        })
        .await
    }

    /// Starts reading a blob; the caller streams the body.
    pub async fn get_blob(&self, digest: &Digest) -> Result<reqwest::Response> {
        let url = self.client.url(&self.path(&format!("blobs/{digest}")))?;
        let resp = self.client.send(&self.scopes, &|h| Ok(h.get(url.clone()))).await?;
        if !resp.status().is_success() {
            return Err(self.client.fail(resp).await);
        }
        Ok(resp)
    }

    /// Fetches the token and checks it grants push, before any upload.
    pub async fn check_push_access(&self) -> Result<()> {
        self.client.check_push_access(&self.name, &self.scopes).await
    }
}

enum Mount {
    Done,
    Session(Session),
    Refused,
}

/// An open upload session.
struct Session {
    location: String,
    /// `OCI-Chunk-Min-Length`: the smallest chunk the registry accepts.
    min_chunk: Option<u64>,
}

impl Session {
    fn of(resp: &reqwest::Response) -> Result<Session> {
        let min_chunk = resp
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Ok(Session { location: location_of(resp)?, min_chunk })
    }
}

/// `url` with `digest=<d>` appended to whatever query the registry put in its Location.
fn with_digest(mut url: url::Url, digest: &Digest) -> url::Url {
    url.query_pairs_mut().append_pair("digest", digest.as_str());
    url
}

/// Bytes the registry holds, from a `Range: 0-<end>` header (inclusive end). distribution reports a
/// fresh session as `0-0`, meaning 0 bytes; we read it so (a 1-byte upload is indistinguishable, and a
/// wrong guess shows up as DIGEST_INVALID at the closing PUT, never as a silent corruption).
fn range_end(resp: &reqwest::Response) -> Option<u64> {
    let v = resp.headers().get("range")?.to_str().ok()?;
    let end: u64 = v.trim().trim_start_matches("bytes=").split_once('-')?.1.trim().parse().ok()?;
    Some(if end == 0 { 0 } else { end + 1 })
}

/// A lost upload session (BLOB_UPLOAD_UNKNOWN / BLOB_UPLOAD_INVALID — distribution's answer to a stale
/// `_state`, or a restarted registry) is worth retrying from a new POST.
fn session_lost_is_retryable(e: Error) -> Error {
    if e.message().contains("BLOB_UPLOAD_UNKNOWN") || e.message().contains("BLOB_UPLOAD_INVALID") {
        e.retryable(None)
    } else {
        e
    }
}

fn location_of(resp: &reqwest::Response) -> Result<String> {
    resp.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Error::other(format!("the registry answered {} without a Location header", resp.status())))
}
