//! The build context: the directory COPY and ADD read from, filtered by `.dockerignore`. Resolving a
//! source here enforces the rule that nothing outside the context is readable — `..` and symlinks
//! that lead out are refused; a leading `/` means the context root — and turns a file or directory into tree entries
//! (symlinks inside a copied directory stay symlinks).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::ignore::{self, IgnoreRules};
use super::layer::{Content, Kind, Node, Tree};
use crate::error::{Error, Result};

/// A context directory and its ignore rules.
#[derive(Debug)]
pub struct BuildContext {
    pub root: PathBuf,
    pub ignore: IgnoreRules,
    all: OnceLock<Vec<String>>,
}

/// A source that resolved: its path relative to the context and on disk.
#[derive(Debug, Clone)]
pub struct Source {
    pub rel: String,
    pub path: PathBuf,
    pub is_dir: bool,
}

impl BuildContext {
    /// Opens `root`, reading `.dockerignore` if present.
    pub fn open(root: &Path) -> Result<BuildContext> {
        Self::open_for(root, None)
    }

    /// Opens `root` for the Dockerfile `dockerfile`: `<Dockerfile>.dockerignore` beside it wins
    /// over the context's `.dockerignore`, as in BuildKit.
    pub fn open_for(root: &Path, dockerfile: Option<&Path>) -> Result<BuildContext> {
        let root = root.canonicalize().map_err(|e| {
            Error::usage(format!("build context {}: {e}", root.display())).with_hint("give the context directory")
        })?;
        if !root.is_dir() {
            return Err(Error::usage(format!("build context {} is not a directory", root.display())));
        }
        let own = dockerfile.and_then(|f| {
            let name = f.file_name()?.to_string_lossy().to_string();
            Some(f.with_file_name(format!("{name}.dockerignore")))
        });
        let text = own
            .and_then(|p| std::fs::read_to_string(p).ok())
            .or_else(|| std::fs::read_to_string(root.join(".dockerignore")).ok());
        let ignore = text.as_deref().map(IgnoreRules::parse).unwrap_or_default();
        Ok(BuildContext { root, ignore, all: OnceLock::new() })
    }

    /// Every non-ignored path in the context (not following symlinks), sorted.
    fn all_paths(&self) -> &[String] {
        self.all.get_or_init(|| {
            let mut out = Vec::new();
            walk(&self.root, "", &mut out);
            out.retain(|p| !self.ignore.is_ignored(p));
            out.sort();
            out
        })
    }

    /// Resolves one COPY/ADD source (expanded) to the context paths it names. Errors are usage
    /// errors without the file:line prefix (the caller adds it).
    pub fn resolve(&self, src: &str) -> Result<Vec<Source>, String> {
        // A leading `/` means the context root, as in docker and BuildKit.
        let mut depth: i64 = 0;
        for part in src.split('/') {
            match part {
                ".." => depth -= 1,
                "" | "." => {}
                _ => depth += 1,
            }
            if depth < 0 {
                return Err(format!("source {src:?} is outside the build context"));
            }
        }
        let cleaned = ignore::clean(src);
        let rels: Vec<String> = if ignore::has_glob(&cleaned) {
            let hits: Vec<String> =
                self.all_paths().iter().filter(|p| ignore::glob_match(&cleaned, p)).cloned().collect();
            if hits.is_empty() {
                return Err(format!("no source files were specified or matched by {src:?}"));
            }
            hits
        } else {
            vec![cleaned]
        };
        let mut out = Vec::new();
        for rel in rels {
            let joined = if rel.is_empty() { self.root.clone() } else { self.root.join(&rel) };
            if !rel.is_empty() && self.ignore.is_ignored(&rel) {
                return Err(format!("source {src:?}: file not found in build context or excluded by .dockerignore"));
            }
            let real = match joined.canonicalize() {
                Ok(p) => p,
                Err(_) if joined.symlink_metadata().is_ok() => {
                    return Err(format!("source {src:?} is a symlink whose target does not exist"))
                }
                Err(_) => {
                    return Err(format!("source {src:?}: file not found in build context or excluded by .dockerignore"))
                }
            };
            if !real.starts_with(&self.root) {
                return Err(format!("source {src:?} is a symlink pointing outside the build context"));
            }
            let is_dir = real.is_dir();
            out.push(Source { rel, path: real, is_dir });
        }
        Ok(out)
    }

    /// The entries under a directory source, relative to it (ignored paths left out), or the file.
    pub fn entries(&self, src: &Source) -> Result<Tree> {
        let mut tree = Tree::new();
        if !src.is_dir {
            tree.insert(String::new(), node_of(&src.path)?);
            return Ok(tree);
        }
        let mut paths = Vec::new();
        walk(&src.path, "", &mut paths);
        // The ignore rules speak about context-relative paths; a directory source reached through a
        // symlink is judged by its real location.
        let base_rel =
            src.path.strip_prefix(&self.root).map(|p| p.to_string_lossy().replace('\\', "/")).unwrap_or_default();
        for p in paths {
            let ctx_rel = super::layer::join(&base_rel, &p);
            if self.ignore.is_ignored(&ctx_rel) {
                continue;
            }
            tree.insert(p.clone(), node_of(&src.path.join(&p))?);
        }
        Ok(tree)
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let rel = super::layer::join(prefix, &name);
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push(rel.clone());
        if is_dir {
            walk(&entry.path(), &rel, out);
        }
    }
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    if meta.is_dir() {
        0o755
    } else {
        0o644
    }
}

/// A node for a file, directory or symlink on disk (not following the symlink), root-owned.
fn node_of(path: &Path) -> Result<Node> {
    let meta = path.symlink_metadata().map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let kind = if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Kind::Symlink(target.to_string_lossy().to_string())
    } else if meta.is_dir() {
        Kind::Dir
    } else {
        Kind::File(Content::Path(path.to_path_buf()))
    };
    let mode = if meta.file_type().is_symlink() { 0o777 } else { mode_of(&meta) };
    Ok(Node { kind, mode, uid: 0, gid: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escapes_and_resolves_globs() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(ctx.join("sub")).unwrap();
        std::fs::write(ctx.join("a.txt"), "a").unwrap();
        std::fs::write(ctx.join("b.txt"), "b").unwrap();
        std::fs::write(ctx.join("sub/c.txt"), "c").unwrap();
        std::fs::write(ctx.join("skip.log"), "x").unwrap();
        std::fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();
        std::fs::write(dir.path().join("outside"), "o").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("../outside", ctx.join("out-link")).unwrap();
        let c = BuildContext::open(&ctx).unwrap();
        assert!(c.resolve("../outside").unwrap_err().contains("outside the build context"));
        assert!(c.resolve("/etc/passwd").unwrap_err().contains("not found"), "a leading / is the context root");
        assert_eq!(c.resolve("/a.txt").unwrap()[0].rel, "a.txt");
        assert!(c.resolve("/../outside").unwrap_err().contains("outside the build context"));
        #[cfg(unix)]
        assert!(c.resolve("out-link").unwrap_err().contains("symlink pointing outside"));
        assert!(c.resolve("skip.log").unwrap_err().contains("excluded"));
        let g = c.resolve("*.txt").unwrap();
        assert_eq!(g.iter().map(|s| s.rel.as_str()).collect::<Vec<_>>(), ["a.txt", "b.txt"]);
        let whole = c.resolve(".").unwrap();
        let tree = c.entries(&whole[0]).unwrap();
        assert!(tree.contains_key("sub/c.txt"));
        assert!(!tree.contains_key("skip.log"));
        assert!(c.resolve("sub/../a.txt").is_ok());
    }

    #[test]
    fn a_dockerfile_s_own_ignore_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "a.txt\n").unwrap();
        std::fs::write(dir.path().join("build.Dockerfile.dockerignore"), "b.txt\n").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("b.txt"), "b").unwrap();
        let own = BuildContext::open_for(dir.path(), Some(&dir.path().join("build.Dockerfile"))).unwrap();
        assert!(own.resolve("a.txt").is_ok() && own.resolve("b.txt").is_err());
        let plain = BuildContext::open_for(dir.path(), Some(&dir.path().join("Dockerfile"))).unwrap();
        assert!(plain.resolve("a.txt").is_err() && plain.resolve("b.txt").is_ok());
    }
}
