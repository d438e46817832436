//! OCI image layouts (image-spec `image-layout.md`): reading one into an [`Artifact`], and writing one.
//!
//! Reading validates as it goes — every blob a manifest names must be in `blobs/` with the right size
//! — so a broken layout fails before anything is uploaded, naming the missing piece.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::Selector;
use crate::error::{Error, Result};
use crate::fsutil::{read_limited, write_atomic};
use crate::model::{
    media, Artifact, Blob, BlobSource, Digest, Manifest, OciDescriptor, OciImageIndex, OciImageManifest,
};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Path of a blob inside a layout.
pub fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs").join(digest.algorithm()).join(digest.hex())
}

/// Reads the entry `selector` picks from the layout at `dir`.
pub fn read(dir: &Path, selector: &Selector) -> Result<Artifact> {
    let ctx = || format!("reading OCI layout {}", dir.display());
    if !dir.join("oci-layout").is_file() {
        return Err(Error::other(if dir.exists() {
            "not an OCI image layout (no oci-layout file)".to_string()
        } else {
            "directory does not exist".to_string()
        })
        .context(ctx()));
    }
    let index_bytes =
        read_limited(&dir.join("index.json"), media::MAX_MANIFEST_BYTES, "index.json").map_err(|e| e.context(ctx()))?;
    let index: OciImageIndex = serde_json::from_slice(&index_bytes)
        .map_err(|e| Error::other(format!("index.json is not a valid image index: {e}")).context(ctx()))?;
    let entry = select(&index, selector).map_err(|e| e.context(ctx()))?;
    let mut walk = Walk { dir, blobs: Vec::new(), manifests: Vec::new(), seen: HashSet::new() };
    walk.manifest(&entry.0, &entry.1, 0).map_err(|e| e.context(ctx()))?;
    Ok(Artifact { blobs: walk.blobs, manifests: walk.manifests })
}

/// Picks (digest, media type) of an index.json entry.
fn select(index: &OciImageIndex, selector: &Selector) -> Result<(Digest, String)> {
    let names = || {
        let tags: Vec<String> = index
            .manifests
            .iter()
            .map(|m| {
                m.annotations
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .map_or_else(|| m.digest.clone(), |t| format!("{t} ({})", m.digest))
            })
            .collect();
        if tags.is_empty() {
            "the layout's index.json lists no manifests".to_string()
        } else {
            format!("it holds: {}", tags.join(", "))
        }
    };
    let found = match selector {
        Selector::Only => match index.manifests.as_slice() {
            [one] => Some(one),
            [] => None,
            _ => {
                return Err(Error::usage(format!("index.json has {} entries; say which one", index.manifests.len()))
                    .with_hint(format!("use oci:DIR:TAG or oci:DIR@DIGEST; {}", names())))
            }
        },
        Selector::Tag(tag) => {
            index.manifests.iter().find(|m| m.annotations.as_ref().and_then(|a| a.get(REF_NAME)) == Some(tag))
        }
        Selector::Digest(d) => index.manifests.iter().find(|m| m.digest == d.as_str()),
    };
    match (found, selector) {
        (Some(m), _) => Ok((m.digest.parse()?, m.media_type.clone())),
        // A digest not listed in index.json may still be a manifest blob (a child of an index).
        (None, Selector::Digest(d)) => Ok((d.clone(), String::new())),
        (None, _) => Err(Error::usage(format!("no entry matches {selector:?}")).with_hint(names())),
    }
}

struct Walk<'a> {
    dir: &'a Path,
    blobs: Vec<Blob>,
    manifests: Vec<Manifest>,
    seen: HashSet<Digest>,
}

impl Walk<'_> {
    fn manifest(&mut self, digest: &Digest, media_type: &str, depth: usize) -> Result<()> {
        if depth > 4 {
            return Err(Error::other(format!("manifest {digest}: indexes nested too deeply")));
        }
        let bytes = Bytes::from(read_blob(self.dir, digest)?);
        // The descriptor's media type wins; fall back to the manifest's own field.
        let media_type = if media_type.is_empty() { sniff_media_type(&bytes) } else { media_type.to_string() };
        if media::is_index(&media_type) {
            let index: OciImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| Error::other(format!("index {digest} is not valid JSON for an image index: {e}")))?;
            for child in &index.manifests {
                let child_digest: Digest = child.digest.parse()?;
                self.manifest(&child_digest, &child.media_type, depth + 1)
                    .map_err(|e| e.context(format!("in index {}", digest.short())))?;
            }
        } else if media::is_manifest(&media_type) || media_type.is_empty() {
            let m: OciImageManifest = serde_json::from_slice(&bytes)
                .map_err(|e| Error::other(format!("manifest {digest} is not a valid image manifest: {e}")))?;
            self.blob(&m.config)?;
            for layer in &m.layers {
                self.blob(layer)?;
            }
        } else {
            return Err(Error::other(format!("manifest {digest} has unsupported media type {media_type:?}")));
        }
        if self.seen.insert(digest.clone()) {
            let media_type = if media_type.is_empty() { media::OCI_MANIFEST.to_string() } else { media_type };
            self.manifests.push(Manifest { digest: digest.clone(), media_type, bytes });
        }
        Ok(())
    }

    fn blob(&mut self, desc: &OciDescriptor) -> Result<()> {
        let digest: Digest = desc.digest.parse()?;
        if !self.seen.insert(digest.clone()) {
            return Ok(());
        }
        let path = blob_path(self.dir, &digest);
        let meta = fs::metadata(&path)
            .map_err(|_| Error::other(format!("blob {digest} ({}) is missing from blobs/", desc.media_type)))?;
        if meta.len() != desc.size as u64 {
            return Err(Error::other(format!(
                "blob {digest} is {} bytes on disk but its descriptor says {}",
                meta.len(),
                desc.size
            )));
        }
        self.blobs.push(Blob {
            digest,
            size: meta.len(),
            media_type: desc.media_type.clone(),
            source: BlobSource::File { path, offset: 0 },
        });
        Ok(())
    }
}

fn read_blob(dir: &Path, digest: &Digest) -> Result<Vec<u8>> {
    let bytes = read_limited(&blob_path(dir, digest), media::MAX_MANIFEST_BYTES, &format!("manifest blob {digest}"))?;
    if Digest::sha256_of(&bytes) != *digest && digest.algorithm() == "sha256" {
        return Err(Error::other(format!("manifest blob {digest} does not match its digest (the layout is corrupt)")));
    }
    Ok(bytes)
}

/// The `mediaType` a manifest declares about itself, or "" (Helm's manifests have none).
fn sniff_media_type(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe { media_type: Some(m), .. }) => m,
        Ok(Probe { manifests: Some(_), .. }) => media::OCI_INDEX.to_string(),
        _ => String::new(),
    }
}

/// Writes `artifact` into the OCI image layout at `dir` (created if missing; an existing layout
/// keeps its other entries), naming the root `tag` in `index.json`. Every blob must be readable
/// locally: a registry-held blob is an error (fetch it first).
pub fn write(dir: &Path, artifact: &Artifact, tag: Option<&str>) -> Result<()> {
    let ctx = || format!("writing OCI layout {}", dir.display());
    let io = |what: &str, e: std::io::Error| Error::io(what, e).context(ctx());
    fs::create_dir_all(dir.join("blobs").join("sha256")).map_err(|e| io("creating blobs/", e))?;
    write_atomic(&dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|e| e.context(ctx()))?;
    for blob in &artifact.blobs {
        let dest = blob_path(dir, &blob.digest);
        if dest.is_file() && fs::metadata(&dest).map(|m| m.len() == blob.size).unwrap_or(false) {
            continue;
        }
        let tmp = dest.with_extension("partial");
        match &blob.source {
            BlobSource::Bytes(b) => fs::write(&tmp, b).map_err(|e| io("writing a blob", e))?,
            BlobSource::File { path, offset } => {
                use std::io::{Read, Seek, SeekFrom};
                let mut f = fs::File::open(path).map_err(|e| io(&format!("reading {}", path.display()), e))?;
                f.seek(SeekFrom::Start(*offset)).map_err(|e| io("seeking", e))?;
                let mut out = fs::File::create(&tmp).map_err(|e| io("writing a blob", e))?;
                std::io::copy(&mut f.take(blob.size), &mut out).map_err(|e| io("writing a blob", e))?;
            }
            BlobSource::Remote { registry, repository } => {
                return Err(Error::usage(format!(
                    "blob {} lives in {registry}/{repository}; a layout needs its bytes",
                    blob.digest
                ))
                .context(ctx()))
            }
        }
        fs::rename(&tmp, &dest).map_err(|e| io("writing a blob", e))?;
    }
    for m in &artifact.manifests {
        write_atomic(&blob_path(dir, &m.digest), &m.bytes).map_err(|e| e.context(ctx()))?;
    }
    let root = artifact.root();
    let mut index: OciImageIndex = match fs::read(dir.join("index.json")) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::other(format!("the existing index.json is not valid: {e}")).context(ctx()))?,
        Err(_) => OciImageIndex {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![],
            annotations: None,
            artifact_type: None,
        },
    };
    index.manifests.retain(|m| match tag {
        Some(t) => m.annotations.as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str) != Some(t),
        None => m.digest != root.digest.as_str(),
    });
    index.manifests.push(crate::model::ImageIndexEntry {
        media_type: root.media_type.clone(),
        digest: root.digest.to_string(),
        size: root.bytes.len() as i64,
        platform: None,
        annotations: tag.map(|t| [(REF_NAME.to_string(), t.to_string())].into_iter().collect()),
        artifact_type: None,
    });
    let bytes = serde_json::to_vec(&index).expect("index serializes");
    // Last, and atomically: a layout interrupted before this line has no reference to half a blob.
    write_atomic(&dir.join("index.json"), &bytes).map_err(|e| e.context(ctx()))?;
    Ok(())
}

/// Whether the layout at `dir` already holds blob `digest` of `size` bytes.
pub fn has_blob(dir: &Path, digest: &Digest, size: u64) -> bool {
    fs::metadata(blob_path(dir, digest)).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// A blob being added to a layout: written to `<hex>.partial` beside its place, moved there by
/// [`NewBlob::commit`] once complete (a crash leaves no half blob under its digest).
pub struct NewBlob {
    pub file: fs::File,
    tmp: PathBuf,
    dest: PathBuf,
}

impl NewBlob {
    /// Opens the temporary file for `digest` in the layout at `dir` (creating `blobs/<alg>/`).
    pub fn create(dir: &Path, digest: &Digest) -> Result<NewBlob> {
        let dest = blob_path(dir, digest);
        let parent = dest.parent().expect("blob paths have a parent");
        fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        let tmp = dest.with_extension("partial");
        let file = fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&tmp)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        Ok(NewBlob { file, tmp, dest })
    }

    /// Moves the complete blob to its place.
    pub fn commit(self) -> Result<PathBuf> {
        fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(format!("moving {}", self.tmp.display()), e))?;
        Ok(self.dest.clone())
    }
}

impl Drop for NewBlob {
    /// An uncommitted blob (a failed download) leaves nothing behind.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_index_and_manifests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        fs::write(dir.path().join("index.json"), vec![b' '; (media::MAX_MANIFEST_BYTES + 1) as usize]).unwrap();
        let e = read(dir.path(), &Selector::Only).unwrap_err().to_string();
        assert!(e.contains("index.json is over 4194304 bytes"), "{e}");
        // A manifest blob over the limit, named by a small index.
        let big = vec![b' '; (media::MAX_MANIFEST_BYTES + 1) as usize];
        let digest = Digest::sha256_of(&big);
        fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        fs::write(blob_path(dir.path(), &digest), &big).unwrap();
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{digest}","size":{}}}]}}"#,
            media::OCI_MANIFEST,
            big.len()
        );
        fs::write(dir.path().join("index.json"), index).unwrap();
        let e = read(dir.path(), &Selector::Only).unwrap_err().to_string();
        assert!(e.contains(&format!("manifest blob {digest} is over 4194304 bytes")), "{e}");
    }
}
