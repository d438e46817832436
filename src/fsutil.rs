//! File-system safety shared by every part of hoist that writes outputs or reads untrusted input:
//!
//! - [`write_atomic`] and [`AtomicFile`]: outputs (layouts' `index.json`, archives, reports, digest and
//!   metadata files, charts) are written to a temporary file in the destination's directory and renamed
//!   over it when complete, so an interrupted run leaves the old file or none — never half a file.
//! - [`read_limited`]: reads a small file (a manifest, an index, a config) refusing one over a bound,
//!   before it is in memory.
//! - [`ExpansionGuard`]: a reader that stops a decompression bomb — decompressed output over an
//!   absolute bound, or over a ratio to its compressed size once past a floor — with a clear error.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically (temporary file in the same directory, flushed, renamed), mode
/// 0644.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with the file's permission bits (0600 for credentials files: the temporary file
/// has them before any byte is written).
pub fn write_atomic_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.mode = mode;
    f.set_mode().map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    f.write_all(bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    f.commit()
}

/// A file being written in place of `dest`: dropped without [`AtomicFile::commit`] it disappears.
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    mode: u32,
}

impl AtomicFile {
    /// Starts writing `dest` (its directory must exist).
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
        Ok(AtomicFile { tmp, dest: dest.to_path_buf(), mode: 0o644 })
    }

    /// The file being written.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    #[cfg(unix)]
    fn set_mode(&self) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        self.tmp.as_file().set_permissions(std::fs::Permissions::from_mode(self.mode))
    }
    #[cfg(not(unix))]
    fn set_mode(&self) -> io::Result<()> {
        Ok(())
    }

    /// Flushes the data and renames it over the destination (mode 0644 — read-write for the owner,
    /// readable by others, as `File::create` makes it under a 022 umask — unless set otherwise).
    pub fn commit(self) -> Result<()> {
        let ctx = || format!("writing {}", self.dest.display());
        self.tmp.as_file().sync_all().map_err(|e| Error::io(ctx(), e))?;
        self.set_mode().map_err(|e| Error::io(ctx(), e))?;
        let dest = self.dest.clone();
        self.tmp.persist(&dest).map_err(|e| Error::io(format!("writing {}", dest.display()), e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Lexically cleans an image path: no leading `/`, no `.` or empty parts, `..` resolved; `None`
/// when a `..` would climb above the root. Every unpacker judges entry and link paths with it.
pub fn clean_checked(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            p => out.push(p),
        }
    }
    Some(out.join("/"))
}

/// Reads `path` whole, refusing a file over `limit` bytes (`what` names it in the error: "index.json").
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| Error::io(what, e))?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(|e| Error::io(what, e))?;
    if buf.len() as u64 > limit {
        return Err(too_big(what, limit));
    }
    Ok(buf)
}

/// The error for a document over its bound.
pub fn too_big(what: &str, limit: u64) -> Error {
    Error::other(format!("{what} is over {} bytes, hoist's limit for it; refused", limit))
        .with_hint("this is not a well-formed image, or it was made to exhaust memory")
}

/// Bounds on what a compressed stream may expand to.
#[derive(Debug, Clone, Copy)]
pub struct Expansion {
    /// Never more than this many bytes out.
    pub max_bytes: u64,
    /// Past `floor` bytes out, never more than `ratio` × the compressed size.
    pub ratio: u64,
    pub floor: u64,
}

impl Expansion {
    /// Layers fetched from registries and unpacked: real layers (text, binaries, sparse databases)
    /// stay far below 200:1 once past 1 GiB; a gzip of zeros is ~1000:1.
    pub const LAYER: Expansion = Expansion { max_bytes: 64 << 30, ratio: 200, floor: 1 << 30 };
    /// Archives ADDed from the build context, held in memory while the layer is planned.
    pub const ADD_ARCHIVE: Expansion = Expansion { max_bytes: 1 << 30, ratio: 200, floor: 256 << 20 };
}

/// A reader of decompressed bytes that fails once they exceed an [`Expansion`] bound for a stream of
/// `compressed` bytes. The error is an `io::Error` of kind `InvalidData` whose text says which bound.
pub struct ExpansionGuard<R> {
    inner: R,
    out: u64,
    limit: u64,
    compressed: u64,
    bounds: Expansion,
}

impl<R: Read> ExpansionGuard<R> {
    pub fn new(inner: R, compressed: u64, bounds: Expansion) -> Self {
        let by_ratio = compressed.saturating_mul(bounds.ratio).max(bounds.floor);
        ExpansionGuard { inner, out: 0, limit: by_ratio.min(bounds.max_bytes), compressed, bounds }
    }
}

impl<R: Read> Read for ExpansionGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if self.out > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "decompression bomb: {} compressed bytes expand past {} bytes (hoist allows {}:1 past {} MiB, \
                     and {} GiB at most); refused",
                    self.compressed,
                    self.limit,
                    self.bounds.ratio,
                    self.bounds.floor >> 20,
                    self.bounds.max_bytes >> 30
                ),
            ));
        }
        Ok(n)
    }
}

/// Hand-made tar archives with whatever names and links an attacker would write, for the unpackers'
/// tests and the fuzzers' seed corpora.
#[doc(hidden)]
pub mod craft {
    /// One crafted tar entry.
    pub enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a str),
        FileMode(&'a str, &'a str, u32, u64),
        Sym(&'a str, &'a str),
        Hard(&'a str, &'a str),
        Dev(&'a str),
        Fifo(&'a str),
    }

    /// A tar with `entries`, names written raw (so `..` and absolute names get through).
    pub fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_700_000_000);
            let (name, data): (&str, &[u8]) = match e {
                E::Dir(n) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    (n, b"")
                }
                E::File(n, c) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    (n, c.as_bytes())
                }
                E::FileMode(n, c, m, id) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*m);
                    h.set_uid(*id);
                    h.set_gid(*id + 1);
                    (n, c.as_bytes())
                }
                E::Sym(n, t) | E::Hard(n, t) => {
                    h.set_entry_type(if matches!(e, E::Sym(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_mode(0o777);
                    h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
                    (n, b"")
                }
                E::Dev(n) => {
                    h.set_entry_type(tar::EntryType::Char);
                    h.set_mode(0o666);
                    (n, b"")
                }
                E::Fifo(n) => {
                    h.set_entry_type(tar::EntryType::Fifo);
                    h.set_mode(0o644);
                    (n, b"")
                }
            };
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // An interrupted write (dropped before commit) leaves the old file and no temporary.
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no .partial left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let secret = dir.path().join("config.json");
            write_atomic_with_mode(&secret, b"{}", 0o600).unwrap();
            assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        }
    }

    #[test]
    fn limited_reads_refuse_big_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index.json");
        std::fs::write(&p, vec![b' '; 101]).unwrap();
        assert_eq!(read_limited(&p, 101, "index.json").unwrap().len(), 101);
        let e = read_limited(&p, 100, "index.json").unwrap_err();
        assert!(e.to_string().contains("index.json is over 100 bytes"), "{e}");
    }

    #[test]
    fn expansion_guard_stops_bombs_and_passes_normal_streams() {
        let b = Expansion { max_bytes: 10_000, ratio: 10, floor: 100 };
        let mut out = Vec::new();
        // 50 bytes "compressed" may give 500.
        ExpansionGuard::new(&[0u8; 500][..], 50, b).read_to_end(&mut out).unwrap();
        let e = ExpansionGuard::new(&[0u8; 501][..], 50, b).read_to_end(&mut out).unwrap_err();
        assert!(e.to_string().contains("decompression bomb"), "{e}");
        // The floor: tiny inputs may expand to `floor`.
        ExpansionGuard::new(&[0u8; 100][..], 1, b).read_to_end(&mut out).unwrap();
        // The absolute bound wins over the ratio.
        assert!(ExpansionGuard::new(&[0u8; 10_001][..], 5000, b).read_to_end(&mut out).is_err());
    }
}
