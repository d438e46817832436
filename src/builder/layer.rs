//! File trees and deterministic layers: a [`Tree`] is what one COPY/ADD adds (or what a stage holds),
//! keyed by path inside the image; [`write_layer`] turns one into a gzip layer blob — entries sorted,
//! every mtime the build epoch, owners as planned, modes kept, symlinks as symlinks — hashing the tar
//! (diff_id) and the compressed stream (digest) in the same streaming pass. Layers are gzip or zstd
//! ([`Compression`]); ADD reads tars that are plain or gzip, bzip2, xz or zstd compressed, told apart
//! by their magic bytes as docker does ([`decompress`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::gzip::gzip_block;
use crate::error::{Error, Result};
use crate::fsutil::{Expansion, ExpansionGuard};
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

/// How layers are compressed, with the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip, levels 1–9.
    Gzip(u32),
    /// zstd, levels 1–19 (single-threaded, so the output is deterministic).
    Zstd(i32),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip(GZIP_LEVEL)
    }
}

impl Compression {
    /// zstd's default level (the zstd CLI's too).
    pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

    /// `gzip` or `zstd` with an optional level (each algorithm's default when `None`).
    pub fn parse(name: &str, level: Option<u32>) -> Result<Compression> {
        match name {
            "gzip" => match level.unwrap_or(GZIP_LEVEL) {
                l @ 1..=9 => Ok(Compression::Gzip(l)),
                l => Err(Error::usage(format!("--compression-level {l}: gzip levels are 1 to 9"))),
            },
            "zstd" => match level.map_or(Self::ZSTD_DEFAULT_LEVEL, |l| l as i32) {
                l @ 1..=19 => Ok(Compression::Zstd(l)),
                l => Err(Error::usage(format!("--compression-level {l}: zstd levels are 1 to 19"))),
            },
            other => Err(Error::usage(format!("--compression {other:?}: expected gzip or zstd"))),
        }
    }

    /// The layer media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip(_) => media::OCI_LAYER_GZIP,
            Compression::Zstd(_) => media::OCI_LAYER_ZSTD,
        }
    }

    /// `gzip-1`, `zstd-3`: names the choice in file names and cache keys.
    pub fn tag(self) -> String {
        match self {
            Compression::Gzip(l) => format!("gzip-{l}"),
            Compression::Zstd(l) => format!("zstd-{l}"),
        }
    }

    /// A streaming compressor writing into `w`: every layer hoist compresses goes through it (the
    /// layers `hoist build` writes, and the uncompressed layers of a `docker save` archive).
    pub(crate) fn encoder<W: io::Write>(self, w: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            Compression::Gzip(l) => Encoder::Gzip(ParallelGzip::new(w, l)),
            Compression::Zstd(l) => Encoder::Zstd(zstd::stream::write::Encoder::new(w, l)?),
        })
    }
}

/// A streaming compressor for either algorithm.
pub(crate) enum Encoder<W: io::Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: io::Write> Encoder<W> {
    /// Writes what is left and returns the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: io::Write> io::Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// Bytes of tar per gzip member. Fixed, so the output (and the digest) never depends on how many
/// cores compressed it.
const GZIP_BLOCK: usize = 4 << 20;

/// gzip that uses every core: the input is cut into fixed [`GZIP_BLOCK`]s, each compressed on its own
/// thread into a complete gzip member, and the members are written in order. A sequence of members is
/// one valid gzip stream (RFC 1952 §2.2) that Go's reader — docker, containerd, skopeo, umoci — reads
/// whole by default; the ratio loss of restarting the 32 KiB window every 4 MiB is negligible. Inputs
/// under one block give a single member. Each block is compressed by [`gzip_block`].
pub(crate) struct ParallelGzip<W: io::Write> {
    out: W,
    level: u32,
    block: Vec<u8>,
    pending: std::collections::VecDeque<std::thread::JoinHandle<io::Result<Vec<u8>>>>,
    max_pending: usize,
}

impl<W: io::Write> ParallelGzip<W> {
    fn new(out: W, level: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ParallelGzip {
            out,
            level,
            block: Vec::with_capacity(GZIP_BLOCK),
            pending: Default::default(),
            max_pending: cores,
        }
    }

    /// Hands the current block to a compressor thread, first writing out the oldest finished member
    /// when `max_pending` are in flight (memory stays at a few blocks).
    fn dispatch(&mut self) -> io::Result<()> {
        if self.pending.len() >= self.max_pending {
            self.write_oldest()?;
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(GZIP_BLOCK));
        let level = self.level;
        self.pending.push_back(std::thread::spawn(move || gzip_block(&block, level)));
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(h) = self.pending.pop_front() {
            let member = h.join().map_err(|_| io::Error::other("a gzip thread panicked"))??;
            self.out.write_all(&member)?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        // An empty input still needs one (empty) member to be a gzip stream.
        if !self.block.is_empty() || self.pending.is_empty() {
            self.dispatch()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        Ok(self.out)
    }
}

impl<W: io::Write> io::Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(GZIP_BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == GZIP_BLOCK {
            self.dispatch()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `tree` as a compressed tar into `dir/name`, every mtime `epoch`.
pub fn write_layer(tree: &Tree, epoch: u64, dir: &Path, name: &str, compression: Compression) -> Result<Layer> {
    write_layer_to(tree, epoch, dir, name, compression, None)
}

/// [`write_layer`], and `sink` gets the file to follow as it is written.
pub fn write_layer_to(
    tree: &Tree,
    epoch: u64,
    dir: &Path,
    name: &str,
    compression: Compression,
    sink: Option<&crate::growing::Sink>,
) -> Result<Layer> {
    let path = dir.join(name);
    let (file, growing) =
        crate::growing::create(&path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    if let Some(sink) = sink {
        (sink.0)(growing, compression.media_type());
    }
    let enc = compression
        .encoder(HashingWriter::new(BufWriter::new(file)))
        .map_err(|e| Error::io("starting the layer compressor", e))?;
    let mut builder = tar::Builder::new(HashingWriter::new(enc));
    builder.mode(tar::HeaderMode::Deterministic);
    append_tree(&mut builder, tree, epoch).map_err(|e| Error::io("writing layer", e))?;
    let (diff_id, _, enc) = builder.into_inner().map_err(|e| Error::io("writing layer", e))?.finish();
    let (digest, size, out) = enc.finish().map_err(|e| Error::io("compressing layer", e))?.finish();
    let file = out.into_inner().map_err(|e| Error::io("writing layer", e.into_error()))?;
    file.finish(digest.clone(), size);
    Ok(Layer {
        blob: Blob {
            digest,
            size,
            media_type: compression.media_type().into(),
            source: BlobSource::File { path, offset: 0 },
        },
        diff_id,
    })
}

/// The `diff_id` the layer of `tree` will have — the sha256 of exactly the tar [`write_layer`] makes —
/// without compressing or writing anything: how a build asks the registry for a layer before
/// spending the compression on it ([`super::reuse`]).
pub fn diff_id(tree: &Tree, epoch: u64) -> Result<Digest> {
    let mut builder = tar::Builder::new(HashingWriter::new(io::sink()));
    builder.mode(tar::HeaderMode::Deterministic);
    append_tree(&mut builder, tree, epoch).map_err(|e| Error::io("reading the layer's files", e))?;
    let (digest, _, _) = builder.into_inner().map_err(|e| Error::io("reading the layer's files", e))?.finish();
    Ok(digest)
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

/// Whether `head` starts with the magic of a compression [`decompress`] reads.
pub fn is_compressed(head: &[u8]) -> bool {
    [&[0x1f, 0x8b][..], b"BZh", &[0xfd, b'7', b'z', b'X', b'Z', 0x00], &[0x28, 0xb5, 0x2f, 0xfd]]
        .iter()
        .any(|m| head.starts_with(m))
}

/// `bytes` decompressed when they start with the magic of gzip, bzip2, xz or zstd (docker's
/// `DetectCompression` list), else as they are; `Ok(None)` when a detected stream is corrupt, an error
/// when it expands past [`Expansion::ADD_ARCHIVE`] (a decompression bomb: ADD archives are held in
/// memory).
pub fn decompress(bytes: &[u8]) -> Result<Option<std::borrow::Cow<'_, [u8]>>> {
    decompress_bounded(bytes, Expansion::ADD_ARCHIVE)
}

fn decompress_bounded(bytes: &[u8], bounds: Expansion) -> Result<Option<std::borrow::Cow<'_, [u8]>>> {
    fn guard<'r>(r: Box<dyn Read + 'r>, len: usize, bounds: Expansion) -> ExpansionGuard<Box<dyn Read + 'r>> {
        ExpansionGuard::new(r, len as u64, bounds)
    }
    let guard = |r| guard(r, bytes.len(), bounds);
    let mut out = Vec::new();
    let read = if bytes.starts_with(&[0x1f, 0x8b]) {
        guard(Box::new(flate2::read::MultiGzDecoder::new(bytes))).read_to_end(&mut out)
    } else if bytes.starts_with(b"BZh") {
        guard(Box::new(bzip2::read::MultiBzDecoder::new(bytes))).read_to_end(&mut out)
    } else if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        // lzma-rs writes into a sink rather than being read: bound the sink.
        let mut sink = LimitedSink { out: &mut out, limit: bounds.max_bytes };
        match lzma_rs::xz_decompress(&mut io::BufReader::new(bytes), &mut sink) {
            Ok(()) => Ok(0),
            Err(lzma_rs::error::Error::IoError(e)) => Err(e),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        match zstd::stream::read::Decoder::new(bytes) {
            Ok(d) => guard(Box::new(d)).read_to_end(&mut out),
            Err(e) => Err(e),
        }
    } else {
        return Ok(Some(std::borrow::Cow::Borrowed(bytes)));
    };
    match read {
        Ok(_) => Ok(Some(std::borrow::Cow::Owned(out))),
        Err(e) if e.to_string().contains("decompression bomb") => Err(Error::other(e.to_string())),
        Err(_) => Ok(None),
    }
}

/// A `Write` into a vector that refuses to grow past `limit` (the xz decoder's output).
struct LimitedSink<'a> {
    out: &'a mut Vec<u8>,
    limit: u64,
}

impl io::Write for LimitedSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() as u64 + buf.len() as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("decompression bomb: the archive expands past {} bytes; refused", self.limit),
            ));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a (possibly compressed, see [`decompress`]) tar into a tree placed under `dest`; `Ok(None)`
/// when the bytes are not a tar archive (ADD then copies the file as it is). Hard links become copies.
///
/// Hostile archives are refused with an error naming the entry, by the same rules as every unpacker
/// in hoist (`crate::rootfs`): paths that are absolute or climb out with `..`, symlinks whose relative
/// target climbs above the image root, hard links to anything not earlier in the archive, device
/// nodes, and entries written through a symlink (a directory replaced by a link, then written below).
pub fn read_tar(bytes: &[u8], dest: &str, owner: Option<(u64, u64)>) -> Result<Option<Tree>> {
    read_tar_bounded(bytes, dest, owner, Expansion::ADD_ARCHIVE)
}

fn read_tar_bounded(bytes: &[u8], dest: &str, owner: Option<(u64, u64)>, bounds: Expansion) -> Result<Option<Tree>> {
    let Some(data) = decompress_bounded(bytes, bounds)? else { return Ok(None) };
    if data.len() < 512 || &data[257..262] != b"ustar" {
        return Ok(None);
    }
    let mut tree = Tree::new();
    let mut archive = tar::Archive::new(&*data);
    let Ok(entries) = archive.entries() else { return Ok(None) };
    for entry in entries {
        let Ok(mut entry) = entry else { return Ok(None) };
        let raw = String::from_utf8_lossy(&entry.path_bytes()).to_string();
        let refuse = |why: &str| Error::other(format!("entry {raw:?}: {why}; refused"));
        let h = entry.header();
        let entry_type = h.entry_type();
        if matches!(entry_type, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        if raw.starts_with('/') {
            return Err(refuse("an absolute path"));
        }
        let rel = crate::fsutil::clean_checked(&raw).ok_or_else(|| refuse("the path climbs out with '..'"))?;
        if rel.is_empty() {
            continue;
        }
        let path = join(dest, &rel);
        if let Some(p) = parents(&path).into_iter().find(|p| matches!(tree.get(p), Some(n) if !n.is_dir())) {
            return Err(refuse(&format!("its parent /{p} is not a directory (a symlink?); writing through it")));
        }
        let (uid, gid) = owner.unwrap_or((h.uid().unwrap_or(0), h.gid().unwrap_or(0)));
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let link = || entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).to_string()).unwrap_or_default();
        let kind = match entry_type {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                let target = link();
                let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                if !target.starts_with('/') && crate::fsutil::clean_checked(&format!("{parent}/{target}")).is_none() {
                    return Err(refuse(&format!("a symlink to {target:?}, which points outside the image root")));
                }
                Kind::Symlink(target)
            }
            tar::EntryType::Link => {
                let target = link();
                let clean = crate::fsutil::clean_checked(&target)
                    .filter(|t| !t.is_empty() && !target.starts_with('/'))
                    .ok_or_else(|| refuse(&format!("a hard link to {target:?}, outside the archive")))?;
                match tree.get(&join(dest, &clean)) {
                    Some(n) if !n.is_dir() => n.kind.clone(),
                    _ => {
                        return Err(refuse(&format!(
                            "a hard link to {target:?}, which is not a file earlier in the archive"
                        )))
                    }
                }
            }
            tar::EntryType::Char | tar::EntryType::Block => return Err(refuse("a device node")),
            t if t.is_file() => {
                let mut buf = Vec::new();
                if entry.read_to_end(&mut buf).is_err() {
                    return Ok(None);
                }
                Kind::File(Content::Bytes(Arc::new(buf)))
            }
            // FIFOs and other special entries have no place in an image layer built from files.
            _ => continue,
        };
        tree.insert(path, Node { kind, mode, uid, gid });
    }
    Ok(Some(tree))
}

pub use crate::paths::join;

#[cfg(test)]
mod tests {
    use flate2::write::GzEncoder;

    fn par_gzip(data: &[u8], max_pending: usize) -> Vec<u8> {
        let mut enc = ParallelGzip::new(Vec::new(), 1);
        enc.max_pending = max_pending;
        for chunk in data.chunks(100_003) {
            std::io::Write::write_all(&mut enc, chunk).unwrap();
        }
        enc.finish().unwrap()
    }

    #[test]
    fn parallel_gzip_round_trips_and_does_not_depend_on_the_core_count() {
        // 10.5 blocks of half-compressible data.
        let data: Vec<u8> = (0..GZIP_BLOCK * 21 / 2).map(|i| if i % 3 == 0 { (i / 7) as u8 } else { b'x' }).collect();
        let one = par_gzip(&data, 1);
        assert_eq!(one, par_gzip(&data, 4), "bytes must not depend on parallelism");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&one[..]), &mut back).unwrap();
        assert!(back == data, "multi-member stream decodes to the input");
        // Under one block: exactly one member, which a single-member reader takes whole.
        let small = &data[..1000];
        let member = par_gzip(small, 2);
        assert_eq!(member, gzip_block(small, 1).unwrap());
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&member[..]), &mut back).unwrap();
        assert!(back == small);
        // Empty input is still a valid gzip stream.
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&par_gzip(&[], 2)[..]), &mut back).unwrap();
        assert!(back.is_empty());
    }

    /// An xorshift generator: the same numbers everywhere.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// 1 MiB that compresses like code and text: words from a small vocabulary, numbers, and a run of
    /// noise every so often ([`xorshift`], so the bytes are the same everywhere).
    fn text_like() -> Vec<u8> {
        let words = ["static", "const", "return", "0x7fff", "lib", "gnu", "elf", "symbol", "\n", "{", "}", "  "];
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut out = Vec::with_capacity(1 << 20);
        while out.len() < 1 << 20 {
            let r = next();
            match r % 16 {
                0 => out.extend((0..(r >> 8) % 64).map(|i| (r >> (i % 56)) as u8)),
                1 => out.extend_from_slice(format!("{}", r % 100_000).as_bytes()),
                _ => out.extend_from_slice(words[(r >> 4) as usize % words.len()].as_bytes()),
            }
            out.push(b' ');
        }
        out.truncate(1 << 20);
        out
    }

    /// `n` bytes of noise ([`xorshift`]: incompressible, the same everywhere).
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut next = xorshift(seed);
        (0..n).map(|_| (next() >> 24) as u8).collect()
    }

    /// The uncompressed sizes of the gzip members of `stream`, each read alone (and its CRC checked).
    fn member_sizes(mut stream: &[u8]) -> Vec<usize> {
        let mut sizes = Vec::new();
        while !stream.is_empty() {
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::bufread::GzDecoder::new(&mut stream), &mut back).unwrap();
            sizes.push(back.len());
        }
        sizes
    }

    #[test]
    fn incompressible_runs_are_stored_and_the_rest_deflated() {
        // 1 MiB text, 1 MiB noise, 1 MiB text, 1 KiB noise (a last segment too short to sample: deflated
        // with the text before it) in one block: three members, the noise stored.
        let text = text_like();
        let data = [&text[..], &noise(1 << 20, 7), &text[..], &noise(1 << 10, 9)].concat();
        let out = gzip_block(&data, 1).unwrap();
        assert_eq!(member_sizes(&out), [1 << 20, 1 << 20, (1 << 20) + (1 << 10)]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&out[..]), &mut back).unwrap();
        assert!(back == data, "the members decode to the block");
        // The stored member is the noise plus deflate's and gzip's framing: 5 bytes per stored block of
        // at most 65535 bytes, 18 per member. The text members are libdeflate's level 1, as a block of text alone.
        let first = gzip_block(&text, 1).unwrap();
        assert!(out.starts_with(&first), "the text run is deflated as it would be alone");
        let stored = &out[first.len()..first.len() + (1 << 20) + 17 * 5 + 18];
        assert_eq!(member_sizes(stored), [1 << 20], "stored member: 1 MiB + 17 × 5 + 18 bytes");
        // Never more than 5% above zlib level 1 (zlib-rs's, flate2) on the same block; the same bytes
        // at every level for the noise (the choice does not depend on the level).
        let mut zlib = GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        std::io::Write::write_all(&mut zlib, &data).unwrap();
        let zlib = zlib.finish().unwrap();
        assert!(out.len() * 100 <= zlib.len() * 105, "{} bytes against zlib 1's {}", out.len(), zlib.len());
        let nine = gzip_block(&data, 9).unwrap();
        assert!(nine.windows(stored.len()).any(|w| w == stored), "level 9 stores the same noise");
        // All noise: one stored member, framing only; the choice is a function of the bytes.
        let all = noise(GZIP_BLOCK, 3);
        let out = gzip_block(&all, 1).unwrap();
        assert_eq!(out.len(), GZIP_BLOCK + 65 * 5 + 18);
        assert_eq!(out, gzip_block(&all, 1).unwrap());
    }

    #[test]
    fn gzip_members_are_the_same_bytes_on_every_machine() {
        // The digests of libdeflate's members for fixed input, pinned: a CPU whose run-time dispatch
        // changed the output (or a libdeflate upgrade that does) fails here before it changes layer
        // digests. bench/compress.sh dispatch checks each CPU path forced, on 100 MiB of real files.
        let data = text_like();
        let mut sizes = Vec::new();
        for (level, want) in [
            (1, "sha256:23aae63d7e1a3f56fa6e2fe794360680e09ad2487ff614bcb7bfe9b930bd1b8f"),
            (6, "sha256:1fef15e80dc91f7c17315afc3d57570df09314fbd63f8a766233d520f2382487"),
            (9, "sha256:0b400304f44c3e976fbde4237b3a019a2a7d2fe5ca3755162a8bcb79158545e4"),
        ] {
            let member = gzip_block(&data, level).unwrap();
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&member[..]), &mut back).unwrap();
            assert!(back == data, "level {level} round-trips through zlib-rs (which checks the CRC-32)");
            assert_eq!(Digest::sha256_of(&member).to_string(), want, "level {level}");
            sizes.push(member.len());
        }
        assert!(sizes[0] > sizes[1] && sizes[1] >= sizes[2], "fast … small: {sizes:?}");
    }

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
        let a = write_layer(&t, 5, dir.path(), "a", Compression::default()).unwrap();
        let b = write_layer(&t, 5, dir.path(), "b", Compression::default()).unwrap();
        assert_eq!(a.blob.digest, b.blob.digest);
        assert_eq!(a.diff_id, b.diff_id);
        let c = write_layer(&t, 6, dir.path(), "c", Compression::default()).unwrap();
        assert_ne!(a.diff_id, c.diff_id);
        assert_eq!(diff_id(&t, 5).unwrap(), a.diff_id, "the pre-hash is the written tar's digest");
        assert_eq!(diff_id(&t, 6).unwrap(), c.diff_id);
        let bytes = std::fs::read(dir.path().join("a")).unwrap();
        assert_eq!(Digest::sha256_of(&bytes), a.blob.digest);
        let back = read_tar(&bytes, "x", None).unwrap().unwrap();
        assert!(matches!(back["x/app/link"].kind, Kind::Symlink(ref s) if s == "a.txt"));
        assert_eq!(back["x/app/a.txt"].mode, 0o644);
        assert!(read_tar(b"not a tar", "", None).unwrap().is_none());
    }

    #[test]
    fn zstd_layers_are_deterministic_and_decompress_to_the_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let t = sample();
        let z = Compression::parse("zstd", None).unwrap();
        assert_eq!(z, Compression::Zstd(3));
        let a = write_layer(&t, 5, dir.path(), "a", z).unwrap();
        let b = write_layer(&t, 5, dir.path(), "b", z).unwrap();
        assert_eq!(a.blob.digest, b.blob.digest);
        assert_eq!(a.blob.media_type, media::OCI_LAYER_ZSTD);
        let g = write_layer(&t, 5, dir.path(), "g", Compression::Gzip(9)).unwrap();
        assert_eq!(g.diff_id, a.diff_id, "same tar whatever the compression");
        assert_ne!(g.blob.digest, a.blob.digest);
        let bytes = std::fs::read(dir.path().join("a")).unwrap();
        let tar = zstd::decode_all(bytes.as_slice()).unwrap();
        assert_eq!(Digest::sha256_of(&tar), a.diff_id);
        assert!(read_tar(&bytes, "", None).unwrap().unwrap().contains_key("app/a.txt"));
    }

    #[test]
    fn add_reads_tars_compressed_every_way_docker_detects() {
        let dir = tempfile::tempdir().unwrap();
        write_layer(&sample(), 5, dir.path(), "plain", Compression::default()).unwrap();
        let tar = decompress(&std::fs::read(dir.path().join("plain")).unwrap()).unwrap().unwrap().into_owned();
        let mut bz = Vec::new();
        io::Write::write_all(&mut bzip2::write::BzEncoder::new(&mut bz, bzip2::Compression::best()), &tar).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut io::BufReader::new(tar.as_slice()), &mut xz).unwrap();
        let zst = zstd::encode_all(tar.as_slice(), 3).unwrap();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        for (name, bytes) in [("tar", &tar), ("bzip2", &bz), ("xz", &xz), ("zstd", &zst), ("gzip", &gz)] {
            assert_eq!(decompress(bytes).unwrap().unwrap().as_ref(), tar.as_slice(), "{name}");
            let t =
                read_tar(bytes, "opt", Some((7, 8))).unwrap().unwrap_or_else(|| panic!("{name}: not read as a tar"));
            assert_eq!(t["opt/app/a.txt"].kind, Kind::File(Content::Bytes(Arc::new(b"hi".to_vec()))), "{name}");
            assert_eq!((t["opt/app/a.txt"].uid, t["opt/app/a.txt"].gid), (7, 8));
        }
        // A corrupt stream behind a known magic, or compressed bytes that are not a tar: copied as is.
        assert!(read_tar(&xz[..xz.len() / 2], "", None).unwrap().is_none());
        assert!(read_tar(&zstd::encode_all(&b"just text"[..], 3).unwrap(), "", None).unwrap().is_none());
        assert!(read_tar(b"BZh not really", "", None).unwrap().is_none());
        assert!([&bz, &xz, &zst, &gz].iter().all(|b| is_compressed(b)) && !is_compressed(&tar));
    }

    #[test]
    fn compression_levels_are_checked() {
        assert_eq!(Compression::parse("gzip", None).unwrap(), Compression::Gzip(GZIP_LEVEL));
        assert_eq!(Compression::parse("gzip", Some(9)).unwrap().tag(), "gzip-9");
        assert!(Compression::parse("gzip", Some(10)).is_err());
        assert!(Compression::parse("gzip", Some(0)).is_err());
        assert_eq!(Compression::parse("zstd", Some(19)).unwrap().media_type(), media::OCI_LAYER_ZSTD);
        assert!(Compression::parse("zstd", Some(20)).is_err());
        assert!(Compression::parse("brotli", None).is_err());
    }

    #[test]
    fn add_archives_refuse_escapes_devices_and_writes_through_links() {
        use crate::fsutil::craft::{tar_of, E};
        let err = |entries: &[E<'_>]| read_tar(&tar_of(entries), "app", None).unwrap_err().to_string();
        assert!(err(&[E::File("../evil", "x")]).contains("climbs out"));
        assert!(err(&[E::File("a/../../evil", "x")]).contains("climbs out"));
        assert!(err(&[E::File("/etc/passwd", "x")]).contains("absolute path"));
        let e = err(&[E::Dir("a/"), E::Sym("a/up", "../../../etc")]);
        assert!(e.contains("\"a/up\"") && e.contains("outside the image root"), "{e}");
        assert!(err(&[E::Hard("h", "../../etc/shadow")]).contains("outside the archive"));
        assert!(err(&[E::Hard("h", "/etc/shadow")]).contains("outside the archive"));
        assert!(err(&[E::Hard("h", "not/there")]).contains("not a file earlier"));
        assert!(err(&[E::Dev("dev/null")]).contains("device node"));
        // A directory replaced by a symlink, then written through.
        let e = err(&[E::Dir("d/"), E::Sym("d", "/etc"), E::File("d/passwd", "x")]);
        assert!(e.contains("d/passwd") && e.contains("writing through"), "{e}");
        // What is fine stays fine: absolute symlinks (inside the image by definition), links within,
        // hard links to earlier files.
        let t = read_tar(
            &tar_of(&[
                E::Dir("bin/"),
                E::File("bin/busybox", "bb"),
                E::Sym("sh", "/bin/busybox"),
                E::Hard("bin/ls", "bin/busybox"),
            ]),
            "app",
            None,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(t["app/sh"].kind, Kind::Symlink(ref s) if s == "/bin/busybox"));
        assert_eq!(t["app/bin/ls"].kind, t["app/bin/busybox"].kind);
    }

    #[test]
    fn add_archive_decompression_bombs_are_refused() {
        // The same mechanism as the 1 GiB / 200:1 bounds, scaled down so the test stays fast: 4 MiB of
        // zeros in a tar, compressed by every format ADD reads, against a 1 MiB bound.
        let bounds = Expansion { max_bytes: 1 << 20, ratio: 200, floor: 64 << 10 };
        let mut h = tar::Header::new_ustar();
        h.set_path("zeros").unwrap();
        h.set_size(4 << 20);
        h.set_mode(0o644);
        h.set_cksum();
        let mut plain = h.as_bytes().to_vec();
        plain.resize(512 + (4 << 20) + 1024, 0);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &plain).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &plain[..], &mut xz).unwrap();
        for (name, bomb) in
            [("gzip", gz.finish().unwrap()), ("zstd", zstd::encode_all(&plain[..], 19).unwrap()), ("xz", xz)]
        {
            let e = read_tar_bounded(&bomb, "", None, bounds).unwrap_err().to_string();
            assert!(e.contains("decompression bomb"), "{name}: {e}");
        }
        // Under the bound the same archive reads.
        let roomy = Expansion { max_bytes: 8 << 20, ratio: 10_000, floor: 8 << 20 };
        assert!(read_tar_bounded(&zstd::encode_all(&plain[..], 3).unwrap(), "", None, roomy).unwrap().is_some());
    }
}
