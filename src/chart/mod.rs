//! Helm charts without helm: packaging a chart directory into the `.tgz` Helm would make (same
//! members, order, headers and contents; Chart.yaml re-serialized as Helm does), reproducibly (one
//! epoch for every mtime), fetching missing dependencies, and turning a package into the OCI artifact
//! `helm push` sends (see [`oci`]). The pieces: [`ignore`] (`.helmignore`), [`load`] (walk and
//! classification), [`metadata`] (Chart.yaml/Chart.lock), [`yaml`] (Helm's YAML output), [`save`]
//! (tar and gzip), [`version`] (versions and constraints), [`deps`] (dependency fetching).

pub mod deps;
pub mod ignore;
pub mod load;
pub mod metadata;
pub mod oci;
pub mod save;
pub mod version;
pub mod yaml;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub use load::{Chart, File};
pub use metadata::Metadata;

/// How to package.
#[derive(Debug, Clone, Default)]
pub struct PackageOptions {
    /// Overrides Chart.yaml's version (a leading `v`, as in a git tag, is dropped).
    pub version: Option<String>,
    /// Overrides Chart.yaml's appVersion (kept as written).
    pub app_version: Option<String>,
    /// Seconds since the epoch for every entry's mtime.
    pub epoch: u64,
}

/// A packaged chart: the archive bytes and what is in it.
#[derive(Debug, Clone)]
pub struct Package {
    /// `<name>-<version>.tgz`.
    pub file_name: String,
    pub tgz: Vec<u8>,
    pub metadata: Metadata,
    /// Archive members in order (paths only).
    pub members: Vec<String>,
    /// Things the user should hear about (from loading the chart).
    pub warnings: Vec<String>,
}

/// `--version v1.2.3` → `1.2.3` (a git tag's `v` dropped).
pub fn tag_version(v: &str) -> String {
    match v.strip_prefix('v') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest.to_string(),
        _ => v.to_string(),
    }
}

/// Loads `dir`, applies the overrides, validates, checks the dependencies are present, and builds the archive.
pub fn package_dir(dir: &Path, opts: &PackageOptions) -> Result<Package> {
    let mut chart = load::load_dir(dir)?;
    if let Some(v) = &opts.version {
        chart.metadata.version = tag_version(v);
    }
    if let Some(v) = &opts.app_version {
        chart.metadata.app_version = v.clone();
    }
    chart.metadata.validate().map_err(|e| e.context(format!("packaging {}", dir.display())))?;
    let missing = chart.missing_dependencies();
    if !missing.is_empty() {
        return Err(Error::other(format!(
            "packaging {}: Chart.yaml declares dependencies that charts/ lacks: {}",
            dir.display(),
            missing.join(", ")
        ))
        .with_hint("run with --dependency-update to fetch them, or put them in charts/ (a directory or a .tgz)"));
    }
    chart.stamp_times(opts.epoch);
    build(&chart, opts.epoch)
}

/// The archive of a loaded, validated chart.
pub fn build(chart: &Chart, epoch: u64) -> Result<Package> {
    let members = save::members(chart);
    let tar = save::tar_stream(&members, epoch)?;
    let tgz = save::gzip(&tar)?;
    Ok(Package {
        file_name: format!("{}-{}.tgz", chart.metadata.name, chart.metadata.version),
        tgz,
        metadata: chart.metadata.clone(),
        members: members.into_iter().map(|(n, _)| n).collect(),
        warnings: chart.warnings.clone(),
    })
}

/// Reads a chart archive (`.tgz`) as Helm's loader would, with its limits, and validates it.
pub fn load_archive(tgz: &[u8]) -> Result<Chart> {
    let mut chart = load::load_files(load::archive_files(tgz)?)?;
    chart.metadata.validate()?;
    Ok(chart)
}

/// Writes `bytes` to `dir/name` through a temporary file in the same directory and a rename, so a
/// failure never leaves a half-written file under the final name. Creates `dir` when missing.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let target = dir.join(name);
    crate::fsutil::write_atomic(&target, bytes)?;
    Ok(target)
}
