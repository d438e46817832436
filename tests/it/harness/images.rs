//! Synthetic images with crafted layers: each layer a list of tar entries (files with modes and
//! owners, directories, symlinks, hard links, whiteouts and opaque markers, written as raw tar
//! headers), plus a config, written as an OCI layout that skopeo pushes into a test registry.
//! Used where the content of an image's layers matters (COPY --from an image, --chown by name,
//! the real-world corpus's stand-in bases).

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use serde_json::{json, Value};

use super::fixtures::write_blob;

/// One tar entry of a crafted layer.
#[derive(Debug, Clone)]
pub enum Ent {
    Dir(&'static str, u32, u64, u64),
    File(&'static str, String, u32, u64, u64),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    /// `.wh.<name>` deleting `path` from lower layers.
    Whiteout(&'static str),
    /// `.wh..wh..opq` in the directory `path`.
    Opaque(&'static str),
}

/// A root-owned 0644 file.
pub fn file(path: &'static str, content: &str) -> Ent {
    Ent::File(path, content.to_string(), 0o644, 0, 0)
}

/// A root-owned 0755 directory.
pub fn dir(path: &'static str) -> Ent {
    Ent::Dir(path, 0o755, 0, 0)
}

/// The uncompressed tar of a layer.
pub fn layer_tar(entries: &[Ent]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        let (name, data): (String, Vec<u8>) = match e {
            Ent::Dir(p, m, u, g) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                h.set_uid(*u);
                h.set_gid(*g);
                (format!("{p}/"), Vec::new())
            }
            Ent::File(p, c, m, u, g) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_uid(*u);
                h.set_gid(*g);
                h.set_size(c.len() as u64);
                (p.to_string(), c.as_bytes().to_vec())
            }
            Ent::Symlink(p, t) | Ent::Hardlink(p, t) => {
                let kind = if matches!(e, Ent::Symlink(..)) { tar::EntryType::Symlink } else { tar::EntryType::Link };
                h.set_entry_type(kind);
                // A hard link's header repeats its target's mode (they are one inode).
                h.set_mode(if matches!(e, Ent::Symlink(..)) { 0o777 } else { 0o644 });
                h.set_link_name(t).unwrap();
                (p.to_string(), Vec::new())
            }
            Ent::Whiteout(p) => {
                let (d, n) = p.rsplit_once('/').unwrap_or(("", p));
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (if d.is_empty() { format!(".wh.{n}") } else { format!("{d}/.wh.{n}") }, Vec::new())
            }
            Ent::Opaque(p) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (format!("{p}/.wh..wh..opq"), Vec::new())
            }
        };
        h.set_path(&name).unwrap();
        h.set_cksum();
        b.append(&h, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A written synthetic image.
#[derive(Debug, Clone)]
pub struct Synthetic {
    pub manifest_digest: String,
    pub layer_digests: Vec<String>,
}

/// Writes an OCI layout at `dir` (tag `tag`) with `layers` (gzip) and `config` (the `config`
/// object of the image config: User, WorkingDir, Env, Cmd, …), linux/amd64.
pub fn synthetic_layout(dir: &Path, tag: &str, layers: &[Vec<Ent>], config: Value) -> Synthetic {
    std::fs::create_dir_all(dir).unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_digests = Vec::new();
    for l in layers {
        let tar = layer_tar(l);
        diff_ids.push(super::sha256_digest(&tar));
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let d = write_blob(dir, &gz);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": gz.len()}));
        layer_digests.push(d);
    }
    let cfg = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2020-09-13T12:26:40Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| json!({"created_by": "synthetic"})).collect::<Vec<_>>(),
    });
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let cfg_digest = write_blob(dir, &cfg);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": cfg.len()},
        "layers": descs,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = write_blob(dir, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Synthetic { manifest_digest, layer_digests }
}

/// Writes the image as a layout under `work` and pushes it to `reference` in `reg` (digests kept).
pub fn push_synthetic(
    reg: &super::Registry,
    work: &Path,
    reference: &str,
    layers: &[Vec<Ent>],
    config: Value,
) -> Synthetic {
    let dir =
        work.join(format!("synthetic-{}", super::sha256_digest(reference.as_bytes()).trim_start_matches("sha256:")));
    let s = synthetic_layout(&dir, "t", layers, config);
    super::Skopeo::new(reg).preserve_digests().push_layout(&dir, "t", reference);
    s
}

/// One entry of a flattened image filesystem: kind (`d`ir, `f`ile, `l`ink), mode, owner, and the
/// file's sha256 or the link's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsNode {
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub data: String,
}

/// Applies layer blobs (gzip or plain tar) in memory with OCI whiteouts — the test's own reader,
/// independent of hoist's — into path → node (paths without a leading `/`).
pub fn flatten(layers: &[Vec<u8>]) -> std::collections::BTreeMap<String, FsNode> {
    use std::io::Read;
    let mut fs: std::collections::BTreeMap<String, FsNode> = Default::default();
    for blob in layers {
        let mut tar_bytes = Vec::new();
        if blob.starts_with(&[0x1f, 0x8b]) {
            flate2::read::MultiGzDecoder::new(blob.as_slice()).read_to_end(&mut tar_bytes).unwrap();
        } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            tar_bytes = zstd::decode_all(blob.as_slice()).unwrap();
        } else {
            tar_bytes = blob.clone();
        }
        let mut mine = std::collections::BTreeSet::new();
        let mut ar = tar::Archive::new(tar_bytes.as_slice());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let raw = e.path().unwrap().to_string_lossy().to_string();
            let path = raw.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/').to_string();
            if path.is_empty() || path == "." {
                continue;
            }
            let (dir, base) = path.rsplit_once('/').map_or(("", path.as_str()), |(d, b)| (d, b));
            let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            if base == ".wh..wh..opq" {
                fs.retain(|k, _| !k.starts_with(&prefix) || mine.contains(k));
                continue;
            }
            if let Some(hidden) = base.strip_prefix(".wh.") {
                let gone = format!("{prefix}{hidden}");
                fs.retain(|k, _| *k != gone && !k.starts_with(&format!("{gone}/")));
                continue;
            }
            let h = e.header().clone();
            let mode = h.mode().unwrap() & 0o7777;
            let (uid, gid) = (h.uid().unwrap(), h.gid().unwrap());
            let node = match h.entry_type() {
                tar::EntryType::Directory => FsNode { kind: 'd', mode, uid, gid, data: String::new() },
                tar::EntryType::Symlink => FsNode {
                    kind: 'l',
                    mode: 0o777,
                    uid,
                    gid,
                    data: e.link_name().unwrap().unwrap().to_string_lossy().to_string(),
                },
                tar::EntryType::Link => {
                    let t = e.link_name().unwrap().unwrap().to_string_lossy().trim_start_matches('/').to_string();
                    let mut n = fs.get(&t).cloned().unwrap_or_else(|| panic!("hard link {path} to missing {t}"));
                    n.mode = mode;
                    n
                }
                _ => {
                    let mut data = Vec::new();
                    e.read_to_end(&mut data).unwrap();
                    FsNode { kind: 'f', mode, uid, gid, data: super::sha256_digest(&data) }
                }
            };
            if node.kind != 'd' {
                fs.retain(|k, _| !k.starts_with(&format!("{path}/")));
            }
            // Missing parents are made as extraction makes them: 0755, root.
            let mut acc = String::new();
            for part in path.split('/').collect::<Vec<_>>().split_last().map_or(&[][..], |(_, p)| p) {
                acc = if acc.is_empty() { part.to_string() } else { format!("{acc}/{part}") };
                fs.entry(acc.clone()).or_insert(FsNode { kind: 'd', mode: 0o755, uid: 0, gid: 0, data: String::new() });
            }
            fs.insert(path.clone(), node);
            mine.insert(path);
        }
    }
    fs
}

/// The layer blobs of the image tagged `tag` in the OCI layout at `dir`, in order.
pub fn layout_layers(dir: &Path, tag: &str) -> Vec<Vec<u8>> {
    let (_, _, bytes) = super::fixtures::layout_manifest(dir, Some(tag));
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            std::fs::read(dir.join("blobs/sha256").join(d)).unwrap()
        })
        .collect()
}

/// The image config of the image tagged `tag` in the OCI layout at `dir`.
pub fn layout_config(dir: &Path, tag: &str) -> Value {
    let (_, _, bytes) = super::fixtures::layout_manifest(dir, Some(tag));
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    let d = m["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:");
    serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(d)).unwrap()).unwrap()
}
