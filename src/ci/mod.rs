//! The CI environment: every environment variable hoist reads is named in [`vars`], and read through
//! the [`Env`] trait so tests pass a map instead of mutating the process environment.

pub mod chart_dest;
pub mod context;
pub mod robot;
pub mod vars;

use std::collections::HashMap;

/// Read access to environment variables.
pub trait Env: Send + Sync {
    fn var(&self, name: &str) -> Option<String>;
    /// A variable that is set and not empty.
    fn non_empty(&self, name: &str) -> Option<String> {
        self.var(name).filter(|v| !v.is_empty())
    }
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed map, for tests.
#[derive(Debug, Default, Clone)]
pub struct MapEnv(pub HashMap<String, String>);

impl MapEnv {
    pub fn new<const N: usize>(pairs: [(&str, &str); N]) -> MapEnv {
        MapEnv(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// The Harbor registry's `host[:port]` and the variable it came from: `HARBOR_URL`'s (it keeps the port),
/// else `HARBOR_HOST`'s (no port). The one reading of GitLab's Harbor integration for the CI destination,
/// the chart destination and the Harbor credentials.
pub fn harbor_host(env: &dyn Env) -> Option<(String, &'static str)> {
    [vars::HARBOR_URL, vars::HARBOR_HOST]
        .into_iter()
        .find_map(|var| env.non_empty(var).map(|v| host_of(&v)).filter(|h| !h.is_empty()).map(|h| (h, var)))
}

/// `host[:port]` of a URL or host string: `https://harbor.example.com:8443/` → `harbor.example.com:8443`.
pub fn host_of(url_or_host: &str) -> String {
    let s = url_or_host.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let s = s.split('/').next().unwrap_or(s);
    // user@host is never meant here, but don't let it leak into a host name.
    let s = s.rsplit_once('@').map_or(s, |(_, h)| h);
    s.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_scheme_path_and_case() {
        assert_eq!(host_of("https://Harbor.example.com/"), "harbor.example.com");
        assert_eq!(host_of("https://harbor.example.com:8443/x/y"), "harbor.example.com:8443");
        assert_eq!(host_of("registry.gitlab.com"), "registry.gitlab.com");
        assert_eq!(host_of("oci://h.io:5000"), "h.io:5000");
    }
}
