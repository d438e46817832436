//! What a build reads from registry images, as data and as the planner's questions — no I/O: the
//! platform, a resolved base image, account files, and the [`ImageFiles`] interface the planner asks
//! through. It sits below [`super::plan`], [`super::images`] and [`super::base`], so that each of them
//! imports it and none imports another in a circle.

use serde_json::Value;

use super::layer::Tree;
use crate::error::{Error, Result};
use crate::model::{Digest, OciDescriptor, Reference};

/// The platform an image is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`, `linux/arm64/v8`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: Some(v.to_string()) })
            }
            _ => Err(Error::usage(format!("--platform {s:?}: expected os/arch[/variant]"))),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A FROM that names a registry image, as the registry described it.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The reference as the Dockerfile wrote it (normalized).
    pub reference: Reference,
    /// Where it was found: the reference itself, or a registry mirror's copy of it.
    pub source: Reference,
    /// The manifest digest (of the platform's manifest when the tag was an index).
    pub digest: Digest,
    /// The image config, as JSON.
    pub config: Value,
    /// The manifest's layer descriptors, reused as they are.
    pub layers: Vec<OciDescriptor>,
    /// The image index the manifest was picked from, when the reference named one (BuildKit keeps
    /// its SBOM attestations there: `--sbom` looks).
    pub index: Option<Digest>,
}

/// `/etc/passwd` and `/etc/group` of an image (`None` when it has none).
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub passwd: Option<Vec<u8>>,
    pub group: Option<Vec<u8>>,
}

/// What the planner asks of registry images (keyed by the reference as the Dockerfile wrote it).
pub trait ImageFiles {
    /// The entries at `paths` of the image's filesystem (and below them), keyed by the path as
    /// asked: a path through symlinks is resolved inside the image and its entries re-keyed.
    fn files(&self, image: &str, paths: &[String]) -> Result<Tree>;
    /// The image's account files.
    fn accounts(&self, image: &str) -> Result<Accounts>;
    /// Whether the image has a directory (or a symlink, followed as one) at `path`; `None` when that
    /// is not known yet: the question is kept, with `why`, for the build to read the base's layers
    /// ([`super::images::ImageSources::learn`]) and plan again.
    fn base_dir(&self, _image: &str, _path: &str, _why: &str) -> Option<bool> {
        Some(false)
    }
}

/// A user or group name looked up in passwd or group text: `(uid, primary gid)` for a user,
/// `(gid, gid)` for a group.
pub fn lookup_name(text: &[u8], name: &str, is_group: bool) -> Option<(u64, u64)> {
    String::from_utf8_lossy(text).lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.first() != Some(&name) {
            return None;
        }
        if is_group {
            let gid = f.get(2)?.trim().parse().ok()?;
            Some((gid, gid))
        } else {
            Some((f.get(2)?.trim().parse().ok()?, f.get(3)?.trim().parse().ok()?))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_through_passwd_and_group() {
        let passwd = b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\napp:x:1000:50::/:\n";
        let group = b"root:x:0:\nstaff:x:50:app\nnonroot:x:65532:\n";
        assert_eq!(lookup_name(passwd, "app", false), Some((1000, 50)));
        assert_eq!(lookup_name(passwd, "nonroot", false), Some((65532, 65532)));
        assert_eq!(lookup_name(group, "staff", true), Some((50, 50)));
        assert_eq!(lookup_name(passwd, "nobody", false), None);
        assert_eq!(lookup_name(passwd, "non", false), None);
    }
}
