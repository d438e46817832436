//! The SBOM of an existing image (`hoist sbom REF`): the SBOM it carries ([`super::import`]) when
//! there is one, else its layers — each streamed once, top layer first, through
//! [`crate::rootfs::list_with`]: a file a higher layer replaced or deleted (whiteouts, opaque
//! directories) is skipped, the file catalogers ([`super::files`]) read the rest as it streams past
//! (executables only until their Go build info, never held whole), and the layer's listing keeps the
//! package databases and `os-release` for [`super::distro`].

use std::io::Read;

use super::distro::{self, Os};
use super::{files, Package};
use crate::error::{Context, Error, Result};
use crate::model::Digest;
use crate::registry::ops::{NoProgress, Repository};
use crate::rootfs::{self, Listing};

/// An image's packages and where they were read.
#[derive(Debug, Clone, Default)]
pub struct ImageSbom {
    /// `referrer sha256:… (application/spdx+json)`, or `N layers`.
    pub source: String,
    pub os: Option<Os>,
    /// Sorted by purl, then path.
    pub packages: Vec<Package>,
}

/// The layers of one image, fed top layer first.
#[derive(Default)]
pub struct Walk {
    /// The listings of the layers read so far (those above the next one).
    uppers: Vec<Listing>,
    packages: Vec<Package>,
}

impl Walk {
    /// Reads the next layer down (a blob: gzip, zstd or plain tar).
    pub fn layer(&mut self, reader: impl Read) -> Result<()> {
        let uppers = &self.uppers;
        let mut found = Vec::new();
        let listing = rootfs::list_with(reader, &mut |path, mode, size, r| {
            if uppers.iter().any(|u| u.find(path).is_some()) {
                // Replaced or deleted by a higher layer: not in the image.
                return Ok(());
            }
            if let Some(want) = files::wanted(path, mode) {
                found.extend(files::catalogue_file(&format!("/{path}"), want, size, r)?);
            }
            Ok(())
        })?;
        self.uppers.push(listing);
        self.packages.extend(found);
        Ok(())
    }

    /// The packages of every layer read: the files' and the distribution's.
    pub fn finish(self) -> ImageSbom {
        let top_down: Vec<&Listing> = self.uppers.iter().collect();
        let databases = rootfs::visible_databases(&top_down).unwrap_or_default();
        let (os, mut packages) = distro::packages(&databases);
        packages.extend(self.packages);
        packages.sort();
        packages.dedup();
        ImageSbom { source: format!("{} layers", self.uppers.len()), os, packages }
    }
}

/// The SBOM of the image `digest` in `repo` (picked from `index` when the reference named one), whose
/// layers are `layers` (digest, size; bottom first): an attached SBOM, else every layer downloaded
/// once (to a temporary file, deleted once read) and read top-down.
pub async fn of_registry(
    repo: &Repository,
    digest: &Digest,
    index: Option<&Digest>,
    layers: &[(Digest, u64)],
) -> Result<ImageSbom> {
    if let Some(found) = super::import::attached(repo, digest, index).await? {
        return Ok(ImageSbom { source: found.source, os: None, packages: found.packages });
    }
    let mut walk = Walk::default();
    for (i, (layer, size)) in layers.iter().enumerate().rev() {
        let ctx = || format!("reading layer {}/{} ({layer}) for the SBOM", i + 1, layers.len());
        let tmp = tempfile::tempfile().map_err(|e| Error::io(ctx(), e))?;
        repo.download_blob(layer, *size, &tmp, &NoProgress).await.with_context(ctx)?;
        let mut f = tmp;
        std::io::Seek::rewind(&mut f).map_err(|e| Error::io(ctx(), e))?;
        walk.layer(std::io::BufReader::new(f)).with_context(ctx)?;
    }
    Ok(walk.finish())
}

/// The SBOM of an image in an OCI layout at `dir` (no referrers there: its layers).
pub fn of_layout(dir: &std::path::Path, layers: &[(Digest, u64)]) -> Result<ImageSbom> {
    let mut walk = Walk::default();
    for (i, (layer, _)) in layers.iter().enumerate().rev() {
        let ctx = || format!("reading layer {}/{} ({layer}) for the SBOM", i + 1, layers.len());
        let path = crate::layout::oci::blob_path(dir, layer);
        let f = std::fs::File::open(&path).map_err(|e| Error::io(ctx(), e))?;
        walk.layer(std::io::BufReader::new(f)).with_context(ctx)?;
    }
    Ok(walk.finish())
}
