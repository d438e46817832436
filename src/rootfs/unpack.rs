//! Applying layer tars to a directory (see the module documentation in `mod.rs`): path cleaning and
//! escape checks, whiteouts, the path filter, and the final pass that gives directories their
//! modes and mtimes once nothing more is written into them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::model::OciDescriptor;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Which image paths to materialize.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Cleaned patterns split in components (`*`, `?`, `[..]` work within one component); `None`
    /// means everything.
    patterns: Option<Vec<Vec<String>>>,
}

/// How an entry relates to a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// The entry is a requested path or below one.
    Yes,
    /// A parent directory on the way to a requested path (materialized when a directory or a
    /// symlink, so requested paths behind symlinks can be found).
    Ancestor,
    No,
}

impl Filter {
    /// Everything.
    pub fn all() -> Filter {
        Filter { patterns: None }
    }

    /// Only `paths` (image paths, with or without a leading `/`; globs allowed), what lies below
    /// them, and their parent directories.
    pub fn paths<S: AsRef<str>>(paths: impl IntoIterator<Item = S>) -> Filter {
        let mut f = Filter { patterns: Some(Vec::new()) };
        for p in paths {
            f.add(p.as_ref());
        }
        f
    }

    /// Adds a path to a restricted filter (a filter for everything stays so).
    pub fn add(&mut self, path: &str) {
        if let Some(p) = &mut self.patterns {
            p.push(clean(path).split('/').filter(|c| !c.is_empty()).map(String::from).collect());
        }
    }

    pub fn is_all(&self) -> bool {
        self.patterns.is_none()
    }

    fn want(&self, path: &str) -> Want {
        let Some(patterns) = &self.patterns else { return Want::Yes };
        let parts: Vec<&str> = path.split('/').collect();
        let mut best = Want::No;
        for pat in patterns {
            let n = pat.len().min(parts.len());
            if !(0..n).all(|i| crate::paths::glob_match(&pat[i], parts[i])) {
                continue;
            }
            if parts.len() >= pat.len() {
                return Want::Yes;
            }
            best = Want::Ancestor;
        }
        best
    }
}

/// How to unpack.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub filter: Filter,
    /// Give entries the owners the layers name (needs root); otherwise they are only reported.
    pub chown: bool,
    /// Leave directories writable by their owner (their modes are in the report): for trees a
    /// program reads and later deletes, such as the build's cache, where a read-only directory
    /// would stop `rm -rf` without root.
    pub writable_dirs: bool,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    Dir,
    /// A regular file (hard links included: they share the target's bytes on disk).
    File {
        size: u64,
    },
    Symlink(String),
}

/// One materialized entry as the layers describe it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// The outcome of [`apply_layers`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Layers applied.
    pub layers: usize,
    /// Every entry on disk, by image path (no leading `/`): the directory's final tree.
    pub entries: BTreeMap<String, Entry>,
    /// Hard-link targets a restricted filter left out, so links to them were skipped: apply again
    /// with these added to the filter.
    pub wanted: BTreeSet<String>,
    /// Entries left out on purpose (FIFOs), as "layer N: path (why)".
    pub skipped: Vec<String>,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Applies `layers` in order to `dest` (created if missing; it must be empty), keeping only what
/// `opts.filter` asks for. Every error names the layer (its position and digest) and the entry.
pub fn apply_layers<I, R>(layers: I, dest: &Path, opts: &Options) -> Result<Report>
where
    I: IntoIterator<Item = (OciDescriptor, R)>,
    R: Read,
{
    let ctx = || format!("unpacking into {}", dest.display());
    fs::create_dir_all(dest).map_err(|e| Error::io(ctx(), e))?;
    if fs::read_dir(dest).map_err(|e| Error::io(ctx(), e))?.next().is_some() {
        return Err(Error::usage(format!("{}: the directory is not empty", ctx()))
            .with_hint("give a new or empty directory: layers are applied to an empty tree"));
    }
    let root = dest.canonicalize().map_err(|e| Error::io(ctx(), e))?;
    let mut u = Unpacker { root, opts, report: Report::default() };
    for (i, (desc, reader)) in layers.into_iter().enumerate() {
        let name = format!("layer {} ({})", i + 1, desc.digest);
        let compressed = u64::try_from(desc.size).unwrap_or(0);
        decoder_or_err(reader)
            .and_then(|d| u.layer(&name, crate::fsutil::ExpansionGuard::new(d, compressed, Expansion::LAYER)))
            .map_err(|e| e.context(format!("{}: {name}", ctx())))?;
        u.report.layers += 1;
    }
    u.finish().map_err(|e| e.context(ctx()))?;
    Ok(u.report)
}

/// Follows symlinks in `path` through `entries` (a [`Report`]'s) the way the kernel would inside
/// the root: absolute targets start at the root, `..` stops there. Returns the path with every
/// symlink resolved (components the entries lack are taken as they are, so the answer can name a
/// path a filtered unpack left out), or `None` when it loops or goes through a regular file.
pub fn resolve(entries: &BTreeMap<String, Entry>, path: &str) -> Option<String> {
    let mut todo: Vec<String> = clean(path).split('/').filter(|c| !c.is_empty()).rev().map(String::from).collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        done.push(part);
        let here = done.join("/");
        match entries.get(&here).map(|e| &e.kind) {
            Some(EntryKind::Symlink(target)) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(target.split('/').filter(|c| !c.is_empty() && *c != ".").rev().map(String::from));
            }
            Some(EntryKind::File { .. }) if !todo.is_empty() => return None,
            _ => {}
        }
    }
    Some(done.join("/"))
}

use crate::fsutil::{clean_checked, Expansion};

/// What one layer says about a path: its bytes, or that it deleted it (a whiteout of it or of a
/// parent, or an opaque parent), or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    File(Vec<u8>),
    Gone,
}

/// Scans one layer blob (streamed) for the regular files `paths` (small ones: config files such as
/// `/etc/passwd`, at most 16 MiB each). Reading layers top-down and stopping at the first answer
/// finds a file without applying the image.
pub fn lookup<R: Read>(reader: R, paths: &[&str]) -> Result<BTreeMap<String, Lookup>> {
    const MAX: u64 = 16 << 20;
    let read_err = |e: io::Error| Error::other(format!("reading the layer: {e}"));
    let wanted: Vec<String> = paths.iter().map(|p| clean(p)).collect();
    let mut found = BTreeMap::new();
    let mut archive = tar::Archive::new(decoder(reader).map_err(read_err)?);
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).to_string();
        let Some(path) = clean_checked(&raw) else { continue };
        let base = path.rsplit('/').next().unwrap_or_default();
        let dir = parent_of(&path);
        for w in &wanted {
            let under = |d: &str| d.is_empty() || w.starts_with(&format!("{d}/"));
            let hit = if base == OPAQUE {
                under(dir).then_some(Lookup::Gone)
            } else if let Some(hidden) = base.strip_prefix(WHITEOUT) {
                let gone = crate::paths::join(dir, hidden);
                (*w == gone || w.starts_with(&format!("{gone}/"))).then_some(Lookup::Gone)
            } else if path == *w && entry.header().entry_type().is_file() {
                let mut buf = Vec::new();
                (&mut entry).take(MAX).read_to_end(&mut buf).map_err(read_err)?;
                Some(Lookup::File(buf))
            } else if path == *w {
                Some(Lookup::Gone) // not a regular file (a directory, a link): not readable as one
            } else {
                None
            };
            if let Some(h) = hit {
                // A file written in this layer wins over this layer's own whiteouts.
                if !matches!(found.get(w), Some(Lookup::File(_))) {
                    found.insert(w.clone(), h);
                }
            }
        }
    }
    Ok(found)
}

/// What one layer holds, from its tar headers alone: every entry's kind, mode and owner, what it
/// deletes from the layers below (whiteouts, opaque directories), and the bytes of the few small
/// account files `--chown` names are looked up in. Kept in the build cache by the layer's digest (a
/// base layer is read once ever); [`Listing::find`] answers what the layer says of a path.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Listing {
    /// Entries by image path (no leading `/`): 'd' directory, 'f' file (hard links too), 'l' symlink,
    /// 'o' anything else; mode bits, uid, gid.
    pub entries: BTreeMap<String, (char, u32, u64, u64)>,
    /// Paths this layer deletes from the layers below (`.wh.<name>`).
    pub whiteouts: BTreeSet<String>,
    /// Directories this layer empties of what the layers below put there (`.wh..wh..opq`).
    pub opaque: BTreeSet<String>,
    /// `etc/passwd` and `etc/group` when this layer has them as regular files (at most 1 MiB each).
    pub accounts: BTreeMap<String, Vec<u8>>,
    /// The package databases and `os-release` files `--sbom` reads ([`crate::sbom::distro::is_database`])
    /// this layer has as regular files (at most [`crate::sbom::files::MAX_DOC`] each, base64 in the
    /// cache). `None`: a listing cached before hoist kept them — read the layer again when they are needed.
    /// The cache's key is renamed whenever the set of kept files grows (`databases` had no rpm Berkeley
    /// DB or ndb files), so that listings cached with a smaller set are read again, not trusted.
    #[serde(default, rename = "databases_v2", with = "b64_files")]
    pub databases: Option<BTreeMap<String, Vec<u8>>>,
}

/// The kept files' bytes as base64 strings (a JSON array of numbers would be 3-4 times larger).
mod b64_files {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: Serializer>(v: &Option<BTreeMap<String, Vec<u8>>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(|m| m.iter().map(|(k, b)| (k.clone(), B64.encode(b))).collect::<BTreeMap<_, _>>()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, Vec<u8>>>, D::Error> {
        let m = Option::<BTreeMap<String, String>>::deserialize(d)?;
        m.map(|m| m.into_iter().map(|(k, v)| B64.decode(v).map(|b| (k, b)).map_err(serde::de::Error::custom)).collect())
            .transpose()
    }
}

/// What a visitor of [`list_with`] is given for each regular file of a layer: its path (no leading
/// `/`), mode bits, size, and its bytes as they stream past.
pub type Visit<'a> = &'a mut dyn FnMut(&str, u32, u64, &mut dyn Read) -> Result<()>;

/// The kept package databases ([`Listing::databases`]) of an image whose listings are given top
/// layer first, as the image shows them: a file a higher layer replaces, deletes or hides under an
/// opaque directory does not count. `None` when a listing lacks them (cached by an older hoist).
pub fn visible_databases(top_down: &[&Listing]) -> Option<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for (i, l) in top_down.iter().enumerate() {
        for (path, bytes) in l.databases.as_ref()? {
            if !out.contains_key(path) && top_down[..i].iter().all(|upper| upper.find(path).is_none()) {
                out.insert(path.clone(), bytes.clone());
            }
        }
    }
    Some(out)
}

/// What one layer says of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The layer has it (kind, mode, uid, gid); a directory may also be implied by entries below it.
    Entry(char, u32, u64, u64),
    /// The layer deletes it (a whiteout of it or of a parent, or an opaque parent).
    Gone,
}

/// The account files [`list`] keeps the bytes of.
pub const ACCOUNT_FILES: [&str; 2] = ["etc/passwd", "etc/group"];

impl Listing {
    /// What this layer says of `path`, `None` when it says nothing (the answer is below).
    pub fn find(&self, path: &str) -> Option<Found> {
        if let Some(&(k, m, u, g)) = self.entries.get(path) {
            return Some(Found::Entry(k, m, u, g));
        }
        // A directory the layer's own entries imply (a tar may omit a parent's header; extraction makes
        // it 0755 root, as containerd does).
        let prefix = format!("{path}/");
        if self.entries.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix)) {
            return Some(Found::Entry('d', 0o755, 0, 0));
        }
        let mut ancestors = Vec::new();
        let mut p = path;
        while !p.is_empty() {
            ancestors.push(p);
            p = parent_of(p);
        }
        if ancestors.iter().any(|a| self.whiteouts.contains(*a)) {
            return Some(Found::Gone);
        }
        if ancestors.iter().skip(1).chain(std::iter::once(&"")).any(|a| self.opaque.contains(*a)) {
            return Some(Found::Gone);
        }
        None
    }
}

/// Reads one layer blob (streamed) into its [`Listing`]: headers only, file contents skipped (but
/// for the account files and package databases).
pub fn list<R: Read>(reader: R) -> Result<Listing> {
    list_with(reader, &mut |_, _, _, _| Ok(()))
}

/// [`list`], also handing every regular file to `visit` as it streams past (`hoist sbom` runs the
/// file catalogers so: each layer read once).
pub fn list_with<R: Read>(reader: R, visit: Visit<'_>) -> Result<Listing> {
    const MAX_ACCOUNTS: u64 = 1 << 20;
    let read_err = |e: io::Error| Error::other(format!("reading the layer: {e}"));
    let mut out = Listing { databases: Some(BTreeMap::new()), ..Listing::default() };
    let mut archive = tar::Archive::new(decoder(reader).map_err(read_err)?);
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).to_string();
        let Some(path) = clean_checked(&raw) else { continue };
        if path.is_empty() {
            continue;
        }
        let base = path.rsplit('/').next().unwrap_or_default();
        let dir = parent_of(&path).to_string();
        if base == OPAQUE {
            out.opaque.insert(dir);
            continue;
        }
        if let Some(hidden) = base.strip_prefix(WHITEOUT) {
            out.whiteouts.insert(crate::paths::join(&dir, hidden));
            continue;
        }
        let h = entry.header();
        let t = h.entry_type();
        let kind = if t.is_dir() {
            'd'
        } else if t.is_file() || t.is_hard_link() || t == tar::EntryType::Continuous {
            'f'
        } else if t.is_symlink() {
            'l'
        } else {
            'o'
        };
        let (mode, uid, gid) = (h.mode().unwrap_or(0o755) & 0o7777, h.uid().unwrap_or(0), h.gid().unwrap_or(0));
        let size = h.size().unwrap_or(0);
        if t.is_file() && ACCOUNT_FILES.contains(&path.as_str()) {
            let mut buf = Vec::new();
            (&mut entry).take(MAX_ACCOUNTS).read_to_end(&mut buf).map_err(read_err)?;
            visit(&path, mode, size, &mut buf.as_slice())?;
            out.accounts.insert(path.clone(), buf);
        } else if t.is_file() && crate::sbom::distro::is_database(&path) {
            let mut buf = Vec::new();
            if size <= crate::sbom::files::MAX_DOC {
                entry.read_to_end(&mut buf).map_err(read_err)?;
                visit(&path, mode, size, &mut buf.as_slice())?;
                out.databases.get_or_insert_with(BTreeMap::new).insert(path.clone(), buf);
            }
        } else if t.is_file() {
            visit(&path, mode, size, &mut entry)?;
        }
        out.entries.insert(path, (kind, mode, uid, gid));
    }
    Ok(out)
}

/// [`clean_checked`], clamping `..` at the root (for filter patterns, which are never written).
fn clean(path: &str) -> String {
    crate::paths::clean(path)
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

struct Unpacker<'a> {
    root: PathBuf,
    opts: &'a Options,
    report: Report,
}

fn decoder_or_err<'r, R: Read + 'r>(reader: R) -> Result<Box<dyn Read + 'r>> {
    decoder(reader).map_err(|e| Error::other(format!("reading the layer: {e}")))
}

/// The decompressing reader for a layer blob: gzip and zstd by magic bytes, else a plain tar.
fn decoder<'r, R: Read + 'r>(reader: R) -> io::Result<Box<dyn Read + 'r>> {
    let mut buf = BufReader::with_capacity(64 << 10, reader);
    let head = buf.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buf))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buf)?)
    } else {
        Box::new(buf)
    })
}

impl Unpacker<'_> {
    fn disk(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }

    /// Applies one decompressed layer (bounded by [`Expansion::LAYER`]: a decompression bomb stops
    /// with an error, not a full disk).
    fn layer<R: Read>(&mut self, name: &str, reader: R) -> Result<()> {
        let read_err = |e: io::Error| Error::other(format!("reading the layer: {e}"));
        let mut archive = tar::Archive::new(reader);
        // Paths this layer wrote: its own whiteouts never delete them.
        let mut mine: HashSet<String> = HashSet::new();
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).to_string();
            self.entry(&mut entry, &raw, &mut mine, name).map_err(|e| e.context(format!("entry {raw:?}")))?;
        }
        Ok(())
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        raw: &str,
        mine: &mut HashSet<String>,
        layer: &str,
    ) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            return Ok(());
        }
        let path =
            clean_checked(raw).ok_or_else(|| Error::other("the path climbs out of the root with '..'; refused"))?;
        if path.is_empty() {
            return Ok(()); // the root itself
        }
        let base = path.rsplit('/').next().unwrap_or_default();
        if base == OPAQUE {
            let dir = parent_of(&path).to_string();
            if !self.parents_exist(&crate::paths::join(&dir, "x"))? {
                return Ok(());
            }
            return self.opaque(&dir, mine);
        }
        if let Some(hidden) = base.strip_prefix(WHITEOUT) {
            if hidden.starts_with(".wh.") || hidden.is_empty() {
                return Ok(()); // aufs bookkeeping (.wh..wh.plnk, …)
            }
            let target = crate::paths::join(parent_of(&path), hidden);
            if !mine.contains(&target) && self.parents_exist(&target)? {
                self.remove(&target)?;
            }
            return Ok(());
        }
        let want = self.opts.filter.want(&path);
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0);
        let entry_kind = match kind {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => {
                let target = link_name(entry)?;
                let resolved = if target.starts_with('/') {
                    Some(String::new())
                } else {
                    clean_checked(&format!("{}/{target}", parent_of(&path)))
                };
                if resolved.is_none() {
                    return Err(Error::other(format!(
                        "a symlink to {target:?}, which points outside the image root; refused"
                    )));
                }
                EntryKind::Symlink(target)
            }
            tar::EntryType::Link => {
                let target = link_name(entry)?;
                let target = clean_checked(&target).filter(|t| !t.is_empty()).ok_or_else(|| {
                    Error::other(format!("a hard link to {target:?}, which is outside the image tree; refused"))
                })?;
                if want == Want::No {
                    return Ok(());
                }
                return self.hard_link(&path, &target, mine);
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(Error::other("a device node; hoist does not create device nodes"))
            }
            tar::EntryType::Fifo => {
                self.report.skipped.push(format!("{layer}: {path} (a FIFO)"));
                return Ok(());
            }
            t if t.is_file() || t == tar::EntryType::GNUSparse => EntryKind::File { size: header.size().unwrap_or(0) },
            other => {
                self.report.skipped.push(format!("{layer}: {path} (tar entry type {other:?})"));
                return Ok(());
            }
        };
        match (want, &entry_kind) {
            (Want::Yes, _) | (Want::Ancestor, EntryKind::Dir | EntryKind::Symlink(_)) => {}
            _ => return Ok(()),
        }
        self.check_parents(&path)?;
        let disk = self.disk(&path);
        match fs::symlink_metadata(&disk) {
            Ok(m) if m.is_dir() && entry_kind == EntryKind::Dir => {}
            Ok(_) => self.remove(&path)?,
            Err(_) => {}
        }
        let io_err = |e: io::Error| Error::io(format!("writing {}", disk.display()), e);
        match &entry_kind {
            EntryKind::Dir => {
                if !disk.is_dir() {
                    fs::create_dir(&disk).map_err(io_err)?;
                }
                // Writable while unpacking; the final mode is set by finish().
                set_mode(&disk, 0o700 | (mode & 0o777)).map_err(io_err)?;
            }
            EntryKind::File { .. } => {
                let mut f = fs::File::create_new(&disk).map_err(io_err)?;
                let n = io::copy(entry, &mut f).map_err(|e| Error::other(format!("reading the layer: {e}")))?;
                self.report.bytes += n;
                let _ = f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime));
                drop(f);
                set_mode(&disk, mode).map_err(io_err)?;
            }
            EntryKind::Symlink(target) => make_symlink(target, &disk).map_err(io_err)?,
        }
        if self.opts.chown {
            lchown(&disk, uid, gid).map_err(|e| Error::io(format!("setting the owner of {}", disk.display()), e))?;
        }
        self.report.entries.insert(path.clone(), Entry { kind: entry_kind, mode, uid, gid, mtime });
        mine.insert(path);
        Ok(())
    }

    /// Refuses `path` when one of its parents on disk is a symlink (writing there would write
    /// through it, possibly out of the root) or a file; creates missing parents (0755, root).
    fn check_parents(&mut self, path: &str) -> Result<()> {
        self.walk_parents(path, true).map(|_| ())
    }

    /// Like [`Self::check_parents`] but creating nothing: false when a parent is missing.
    fn parents_exist(&mut self, path: &str) -> Result<bool> {
        self.walk_parents(path, false)
    }

    fn walk_parents(&mut self, path: &str, create: bool) -> Result<bool> {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            acc = crate::paths::join(&acc, part);
            let disk = self.disk(&acc);
            match fs::symlink_metadata(&disk) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::other(format!("its parent /{acc} is a symlink; writing through it is refused"))
                        .with_hint("a layer replaced a directory with a symlink and then wrote below it"))
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(Error::other(format!("its parent /{acc} is not a directory"))),
                Err(_) if !create => return Ok(false),
                Err(_) => {
                    fs::create_dir(&disk).map_err(|e| Error::io(format!("creating {}", disk.display()), e))?;
                    self.report
                        .entries
                        .insert(acc.clone(), Entry { kind: EntryKind::Dir, mode: 0o755, uid: 0, gid: 0, mtime: 0 });
                }
            }
        }
        Ok(true)
    }

    /// Deletes `path` (recursively) from disk and the report, if it is there.
    fn remove(&mut self, path: &str) -> Result<()> {
        let disk = self.disk(path);
        let Ok(m) = fs::symlink_metadata(&disk) else { return Ok(()) };
        let r = if m.is_dir() { fs::remove_dir_all(&disk) } else { fs::remove_file(&disk) };
        r.map_err(|e| Error::io(format!("removing {}", disk.display()), e))?;
        self.report.entries.remove(path);
        for k in self.below(&format!("{path}/")) {
            self.report.entries.remove(&k);
        }
        Ok(())
    }

    /// The reported paths starting with `prefix`, shallowest first.
    fn below(&self, prefix: &str) -> Vec<String> {
        let range = self.report.entries.range(prefix.to_string()..);
        range.take_while(|(k, _)| k.starts_with(prefix)).map(|(k, _)| k.clone()).collect()
    }

    /// An opaque whiteout: everything below `dir` that lower layers made goes; what this layer
    /// wrote stays.
    fn opaque(&mut self, dir: &str, mine: &HashSet<String>) -> Result<()> {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        // Shallowest first, so a removed directory takes its whole subtree with it.
        for k in self.below(&prefix) {
            if !mine.contains(&k) && self.report.entries.contains_key(&k) {
                self.remove(&k)?;
            }
        }
        Ok(())
    }

    fn hard_link(&mut self, path: &str, target: &str, mine: &mut HashSet<String>) -> Result<()> {
        let Some(t) = self.report.entries.get(target).cloned() else {
            if self.opts.filter.is_all() {
                return Err(Error::other(format!("a hard link to /{target}, which is not in the tree; refused")));
            }
            self.report.wanted.insert(target.to_string());
            return Ok(());
        };
        if t.kind == EntryKind::Dir {
            return Err(Error::other(format!("a hard link to the directory /{target}; refused")));
        }
        if !self.parents_exist(target)? {
            return Err(Error::other(format!("a hard link to /{target}, which is not in the tree; refused")));
        }
        self.check_parents(path)?;
        self.remove(path)?;
        let (from, to) = (self.disk(target), self.disk(path));
        fs::hard_link(&from, &to)
            .map_err(|e| Error::io(format!("linking {} to {}", to.display(), from.display()), e))?;
        self.report.entries.insert(path.to_string(), t);
        mine.insert(path.to_string());
        Ok(())
    }

    /// Gives directories their modes and mtimes, deepest first (a read-only directory is only
    /// made so once nothing more is written below it).
    fn finish(&mut self) -> Result<()> {
        for (path, e) in self.report.entries.iter().rev() {
            if e.kind != EntryKind::Dir {
                continue;
            }
            let disk = self.disk(path);
            if let Ok(d) = fs::File::open(&disk) {
                let _ = d.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(e.mtime));
            }
            let mode = if self.opts.writable_dirs { e.mode | 0o700 } else { e.mode };
            set_mode(&disk, mode).map_err(|err| Error::io(format!("setting the mode of {}", disk.display()), err))?;
        }
        Ok(())
    }
}

fn link_name<R: Read>(entry: &tar::Entry<R>) -> Result<String> {
    match entry.link_name_bytes() {
        Some(b) if !b.is_empty() => Ok(String::from_utf8_lossy(&b).to_string()),
        _ => Err(Error::other("a link without a target")),
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn make_symlink(target: &str, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(not(unix))]
fn make_symlink(_: &str, _: &Path) -> io::Result<()> {
    Err(io::Error::other("symlinks need a Unix system"))
}

#[cfg(unix)]
fn lchown(path: &Path, uid: u64, gid: u64) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid as u32), Some(gid as u32))
}

#[cfg(not(unix))]
fn lchown(_: &Path, _: u64, _: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;

    use crate::fsutil::craft::{tar_of, E};

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn desc(i: usize) -> OciDescriptor {
        OciDescriptor { digest: format!("sha256:{i:064}"), ..Default::default() }
    }

    fn apply(layers: &[Vec<u8>], filter: Filter) -> (tempfile::TempDir, Result<Report>) {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("root");
        let opts = Options { filter, ..Default::default() };
        let r = apply_layers(layers.iter().enumerate().map(|(i, l)| (desc(i + 1), l.as_slice())), &dest, &opts);
        (dir, r)
    }

    fn read(dir: &tempfile::TempDir, p: &str) -> Option<String> {
        fs::read_to_string(dir.path().join("root").join(p)).ok()
    }

    fn exists(dir: &tempfile::TempDir, p: &str) -> bool {
        fs::symlink_metadata(dir.path().join("root").join(p)).is_ok()
    }

    #[test]
    fn layers_apply_in_order_any_compression() {
        let l1 = tar_of(&[E::Dir("etc/"), E::File("etc/a", "one"), E::FileMode("etc/ro", "x", 0o4555, 7)]);
        let l2 = tar_of(&[E::File("etc/a", "two"), E::Sym("etc/link", "a"), E::Hard("etc/hard", "etc/a")]);
        let l3 = zstd::encode_all(tar_of(&[E::Dir("./var/"), E::File("/var/abs", "rooted")]).as_slice(), 3).unwrap();
        let (dir, r) = apply(&[gz(&l1), l2, l3], Filter::all());
        let r = r.unwrap();
        assert_eq!(r.layers, 3);
        assert_eq!(read(&dir, "etc/a").as_deref(), Some("two"));
        assert_eq!(read(&dir, "etc/hard").as_deref(), Some("two"));
        assert_eq!(read(&dir, "var/abs").as_deref(), Some("rooted"));
        assert_eq!(fs::read_link(dir.path().join("root/etc/link")).unwrap(), Path::new("a"));
        let ro = &r.entries["etc/ro"];
        assert_eq!((ro.mode, ro.uid, ro.gid), (0o4555, 7, 8));
        use std::os::unix::fs::PermissionsExt;
        let m = fs::metadata(dir.path().join("root/etc/ro")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o4555);
        assert_eq!(r.entries["etc/link"].kind, EntryKind::Symlink("a".into()));
        assert!(matches!(r.entries["etc/hard"].kind, EntryKind::File { size: 3 }));
        assert_eq!(resolve(&r.entries, "/etc/link").as_deref(), Some("etc/a"));
    }

    #[test]
    fn whiteouts_delete_lower_entries_only() {
        let l1 =
            tar_of(&[E::Dir("d/"), E::File("d/x", "x"), E::Dir("d/sub/"), E::File("d/sub/y", "y"), E::File("f", "f")]);
        // Deleting a file and a whole directory; a whiteout in the same layer as a new entry of the
        // same name keeps the new one.
        let l2 = tar_of(&[
            E::File("d/.wh.x", ""),
            E::File(".wh.f", ""),
            E::File("d/.wh.sub", ""),
            E::File("n", "new"),
            E::File(".wh.n", ""),
        ]);
        let (dir, r) = apply(&[l1, l2], Filter::all());
        let r = r.unwrap();
        assert!(!exists(&dir, "d/x") && !exists(&dir, "f") && !exists(&dir, "d/sub"));
        assert!(!r.entries.contains_key("d/sub/y") && !r.entries.contains_key("d/x"));
        assert!(exists(&dir, "d"));
        assert_eq!(read(&dir, "n").as_deref(), Some("new"));
        assert!(!exists(&dir, "d/.wh.x"), "whiteout markers are never written");
    }

    #[test]
    fn opaque_directories_hide_lower_content_but_keep_their_own() {
        let l1 = tar_of(&[
            E::Dir("o/"),
            E::File("o/old", "1"),
            E::Dir("o/deep/"),
            E::File("o/deep/old2", "2"),
            E::File("keep", "k"),
        ]);
        // The marker comes after one of the layer's own entries and before another: both stay.
        let l2 =
            tar_of(&[E::Dir("o/"), E::File("o/new1", "n1"), E::File("o/.wh..wh..opq", ""), E::File("o/new2", "n2")]);
        let (dir, r) = apply(&[l1, l2], Filter::all());
        r.unwrap();
        assert!(!exists(&dir, "o/old") && !exists(&dir, "o/deep"));
        assert_eq!(read(&dir, "o/new1").as_deref(), Some("n1"));
        assert_eq!(read(&dir, "o/new2").as_deref(), Some("n2"));
        assert_eq!(read(&dir, "keep").as_deref(), Some("k"));
        // Opaque at a level where a lower directory is replaced by one of this layer: its lower
        // children still go.
        let l2 = tar_of(&[E::Dir("o/"), E::File("o/.wh..wh..opq", ""), E::Dir("o/deep/"), E::File("o/deep/n", "n")]);
        let l1 = tar_of(&[E::Dir("o/"), E::Dir("o/deep/"), E::File("o/deep/old2", "2")]);
        let (dir, r) = apply(&[l1, l2], Filter::all());
        r.unwrap();
        assert!(!exists(&dir, "o/deep/old2"));
        assert_eq!(read(&dir, "o/deep/n").as_deref(), Some("n"));
    }

    #[test]
    fn listings_say_what_a_layer_has_deletes_or_implies() {
        let l = tar_of(&[
            E::Dir("etc/"),
            E::File("etc/passwd", "root:x:0:0::/:\n"),
            E::FileMode("etc/ro", "x", 0o4555, 7),
            E::File("usr/lib/implied/f", "f"),
            E::File("gone/.wh.old", ""),
            E::File("o/.wh..wh..opq", ""),
            E::File("o/new", "n"),
        ]);
        let listing = list(gz(&l).as_slice()).unwrap();
        assert_eq!(listing.accounts.get("etc/passwd").map(Vec::as_slice), Some(&b"root:x:0:0::/:\n"[..]));
        assert!(matches!(listing.find("etc/ro"), Some(Found::Entry('f', 0o4555, 7, _))));
        assert!(matches!(listing.find("etc"), Some(Found::Entry('d', ..))));
        assert_eq!(listing.find("usr/lib/implied"), Some(Found::Entry('d', 0o755, 0, 0)), "a parent without a header");
        assert_eq!(listing.find("gone/old"), Some(Found::Gone));
        assert_eq!(listing.find("gone/old/deeper"), Some(Found::Gone));
        assert_eq!(listing.find("o/lower"), Some(Found::Gone), "hidden by the opaque directory");
        assert!(matches!(listing.find("o/new"), Some(Found::Entry('f', ..))));
        assert_eq!(listing.find("elsewhere"), None, "nothing said: the answer is below");
        let json = serde_json::to_vec(&listing).unwrap();
        assert_eq!(serde_json::from_slice::<Listing>(&json).unwrap(), listing);
    }

    #[test]
    fn listings_keep_package_databases_and_the_image_shows_the_top_ones() {
        let lower = list(
            gz(&tar_of(&[
                E::File("var/lib/dpkg/status.d/a", "Package: a\n"),
                E::File("var/lib/dpkg/status.d/b", "Package: b\n"),
                E::File("lib/apk/db/installed", "P:old\n"),
                E::File("usr/bin/tool", "not kept"),
            ]))
            .as_slice(),
        )
        .unwrap();
        let upper = list(
            gz(&tar_of(&[E::File("var/lib/dpkg/status.d/.wh.a", ""), E::File("lib/apk/db/installed", "P:new\n")]))
                .as_slice(),
        )
        .unwrap();
        let kept = lower.databases.as_ref().unwrap();
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            ["lib/apk/db/installed", "var/lib/dpkg/status.d/a", "var/lib/dpkg/status.d/b"]
        );
        let shown = visible_databases(&[&upper, &lower]).unwrap();
        assert_eq!(shown.get("lib/apk/db/installed").map(Vec::as_slice), Some(&b"P:new\n"[..]), "the upper layer's");
        assert!(!shown.contains_key("var/lib/dpkg/status.d/a"), "deleted by the whiteout");
        assert!(shown.contains_key("var/lib/dpkg/status.d/b"));
        // The cache round trip (base64), and a listing cached before databases were kept: `None`.
        let json = serde_json::to_vec(&lower).unwrap();
        assert_eq!(serde_json::from_slice::<Listing>(&json).unwrap(), lower);
        let old: Listing = serde_json::from_str(r#"{"entries":{},"whiteouts":[],"opaque":[],"accounts":{}}"#).unwrap();
        assert_eq!(old.databases, None);
        assert_eq!(visible_databases(&[&upper, &old]), None, "an old listing must be read again");
        // One cached with the first set of kept files (no rpm Berkeley DB nor ndb): read again too.
        let first: Listing = serde_json::from_str(
            r#"{"entries":{},"whiteouts":[],"opaque":[],"accounts":{},"databases":{"etc/os-release":"SUQ9cmhlbAo="}}"#,
        )
        .unwrap();
        assert_eq!(first.databases, None);
    }

    #[test]
    fn a_type_change_replaces_the_lower_entry() {
        let l1 = tar_of(&[E::Dir("x/"), E::File("x/in", "1"), E::File("y", "file")]);
        let l2 = tar_of(&[E::File("x", "now a file"), E::Dir("y/"), E::File("y/in", "2")]);
        let (dir, r) = apply(&[l1, l2], Filter::all());
        let r = r.unwrap();
        assert_eq!(read(&dir, "x").as_deref(), Some("now a file"));
        assert!(!r.entries.contains_key("x/in"));
        assert_eq!(read(&dir, "y/in").as_deref(), Some("2"));
    }

    fn err_of(layers: &[Vec<u8>]) -> String {
        let (_d, r) = apply(layers, Filter::all());
        r.unwrap_err().to_string()
    }

    #[test]
    fn escapes_devices_and_outside_links_are_refused_naming_layer_and_entry() {
        let e = err_of(&[tar_of(&[E::File("../evil", "x")])]);
        assert!(e.contains("layer 1 (sha256:") && e.contains("\"../evil\"") && e.contains("climbs out"), "{e}");
        let e = err_of(&[tar_of(&[E::File("a/../../evil", "x")])]);
        assert!(e.contains("climbs out"), "{e}");
        let e = err_of(&[tar_of(&[E::Dir("a/")]), tar_of(&[E::Sym("a/up", "../../etc/passwd")])]);
        assert!(e.contains("layer 2") && e.contains("a/up") && e.contains("outside the image root"), "{e}");
        let e = err_of(&[tar_of(&[E::Hard("h", "../../etc/shadow")])]);
        assert!(e.contains("hard link") && e.contains("outside the image tree"), "{e}");
        let e = err_of(&[tar_of(&[E::Hard("h", "not/there")])]);
        assert!(e.contains("not in the tree"), "{e}");
        let e = err_of(&[tar_of(&[E::Dev("dev/null")])]);
        assert!(e.contains("device node") && e.contains("dev/null"), "{e}");
        // A directory replaced by a symlink (to the host's /tmp), then written below: refused, and
        // nothing lands outside.
        let e = err_of(&[tar_of(&[E::Dir("d/")]), tar_of(&[E::Sym("d", "/tmp"), E::File("d/pwned", "x")])]);
        assert!(e.contains("layer 2") && e.contains("symlink") && e.contains("d/pwned"), "{e}");
        assert!(!Path::new("/tmp/pwned").exists());
        // The same through a whiteout target and an opaque marker.
        let e = err_of(&[tar_of(&[E::Sym("d", "/tmp")]), tar_of(&[E::File("d/.wh.x", "")])]);
        assert!(e.contains("symlink"), "{e}");
        // Absolute symlinks stay inside the root by definition and are kept.
        let (_d, r) = apply(&[tar_of(&[E::Sym("sh", "/bin/busybox")])], Filter::all());
        assert_eq!(r.unwrap().entries["sh"].kind, EntryKind::Symlink("/bin/busybox".into()));
    }

    #[test]
    fn fifos_are_skipped_and_reported() {
        let (dir, r) = apply(&[tar_of(&[E::Fifo("p"), E::File("f", "1")])], Filter::all());
        let r = r.unwrap();
        assert!(!exists(&dir, "p") && exists(&dir, "f"));
        assert!(r.skipped[0].contains("p (a FIFO)"));
    }

    #[test]
    fn a_filter_materializes_only_requested_paths_and_their_parents() {
        let l1 = tar_of(&[
            E::Dir("etc/"),
            E::File("etc/passwd", "root:x:0:0"),
            E::File("etc/group", "root:x:0:"),
            E::File("etc/other", "no"),
            E::Dir("etc/ssl/"),
            E::File("etc/ssl/cert.pem", "pem"),
            E::Dir("usr/"),
            E::File("usr/big", "no"),
            E::Sym("lib", "usr/lib"),
            E::File("usr/hl-src", "shared"),
            E::Hard("etc/hl", "usr/hl-src"),
        ]);
        let l2 = tar_of(&[E::File("etc/.wh.group", "")]);
        let (dir, r) = apply(&[l1, l2], Filter::paths(["/etc/passwd", "/etc/group", "etc/ssl", "lib/x", "etc/hl"]));
        let r = r.unwrap();
        let keys: Vec<&str> = r.entries.keys().map(String::as_str).collect();
        assert_eq!(keys, ["etc", "etc/passwd", "etc/ssl", "etc/ssl/cert.pem", "lib"]);
        assert!(!exists(&dir, "usr/big") && !exists(&dir, "etc/other") && !exists(&dir, "etc/group"));
        // The hard link's target was filtered out: asked for, not an error.
        assert_eq!(r.wanted.iter().collect::<Vec<_>>(), ["usr/hl-src"]);
        let mut f = Filter::paths(["etc/hl"]);
        f.add("usr/hl-src");
        let (dir, r) = apply(&[tar_of(&[E::File("usr/hl-src", "shared"), E::Hard("etc/hl", "usr/hl-src")])], f);
        assert!(r.unwrap().wanted.is_empty());
        assert_eq!(read(&dir, "etc/hl").as_deref(), Some("shared"));
        // Globs within a component.
        let (_d, r) = apply(&[tar_of(&[E::File("a.conf", "1"), E::File("b.txt", "2")])], Filter::paths(["*.conf"]));
        assert_eq!(r.unwrap().entries.keys().collect::<Vec<_>>(), ["a.conf"]);
    }

    #[test]
    fn read_only_directories_are_written_into_then_locked() {
        let mut l1 = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o555);
        h.set_size(0);
        l1.append_data(&mut h, "ro/", io::empty()).unwrap();
        let l1 = l1.into_inner().unwrap();
        let l2 = tar_of(&[E::File("ro/f", "x")]);
        let (dir, r) = apply(&[l1.clone(), l2], Filter::all());
        r.unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(dir.path().join("root/ro")).unwrap().permissions().mode() & 0o777, 0o555);
        assert_eq!(read(&dir, "ro/f").as_deref(), Some("x"));
        set_mode(&dir.path().join("root/ro"), 0o755).unwrap();
        // writable_dirs: the report keeps 0555, the disk stays deletable.
        let dest = dir.path().join("w");
        let opts = Options { writable_dirs: true, ..Default::default() };
        let r = apply_layers([(desc(1), l1.as_slice())], &dest, &opts).unwrap();
        assert_eq!(r.entries["ro"].mode, 0o555);
        assert_eq!(fs::metadata(dest.join("ro")).unwrap().permissions().mode() & 0o777, 0o755);
    }

    #[test]
    fn refuses_a_non_empty_destination_and_names_a_corrupt_layer() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x"), "").unwrap();
        let e =
            apply_layers(std::iter::empty::<(OciDescriptor, &[u8])>(), dir.path(), &Options::default()).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        let mut bad = gz(&tar_of(&[E::File("a", "1")]));
        bad.truncate(bad.len() / 2);
        let e = err_of(&[bad]);
        assert!(e.contains("layer 1") && e.contains("reading the layer"), "{e}");
    }

    #[test]
    fn lookup_finds_files_and_their_deletions_in_one_layer() {
        let l = tar_of(&[E::Dir("etc/"), E::File("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), E::File("x", "1")]);
        let r = lookup(gz(&l).as_slice(), &["/etc/passwd", "/etc/group"]).unwrap();
        assert_eq!(r["etc/passwd"], Lookup::File(b"root:x:0:0::/root:/bin/sh\n".to_vec()));
        assert!(!r.contains_key("etc/group"));
        let r = lookup(
            tar_of(&[E::File("etc/.wh.group", ""), E::File(".wh.etc", "")]).as_slice(),
            &["etc/group", "etc/passwd"],
        )
        .unwrap();
        assert_eq!((r["etc/group"].clone(), r["etc/passwd"].clone()), (Lookup::Gone, Lookup::Gone));
        let r = lookup(
            tar_of(&[E::File("etc/.wh..wh..opq", ""), E::File("etc/passwd", "p")]).as_slice(),
            &["etc/passwd", "etc/group"],
        )
        .unwrap();
        assert_eq!((r["etc/passwd"].clone(), r["etc/group"].clone()), (Lookup::File(b"p".to_vec()), Lookup::Gone));
    }

    #[test]
    fn resolve_follows_links_inside_the_root() {
        let f = |k: EntryKind| Entry { kind: k, mode: 0o777, uid: 0, gid: 0, mtime: 0 };
        let entries = BTreeMap::from([
            ("lib".to_string(), f(EntryKind::Symlink("usr/lib".into()))),
            ("usr".to_string(), f(EntryKind::Dir)),
            ("usr/lib".to_string(), f(EntryKind::Dir)),
            ("usr/lib/x".to_string(), f(EntryKind::File { size: 1 })),
            ("up".to_string(), f(EntryKind::Symlink("../../../usr".into()))),
            ("loop".to_string(), f(EntryKind::Symlink("/loop".into()))),
        ]);
        assert_eq!(resolve(&entries, "/lib/x").as_deref(), Some("usr/lib/x"));
        assert_eq!(resolve(&entries, "up/lib/x").as_deref(), Some("usr/lib/x"));
        assert_eq!(resolve(&entries, "loop"), None);
        assert_eq!(resolve(&entries, "lib/nope").as_deref(), Some("usr/lib/nope"));
        assert_eq!(resolve(&entries, "usr/lib/x/y"), None);
    }
}
