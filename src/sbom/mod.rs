//! Software bills of materials (`hoist build --sbom`): the packages an image holds, each with its
//! purl and the path it was found at, written as SPDX 2.3 JSON and CycloneDX 1.6 JSON.
//!
//! - [`files`]: which files are catalogued and how they are read (through `std::io::Read`, so they
//!   serve hoist's own layers and tar entries alike); one module per ecosystem parses them:
//!   `golang` (build info, `go.mod`), `rust` (`cargo auditable`'s `.dep-v0`, `Cargo.lock`), `node`
//!   (npm/yarn/pnpm lockfiles, `package.json`), `python` (`METADATA`, `PKG-INFO`), `java` (jars,
//!   through a small bounded zip reader), with `elf` finding sections in executables.
//! - [`format`]: the two documents, deterministic (same packages and epoch, same bytes).
//!
//! [`catalogue`] walks the files hoist added in a build.

mod elf;
pub mod files;
pub mod format;
mod golang;
mod java;
mod node;
mod python;
mod rust;

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
