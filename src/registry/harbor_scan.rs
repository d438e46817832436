//! Harbor's vulnerability-scan API (`hoist scan`): start a scan, read an artifact's scan overview, its
//! vulnerability report and a failed scan's log, the project's scanner and the system CVE allowlist.
//! Same transport and answer shape as [`super::harbor`] ([`ApiAnswer`]: status, parsed body or Harbor's error);
//! judging the answers is `crate::scan`'s business. Types follow `harbor-api-v2.0-swagger.yaml`, only the fields
//! used.

use std::collections::HashMap;

use reqwest::Method;

use super::error::describe;
use super::harbor::{enc, ApiAnswer, Harbor, API};
use crate::error::Result;

/// Harbor picks the report format from this header on the artifact (scan overview) and report endpoints: the
/// generic vulnerability report 1.1 first, Harbor's adapter format 1.0 as the fallback (what its UI sends).
pub const ACCEPT_VULNERABILITIES: &str = "application/vnd.security.vulnerability.report; version=1.1, \
     application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";

/// `Scanner`: who produced a report.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Scanner {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub version: String,
}

/// `VulnerabilitySummary`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct VulnSummary {
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub fixable: i64,
    #[serde(default)]
    pub summary: HashMap<String, i64>,
}

/// `NativeReportSummary`: one scan's state in an artifact's `scan_overview`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct ScanSummary {
    #[serde(default)]
    pub report_id: String,
    /// Pending, Scheduled, Running, Success, Error, Stopped.
    #[serde(default)]
    pub scan_status: String,
    #[serde(default)]
    pub complete_percent: Option<i64>,
    #[serde(default)]
    pub summary: Option<VulnSummary>,
    #[serde(default)]
    pub scanner: Option<Scanner>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
}

/// `Reference`: an index's child.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct ChildRef {
    #[serde(default)]
    pub child_digest: String,
    #[serde(default)]
    pub platform: Option<serde_json::Value>,
}

/// `Artifact` (the fields used).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct Artifact {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub project_id: i64,
    pub digest: String,
    /// IMAGE, CHART, CNAB…
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub manifest_media_type: String,
    #[serde(default)]
    pub references: Option<Vec<ChildRef>>,
    /// Keyed by report MIME type.
    #[serde(default)]
    pub scan_overview: Option<HashMap<String, ScanSummary>>,
}

impl Artifact {
    /// The scan state Harbor reports (the first report type; Harbor keeps one per artifact and MIME type).
    pub fn scan(&self) -> Option<&ScanSummary> {
        let overview = self.scan_overview.as_ref()?;
        // Deterministic when several: the generic report type first, as the Accept header asks.
        let mut keys: Vec<&String> = overview.keys().collect();
        keys.sort_by_key(|k| (!k.contains("vnd.security.vulnerability.report"), k.to_string()));
        keys.first().and_then(|k| overview.get(*k))
    }

    /// The children's digests when this is an index.
    pub fn children(&self) -> Vec<String> {
        self.references.iter().flatten().map(|r| r.child_digest.clone()).filter(|d| !d.is_empty()).collect()
    }
}

/// `preferred_cvss`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct Cvss {
    #[serde(default)]
    pub score_v3: Option<f64>,
    #[serde(default)]
    pub vector_v3: Option<String>,
}

/// One vulnerability of a report.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct Vulnerability {
    pub id: String,
    #[serde(default)]
    pub package: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub fix_version: Option<String>,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub links: Option<Vec<String>>,
    #[serde(default)]
    pub cwe_ids: Option<Vec<String>>,
    #[serde(default)]
    pub preferred_cvss: Option<Cvss>,
    #[serde(default)]
    pub artifact_digests: Option<Vec<String>>,
}

/// A vulnerability report (`additions/vulnerabilities` answers `{MIME: report}`).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct VulnReport {
    #[serde(default)]
    pub generated_at: Option<String>,
    #[serde(default)]
    pub scanner: Option<Scanner>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub vulnerabilities: Option<Vec<Vulnerability>>,
}

/// `CVEAllowlist`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct CveAllowlist {
    /// Seconds since the epoch; none: it never expires.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub items: Option<Vec<CveAllowlistItem>>,
}

/// `CVEAllowlistItem`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct CveAllowlistItem {
    #[serde(default)]
    pub cve_id: String,
}

/// `ScannerRegistration` (the fields used).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct ScannerRegistration {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub health: Option<String>,
}

/// `/projects/{p}/repositories/{r}/artifacts/{ref}`: Harbor routes on the repository name without its `/`s, so a
/// name holding `/` is URL-encoded twice (`a/b` → `a%252Fb`).
pub fn artifact_path(project: &str, repository: &str, reference: &str) -> String {
    format!("{API}/projects/{}/repositories/{}/artifacts/{}", enc(project), enc(&enc(repository)), enc(reference))
}

impl Harbor<'_> {
    /// `POST …/artifacts/{ref}/scan`: 202 started, 409 one is pending or running, 412 no scanner, 400/422 not
    /// scannable, 403 no `scan:create`. Harbor's CSRF check skips `/api/` requests that carry no session; the
    /// transport keeps no cookie, so a Basic-authenticated POST needs no CSRF token.
    pub async fn start_scan(&self, project: &str, repository: &str, reference: &str) -> Result<ApiAnswer<()>> {
        let path = format!("{}/scan", artifact_path(project, repository, reference));
        let resp = self.client.api_send(Method::POST, &path, &[]).await?;
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        let error = (!status.is_success()).then(|| describe(status, &bytes).0);
        Ok(ApiAnswer { status: status.as_u16(), body: status.is_success().then_some(()), error })
    }

    /// `GET …/artifacts/{ref}?with_scan_overview=true` with [`ACCEPT_VULNERABILITIES`].
    pub async fn artifact(&self, project: &str, repository: &str, reference: &str) -> Result<ApiAnswer<Artifact>> {
        let path = format!("{}?with_scan_overview=true", artifact_path(project, repository, reference));
        self.get_with(&path, &[("X-Accept-Vulnerabilities", ACCEPT_VULNERABILITIES)]).await
    }

    /// `GET …/artifacts/{ref}/additions/vulnerabilities` with [`ACCEPT_VULNERABILITIES`]: `{MIME: report}`.
    pub async fn vulnerabilities(
        &self,
        project: &str,
        repository: &str,
        reference: &str,
    ) -> Result<ApiAnswer<HashMap<String, VulnReport>>> {
        let path = format!("{}/additions/vulnerabilities", artifact_path(project, repository, reference));
        self.get_with(&path, &[("X-Accept-Vulnerabilities", ACCEPT_VULNERABILITIES)]).await
    }

    /// `GET …/artifacts/{ref}/scan/{report_id}/log` (plain text).
    pub async fn scan_log(&self, project: &str, repository: &str, reference: &str, report_id: &str) -> Result<String> {
        let path = format!("{}/scan/{}/log", artifact_path(project, repository, reference), enc(report_id));
        let resp = self.client.api_get(&path, false, &[]).await?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        Ok(if status.is_success() { text } else { format!("(the log could not be read: {status})") })
    }

    /// `GET /projects/{name}/scanner` (`X-Is-Resource-Name`): the project's scanner, else the system default.
    pub async fn project_scanner(&self, project: &str) -> Result<ApiAnswer<ScannerRegistration>> {
        self.get(&format!("/projects/{}/scanner", enc(project)), true).await
    }

    /// `GET /system/CVEAllowlist` (projects that reuse the system allowlist).
    pub async fn system_allowlist(&self) -> Result<ApiAnswer<CveAllowlist>> {
        self.get("/system/CVEAllowlist", false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_with_a_slash_are_encoded_twice() {
        assert_eq!(
            artifact_path("team", "a/b", "sha256:ab"),
            "/api/v2.0/projects/team/repositories/a%252Fb/artifacts/sha256%3Aab"
        );
        assert_eq!(artifact_path("team", "app", "1.0"), "/api/v2.0/projects/team/repositories/app/artifacts/1.0");
    }

    #[test]
    fn the_scan_state_prefers_the_generic_report() {
        let a: Artifact = serde_json::from_value(serde_json::json!({
            "digest": "sha256:ab",
            "scan_overview": {
                "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0": {"scan_status": "Error"},
                "application/vnd.security.vulnerability.report; version=1.1": {"scan_status": "Running"}
            }
        }))
        .unwrap();
        assert_eq!(a.scan().unwrap().scan_status, "Running");
        assert!(a.children().is_empty());
    }
}
