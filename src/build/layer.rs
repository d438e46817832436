//! File trees and deterministic layers: a [`Tree`] is what one COPY/ADD adds (or what a stage holds),
//! keyed by path inside the image; [`write_layer`] turns one into a gzip layer blob — entries sorted,
//! every mtime the build epoch, owners as planned, modes kept, symlinks as symlinks — hashing the tar
//! (diff_id) and the gzip (digest) in the same streaming pass.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::write::GzEncoder;

use crate::error::{Error, Result};
use crate::layout::docker_archive::GZIP_LEVEL;
use crate::model::{media, Blob, BlobSource, Digest, HashingWriter};

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A file in the build context.
    Path(PathBuf),
    /// Bytes made during planning (here-documents, entries of an ADDed tar).
    Bytes(Arc<Vec<u8>>),
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Content),
    Symlink(String),
}

/// One entry of a tree: kind, permission bits (with setuid/setgid/sticky) and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl Node {
    pub fn dir(mode: u32, uid: u64, gid: u64) -> Node {
        Node { kind: Kind::Dir, mode, uid, gid }
    }
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }
}

/// Paths inside the image (no leading `/`, `/`-separated, cleaned) to nodes; sorted, so tars made
/// from it are deterministic.
pub type Tree = BTreeMap<String, Node>;

/// The parent directories of `path`, outermost first (`a/b/c` → `a`, `a/b`).
pub fn parents(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut acc = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        out.push(acc.clone());
    }
    out
}

/// Adds missing parent directories to `layer`, taking their metadata from `fs` (the stage's tree)
/// when it has them, else `0755` root-owned.
pub fn add_parents(layer: &mut Tree, fs: &Tree) {
    let paths: Vec<String> = layer.keys().cloned().collect();
    for p in paths {
        for parent in parents(&p) {
            layer.entry(parent.clone()).or_insert_with(|| {
                fs.get(&parent).filter(|n| n.is_dir()).cloned().unwrap_or_else(|| Node::dir(0o755, 0, 0))
            });
        }
    }
}

/// A written layer: the blob (in the spool) and the digest of its uncompressed tar.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Blob,
    pub diff_id: Digest,
}

/// Writes `tree` as a gzip tar into `dir/name`, every mtime `epoch`.
pub fn write_layer(tree: &Tree, epoch: u64, dir: &Path, name: &str) -> Result<Layer> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let gz = GzEncoder::new(HashingWriter::new(BufWriter::new(file)), flate2::Compression::new(GZIP_LEVEL));
    let mut builder = tar::Builder::new(HashingWriter::new(gz));
    builder.mode(tar::HeaderMode::Deterministic);
    append_tree(&mut builder, tree, epoch).map_err(|e| Error::io("writing layer", e))?;
    let (diff_id, _, gz) = builder.into_inner().map_err(|e| Error::io("writing layer", e))?.finish();
    let (digest, size, mut out) = gz.finish().map_err(|e| Error::io("compressing layer", e))?.finish();
    io::Write::flush(&mut out).map_err(|e| Error::io("writing layer", e))?;
    Ok(Layer {
        blob: Blob {
            digest,
            size,
            media_type: media::OCI_LAYER_GZIP.into(),
            source: BlobSource::File { path, offset: 0 },
        },
        diff_id,
    })
}

fn append_tree<W: io::Write>(builder: &mut tar::Builder<W>, tree: &Tree, epoch: u64) -> io::Result<()> {
    for (path, node) in tree {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(epoch);
        header.set_uid(node.uid);
        header.set_gid(node.gid);
        header.set_mode(node.mode & 0o7777);
        match &node.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{path}/"), io::empty())?;
            }
            Kind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, path, target)?;
            }
            Kind::File(Content::Bytes(bytes)) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, path, bytes.as_slice())?;
            }
            Kind::File(Content::Path(src)) => {
                let f = File::open(src)?;
                let len = f.metadata()?.len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(len);
                builder.append_data(&mut header, path, f.take(len))?;
            }
        }
    }
    Ok(())
}

/// Reads a (possibly gzip-compressed) tar into a tree placed under `dest`; `None` when the bytes
/// are not a tar archive (ADD then copies the file as it is). Hard links become copies.
pub fn read_tar(bytes: &[u8], dest: &str, owner: Option<(u64, u64)>) -> Option<Tree> {
    let data: Vec<u8> = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).ok()?;
        out
    } else {
        bytes.to_vec()
    };
    if data.len() < 512 || &data[257..262] != b"ustar" {
        return None;
    }
    let mut tree = Tree::new();
    let mut archive = tar::Archive::new(data.as_slice());
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let raw = entry.path().ok()?.to_string_lossy().to_string();
        if raw.split('/').any(|p| p == "..") {
            continue;
        }
        let rel = super::ignore::clean(&raw);
        if rel.is_empty() {
            continue;
        }
        let path = join(dest, &rel);
        let h = entry.header();
        let (uid, gid) = owner.unwrap_or((h.uid().unwrap_or(0), h.gid().unwrap_or(0)));
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(entry.link_name().ok()??.to_string_lossy().to_string()),
            tar::EntryType::Link => {
                let target = join(dest, &super::ignore::clean(&entry.link_name().ok()??.to_string_lossy()));
                match tree.get(&target) {
                    Some(n) => n.kind.clone(),
                    None => continue,
                }
            }
            t if t.is_file() => {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf).ok()?;
                Kind::File(Content::Bytes(Arc::new(buf)))
            }
            _ => continue,
        };
        tree.insert(path, Node { kind, mode, uid, gid });
    }
    Some(tree)
}

/// `dir` + `/` + `rel`, for image paths (either may be empty).
pub fn join(dir: &str, rel: &str) -> String {
    match (dir.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{dir}/{rel}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.insert(
            "app/a.txt".into(),
            Node { kind: Kind::File(Content::Bytes(Arc::new(b"hi".to_vec()))), mode: 0o644, uid: 0, gid: 0 },
        );
        t.insert("app/link".into(), Node { kind: Kind::Symlink("a.txt".into()), mode: 0o777, uid: 0, gid: 0 });
        add_parents(&mut t, &Tree::new());
        t
    }

    #[test]
    fn parents_and_join() {
        assert_eq!(parents("a/b/c"), vec!["a".to_string(), "a/b".to_string()]);
        assert!(parents("a").is_empty());
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("a", "x"), "a/x");
    }

    #[test]
    fn layers_are_deterministic_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let t = sample();
        assert!(t.contains_key("app"));
        let a = write_layer(&t, 5, dir.path(), "a").unwrap();
        let b = write_layer(&t, 5, dir.path(), "b").unwrap();
        assert_eq!(a.blob.digest, b.blob.digest);
        assert_eq!(a.diff_id, b.diff_id);
        let c = write_layer(&t, 6, dir.path(), "c").unwrap();
        assert_ne!(a.diff_id, c.diff_id);
        let bytes = std::fs::read(dir.path().join("a")).unwrap();
        assert_eq!(Digest::sha256_of(&bytes), a.blob.digest);
        let back = read_tar(&bytes, "x", None).unwrap();
        assert!(matches!(back["x/app/link"].kind, Kind::Symlink(ref s) if s == "a.txt"));
        assert_eq!(back["x/app/a.txt"].mode, 0o644);
        assert!(read_tar(b"not a tar", "", None).is_none());
    }
}
