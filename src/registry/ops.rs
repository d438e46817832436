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

use super::body::{growing_body, BodySource};
use super::chunking::AfterRefusal;
use super::client::Client;
pub use super::events::{Event, NoProgress, Notice, Progress};
pub use super::retry::RetryPolicy;
use crate::error::{Error, Result};
use crate::growing::GrowingFile;
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
    /// Read from the registry to disk (`hoist pull`).
    Downloaded,
}

/// One repository on one registry, with the scope set every request for it uses.
pub struct Repository {
    pub client: Arc<Client>,
    pub name: String,
    scopes: Vec<String>,
    retry: RetryPolicy,
    /// Retries made, by reason ("503 Service Unavailable", "network error", …).
    retries: Mutex<BTreeMap<String, u32>>,
    /// Where to say things once (the chunk size chosen after a 413, fewer uploads at a time).
    warn: Option<Notice>,
    /// Uploads allowed at once: starts at `--jobs`, and loses a permit each time the registry answers
    /// 429 or 503 (it is overloaded; more parallel uploads only make it worse), down to one.
    limiter: Arc<tokio::sync::Semaphore>,
    parallel: AtomicU64,
}

/// The largest manifest hoist reads: distribution refuses to store bigger ones (400 MANIFEST_INVALID
/// above 4 MiB), so anything larger is not a manifest a registry should be serving.
pub const MANIFEST_LIMIT: usize = media::MAX_MANIFEST_BYTES as usize;

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

    /// Uploads in chunks of `bytes` (0 = monolithic) on this registry, unless a 413 already chose a
    /// smaller size this run.
    pub fn with_chunk_size(self, bytes: u64) -> Self {
        self.client.chunking().prefer(bytes);
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
        // The blob's own repository first: distribution answers a mount from a repository that lacks
        // the blob with 202 (an upload session), which ends the search, so an index made from images of
        // several repositories would otherwise try the wrong one first and have nothing to upload from.
        let own = match &blob.source {
            crate::model::BlobSource::Remote { registry, repository }
                if crate::model::api_host(registry) == self.client.host() && mount_from.contains(repository) =>
            {
                Some(repository)
            }
            _ => None,
        };
        let candidates = own.into_iter().chain(mount_from.iter().filter(|r| Some(*r) != own));
        for from in candidates.filter(|r| **r != self.name) {
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
        if self.client.chunking().size() > 0 && matches!(body, BodySource::Local(..)) {
            self.upload_chunked(blob, session, &body, &*progress).await?;
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
            let refused = self.client.fail(resp).await;
            self.after_refusal(refused, blob.size, session.min_chunk)?;
            progress.restart();
            let session = self.start_upload().await?;
            self.upload_chunked(blob, session, &body, &*progress).await?;
            return Ok(BlobOutcome::Uploaded);
        }
        Err(session_lost_is_retryable(self.client.fail(resp).await))
    }

    /// A 413 refused a body of `len` bytes: the chunk size is halved for this registry ([`super::chunking::Chunking`]),
    /// or, when `len` was already the smallest chunk allowed, the push fails with a hint that says so.
    fn after_refusal(&self, refused: Error, len: u64, min_chunk: Option<u64>) -> Result<()> {
        match self.client.chunking().refused(len, min_chunk) {
            AfterRefusal::Chunks(_) => Ok(()),
            AfterRefusal::Floor(floor) => Err(Error::other(format!(
                "{} refused a {len}-byte request body with 413 Payload Too Large ({})",
                self.client.host(),
                refused.message()
            ))
            .with_hint(format!(
                "a proxy in front of {} caps request bodies below {} bytes, the smallest chunk hoist sends (64 KiB, or \
                 the registry's OCI-Chunk-Min-Length): raise that limit (nginx: client_max_body_size; ingress-nginx: \
                 the nginx.ingress.kubernetes.io/proxy-body-size annotation)",
                self.client.host(),
                floor
            ))),
        }
    }

    /// Chunked upload: `PATCH` each range (always to the newest `Location`), then an empty `PUT`. The
    /// chunk size is the registry's ([`super::chunking::Chunking`]), read afresh for every chunk, so a size learned by
    /// another upload applies at once.
    ///
    /// distribution 2.8 ignores `Content-Range` and appends whatever arrives, so a PATCH whose response
    /// was lost is never repeated blindly: we ask `GET <location>` for the `Range` the registry really
    /// has and go on from there. On distribution 2.8 that GET itself is refused once a PATCH landed
    /// unseen (the Location we hold carries a stale `_state` offset → 404 BLOB_UPLOAD_INVALID), and
    /// then the error is retryable and the whole blob starts over with a new POST. Registries that
    /// answer the GET (the spec's behaviour) resume where they are. A 413 (a proxy's body cap) never
    /// reached the registry: the chunk is halved and the upload goes on from the registry's `Range`.
    async fn upload_chunked(
        &self,
        blob: &Blob,
        session: Session,
        body: &BodySource,
        progress: &dyn Progress,
    ) -> Result<()> {
        let min_chunk = session.min_chunk;
        let mut location = session.location;
        let mut offset = 0u64;
        let mut resumes = 0u32;
        while offset < blob.size {
            let chunk = self.client.chunking().size().max(min_chunk.unwrap_or(1)).max(1);
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
                    self.chunk_passed(len);
                    continue;
                }
                Ok(resp) if resp.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    let refused = self.client.fail(resp).await;
                    self.after_refusal(refused, len, min_chunk)
                        .map_err(|e| e.context(format!("sending bytes {range}")))?;
                    // Where is the registry? (Nothing should have landed, but its word is the truth.)
                    let (loc, have) = self.upload_status(&location).await?;
                    (location, offset) = (loc, have);
                    progress.restart();
                    progress.advance(offset);
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
        self.close_upload(&location, &blob.digest).await
    }

    /// Uploads a blob while it is being written (a layer `hoist build` is compressing): POST a session,
    /// send the bytes as they reach the file — one PATCH streaming all of them (chunked transfer
    /// encoding: the length is unknown), or, when this registry uses chunks ([`super::chunking`]),
    /// a PATCH per chunk once its bytes are there — and close with `PUT <location>&digest=` once the
    /// writer announces the digest. Returns the digest, the size, and whether the blob was uploaded or
    /// (found in the registry once its digest was known) skipped.
    ///
    /// A 413 halves the chunk and goes on from the registry's offset, as [`Repository::upload_blob`]
    /// does; any other failure is returned at once, without retries: the caller sends the finished
    /// file through [`Repository::upload_blob`] and its retries instead (a stream cannot be replayed,
    /// the file can).
    pub async fn upload_growing(
        &self,
        mut file: GrowingFile,
        progress: Arc<dyn Progress>,
    ) -> Result<(Digest, u64, BlobOutcome)> {
        let session = self.start_upload().await?;
        let min_chunk = session.min_chunk;
        let mut location = session.location;
        let mut offset = 0u64;
        let (digest, size) = loop {
            let chunk = self.client.chunking().size();
            let (len, end) = if chunk == 0 {
                (None, None)
            } else {
                let chunk = chunk.max(min_chunk.unwrap_or(1));
                let (have, end) = file.wait_for(offset + chunk).await.map_err(|e| Error::io("reading the layer", e))?;
                match end {
                    Some(done) if have <= offset => break done,
                    _ => (Some((have - offset).min(chunk)), end),
                }
            };
            let url = self.client.url(&location)?;
            let range = len.map(|len| format!("{}-{}", offset, offset + len - 1));
            let resp = self
                .client
                .send(&self.scopes, &|h| {
                    let mut req = h.patch(url.clone()).header(CONTENT_TYPE, "application/octet-stream");
                    if let (Some(len), Some(range)) = (len, &range) {
                        req = req.header(CONTENT_LENGTH, len).header("Content-Range", range.as_str());
                    }
                    Ok(req.body(growing_body(file.clone(), offset, len, progress.clone())))
                })
                .await?;
            match resp.status() {
                StatusCode::ACCEPTED => {
                    location = location_of(&resp)?;
                    if let Some(len) = len {
                        offset = range_end(&resp).unwrap_or(offset + len);
                        self.chunk_passed(len);
                        if let Some(done) = end.filter(|(_, size)| offset >= *size) {
                            break done;
                        }
                    } else {
                        // The one streaming PATCH ends with the file.
                        let (_, end) = file.wait_for(u64::MAX).await.map_err(|e| Error::io("reading the layer", e))?;
                        let (digest, size) = end.expect("the body ends only when the file is complete");
                        offset = range_end(&resp).unwrap_or(size);
                        break (digest, size);
                    }
                }
                StatusCode::PAYLOAD_TOO_LARGE => {
                    // A streaming PATCH has no length; the proxy refused it past its cap: chunks from now on.
                    let refused = self.client.fail(resp).await;
                    self.after_refusal(refused, len.unwrap_or(u64::MAX), min_chunk)?;
                    (location, offset) = self.upload_status(&location).await?;
                    progress.restart();
                    progress.advance(offset);
                }
                _ => return Err(session_lost_is_retryable(self.client.fail(resp).await)),
            }
        };
        if offset != size {
            return Err(Error::other(format!("the registry holds {offset} bytes of a {size}-byte layer")));
        }
        // The digest was not known before: the registry may have had the blob all along (a rebuild
        // that missed the layer cache). Then the session is dropped and the blob counts as skipped.
        if self.blob_exists(&digest).await? {
            let url = self.client.url(&location)?;
            let _ = self.client.send(&self.scopes, &|h| Ok(h.delete(url.clone()))).await;
            return Ok((digest, size, BlobOutcome::Skipped));
        }
        self.close_upload(&location, &digest).await?;
        Ok((digest, size, BlobOutcome::Uploaded))
    }

    /// The closing `PUT <location>&digest=` of a chunked upload.
    async fn close_upload(&self, location: &str, digest: &Digest) -> Result<()> {
        let url = with_digest(self.client.url(location)?, digest);
        // Close with an empty body: Harbor's quota middleware counts only a non-empty PUT body.
        let resp = self.client.send(&self.scopes, &|h| Ok(h.put(url.clone()).header(CONTENT_LENGTH, 0))).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(session_lost_is_retryable(self.client.fail(resp).await).context("closing the chunked upload"))
    }

    /// A chunk went through: once per size chosen after a 413, tell the user what it is and how to
    /// choose it up front.
    fn chunk_passed(&self, len: u64) {
        if let (Some((chunk, refused)), Some(warn)) = (self.client.chunking().passed(len), &self.warn) {
            warn(&Event::ChunkSizeChosen { host: self.client.host().to_string(), refused, chunk });
        }
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
        self.put_manifest_if_changed(reference, manifest).await.map(|_| manifest.digest.clone())
    }

    /// [`Repository::put_manifest`], saying whether anything was sent: `Ok(false)` when `reference` is a
    /// tag that already points at the manifest's digest.
    pub async fn put_manifest_if_changed(&self, reference: &str, manifest: &Manifest) -> Result<bool> {
        let what =
            format!("pushing manifest {} to {}/{}:{reference}", manifest.digest.short(), self.client.host(), self.name);
        let url = self.client.url(&self.path(&format!("manifests/{reference}")))?;
        if !reference.contains(':')
            && self.manifest_digest(reference).await.ok().flatten().as_ref() == Some(&manifest.digest)
        {
            return Ok(false);
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
                _ => Ok(true),
            }
        })
        .await
    }

    /// Puts a manifest under `reference` only if `cond` holds (`If-Match` on an ETag, or
    /// `If-None-Match: *` for a reference that must not exist yet), always sending it. A 412 answer is
    /// [`Put::PreconditionFailed`] (someone else wrote first: re-read and try again); otherwise the
    /// answer says whether the registry indexed the manifest's `subject` (`OCI-Subject`).
    ///
    /// Registries that ignore conditional headers (distribution 2.8 does) just store the manifest:
    /// callers that need the guarantee re-read after writing.
    pub async fn put_manifest_if(&self, reference: &str, manifest: &Manifest, cond: &PutIf) -> Result<Put> {
        let what =
            format!("pushing manifest {} to {}/{}:{reference}", manifest.digest.short(), self.client.host(), self.name);
        let url = self.client.url(&self.path(&format!("manifests/{reference}")))?;
        self.with_retries(&what, &NoProgress, || async {
            let resp = self
                .client
                .send(&self.scopes, &|h| {
                    let req = h
                        .put(url.clone())
                        .header(CONTENT_TYPE, manifest.media_type.as_str())
                        .body(manifest.bytes.clone());
                    Ok(match cond {
                        PutIf::Always => req,
                        PutIf::Match(etag) => req.header(reqwest::header::IF_MATCH, etag.as_str()),
                        PutIf::NoneMatch => req.header(reqwest::header::IF_NONE_MATCH, "*"),
                    })
                })
                .await?;
            if resp.status() == StatusCode::PRECONDITION_FAILED && !matches!(cond, PutIf::Always) {
                return Ok(Put::PreconditionFailed);
            }
            if !resp.status().is_success() {
                return Err(self.client.fail(resp).await);
            }
            let oci_subject = resp.headers().get("oci-subject").and_then(|v| v.to_str().ok()).map(str::to_string);
            Ok(Put::Stored { oci_subject })
        })
        .await
    }

    /// [`Repository::get_manifest`] with the `ETag` the registry sent (for a conditional write back),
    /// or `None` when `reference` does not exist (404).
    pub async fn get_manifest_etag(&self, reference: &str) -> Result<Option<(Manifest, Option<String>)>> {
        self.fetch_manifest(reference, true).await
    }

    /// `GET /v2/<name>/referrers/<digest>` (OCI distribution-spec 1.1), with `?artifactType=` when
    /// given. `None` when the registry has no referrers API (404, or 400/405/501 from registries that
    /// route the path elsewhere); otherwise the index's bytes and the `OCI-Filters-Applied` header.
    /// Follows `Link: rel="next"` pages and returns their entries merged into one index.
    pub async fn get_referrers(&self, digest: &Digest, artifact_type: Option<&str>) -> Result<Option<ReferrersPage>> {
        let what = format!("listing the referrers of {}/{}@{digest}", self.client.host(), self.name);
        let mut url = self.client.url(&self.path(&format!("referrers/{digest}")))?;
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let mut manifests: Vec<serde_json::Value> = Vec::new();
        let mut filters_applied = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            if !seen.insert(url.to_string()) || seen.len() > 100 {
                return Err(Error::other(format!("the registry's next page link loops back to {url}")).context(what));
            }
            let page = self
                .with_retries(&what, &NoProgress, || async {
                    let resp = self
                        .client
                        .send(&self.scopes, &|h| Ok(h.get(url.clone()).header(ACCEPT, media::OCI_INDEX)))
                        .await?;
                    match resp.status() {
                        s if s.is_success() => {}
                        StatusCode::NOT_FOUND
                        | StatusCode::BAD_REQUEST
                        | StatusCode::METHOD_NOT_ALLOWED
                        | StatusCode::NOT_IMPLEMENTED => return Ok(None),
                        _ => return Err(self.client.fail(resp).await),
                    }
                    let header =
                        |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                    let filters = header("oci-filters-applied");
                    let next = next_page(&resp);
                    let body = super::error::read_capped(resp, MANIFEST_LIMIT).await?;
                    let v: serde_json::Value = serde_json::from_slice(&body)
                        .map_err(|e| Error::other(format!("the referrers answer is not a JSON index: {e}")))?;
                    let entries = v.get("manifests").and_then(|m| m.as_array()).cloned().unwrap_or_default();
                    Ok(Some((entries, filters, next)))
                })
                .await?;
            let Some((entries, filters, next)) = page else {
                // A first page missing means no API; a later one missing is an error of the registry's.
                if manifests.is_empty() && filters_applied.is_none() && seen.len() == 1 {
                    return Ok(None);
                }
                return Err(Error::other(format!("the registry's next referrers page {url} is missing")).context(what));
            };
            manifests.extend(entries);
            filters_applied = filters_applied.or(filters).or(Some(String::new()));
            match next {
                Some(link) => url = self.client.url(&link).map_err(|e| e.context(&what))?,
                None => {
                    let filters_applied = filters_applied.filter(|f| !f.is_empty());
                    return Ok(Some(ReferrersPage { manifests, filters_applied }));
                }
            }
        }
    }

    /// The digest a tag points at now, `None` when the tag does not exist. One HEAD, not retried.
    pub async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        Ok(self.head_once(reference).await?.map(|(d, _, _)| d))
    }

    /// What a HEAD of the manifest says: its digest, media type (`Content-Type`) and size
    /// (`Content-Length`); `None` when it does not exist. Retried like every read: distribution 2.8
    /// answers 500 to a HEAD now and then while other clients write the same tag.
    pub async fn manifest_head(&self, reference: &str) -> Result<Option<(Digest, String, u64)>> {
        let what = format!("checking manifest {}/{}{}{reference}", self.client.host(), self.name, ref_sep(reference));
        self.with_retries(&what, &NoProgress, || self.head_once(reference)).await
    }

    async fn head_once(&self, reference: &str) -> Result<Option<(Digest, String, u64)>> {
        let url = self.client.url(&self.path(&format!("manifests/{reference}")))?;
        let resp =
            self.client.send(&self.scopes, &|h| Ok(h.head(url.clone()).header(ACCEPT, media::MANIFEST_ACCEPT))).await?;
        match resp.status() {
            s if s.is_success() => {
                let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
                let digest = header("docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
                let media_type = header(CONTENT_TYPE.as_str()).unwrap_or_default().to_string();
                let size = header(CONTENT_LENGTH.as_str()).and_then(|n| n.parse().ok()).unwrap_or(0);
                Ok(digest.map(|d| (d, media_type, size)))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.client.fail(resp).await),
        }
    }

    /// [`Repository::manifest_digest`] with the retry policy (for checks a push depends on, such as
    /// what a tag holds before it is moved).
    pub async fn manifest_digest_retried(&self, reference: &str) -> Result<Option<Digest>> {
        let what = format!("checking {}/{}{}{reference}", self.client.host(), self.name, ref_sep(reference));
        self.with_retries(&what, &NoProgress, || self.manifest_digest(reference)).await
    }

    /// Reads a manifest or index (tag or digest) as the exact bytes the registry stores, asking for
    /// every manifest kind hoist understands. The media type is the `Content-Type`, or what the
    /// manifest says of itself when the registry answers a generic type. The digest is checked against
    /// the reference when it is one, and against `Docker-Content-Digest` when the registry sends it.
    /// Manifests over [`MANIFEST_LIMIT`] are refused (registries refuse to store them too).
    pub async fn get_manifest(&self, reference: &str) -> Result<Manifest> {
        let found = self.fetch_manifest(reference, false).await?;
        Ok(found.expect("a missing manifest is an error unless missing_ok").0)
    }

    /// [`Repository::get_manifest`], with the `ETag`; a 404 is `None` when `missing_ok`.
    async fn fetch_manifest(&self, reference: &str, missing_ok: bool) -> Result<Option<(Manifest, Option<String>)>> {
        let what = format!("reading manifest {}/{}{}{reference}", self.client.host(), self.name, ref_sep(reference));
        let url = self.client.url(&self.path(&format!("manifests/{reference}")))?;
        self.with_retries(&what, &NoProgress, || async {
            let mut resp = self
                .client
                .send(&self.scopes, &|h| Ok(h.get(url.clone()).header(ACCEPT, media::MANIFEST_ACCEPT)))
                .await?;
            if missing_ok && resp.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !resp.status().is_success() {
                return Err(self.client.fail(resp).await);
            }
            let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let content_type = header(CONTENT_TYPE.as_str()).unwrap_or_default();
            let advertised = header("docker-content-digest");
            let etag = header("etag");
            if resp.content_length().is_some_and(|n| n > MANIFEST_LIMIT as u64) {
                return Err(too_big());
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(super::error::from_reqwest)? {
                if bytes.len() + chunk.len() > MANIFEST_LIMIT {
                    return Err(too_big());
                }
                bytes.extend_from_slice(&chunk);
            }
            let media_type = media::detect(&content_type, &bytes);
            let m = Manifest::new(media_type, bytes);
            if reference.contains(':') && m.digest.as_str() != reference {
                return Err(Error::other(format!("the registry returned content with digest {}", m.digest)));
            }
            match advertised {
                Some(d) if d.starts_with("sha256:") && d != m.digest.as_str() => Err(Error::other(format!(
                    "the registry says the manifest is {d} but its bytes hash to {}",
                    m.digest
                ))),
                _ => Ok(Some((m, etag))),
            }
        })
        .await
    }

    /// Every tag of this repository, in the registry's order, following `Link: <…>; rel="next"` page
    /// by page. `page_size` asks for `n` tags per page (`None`: the registry's default).
    pub async fn list_tags(&self, page_size: Option<u32>) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let what = format!("listing the tags of {}/{}", self.client.host(), self.name);
        let mut url = self.client.url(&self.path("tags/list"))?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            if !seen.insert(url.to_string()) {
                return Err(Error::other(format!("the registry's next page link loops back to {url}")).context(what));
            }
            let (page, next) = self
                .with_retries(&what, &NoProgress, || async {
                    let resp = self.client.send(&self.scopes, &|h| Ok(h.get(url.clone()))).await?;
                    if !resp.status().is_success() {
                        return Err(self.client.fail(resp).await);
                    }
                    let next = next_page(&resp);
                    let body = resp.bytes().await.map_err(super::error::from_reqwest)?;
                    let page: Page = serde_json::from_slice(&body)
                        .map_err(|e| Error::other(format!("the tag list is not valid JSON: {e}")))?;
                    Ok((page, next))
                })
                .await?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(link) => url = self.client.url(&link).map_err(|e| e.context(&what))?,
                None => return Ok(tags),
            }
        }
    }

    /// Streams a blob into `file` (truncated first, and again when a retry starts over), verifying
    /// its size and digest. Never holds the blob in memory.
    pub async fn download_blob(
        &self,
        digest: &Digest,
        size: u64,
        file: &std::fs::File,
        progress: &dyn Progress,
    ) -> Result<()> {
        use std::io::{Seek, Write};
        let what = format!("downloading blob {} from {}/{}", digest.short(), self.client.host(), self.name);
        let io = |e: std::io::Error| Error::io("writing it to disk", e);
        self.with_retries(&what, progress, || async {
            file.set_len(0).map_err(io)?;
            let mut f = file;
            f.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
            let mut resp = self.get_blob(digest).await?;
            let mut w = crate::model::HashingWriter::new(std::io::BufWriter::with_capacity(256 * 1024, file));
            while let Some(chunk) = resp.chunk().await.map_err(super::error::from_reqwest)? {
                w.write_all(&chunk).map_err(io)?;
                progress.advance(chunk.len() as u64);
            }
            let (got, len, mut inner) = w.finish();
            inner.flush().map_err(io)?;
            if len != size || got != *digest {
                return Err(Error::other(format!(
                    "the registry sent {len} bytes hashing to {got}, not the {size} bytes of {digest}"
                )));
            }
            Ok(())
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

/// The condition a manifest PUT is sent under ([`Repository::put_manifest_if`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutIf {
    /// No condition.
    Always,
    /// `If-Match: <etag>`: only over the version read.
    Match(String),
    /// `If-None-Match: *`: only where nothing is yet.
    NoneMatch,
}

/// What a conditional manifest PUT did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Stored; `oci_subject` is the `OCI-Subject` header (the registry indexed the subject).
    Stored { oci_subject: Option<String> },
    /// 412: the condition did not hold.
    PreconditionFailed,
}

/// A registry's answer to `GET /v2/<name>/referrers/<digest>`: the index entries (as JSON, every
/// field kept) and `OCI-Filters-Applied` (e.g. `artifactType`).
#[derive(Debug, Clone)]
pub struct ReferrersPage {
    pub manifests: Vec<serde_json::Value>,
    pub filters_applied: Option<String>,
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

fn too_big() -> Error {
    Error::other(format!("the manifest is larger than {} MiB, the most hoist reads", MANIFEST_LIMIT >> 20))
}

/// `:` before a tag, `@` before a digest, for messages.
fn ref_sep(reference: &str) -> &'static str {
    if reference.contains(':') {
        "@"
    } else {
        ":"
    }
}

/// The next page of a paginated answer (`Link: <…>; rel="next"`), as the tag list and the referrers API give it.
fn next_page(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get_all(reqwest::header::LINK).iter().filter_map(|v| v.to_str().ok()).find_map(next_link)
}

/// The target of a `Link: <url>; rel="next"` header value (RFC 8288; distribution sends exactly one).
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Query;
    use axum::http::{header, HeaderMap, StatusCode as S};
    use axum::routing::get;
    use std::collections::HashMap;

    /// A registry on loopback answering just what `router` serves (plus `GET /v2/`).
    async fn repo_on(router: axum::Router) -> Repository {
        let router = router.route("/v2/", get(|| async { "{}" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let client = Client::connect(&host, &super::super::ClientOptions::default(), None).await.unwrap();
        Repository::new(client, "app", "pull", &[], RetryPolicy { retries: 0, ..RetryPolicy::default() })
    }

    #[test]
    fn next_link_reads_rel_next_only() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"<https://r/x>; rel="prev", <https://r/y>; rel=next"#).as_deref(), Some("https://r/y"));
        assert_eq!(next_link(r#"<https://r/x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[tokio::test]
    async fn list_tags_follows_link_pages() {
        let all: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
        let tags = all.clone();
        let router = axum::Router::new().route(
            "/v2/app/tags/list",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let tags = tags.clone();
                async move {
                    let n: usize = q.get("n").map_or(100, |n| n.parse().unwrap());
                    let start = q.get("last").map_or(0, |l| tags.iter().position(|t| t == l).unwrap() + 1);
                    let page = &tags[start..(start + n).min(tags.len())];
                    let mut headers = HeaderMap::new();
                    if start + n < tags.len() {
                        let link = format!(r#"</v2/app/tags/list?last={}&n={n}>; rel="next""#, page.last().unwrap());
                        headers.insert(header::LINK, link.parse().unwrap());
                    }
                    (headers, serde_json::json!({"name": "app", "tags": page}).to_string())
                }
            }),
        );
        let repo = repo_on(router).await;
        assert_eq!(repo.list_tags(Some(3)).await.unwrap(), all);
        assert_eq!(repo.list_tags(None).await.unwrap(), all);
    }

    #[tokio::test]
    async fn get_manifest_checks_size_digest_and_media_type() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
        let index_digest = Digest::sha256_of(&index).to_string();
        let (served, advertised) = (index.clone(), index_digest.clone());
        let router = axum::Router::new()
            .route("/v2/app/manifests/big", get(|| async { vec![b' '; MANIFEST_LIMIT + 1] }))
            .route(
                "/v2/app/manifests/generic",
                get(move || {
                    let (b, d) = (served.clone(), advertised.clone());
                    async move {
                        (
                            [
                                (header::CONTENT_TYPE, "application/json".to_string()),
                                (header::HeaderName::from_static("docker-content-digest"), d),
                            ],
                            b,
                        )
                    }
                }),
            )
            .route(
                "/v2/app/manifests/liar",
                get(|| async {
                    let d = format!("sha256:{}", "0".repeat(64));
                    ([(header::HeaderName::from_static("docker-content-digest"), d)], "{}")
                }),
            )
            .route(
                "/v2/app/manifests/gone",
                get(|| async {
                    (S::NOT_FOUND, r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#)
                }),
            );
        let repo = repo_on(router).await;
        let m = repo.get_manifest("generic").await.unwrap();
        assert_eq!(m.media_type, media::OCI_INDEX);
        assert_eq!(m.bytes.as_ref(), index.as_slice());
        assert_eq!(m.digest.as_str(), index_digest);
        let e = repo.get_manifest("big").await.unwrap_err();
        assert!(e.to_string().contains("larger than 4 MiB"), "{e}");
        let e = repo.get_manifest("liar").await.unwrap_err();
        assert!(e.to_string().contains("bytes hash to"), "{e}");
        let e = repo.get_manifest("gone").await.unwrap_err();
        assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
        assert!(e.to_string().starts_with(&format!("reading manifest {}/app:gone", repo.client.host())), "{e}");
    }

    #[tokio::test]
    async fn download_blob_verifies_what_it_wrote() {
        let good = b"hello blob".to_vec();
        let digest = Digest::sha256_of(&good);
        let path = format!("/v2/app/blobs/{digest}");
        let router = axum::Router::new().route(&path, get(move || async move { good.clone() }));
        let repo = repo_on(router).await;
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("b"))
            .unwrap();
        repo.download_blob(&digest, 10, &file, &NoProgress).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"hello blob");
        let e = repo.download_blob(&digest, 11, &file, &NoProgress).await.unwrap_err();
        assert!(e.to_string().contains("not the 11 bytes"), "{e}");
    }
}
