//! Software bills of materials (`hoist build --sbom`): the packages an image holds, each with its
//! purl and the path it was found at, written as SPDX 2.3 JSON and CycloneDX 1.6 JSON.
//!
//! - [`files`]: which files are catalogued and how they are read (through `std::io::Read`, so they
//!   serve hoist's own layers and tar entries alike); one module per ecosystem parses them:
//!   `golang` (build info, `go.mod`), `rust` (`cargo auditable`'s `.dep-v0`, `Cargo.lock`), `node`
//!   (npm/yarn/pnpm lockfiles, `package.json`), `python` (`METADATA`, `PKG-INFO`), `java` (jars,
//!   through a small bounded zip reader), with `elf` finding sections in executables.
//! - [`format`]: the two documents, deterministic (same packages and epoch, same bytes).
//! - [`distro`]: dpkg and apk databases and `os-release`, with syft's purls.
//! - [`import`]: an SBOM an image already carries (a referrer, BuildKit's attestation).
//! - [`image`]: the SBOM of an existing image (`hoist sbom REF`): its SBOM, else its layers.
//!
//! [`catalogue`] walks the files hoist added in a build.

mod bdb;
mod bytes;
pub mod distro;
mod elf;
pub mod files;
pub mod format;
mod golang;
pub mod image;
pub mod import;
mod java;
mod ndb;
mod node;
mod python;
pub mod rpm;
mod rust;

use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::builder::layer::{Content, Kind, Tree};
use crate::error::{Error, Result};

pub use format::{cyclonedx, spdx, Describe};

pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// The version of a package whose files name none (syft writes the same; its purl has no version).
pub const UNKNOWN: &str = "UNKNOWN";

/// One package found in an image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Package {
    pub purl: String,
    pub name: String,
    pub version: String,
    /// `golang`, `npm`, `pypi`, `cargo`, `maven`.
    pub ecosystem: &'static str,
    /// The file it was found in, absolute in the image (for a Java archive nested in another, the
    /// outer file's path, `:` and the path inside it, as syft writes it).
    pub found_at: String,
}

impl Package {
    /// A package of `ecosystem` (also the purl type) with the plain `pkg:TYPE/NAME@VERSION` purl.
    pub fn new(ecosystem: &'static str, name: &str, version: &str, at: &str) -> Package {
        Package::with_purl(ecosystem, purl(ecosystem, name, version), name, version, at)
    }

    pub fn with_purl(ecosystem: &'static str, purl: String, name: &str, version: &str, at: &str) -> Package {
        Package { purl, name: name.to_string(), version: version.to_string(), ecosystem, found_at: at.to_string() }
    }
}

/// Bumped (with hoist's version, also in the key) when a cataloger changes what it lists for the
/// same files.
const CACHE_FORMAT: &str = "hoist-sbom-catalogue-v1";

/// [`catalogue`], remembered in the layer cache's directory (`sbom/KEY.json`) under the layer
/// cache's stat-based key of `tree` (see [`crate::builder::cache`]): an unchanged rebuild reads no
/// file again. `cache_dir` `None` (`--no-cache`, no cache directory): always catalogued. A cache
/// that cannot be written is only a missed saving.
pub fn catalogue_cached(tree: &Tree, cache_dir: Option<&Path>) -> Result<Vec<Package>> {
    let Some(dir) = cache_dir else { return catalogue(tree) };
    let tree_key = crate::builder::cache::key(tree, 0, Default::default())?;
    let key = hex::encode(Sha256::digest(format!("{CACHE_FORMAT} {} {tree_key}", env!("CARGO_PKG_VERSION"))));
    let file = dir.join("sbom").join(format!("{key}.json"));
    if let Some(cached) = std::fs::read(&file).ok().and_then(|b| serde_json::from_slice::<Vec<Cached>>(&b).ok()) {
        if let Some(packages) = cached.into_iter().map(Cached::into_package).collect::<Option<Vec<_>>>() {
            return Ok(packages);
        }
    }
    let packages = catalogue(tree)?;
    let record: Vec<Cached> = packages.iter().map(Cached::from).collect();
    // The cache is an optimisation: a failure to write it leaves the build as it is.
    if std::fs::create_dir_all(dir.join("sbom")).is_ok() {
        let _ = crate::fsutil::write_atomic(&file, &serde_json::to_vec(&record).expect("serializes"));
    }
    Ok(packages)
}

/// A [`Package`] as the catalogue cache stores it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    purl: String,
    name: String,
    version: String,
    ecosystem: String,
    found_at: String,
}

impl Cached {
    fn from(p: &Package) -> Cached {
        Cached {
            purl: p.purl.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            ecosystem: p.ecosystem.into(),
            found_at: p.found_at.clone(),
        }
    }

    /// `None` for an ecosystem this hoist does not know (a cache written by another version).
    fn into_package(self) -> Option<Package> {
        let ecosystem = ["golang", "npm", "pypi", "cargo", "maven"].into_iter().find(|e| *e == self.ecosystem)?;
        Some(Package { purl: self.purl, name: self.name, version: self.version, ecosystem, found_at: self.found_at })
    }
}

/// The packages in `tree`'s files (what a build added), sorted by purl then path.
pub fn catalogue(tree: &Tree) -> Result<Vec<Package>> {
    let mut out = Vec::new();
    for (path, node) in tree {
        let Kind::File(content) = &node.kind else { continue };
        let Some(want) = files::wanted(path, node.mode) else { continue };
        let at = format!("/{path}");
        match content {
            Content::Bytes(b) => {
                out.extend(files::catalogue_file(&at, want, b.len() as u64, &mut b.as_slice())?);
            }
            Content::Path(p) => {
                let io = |e| Error::io(format!("{at} (for the SBOM)"), e);
                let mut f = std::fs::File::open(p).map_err(io)?;
                let size = f.metadata().map_err(io)?.len();
                out.extend(files::catalogue_file(&at, want, size, &mut f)?);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `pkg:TYPE/NAME@VERSION`, the name's segments percent-encoded as purl wants (`/` kept between
/// namespace and name, `@` of an npm scope encoded); `pkg:TYPE/NAME` when the version is unknown.
pub fn purl(kind: &str, name: &str, version: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' | b'/' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    if version.is_empty() {
        format!("pkg:{kind}/{}", enc(name))
    } else {
        format!("pkg:{kind}/{}@{}", enc(name), enc(version).replace('/', "%2F"))
    }
}

/// Maps a catalogue error into one that names the SBOM.
pub fn context(e: Error) -> Error {
    e.context("cataloguing the added files for --sbom")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::layer::Node;

    /// The second catalogue of an unchanged tree comes from the cache (a planted record shows it);
    /// an edit of a file (its size and mtime) is a new key.
    #[test]
    fn an_unchanged_tree_is_catalogued_once() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("METADATA");
        std::fs::write(&meta, "Name: six\nVersion: 1.16.0\n\n").unwrap();
        let mut tree = Tree::new();
        let node = Node { kind: Kind::File(Content::Path(meta.clone())), mode: 0o644, uid: 0, gid: 0 };
        tree.insert("six-1.16.0.dist-info/METADATA".into(), node);
        let cache = dir.path().join("cache");
        let first = catalogue_cached(&tree, Some(&cache)).unwrap();
        assert_eq!(first.iter().map(|p| p.purl.as_str()).collect::<Vec<_>>(), vec!["pkg:pypi/six@1.16.0"]);
        let files: Vec<_> = std::fs::read_dir(cache.join("sbom")).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(files.len(), 1);
        let planted = std::fs::read_to_string(&files[0]).unwrap().replace("1.16.0", "9.9.9");
        std::fs::write(&files[0], planted).unwrap();
        assert_eq!(catalogue_cached(&tree, Some(&cache)).unwrap()[0].purl, "pkg:pypi/six@9.9.9");
        assert_eq!(catalogue_cached(&tree, None).unwrap(), first);
        std::fs::write(&meta, "Name: six\nVersion: 1.17.0\n\n").unwrap();
        assert_eq!(catalogue_cached(&tree, Some(&cache)).unwrap()[0].purl, "pkg:pypi/six@1.17.0");
    }
}
