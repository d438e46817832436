//! `Reference`: an image reference (`host[:port]/repo[:tag][@digest]`) under docker's name rules.
//!
//! Parsing is oci-client's (it re-exports oci-spec's docker-compatible parser: `alpine` is
//! `docker.io/library/alpine:latest`, the first path part is a host only with a `.`, a `:` or
//! `localhost`); this newtype adds validated digests, the host to dial, and tag handling.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::model::Digest;

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference. `tag` is `None` only when a digest was given without a tag.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// The registry as written (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        &self.registry
    }
    /// The host (and port) to dial: Docker Hub's API host for `docker.io`.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    /// What to put after `/manifests/`: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        validate_tag(tag)?;
        Ok(Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() })
    }
    /// The same repository pinned to a digest (tag dropped).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { tag: None, digest: Some(digest), ..self.clone() }
    }
}

/// The host (and port) to dial for a registry name: Docker Hub's API host for `docker.io`.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphanumeric() || b == b'_' || (i > 0 && (b == b'.' || b == b'-')));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "invalid tag {tag:?}: tags are 1-128 characters of [A-Za-z0-9_.-] and do not start with . or -"
        )))
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |why: &dyn fmt::Display| {
            Error::usage(format!("invalid image reference {s:?}: {why}"))
                .with_hint("references look like host[:port]/repository[:tag], e.g. harbor.example.com/project/app:1.0")
        };
        let parsed = oci_client::Reference::try_from(s).map_err(|e| invalid(&e))?;
        // oci-spec's domain pattern admits capitals, and a first component that is not a host then
        // lands in the repository: docker refuses capitals in repository names, and so do we.
        if parsed.repository().bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid(&"repository names must be lowercase"));
        }
        let digest = parsed.digest().map(|d| d.parse::<Digest>()).transpose().map_err(|e| invalid(&e))?;
        // oci-spec defaults the tag to `latest` even when a digest is given; docker keeps only the digest.
        let tag = match (&digest, s.rsplit_once('@').map(|(n, _)| n).unwrap_or(s)) {
            (Some(_), name) if !has_tag(name) => None,
            _ => parsed.tag().map(str::to_string),
        };
        Ok(Reference {
            registry: parsed.registry().to_string(),
            repository: parsed.repository().to_string(),
            tag,
            digest,
        })
    }
}

/// Whether a name (no digest) carries an explicit `:tag` after its last `/`.
fn has_tag(name: &str) -> bool {
    name.rsplit('/').next().is_some_and(|last| last.contains(':'))
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

/// Whether a registry host (with or without port) is a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true; // a bare IPv6 address such as ::1 (no brackets, no port)
    }
    let bare = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h),
    };
    bare == "localhost"
        || bare.ends_with(".localhost")
        || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_name_rules() {
        let r: Reference = "alpine".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r: Reference = "127.0.0.1:5000/proj/app:1.2".parse().unwrap();
        assert_eq!((r.registry(), r.repository(), r.tag()), ("127.0.0.1:5000", "proj/app", Some("1.2")));
        let r: Reference = "localhost/app".parse().unwrap();
        assert_eq!((r.registry(), r.repository(), r.tag()), ("localhost", "app", Some("latest")));
        let r: Reference = "user/app".parse().unwrap();
        assert_eq!(r.registry(), "docker.io");
    }

    #[test]
    fn digest_without_tag_keeps_no_tag() {
        let d = format!("sha256:{}", "0".repeat(64));
        let r: Reference = format!("h.io/a/b@{d}").parse().unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), d);
        let r: Reference = format!("h.io:5000/a/b:t@{d}").parse().unwrap();
        assert_eq!(r.tag(), Some("t"));
    }

    #[test]
    fn rejects_bad_references_as_usage_errors() {
        for bad in ["", "UPPER/case", "a/b:bad tag", "h.io/a@sha256:12"] {
            let e = bad.parse::<Reference>().unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Usage, "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(validate_tag("v1.0_rc-1").is_ok());
        assert!(validate_tag(".hidden").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
    }

    #[test]
    fn loopback_hosts() {
        for h in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "::1"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["harbor.example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
