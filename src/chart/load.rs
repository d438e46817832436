//! Loading a chart as Helm's loader does (`pkg/chart/v2/loader`): the directory walk (each directory's
//! entries sorted bytewise, ignored directories pruned, symlinks followed — but never out of the chart),
//! the per-file 5 MiB and per-chart 100 MiB limits, the UTF-8 BOM stripped from every file, then the
//! classification of files into Chart.yaml, Chart.lock, values, schema, templates, other files and
//! subcharts (`charts/<dir>/…` recursively, `charts/*.tgz` read as archives, `_`/`.` names skipped).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::ignore::{Rules, HELMIGNORE};
use super::metadata::{Lock, Metadata, API_V1};
use crate::error::{Error, Result};

/// Helm's `MaxDecompressedFileSize`: the largest file a chart may hold.
pub const MAX_FILE_SIZE: u64 = 5 * 1024 * 1024;
/// Helm's `MaxDecompressedChartSize`: the most a chart archive may expand to (helm refuses to load more).
pub const MAX_CHART_SIZE: u64 = 100 * 1024 * 1024;

/// A file of a chart: its path relative to the chart root (`/`-separated) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub data: Vec<u8>,
}

/// A loaded chart, in the parts Helm writes back out.
#[derive(Debug, Clone)]
pub struct Chart {
    pub metadata: Metadata,
    pub lock: Option<Lock>,
    pub values: Option<Vec<u8>>,
    pub schema: Option<Vec<u8>>,
    pub templates: Vec<File>,
    pub files: Vec<File>,
    /// Subcharts, sorted by name (Helm's order is random with two or more).
    pub dependencies: Vec<Chart>,
    /// Things worth telling the user (a `!` rule in `.helmignore`).
    pub warnings: Vec<String>,
}

fn strip_bom(mut data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(b"\xEF\xBB\xBF") {
        data.drain(..3);
    }
    data
}

fn too_big_chart() -> Error {
    Error::other(format!("the chart is larger than {} MiB uncompressed, the most helm will load", MAX_CHART_SIZE >> 20))
        .with_hint("move large data out of the chart (a ConfigMap from an image, or a download at run time)")
}

/// Reads a chart directory: `.helmignore` (plus Helm's default rule), the walk, then [`load_files`].
pub fn load_dir(dir: &Path) -> Result<Chart> {
    let root = dir.canonicalize().map_err(|e| Error::io(format!("reading chart directory {}", dir.display()), e))?;
    if !root.is_dir() {
        return Err(Error::usage(format!("{} is not a directory", dir.display())));
    }
    if !root.join("Chart.yaml").is_file() {
        return Err(Error::usage(format!("{} has no Chart.yaml: it is not a chart directory", dir.display()))
            .with_hint("point at the directory that holds Chart.yaml"));
    }
    let mut rules = match std::fs::read(root.join(HELMIGNORE)) {
        Ok(bytes) => Rules::parse(&String::from_utf8_lossy(&bytes))
            .map_err(|e| e.context(format!("reading {}", dir.join(HELMIGNORE).display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Rules::default(),
        Err(e) => return Err(Error::io(format!("reading {}", dir.join(HELMIGNORE).display()), e)),
    };
    let negation = rules.has_negation();
    rules.add_defaults();
    let mut walk = Walk { root: root.clone(), rules, files: Vec::new(), total: 0, stack: vec![root.clone()] };
    walk.dir(&root, "")?;
    let mut chart = load_files(walk.files).map_err(|e| e.context(format!("loading chart {}", dir.display())))?;
    if negation {
        chart.warnings.push(format!(
            "{}: a `!pattern` rule in helm's .helmignore does not re-include: it ignores every path that does not \
             match the pattern (kept as helm does it)",
            dir.join(HELMIGNORE).display()
        ));
    }
    Ok(chart)
}

struct Walk {
    root: PathBuf,
    rules: Rules,
    files: Vec<File>,
    total: u64,
    /// Canonical directories being walked (a symlink back to one of them is a loop).
    stack: Vec<PathBuf>,
}

impl Walk {
    fn dir(&mut self, dir: &Path, rel: &str) -> Result<()> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
            .map(|e| {
                let e = e.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
                e.file_name()
                    .into_string()
                    .map_err(|n| Error::other(format!("{}: file name {n:?} is not UTF-8", dir.display())))
            })
            .collect::<Result<_>>()?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let lmeta =
                std::fs::symlink_metadata(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let (target, meta) = if lmeta.file_type().is_symlink() {
                let target = path.canonicalize().map_err(|e| {
                    Error::other(format!("symlink {rel} cannot be followed: {e}"))
                        .with_hint("a dangling link: remove it or add it to .helmignore")
                })?;
                if !target.starts_with(&self.root) {
                    return Err(Error::other(format!(
                        "symlink {rel} points outside the chart (to {})",
                        target.display()
                    ))
                    .with_hint("copy the file into the chart, or add the link to .helmignore"));
                }
                let meta = std::fs::metadata(&target).map_err(|e| Error::io(format!("reading {rel}"), e))?;
                (target, meta)
            } else {
                (path.clone(), lmeta)
            };
            if meta.is_dir() {
                if self.rules.ignored(&rel, true) {
                    continue;
                }
                let canon = target.canonicalize().unwrap_or(target.clone());
                if self.stack.contains(&canon) {
                    return Err(Error::other(format!("symlink {rel} makes a loop (it points at a parent directory)")));
                }
                self.stack.push(canon);
                self.dir(&target, &rel)?;
                self.stack.pop();
                continue;
            }
            if self.rules.ignored(&rel, false) {
                continue;
            }
            if !meta.is_file() {
                return Err(Error::other(format!("{rel} is not a regular file (a device, socket or pipe)"))
                    .with_hint("add it to .helmignore"));
            }
            if meta.len() > MAX_FILE_SIZE {
                return Err(Error::other(format!(
                    "{rel} is {} bytes, larger than the {} MiB helm allows for a chart file",
                    meta.len(),
                    MAX_FILE_SIZE >> 20
                ))
                .with_hint("add it to .helmignore, or keep large data out of the chart"));
            }
            self.total += meta.len();
            if self.total > MAX_CHART_SIZE {
                return Err(too_big_chart());
            }
            let data = std::fs::read(&target).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            self.files.push(File { name: rel, data: strip_bom(data) });
        }
        Ok(())
    }
}

/// Reads the files of a chart archive (`.tgz`) with Helm's rules: the first path element dropped,
/// directories and PAX headers skipped, no absolute or escaping paths, the size limits.
pub fn archive_files(tgz: &[u8]) -> Result<Vec<File>> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut files = Vec::new();
    let mut remaining = MAX_CHART_SIZE;
    let entries = tar.entries().map_err(|e| Error::other(format!("not a gzipped tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::other(format!("reading the archive: {e}")))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(Error::other(format!("archive member {raw:?} is a link or special file, not a regular file")));
        }
        let delim = if raw.contains('\\') { '\\' } else { '/' };
        let parts: Vec<&str> = raw.split(delim).collect();
        let name = clean(&parts[1..].join("/"));
        if parts.len() < 2 || name == "." || name.is_empty() {
            return Err(Error::other(format!("archive member {raw:?} is outside the chart's directory")));
        }
        if name.starts_with('/') {
            return Err(Error::other(format!("archive member {raw:?} has an absolute path")));
        }
        if name == ".." || name.starts_with("../") {
            return Err(Error::other(format!("archive member {raw:?} escapes the chart's directory")));
        }
        if name.len() >= 3 && name.as_bytes()[1] == b':' && name.as_bytes()[2] == b'/' {
            return Err(Error::other(format!("archive member {raw:?} has a drive-letter path")));
        }
        if parts[0] == "Chart.yaml" {
            return Err(Error::other("Chart.yaml is not inside the archive's chart directory"));
        }
        let size = entry.header().size().unwrap_or(0);
        if size > MAX_FILE_SIZE {
            return Err(Error::other(format!(
                "archive member {raw:?} is {size} bytes, larger than the {} MiB helm allows for a chart file",
                MAX_FILE_SIZE >> 20
            )));
        }
        if size > remaining {
            return Err(too_big_chart());
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut entry).take(remaining).read_to_end(&mut data).map_err(|e| Error::other(format!("reading {raw}: {e}")))?;
        remaining -= data.len() as u64;
        files.push(File { name, data: strip_bom(data) });
    }
    if files.is_empty() {
        return Err(Error::other("the archive holds no files"));
    }
    Ok(files)
}

/// Go's `path.Clean` for relative paths.
fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| *l != "..") => {
                out.pop();
            }
            ".." if abs => {}
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Helm's `LoadFiles`: classifies the files of one chart (names relative to its root, in walk order).
pub fn load_files(files: Vec<File>) -> Result<Chart> {
    let mut metadata: Option<Metadata> = None;
    let mut lock = None;
    let mut values = None;
    let mut schema = None;
    let mut templates = Vec::new();
    let mut others = Vec::new();
    let mut requirements: Option<Vec<u8>> = None;
    let mut subcharts: BTreeMap<String, Vec<File>> = BTreeMap::new();
    for f in files {
        match f.name.as_str() {
            "Chart.yaml" => metadata = Some(Metadata::parse(&f.data)?),
            "Chart.lock" => lock = Some(Lock::parse("Chart.lock", &f.data)?),
            // Copied raw, as Helm writes it (Helm parses it too, with go-yaml's own leniency: not re-checked here).
            "values.yaml" => values = Some(f.data),
            "values.schema.json" => {
                serde_json::from_slice::<serde_json::Value>(&f.data)
                    .map_err(|e| Error::other(format!("values.schema.json is not valid JSON: {e}")))?;
                schema = Some(f.data);
            }
            "requirements.yaml" => {
                requirements = Some(f.data.clone());
                others.push(f);
            }
            "requirements.lock" => {
                lock = Some(Lock::parse("requirements.lock", &f.data)?);
                others.push(f);
            }
            n if n.starts_with("templates/") => templates.push(f),
            n if n.starts_with("charts/") => {
                if n.ends_with(".prov") {
                    others.push(f);
                    continue;
                }
                let rest = n["charts/".len()..].to_string();
                let key = rest.split('/').next().unwrap_or("").to_string();
                subcharts.entry(key).or_default().push(File { name: rest, data: f.data });
            }
            _ => others.push(f),
        }
    }
    let Some(mut metadata) = metadata else {
        return Err(Error::other("Chart.yaml file is missing"));
    };
    if let Some(req) = &requirements {
        metadata.merge_requirements(req)?;
    }
    // v2 charts carry requirements.* as Chart.yaml dependencies and Chart.lock, never as files.
    if metadata.api_version != API_V1 {
        others.retain(|f| f.name != "requirements.yaml" && f.name != "requirements.lock");
    }
    let mut dependencies = Vec::new();
    for (key, files) in subcharts {
        if key.starts_with('_') || key.starts_with('.') {
            continue;
        }
        let sub = if key.ends_with(".tgz") {
            let file = &files[0];
            if file.name != key {
                return Err(Error::other(format!("charts/{key} is a directory named like an archive")));
            }
            archive_files(&file.data).and_then(load_files)
        } else {
            let inner: Vec<File> = files
                .into_iter()
                .filter_map(|f| f.name.split_once('/').map(|(_, n)| File { name: n.to_string(), data: f.data }))
                .collect();
            load_files(inner)
        };
        let mut sub = sub.map_err(|e| e.context(format!("subchart charts/{key}")))?;
        sub.metadata.validate().map_err(|e| e.context(format!("subchart charts/{key}")))?;
        dependencies.push(sub);
    }
    dependencies.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(Chart { metadata, lock, values, schema, templates, files: others, dependencies, warnings: Vec::new() })
}

impl Chart {
    /// The declared dependencies (by name) that no subchart provides.
    pub fn missing_dependencies(&self) -> Vec<&str> {
        self.metadata
            .dependencies
            .iter()
            .filter(|d| !self.dependencies.iter().any(|c| c.metadata.name == d.name))
            .map(|d| d.name.as_str())
            .collect()
    }

    /// Helm 4's `StampModTimes` under `SOURCE_DATE_EPOCH`: the `generated` instant of this chart's Chart.lock
    /// and of every subchart's becomes the build epoch (RFC 3339, UTC, whole seconds), as every mtime does.
    /// Without it the archive would carry the instant `helm dependency update` once ran.
    pub fn stamp_times(&mut self, epoch: u64) {
        if let Some(lock) = &mut self.lock {
            lock.generated = crate::builder::config::rfc3339(epoch);
        }
        for sub in &mut self.dependencies {
            sub.stamp_times(epoch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_times_sets_every_lock_generated_to_the_epoch() {
        let lock = |g: &str| {
            Lock::parse("Chart.lock", format!("dependencies: []\ndigest: sha256:00\ngenerated: \"{g}\"\n").as_bytes())
                .unwrap()
        };
        let chart = |name: &str, deps: Vec<Chart>| Chart {
            metadata: Metadata::parse(format!("apiVersion: v2\nname: {name}\nversion: 1.0.0\n").as_bytes()).unwrap(),
            lock: Some(lock("2025-08-13T19:31:58.340987883Z")),
            values: None,
            schema: None,
            templates: Vec::new(),
            files: Vec::new(),
            dependencies: deps,
            warnings: Vec::new(),
        };
        let mut c = chart("app", vec![chart("sub", Vec::new())]);
        c.stamp_times(1_700_000_000);
        assert_eq!(c.lock.as_ref().unwrap().generated, "2023-11-14T22:13:20Z");
        assert_eq!(c.dependencies[0].lock.as_ref().unwrap().generated, "2023-11-14T22:13:20Z");
        assert!(c.lock.unwrap().to_yaml().contains("generated: \"2023-11-14T22:13:20Z\""));
    }

    #[test]
    fn cleans_paths_like_go() {
        assert_eq!(clean("a/./b//c/"), "a/b/c");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean(""), ".");
    }

    fn tgz(members: &[(&str, &str)]) -> Vec<u8> {
        let m: Vec<(String, Vec<u8>)> = members.iter().map(|(n, d)| (n.to_string(), d.as_bytes().to_vec())).collect();
        crate::chart::save::gzip(&crate::chart::save::tar_stream(&m, 0).unwrap()).unwrap()
    }

    #[test]
    fn archive_rules() {
        let ok = archive_files(&tgz(&[("c/Chart.yaml", "\u{feff}name: c"), ("c\\templates\\x.yaml", "x")])).unwrap();
        assert_eq!(ok[0], File { name: "Chart.yaml".into(), data: b"name: c".to_vec() }, "BOM stripped");
        assert_eq!(ok[1].name, "templates/x.yaml", "backslashes are separators");
        for (bad, why) in [
            (&[("c/../../etc/passwd", "x")][..], "escapes"),
            (&[("Chart.yaml", "x")][..], "outside the chart's directory"),
            (&[("Chart.yaml/x", "x")][..], "not inside"),
            (&[("c//abs", "x")][..], "absolute"),
        ] {
            let e = archive_files(&tgz(bad)).unwrap_err();
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn subcharts_in_name_order() {
        let f = |n: &str, d: &str| File { name: n.into(), data: d.as_bytes().to_vec() };
        let c = load_files(vec![
            f("Chart.yaml", "apiVersion: v2\nname: a\nversion: 1.0.0\n"),
            f("charts/zz/Chart.yaml", "name: alpha\nversion: 0.1.0\n"),
            f("charts/aa/Chart.yaml", "name: beta\nversion: 0.1.0\n"),
        ])
        .unwrap();
        let names: Vec<&str> = c.dependencies.iter().map(|d| d.metadata.name.as_str()).collect();
        assert_eq!(names, ["alpha", "beta"]);
    }

    #[test]
    fn classifies_files() {
        let f = |n: &str, d: &str| File { name: n.into(), data: d.as_bytes().to_vec() };
        let c = load_files(vec![
            f("Chart.yaml", "apiVersion: v2\nname: a\nversion: 1.0.0\n"),
            f("requirements.yaml", "dependencies:\n- name: b\n"),
            f("charts/_skip", "x"),
            f("charts/b/Chart.yaml", "name: b\nversion: 0.1.0\n"),
            f("charts/b/templates/x.yaml", "x"),
            f("charts/b.prov", "sig"),
            f("templates/t.yaml", "t"),
            f("README.md", "r"),
        ])
        .unwrap();
        assert_eq!(c.metadata.dependencies.len(), 1);
        assert_eq!(c.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["charts/b.prov", "README.md"]);
        assert_eq!(c.dependencies.len(), 1);
        assert_eq!(c.dependencies[0].templates[0].name, "templates/x.yaml");
        assert!(c.missing_dependencies().is_empty());
        let e = load_files(vec![f("Chart.yaml", "name: a\nversion: 1.0.0\n"), f("charts/stray.txt", "x")]).unwrap_err();
        assert!(e.to_string().contains("Chart.yaml file is missing"), "{e}");
    }
}
