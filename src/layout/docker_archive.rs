//! `docker save` archives: reading one into an OCI [`Artifact`].
//!
//! The archive's `manifest.json` names a config and layer files. The config is kept byte for byte (so
//! its digest is docker's image ID). Compressed layers (gzip, zstd) are pushed straight from their
//! offset inside the tar. Uncompressed layers — what `docker save` writes — are gzipped once, hashing
//! in the same pass, into a spool file that lives as long as the returned [`Spool`]; the registry
//! then gets a normal OCI manifest with `tar+gzip` layers whose diff_ids match the config.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::model::{
    media, Artifact, Blob, BlobSource, Digest, HashingWriter, Manifest, OciDescriptor, OciImageManifest,
};

/// Spool files for converted layers; deleted when dropped.
pub type Spool = Option<tempfile::TempDir>;

/// The gzip level for layers hoist compresses. Measured with zlib-rs (flate2, release build, one
/// thread) on 208.6 MiB of mixed input — 100 MiB of Rust sources/docs and 100 MiB of shared
/// libraries, tarred — on the 2-CPU dev/CI machine:
///
/// | level | throughput | output   | ratio |
/// |-------|------------|----------|-------|
/// | 1     | 144 MiB/s  | 71.9 MiB | 0.345 |
/// | 3     |  85 MiB/s  | 55.6 MiB | 0.267 |
/// | 6     |  52 MiB/s  | 53.2 MiB | 0.255 |
/// | 9     |  22 MiB/s  | 51.8 MiB | 0.248 |
/// | zstd 3 (for comparison) | 215 MiB/s | 48.9 MiB | 0.234 |
///
/// Level 1 is 2.8× faster than 6 for 35% more bytes; level 3 is within 5% of level 6's size at
/// 1.6× its speed. Level 1 emits ~50 MiB/s (≈400 Mbit/s) of compressed output, so only links faster
/// than that wait on it, while level 6 (~13 MiB/s, ≈110 Mbit/s) would hold back any fast link. On a
/// slow uplink `hoist build --compression-level 3`, or `--compression zstd` (smaller and faster than
/// every gzip level), pays off.
///
/// (That table is zlib-rs's.) Every layer hoist compresses — those `hoist build` writes and the
/// uncompressed layers of a `docker save` archive converted here — now goes through the layer writer's
/// compressor at this level: libdeflate, 4 MiB gzip members in parallel, incompressible runs stored
/// (src/builder/layer.rs, docs/compression.md).
pub const GZIP_LEVEL: u32 = 1;

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    layers: Vec<String>,
}

/// Reads `docker save` archive `file`.
pub fn read(file: &Path) -> Result<Artifact> {
    read_with_spool(file).map(|(a, _)| a)
}

/// Like [`read`], also returning the spool that holds converted layers (keep it alive while pushing).
pub fn read_with_spool(file: &Path) -> Result<(Artifact, Spool)> {
    let ctx = || format!("reading docker archive {}", file.display());
    let index = index_tar(file).map_err(|e| e.context(ctx()))?;
    let small = |name: &str, limit: u64| -> Result<Vec<u8>> {
        let (offset, size) = index
            .get(name.trim_start_matches("./"))
            .copied()
            .ok_or_else(|| Error::other(format!("{name} is missing from the archive")))?;
        if size > limit {
            return Err(crate::fsutil::too_big(name, limit));
        }
        read_range(file, offset, size).map_err(|e| Error::io(name, e))
    };
    let manifest_json = small("manifest.json", media::MAX_MANIFEST_BYTES).map_err(|e| {
        e.context(ctx())
            .with_hint("is this a `docker save` archive? (an OCI layout tar must be unpacked and given as oci:DIR)")
    })?;
    let entry = parse_manifest_json(&manifest_json).map_err(|e| e.context(ctx()))?;
    let config = small(&entry.config, media::MAX_CONFIG_BYTES).map_err(|e| e.context(ctx()))?;
    let mut spool: Spool = None;
    let mut layers = Vec::new();
    for name in &entry.layers {
        let (offset, size) = *index
            .get(name.trim_start_matches("./"))
            .ok_or_else(|| Error::other(format!("layer {name} is missing from the archive")).context(ctx()))?;
        let blob = layer_blob(file, offset, size, &mut spool)
            .map_err(|e| e.context(format!("layer {name}")).context(ctx()))?;
        layers.push(blob);
    }
    let config_blob = Blob::from_bytes(media::OCI_CONFIG, config);
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config: descriptor(&config_blob),
        layers: layers.iter().map(descriptor).collect(),
        subject: None,
        artifact_type: None,
        annotations: None,
    };
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let mut blobs = layers;
    // Two layers may be identical (an empty layer twice): push each digest once.
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|b| seen.insert(b.digest.clone()));
    blobs.push(config_blob);
    Ok((Artifact { blobs, manifests: vec![Manifest::new(media::OCI_MANIFEST, bytes)] }, spool))
}

/// The one image a `docker save` archive's `manifest.json` lists: its config and layer file names.
/// Names that are absolute or climb with `..` are refused (they name nothing inside an archive).
fn parse_manifest_json(bytes: &[u8]) -> Result<ArchiveEntry> {
    let mut entries: Vec<ArchiveEntry> = serde_json::from_slice(bytes)
        .map_err(|e| Error::other(format!("manifest.json is not docker's format: {e}")))?;
    let entry = match entries.len() {
        1 => entries.remove(0),
        0 => return Err(Error::other("manifest.json lists no images")),
        n => return Err(Error::other(format!("the archive holds {n} images; hoist pushes one at a time"))),
    };
    for name in std::iter::once(&entry.config).chain(&entry.layers) {
        if name.starts_with('/') || crate::fsutil::clean_checked(name).is_none() {
            return Err(Error::other(format!("manifest.json names {name:?}, outside the archive; refused")));
        }
    }
    Ok(entry)
}

/// Fuzzing entry: parses `bytes` as a `manifest.json` (see `crate::fuzzing`).
#[doc(hidden)]
pub fn fuzz_manifest_json(bytes: &[u8]) -> bool {
    parse_manifest_json(bytes).is_ok()
}

pub fn descriptor(b: &Blob) -> OciDescriptor {
    OciDescriptor {
        media_type: b.media_type.clone(),
        digest: b.digest.to_string(),
        size: b.size as i64,
        urls: None,
        annotations: None,
        artifact_type: None,
    }
}

/// Maps every regular file in the tar to (offset of its data, size).
fn index_tar(file: &Path) -> Result<HashMap<String, (u64, u64)>> {
    let f = File::open(file).map_err(|e| Error::io("opening", e))?;
    let mut archive = tar::Archive::new(BufReader::new(f));
    let mut index = HashMap::new();
    let entries = archive.entries().map_err(|e| Error::io("reading tar", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading tar (is it a tar file?)", e))?;
        if entry.header().entry_type().is_file() {
            let path = entry.path().map_err(|e| Error::io("reading tar entry name", e))?;
            let name = path.to_string_lossy().trim_start_matches("./").to_string();
            index.insert(name, (entry.raw_file_position(), entry.size()));
        }
    }
    if index.is_empty() {
        return Err(Error::other("the file is empty or not a tar archive"));
    }
    Ok(index)
}

fn read_range(file: &Path, offset: u64, size: u64) -> io::Result<Vec<u8>> {
    let mut f = File::open(file)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(size as usize);
    f.take(size).read_to_end(&mut buf)?;
    Ok(buf)
}

fn layer_blob(file: &Path, offset: u64, size: u64, spool: &mut Spool) -> Result<Blob> {
    let mut f = File::open(file).map_err(|e| Error::io("opening", e))?;
    f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("seeking", e))?;
    let mut magic = [0u8; 4];
    let n = (&mut f).take(4).read(&mut magic).map_err(|e| Error::io("reading", e))?;
    f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("seeking", e))?;
    let media_type = match &magic[..n] {
        [0x1f, 0x8b, ..] => Some(media::OCI_LAYER_GZIP),
        [0x28, 0xb5, 0x2f, 0xfd] => Some(media::OCI_LAYER_ZSTD),
        _ => None,
    };
    let mut reader = BufReader::with_capacity(1 << 20, f.take(size));
    if let Some(media_type) = media_type {
        // Already compressed: push the bytes as they are, from inside the archive.
        let mut hasher = Sha256::new();
        io::copy(&mut reader, &mut HashWriter(&mut hasher)).map_err(|e| Error::io("hashing", e))?;
        return Ok(Blob {
            digest: Digest::from_sha256(hasher),
            size,
            media_type: media_type.into(),
            source: BlobSource::File { path: file.to_path_buf(), offset },
        });
    }
    let dir = match spool {
        Some(d) => d.path().to_path_buf(),
        None => {
            let d = tempfile::Builder::new()
                .prefix("hoist-spool-")
                .tempdir()
                .map_err(|e| Error::io("creating spool dir", e))?;
            let p = d.path().to_path_buf();
            *spool = Some(d);
            p
        }
    };
    let path: PathBuf = dir.join(format!("layer-{offset}.tar.gz"));
    let out = File::create(&path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    // The layer writer's compressor (libdeflate, 4 MiB members in parallel, incompressible runs stored).
    let mut gz = crate::builder::layer::Compression::Gzip(GZIP_LEVEL)
        .encoder(HashingWriter::new(io::BufWriter::new(out)))
        .map_err(|e| Error::io("compressing", e))?;
    io::copy(&mut reader, &mut gz).map_err(|e| Error::io("compressing", e))?;
    let (digest, written, _) = gz.finish().map_err(|e| Error::io("compressing", e))?.finish();
    Ok(Blob {
        digest,
        size: written,
        media_type: media::OCI_LAYER_GZIP.into(),
        source: BlobSource::File { path, offset: 0 },
    })
}

struct HashWriter<'a>(&'a mut Sha256);
impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_manifest_json_and_config_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tar_with = |entries: &[(&str, Vec<u8>)]| {
            let path = dir.path().join("a.tar");
            let mut b = tar::Builder::new(File::create(&path).unwrap());
            for (name, data) in entries {
                let mut h = tar::Header::new_ustar();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, name, data.as_slice()).unwrap();
            }
            b.finish().unwrap();
            path
        };
        let big = vec![b' '; (media::MAX_MANIFEST_BYTES + 1) as usize];
        let e = read(&tar_with(&[("manifest.json", big)])).unwrap_err().to_string();
        assert!(e.contains("manifest.json is over 4194304 bytes"), "{e}");
        let manifest = br#"[{"Config":"c.json","Layers":[]}]"#.to_vec();
        let config = vec![b' '; (media::MAX_CONFIG_BYTES + 1) as usize];
        let e = read(&tar_with(&[("manifest.json", manifest), ("c.json", config)])).unwrap_err().to_string();
        assert!(e.contains("c.json is over 16777216 bytes"), "{e}");
    }
}
