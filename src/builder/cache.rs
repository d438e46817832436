//! The local layer cache: a rebuild of unchanged input reuses the finished compressed layer instead
//! of reading and compressing the files again. The key ([`key`]) is a sha256 over everything the
//! layer tar is made of — every entry's image path, kind, mode, owner and symlink target, for files
//! from the context the source path and its stat (size, mtime_ns, ctime_ns, inode, device), for
//! bytes made during planning (here-documents, ADDed archives) their sha256 — plus the epoch used
//! for mtimes and the compression and level. The instruction's text, flags and destination are in
//! it through their effect: they decide the tree's paths, modes and owners. The value is the layer
//! file and a small JSON record (digest, diff_id, size, media type).
//!
//! Stat-based keys are how git and cargo decide "unchanged": a content edit that keeps size, mtime
//! and inode (and, here, ctime) is missed, as with make. Fresh CI clones give every file a fresh
//! mtime, so CI rebuilds miss the cache: correctness first. Nothing is evicted automatically:
//! delete the directory (`$HOIST_CACHE_DIR`, else `$XDG_CACHE_HOME/hoist`, else `~/.cache/hoist`)
//! to reclaim space; `--no-cache` bypasses it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::layer::{Compression, Content, Kind, Layer, Tree};
use crate::ci::Env;
use crate::error::{Error, Result};
use crate::model::{Blob, BlobSource, Digest};

/// Bumped when the layer writer changes what it writes for the same tree.
const FORMAT: &str = "hoist-layer-cache-v2";

/// The cache directory: `$HOIST_CACHE_DIR`, else `$XDG_CACHE_HOME/hoist`, else `~/.cache/hoist`
/// (`None` when none is set).
pub fn default_dir(env: &dyn Env) -> Option<PathBuf> {
    if let Some(d) = env.non_empty(crate::ci::vars::HOIST_CACHE_DIR) {
        return Some(d.into());
    }
    if let Some(d) = env.non_empty(crate::ci::vars::XDG_CACHE_HOME) {
        return Some(Path::new(&d).join("hoist"));
    }
    env.non_empty(crate::ci::vars::HOME).map(|h| Path::new(&h).join(".cache/hoist"))
}

/// The cache key of the layer `tree` makes, hex; stats every context file the tree reads.
pub fn key(tree: &Tree, epoch: u64, compression: Compression) -> Result<String> {
    let mut h = Sha256::new();
    let mut field = |s: &[u8]| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s);
    };
    field(FORMAT.as_bytes());
    field(&epoch.to_le_bytes());
    field(compression.tag().as_bytes());
    for (path, node) in tree {
        field(path.as_bytes());
        field(format!("{:o} {} {}", node.mode, node.uid, node.gid).as_bytes());
        match &node.kind {
            Kind::Dir => field(b"dir"),
            Kind::Symlink(target) => {
                field(b"symlink");
                field(target.as_bytes());
            }
            Kind::File(Content::Bytes(bytes)) => {
                field(b"bytes");
                field(&Sha256::digest(bytes.as_slice()));
            }
            Kind::File(Content::Path(src)) => {
                field(b"file");
                field(src.as_os_str().as_encoded_bytes());
                let m = fs::metadata(src).map_err(|e| Error::io(format!("reading {}", src.display()), e))?;
                field(stat_line(&m).as_bytes());
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(unix)]
fn stat_line(m: &fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    format!(
        "{} {} {} {} {} {:o}",
        m.size(),
        ns(m.mtime(), m.mtime_nsec()),
        ns(m.ctime(), m.ctime_nsec()),
        m.ino(),
        m.dev(),
        m.mode()
    )
}

#[cfg(not(unix))]
fn stat_line(m: &fs::Metadata) -> String {
    let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    format!("{} {:?}", m.len(), mtime)
}

/// What the cache keeps next to a layer file.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    digest: String,
    diff_id: String,
    size: u64,
    media_type: String,
}

/// A layer cache rooted at a directory (`layers/KEY` and `layers/KEY.json`).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into().join("layers") }
    }

    /// The cached layer for `key`, its blob pointing at the cache file; `None` on a miss or when
    /// the record is unreadable or the file's size is not the recorded one.
    pub fn get(&self, key: &str) -> Option<Layer> {
        let record: Record = serde_json::from_slice(&fs::read(self.dir.join(format!("{key}.json"))).ok()?).ok()?;
        let path = self.dir.join(key);
        if fs::metadata(&path).ok()?.len() != record.size {
            return None;
        }
        Some(Layer {
            blob: Blob {
                digest: record.digest.parse().ok()?,
                size: record.size,
                media_type: record.media_type,
                source: BlobSource::File { path, offset: 0 },
            },
            diff_id: record.diff_id.parse::<Digest>().ok()?,
        })
    }

    /// Stores `layer` (its blob a local file) under `key`: the file, then the record, each written
    /// to a temporary file in the cache and renamed into place, so readers never see half of one.
    pub fn put(&self, key: &str, layer: &Layer) -> Result<()> {
        let ctx = || format!("writing the layer cache {}", self.dir.display());
        let BlobSource::File { path, offset: 0 } = &layer.blob.source else {
            return Err(Error::other("only whole local files are cached").context(ctx()));
        };
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(ctx(), e))?;
        // A hard link when the spool and the cache share a filesystem: the layer's bytes are not copied
        // (a copy of a 150 MiB layer is ~0.1 s at the end of a cold build); the spool only ever
        // unlinks its file, so the cache's stays. Across filesystems, a copy.
        match tempfile::Builder::new().make_in(&self.dir, |tmp| fs::hard_link(path, tmp)) {
            Ok(linked) => {
                linked.persist(self.dir.join(key)).map_err(|e| Error::io(ctx(), e.error))?;
            }
            Err(_) => {
                let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| Error::io(ctx(), e))?;
                let mut src = fs::File::open(path).map_err(|e| Error::io(ctx(), e))?;
                std::io::copy(&mut src, &mut tmp).map_err(|e| Error::io(ctx(), e))?;
                tmp.persist(self.dir.join(key)).map_err(|e| Error::io(ctx(), e.error))?;
            }
        }
        let record = Record {
            digest: layer.blob.digest.to_string(),
            diff_id: layer.diff_id.to_string(),
            size: layer.blob.size,
            media_type: layer.blob.media_type.clone(),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| Error::io(ctx(), e))?;
        tmp.write_all(&serde_json::to_vec(&record).expect("record serializes")).map_err(|e| Error::io(ctx(), e))?;
        tmp.persist(self.dir.join(format!("{key}.json"))).map_err(|e| Error::io(ctx(), e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::layer::{write_layer, Node};
    use crate::ci::MapEnv;

    fn tree_of(file: &Path) -> Tree {
        let mut t = Tree::new();
        t.insert("a".into(), Node { kind: Kind::File(Content::Path(file.into())), mode: 0o644, uid: 0, gid: 0 });
        t
    }

    #[test]
    fn dirs_follow_the_environment() {
        let env = MapEnv::new([("HOIST_CACHE_DIR", "/c"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(default_dir(&env), Some(PathBuf::from("/c")));
        let env = MapEnv::new([("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(default_dir(&env), Some(PathBuf::from("/x/hoist")));
        assert_eq!(default_dir(&MapEnv::new([("HOME", "/h")])), Some(PathBuf::from("/h/.cache/hoist")));
        assert_eq!(default_dir(&MapEnv::new([])), None);
    }

    #[test]
    fn keys_follow_stats_and_choices_and_hits_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "one").unwrap();
        let t = tree_of(&file);
        let gz = Compression::default();
        let k = key(&t, 0, gz).unwrap();
        assert_eq!(k, key(&t, 0, gz).unwrap());
        assert_ne!(k, key(&t, 1, gz).unwrap());
        assert_ne!(k, key(&t, 0, Compression::Zstd(3)).unwrap());
        let mut chmod = t.clone();
        chmod.get_mut("a").unwrap().mode = 0o600;
        assert_ne!(k, key(&chmod, 0, gz).unwrap());

        let cache = Cache::new(dir.path().join("cache"));
        assert!(cache.get(&k).is_none());
        let layer = write_layer(&t, 0, dir.path(), "l", gz).unwrap();
        cache.put(&k, &layer).unwrap();
        let hit = cache.get(&k).unwrap();
        assert_eq!((hit.blob.digest.clone(), hit.diff_id.clone()), (layer.blob.digest.clone(), layer.diff_id));
        assert_eq!(hit.blob.size, layer.blob.size);
        let BlobSource::File { path, .. } = &hit.blob.source else { panic!() };
        assert_eq!(Digest::sha256_of(&fs::read(path).unwrap()), layer.blob.digest);
        // On one filesystem the cache file is the spool's, linked: no copy of the bytes.
        let BlobSource::File { path: spooled, .. } = &layer.blob.source else { panic!() };
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(path).unwrap().ino(), fs::metadata(spooled).unwrap().ino());
        // A truncated cache file is a miss.
        fs::write(path, b"x").unwrap();
        assert!(cache.get(&k).is_none());

        fs::write(&file, "two!").unwrap();
        assert_ne!(k, key(&t, 0, gz).unwrap(), "an edit changes size and mtime");
    }
}
