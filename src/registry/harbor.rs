//! Harbor's API v2.0 (`/api/v2.0/…`), read-only, as `hoist doctor` needs it: ping, project existence and
//! details, the current user's (or robot's) permissions on a project, immutable tag rules and the project's
//! quota. Calls go through the one transport ([`Client::api_get`]: Basic credentials, no cookies kept).
//!
//! Answers are returned as seen ([`ApiAnswer`]: status, parsed body or Harbor's `{"errors":[…]}` message);
//! judging them is the caller's business. Types follow `harbor-api-v2.0-swagger.yaml`, only the fields used.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use super::client::Client;
use super::error::describe;
use crate::error::Result;

/// Harbor's API root.
pub const API: &str = "/api/v2.0";
/// The artifact type and config media type of Harbor's SBOM accessory (what its UI shows as the
/// image's SBOM: one layer of SPDX JSON).
pub const SBOM_MEDIA_TYPE: &str = "application/vnd.goharbor.harbor.sbom.v1";

/// One API call's outcome: the HTTP status and either the parsed body or the error text.
#[derive(Debug, Clone)]
pub struct ApiAnswer<T> {
    pub status: u16,
    pub body: Option<T>,
    /// `403 Forbidden: FORBIDDEN …` — Harbor's error, in one line, when the status is not 2xx.
    pub error: Option<String>,
}

/// `Project` (the fields used).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Project {
    pub project_id: i64,
    pub name: String,
    #[serde(default)]
    pub registry_id: Option<i64>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, Option<String>>>,
    /// The project's CVE allowlist (`hoist scan` honours it).
    #[serde(default)]
    pub cve_allowlist: Option<super::harbor_scan::CveAllowlist>,
}

impl Project {
    /// A proxy-cache project (pushes are refused with 403).
    pub fn is_proxy_cache(&self) -> bool {
        self.registry_id.is_some_and(|id| id > 0)
    }
}

/// `Permission`: a resource (relative to the scope) and an action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Permission {
    pub resource: String,
    pub action: String,
}

/// `ImmutableSelector`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct Selector {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub decoration: String,
    #[serde(default)]
    pub pattern: String,
}

/// `ImmutableRule`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct ImmutableRule {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub tag_selectors: Vec<Selector>,
    #[serde(default)]
    pub scope_selectors: HashMap<String, Vec<Selector>>,
}

/// `ProjectSummary` (quota only).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct ProjectSummary {
    #[serde(default)]
    pub quota: Option<Quota>,
}

/// `ProjectSummaryQuota`: `hard`/`used` resource lists (`storage` in bytes; `-1` = unlimited).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct Quota {
    #[serde(default)]
    pub hard: HashMap<String, i64>,
    #[serde(default)]
    pub used: HashMap<String, i64>,
}

/// Harbor's API on one registry host.
pub struct Harbor<'a> {
    pub(super) client: &'a Client,
}

pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl<'a> Harbor<'a> {
    pub fn new(client: &'a Client) -> Self {
        Harbor { client }
    }

    pub(super) async fn get<T: DeserializeOwned>(&self, path: &str, by_name: bool) -> Result<ApiAnswer<T>> {
        let headers: &[(&str, &str)] = if by_name { &[("X-Is-Resource-Name", "true")] } else { &[] };
        self.get_with(&format!("{API}{path}"), headers).await
    }

    /// `GET path` (under `/api/v2.0` already) with `headers`: the documented JSON, or the status and
    /// Harbor's error in words.
    pub(super) async fn get_with<T: DeserializeOwned>(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<ApiAnswer<T>> {
        let resp = self.client.api_get(path, false, headers).await?;
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        if status.is_success() {
            let body = serde_json::from_slice(&bytes).ok();
            let error = body.is_none().then(|| format!("{status}: the answer is not the documented JSON"));
            return Ok(ApiAnswer { status: status.as_u16(), body, error });
        }
        Ok(ApiAnswer { status: status.as_u16(), body: None, error: Some(describe(status, &bytes).0) })
    }

    /// `GET /ping` answers `Pong` without authentication on every Harbor.
    pub async fn ping(&self) -> Result<bool> {
        let resp = self.client.api_get(&format!("{API}/ping"), false, &[]).await?;
        let ok = resp.status().is_success();
        Ok(ok && resp.text().await.unwrap_or_default().trim().eq_ignore_ascii_case("pong"))
    }

    /// Whether the registry behind `client` is Harbor: its token realm is Harbor's `/service/token`
    /// (free: the challenge is known once connected), else `/api/v2.0/ping` answers `Pong` (one GET).
    pub async fn detect(client: &Client) -> bool {
        let realm = matches!(client.challenge(), Some(super::auth::Challenge::Bearer { realm, .. })
            if realm.trim_end_matches('/').ends_with("/service/token"));
        realm || Harbor::new(client).ping().await.unwrap_or(false)
    }

    /// `HEAD /projects?project_name=NAME`: 200 when it exists, 404 when not (what GitLab's "Test settings" calls).
    pub async fn project_exists(&self, name: &str) -> Result<u16> {
        let resp = self.client.api_get(&format!("{API}/projects?project_name={}", enc(name)), true, &[]).await?;
        Ok(resp.status().as_u16())
    }

    /// `GET /projects/{name}` with `X-Is-Resource-Name: true` (403 for a pull/push-only robot on a private project).
    pub async fn project(&self, name: &str) -> Result<ApiAnswer<Project>> {
        self.get(&format!("/projects/{}", enc(name)), true).await
    }

    /// `GET /projects?name=NAME`: the projects the caller can see whose name contains NAME.
    pub async fn find_project(&self, name: &str) -> Result<Option<Project>> {
        let ans: ApiAnswer<Vec<Project>> =
            self.get(&format!("/projects?name={}&page_size=100", enc(name)), false).await?;
        Ok(ans.body.unwrap_or_default().into_iter().find(|p| p.name == name))
    }

    /// `GET /users/current/permissions?scope=/project/{id}&relative=true` (works for robots).
    pub async fn permissions(&self, project_id: i64) -> Result<ApiAnswer<Vec<Permission>>> {
        self.get(
            &format!("/users/current/permissions?scope={}&relative=true", enc(&format!("/project/{project_id}"))),
            false,
        )
        .await
    }

    /// `GET /projects/{name}/immutabletagrules`.
    pub async fn immutable_rules(&self, project: &str) -> Result<ApiAnswer<Vec<ImmutableRule>>> {
        self.get(&format!("/projects/{}/immutabletagrules?page_size=100", enc(project)), true).await
    }

    /// `GET /projects/{name}/summary` (quota hard/used).
    pub async fn summary(&self, project: &str) -> Result<ApiAnswer<ProjectSummary>> {
        self.get(&format!("/projects/{}/summary", enc(project)), true).await
    }
}

impl ImmutableRule {
    /// Whether this rule makes `repository` (without its project) : `tag` immutable.
    pub fn protects(&self, repository: &str, tag: &str) -> bool {
        if self.disabled {
            return false;
        }
        let selected = |sel: &Selector, value: &str| {
            let m = doublestar_match(&sel.pattern, value);
            if sel.decoration.ends_with("xcludes") {
                !m
            } else {
                m
            }
        };
        let tags_ok = !self.tag_selectors.is_empty() && self.tag_selectors.iter().all(|s| selected(s, tag));
        let repos_ok = self.scope_selectors.get("repository").is_none_or(|v| v.iter().all(|s| selected(s, repository)));
        tags_ok && repos_ok
    }

    /// `tags matching "latest" in repositories matching "**"`, for messages.
    pub fn describe(&self) -> String {
        let tags: Vec<String> =
            self.tag_selectors.iter().map(|s| format!("{} {:?}", word(&s.decoration), s.pattern)).collect();
        let repos: Vec<String> = self
            .scope_selectors
            .get("repository")
            .map(|v| v.iter().map(|s| format!("{} {:?}", word(&s.decoration), s.pattern)).collect())
            .unwrap_or_default();
        let mut text = format!("rule #{}: tags {}", self.id, tags.join(" and "));
        if !repos.is_empty() {
            text.push_str(&format!(" in repositories {}", repos.join(" and ")));
        }
        text
    }
}

fn word(decoration: &str) -> &'static str {
    if decoration.ends_with("xcludes") {
        "excluding"
    } else {
        "matching"
    }
}

/// Harbor's doublestar patterns: `**` any characters, `*` any but `/`, `?` one character, `{a,b}` alternatives.
pub fn doublestar_match(pattern: &str, value: &str) -> bool {
    if let Some(open) = pattern.find('{') {
        if let Some(len) = pattern[open..].find('}') {
            let (head, body, tail) = (&pattern[..open], &pattern[open + 1..open + len], &pattern[open + len + 1..]);
            return body.split(',').any(|alt| doublestar_match(&format!("{head}{alt}{tail}"), value));
        }
    }
    glob(pattern.as_bytes(), value.as_bytes())
}

fn glob(p: &[u8], v: &[u8]) -> bool {
    match p {
        [] => v.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=v.len()).any(|i| glob(rest, &v[i..])),
        [b'*', rest @ ..] => (0..=v.len()).take_while(|&i| i == 0 || v[i - 1] != b'/').any(|i| glob(rest, &v[i..])),
        [b'?', rest @ ..] => !v.is_empty() && v[0] != b'/' && glob(rest, &v[1..]),
        [c, rest @ ..] => v.first() == Some(c) && glob(rest, &v[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(decoration: &str, pattern: &str) -> Selector {
        Selector { kind: "doublestar".into(), decoration: decoration.into(), pattern: pattern.into() }
    }

    #[test]
    fn doublestar_patterns() {
        assert!(doublestar_match("**", "a/b/c"));
        assert!(doublestar_match("*", "app"));
        assert!(!doublestar_match("*", "a/b"));
        assert!(doublestar_match("{latest,v*}", "latest"));
        assert!(doublestar_match("{latest,v*}", "v1.2"));
        assert!(!doublestar_match("{latest,v*}", "main"));
        assert!(doublestar_match("lat?st", "latest"));
        assert!(!doublestar_match("latest", "latest2"));
    }

    #[test]
    fn immutable_rules_match_tag_and_repository() {
        let mut rule = ImmutableRule {
            id: 3,
            tag_selectors: vec![sel("matches", "latest")],
            scope_selectors: [("repository".to_string(), vec![sel("repoMatches", "**")])].into(),
            ..Default::default()
        };
        assert!(rule.protects("app", "latest"));
        assert!(!rule.protects("app", "v1"));
        assert_eq!(rule.describe(), "rule #3: tags matching \"latest\" in repositories matching \"**\"");
        rule.scope_selectors.insert("repository".into(), vec![sel("repoExcludes", "app")]);
        assert!(!rule.protects("app", "latest"));
        assert!(rule.protects("other", "latest"));
        rule.disabled = true;
        assert!(!rule.protects("other", "latest"));
    }
}
