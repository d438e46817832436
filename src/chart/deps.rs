//! `--dependency-update`: fetches the dependencies Chart.yaml declares and `charts/` lacks, as
//! `helm dependency build` would: the version pinned by Chart.lock (whose digest must match
//! Chart.yaml's dependencies) or the highest version matching the constraint; from `oci://`
//! repositories through hoist's registry transport (credentials and registry mirrors as for images:
//! each mirror first, the origin last), from `https://`
//! repositories through their `index.yaml` (the archive's digest checked), from `file://` directories
//! (packaged here, with their own `.helmignore`). Each lands in `charts/` as `<name>-<version>.tgz`,
//! written through a temporary file and a rename.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::load::{self, MAX_CHART_SIZE};
use super::metadata::{lock_digest, Dependency, Lock};
use super::oci::CHART_MEDIA_TYPE;
use super::version::{Constraint, Version};
use crate::error::{Context, Error, Result};
use crate::model::{Digest, OciImageManifest, Reference};
use crate::progress::Reporter;
use crate::push::{Clients, PushOptions};
use crate::registry::mirrors::Mirrors;
use crate::registry::ops::Repository;

/// The legacy layer type helm still accepts on pull.
const LEGACY_CHART_MEDIA_TYPE: &str = "application/tar+gzip";

/// Which version to fetch: pinned by the lock, or the best match of a constraint.
#[derive(Debug, Clone)]
enum Want {
    Exact(String),
    Range(Constraint, String),
}

impl Want {
    fn pick<'a>(&self, available: impl Iterator<Item = &'a str>) -> Option<String> {
        match self {
            Want::Exact(v) => available.into_iter().find(|a| a == v).map(str::to_string),
            Want::Range(c, _) => available
                .filter_map(|a| Version::parse(a).map(|v| (v, a)))
                .filter(|(v, _)| c.matches(v))
                .max_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, a)| a.to_string()),
        }
    }
    fn describe(&self) -> String {
        match self {
            Want::Exact(v) => format!("{v} (from the lock)"),
            Want::Range(_, c) => format!("a version matching {c:?}"),
        }
    }
}

/// Fetches what `dir`'s Chart.yaml declares and its `charts/` lacks (`file://` charts are packaged with
/// mtimes `epoch`). Returns the files written.
pub async fn update(
    dir: &Path,
    clients: &Clients<'_>,
    opts: &PushOptions,
    reporter: &Arc<Reporter>,
    mirrors: &Mirrors,
    epoch: u64,
) -> Result<Vec<PathBuf>> {
    let chart = {
        let d = dir.to_path_buf();
        tokio::task::spawn_blocking(move || load::load_dir(&d))
            .await
            .map_err(|e| Error::other(format!("loading chart: {e}")))??
    };
    let missing: Vec<&Dependency> = chart
        .metadata
        .dependencies
        .iter()
        .filter(|d| !chart.dependencies.iter().any(|c| c.metadata.name == d.name))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    check_lock(&chart.metadata.dependencies, chart.lock.as_ref())?;
    let mut written = Vec::new();
    for dep in missing {
        let want = match chart.lock.as_ref().and_then(|l| l.dependencies.iter().find(|d| d.name == dep.name)) {
            Some(locked) => Want::Exact(locked.version.clone()),
            None => {
                let spec = if dep.version.is_empty() { "*" } else { dep.version.as_str() };
                let c = Constraint::parse(spec).ok_or_else(|| {
                    Error::usage(format!("dependency {}: version {spec:?} is not a valid constraint", dep.name))
                })?;
                Want::Range(c, spec.to_string())
            }
        };
        let ctx = || format!("fetching dependency {} ({})", dep.name, dep.repository);
        let source = Source { clients, opts, mirrors, reporter };
        let (version, tgz) = fetch(dir, dep, &want, &source, epoch).await.with_context(ctx)?;
        // What came must be the chart asked for.
        let got = super::load_archive(&tgz).with_context(ctx)?;
        if got.metadata.name != dep.name || got.metadata.version != version {
            return Err(Error::other(format!(
                "{}: the archive holds {} {}, not {} {version}",
                ctx(),
                got.metadata.name,
                got.metadata.version,
                dep.name
            )));
        }
        let path = super::write_atomically(&dir.join("charts"), &format!("{}-{version}.tgz", dep.name), &tgz)?;
        reporter.note(&format!("dependency {} {version} → {}", dep.name, path.display()));
        written.push(path);
    }
    Ok(written)
}

/// A lock must be in step with Chart.yaml: Helm's digest over both dependency lists.
fn check_lock(requested: &[Dependency], lock: Option<&Lock>) -> Result<()> {
    let Some(lock) = lock else { return Ok(()) };
    let want = lock_digest(requested, &lock.dependencies);
    if lock.digest != want {
        return Err(Error::other(format!(
            "Chart.lock is out of sync with Chart.yaml's dependencies (its digest is {}, Chart.yaml gives {want})",
            lock.digest
        ))
        .with_hint(
            "update the lock (helm dependency update), or delete Chart.lock to resolve the versions from Chart.yaml",
        ));
    }
    Ok(())
}

/// Where remote charts come from: the registry clients, their options, the mirrors; notes go to `reporter`.
struct Source<'a> {
    clients: &'a Clients<'a>,
    opts: &'a PushOptions,
    mirrors: &'a Mirrors,
    reporter: &'a Arc<Reporter>,
}

async fn fetch(
    dir: &Path,
    dep: &Dependency,
    want: &Want,
    source: &Source<'_>,
    epoch: u64,
) -> Result<(String, Vec<u8>)> {
    let repo = dep.repository.trim();
    if let Some(path) = repo.strip_prefix("file://") {
        return from_dir(&dir.join(path), dep, want, epoch);
    }
    if let Some(rest) = repo.strip_prefix("oci://") {
        return from_oci(rest, dep, want, source).await;
    }
    if repo.starts_with("https://") || repo.starts_with("http://") {
        return from_index(repo, dep, want, source.opts).await;
    }
    if repo.is_empty() {
        return Err(Error::usage(format!("dependency {} has no repository", dep.name)).with_hint(
            "vendor it in charts/ (a directory or a .tgz), or give it an oci://, https:// or file:// repository",
        ));
    }
    Err(Error::usage(format!("repository {repo:?} is not supported"))
        .with_hint("hoist reads oci://, https:// and file:// repositories; helm's @alias repository names need helm's repository list"))
}

fn from_dir(path: &Path, dep: &Dependency, want: &Want, epoch: u64) -> Result<(String, Vec<u8>)> {
    let chart = load::load_dir(path)?;
    let version = chart.metadata.version.clone();
    if want.pick(std::iter::once(version.as_str())).is_none() {
        return Err(Error::other(format!(
            "{} has {} {version}, not {}",
            path.display(),
            chart.metadata.name,
            want.describe()
        )));
    }
    let mut chart = chart;
    chart.metadata.validate()?;
    if chart.metadata.name != dep.name {
        return Err(Error::other(format!(
            "{} holds chart {:?}, not {:?}",
            path.display(),
            chart.metadata.name,
            dep.name
        )));
    }
    let pkg = super::build(&chart, epoch)?;
    Ok((version, pkg.tgz))
}

/// From an OCI repository `base/<name>`: each registry mirror of it first, the origin last.
async fn from_oci(base: &str, dep: &Dependency, want: &Want, source: &Source<'_>) -> Result<(String, Vec<u8>)> {
    let tag = match want {
        Want::Exact(v) => v.replace('+', "_"),
        Want::Range(..) => "latest".into(), // only to pick the mirrors; the tag comes from the tag list
    };
    let origin: Reference = format!("{}/{}:{tag}", base.trim_end_matches('/'), dep.name).parse()?;
    let candidates = source.mirrors.candidates(&origin)?;
    let last = candidates.len() - 1;
    for (i, at) in candidates.into_iter().enumerate() {
        match from_oci_at(&at, want, source).await {
            Ok(found) => return Ok(found),
            Err(e) if i < last => source.reporter.warn(&format!(
                "mirror {} for {}: {e}; trying the next source",
                at.name(),
                origin.name()
            )),
            Err(e) => return Err(e),
        }
    }
    unreachable!("the origin is always a candidate")
}

async fn from_oci_at(at: &Reference, want: &Want, source: &Source<'_>) -> Result<(String, Vec<u8>)> {
    let client = source.clients.get(at.api_host()).await?;
    let repo = Repository::new(client, at.repository(), "pull", &[], source.opts.retry);
    let version = match want {
        Want::Exact(v) => v.clone(),
        Want::Range(..) => {
            // Tags carry `+` as `_`.
            let tags: Vec<String> = repo.list_tags(None).await?.into_iter().map(|t| t.replace('_', "+")).collect();
            want.pick(tags.iter().map(String::as_str)).ok_or_else(|| {
                Error::other(format!("no tag of {} is {}", at.name(), want.describe()))
                    .with_hint(format!("tags there: {}", if tags.is_empty() { "none".into() } else { tags.join(", ") }))
            })?
        }
    };
    let manifest = repo.get_manifest(&version.replace('+', "_")).await?;
    let m: OciImageManifest = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| Error::other(format!("the chart's manifest is not an OCI manifest: {e}")))?;
    let layer = m
        .layers
        .iter()
        .find(|l| l.media_type == CHART_MEDIA_TYPE || l.media_type == LEGACY_CHART_MEDIA_TYPE)
        .ok_or_else(|| Error::other(format!("{}:{version} is not a Helm chart (no chart layer)", at.name())))?;
    if layer.size < 0 || layer.size as u64 > MAX_CHART_SIZE {
        return Err(Error::other(format!("the chart layer is {} bytes, too large for a chart", layer.size)));
    }
    let digest: Digest = layer.digest.parse()?;
    let bytes = repo.get_blob_bytes(&digest).await?;
    Ok((version, bytes.to_vec()))
}

async fn from_index(repo: &str, dep: &Dependency, want: &Want, opts: &PushOptions) -> Result<(String, Vec<u8>)> {
    let base = url::Url::parse(&format!("{}/", repo.trim_end_matches('/')))
        .map_err(|e| Error::usage(format!("repository {repo:?} is not a URL: {e}")))?;
    let index_url = base.join("index.yaml").expect("static path");
    let index = crate::registry::fetch::get_url(&index_url, &opts.client, opts.retry, 64 << 20).await?;
    let doc: serde_norway::Value =
        serde_norway::from_slice(&index).map_err(|e| Error::other(format!("{index_url} is not valid YAML: {e}")))?;
    let entries = doc.get("entries").and_then(|e| e.get(dep.name.as_str())).and_then(|e| e.as_sequence());
    let entries = entries.ok_or_else(|| Error::other(format!("{index_url} lists no chart named {:?}", dep.name)))?;
    let versions: Vec<&str> = entries.iter().filter_map(|e| e.get("version").and_then(|v| v.as_str())).collect();
    let version = want.pick(versions.iter().copied()).ok_or_else(|| {
        Error::other(format!("{index_url} has no {} that is {}", dep.name, want.describe()))
            .with_hint(format!("versions there: {}", versions.join(", ")))
    })?;
    let entry = entries
        .iter()
        .find(|e| e.get("version").and_then(|v| v.as_str()) == Some(version.as_str()))
        .expect("picked from these entries");
    let url = entry
        .get("urls")
        .and_then(|u| u.as_sequence())
        .and_then(|u| u.first())
        .and_then(|u| u.as_str())
        .ok_or_else(|| Error::other(format!("{index_url}: {} {version} has no download URL", dep.name)))?;
    let url = base.join(url).map_err(|e| Error::other(format!("{index_url}: bad URL {url:?}: {e}")))?;
    let bytes = crate::registry::fetch::get_url(&url, &opts.client, opts.retry, MAX_CHART_SIZE).await?;
    if let Some(want_digest) = entry.get("digest").and_then(|d| d.as_str()).filter(|d| !d.is_empty()) {
        let got = Digest::sha256_of(&bytes);
        if got.hex() != want_digest.trim_start_matches("sha256:") {
            return Err(Error::other(format!(
                "{url}: the archive's sha256 is {}, the index says {want_digest}",
                got.hex()
            )));
        }
    }
    Ok((version, bytes.to_vec()))
}
