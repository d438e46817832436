//! Sources and sinks on disk: OCI image layouts ([`oci`]) and `docker save` archives
//! ([`docker_archive`]). Reading one yields an [`Artifact`] whose blobs point back into the files, so
//! nothing is held in memory but manifests and configs.

pub mod docker_archive;
pub mod oci;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::{Artifact, Digest};

/// Which entry of a layout's `index.json` to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The only entry (an error when there are several).
    Only,
    /// The entry annotated `org.opencontainers.image.ref.name=<tag>`.
    Tag(String),
    /// The entry (or any manifest blob) with this digest.
    Digest(Digest),
}

/// A push source as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    OciLayout { dir: PathBuf, selector: Selector },
    DockerArchive { file: PathBuf },
}

impl Source {
    /// Parses `oci:DIR[:TAG|@DIGEST]`, `docker-archive:FILE`, a bare layout directory or a bare `.tar`.
    pub fn parse(s: &str) -> Result<Source> {
        if let Some(rest) = s.strip_prefix("oci:") {
            return Self::parse_layout(rest);
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            return Ok(Source::DockerArchive { file: PathBuf::from(rest) });
        }
        let path = Path::new(s);
        if path.join("oci-layout").is_file() {
            return Ok(Source::OciLayout { dir: path.to_path_buf(), selector: Selector::Only });
        }
        if path.is_file() && (s.ends_with(".tar") || s.ends_with(".tar.gz") || s.ends_with(".tgz")) {
            return Ok(Source::DockerArchive { file: path.to_path_buf() });
        }
        let why = if path.exists() {
            format!("{s:?} is neither an OCI layout directory (no oci-layout file in it) nor a .tar archive")
        } else {
            format!("{s:?} does not exist")
        };
        Err(Error::usage(format!("source {why}"))
            .with_hint("sources are oci:DIR, oci:DIR:TAG, oci:DIR@sha256:..., docker-archive:FILE.tar, a layout directory or a .tar file"))
    }

    fn parse_layout(rest: &str) -> Result<Source> {
        if let Some((dir, digest)) = rest.rsplit_once('@') {
            let digest = digest.parse().map_err(|e: Error| e.context("source oci:DIR@DIGEST"))?;
            return Ok(Source::OciLayout { dir: dir.into(), selector: Selector::Digest(digest) });
        }
        // A directory name may itself hold a ':'; only split when the whole is not a directory.
        if !Path::new(rest).is_dir() {
            if let Some((dir, tag)) = rest.rsplit_once(':') {
                if !tag.contains('/') {
                    return Ok(Source::OciLayout { dir: dir.into(), selector: Selector::Tag(tag.into()) });
                }
            }
        }
        Ok(Source::OciLayout { dir: rest.into(), selector: Selector::Only })
    }

    /// Reads the source into an artifact (blocking I/O: call from a blocking thread). The spool holds
    /// converted layers and must outlive the push.
    pub fn load(&self) -> Result<(Artifact, docker_archive::Spool)> {
        match self {
            Source::OciLayout { dir, selector } => Ok((oci::read(dir, selector)?, None)),
            Source::DockerArchive { file } => docker_archive::read_with_spool(file),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::OciLayout { dir, selector: Selector::Only } => write!(f, "oci:{}", dir.display()),
            Source::OciLayout { dir, selector: Selector::Tag(t) } => write!(f, "oci:{}:{t}", dir.display()),
            Source::OciLayout { dir, selector: Selector::Digest(d) } => write!(f, "oci:{}@{d}", dir.display()),
            Source::DockerArchive { file } => write!(f, "docker-archive:{}", file.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_forms() {
        assert_eq!(
            Source::parse("oci:out:v1").unwrap(),
            Source::OciLayout { dir: "out".into(), selector: Selector::Tag("v1".into()) }
        );
        assert_eq!(
            Source::parse("oci:./out").unwrap(),
            Source::OciLayout { dir: "./out".into(), selector: Selector::Only }
        );
        let d = format!("sha256:{}", "1".repeat(64));
        assert_eq!(
            Source::parse(&format!("oci:out@{d}")).unwrap(),
            Source::OciLayout { dir: "out".into(), selector: Selector::Digest(d.parse().unwrap()) }
        );
        assert_eq!(Source::parse("docker-archive:img.tar").unwrap(), Source::DockerArchive { file: "img.tar".into() });
        let e = Source::parse("/no/such/thing").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
