//! `Reference`: an image reference (`host[:port]/repo[:tag][@digest]`) under docker's name rules.
//!
//! Parsed by hoist's own reader of distribution's reference grammar (`reference/regexp.go`), with
//! docker's normalisation as oci-spec has it (`alpine` is `docker.io/library/alpine:latest`; the
//! first path part is a host only with a `.`, a `:` or `localhost`). oci-client's parser (oci-spec's)
//! compiles one large Unicode regex on first use — about 30 ms, more than the rest of a `hoist ls`
//! — and its `\w` admits non-ASCII tags that registries refuse. The unit tests hold oci-spec's own
//! cases and compare both parsers on generated inputs. This newtype adds validated digests, the host
//! to dial, and tag handling.

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
        let parts = split(s).map_err(|why| invalid(&why))?;
        let digest = parts.digest.map(|d| d.parse::<Digest>()).transpose().map_err(|e| invalid(&e))?;
        // A digest without a tag keeps no tag (docker's rule); neither gives `latest`.
        let tag = match (parts.tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference { registry: parts.registry, repository: parts.repository, tag, digest })
    }
}

/// A reference cut into its parts, each checked against distribution's grammar but the digest, which
/// [`Digest`] checks (it takes sha256 and sha512 only, a subset of the grammar's digests).
struct Parts<'a> {
    registry: String,
    repository: String,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Longest repository name (after `library/` is added), as distribution and oci-spec have it.
const NAME_MAX: usize = 255;

/// `name[:tag][@digest]`, where `name` is `[domain/]path-component(/path-component)*`.
fn split(s: &str) -> std::result::Result<Parts<'_>, String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    // The tag follows the last `:` that comes after the last `/` (`host:5000/repo` has none).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if rest.rfind('/').is_none_or(|slash| i > slash) => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        validate_tag(tag).map_err(|e| e.to_string())?;
    }
    // Either the whole name is a repository path, or its first part is a host and the rest one.
    let valid = is_path(name) || name.split_once('/').is_some_and(|(host, path)| is_domain(host) && is_path(path));
    if !valid {
        return Err(if name.is_empty() {
            "the repository name is missing".to_string()
        } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
            "repository names must be lowercase".to_string()
        } else {
            "the name is not host[:port]/path with path parts of [a-z0-9] joined by '.', '_', '__' or '-'".to_string()
        });
    }
    let (registry, repository) = split_domain(name);
    // A first part that is not a host (no '.', ':' or "localhost") is part of the repository, where
    // docker refuses capitals: `Upper/app` is not Docker Hub's `Upper/app`.
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository names must be lowercase".into());
    }
    if repository.len() > NAME_MAX {
        return Err(format!("the repository name is longer than {NAME_MAX} characters"));
    }
    Ok(Parts { registry, repository, tag, digest })
}

/// docker's `splitDockerDomain`: the first part is the registry only when it looks like a host.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DOCKER_HUB.to_string();
    }
    if domain == DOCKER_HUB && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (domain, remainder)
}

/// `path-component ('/' path-component)*`.
fn is_path(path: &str) -> bool {
    path.split('/').all(is_path_component)
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `.`, `_`, `__` or `-`+.
fn is_path_component(part: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = part.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Every run of non-alphanumerics between two alphanumeric runs must be one separator.
    part.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-'))
}

/// `host[:port]`: a domain name (components of letters, digits and inner `-`, joined by `.`), or an
/// IPv6 address in brackets (distribution's grammar; oci-spec's lacks it), then an optional port.
fn is_domain(domain: &str) -> bool {
    let component = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
    };
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, port)) => (addr.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (host, port) = domain.split_at(domain.find(':').unwrap_or(domain.len()));
            (host.split('.').all(component), port)
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
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

    /// oci-spec's own parse cases (its `parse_good_reference` / `parse_bad_reference`), with docker's
    /// no-`latest`-beside-a-digest rule hoist follows.
    #[test]
    fn oci_spec_cases_parse_alike() {
        let f64 = "f".repeat(64);
        let f128 = "f".repeat(128);
        let good: &[(&str, &str, &str, Option<&str>)] = &[
            ("busybox", "docker.io", "library/busybox", Some("latest")),
            ("test.com:tag", "docker.io", "library/test.com", Some("tag")),
            ("test.com:5000", "docker.io", "library/test.com", Some("5000")),
            ("test.com/repo:tag", "test.com", "repo", Some("tag")),
            ("test:5000/repo", "test:5000", "repo", Some("latest")),
            ("test:5000/repo:tag", "test:5000", "repo", Some("tag")),
            ("lowercase:Uppercase", "docker.io", "library/lowercase", Some("Uppercase")),
            ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", Some("some-long-tag")),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com",
                "b.gcr.io",
                "test.example.com/my-app",
                Some("test.example.com"),
            ),
            ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", Some("xn--n3h.com")),
            ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", Some("8080")),
            ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", Some("8080")),
            ("opensuse/leap:15.3", "docker.io", "opensuse/leap", Some("15.3")),
            ("index.docker.io/alpine", "docker.io", "library/alpine", Some("latest")),
            ("a__b/c---d/e.f_g:t", "docker.io", "a__b/c---d/e.f_g", Some("t")),
            ("[::1]:5000/app:1", "[::1]:5000", "app", Some("1")),
        ];
        for (input, registry, repository, tag) in good {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((r.registry(), r.repository(), r.tag()), (*registry, *repository, *tag), "{input}");
        }
        let r: Reference = format!("test:5000/repo@sha256:{f64}").parse().unwrap();
        assert_eq!(
            (r.repository(), r.tag(), r.digest().map(|d| d.to_string())),
            ("repo", None, Some(format!("sha256:{f64}")))
        );
        let r: Reference = format!("xn--7o8h.com/myimage:xn--7o8h.com@sha512:{f128}").parse().unwrap();
        assert_eq!((r.registry(), r.tag()), ("xn--7o8h.com", Some("xn--7o8h.com")));
        let long = "a".repeat(256);
        for bad in [
            "".to_string(),
            ":justtag".into(),
            format!("@sha256:{f64}"),
            format!("repo@sha256:{}", "f".repeat(34)),
            format!("validname@invaliddigest:{f64}"),
            "Uppercase:tag".into(),
            "Uppercase/lowercase:tag".into(),
            "test:5000/Uppercase/lowercase:tag".into(),
            long,
            "aa/asdf$$^/aa".into(),
            "a/b:bad tag".into(),
            "a/b:caf\u{e9}".into(),
            "a..b/c".into(),
            "a/b/".into(),
            "host:port/a".into(),
            "[::1/a".into(),
            "a/b@sha256:xyz".into(),
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} parsed");
        }
    }

    /// hoist's parser against oci-client's (oci-spec's regex) on generated strings: the same verdict
    /// and the same parts, wherever hoist's extra rules (lowercase repository, the digests it takes) pass.
    #[test]
    fn the_same_parts_as_oci_clients_parser() {
        let pieces = [
            "a",
            "b0",
            "x.y",
            "x-y",
            "x_y",
            "x__y",
            "x___y",
            "x..y",
            "X",
            "localhost",
            "h.io",
            "h.io:5000",
            "h:5000",
            "host:port",
            ":",
            "/",
            "//",
            "@",
            ".",
            "-",
            "_",
            "v1.2",
            "-t",
            ".t",
            "latest",
        ];
        let digest = format!("sha256:{}", "0a".repeat(32));
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut compared = 0;
        for _ in 0..40_000 {
            let mut s = String::new();
            for _ in 0..(1 + next() % 6) {
                s.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            if next() % 5 == 0 {
                s.push('@');
                s.push_str(&digest);
            }
            let ours = s.parse::<Reference>().ok();
            if let Some(o) = &ours {
                // What hoist prints, it reads back as the same reference.
                assert_eq!(o.to_string().parse::<Reference>().ok().as_ref(), Some(o), "{s}");
            }
            let theirs = oci_client::Reference::try_from(s.as_str()).ok().filter(|r| {
                !r.repository().bytes().any(|b| b.is_ascii_uppercase())
                    && r.digest().is_none_or(|d| d.parse::<Digest>().is_ok())
            });
            match (&ours, &theirs) {
                (Some(o), Some(t)) => {
                    assert_eq!((o.registry(), o.repository()), (t.registry(), t.repository()), "{s}");
                    assert_eq!(o.digest().map(|d| d.to_string()).as_deref(), t.digest(), "{s}");
                    if o.digest().is_none()
                        || s.rsplit_once('@')
                            .is_some_and(|(n, _)| n.rsplit('/').next().is_some_and(|l| l.contains(':')))
                    {
                        assert_eq!(o.tag(), t.tag(), "{s}");
                    }
                    compared += 1;
                }
                (None, None) => {}
                _ => panic!("{s:?}: hoist {ours:?}, oci-client {theirs:?}"),
            }
        }
        assert!(compared > 1000, "only {compared} inputs parsed");
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
