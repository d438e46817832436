//! SBOMs an image already carries, read instead of its layers: a referrer whose artifact type is
//! SPDX (`application/spdx+json`), CycloneDX (`application/vnd.cyclonedx+json`) or Harbor's SBOM
//! (`application/vnd.goharbor.harbor.sbom.v1`, one layer of SPDX JSON), else BuildKit's attestation
//! manifest in the image's index (`vnd.docker.reference.type: attestation-manifest`, in-toto layers
//! with predicate type `https://spdx.dev/Document`). A few small GETs; the documents are parsed
//! into [`Package`]s by their purls.

use serde_json::Value;

use super::{Package, CYCLONEDX_MEDIA_TYPE, SPDX_MEDIA_TYPE};
use crate::error::Result;
use crate::model::Digest;
use crate::registry::ops::Repository;
use crate::remote::referrers;

/// Harbor's SBOM accessory (what its UI renders).
pub const HARBOR_SBOM: &str = "application/vnd.goharbor.harbor.sbom.v1";
/// The in-toto predicate type of an SPDX document (BuildKit's SBOM attestation).
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";

/// Where an SBOM was found, and its packages.
#[derive(Debug, Clone)]
pub struct Found {
    /// `referrer sha256:… (application/spdx+json)` or `BuildKit attestation sha256:…`.
    pub source: String,
    pub packages: Vec<Package>,
}

/// The SBOM attached to `subject` in `repo` (an image manifest), or BuildKit's attestation for it in
/// `index` (the index the image was picked from), if either exists and parses.
pub async fn attached(repo: &Repository, subject: &Digest, index: Option<&Digest>) -> Result<Option<Found>> {
    let listed = referrers::list(repo, subject, None).await?;
    let mut candidates: Vec<&referrers::Referrer> = listed
        .referrers
        .iter()
        .filter(|r| {
            r.artifact_type
                .as_deref()
                .is_some_and(|t| [SPDX_MEDIA_TYPE, HARBOR_SBOM, CYCLONEDX_MEDIA_TYPE].contains(&t))
        })
        .collect();
    // SPDX first (it carries the most), then Harbor's, then CycloneDX; the same order every time.
    candidates.sort_by_key(|r| {
        (r.artifact_type.as_deref() != Some(SPDX_MEDIA_TYPE), r.kind().to_string(), r.digest.to_string())
    });
    for r in candidates {
        let m = repo.get_manifest(r.digest.as_str()).await?;
        let v: Value = serde_json::from_slice(&m.bytes).unwrap_or_default();
        for layer in v["layers"].as_array().into_iter().flatten() {
            let Some(digest) = layer["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()) else { continue };
            let from = format!("referrer {} ({})", r.digest, r.kind());
            if let Some(packages) = parse(&repo.get_blob_bytes(&digest).await?, &from) {
                return Ok(Some(Found { source: from, packages }));
            }
        }
    }
    let Some(index) = index else { return Ok(None) };
    let idx: Value = serde_json::from_slice(&repo.get_manifest(index.as_str()).await?.bytes).unwrap_or_default();
    let attestation = idx["manifests"].as_array().into_iter().flatten().find(|m| {
        m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
            && m["annotations"]["vnd.docker.reference.digest"] == subject.as_str()
    });
    let Some(digest) = attestation.and_then(|a| a["digest"].as_str()) else { return Ok(None) };
    let m: Value = serde_json::from_slice(&repo.get_manifest(digest).await?.bytes).unwrap_or_default();
    for layer in m["layers"].as_array().into_iter().flatten() {
        if layer["annotations"]["in-toto.io/predicate-type"] != SPDX_PREDICATE {
            continue;
        }
        let Some(d) = layer["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()) else { continue };
        let from = format!("BuildKit attestation {digest}");
        if let Some(packages) = parse(&repo.get_blob_bytes(&d).await?, &from) {
            return Ok(Some(Found { source: from, packages }));
        }
    }
    Ok(None)
}

/// The packages of an SBOM document — SPDX 2.x JSON, CycloneDX JSON, or an in-toto statement
/// whose predicate is one of them — those with a purl. `from` is where a package without a
/// location of its own is said to be found. `None`: not an SBOM document.
pub fn parse(bytes: &[u8], from: &str) -> Option<Vec<Package>> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let v = if v.get("predicate").is_some_and(Value::is_object) { v["predicate"].clone() } else { v };
    let mut out = Vec::new();
    if v.get("spdxVersion").is_some() {
        for p in v["packages"].as_array().into_iter().flatten() {
            let refs = p["externalRefs"].as_array().into_iter().flatten();
            let Some(purl) = refs.filter(|r| r["referenceType"] == "purl").find_map(|r| r["referenceLocator"].as_str())
            else {
                continue;
            };
            let found_at = p["sourceInfo"].as_str().and_then(|s| s.strip_prefix("found at ")).unwrap_or(from);
            out.push(package(purl, p["name"].as_str(), p["versionInfo"].as_str(), found_at));
        }
    } else if v.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        let mut stack: Vec<&Value> = v["components"].as_array().into_iter().flatten().collect();
        while let Some(c) = stack.pop() {
            stack.extend(c["components"].as_array().into_iter().flatten());
            let Some(purl) = c["purl"].as_str() else { continue };
            let props = c["properties"].as_array().into_iter().flatten();
            let found_at = props
                .filter(|p| p["name"] == "hoist:found-at" || p["name"] == "syft:location:0:path")
                .find_map(|p| p["value"].as_str())
                .unwrap_or(from);
            out.push(package(purl, c["name"].as_str(), c["version"].as_str(), found_at));
        }
    } else {
        return None;
    }
    out.sort();
    out.dedup();
    Some(out)
}

fn package(purl: &str, name: Option<&str>, version: Option<&str>, found_at: &str) -> Package {
    let kind = purl.strip_prefix("pkg:").and_then(|r| r.split('/').next()).unwrap_or_default();
    Package {
        purl: purl.to_string(),
        name: name.unwrap_or_default().to_string(),
        version: version.filter(|v| *v != "NOASSERTION").unwrap_or_default().to_string(),
        ecosystem: ecosystem(kind),
        found_at: found_at.to_string(),
    }
}

/// The purl type as the static name [`Package::ecosystem`] holds.
fn ecosystem(kind: &str) -> &'static str {
    const KNOWN: [&str; 14] = [
        "apk", "cargo", "composer", "conan", "deb", "gem", "generic", "github", "golang", "maven", "npm", "nuget",
        "pypi", "rpm",
    ];
    KNOWN.iter().find(|k| **k == kind).copied().unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spdx_cyclonedx_and_in_toto_documents_parse() {
        let spdx = br#"{"spdxVersion":"SPDX-2.3","packages":[{"name":"img","SPDXID":"SPDXRef-Image"},
            {"name":"musl","versionInfo":"1.2.4-r2","sourceInfo":"found at /lib/apk/db/installed",
             "externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:apk/alpine/musl@1.2.4-r2"}]}]}"#;
        let p = parse(spdx, "referrer").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].purl.as_str(), p[0].ecosystem, p[0].found_at.as_str()),
            ("pkg:apk/alpine/musl@1.2.4-r2", "apk", "/lib/apk/db/installed")
        );
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"{SPDX_PREDICATE}","predicate":{}}}"#,
            String::from_utf8_lossy(spdx)
        );
        assert_eq!(parse(statement.as_bytes(), "x").unwrap(), p);
        let cdx = br#"{"bomFormat":"CycloneDX","components":[{"name":"a","version":"1","purl":"pkg:npm/a@1",
            "components":[{"name":"b","purl":"pkg:weird/b@2"}]},{"name":"no-purl"}]}"#;
        let p = parse(cdx, "ref").unwrap();
        let got: Vec<(&str, &str, &str)> =
            p.iter().map(|p| (p.purl.as_str(), p.ecosystem, p.found_at.as_str())).collect();
        assert_eq!(got, vec![("pkg:npm/a@1", "npm", "ref"), ("pkg:weird/b@2", "other", "ref")]);
        assert!(parse(b"{\"hello\":1}", "x").is_none());
        assert!(parse(b"not json", "x").is_none());
    }
}
