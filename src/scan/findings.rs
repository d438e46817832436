//! Harbor's vulnerability reports made into hoist's findings: severities ordered as Harbor orders them, an index's
//! per-child reports merged as Harbor merges them, the project's CVE allowlist and `--ignore-unfixed` applied, and
//! the counts the summary and `--fail-on` read. Pure: no I/O.

use std::collections::BTreeMap;

use crate::registry::harbor_scan::{Scanner, VulnReport, Vulnerability};

/// Harbor's severities, lowest first (its `vuln.Severity` codes: None 0 … Critical 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Severity {
    None,
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, highest first (the order of the summary).
    pub const ALL: [Severity; 7] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Negligible,
        Severity::Unknown,
        Severity::None,
    ];

    /// Harbor's word, any case; anything else is `Unknown`.
    pub fn from_harbor(s: &str) -> Severity {
        Self::parse(s).unwrap_or(Severity::Unknown)
    }

    /// `critical`, `High`… (`--fail-on`).
    pub fn parse(s: &str) -> Option<Severity> {
        Self::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "None",
            Severity::Unknown => "Unknown",
            Severity::Negligible => "Negligible",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    /// GitLab's severity enum (Info, Unknown, Low, Medium, High, Critical). Harbor's `Negligible` (Debian's and
    /// Ubuntu's "negligible": the distribution's security team rates it no practical risk) and `None` (no rating)
    /// become `Info`: GitLab's level for findings that are not a risk by themselves, still below `Low`, so
    /// GitLab's Low filters and approval rules do not count them — the same place Harbor's ordering gives them.
    pub fn gitlab(self) -> &'static str {
        match self {
            Severity::None | Severity::Negligible => "Info",
            Severity::Unknown => "Unknown",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One vulnerability in one package version, as hoist reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// CVE-…, GHSA-…, or the scanner's own id.
    pub id: String,
    pub package: String,
    pub version: String,
    /// The first version with the fix; `None`: no fix released.
    pub fix_version: Option<String>,
    pub severity: Severity,
    pub description: String,
    pub links: Vec<String>,
    pub cwe_ids: Vec<String>,
    pub cvss_score: Option<f64>,
    pub cvss_vector: Option<String>,
    /// The (child) artifacts it was found in.
    pub artifact_digests: Vec<String>,
    /// On the project's CVE allowlist: shown, never counted, never failing.
    pub allowlisted: bool,
}

impl Finding {
    fn from_harbor(v: &Vulnerability, digest: &str) -> Finding {
        let mut digests = v.artifact_digests.clone().unwrap_or_default();
        if digests.is_empty() && !digest.is_empty() {
            digests.push(digest.to_string());
        }
        Finding {
            id: v.id.clone(),
            package: v.package.clone(),
            version: v.version.clone(),
            fix_version: v.fix_version.clone().filter(|f| !f.trim().is_empty()),
            severity: Severity::from_harbor(&v.severity),
            description: v.description.clone().unwrap_or_default(),
            links: v.links.clone().unwrap_or_default(),
            cwe_ids: v.cwe_ids.clone().unwrap_or_default(),
            cvss_score: v.preferred_cvss.as_ref().and_then(|c| c.score_v3),
            cvss_vector: v.preferred_cvss.as_ref().and_then(|c| c.vector_v3.clone()).filter(|s| !s.is_empty()),
            artifact_digests: digests,
            allowlisted: false,
        }
    }

    pub fn fixable(&self) -> bool {
        self.fix_version.is_some()
    }

    fn key(&self) -> (String, String, String) {
        (self.id.clone(), self.package.clone(), self.version.clone())
    }
}

/// The reports of one artifact (one per child of an index), merged.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub scanner: Option<Scanner>,
    /// The latest `generated_at` (RFC 3339, as Harbor wrote it).
    pub generated_at: Option<String>,
    pub findings: Vec<Finding>,
}

/// Merges `(artifact digest, report)` pairs as Harbor merges an index's children: one finding per (id, package,
/// version), its artifact digests unioned; the first scanner; the latest generation time. Sorted worst first, then
/// by id and package, so every output is deterministic.
pub fn merge(reports: &[(String, VulnReport)]) -> Merged {
    let mut out = Merged::default();
    let mut by_key: BTreeMap<(String, String, String), Finding> = BTreeMap::new();
    for (digest, r) in reports {
        if out.scanner.is_none() {
            out.scanner = r.scanner.clone();
        }
        if r.generated_at.as_deref() > out.generated_at.as_deref() {
            out.generated_at = r.generated_at.clone();
        }
        for v in r.vulnerabilities.iter().flatten() {
            let f = Finding::from_harbor(v, digest);
            match by_key.get_mut(&f.key()) {
                Some(seen) => {
                    for d in f.artifact_digests {
                        if !seen.artifact_digests.contains(&d) {
                            seen.artifact_digests.push(d);
                        }
                    }
                    seen.severity = seen.severity.max(f.severity);
                }
                None => {
                    by_key.insert(f.key(), f);
                }
            }
        }
    }
    out.findings = by_key.into_values().collect();
    out.findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.key().cmp(&b.key())));
    out
}

/// What is filtered out and why.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Filters {
    /// The CVE ids of the project's allowlist in force (empty when expired or none).
    pub allowlist: Vec<String>,
    /// Why the allowlist is not applied, when it is not (expired, unreadable).
    pub allowlist_note: Option<String>,
    pub ignore_unfixed: bool,
}

/// Marks allowlisted findings and drops unfixed ones under `--ignore-unfixed`; returns how many were dropped.
pub fn apply(findings: &mut Vec<Finding>, filters: &Filters) -> usize {
    for f in findings.iter_mut() {
        f.allowlisted = filters.allowlist.iter().any(|c| c.eq_ignore_ascii_case(&f.id));
    }
    let before = findings.len();
    if filters.ignore_unfixed {
        findings.retain(Finding::fixable);
    }
    before - findings.len()
}

/// Counts of the findings that count (not allowlisted), per severity: (total, fixable).
pub fn counts(findings: &[Finding]) -> BTreeMap<Severity, (usize, usize)> {
    let mut out = BTreeMap::new();
    for f in findings.iter().filter(|f| !f.allowlisted) {
        let e = out.entry(f.severity).or_insert((0, 0));
        e.0 += 1;
        e.1 += usize::from(f.fixable());
    }
    out
}

/// The findings that fail `--fail-on threshold`: at or above it, not allowlisted.
pub fn failing(findings: &[Finding], threshold: Option<Severity>) -> Vec<&Finding> {
    match threshold {
        None => Vec::new(),
        Some(t) => findings.iter().filter(|f| !f.allowlisted && f.severity >= t).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vuln(id: &str, pkg: &str, sev: &str, fix: Option<&str>, digests: &[&str]) -> Vulnerability {
        Vulnerability {
            id: id.into(),
            package: pkg.into(),
            version: "1.0".into(),
            fix_version: fix.map(str::to_string),
            severity: sev.into(),
            artifact_digests: Some(digests.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn report(vulns: Vec<Vulnerability>, at: &str) -> VulnReport {
        VulnReport { generated_at: Some(at.into()), vulnerabilities: Some(vulns), ..Default::default() }
    }

    #[test]
    fn severities_order_and_map_to_gitlab() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Negligible);
        assert!(Severity::Negligible > Severity::Unknown && Severity::Unknown > Severity::None);
        assert_eq!(Severity::parse("critical"), Some(Severity::Critical));
        assert_eq!(Severity::parse("bad"), None);
        assert_eq!(Severity::from_harbor("weird"), Severity::Unknown);
        assert_eq!(Severity::Negligible.gitlab(), "Info");
        assert_eq!(Severity::None.gitlab(), "Info");
        assert_eq!(Severity::Unknown.gitlab(), "Unknown");
    }

    #[test]
    fn children_merge_by_id_package_version() {
        let a = report(
            vec![vuln("CVE-1", "openssl", "High", Some("3.1"), &[]), vuln("CVE-2", "zlib", "Low", None, &[])],
            "2026-01-01T00:00:00Z",
        );
        let b = report(
            vec![vuln("CVE-1", "openssl", "Critical", Some("3.1"), &[]), vuln("CVE-3", "curl", "Medium", None, &[])],
            "2026-01-02T00:00:00Z",
        );
        let m = merge(&[("sha256:a".into(), a), ("sha256:b".into(), b)]);
        let ids: Vec<&str> = m.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["CVE-1", "CVE-3", "CVE-2"], "one CVE-1, worst first");
        assert_eq!(m.findings[0].artifact_digests, ["sha256:a", "sha256:b"]);
        assert_eq!(m.findings[0].severity, Severity::Critical);
        assert_eq!(m.generated_at.as_deref(), Some("2026-01-02T00:00:00Z"));
    }

    #[test]
    fn allowlist_and_unfixed_filters_and_fail_on() {
        let r = report(
            vec![
                vuln("CVE-1", "openssl", "Critical", Some("3.1"), &["sha256:a"]),
                vuln("CVE-2", "zlib", "High", None, &["sha256:a"]),
                vuln("CVE-3", "curl", "Medium", Some("8"), &["sha256:a"]),
            ],
            "t",
        );
        let mut f = merge(&[("sha256:a".into(), r)]).findings;
        let filters = Filters { allowlist: vec!["cve-1".into()], allowlist_note: None, ignore_unfixed: true };
        assert_eq!(apply(&mut f, &filters), 1, "CVE-2 has no fix");
        assert!(f[0].allowlisted);
        assert_eq!(counts(&f).get(&Severity::Critical), None, "allowlisted findings are not counted");
        assert_eq!(counts(&f)[&Severity::Medium], (1, 1));
        assert!(failing(&f, Some(Severity::High)).is_empty(), "the Critical is allowlisted");
        assert_eq!(failing(&f, Some(Severity::Medium)).len(), 1);
        assert!(failing(&f, None).is_empty());
    }
}
