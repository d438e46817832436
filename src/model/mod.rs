//! The pure model: digests, references, media types, and the [`Artifact`] the push engine works on.
//!
//! Nothing here touches the disk or the network. Sources (layouts, archives, builds) produce an
//! `Artifact`; the push engine consumes it.

mod digest;
pub mod media;
mod reference;
pub mod safe_url;

use std::path::PathBuf;

use bytes::Bytes;

pub use digest::{Digest, HashingWriter};
pub use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageIndex, OciImageManifest, Platform};
pub use reference::{api_host, is_loopback_host, validate_tag, Reference};
pub use safe_url::DisplaySafeUrl;

/// What a push uploads: a root manifest, the manifests below it, and every blob they name.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Blobs (layers and configs), each digest once.
    pub blobs: Vec<Blob>,
    /// Manifests in push order: every child before the index that names it. The last is the root.
    pub manifests: Vec<Manifest>,
}

impl Artifact {
    /// The manifest that tags point at.
    pub fn root(&self) -> &Manifest {
        self.manifests.last().expect("an artifact has at least one manifest")
    }
    /// Total bytes of all blobs.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// A manifest (or index) as exact bytes: the registry stores these bytes and their sha256 is the digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

impl Manifest {
    pub fn new(media_type: impl Into<String>, bytes: impl Into<Bytes>) -> Manifest {
        let bytes = bytes.into();
        Manifest { digest: Digest::sha256_of(&bytes), media_type: media_type.into(), bytes }
    }
}

/// One blob: its identity, and where its bytes can be read (again and again: retries reopen it).
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub source: BlobSource,
}

/// Where a blob's bytes come from.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// `size` bytes of a file starting at `offset` (a layout blob, a layer inside a `docker save` tar).
    File { path: PathBuf, offset: u64 },
    /// Small blobs made in memory (configs).
    Bytes(Bytes),
    /// A blob that lives in a registry repository (a base image's layer): mounted when the
    /// destination is the same registry, otherwise streamed across.
    Remote { registry: String, repository: String },
}

impl Blob {
    pub fn from_bytes(media_type: impl Into<String>, bytes: impl Into<Bytes>) -> Blob {
        let bytes = bytes.into();
        Blob {
            digest: Digest::sha256_of(&bytes),
            size: bytes.len() as u64,
            media_type: media_type.into(),
            source: BlobSource::Bytes(bytes),
        }
    }
}
