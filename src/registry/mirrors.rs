//! Registry mirrors: where to look for an image before its origin. One resolution, pure (no I/O
//! beyond reading the config file it is given): a [`Reference`] becomes an ordered list of
//! candidates — every matching mirror, then the origin — that any verb pulling images tries in
//! order (`hoist build` for base and `--from` images today; copy, pull and chart dependencies can
//! take the same list).
//!
//! Rules come from, in this order: `--registry-mirror SRC=DEST` flags, `HOIST_REGISTRY_MIRRORS`
//! (the same `SRC=DEST` items, comma-separated), and containers' `registries.conf`
//! (`CONTAINERS_REGISTRIES_CONF`, else `/etc/containers/registries.conf`, when present):
//! `[[registry]]` tables with `prefix` (default: `location`), `location` (where the origin really
//! is) and `[[registry.mirror]]` `location`s, `mirror-by-digest-only` honoured. A SRC or prefix
//! matches a reference's `registry/repository` at a path boundary (`docker.io` matches
//! `docker.io/library/node`); the part after it is appended to the DEST, so
//! `docker.io=harbor.example.com/dh` sends `node:20` to `harbor.example.com/dh/library/node:20`.
//! For `registries.conf`, as containers/image does, only the longest matching prefix applies; a
//! prefix `*.example.com` matches every host under example.com (not example.com itself), and the
//! part after the host is what a mirror's location gets. `blocked = true` refuses to pull any
//! matching image (mirrors included), naming the file; `insecure = true` on a `[[registry]]` or a
//! `[[registry.mirror]]` lets that endpoint's host be reached with an unverified certificate or plain
//! HTTP (HTTPS first) — see [`Mirrors::insecure_hosts`].
//! The reference the Dockerfile wrote is what the image's `org.opencontainers.image.base.name`
//! keeps; only the fetching goes elsewhere.

use crate::ci::{vars, Env};
use crate::error::{Error, Result};
use crate::model::Reference;

/// The system-wide containers registries.conf.
pub const SYSTEM_REGISTRIES_CONF: &str = "/etc/containers/registries.conf";

/// One rewrite rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// `registry[/path]`, matched at a path boundary.
    prefix: String,
    /// Mirror locations (`host[:port][/path]`), tried in order.
    mirrors: Vec<Mirror>,
    /// Where the origin really is, when not the prefix itself (registries.conf `location`).
    location: Option<String>,
    /// From registries.conf (longest prefix only) rather than from flags or the environment.
    from_conf: bool,
    /// registries.conf `mirror-by-digest-only`: the mirrors serve digest references only.
    by_digest_only: bool,
    /// registries.conf `blocked = true`: pulling matching images is refused; the file that said so.
    blocked: Option<String>,
    /// registries.conf `insecure = true`: the origin's host may skip TLS verification and use HTTP.
    insecure: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Mirror {
    location: String,
    digest_only: bool,
    /// registries.conf `insecure = true` for this mirror.
    insecure: bool,
}

/// Every mirror rule in effect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mirrors {
    rules: Vec<Rule>,
}

/// `docker.io/library/node` → the name a prefix is matched against (registry normalized as the
/// reference parser normalizes it).
fn full_name(r: &Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}

/// The rest of `name` after `prefix` at a path boundary (`""` for an exact match). A prefix
/// `*.example.com` matches a host under example.com, as containers/image matches it: the rest is
/// what follows the host.
fn strip_prefix<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    if let Some(domain) = prefix.strip_prefix('*') {
        let host_end = name.find('/').unwrap_or(name.len());
        let host = name[..host_end].split(':').next().unwrap_or_default();
        return (host.ends_with(domain) && host.len() > domain.len()).then(|| &name[host.len()..]);
    }
    let prefix = prefix.trim_end_matches('/');
    let rest = name.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The length by which matches of `prefix` are ranked (longest wins): a wildcard ranks by the host
/// it matched, as containers/image ranks it.
fn match_len(name: &str, prefix: &str) -> usize {
    match strip_prefix(name, prefix) {
        Some(rest) => name.len() - rest.len(),
        None => 0,
    }
}

/// The registry a prefix names, normalized (`index.docker.io`, `registry-1.docker.io` → docker.io).
fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim().trim_end_matches('/');
    let (host, rest) = p.split_once('/').map_or((p, ""), |(h, r)| (h, r));
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    };
    if rest.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{rest}")
    }
}

impl Mirrors {
    /// Parses `SRC=DEST` items (flags and `HOIST_REGISTRY_MIRRORS`).
    pub fn from_pairs<S: AsRef<str>>(items: impl IntoIterator<Item = S>, what: &str) -> Result<Mirrors> {
        let mut rules = Vec::new();
        for item in items {
            let item = item.as_ref().trim();
            if item.is_empty() {
                continue;
            }
            let Some((src, dest)) = item.split_once('=').filter(|(s, d)| !s.trim().is_empty() && !d.trim().is_empty())
            else {
                return Err(Error::usage(format!("{what} {item:?}: expected SRC=DEST"))
                    .with_hint("e.g. docker.io=harbor.example.com/dockerhub-proxy"));
            };
            let dest = dest.trim().trim_end_matches('/');
            if dest.contains("://") {
                return Err(Error::usage(format!("{what} {item:?}: DEST is host[:port][/path], without a scheme")));
            }
            rules.push(Rule {
                prefix: normalize_prefix(src),
                mirrors: vec![Mirror { location: dest.to_string(), digest_only: false, insecure: false }],
                location: None,
                from_conf: false,
                by_digest_only: false,
                blocked: None,
                insecure: false,
            });
        }
        Ok(Mirrors { rules })
    }

    /// Parses a containers `registries.conf` (the subset of TOML it uses: `[[registry]]`,
    /// `[[registry.mirror]]`, `key = "string"` / `true` / `false`; other tables and keys are
    /// skipped). `file` names it in errors.
    pub fn from_registries_conf(text: &str, file: &str) -> Result<Mirrors> {
        let mut rules: Vec<Rule> = Vec::new();
        #[derive(PartialEq)]
        enum Section {
            Other,
            Registry,
            Mirror,
        }
        let mut section = Section::Other;
        let mut in_array = false;
        for (n, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim();
            let err = |m: &str| Error::usage(format!("{file}:{}: {m}", n + 1));
            if in_array {
                in_array = !line.ends_with(']');
                continue;
            }
            if line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                section = match line.replace(' ', "").as_str() {
                    "[[registry]]" => {
                        rules.push(Rule {
                            prefix: String::new(),
                            mirrors: Vec::new(),
                            location: None,
                            from_conf: true,
                            by_digest_only: false,
                            blocked: None,
                            insecure: false,
                        });
                        Section::Registry
                    }
                    "[[registry.mirror]]" => {
                        let r = rules.last_mut().ok_or_else(|| err("[[registry.mirror]] before any [[registry]]"))?;
                        r.mirrors.push(Mirror { location: String::new(), digest_only: false, insecure: false });
                        Section::Mirror
                    }
                    _ => Section::Other,
                };
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { return Err(err("expected key = value")) };
            let (key, value) = (key.trim().trim_matches('"'), value.trim());
            if value.starts_with('[') && !value.ends_with(']') {
                in_array = true;
                continue;
            }
            if section == Section::Other {
                continue;
            }
            let rule = rules.last_mut().expect("a [[registry]] is open");
            let string = || parse_string(value).ok_or_else(|| err(&format!("{key}: expected a quoted string")));
            let boolean = || match value {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(err(&format!("{key}: expected true or false"))),
            };
            match (&section, key) {
                (Section::Registry, "prefix") => rule.prefix = string()?,
                (Section::Registry, "location") => rule.location = Some(string()?),
                (Section::Registry, "mirror-by-digest-only") => rule.by_digest_only = boolean()?,
                (Section::Registry, "blocked") => rule.blocked = boolean()?.then(|| file.to_string()),
                (Section::Registry, "insecure") => rule.insecure = boolean()?,
                (Section::Mirror, "insecure") => rule.mirrors.last_mut().expect("mirror").insecure = boolean()?,
                (Section::Mirror, "location") => rule.mirrors.last_mut().expect("mirror").location = string()?,
                (Section::Mirror, "pull-from-mirror") => {
                    rule.mirrors.last_mut().expect("mirror").digest_only = string()? == "digest-only"
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for mut r in rules {
            if r.prefix.is_empty() {
                r.prefix = r.location.clone().unwrap_or_default();
            }
            if r.prefix.is_empty() {
                return Err(Error::usage(format!("{file}: a [[registry]] has neither prefix nor location")));
            }
            if let Some(domain) = r.prefix.strip_prefix("*.") {
                // containers/image: a wildcard names hosts only, and has no location of its own.
                if domain.is_empty() || domain.contains('/') {
                    return Err(Error::usage(format!(
                        "{file}: prefix {:?}: a wildcard names hosts only (*.example.com)",
                        r.prefix
                    )));
                }
                if r.location.is_some() {
                    return Err(Error::usage(format!(
                        "{file}: prefix {:?}: a wildcard prefix takes no location",
                        r.prefix
                    )));
                }
            } else {
                r.prefix = normalize_prefix(&r.prefix);
            }
            r.location = r.location.as_deref().map(normalize_prefix);
            r.mirrors.retain(|m| !m.location.is_empty());
            out.push(r);
        }
        Ok(Mirrors { rules: out })
    }

    /// Everything in effect: `flags`, then `HOIST_REGISTRY_MIRRORS`, then the registries.conf
    /// `CONTAINERS_REGISTRIES_CONF` names (which must exist), else the system one when present.
    pub fn load(flags: &[String], env: &dyn Env) -> Result<Mirrors> {
        let mut m = Mirrors::from_pairs(flags, "--registry-mirror")?;
        if let Some(v) = env.non_empty(vars::HOIST_REGISTRY_MIRRORS) {
            m.rules.extend(Mirrors::from_pairs(v.split(','), vars::HOIST_REGISTRY_MIRRORS)?.rules);
        }
        let (path, required) = match env.non_empty(vars::CONTAINERS_REGISTRIES_CONF) {
            Some(p) => (p, true),
            None => (SYSTEM_REGISTRIES_CONF.to_string(), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => m.rules.extend(Mirrors::from_registries_conf(&text, &path)?.rules),
            Err(e) if required => {
                return Err(Error::usage(format!("reading {path} (CONTAINERS_REGISTRIES_CONF): {e}")))
            }
            Err(_) => {}
        }
        Ok(m)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Hosts registries.conf marks `insecure = true` (a registry's origin, or a mirror): they may be
    /// reached with an unverified certificate, or over plain HTTP when HTTPS fails. A wildcard rule
    /// gives its `*.example.com` pattern (see [`crate::registry::ClientOptions::is_insecure_host`]).
    pub fn insecure_hosts(&self) -> Vec<String> {
        let host = |l: &str| crate::model::api_host(l.split('/').next().unwrap_or_default()).to_string();
        let mut out = Vec::new();
        for r in self.rules.iter().filter(|r| r.from_conf) {
            if r.insecure {
                out.push(match r.location.as_deref() {
                    Some(l) => host(l),
                    None if r.prefix.starts_with("*.") => r.prefix.clone(),
                    None => host(&r.prefix),
                });
            }
            out.extend(r.mirrors.iter().filter(|m| m.insecure).map(|m| host(&m.location)));
        }
        out.sort();
        out.dedup();
        out
    }

    /// Where to look for `r`, in order: mirrors, then the origin (last, always there). An image
    /// registries.conf blocks is refused.
    pub fn candidates(&self, r: &Reference) -> Result<Vec<Reference>> {
        let name = full_name(r);
        let suffix = match (r.tag(), r.digest()) {
            (_, Some(d)) => format!("@{d}"),
            (Some(t), None) => format!(":{t}"),
            (None, None) => String::new(),
        };
        let rebuild = |location: &str, rest: &str| -> Option<Reference> {
            format!("{}{rest}{suffix}", location.trim_end_matches('/')).parse::<Reference>().ok()
        };
        let mut out: Vec<Reference> = Vec::new();
        let mut origin = r.clone();
        // Flags and environment: every match, in order.
        for rule in self.rules.iter().filter(|x| !x.from_conf) {
            if let Some(rest) = strip_prefix(&name, &rule.prefix) {
                out.extend(rule.mirrors.iter().filter_map(|m| rebuild(&m.location, rest)));
            }
        }
        // registries.conf: the longest matching prefix only.
        let conf = self
            .rules
            .iter()
            .filter(|x| x.from_conf)
            .filter_map(|x| strip_prefix(&name, &x.prefix).map(|rest| (x, rest)))
            .max_by_key(|(x, _)| match_len(&name, &x.prefix));
        if let Some((rule, rest)) = conf {
            if let Some(file) = &rule.blocked {
                return Err(Error::usage(format!("pulling {r}: registry {} is blocked in {file}", rule.prefix))
                    .with_hint("registries.conf says `blocked = true` for it: use another image, or change that file (CONTAINERS_REGISTRIES_CONF names it)"));
            }
            let by_digest = r.digest().is_some();
            out.extend(
                rule.mirrors
                    .iter()
                    .filter(|m| by_digest || !(m.digest_only || rule.by_digest_only))
                    .filter_map(|m| rebuild(&m.location, rest)),
            );
            if let Some(o) = rule.location.as_deref().and_then(|l| rebuild(l, rest)) {
                origin = o;
            }
        }
        out.push(origin);
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| seen.insert(c.to_string()));
        Ok(out)
    }
}

fn strip_comment(line: &str) -> &str {
    let mut in_str = None;
    for (i, c) in line.char_indices() {
        match (c, in_str) {
            ('"' | '\'', None) => in_str = Some(c),
            (q, Some(open)) if q == open => in_str = None,
            ('#', None) => return &line[..i],
            _ => {}
        }
    }
    line
}

fn parse_string(v: &str) -> Option<String> {
    let v = v.trim();
    if v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\''))) {
        Some(v[1..v.len() - 1].to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::MapEnv;

    fn names(m: &Mirrors, r: &str) -> Vec<String> {
        m.candidates(&r.parse().unwrap()).unwrap().iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn flag_pairs_rewrite_at_path_boundaries_mirror_first() {
        let m = Mirrors::from_pairs(
            [
                "docker.io=harbor.example.com/dh",
                "gcr.io=harbor.example.com/gcr/",
                "quay.io/prometheus=mirror.local:5000",
            ],
            "--registry-mirror",
        )
        .unwrap();
        assert_eq!(names(&m, "node:20"), ["harbor.example.com/dh/library/node:20", "docker.io/library/node:20"]);
        let d = "a".repeat(64);
        assert_eq!(
            names(&m, &format!("gcr.io/distroless/static@sha256:{d}")),
            [
                format!("harbor.example.com/gcr/distroless/static@sha256:{d}"),
                format!("gcr.io/distroless/static@sha256:{d}")
            ]
        );
        assert_eq!(
            names(&m, "quay.io/prometheus/busybox:latest"),
            ["mirror.local:5000/busybox:latest", "quay.io/prometheus/busybox:latest"]
        );
        assert_eq!(names(&m, "quay.io/prometheusx/busybox:1"), ["quay.io/prometheusx/busybox:1"], "a path boundary");
        assert_eq!(names(&m, "ghcr.io/a/b:1"), ["ghcr.io/a/b:1"]);
        assert!(Mirrors::from_pairs(["nodest="], "x").is_err());
        assert!(Mirrors::from_pairs(["docker.io=https://h/x"], "x").is_err());
    }

    #[test]
    fn registries_conf_longest_prefix_location_and_digest_only() {
        let conf = r#"
# containers-registries.conf(5)
unqualified-search-registries = ["docker.io",
  "quay.io"]

[[registry]]
prefix = "docker.io"
location = "registry-1.docker.io"   # the real origin
[[registry.mirror]]
location = "mirror.a/dh"
[[registry.mirror]]
location = "mirror.b/dh"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "docker.io/library/node"
location = "docker.io/library/node"
[[registry.mirror]]
location = "mirror.node/node"

[[registry]]
location = "gcr.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = 'gmirror:5000/gcr'

"#;
        let m = Mirrors::from_registries_conf(conf, "registries.conf").unwrap();
        assert_eq!(names(&m, "alpine:3"), ["mirror.a/dh/library/alpine:3", "docker.io/library/alpine:3"]);
        let d = "a".repeat(64);
        assert_eq!(
            names(&m, &format!("alpine@sha256:{d}")),
            [
                format!("mirror.a/dh/library/alpine@sha256:{d}"),
                format!("mirror.b/dh/library/alpine@sha256:{d}"),
                format!("docker.io/library/alpine@sha256:{d}")
            ]
        );
        assert_eq!(names(&m, "node:20"), ["mirror.node/node:20", "docker.io/library/node:20"], "longest prefix wins");
        assert_eq!(names(&m, "gcr.io/distroless/static:nonroot"), ["gcr.io/distroless/static:nonroot"], "digest only");
        assert_eq!(names(&m, &format!("gcr.io/d/s@sha256:{d}"))[0], format!("gmirror:5000/gcr/d/s@sha256:{d}"));
        let e = Mirrors::from_registries_conf("[[registry]]\nprefix = docker.io\n", "r.conf").unwrap_err();
        assert!(e.to_string().contains("r.conf:2: prefix: expected a quoted string"), "{e}");
        assert!(Mirrors::from_registries_conf("[[registry.mirror]]\n", "r.conf").is_err());
    }

    #[test]
    fn registries_conf_wildcards_blocked_and_insecure_as_containers_image() {
        let conf = r#"
[[registry]]
prefix = "*.example.com"
[[registry.mirror]]
location = "mirror.local/ex"
insecure = true

[[registry]]
prefix = "*.corp.example.com"
blocked = true

[[registry]]
prefix = "docker.io/evil"
location = "docker.io/evil"
blocked = true
[[registry.mirror]]
location = "mirror.local/evil"

[[registry]]
location = "old.internal:5000"
insecure = true
"#;
        let m = Mirrors::from_registries_conf(conf, "/etc/containers/registries.conf").unwrap();
        // A wildcard matches hosts under the domain, the rest of the name after the host.
        assert_eq!(names(&m, "a.example.com/team/app:1"), ["mirror.local/ex/team/app:1", "a.example.com/team/app:1"]);
        assert_eq!(names(&m, "b.a.example.com/x:2")[0], "mirror.local/ex/x:2");
        assert_eq!(names(&m, "example.com/x:1"), ["example.com/x:1"], "not the domain itself");
        assert_eq!(names(&m, "badexample.com/x:1"), ["badexample.com/x:1"]);
        // blocked: the pull is refused, mirrors included, naming the file; the longest match decides.
        let e = m.candidates(&"h.corp.example.com/x:1".parse().unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("registry *.corp.example.com is blocked in /etc/containers/registries.conf"),
            "{e}"
        );
        assert!(m.candidates(&"docker.io/evil/x:1".parse().unwrap()).is_err());
        assert_eq!(names(&m, "docker.io/evilx/y:1"), ["docker.io/evilx/y:1"], "a path boundary");
        // insecure: the registry's own host and the mirrors marked so.
        assert_eq!(m.insecure_hosts(), ["mirror.local", "old.internal:5000"]);
        let opts = crate::registry::ClientOptions {
            insecure_hosts: vec!["*.example.com".into(), "old.internal:5000".into()],
            ..Default::default()
        };
        assert!(opts.is_insecure_host("a.example.com:443") && opts.is_insecure_host("old.internal:5000"));
        assert!(!opts.is_insecure_host("example.com") && !opts.is_insecure_host("old.internal"));
        // What containers/image refuses too.
        assert!(Mirrors::from_registries_conf("[[registry]]\nprefix = \"*.x.io\"\nlocation = \"y.io\"\n", "r").is_err());
        assert!(Mirrors::from_registries_conf("[[registry]]\nprefix = \"*.x.io/path\"\n", "r").is_err());
        assert!(Mirrors::from_registries_conf("[[registry]]\nprefix = \"a.io\"\nblocked = yes\n", "r").is_err());
    }

    #[test]
    fn load_orders_flags_env_then_conf() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("registries.conf");
        std::fs::write(
            &conf,
            "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"conf.mirror\"\n",
        )
        .unwrap();
        let env = MapEnv::new([
            ("HOIST_REGISTRY_MIRRORS", "docker.io=env.mirror, gcr.io=env.gcr"),
            ("CONTAINERS_REGISTRIES_CONF", conf.to_str().unwrap()),
        ]);
        let m = Mirrors::load(&["docker.io=flag.mirror".to_string()], &env).unwrap();
        assert_eq!(
            names(&m, "busybox"),
            [
                "flag.mirror/library/busybox:latest",
                "env.mirror/library/busybox:latest",
                "conf.mirror/library/busybox:latest",
                "docker.io/library/busybox:latest"
            ]
        );
        let env = MapEnv::new([("CONTAINERS_REGISTRIES_CONF", "/nonexistent/registries.conf")]);
        assert!(Mirrors::load(&[], &env).unwrap_err().to_string().contains("CONTAINERS_REGISTRIES_CONF"));
    }
}
