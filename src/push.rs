//! The push engine: gets an [`Artifact`] to one or more references.
//!
//! For each destination repository (references are grouped, so all tags of one repository share one
//! upload): check push access before sending anything; then every layer, `--jobs` at a time — HEAD and
//! skip if present, else mount (from the blob's own repository on the same registry, `--mount-from`,
//! or a repository this run already pushed to), else stream it; then the configs; then child
//! manifests by digest; then the root manifest under each tag. The report says what happened to
//! each blob.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::Mutex;

use crate::ci::Env;
use crate::error::{Context, Error, Result};
use crate::growing::GrowingFile;
use crate::growing::Sink;
use crate::model::media::ArtifactKind;
use crate::model::{api_host, Artifact, Blob, BlobSource, Digest, Manifest, Reference};
use crate::progress::{human_bytes, rate, Reporter};
use crate::registry::ops::{BlobOutcome, Repository, RetryPolicy};
use crate::registry::Event;
use crate::registry::{credentials, Client, ClientOptions, Credential};

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs in flight at once.
    pub jobs: usize,
    /// Repositories (same registry) to try mounting blobs from.
    pub mount_from: Vec<String>,
    pub retry: RetryPolicy,
    pub client: ClientOptions,
    /// `--username` + `--password-stdin`, for every registry this run talks to.
    pub credential: Option<Credential>,
    /// Upload chunk size in bytes; 0 = one streaming PUT per blob (switched on after a 413).
    pub chunk_size: u64,
    /// Move a tag even when it holds another kind of artifact (see [`guard_tag`]).
    pub force: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            jobs: 4,
            mount_from: Vec::new(),
            retry: RetryPolicy::default(),
            client: ClientOptions::default(),
            credential: None,
            chunk_size: 0,
            force: false,
        }
    }
}

/// What a push did, for `--metadata-file` and the summary.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    pub references: Vec<String>,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub blobs: Vec<BlobReport>,
    pub seconds: f64,
    /// Retries made, by reason.
    pub retries: BTreeMap<String, u32>,
    /// `hoist build`: where each layer it made came from (built, the local cache, or reused from an
    /// image in the registry), in manifest order after the base's layers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<BuildLayer>,
}

/// Where one layer of a build came from, for the log and `--metadata-file`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildLayer {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
    /// `built` (compressed afresh), `cache` (the local layer cache) or `registry` (reused from `from`).
    pub origin: LayerOrigin,
    /// The image the blob was reused from (`origin: registry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Why it was not reused from the registry (`origin` built or cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// See [`BuildLayer::origin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerOrigin {
    Built,
    Cache,
    Registry,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobReport {
    pub repository: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub outcome: BlobOutcome,
    /// Bytes sent (0 when skipped or mounted).
    pub bytes: u64,
    pub seconds: f64,
}

impl BlobReport {
    /// The report of `blob` in `repo` (`bytes` sent or received, 0 when skipped or mounted).
    pub fn of(repo: &Repository, blob: &Blob, outcome: BlobOutcome, bytes: u64, seconds: f64) -> BlobReport {
        BlobReport {
            repository: format!("{}/{}", repo.client.host(), repo.name),
            digest: blob.digest.clone(),
            media_type: blob.media_type.clone(),
            size: blob.size,
            outcome,
            bytes,
            seconds,
        }
    }
}

impl PushReport {
    /// `pushed 2 references, 9 blobs: 8 uploaded (512.0 MiB), 1 skipped, 0 mounted in 5.2 s (103.2 MB/s)`.
    pub fn summary(&self) -> String {
        let count = |o| self.blobs.iter().filter(|b| b.outcome == o).count();
        let sent: u64 = self.blobs.iter().map(|b| b.bytes).sum();
        let mut line = format!(
            "pushed {} reference{}, {} blobs: {} uploaded ({}), {} skipped, {} mounted in {:.1} s ({})",
            self.references.len(),
            if self.references.len() == 1 { "" } else { "s" },
            self.blobs.len(),
            count(BlobOutcome::Uploaded),
            human_bytes(sent),
            count(BlobOutcome::Skipped),
            count(BlobOutcome::Mounted),
            self.seconds,
            rate(sent, self.seconds)
        );
        let total: u32 = self.retries.values().sum();
        if total > 0 {
            let why: Vec<String> = self.retries.iter().map(|(k, v)| format!("{v}× {k}")).collect();
            line.push_str(&format!("; {total} retries: {}", why.join(", ")));
        }
        line
    }
}

/// Connected registry clients, one per host, made on first use.
pub struct Clients<'a> {
    opts: &'a PushOptions,
    env: &'a dyn Env,
    by_host: Mutex<HashMap<String, Arc<Client>>>,
}

impl<'a> Clients<'a> {
    pub fn new(opts: &'a PushOptions, env: &'a dyn Env) -> Self {
        Clients { opts, env, by_host: Mutex::new(HashMap::new()) }
    }

    /// The options these clients were made with.
    pub fn options(&self) -> &'a PushOptions {
        self.opts
    }

    pub async fn get(&self, host: &str) -> Result<Arc<Client>> {
        let mut map = self.by_host.lock().await;
        if let Some(c) = map.get(host) {
            return Ok(c.clone());
        }
        let cred = credentials::resolve(host, self.opts.credential.clone(), self.env)?;
        let client = Client::connect(host, &self.opts.client, cred).await?;
        map.insert(host.to_string(), client.clone());
        Ok(client)
    }
}

/// Pushes `artifact` to every reference in `dests`.
pub async fn push(
    artifact: &Artifact,
    dests: &[Reference],
    opts: &PushOptions,
    env: &dyn Env,
    reporter: &Arc<Reporter>,
) -> Result<PushReport> {
    push_with(artifact, dests, &Clients::new(opts, env), reporter).await
}

/// [`push`] through clients the caller already connected (it read the artifact through them).
pub async fn push_with(
    artifact: &Artifact,
    dests: &[Reference],
    clients: &Clients<'_>,
    reporter: &Arc<Reporter>,
) -> Result<PushReport> {
    push_streamed(artifact, dests, clients, reporter, &Streamed::default()).await
}

/// [`push_with`], counting the blobs in `streamed` (uploaded while `hoist build` wrote them, through
/// the same `clients`) as done instead of sending them again.
pub async fn push_streamed(
    artifact: &Artifact,
    dests: &[Reference],
    clients: &Clients<'_>,
    reporter: &Arc<Reporter>,
    streamed: &Streamed,
) -> Result<PushReport> {
    // The report's time covers the whole upload: from the first layer streamed while it was
    // compressed, when there was one.
    let started = streamed.since().unwrap_or_else(Instant::now);
    let opts = clients.options();
    // Group references by repository, keeping the order they were given.
    let mut groups: Vec<(String, String, Vec<&Reference>)> = Vec::new();
    for r in dests {
        match groups.iter_mut().find(|(h, n, _)| h == r.api_host() && n == r.repository()) {
            Some(g) => g.2.push(r),
            None => groups.push((r.api_host().to_string(), r.repository().to_string(), vec![r])),
        }
    }
    let mut blob_reports = Vec::new();
    let mut retries: BTreeMap<String, u32> = BTreeMap::new();
    let mut pushed_repos: Vec<(String, String)> = Vec::new();
    for (host, name, refs) in &groups {
        let ctx = || format!("pushing to {host}/{name}");
        // Mount candidates: --mount-from, repositories already pushed this run, and the repositories
        // remote blobs come from — all on this registry.
        let also: Vec<String> = pushed_repos.iter().filter(|(h, _)| h == host).map(|(_, r)| r.clone()).collect();
        let (repo, mount_from) =
            open_for_push(clients, host, name, &artifact.blobs, &also, reporter).await.with_context(ctx)?;
        repo.check_push_access().await.with_context(ctx)?;
        // Before a byte moves: no tag is silently turned into another kind of artifact.
        for r in refs {
            if let Some(tag) = r.tag() {
                guard_tag(&repo, r, tag, artifact.root(), opts.force, reporter).await?;
            }
        }
        let results = blob_phases(&repo, &artifact.blobs, &mount_from, clients, reporter, streamed).await;
        blob_reports.extend(results.with_context(ctx)?);
        let root = artifact.root();
        for m in &artifact.manifests[..artifact.manifests.len() - 1] {
            repo.put_manifest(m.digest.as_str(), m).await.with_context(ctx)?;
        }
        for r in refs {
            let reference = r.tag().map_or_else(|| root.digest.to_string(), str::to_string);
            repo.put_manifest(&reference, root).await.with_context(ctx)?;
        }
        for (k, v) in repo.retry_counts() {
            *retries.entry(k).or_default() += v;
        }
        pushed_repos.push((host.clone(), name.clone()));
    }
    let root = artifact.root();
    Ok(PushReport {
        references: dests.iter().map(|r| r.to_string()).collect(),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        size: root.bytes.len() as u64,
        blobs: blob_reports,
        seconds: started.elapsed().as_secs_f64(),
        retries,
        layers: Vec::new(),
    })
}

/// Opens `host`/`name` for pushing `blobs` as the push engine does: push and pull on it, pull on
/// every repository a blob could be mounted from (`--mount-from`, `also`, and the repositories of
/// remote blobs on this registry), `--jobs` uploads at a time, one-time events to `reporter`.
/// Returns the repository and the mount candidates to give [`push_blobs`].
pub async fn open_for_push(
    clients: &Clients<'_>,
    host: &str,
    name: &str,
    blobs: &[Blob],
    also: &[String],
    reporter: &Arc<Reporter>,
) -> Result<(Repository, Vec<String>)> {
    let opts = clients.options();
    let client = clients.get(host).await?;
    let mut mount_from = opts.mount_from.clone();
    mount_from.extend(also.iter().filter(|r| !opts.mount_from.contains(r)).cloned());
    for b in blobs {
        if let BlobSource::Remote { registry, repository } = &b.source {
            if api_host(registry) == host && !mount_from.contains(repository) {
                mount_from.push(repository.clone());
            }
        }
    }
    let warn_to = reporter.clone();
    let repo = Repository::new(client, name, "pull,push", &mount_from, opts.retry)
        .with_chunk_size(opts.chunk_size)
        .with_jobs(opts.jobs)
        .with_warn(Arc::new(move |e: &Event| warn_to.event(e)));
    Ok((repo, mount_from))
}

/// The push engine's blob step alone, for callers that put the manifest themselves (an attached
/// artifact, whose PUT answer says who keeps the referrers list): every blob of `blobs` into `repo`
/// (opened by [`open_for_push`]), layers then configs, `--jobs` at a time — skipped when there,
/// mounted from `mount_from`, streamed from another registry, or uploaded.
pub async fn push_blobs(
    repo: &Repository,
    blobs: &[Blob],
    mount_from: &[String],
    clients: &Clients<'_>,
    reporter: &Arc<Reporter>,
) -> Result<Vec<BlobReport>> {
    blob_phases(repo, blobs, mount_from, clients, reporter, &Streamed::default()).await
}

async fn blob_phases(
    repo: &Repository,
    blobs: &[Blob],
    mount_from: &[String],
    clients: &Clients<'_>,
    reporter: &Arc<Reporter>,
    streamed: &Streamed,
) -> Result<Vec<BlobReport>> {
    let opts = clients.options();
    let sources = RemoteSources::new(clients, opts.retry);
    // Layers first, then configs (a manifest's config last, as registries and clients expect).
    let (configs, layers): (Vec<&Blob>, Vec<&Blob>) = blobs.iter().partition(|b| b.media_type.contains("config"));
    let mut reports = Vec::new();
    for phase in [layers, configs] {
        let results: Vec<BlobReport> = stream::iter(phase)
            .map(|blob| push_one(repo, blob, mount_from, &sources, reporter, streamed))
            .buffer_unordered(opts.jobs.max(1))
            .try_collect()
            .await?;
        reports.extend(results);
    }
    Ok(reports)
}

/// Refuses to move `tag` (of `target`, in `repo`) to `new` when the tag holds another kind of
/// artifact ([`ArtifactKind`]: an image, a Helm chart, another artifact type) — a chart pushed under
/// the release tag of the project's image would otherwise replace the image without a word. With
/// `force` it is replaced, and said so. A tag that does not exist, or already holds the same kind,
/// passes; it costs one HEAD (and one GET when the digest differs).
pub async fn guard_tag(
    repo: &Repository,
    target: &Reference,
    tag: &str,
    new: &Manifest,
    force: bool,
    reporter: &Reporter,
) -> Result<()> {
    let will = ArtifactKind::of(&new.media_type, &new.bytes);
    guard_tag_kind(repo, target, tag, &will, Some(&new.digest), force, reporter).await
}

/// [`guard_tag`] for every tagged reference in `dests`, before the manifest exists — by the kind it
/// will be (`hoist build` checks before its layers stream). With `--force` it leaves the word to the
/// push.
pub async fn guard_tags_before(
    clients: &Clients<'_>,
    dests: &[Reference],
    will: &ArtifactKind,
    reporter: &Reporter,
) -> Result<()> {
    let opts = clients.options();
    if opts.force {
        return Ok(());
    }
    for r in dests {
        let Some(tag) = r.tag() else { continue };
        let client = clients.get(r.api_host()).await.with_context(|| format!("pushing to {r}"))?;
        let repo = Repository::new(client, r.repository(), "pull,push", &[], opts.retry);
        guard_tag_kind(&repo, r, tag, will, None, false, reporter).await?;
    }
    Ok(())
}

async fn guard_tag_kind(
    repo: &Repository,
    target: &Reference,
    tag: &str,
    will: &ArtifactKind,
    new_digest: Option<&Digest>,
    force: bool,
    reporter: &Reporter,
) -> Result<()> {
    let ctx = || format!("checking what {target} holds now");
    let Some(current) = repo.manifest_digest_retried(tag).await.with_context(ctx)? else { return Ok(()) };
    if Some(&current) == new_digest {
        return Ok(());
    }
    let old = repo.get_manifest(current.as_str()).await.with_context(ctx)?;
    let was = ArtifactKind::of(&old.media_type, &old.bytes);
    if was == *will {
        return Ok(());
    }
    if force {
        reporter.warn(&format!("{target} held {was} ({}); replacing it with {will} (--force)", current.short()));
        return Ok(());
    }
    let hint = match (&was, will) {
        (ArtifactKind::Image, ArtifactKind::HelmChart) => {
            "push the chart to its own repository (hoist chart push's CI default is \
             $HARBOR_HOST/$HARBOR_PROJECT/charts/<chart>), or pass --force to replace the image"
        }
        _ => "push to another tag or repository, or pass --force to replace it",
    };
    Err(Error::usage(format!("{target} holds {was} ({}); pushing {will} there would replace it", current.short()))
        .with_hint(hint))
}

async fn push_one(
    repo: &Repository,
    blob: &Blob,
    mount_from: &[String],
    sources: &RemoteSources<'_>,
    reporter: &Arc<Reporter>,
    streamed: &Streamed,
) -> Result<BlobReport> {
    let repository = format!("{}/{}", repo.client.host(), repo.name);
    // Uploaded while it was written (hoist build -t): already reported.
    if let Some(done) = streamed.0.get(&(repository.clone(), blob.digest.clone())) {
        return Ok(done.clone());
    }
    let report = |outcome, bytes, seconds| BlobReport::of(repo, blob, outcome, bytes, seconds);
    if repo.blob_exists(&blob.digest).await? {
        reporter.skipped(blob);
        return Ok(report(BlobOutcome::Skipped, 0, 0.0));
    }
    // A remote blob is mounted from its own repository first when it is on this registry (a mount
    // that answers 202 ends the mount attempts), else streamed across from that repository (another
    // registry, or a registry that refused the mount).
    let (source, mount_from) = match &blob.source {
        BlobSource::Remote { registry, repository } => {
            let mut order: Vec<String> = Vec::with_capacity(mount_from.len() + 1);
            if api_host(registry) == repo.client.host() {
                order.push(repository.clone());
            }
            order.extend(mount_from.iter().filter(|r| *r != repository).cloned());
            (Some(sources.get(registry, repository).await?), order)
        }
        _ => (None, mount_from.to_vec()),
    };
    let _slot = repo.upload_permit().await;
    let progress = reporter.start(blob);
    let outcome = repo.upload_blob(blob, &mount_from, source.as_deref(), progress.clone()).await?;
    let bytes = if outcome == BlobOutcome::Uploaded { blob.size } else { 0 };
    reporter.finish(&progress, outcome, bytes);
    Ok(report(outcome, bytes, progress.seconds()))
}

/// Read-only repositories on other registries that remote blobs are streamed from.
struct RemoteSources<'a> {
    clients: &'a Clients<'a>,
    retry: RetryPolicy,
    repos: Mutex<HashMap<(String, String), Arc<Repository>>>,
}

impl<'a> RemoteSources<'a> {
    fn new(clients: &'a Clients<'a>, retry: RetryPolicy) -> Self {
        RemoteSources { clients, retry, repos: Mutex::new(HashMap::new()) }
    }

    async fn get(&self, registry: &str, repository: &str) -> Result<Arc<Repository>> {
        let key = (api_host(registry).to_string(), repository.to_string());
        let mut map = self.repos.lock().await;
        if let Some(r) = map.get(&key) {
            return Ok(r.clone());
        }
        let client = self.clients.get(&key.0).await?;
        let repo = Arc::new(Repository::new(client, repository, "pull", &[], self.retry));
        map.insert(key, repo.clone());
        Ok(repo)
    }
}

/// Blobs that reached a repository while they were written, by (`host/repository`, digest), and when
/// the first of them started.
#[derive(Debug, Default)]
pub struct Streamed(HashMap<(String, Digest), BlobReport>, Option<Instant>);

impl Streamed {
    fn since(&self) -> Option<Instant> {
        self.1
    }
}

/// Layers uploaded while `hoist build` compresses them. The builder hands over each layer it writes
/// afresh as its file is created ([`LayerStreams::sink`]); each is sent to the first destination's
/// repository by [`Repository::upload_growing`], `--jobs` at a time, through the same client the
/// push then uses; [`LayerStreams::finish`] collects what arrived, and [`push_with`] counts those as
/// uploaded. A stream that fails is reported and forgotten: the push engine then sends that layer
/// from its file like any other blob, with the normal retries. Layers from the layer cache are not
/// streamed: their digest is known, so the push engine can first ask whether the registry has them.
pub struct LayerStreams {
    repo: Arc<Repository>,
    reporter: Arc<Reporter>,
    runtime: tokio::runtime::Handle,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<Option<BlobReport>>>>,
    started: Arc<AtomicUsize>,
    /// When the first layer began streaming.
    first: std::sync::OnceLock<Instant>,
}

impl LayerStreams {
    /// Opens streaming to `dest`'s repository, checking push access first (so a build with no right
    /// to push fails before it compresses anything).
    pub async fn open(dest: &Reference, clients: &Clients<'_>, reporter: &Arc<Reporter>) -> Result<Arc<LayerStreams>> {
        let opts = clients.options();
        let ctx = || format!("pushing to {}/{}", dest.api_host(), dest.repository());
        let client = clients.get(dest.api_host()).await.with_context(ctx)?;
        let warn_to = reporter.clone();
        let repo = Repository::new(client, dest.repository(), "pull,push", &[], opts.retry)
            .with_chunk_size(opts.chunk_size)
            .with_jobs(opts.jobs)
            .with_warn(Arc::new(move |e: &Event| warn_to.event(e)));
        repo.check_push_access().await.with_context(ctx)?;
        Ok(Arc::new(LayerStreams {
            repo: Arc::new(repo),
            reporter: reporter.clone(),
            runtime: tokio::runtime::Handle::current(),
            tasks: std::sync::Mutex::new(Vec::new()),
            started: Arc::new(AtomicUsize::new(0)),
            first: std::sync::OnceLock::new(),
        }))
    }

    /// What the builder calls with each layer file it starts writing.
    pub fn sink(self: &Arc<Self>) -> Sink {
        let me = Arc::downgrade(self);
        Sink(Arc::new(move |file: GrowingFile, media_type: &'static str| {
            let Some(me) = me.upgrade() else { return };
            let (repo, reporter) = (me.repo.clone(), me.reporter.clone());
            let n = me.started.fetch_add(1, Ordering::Relaxed) + 1;
            me.first.get_or_init(Instant::now);
            let task = me.runtime.spawn(stream_layer(repo, reporter, file, media_type, n));
            me.tasks.lock().expect("tasks lock").push(task);
        }))
    }

    /// Waits for every stream started; the layers that reached the registry.
    pub async fn finish(&self) -> Streamed {
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        let mut done = Streamed(HashMap::new(), self.first.get().copied());
        for task in tasks {
            if let Ok(Some(r)) = task.await {
                done.0.insert((r.repository.clone(), r.digest.clone()), r);
            }
        }
        done
    }
}

impl Drop for LayerStreams {
    fn drop(&mut self) {
        // A build that failed leaves streams behind: stop them.
        for task in self.tasks.lock().expect("tasks lock").iter() {
            task.abort();
        }
    }
}

/// One layer, streamed while it is written; `None` when the stream failed (said on stderr).
async fn stream_layer(
    repo: Arc<Repository>,
    reporter: Arc<Reporter>,
    file: GrowingFile,
    media_type: &'static str,
    n: usize,
) -> Option<BlobReport> {
    let _slot = repo.upload_permit().await;
    let progress = reporter.start_growing(format!("layer #{n}"));
    match repo.upload_growing(file, progress.clone()).await {
        Ok((digest, size, outcome)) => {
            reporter.finish_growing(&progress, media_type, &digest, size, outcome);
            Some(BlobReport {
                repository: format!("{}/{}", repo.client.host(), repo.name),
                digest,
                media_type: media_type.to_string(),
                size,
                outcome,
                bytes: if outcome == BlobOutcome::Uploaded { size } else { 0 },
                seconds: progress.seconds(),
            })
        }
        Err(e) => {
            reporter.abandon(&progress);
            reporter.warn(&format!(
                "uploading layer #{n} while compressing it failed ({e}); it is sent again from its file"
            ));
            None
        }
    }
}
