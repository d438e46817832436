//! The GitLab CI context: what a job's variables say about where an image goes, which tags it gets and
//! which OCI metadata it carries — so that `hoist build` in a job needs no flags at all.
//!
//! Everything here is pure and reads through [`Env`], so the unit tests below are maps of variables:
//! - **destination** ([`CiContext::destinations`]): `-t` as given; a `-t NAME[:TAG]` without a host goes
//!   under the Harbor project (or `$CI_REGISTRY_IMAGE/NAME`); no `-t` at all means Harbor
//!   (`HARBOR_URL`'s `host[:port]`, else `HARBOR_HOST`, then `/$HARBOR_PROJECT/<--name or CI_PROJECT_NAME>`),
//!   else `$CI_REGISTRY_IMAGE`, else an error that says what to set;
//! - **tags** ([`TagPolicy`], [`CiContext::tags`]): the short SHA, the branch slug, `latest` on the default
//!   branch, `X.Y.Z`/`X.Y`/`X` on a release tag (the exact version only for pre-releases), `mr-<iid>` in
//!   merge-request pipelines — every one checked against the OCI tag grammar and slugged when it fails;
//! - **metadata** ([`CiContext::metadata`]): `org.opencontainers.image.*` annotations and labels from the
//!   project and commit (`ref.name` is left to OCI layouts' `index.json`, where the image spec puts it);
//! - **warnings** ([`CiContext::warnings`]): a `HARBOR_USERNAME` that variable expansion ate.

use std::collections::BTreeMap;

use super::{vars, Env};
use crate::error::{Error, Result};
use crate::model::{validate_tag, Reference};

/// OCI annotation keys hoist fills from CI.
pub mod keys {
    pub const SOURCE: &str = "org.opencontainers.image.source";
    pub const URL: &str = "org.opencontainers.image.url";
    pub const REVISION: &str = "org.opencontainers.image.revision";
    pub const CREATED: &str = "org.opencontainers.image.created";
    pub const VERSION: &str = "org.opencontainers.image.version";
    pub const TITLE: &str = "org.opencontainers.image.title";
}

/// Which tags CI pipelines get when `-t` names none. `--tag-policy` edits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagPolicy {
    /// `$CI_COMMIT_SHORT_SHA`, in every pipeline.
    pub sha: bool,
    /// `$CI_COMMIT_REF_SLUG` on branch pipelines (`ref` in `--tag-policy`).
    pub slug: bool,
    /// `latest` when `$CI_COMMIT_BRANCH` is `$CI_DEFAULT_BRANCH`.
    pub latest: bool,
    /// The git tag's version: `1.2.3` for `v1.2.3`, `1.2.3-rc.1` for a pre-release, the tag itself otherwise.
    pub version: bool,
    /// The floating `X.Y` and `X` of a release tag `vX.Y.Z` (never for pre-releases).
    pub semver: bool,
    /// `mr-<iid>` in merge-request pipelines.
    pub mr: bool,
}

impl Default for TagPolicy {
    fn default() -> Self {
        TagPolicy { sha: true, slug: true, latest: true, version: true, semver: true, mr: true }
    }
}

impl TagPolicy {
    /// The names `--tag-policy` accepts.
    pub const NAMES: [&'static str; 6] = ["sha", "ref", "latest", "version", "semver", "mr"];

    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "sha" => &mut self.sha,
            "ref" => &mut self.slug,
            "latest" => &mut self.latest,
            "version" => &mut self.version,
            "semver" => &mut self.semver,
            "mr" => &mut self.mr,
            _ => return None,
        })
    }

    /// `sha,version` (exactly these), `-latest,-ref` (the default without these), `default`, `none`.
    pub fn parse(s: &str) -> Result<TagPolicy> {
        let items: Vec<&str> = s.split(',').map(str::trim).filter(|i| !i.is_empty()).collect();
        let subtractive = items.iter().all(|i| i.starts_with('-'));
        let mut p = if subtractive || items.contains(&"default") {
            TagPolicy::default()
        } else {
            TagPolicy { sha: false, slug: false, latest: false, version: false, semver: false, mr: false }
        };
        for item in items {
            if item == "default" || item == "none" {
                continue;
            }
            let (on, name) = match item.strip_prefix('-') {
                Some(n) => (false, n),
                None => (true, item.strip_prefix('+').unwrap_or(item)),
            };
            *p.flag(name).ok_or_else(|| {
                Error::usage(format!("--tag-policy: unknown item {item:?}")).with_hint(format!(
                    "use {}, default or none; -NAME removes one from the default",
                    Self::NAMES.join(", ")
                ))
            })? = on;
        }
        Ok(p)
    }
}

/// Where the Harbor integration points, when its variables are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Harbor {
    /// `host[:port]`: from `HARBOR_URL` when set (it keeps the port), else `HARBOR_HOST`.
    pub registry: String,
    pub project: String,
}

/// What the job's variables say.
#[derive(Debug, Clone)]
pub struct CiContext {
    pub harbor: Option<Harbor>,
    /// `$CI_REGISTRY_IMAGE` (GitLab's container registry path of this project).
    pub registry_image: Option<String>,
    /// `--name`, else `$CI_PROJECT_NAME` (made a valid repository component).
    pub name: Option<String>,
    pub short_sha: Option<String>,
    pub sha: Option<String>,
    pub ref_name: Option<String>,
    pub ref_slug: Option<String>,
    pub branch: Option<String>,
    pub default_branch: Option<String>,
    pub git_tag: Option<String>,
    pub mr_iid: Option<String>,
    pub project_url: Option<String>,
    pub project_title: Option<String>,
    /// `GITLAB_CI=true`.
    pub in_gitlab: bool,
    warnings: Vec<String>,
    missing_harbor: Option<&'static str>,
}

impl CiContext {
    /// Reads the context; `name` is `--name`.
    pub fn from_env(env: &dyn Env, name: Option<&str>) -> CiContext {
        let get = |k: &str| env.non_empty(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let registry = super::harbor_host(env).map(|(host, _)| host);
        let project = get(vars::HARBOR_PROJECT);
        let missing_harbor = match (&registry, &project) {
            (Some(_), None) => Some(vars::HARBOR_PROJECT),
            (None, Some(_)) => Some("HARBOR_URL or HARBOR_HOST"),
            _ => None,
        };
        let harbor = match (registry, project) {
            (Some(registry), Some(project)) if !registry.is_empty() => Some(Harbor { registry, project }),
            _ => None,
        };
        let mut warnings = Vec::new();
        if let Some(user) = get(vars::HARBOR_USERNAME) {
            // GitLab's `robot$$` escape is accepted as it is (collapsed by the credential lookup); only a
            // name that expansion ate is worth a warning.
            let user = super::robot::normalize_harbor_username(&user);
            if let Some(issue) = super::robot::robot_name_issue(&user) {
                warnings.push(format!("HARBOR_USERNAME: {issue}"));
            }
        }
        let sha = get(vars::CI_COMMIT_SHA);
        let short_sha = get(vars::CI_COMMIT_SHORT_SHA).or_else(|| sha.as_ref().map(|s| s.chars().take(8).collect()));
        CiContext {
            harbor,
            registry_image: get(vars::CI_REGISTRY_IMAGE).map(|s| s.to_ascii_lowercase()),
            name: name.map(str::to_string).or_else(|| get(vars::CI_PROJECT_NAME)).map(|n| repo_component(&n)),
            short_sha,
            sha,
            ref_name: get(vars::CI_COMMIT_REF_NAME),
            ref_slug: get(vars::CI_COMMIT_REF_SLUG),
            branch: get(vars::CI_COMMIT_BRANCH),
            default_branch: get(vars::CI_DEFAULT_BRANCH),
            git_tag: get(vars::CI_COMMIT_TAG),
            mr_iid: get(vars::CI_MERGE_REQUEST_IID),
            project_url: get(vars::CI_PROJECT_URL),
            project_title: get(vars::CI_PROJECT_TITLE),
            in_gitlab: get(vars::GITLAB_CI).is_some_and(|v| v == "true"),
            warnings,
            missing_harbor,
        }
    }

    /// Warnings to print before any work (eaten robot names).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The repository (`host[:port]/path`, no tag) images go to when no `-t` is given.
    pub fn default_repository(&self) -> Result<String> {
        if let Some(h) = &self.harbor {
            let name = self.name.as_deref().ok_or_else(|| {
                Error::usage("no image name for the Harbor project")
                    .with_hint("pass --name NAME or -t NAME[:TAG] (CI_PROJECT_NAME is not set)")
            })?;
            return Ok(format!("{}/{}/{name}", h.registry, h.project));
        }
        if let Some(img) = &self.registry_image {
            return Ok(img.clone());
        }
        let hint = match self.missing_harbor {
            Some(missing) => format!("the Harbor integration looks half set: {missing} is missing"),
            None => "pass -t HOST/REPOSITORY[:TAG] (hoist build: or --output oci:DIR); in GitLab CI turn on the Harbor integration (HARBOR_URL or \
                     HARBOR_HOST, and HARBOR_PROJECT) or the project's container registry (CI_REGISTRY_IMAGE)"
                .to_string(),
        };
        Err(Error::usage("no destination: -t was not given and no CI registry is set").with_hint(hint))
    }

    /// The tags a pipeline gets under `policy`, in order, each valid (slugged when not), no duplicates.
    /// Outside CI (no commit variables) this is `latest`.
    pub fn tags(&self, policy: &TagPolicy) -> Vec<String> {
        let mut raw: Vec<String> = Vec::new();
        if policy.sha {
            raw.extend(self.short_sha.clone());
        }
        if let Some(iid) = &self.mr_iid {
            if policy.mr {
                raw.push(format!("mr-{iid}"));
            }
        } else if let Some(tag) = &self.git_tag {
            match SemVer::parse(tag) {
                Some(v) if v.pre.is_none() && v.build.is_none() => {
                    if policy.version {
                        raw.push(format!("{}.{}.{}", v.major, v.minor, v.patch));
                    }
                    if policy.semver {
                        raw.push(format!("{}.{}", v.major, v.minor));
                        raw.push(v.major.to_string());
                    }
                }
                Some(v) if policy.version => raw.push(v.exact()),
                None if policy.version => raw.push(tag.clone()),
                _ => {}
            }
        } else if let Some(branch) = &self.branch {
            if policy.slug {
                raw.push(self.ref_slug.clone().unwrap_or_else(|| ref_slug(branch)));
            }
            if policy.latest && self.default_branch.as_deref() == Some(branch.as_str()) {
                raw.push("latest".into());
            }
        }
        let in_ci = self.sha.is_some() || self.branch.is_some() || self.git_tag.is_some() || self.mr_iid.is_some();
        if !in_ci && raw.is_empty() {
            raw.push("latest".into());
        }
        let mut out: Vec<String> = Vec::new();
        for t in raw.into_iter().map(|t| tag_slug(&t)) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// Resolves `-t` values (or their absence) to references, applying CI tags to those without a tag.
    /// `extra` tags are added to every repository.
    pub fn destinations(&self, given: &[String], policy: &TagPolicy, extra: &[String]) -> Result<Vec<Reference>> {
        // (repository, explicit tag?)
        let mut repos: Vec<(String, Option<String>)> = Vec::new();
        if given.is_empty() {
            repos.push((self.default_repository()?, None));
        }
        for g in given {
            let (name, tag) = split_tag(g);
            let name = match (has_host(name), &self.harbor, &self.registry_image) {
                (true, _, _) => name.to_string(),
                (false, Some(h), _) => format!("{}/{}/{name}", h.registry, h.project),
                (false, None, Some(img)) => format!("{img}/{name}"),
                (false, None, None) => name.to_string(),
            };
            repos.push((name, tag.map(str::to_string)));
        }
        let ci_tags = self.tags(policy);
        let mut out: Vec<Reference> = Vec::new();
        for (name, tag) in repos {
            let mut tags: Vec<String> = match tag {
                Some(t) => vec![t],
                // Nothing from the policy and no extra tag: `latest` rather than no tag at all.
                None if ci_tags.is_empty() && extra.is_empty() => vec!["latest".to_string()],
                None => ci_tags.clone(),
            };
            for e in extra {
                let e = tag_slug(e);
                if !tags.contains(&e) {
                    tags.push(e);
                }
            }
            if name.contains('@') {
                out.push(name.parse()?);
                continue;
            }
            for t in tags {
                let r: Reference = format!("{name}:{t}").parse()?;
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The version annotation: the git tag (without a leading `v` when it is semver), else the ref name.
    pub fn version(&self) -> Option<String> {
        match &self.git_tag {
            Some(t) => Some(SemVer::parse(t).map_or_else(|| t.clone(), |v| v.exact_raw())),
            None => self.ref_name.clone().or_else(|| self.branch.clone()),
        }
    }

    /// `org.opencontainers.image.*` values for annotations and labels; `created` is the build epoch
    /// (SOURCE_DATE_EPOCH, else CI_COMMIT_TIMESTAMP) when in CI.
    pub fn metadata(&self, created: Option<String>) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                m.insert(k.to_string(), v);
            }
        };
        put(keys::SOURCE, self.project_url.clone());
        put(keys::URL, self.project_url.clone());
        put(keys::REVISION, self.sha.clone());
        put(keys::VERSION, self.version());
        put(keys::TITLE, self.project_title.clone());
        if self.sha.is_some() {
            put(keys::CREATED, created);
        }
        m
    }
}

/// Splits `NAME[:TAG]` (a `@digest` stays with the name): the tag only when the last path part has one.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    if s.contains('@') {
        return (s, None);
    }
    let last = s.rfind('/').map_or(0, |i| i + 1);
    match s[last..].rfind(':') {
        Some(i) => (&s[..last + i], Some(&s[last + i + 1..])),
        None => (s, None),
    }
}

/// Whether a name's first path part is a registry host (docker's rule: it has a `.` or `:`, or is `localhost`).
fn has_host(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// GitLab's `CI_COMMIT_REF_SLUG` rule: lowercase, `[^0-9a-z]` → `-`, at most 63, no `-` at the ends.
pub fn ref_slug(s: &str) -> String {
    let lowered: String =
        s.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let cut: String = lowered.chars().take(63).collect();
    cut.trim_matches('-').to_string()
}

/// A tag as given when it is valid; otherwise made valid: characters outside `[A-Za-z0-9_.-]` become `-`,
/// a leading `.`/`-` is dropped, at most 128 characters (an empty result becomes `_`).
pub fn tag_slug(t: &str) -> String {
    if validate_tag(t).is_ok() {
        return t.to_string();
    }
    let mapped: String = t
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' { c } else { '-' })
        .collect();
    let trimmed = mapped.trim_start_matches(['.', '-']);
    let cut: String = trimmed.chars().take(128).collect();
    if cut.is_empty() {
        "_".into()
    } else {
        cut
    }
}

/// A repository path component: lowercase `[a-z0-9]` runs joined by `.`, `_` or `-`.
fn repo_component(s: &str) -> String {
    let mapped: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' { c } else { '-' })
        .collect();
    mapped.trim_matches(['.', '_', '-']).to_string()
}

/// `vX.Y.Z[-pre][+build]` or `X.Y.Z…` (semver 2.0 core: numbers without leading zeros).
#[derive(Debug, PartialEq, Eq)]
struct SemVer {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Option<String>,
    build: Option<String>,
}

impl SemVer {
    fn parse(s: &str) -> Option<SemVer> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let (s, build) = match s.split_once('+') {
            Some((a, b)) => (a, Some(b.to_string())),
            None => (s, None),
        };
        let (core, pre) = match s.split_once('-') {
            Some((a, b)) => (a, Some(b.to_string())),
            None => (s, None),
        };
        let ok_ident = |x: &str| {
            !x.is_empty()
                && x.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        };
        if pre.as_deref().is_some_and(|p| !ok_ident(p)) || build.as_deref().is_some_and(|b| !ok_ident(b)) {
            return None;
        }
        let nums: Vec<&str> = core.split('.').collect();
        if nums.len() != 3 {
            return None;
        }
        let num = |p: &str| -> Option<u64> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || (p.len() > 1 && p.starts_with('0')) {
                None
            } else {
                p.parse().ok()
            }
        };
        Some(SemVer { major: num(nums[0])?, minor: num(nums[1])?, patch: num(nums[2])?, pre, build })
    }

    /// `1.2.3-rc.1+b5` as written, without the `v`.
    fn exact_raw(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if let Some(p) = &self.pre {
            s.push('-');
            s.push_str(p);
        }
        if let Some(b) = &self.build {
            s.push('+');
            s.push_str(b);
        }
        s
    }

    /// As a tag: `+` is not allowed in tags, so it becomes `_` (Helm's rule for chart versions).
    fn exact(&self) -> String {
        self.exact_raw().replace('+', "_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::MapEnv;

    fn ctx(pairs: &[(&str, &str)]) -> CiContext {
        let env = MapEnv(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        CiContext::from_env(&env, None)
    }

    fn dests(c: &CiContext, given: &[&str]) -> Vec<String> {
        let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
        c.destinations(&given, &TagPolicy::default(), &[]).unwrap().iter().map(|r| r.to_string()).collect()
    }

    const HARBOR: [(&str, &str); 6] = [
        ("HARBOR_URL", "https://harbor.example.com:8443/"),
        ("HARBOR_HOST", "harbor.example.com"),
        ("HARBOR_OCI", "oci://harbor.example.com:8443"),
        ("HARBOR_PROJECT", "team"),
        ("HARBOR_USERNAME", "robot$$team+ci"),
        ("HARBOR_PASSWORD", "s3cret"),
    ];

    const BRANCH: [(&str, &str); 9] = [
        ("GITLAB_CI", "true"),
        ("CI_PROJECT_NAME", "Web-App"),
        ("CI_PROJECT_URL", "https://gitlab.example.com/team/web-app"),
        ("CI_PROJECT_TITLE", "Web App"),
        ("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("CI_COMMIT_SHORT_SHA", "01234567"),
        ("CI_COMMIT_REF_NAME", "feature/Login"),
        ("CI_COMMIT_REF_SLUG", "feature-login"),
        ("CI_COMMIT_BRANCH", "feature/Login"),
    ];

    fn with(
        base: &[(&'static str, &'static str)],
        more: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = base.iter().filter(|(k, _)| !more.iter().any(|(m, _)| m == k)).cloned().collect();
        v.extend_from_slice(more);
        v
    }

    #[test]
    fn harbor_url_keeps_port_and_drops_trailing_slash() {
        let c = ctx(&with(&HARBOR, &BRANCH));
        assert_eq!(c.default_repository().unwrap(), "harbor.example.com:8443/team/web-app");
        assert_eq!(
            dests(&c, &[]),
            ["harbor.example.com:8443/team/web-app:01234567", "harbor.example.com:8443/team/web-app:feature-login"]
        );
    }

    #[test]
    fn harbor_url_without_port_or_slash_and_host_only() {
        let c = ctx(&with(&with(&HARBOR, &BRANCH), &[("HARBOR_URL", "https://Harbor.Example.com")]));
        assert_eq!(c.default_repository().unwrap(), "harbor.example.com/team/web-app");
        let c = ctx(&with(&with(&HARBOR, &BRANCH), &[("HARBOR_URL", "http://10.0.0.5:80/")]));
        assert_eq!(c.default_repository().unwrap(), "10.0.0.5:80/team/web-app");
        let no_url: Vec<_> = with(&HARBOR, &BRANCH).into_iter().filter(|(k, _)| *k != "HARBOR_URL").collect();
        assert_eq!(ctx(&no_url).default_repository().unwrap(), "harbor.example.com/team/web-app");
    }

    #[test]
    fn name_flag_beats_project_name() {
        let env = MapEnv(with(&HARBOR, &BRANCH).iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let c = CiContext::from_env(&env, Some("api"));
        assert_eq!(c.default_repository().unwrap(), "harbor.example.com:8443/team/api");
    }

    #[test]
    fn t_without_host_goes_under_the_harbor_project() {
        let c = ctx(&with(&HARBOR, &BRANCH));
        assert_eq!(dests(&c, &["worker:1.0"]), ["harbor.example.com:8443/team/worker:1.0"]);
        assert_eq!(
            dests(&c, &["worker"]),
            ["harbor.example.com:8443/team/worker:01234567", "harbor.example.com:8443/team/worker:feature-login"]
        );
        assert_eq!(dests(&c, &["other.io/x/y:2"]), ["other.io/x/y:2"]);
        assert_eq!(dests(&c, &["localhost:5000/y"]).len(), 2);
    }

    #[test]
    fn gitlab_registry_without_harbor() {
        let c = ctx(&with(&BRANCH, &[("CI_REGISTRY_IMAGE", "gitlab.example.com:5050/team/web-app")]));
        assert_eq!(
            dests(&c, &[]),
            ["gitlab.example.com:5050/team/web-app:01234567", "gitlab.example.com:5050/team/web-app:feature-login"]
        );
        assert_eq!(dests(&c, &["worker:1"]), ["gitlab.example.com:5050/team/web-app/worker:1"]);
    }

    #[test]
    fn harbor_beats_gitlab_registry() {
        let c = ctx(&with(&with(&HARBOR, &BRANCH), &[("CI_REGISTRY_IMAGE", "gitlab.example.com:5050/team/web-app")]));
        assert!(c.default_repository().unwrap().starts_with("harbor.example.com:8443/"));
    }

    #[test]
    fn neither_is_an_error_that_says_what_to_set() {
        let full = |e: Error| format!("{e} {}", e.hint().unwrap_or_default());
        let e = full(ctx(&BRANCH).default_repository().unwrap_err());
        assert!(e.contains("HARBOR_PROJECT") && e.contains("CI_REGISTRY_IMAGE") && e.contains("-t"), "{e}");
        let e = full(ctx(&[("HARBOR_HOST", "h.io")]).default_repository().unwrap_err());
        assert!(e.contains("HARBOR_PROJECT is missing"), "{e}");
        // Outside CI, -t with a host still works and tags default to latest.
        assert_eq!(dests(&ctx(&[]), &["r.io/a/b"]), ["r.io/a/b:latest"]);
        assert_eq!(dests(&ctx(&[]), &["alpine"]), ["docker.io/library/alpine:latest"]);
    }

    #[test]
    fn default_branch_gets_latest() {
        let c = ctx(&with(
            &BRANCH,
            &[
                ("CI_COMMIT_BRANCH", "main"),
                ("CI_COMMIT_REF_NAME", "main"),
                ("CI_COMMIT_REF_SLUG", "main"),
                ("CI_DEFAULT_BRANCH", "main"),
            ],
        ));
        assert_eq!(c.tags(&TagPolicy::default()), ["01234567", "main", "latest"]);
        let other = ctx(&with(&BRANCH, &[("CI_DEFAULT_BRANCH", "main")]));
        assert_eq!(other.tags(&TagPolicy::default()), ["01234567", "feature-login"]);
    }

    #[test]
    fn release_tag_gets_floating_versions() {
        let tag = [("CI_COMMIT_TAG", "v1.4.2"), ("CI_COMMIT_REF_NAME", "v1.4.2"), ("CI_COMMIT_REF_SLUG", "v1-4-2")];
        let mut vars = with(&BRANCH, &tag);
        vars.retain(|(k, _)| *k != "CI_COMMIT_BRANCH");
        let c = ctx(&vars);
        assert_eq!(c.tags(&TagPolicy::default()), ["01234567", "1.4.2", "1.4", "1"]);
        assert_eq!(c.version().as_deref(), Some("1.4.2"));
        let c = ctx(&with(&vars, &[("CI_COMMIT_TAG", "2.0.0")]));
        assert_eq!(c.tags(&TagPolicy::default()), ["01234567", "2.0.0", "2.0", "2"]);
    }

    #[test]
    fn pre_release_tag_gets_no_floating_tags() {
        let mut vars = with(&BRANCH, &[("CI_COMMIT_TAG", "v2.0.0-rc.1")]);
        vars.retain(|(k, _)| *k != "CI_COMMIT_BRANCH");
        assert_eq!(ctx(&vars).tags(&TagPolicy::default()), ["01234567", "2.0.0-rc.1"]);
        let c = ctx(&with(&vars, &[("CI_COMMIT_TAG", "v2.0.0+build.7")]));
        assert_eq!(c.tags(&TagPolicy::default()), ["01234567", "2.0.0_build.7"]);
        assert_eq!(c.version().as_deref(), Some("2.0.0+build.7"));
        // Not semver: the tag itself, slugged when it is no valid OCI tag.
        let c = ctx(&with(&vars, &[("CI_COMMIT_TAG", "release/2024 Q1")]));
        assert_eq!(c.tags(&TagPolicy::default()), ["01234567", "release-2024-Q1"]);
        let c = ctx(&with(&vars, &[("CI_COMMIT_TAG", "v01.2.3")]));
        assert_eq!(c.tags(&TagPolicy::default()), ["01234567", "v01.2.3"]);
    }

    #[test]
    fn merge_request_pipelines_get_mr_iid_only() {
        let mut vars = with(&BRANCH, &[("CI_MERGE_REQUEST_IID", "42"), ("CI_DEFAULT_BRANCH", "feature/Login")]);
        vars.retain(|(k, _)| *k != "CI_COMMIT_BRANCH");
        assert_eq!(ctx(&vars).tags(&TagPolicy::default()), ["01234567", "mr-42"]);
        // Even if a runner sets CI_COMMIT_BRANCH, an MR pipeline never gets the branch's tags.
        let c = ctx(&with(&BRANCH, &[("CI_MERGE_REQUEST_IID", "42"), ("CI_DEFAULT_BRANCH", "feature/Login")]));
        assert_eq!(c.tags(&TagPolicy::default()), ["01234567", "mr-42"]);
    }

    #[test]
    fn tag_policy_edits_the_set() {
        let c = ctx(&with(&BRANCH, &[("CI_DEFAULT_BRANCH", "feature/Login")]));
        assert_eq!(c.tags(&TagPolicy::parse("-latest").unwrap()), ["01234567", "feature-login"]);
        assert_eq!(c.tags(&TagPolicy::parse("latest").unwrap()), ["latest"]);
        assert_eq!(c.tags(&TagPolicy::parse("sha,ref").unwrap()), ["01234567", "feature-login"]);
        assert!(c.tags(&TagPolicy::parse("none").unwrap()).is_empty());
        assert!(TagPolicy::parse("sha,bogus").unwrap_err().to_string().contains("bogus"));
        assert_eq!(TagPolicy::parse("default,-mr").unwrap(), TagPolicy { mr: false, ..TagPolicy::default() });
        // With nothing left, a destination still gets `latest` rather than no tag at all.
        let given = vec!["r.io/a".to_string()];
        let d = c.destinations(&given, &TagPolicy::parse("none").unwrap(), &[]).unwrap();
        assert_eq!(d[0].to_string(), "r.io/a:latest");
        let d = c.destinations(&given, &TagPolicy::parse("none").unwrap(), &["only".into()]).unwrap();
        assert_eq!(d.iter().map(|r| r.to_string()).collect::<Vec<_>>(), ["r.io/a:only"]);
        let d =
            c.destinations(&given, &TagPolicy::parse("sha").unwrap(), &["stable".into(), "bad tag".into()]).unwrap();
        let d: Vec<String> = d.iter().map(|r| r.to_string()).collect();
        assert_eq!(d, ["r.io/a:01234567", "r.io/a:stable", "r.io/a:bad-tag"]);
    }

    #[test]
    fn every_tag_is_valid_or_slugged() {
        for (raw, want) in [("ok", "ok"), ("a/b", "a-b"), ("-x", "x"), (".x", "x"), ("aü", "a-"), ("ü", "_"), ("", "_")]
        {
            let got = tag_slug(raw);
            assert_eq!(got, want);
            assert!(validate_tag(&got).is_ok(), "{got}");
        }
        assert_eq!(tag_slug(&"a".repeat(200)).len(), 128);
        assert_eq!(ref_slug("Feature/ÜBER_long"), "feature--ber-long");
        // No short SHA given: the first 8 of CI_COMMIT_SHA.
        let c = ctx(&[("CI_COMMIT_SHA", "abcdef0123456789"), ("CI_COMMIT_BRANCH", "x")]);
        assert_eq!(c.tags(&TagPolicy::default()), ["abcdef01", "x"]);
    }

    #[test]
    fn robot_names_double_and_single_dollar_pass_eaten_ones_warn() {
        for ok in ["robot$$team+ci", "robot$team+ci", "robot$system"] {
            let c = ctx(&with(&HARBOR, &[("HARBOR_USERNAME", ok)]));
            assert!(c.warnings().is_empty(), "{ok}: {:?}", c.warnings());
        }
        for eaten in ["robot+ci", "robot$+ci", "team+ci"] {
            let c = ctx(&with(&HARBOR, &[("HARBOR_USERNAME", eaten)]));
            assert_eq!(c.warnings().len(), 1, "{eaten}");
            assert!(
                c.warnings()[0].starts_with("HARBOR_USERNAME:") && c.warnings()[0].contains("quote"),
                "{:?}",
                c.warnings()
            );
            assert!(!c.warnings()[0].contains("s3cret"));
        }
    }

    #[test]
    fn metadata_from_the_project_and_commit() {
        let c = ctx(&with(&HARBOR, &BRANCH));
        let m = c.metadata(Some("2024-01-01T00:00:00Z".into()));
        assert_eq!(m[keys::SOURCE], "https://gitlab.example.com/team/web-app");
        assert_eq!(m[keys::URL], "https://gitlab.example.com/team/web-app");
        assert_eq!(m[keys::REVISION], "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(m[keys::CREATED], "2024-01-01T00:00:00Z");
        assert_eq!(m[keys::VERSION], "feature/Login");
        assert_eq!(m[keys::TITLE], "Web App");
        assert!(!m.contains_key("org.opencontainers.image.ref.name"), "ref.name belongs in a layout's index.json");
        // Outside CI: nothing, so local builds keep their digests.
        assert!(ctx(&[]).metadata(Some("1970-01-01T00:00:00Z".into())).is_empty());
    }

    #[test]
    fn split_and_host_rules() {
        assert_eq!(split_tag("a/b:1"), ("a/b", Some("1")));
        assert_eq!(split_tag("h:5000/a"), ("h:5000/a", None));
        assert_eq!(split_tag("h:5000/a:2"), ("h:5000/a", Some("2")));
        assert!(has_host("h.io/a") && has_host("h:1/a") && has_host("localhost/a"));
        assert!(!has_host("team/a") && !has_host("a"));
        assert_eq!(repo_component("Web App!"), "web-app");
    }
}
