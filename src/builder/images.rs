//! Files from registry images, for `COPY --from=<image>` (or a stage that is only an image) and for
//! `--chown=<name>` on a registry base: the layer blobs are downloaded once into the cache by digest
//! (`CACHE/blobs/sha256/HEX`, so a rebuild downloads nothing), and only the requested paths are
//! unpacked with [`crate::rootfs`] into `CACHE/rootfs/KEY/` (KEY = the image's manifest digest and
//! the paths; reused as is by the next build, so the files' stats — and the layer cache keys made
//! from them — stay the same).
//!
//! What a build needs to know of a final stage's base — `/etc/passwd` and `/etc/group` for `--chown`
//! names, whether a directory a `--chown` copy or a non-root `WORKDIR` would make is already there —
//! comes from its layers' [`Listing`]s (tar headers only): read top-down, stopping as soon as the
//! answer is known, each layer at most once per build, and each listing kept in the cache by the
//! layer's digest (`CACHE/listings/sha256/HEX.json`) so a runner reads a base layer once ever. The
//! blob itself is not kept. Without a cache directory (`--no-cache`) all of it lives in a temporary
//! directory for the build.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use super::layer::{Content, Kind, Node, Tree};
use super::source::{Accounts, BaseImage, ImageFiles};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::model::{Blob, BlobSource, Digest};
use crate::progress::Reporter;
use crate::push::Clients;
use crate::registry::ops::{BlobOutcome, NoProgress, Progress, RetryPolicy};
use crate::rootfs::{self, EntryKind, Filter, Found, Listing, Options, ACCOUNT_FILES};

/// Why `--sbom` reads a base layer (and the sign that its listing must keep the package databases).
const WHY_SBOM: &str = "for the package databases --sbom lists";

/// The base image's packages for `--sbom`, and where they were read.
#[derive(Debug, Clone, Default)]
pub struct BaseSbom {
    /// An attached SBOM (`referrer sha256:…`) or the package databases read.
    pub source: String,
    /// Its `os-release` (when read from its layers).
    pub os: Option<crate::sbom::distro::Os>,
    pub packages: Vec<crate::sbom::Package>,
}

/// Downloaded images and where their files go.
pub struct ImageSources {
    blobs: PathBuf,
    work: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    images: HashMap<String, Arc<BaseImage>>,
    /// Images whose layers were all downloaded.
    complete: std::collections::HashSet<String>,
    accounts: HashMap<String, Accounts>,
    listing_dir: PathBuf,
    /// Layer listings read this build, by layer digest.
    listings: Mutex<HashMap<String, Arc<Listing>>>,
    /// What [`ImageFiles::base_dir`] knows: (image, path) → has a directory there.
    facts: Mutex<HashMap<(String, String), bool>>,
    /// Questions not answered yet: (image, path) → why.
    asked: Mutex<BTreeMap<(String, String), String>>,
    /// Which base layers were read and why, for the log.
    notes: Mutex<Vec<String>>,
}

impl ImageSources {
    /// Blobs and unpacked trees under `cache` (the build's cache directory), else in a temporary
    /// directory that lives as long as this.
    pub fn new(cache: Option<&Path>) -> Result<ImageSources> {
        let (root, tmp) = match cache {
            Some(c) => (c.to_path_buf(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("hoist-images-")
                    .tempdir()
                    .map_err(|e| Error::io("creating a directory for image files", e))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        Ok(ImageSources {
            blobs: root.join("blobs/sha256"),
            work: root.join("rootfs"),
            _tmp: tmp,
            images: HashMap::new(),
            complete: Default::default(),
            accounts: HashMap::new(),
            listing_dir: root.join("listings/sha256"),
            listings: Default::default(),
            facts: Default::default(),
            asked: Default::default(),
            notes: Default::default(),
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Makes sure one layer blob of `image` is in the blob store, telling `progress` of the bytes downloaded.
    async fn ensure_blob_with(
        &self,
        clients: &Clients<'_>,
        image: &BaseImage,
        index: usize,
        retry: RetryPolicy,
        progress: &dyn Progress,
    ) -> Result<PathBuf> {
        let d = &image.layers[index];
        let digest: Digest = d.digest.parse()?;
        let path = self.blob_path(&digest);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == d.size as u64) {
            return Ok(path);
        }
        let src = &image.source;
        super::base::download_blob_with(
            clients,
            src.registry(),
            src.repository(),
            &digest,
            d.size as u64,
            &path,
            retry,
            progress,
        )
        .await?;
        Ok(path)
    }

    /// Downloads every layer of `image` (known as `name` in the Dockerfile) that the store lacks,
    /// `jobs` at a time, each with a progress line or bar when a `reporter` is given (as `hoist pull`).
    pub async fn fetch_layers(
        &mut self,
        clients: &Clients<'_>,
        name: &str,
        image: Arc<BaseImage>,
        retry: RetryPolicy,
        jobs: usize,
        reporter: Option<&Reporter>,
    ) -> Result<()> {
        let missing: Vec<(usize, Blob)> = image
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let digest: Digest = d.digest.parse().ok()?;
                let have = std::fs::metadata(self.blob_path(&digest)).is_ok_and(|m| m.len() == d.size as u64);
                let source = BlobSource::Remote {
                    registry: image.source.registry().to_string(),
                    repository: image.source.repository().to_string(),
                };
                (!have).then(|| (i, Blob { digest, size: d.size as u64, media_type: d.media_type.clone(), source }))
            })
            .collect();
        let this = &*self;
        let image_ref = &image;
        stream::iter(missing)
            .map(|(i, blob)| async move {
                let progress = reporter.map(|r| r.start_as(&blob, "downloading"));
                let p: &dyn Progress = match &progress {
                    Some(p) => &**p,
                    None => &NoProgress,
                };
                this.ensure_blob_with(clients, image_ref, i, retry, p).await?;
                if let (Some(r), Some(p)) = (reporter, &progress) {
                    r.finish(p, BlobOutcome::Downloaded, blob.size);
                }
                Ok::<(), Error>(())
            })
            .buffer_unordered(jobs.max(1))
            .try_collect::<Vec<()>>()
            .await
            .map_err(|e| e.context(format!("COPY --from={name}")))?;
        self.images.insert(name.to_string(), image);
        self.complete.insert(name.to_string());
        Ok(())
    }

    /// The listing of layer `index` of `image` (known as `name`): from this build's memory, else the
    /// cache, else the blob store, else downloaded — through a temporary file deleted once read — and
    /// kept in the cache. Each read is noted with `why`.
    async fn listing(
        &self,
        clients: &Clients<'_>,
        name: &str,
        image: &BaseImage,
        index: usize,
        why: &str,
        retry: RetryPolicy,
    ) -> Result<Arc<Listing>> {
        let d = &image.layers[index];
        let digest: Digest = d.digest.parse()?;
        // `--sbom` needs the package databases, which listings cached by an older hoist lack.
        let databases = why == WHY_SBOM;
        let usable = |l: &Listing| !databases || l.databases.is_some();
        if let Some(l) = self.listings.lock().expect("listings").get(digest.as_str()).filter(|l| usable(l)) {
            return Ok(l.clone());
        }
        let ctx = || format!("reading layer {} of {name}", index + 1);
        let file = self.listing_dir.join(format!("{}.json", digest.hex()));
        let cached =
            std::fs::read(&file).ok().and_then(|b| serde_json::from_slice::<Listing>(&b).ok()).filter(|l| usable(l));
        let (listing, how) = match cached {
            Some(l) => (l, "its listing from the cache"),
            None => {
                let read = |path: &Path| -> Result<Listing> {
                    let f = std::fs::File::open(path).map_err(|e| Error::io(ctx(), e))?;
                    rootfs::list(std::io::BufReader::new(f)).map_err(|e| e.context(ctx()))
                };
                let blob = self.blob_path(&digest);
                let (l, how) = if std::fs::metadata(&blob).is_ok_and(|m| m.len() == d.size as u64) {
                    (read(&blob)?, "its headers, from the blob in the cache")
                } else {
                    std::fs::create_dir_all(&self.listing_dir).map_err(|e| Error::io(ctx(), e))?;
                    let tmp = tempfile::NamedTempFile::new_in(&self.listing_dir).map_err(|e| Error::io(ctx(), e))?;
                    let src = &image.source;
                    super::base::download_blob(
                        clients,
                        src.registry(),
                        src.repository(),
                        &digest,
                        d.size as u64,
                        tmp.path(),
                        retry,
                    )
                    .await?;
                    (read(tmp.path())?, "downloaded, its headers read")
                };
                // A cache that cannot be written only costs the next build a download.
                if std::fs::create_dir_all(&self.listing_dir).is_ok() {
                    if let Ok(mut f) = tempfile::NamedTempFile::new_in(&self.listing_dir) {
                        let json = serde_json::to_vec(&l).expect("listing serializes");
                        if std::io::Write::write_all(&mut f, &json).is_ok() {
                            let _ = f.persist(&file);
                        }
                    }
                }
                (l, how)
            }
        };
        self.notes.lock().expect("notes").push(format!(
            "base layer {}/{} of {name} ({}, {}): {how}, {why}",
            index + 1,
            image.layers.len(),
            digest.short(),
            crate::progress::human_bytes(d.size as u64)
        ));
        let listing = Arc::new(listing);
        self.listings.lock().expect("listings").insert(digest.to_string(), listing.clone());
        Ok(listing)
    }

    /// What `--sbom` knows of the base `image` (known as `name`): an SBOM attached to it (a referrer,
    /// or BuildKit's attestation in its index) when there is one — a few small GETs — else the
    /// distribution packages in its layers' listings: every layer (a database may be in any), each
    /// read at most once, from the cache when a listing there keeps the databases.
    pub async fn base_sbom(
        &self,
        clients: &Clients<'_>,
        name: &str,
        image: &BaseImage,
        retry: RetryPolicy,
    ) -> Result<BaseSbom> {
        let src = &image.source;
        let client = clients.get(src.api_host()).await?;
        let repo = crate::registry::ops::Repository::new(client, src.repository(), "pull", &[], retry);
        if let Some(found) = crate::sbom::import::attached(&repo, &image.digest, image.index.as_ref()).await? {
            return Ok(BaseSbom { source: found.source, os: None, packages: found.packages });
        }
        let mut listings = Vec::new();
        for i in (0..image.layers.len()).rev() {
            listings.push(self.listing(clients, name, image, i, WHY_SBOM, retry).await?);
        }
        let top_down: Vec<&Listing> = listings.iter().map(|l| &**l).collect();
        let files = rootfs::visible_databases(&top_down)
            .ok_or_else(|| Error::other("internal: a base layer listing without its package databases"))?;
        let (os, packages) = crate::sbom::distro::packages(&files);
        let source = if files.is_empty() {
            format!("{name}'s layers, which hold no package database hoist reads")
        } else {
            format!("the package databases of {name} ({})", files.keys().cloned().collect::<Vec<_>>().join(", "))
        };
        Ok(BaseSbom { source, os, packages })
    }

    /// Finds `/etc/passwd` and `/etc/group` of `image` in its layers' listings, top-down, reading a
    /// layer only when the layers above did not answer.
    pub async fn fetch_accounts(
        &mut self,
        clients: &Clients<'_>,
        name: &str,
        image: Arc<BaseImage>,
        retry: RetryPolicy,
    ) -> Result<()> {
        let mut found: BTreeMap<&str, Option<Vec<u8>>> = BTreeMap::new();
        for i in (0..image.layers.len()).rev() {
            let why = "to find /etc/passwd and /etc/group for --chown by name";
            let l = self.listing(clients, name, &image, i, why, retry).await?;
            for f in ACCOUNT_FILES {
                if found.contains_key(f) {
                    continue;
                }
                match (l.accounts.get(f), l.find(f)) {
                    (Some(bytes), _) => {
                        found.insert(f, Some(bytes.clone()));
                    }
                    // Deleted here, or not a regular file: not readable as one.
                    (None, Some(_)) => {
                        found.insert(f, None);
                    }
                    (None, None) => {}
                }
            }
            if found.len() == ACCOUNT_FILES.len() {
                break;
            }
        }
        let take = |k: &str| found.get(k).cloned().flatten();
        self.accounts.insert(name.to_string(), Accounts { passwd: take("etc/passwd"), group: take("etc/group") });
        self.images.entry(name.to_string()).or_insert(image);
        Ok(())
    }

    /// The [`ImageFiles::base_dir`] questions asked since the last call, by image: (path, why).
    pub fn take_asked(&self) -> BTreeMap<String, Vec<(String, String)>> {
        let mut by_image: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for ((image, path), why) in std::mem::take(&mut *self.asked.lock().expect("asked")) {
            by_image.entry(image).or_default().push((path, why));
        }
        by_image
    }

    /// Answers `questions` (path, why) about `image` (known as `name`) from its layers' listings:
    /// each path top-down, stopping at the first layer that has it or deletes it.
    pub async fn learn(
        &self,
        clients: &Clients<'_>,
        name: &str,
        image: &BaseImage,
        questions: &[(String, String)],
        retry: RetryPolicy,
    ) -> Result<()> {
        for (path, why) in questions {
            let why = format!("to learn whether /{path} exists ({why})");
            let mut answer = false;
            for i in (0..image.layers.len()).rev() {
                match self.listing(clients, name, image, i, &why, retry).await?.find(path) {
                    Some(Found::Entry(kind, ..)) => {
                        answer = kind == 'd' || kind == 'l';
                        break;
                    }
                    Some(Found::Gone) => break,
                    None => {}
                }
            }
            self.facts.lock().expect("facts").insert((name.to_string(), path.clone()), answer);
        }
        Ok(())
    }

    /// Which base layers were read and why (for the log), since the last call.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().expect("notes"))
    }

    /// Unpacks `paths` of a fully downloaded image (or reuses an earlier unpack of the same).
    fn unpack(&self, name: &str, image: &BaseImage, paths: &[String]) -> Result<(PathBuf, rootfs::Report)> {
        let mut sorted: Vec<&str> = paths.iter().map(String::as_str).collect();
        sorted.sort();
        sorted.dedup();
        let mut h = Sha256::new();
        h.update(image.digest.as_str());
        for p in &sorted {
            h.update([0]);
            h.update(p.as_bytes());
        }
        let key = hex::encode(&h.finalize()[..16]);
        let dir = self.work.join(&key);
        let record = self.work.join(format!("{key}.json"));
        if let Ok(bytes) = std::fs::read(&record) {
            if let Ok(entries) = serde_json::from_slice::<BTreeMap<String, rootfs::Entry>>(&bytes) {
                if dir.is_dir() {
                    return Ok((dir, rootfs::Report { entries, ..Default::default() }));
                }
            }
        }
        let ctx = || format!("unpacking {} of {name}", sorted.join(", "));
        std::fs::create_dir_all(&self.work).map_err(|e| Error::io(ctx(), e))?;
        let tmp =
            tempfile::Builder::new().prefix(".unpack-").tempdir_in(&self.work).map_err(|e| Error::io(ctx(), e))?;
        let mut files = Vec::new();
        for d in &image.layers {
            let digest: Digest = d.digest.parse()?;
            let path = self.blob_path(&digest);
            let f = std::fs::File::open(&path).map_err(|e| Error::io(format!("{}: {}", ctx(), path.display()), e))?;
            files.push((d.clone(), std::io::BufReader::new(f)));
        }
        let opts = Options { filter: Filter::paths(&sorted), chown: false, writable_dirs: true };
        let report = rootfs::apply_layers(files, &tmp.path().join("root"), &opts).map_err(|e| e.context(ctx()))?;
        let _ = std::fs::remove_dir_all(&dir);
        if std::fs::rename(tmp.path().join("root"), &dir).is_err() {
            // Another build sharing the cache put the same tree there first: use this one, kept
            // beside it (`.unpack-*`, deleted with the cache).
            return Ok((tmp.keep().join("root"), report));
        }
        let mut file = tempfile::NamedTempFile::new_in(&self.work).map_err(|e| Error::io(ctx(), e))?;
        std::io::Write::write_all(&mut file, &serde_json::to_vec(&report.entries).expect("entries serialize"))
            .map_err(|e| Error::io(ctx(), e))?;
        file.persist(&record).map_err(|e| Error::io(ctx(), e.error))?;
        Ok((dir, report))
    }
}

impl ImageFiles for ImageSources {
    fn files(&self, name: &str, paths: &[String]) -> Result<Tree> {
        let image = match (self.images.get(name), self.complete.contains(name)) {
            (Some(i), true) => i.clone(),
            _ => return Err(Error::other(format!("internal: the layers of {name} were not fetched"))),
        };
        let asked: Vec<String> = paths.iter().map(|p| super::ignore::clean(p)).collect();
        let mut filter = asked.clone();
        // Symlinks on the way to an asked path, and hard links to files outside it, widen the
        // filter: a few passes at most (each over cached blobs).
        for _ in 0..8 {
            let (dir, report) = self.unpack(name, &image, &filter)?;
            let mut more: Vec<String> = report.wanted.iter().cloned().collect();
            for p in asked.iter().filter(|p| !super::ignore::has_glob(p)) {
                if let Some(real) = rootfs::resolve(&report.entries, p) {
                    if !filter.iter().any(|f| real == *f || real.starts_with(&format!("{f}/")) || f.is_empty()) {
                        more.push(real);
                    }
                }
            }
            more.retain(|m| !filter.contains(m));
            if more.is_empty() {
                return Ok(tree_of(&dir, &report, &asked));
            }
            filter.extend(more);
        }
        Err(Error::other(format!("{name}: {}: too many symlinks or hard links to follow", asked.join(", "))))
    }

    fn accounts(&self, name: &str) -> Result<Accounts> {
        if let Some(a) = self.accounts.get(name) {
            return Ok(a.clone());
        }
        let t = self.files(name, &["etc/passwd".to_string(), "etc/group".to_string()])?;
        let read = |k: &str| match t.get(k).map(|n| &n.kind) {
            Some(Kind::File(Content::Path(p))) => std::fs::read(p).ok(),
            _ => None,
        };
        Ok(Accounts { passwd: read("etc/passwd"), group: read("etc/group") })
    }

    fn base_dir(&self, image: &str, path: &str, why: &str) -> Option<bool> {
        let key = (image.to_string(), path.to_string());
        if let Some(b) = self.facts.lock().expect("facts").get(&key) {
            return Some(*b);
        }
        self.asked.lock().expect("asked").entry(key).or_insert_with(|| why.to_string());
        None
    }
}

/// The tree of the asked paths: each non-glob path resolved through symlinks and its entries
/// re-keyed under the path as asked; glob paths keep every unpacked entry (the planner matches).
fn tree_of(dir: &Path, report: &rootfs::Report, asked: &[String]) -> Tree {
    let node = |path: &str, e: &rootfs::Entry| Node {
        kind: match &e.kind {
            EntryKind::Dir => Kind::Dir,
            EntryKind::File { .. } => Kind::File(Content::Path(dir.join(path))),
            EntryKind::Symlink(t) => Kind::Symlink(t.clone()),
        },
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
    };
    let mut tree = Tree::new();
    for p in asked {
        if super::ignore::has_glob(p) || p.is_empty() {
            for (k, e) in &report.entries {
                tree.insert(k.clone(), node(k, e));
            }
            continue;
        }
        let Some(real) = rootfs::resolve(&report.entries, p).filter(|r| report.entries.contains_key(r)) else {
            continue;
        };
        if let Some(e) = report.entries.get(&real) {
            tree.insert(p.clone(), node(&real, e));
        }
        let prefix = format!("{real}/");
        for (k, e) in report.entries.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)) {
            tree.insert(format!("{p}/{}", &k[prefix.len()..]), node(k, e));
        }
    }
    tree
}
