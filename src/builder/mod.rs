//! Building images without a container runtime: Dockerfile parsing ([`dockerfile`]), the build
//! context and `.dockerignore` ([`context`], [`ignore`]), planning stages and instructions
//! ([`plan`]), deterministic gzip or zstd layers ([`layer`]) and the local layer cache
//! ([`cache`]), base images from registries ([`base`]) and config helpers ([`config`]), and the
//! docker-archive output ([`archive`]). [`build`] ties them together into an [`Artifact`] the push
//! engine or the layout writer takes; [`check`] validates without writing anything.

pub mod archive;
pub mod base;
pub mod cache;
pub mod config;
pub mod context;
pub mod dockerfile;
mod gzip;
pub mod ignore;
pub mod images;
pub mod layer;
pub mod plan;
pub mod reuse;
pub mod source;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::model::{media, Artifact, Blob, BlobSource, Manifest, OciImageManifest};
use crate::push::Clients;
use crate::registry::ops::RetryPolicy;
use context::BuildContext;
use dockerfile::Dockerfile;
use plan::{Outline, PlanInput, Stage};
use source::{BaseImage, Platform};

pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// The `comment` of every history entry hoist writes: how a base image hoist built is told apart
/// ([`reuse::Candidates::add_base`]).
pub const HISTORY_COMMENT: &str = "hoist build";

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// The Dockerfile; `CONTEXT/Dockerfile` when `None`.
    pub file: Option<PathBuf>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub platform: Platform,
    /// mtimes, `created` and history timestamps.
    pub epoch: u64,
    /// Layers written at once.
    pub jobs: usize,
    /// One layer for everything this build adds (base layers stay as they are).
    pub squash: bool,
    /// How the layers this build writes are compressed.
    pub compression: layer::Compression,
    /// The layer cache directory ([`cache`]); `None` writes every layer anew.
    pub cache: Option<PathBuf>,
    /// Where layers written afresh go as they are compressed (`hoist build -t` streams them to the
    /// registry); `None` only writes them.
    pub stream: Option<crate::growing::Sink>,
    /// Where registry images are pulled from before their origin.
    pub mirrors: crate::registry::mirrors::Mirrors,
    /// Images in registries whose layers this build may reuse ([`reuse`]): the destination's tags,
    /// `--cache-from`; the base images are added by [`build`]. `None` (`--no-cache-from`): none, and
    /// nothing is hashed before it is compressed.
    pub cache_from: Option<Vec<crate::model::Reference>>,
    /// Where downloads of `COPY --from` image layers show their progress; `None`: silent.
    pub reporter: Option<Arc<crate::progress::Reporter>>,
    /// `--sbom` (not `=added`): read the final stage's base packages ([`Built::base_sbom`]).
    pub sbom_base: bool,
}

/// A parsed Dockerfile with its context and stage outline.
pub struct Prepared {
    pub dockerfile: Dockerfile,
    pub file_name: String,
    pub context: BuildContext,
    pub outline: Outline,
}

/// A built image: the artifact and the spool directory its layers live in (keep it alive until the
/// push or the layout write is done).
pub struct Built {
    pub artifact: Artifact,
    pub spool: tempfile::TempDir,
    /// Things worth telling the user (unused `--build-arg`s).
    pub warnings: Vec<String>,
    /// How many of the layers this build made came from the layer cache, of how many.
    pub cached_layers: (usize, usize),
    /// Which base layers were read and why (for the log).
    pub notes: Vec<String>,
    /// Where each layer this build made came from (built, local cache, reused from the registry).
    pub layers: Vec<crate::push::BuildLayer>,
    /// The registry images read as candidates for reuse, and those that could not be.
    pub candidates: reuse::Candidates,
    /// Every registry image the build read (FROM bases and `COPY --from` images), by name, with
    /// the digest it resolved to: the provenance's resolved dependencies.
    pub inputs: Vec<Arc<BaseImage>>,
    /// The files this build added (the stage's merged tree, base layers not included): what
    /// `--sbom` catalogues.
    pub added: layer::Tree,
    /// The final stage's base image's packages, when [`BuildOptions::sbom_base`] asked.
    pub base_sbom: Option<images::BaseSbom>,
}

/// `--build-arg` names no ARG in the Dockerfile declares (docker warns about them too).
pub fn unused_build_args(df: &Dockerfile, build_args: &BTreeMap<String, String>) -> Vec<String> {
    let declared: std::collections::HashSet<&str> = df
        .instructions
        .iter()
        .filter(|i| i.keyword == "arg")
        .filter_map(|i| match &i.args {
            dockerfile::Args::KeyValues(kvs) => Some(kvs.iter().map(|kv| kv.key.as_str())),
            _ => None,
        })
        .flatten()
        .collect();
    build_args.keys().filter(|k| !declared.contains(k.as_str())).cloned().collect()
}

/// One image per platform, combined under an image index (`annotations` on the index). The
/// returned spools hold every platform's layers.
pub fn combine(
    images: Vec<(Platform, Built)>,
    annotations: &BTreeMap<String, String>,
) -> (Artifact, Vec<tempfile::TempDir>) {
    let mut blobs: Vec<Blob> = Vec::new();
    let mut manifests = Vec::new();
    let mut entries = Vec::new();
    let mut spools = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (platform, built) in images {
        for b in built.artifact.blobs {
            if seen.insert(b.digest.clone()) {
                blobs.push(b);
            }
        }
        let root = built.artifact.manifests.last().expect("one manifest").clone();
        let mut p = json!({"architecture": platform.architecture, "os": platform.os});
        if let Some(v) = &platform.variant {
            p["variant"] = json!(v);
        }
        entries.push(
            json!({"mediaType": root.media_type, "digest": root.digest, "size": root.bytes.len(), "platform": p}),
        );
        manifests.push(root);
        spools.push(built.spool);
    }
    let mut index = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": entries});
    if !annotations.is_empty() {
        index["annotations"] = json!(annotations);
    }
    manifests.push(Manifest::new(media::OCI_INDEX, serde_json::to_vec(&index).expect("index serializes")));
    (Artifact { blobs, manifests }, spools)
}

/// Reads and parses the Dockerfile: (the Dockerfile, its name for messages, its path).
fn read_dockerfile(opts: &BuildOptions) -> Result<(Dockerfile, String, PathBuf)> {
    let file = opts.file.clone().unwrap_or_else(|| opts.context.join("Dockerfile"));
    let file_name = file.file_name().map_or_else(|| "Dockerfile".into(), |n| n.to_string_lossy().to_string());
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Error::usage(format!("reading {}: {e}", file.display())).with_hint("give the Dockerfile with -f FILE")
    })?;
    let dockerfile =
        dockerfile::parse(&text).map_err(|e| Error::usage(format!("{file_name}:{}: {}", e.line, e.message)))?;
    Ok((dockerfile, file_name, file))
}

/// Reads and parses the Dockerfile, opens the context, outlines the stages.
pub fn prepare(opts: &BuildOptions) -> Result<Prepared> {
    let (dockerfile, file_name, file) = read_dockerfile(opts)?;
    let context = BuildContext::open_for(&opts.context, Some(&file))?;
    let input = input_of(&dockerfile, &file_name, &context, opts);
    let outline = plan::outline(&input)?;
    Ok(Prepared { dockerfile, file_name, context, outline })
}

/// `--check --json`: one JSON document whatever fails — reading, parsing, the context, the stage
/// outline or the evaluation — with as much as was learnt before (`instructions`, `stages`), and
/// the outcome.
pub fn check_report(opts: &BuildOptions) -> (Value, Result<()>) {
    let name = opts
        .file
        .as_ref()
        .and_then(|f| f.file_name())
        .map_or_else(|| "Dockerfile".into(), |n| n.to_string_lossy().to_string());
    let mut doc = json!({"file": name, "ok": false, "error": null, "hint": null, "stages": [], "instructions": []});
    let result = (|| -> Result<()> {
        let (dockerfile, file_name, file) = read_dockerfile(opts)?;
        doc["instructions"] = instructions_json(&dockerfile);
        let context = BuildContext::open_for(&opts.context, Some(&file))?;
        let input = input_of(&dockerfile, &file_name, &context, opts);
        let outline = plan::outline(&input)?;
        doc["stages"] = outline
            .stages
            .iter()
            .map(|s| json!({"index": s.index, "name": s.name, "from": s.from, "line": s.line, "needed": outline.needed[s.index]}))
            .collect();
        plan::evaluate(&input, &outline, &HashMap::new()).map(|_| ())
    })();
    doc["ok"] = json!(result.is_ok());
    if let Err(e) = &result {
        doc["error"] = json!(e.to_string());
        doc["hint"] = json!(e.hint());
    }
    (doc, result)
}

fn input_of<'a>(df: &'a Dockerfile, name: &'a str, ctx: &'a BuildContext, opts: &'a BuildOptions) -> PlanInput<'a> {
    PlanInput {
        dockerfile: df,
        file_name: name,
        context: ctx,
        build_args: &opts.build_args,
        target: opts.target.as_deref(),
        platform: &opts.platform,
        images: None,
    }
}

/// Validates everything that can be validated offline (base images are not resolved).
pub fn check(opts: &BuildOptions) -> Result<Prepared> {
    let prepared = prepare(opts)?;
    let input = input_of(&prepared.dockerfile, &prepared.file_name, &prepared.context, opts);
    plan::evaluate(&input, &prepared.outline, &HashMap::new())?;
    Ok(prepared)
}

/// Builds the image: resolves base images through `clients`, plans, writes the layers, and
/// assembles config and manifest.
pub async fn build(opts: &BuildOptions, clients: &Clients<'_>, retry: RetryPolicy) -> Result<Built> {
    let prepared = prepare(opts)?;
    let mut resolved: HashMap<String, Arc<BaseImage>> = HashMap::new();
    let mut notes = Vec::new();
    let mut bases: HashMap<usize, Arc<BaseImage>> = HashMap::new();
    for (index, image) in prepared.outline.registry_bases() {
        let base = resolve_once(&mut resolved, &mut notes, clients, &image, opts, retry).await?;
        bases.insert(index, base);
    }
    // Registry images whose files COPY --from and --chown names read: fetched before planning,
    // which is offline.
    let (need_layers, need_accounts) = prepared.outline.image_needs(&prepared.dockerfile);
    let mut sources = images::ImageSources::new(opts.cache.as_deref())?;
    for name in &need_layers {
        let image = resolve_once(&mut resolved, &mut notes, clients, name, opts, retry).await?;
        sources.fetch_layers(clients, name, image, retry, opts.jobs, opts.reporter.as_deref()).await?;
    }
    for name in need_accounts.difference(&need_layers) {
        let image = resolve_once(&mut resolved, &mut notes, clients, name, opts, retry).await?;
        sources.fetch_accounts(clients, name, image, retry).await?;
    }
    let mut input = input_of(&prepared.dockerfile, &prepared.file_name, &prepared.context, opts);
    input.images = Some(&sources);
    // Planning asks of the base what its result depends on (whether a directory a `--chown` copy or
    // a non-root WORKDIR would make is there); the answers come from the base's layer listings and
    // the plan is made again, until nothing new is asked (each round answers at least one question).
    let mut rounds = 0;
    let stage = loop {
        let stage = plan::evaluate(&input, &prepared.outline, &bases)?;
        let asked = sources.take_asked();
        if asked.is_empty() {
            break stage;
        }
        rounds += 1;
        if rounds > 64 {
            return Err(Error::other("internal: planning kept asking about the base image's directories"));
        }
        for (name, questions) in asked {
            let image = resolve_once(&mut resolved, &mut notes, clients, &name, opts, retry).await?;
            sources.learn(clients, &name, &image, &questions, retry).await?;
        }
    };
    let candidates = match &opts.cache_from {
        None => reuse::Candidates::off("--no-cache-from: the registry is not asked"),
        Some(refs) => {
            let mut images: Vec<(&String, &Arc<BaseImage>)> = resolved.iter().collect();
            images.sort_by(|a, b| a.0.cmp(b.0));
            let images: Vec<Arc<BaseImage>> = images.into_iter().map(|(_, b)| b.clone()).collect();
            reuse::gather(clients, refs, &images, &opts.platform, retry).await
        }
    };
    // `--sbom` (not `=added`): the base's packages, read from its layers (or an SBOM it carries).
    let base_sbom = async {
        match (&stage.base, opts.sbom_base) {
            (Some(base), true) => sources
                .base_sbom(clients, &base.reference.to_string(), base, retry)
                .await
                .map(Some)
                .map_err(|e| e.context(format!("reading the packages of the base {} for --sbom", base.reference))),
            _ => Ok(None),
        }
    };
    // Compressing is CPU-bound: off the async worker, so the uploads that follow it keep running;
    // reading the base's packages (network and inflate) runs beside it on a thread of its own.
    let handle = tokio::runtime::Handle::current();
    let (built, base_sbom) = match handle.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => {
            let base_sbom = base_sbom.await;
            (assemble_with(&stage, opts, candidates), base_sbom)
        }
        _ => tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let reading = scope.spawn(|| handle.block_on(base_sbom));
                let built = assemble_with(&stage, opts, candidates);
                (built, reading.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            })
        }),
    };
    let (mut built, base_sbom) = (built?, base_sbom?);
    built.warnings = unused_build_args(&prepared.dockerfile, &opts.build_args)
        .into_iter()
        .map(|k| format!("--build-arg {k} was not consumed: no ARG {k} in the Dockerfile"))
        .chain(notes)
        .collect();
    built.notes = sources.take_notes();
    built.base_sbom = base_sbom;
    let mut inputs: Vec<(&String, &Arc<BaseImage>)> = resolved.iter().collect();
    inputs.sort_by(|a, b| a.0.cmp(b.0));
    built.inputs = inputs.into_iter().map(|(_, b)| b.clone()).collect();
    Ok(built)
}

/// Resolves a registry image once per build, however many stages and `--from`s name it.
async fn resolve_once(
    resolved: &mut HashMap<String, Arc<BaseImage>>,
    notes: &mut Vec<String>,
    clients: &Clients<'_>,
    image: &str,
    opts: &BuildOptions,
    retry: RetryPolicy,
) -> Result<Arc<BaseImage>> {
    if let Some(b) = resolved.get(image) {
        return Ok(b.clone());
    }
    let (b, n) = base::resolve(clients, image, &opts.platform, retry, &opts.mirrors).await?;
    notes.extend(n);
    let b = Arc::new(b);
    resolved.insert(image.to_string(), b.clone());
    Ok(b)
}

/// Writes the stage's layers and assembles the artifact.
pub fn assemble(stage: &Stage, opts: &BuildOptions) -> Result<Built> {
    assemble_with(stage, opts, reuse::Candidates::default())
}

/// [`assemble`], reusing the layers `candidates` already hold in a registry instead of writing them.
pub fn assemble_with(stage: &Stage, opts: &BuildOptions, candidates: reuse::Candidates) -> Result<Built> {
    let spool = tempfile::Builder::new()
        .prefix("hoist-build-")
        .tempdir()
        .map_err(|e| Error::io("creating the layer spool directory", e))?;
    let squashed;
    let (trees, history): (&[layer::Tree], Vec<(String, bool)>) = if opts.squash && !stage.layers.is_empty() {
        squashed = [stage.fs.clone()];
        let mut h: Vec<(String, bool)> = stage.history.iter().map(|(c, _)| (c.clone(), true)).collect();
        h.push(("hoist build --squash".to_string(), false));
        (&squashed, h)
    } else {
        (&stage.layers, stage.history.clone())
    };
    let (layers, records, hits) = write_layers(trees, opts, spool.path(), &candidates)?;
    let cached_layers = (hits, layers.len());
    let created = config::rfc3339(opts.epoch);
    let mut doc = match &stage.base {
        Some(b) => b.config.clone(),
        None => {
            let mut d = json!({
                "architecture": opts.platform.architecture,
                "os": opts.platform.os,
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            });
            if let Some(v) = &opts.platform.variant {
                d["variant"] = json!(v);
            }
            d
        }
    };
    let mut cfg = stage.config.clone();
    if !opts.labels.is_empty() {
        let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in &opts.labels {
            labels[k] = json!(v);
        }
    }
    doc["config"] = Value::Object(cfg);
    doc["created"] = json!(created);
    if let Some(a) = &stage.author {
        doc["author"] = json!(a);
    }
    if !doc["rootfs"].is_object() {
        doc["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    if !doc["rootfs"]["diff_ids"].is_array() {
        doc["rootfs"]["diff_ids"] = json!([]);
    }
    for l in &layers {
        doc["rootfs"]["diff_ids"].as_array_mut().expect("array").push(json!(l.diff_id));
    }
    if !doc["history"].is_array() {
        doc["history"] = json!([]);
    }
    for (created_by, empty) in &history {
        let mut h = json!({"created": created, "created_by": created_by, "comment": HISTORY_COMMENT});
        if *empty {
            h["empty_layer"] = json!(true);
        }
        doc["history"].as_array_mut().expect("array").push(h);
    }
    let config_blob = Blob::from_bytes(media::OCI_CONFIG, serde_json::to_vec(&doc).expect("config serializes"));
    let mut blobs: Vec<Blob> = Vec::new();
    let mut descriptors = Vec::new();
    let mut annotations = BTreeMap::new();
    if let Some(b) = &stage.base {
        for d in &b.layers {
            let blob = Blob {
                digest: d.digest.parse()?,
                size: d.size as u64,
                media_type: d.media_type.clone(),
                source: BlobSource::Remote {
                    registry: b.source.registry().to_string(),
                    repository: b.source.repository().to_string(),
                },
            };
            descriptors.push(d.clone());
            blobs.push(blob);
        }
        let tag = b.reference.tag().map(|t| format!(":{t}")).unwrap_or_default();
        annotations.insert(ANNOTATION_BASE_NAME.to_string(), format!("{}{tag}", b.reference.name()));
        annotations.insert(ANNOTATION_BASE_DIGEST.to_string(), b.digest.to_string());
    }
    for l in layers {
        descriptors.push(crate::layout::docker_archive::descriptor(&l.blob));
        blobs.push(l.blob);
    }
    annotations.extend(opts.annotations.clone());
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|b| seen.insert(b.digest.clone()));
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config: crate::layout::docker_archive::descriptor(&config_blob),
        layers: descriptors,
        subject: None,
        artifact_type: None,
        annotations: if annotations.is_empty() { None } else { Some(annotations.into_iter().collect()) },
    };
    blobs.push(config_blob);
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    Ok(Built {
        artifact: Artifact { blobs, manifests: vec![Manifest::new(media::OCI_MANIFEST, bytes)] },
        spool,
        warnings: Vec::new(),
        cached_layers,
        notes: Vec::new(),
        layers: records,
        candidates,
        inputs: Vec::new(),
        added: stage.fs.clone(),
        base_sbom: None,
    })
}

/// Writes layers `jobs` at a time, in order, taking those the cache has from it (and storing the
/// others there; a cache that cannot be written only costs the next build time) and reusing those a
/// registry candidate lists by `diff_id` ([`reuse`]). Returns the layers, where each came from, and
/// how many the local cache had (those it had and a candidate holds too are reused from the registry).
fn write_layers(
    trees: &[layer::Tree],
    opts: &BuildOptions,
    dir: &Path,
    candidates: &reuse::Candidates,
) -> Result<(Vec<layer::Layer>, Vec<crate::push::BuildLayer>, usize)> {
    use crate::push::{BuildLayer, LayerOrigin};
    let (epoch, jobs, compression) = (opts.epoch, opts.jobs.max(1), opts.compression);
    let cache = opts.cache.as_ref().map(cache::Cache::new);
    let cache = cache.as_ref();
    // Hash first only when a candidate could answer (see `reuse`): otherwise a layer costs what it
    // always did.
    let prehash = candidates.worth_hashing(compression);
    // Only layers written afresh are streamed: a cache hit knows its digest, and the push engine
    // checks the registry for it before sending anything.
    let sink = opts.stream.as_ref();
    let record = |l: &layer::Layer, origin, from: Option<String>, why: Option<String>| BuildLayer {
        diff_id: l.diff_id.clone(),
        digest: l.blob.digest.clone(),
        size: l.blob.size,
        origin,
        from,
        why,
    };
    let reused = |m: &reuse::Match, diff_id: &crate::model::Digest| {
        let l = layer::Layer { blob: m.blob(), diff_id: diff_id.clone() };
        let r = record(&l, LayerOrigin::Registry, Some(m.from.clone()), None);
        (l, r)
    };
    let one = move |t: &layer::Tree, name: String| -> Result<(layer::Layer, BuildLayer, bool)> {
        let key = cache.map(|_| cache::key(t, epoch, compression)).transpose()?;
        if let (Some(cache), Some(key)) = (cache, &key) {
            if let Some(hit) = cache.get(key) {
                // The local hit knows its diff_id: a candidate holding it saves the upload too.
                return Ok(match candidates.find(&hit.diff_id, compression) {
                    Ok(m) => {
                        let (l, r) = reused(m, &hit.diff_id);
                        (l, r, true)
                    }
                    Err(why) => {
                        let r = record(&hit, LayerOrigin::Cache, None, Some(why));
                        (hit, r, true)
                    }
                });
            }
        }
        let why = if prehash {
            let diff_id = layer::diff_id(t, epoch)?;
            match candidates.find(&diff_id, compression) {
                Ok(m) => {
                    let (l, r) = reused(m, &diff_id);
                    return Ok((l, r, false));
                }
                Err(why) => why,
            }
        } else {
            candidates.why_not_hashed()
        };
        let l = layer::write_layer_to(t, epoch, dir, &name, compression, sink)?;
        if let (Some(cache), Some(key)) = (cache, &key) {
            let _ = cache.put(key, &l);
        }
        let r = record(&l, LayerOrigin::Built, None, Some(why));
        Ok((l, r, false))
    };
    let mut out = Vec::with_capacity(trees.len());
    let mut records = Vec::with_capacity(trees.len());
    let mut hits = 0;
    for (chunk_no, chunk) in trees.chunks(jobs).enumerate() {
        let results: Vec<Result<(layer::Layer, BuildLayer, bool)>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let name = format!("layer-{}.{}", chunk_no * jobs + i, compression.tag());
                    s.spawn(move || one(t, name))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(Error::other("layer writer panicked"))))
                .collect()
        });
        for r in results {
            let (l, rec, hit) = r?;
            hits += usize::from(hit);
            out.push(l);
            records.push(rec);
        }
    }
    Ok((out, records, hits))
}

/// The instructions as JSON for `--check --json`: name, flags, args, line.
pub fn instructions_json(df: &Dockerfile) -> Value {
    let items: Vec<Value> = df
        .instructions
        .iter()
        .map(|i| {
            json!({
                "name": i.keyword,
                "flags": i.flags.iter().map(|f| f.to_arg()).collect::<Vec<_>>(),
                "args": i.args,
                "heredocs": i.heredocs,
                "line": i.line,
                "endLine": i.end_line,
                "original": i.original,
            })
        })
        .collect();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_scratch_image_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY a /a\nLABEL x=y\nCMD [\"/a\"]\n").unwrap();
        std::fs::write(dir.path().join("a"), "hello").unwrap();
        let opts = BuildOptions {
            context: dir.path().to_path_buf(),
            file: None,
            build_args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::from([("l".to_string(), "v".to_string())]),
            annotations: BTreeMap::new(),
            platform: Platform::parse("linux/amd64").unwrap(),
            epoch: 0,
            jobs: 2,
            squash: false,
            compression: layer::Compression::default(),
            cache: None,
            stream: None,
            mirrors: Default::default(),
            cache_from: None,
            reporter: None,
            sbom_base: false,
        };
        let p = check(&opts).unwrap();
        assert_eq!(instructions_json(&p.dockerfile).as_array().unwrap().len(), 4);
        let stage = {
            let input = input_of(&p.dockerfile, &p.file_name, &p.context, &opts);
            plan::evaluate(&input, &p.outline, &HashMap::new()).unwrap()
        };
        let a = assemble(&stage, &opts).unwrap();
        let b = assemble(&stage, &opts).unwrap();
        assert_eq!(a.artifact.root().digest, b.artifact.root().digest);
        assert_eq!(a.artifact.blobs.len(), 2);
        let cfg = a.artifact.blobs.iter().find(|b| b.media_type == media::OCI_CONFIG).unwrap();
        let BlobSource::Bytes(bytes) = &cfg.source else { panic!() };
        let v: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(v["config"]["Labels"], json!({"x": "y", "l": "v"}));
        assert_eq!(v["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
        assert_eq!(v["history"].as_array().unwrap().len(), 3);
        assert_eq!(v["created"], json!("1970-01-01T00:00:00Z"));

        let squashed = assemble(&stage, &BuildOptions { squash: true, ..opts.clone() }).unwrap();
        assert_eq!(squashed.artifact.blobs.len(), 2);
        assert_ne!(squashed.artifact.root().digest, a.artifact.root().digest, "history differs");

        let args = BTreeMap::from([("NOPE".to_string(), "1".to_string())]);
        assert_eq!(unused_build_args(&p.dockerfile, &args), ["NOPE"]);
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        let (index, spools) = combine(vec![(opts.platform.clone(), a), (arm, b)], &BTreeMap::new());
        assert_eq!(spools.len(), 2);
        assert_eq!(index.manifests.len(), 3);
        assert_eq!(index.blobs.len(), 2, "identical layers and configs are stored once");
        let v: Value = serde_json::from_slice(&index.root().bytes).unwrap();
        assert_eq!(v["manifests"][1]["platform"], json!({"architecture": "arm64", "os": "linux", "variant": "v8"}));
    }
}
