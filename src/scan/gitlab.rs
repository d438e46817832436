//! The files `hoist scan` writes for GitLab: the container-scanning report (schema 15.0.7, the version older
//! GitLab releases still accept) and a JUnit report of the same findings (GitLab shows test reports in merge
//! requests on every tier; the container-scanning widget only on its top tier). Pure: text in, text out.

use super::findings::{Finding, Severity};
use crate::registry::harbor_scan::Scanner;

/// The schema version written (and validated in the tests against GitLab's published schema).
pub const SCHEMA_VERSION: &str = "15.0.7";
const SCHEMA_URL: &str = "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/v15.0.7/dist/container-scanning-report-format.json";

/// What a report says about the scan as a whole.
#[derive(Debug, Clone)]
pub struct ReportContext {
    /// `location.image`: the reference scanned (`host/project/repo@sha256:…` or `…:tag`).
    pub image: String,
    /// `location.default_branch_image`: the image on the default branch, so GitLab tracks a finding across
    /// pipelines (its fingerprint drops the tag).
    pub default_branch_image: Option<String>,
    /// The repository (`host/project/repo`), part of each finding's id.
    pub repository: String,
    pub scanner: Option<Scanner>,
    /// `YYYY-MM-DDTHH:MM:SS` UTC.
    pub start_time: String,
    pub end_time: String,
    /// `location.operating_system`: Harbor's report does not name it, and reading the image's `/etc/os-release`
    /// would mean downloading base layers hoist never downloads — so "Unknown".
    pub operating_system: String,
}

/// A finding's id: a UUIDv5 of the repository, package, version and vulnerability id, so the same finding in the
/// same repository gets the same id in every pipeline.
pub fn finding_uuid(repository: &str, f: &Finding) -> String {
    let name = format!("hoist-scan|{repository}|{}|{}|{}", f.package, f.version, f.id);
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
}

fn is_url(s: &str) -> bool {
    ["http://", "https://", "ftp://"].iter().any(|p| s.starts_with(p) && s.len() > p.len())
}

/// `CVE-2024-1` → cve with NVD's page, `GHSA-…` → ghsa with GitHub's advisory, anything else under its prefix.
fn identifier(id: &str) -> serde_json::Value {
    let upper = id.to_ascii_uppercase();
    let (kind, url) = if upper.starts_with("CVE-") {
        ("cve".to_string(), Some(format!("https://nvd.nist.gov/vuln/detail/{upper}")))
    } else if upper.starts_with("GHSA-") {
        ("ghsa".to_string(), Some(format!("https://github.com/advisories/{id}")))
    } else {
        let prefix = id.split('-').next().unwrap_or("").to_ascii_lowercase();
        (if prefix.is_empty() || prefix == id.to_ascii_lowercase() { "id".to_string() } else { prefix }, None)
    };
    let mut v = serde_json::json!({"type": kind, "name": id, "value": id});
    if let Some(u) = url {
        v["url"] = u.into();
    }
    v
}

fn cwe(id: &str) -> Option<serde_json::Value> {
    let n = id.trim().to_ascii_uppercase();
    let num = n.strip_prefix("CWE-").unwrap_or(&n);
    num.chars().all(|c| c.is_ascii_digit()).then(|| {
        serde_json::json!({"type": "cwe", "name": format!("CWE-{num}"), "value": num,
            "url": format!("https://cwe.mitre.org/data/definitions/{num}.html")})
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn non_empty(s: &str, fallback: &str) -> String {
    if s.trim().is_empty() {
        fallback.to_string()
    } else {
        s.to_string()
    }
}

/// GitLab's container-scanning report: every finding but the allowlisted ones (those are accepted risks, and
/// GitLab would list them as new vulnerabilities).
pub fn container_scanning_report(ctx: &ReportContext, findings: &[Finding]) -> serde_json::Value {
    let scanner = ctx.scanner.clone().unwrap_or_default();
    let scanner_id: String = scanner
        .name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    let vulnerabilities: Vec<serde_json::Value> = findings
        .iter()
        .filter(|f| !f.allowlisted)
        .map(|f| {
            let mut identifiers = vec![identifier(&f.id)];
            identifiers.extend(f.cwe_ids.iter().filter_map(|c| cwe(c)));
            let links: Vec<serde_json::Value> =
                f.links.iter().filter(|l| is_url(l)).map(|l| serde_json::json!({"url": l})).collect();
            let mut location = serde_json::json!({
                "dependency": {"package": {"name": f.package}, "version": f.version},
                "operating_system": ctx.operating_system,
                "image": ctx.image,
            });
            if let Some(d) = &ctx.default_branch_image {
                location["default_branch_image"] = truncate(d, 255).into();
            }
            let mut v = serde_json::json!({
                "id": finding_uuid(&ctx.repository, f),
                "name": truncate(&format!("{} in {}", f.id, f.package), 255),
                "description": truncate(&f.description, 1 << 20),
                "severity": f.severity.gitlab(),
                "identifiers": identifiers,
                "links": links,
                "location": location,
            });
            if let Some(fix) = &f.fix_version {
                v["solution"] = truncate(&format!("Upgrade {} from {} to {fix}", f.package, f.version), 7000).into();
            }
            v
        })
        .collect();
    serde_json::json!({
        "version": SCHEMA_VERSION,
        "schema": SCHEMA_URL,
        "scan": {
            "analyzer": {
                "id": "hoist",
                "name": "hoist",
                "version": env!("CARGO_PKG_VERSION"),
                "vendor": {"name": "hoist"},
            },
            "scanner": {
                "id": non_empty(&scanner_id, "harbor-scanner"),
                "name": non_empty(&scanner.name, "Harbor scanner"),
                "version": non_empty(&scanner.version, "unknown"),
                "vendor": {"name": non_empty(&scanner.vendor, "Unknown")},
            },
            "type": "container_scanning",
            "start_time": ctx.start_time,
            "end_time": ctx.end_time,
            "status": "success",
        },
        "vulnerabilities": vulnerabilities,
    })
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no other control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The findings as JUnit: one test case per finding, failed when at or above `fail_on` (none: every case passes),
/// skipped when allowlisted; one passing case when there is no finding at all.
pub fn junit(image: &str, findings: &[Finding], fail_on: Option<Severity>, seconds: f64) -> String {
    let mut cases = String::new();
    let (mut failures, mut skipped) = (0, 0);
    for f in findings {
        let name = xml(&format!("{} {} {} ({})", f.id, f.package, f.version, f.severity));
        cases.push_str(&format!("    <testcase classname=\"{}\" name=\"{name}\">\n", xml(&f.package)));
        let fix = f.fix_version.as_ref().map_or("no fix released".to_string(), |v| format!("fixed in {v}"));
        if f.allowlisted {
            skipped += 1;
            cases.push_str("      <skipped message=\"on the project's CVE allowlist\"/>\n");
        } else if fail_on.is_some_and(|t| f.severity >= t) {
            failures += 1;
            let message = xml(&format!("{} {} in {} {} ({fix})", f.severity, f.id, f.package, f.version));
            let links = f.links.first().map(|l| format!("\n{l}")).unwrap_or_default();
            cases.push_str(&format!(
                "      <failure type=\"{}\" message=\"{message}\">{}</failure>\n",
                f.severity,
                xml(&format!("{}{links}", f.description))
            ));
        } else {
            cases.push_str(&format!("      <system-out>{}</system-out>\n", xml(&format!("{} ({fix})", f.severity))));
        }
        cases.push_str("    </testcase>\n");
    }
    let mut tests = findings.len();
    if findings.is_empty() {
        tests = 1;
        cases.push_str("    <testcase classname=\"hoist-scan\" name=\"no vulnerabilities found\"/>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{tests}\" \
         failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
        xml(&format!("hoist scan {image}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, sev: Severity, fix: Option<&str>) -> Finding {
        Finding {
            id: id.into(),
            package: "openssl".into(),
            version: "3.0.1".into(),
            fix_version: fix.map(str::to_string),
            severity: sev,
            description: "a <bad> & \"quoted\" bug\u{1}".into(),
            links: vec!["https://example.com/a".into(), "not a url".into()],
            cwe_ids: vec!["CWE-79".into(), "NVD-CWE-Other".into()],
            cvss_score: None,
            cvss_vector: None,
            artifact_digests: vec![],
            allowlisted: false,
        }
    }

    fn ctx() -> ReportContext {
        ReportContext {
            image: "h.io/p/app@sha256:ab".into(),
            default_branch_image: Some("h.io/p/app:latest".into()),
            repository: "h.io/p/app".into(),
            scanner: None,
            start_time: "2026-01-01T00:00:00".into(),
            end_time: "2026-01-01T00:01:00".into(),
            operating_system: "Unknown".into(),
        }
    }

    #[test]
    fn ids_are_deterministic_uuid5() {
        let f = finding("CVE-2024-1", Severity::High, None);
        let a = finding_uuid("h.io/p/app", &f);
        assert_eq!(a, finding_uuid("h.io/p/app", &f));
        assert_ne!(a, finding_uuid("h.io/p/other", &f));
        assert_eq!(&a[14..15], "5", "version 5: {a}");
    }

    #[test]
    fn report_fields() {
        let mut allowed = finding("CVE-2024-2", Severity::Critical, None);
        allowed.allowlisted = true;
        let r = container_scanning_report(
            &ctx(),
            &[
                finding("CVE-2024-1", Severity::Negligible, Some("3.0.2")),
                allowed,
                finding("GHSA-x", Severity::Low, None),
            ],
        );
        let v = r["vulnerabilities"].as_array().unwrap();
        assert_eq!(v.len(), 2, "the allowlisted finding is left out");
        assert_eq!(v[0]["severity"], "Info");
        assert_eq!(v[0]["solution"], "Upgrade openssl from 3.0.1 to 3.0.2");
        assert_eq!(v[0]["identifiers"][0]["url"], "https://nvd.nist.gov/vuln/detail/CVE-2024-1");
        assert_eq!(v[0]["identifiers"][1]["value"], "79");
        assert_eq!(v[0]["identifiers"].as_array().unwrap().len(), 2, "NVD-CWE-Other is no CWE number");
        assert_eq!(v[0]["links"].as_array().unwrap().len(), 1);
        assert_eq!(v[1]["identifiers"][0]["type"], "ghsa");
        assert_eq!(r["scan"]["scanner"]["version"], "unknown");
    }

    #[test]
    fn junit_fails_at_the_threshold_and_escapes() {
        let mut allowed = finding("CVE-3", Severity::Critical, None);
        allowed.allowlisted = true;
        let fs = [finding("CVE-1", Severity::High, Some("3.0.2")), finding("CVE-2", Severity::Low, None), allowed];
        let x = junit("h.io/p/app", &fs, Some(Severity::High), 1.0);
        assert!(x.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""), "{x}");
        assert!(x.contains("a &lt;bad&gt; &amp; &quot;quoted&quot; bug "), "{x}");
        assert!(junit("h.io/p/app", &[], None, 0.0).contains("no vulnerabilities found"));
    }
}
