//! The SBOM documents: SPDX 2.3 JSON and CycloneDX 1.6 JSON, deterministic (packages sorted by the
//! caller, times from the build epoch, ids derived from the image digest).

use serde_json::{json, Value};

use super::Package;
use crate::model::Digest;

/// What the documents describe.
pub struct Describe<'a> {
    /// `host/repository` (or the output) and the image digest.
    pub name: &'a str,
    pub digest: &'a Digest,
    /// The tag for GitLab's properties.
    pub tag: Option<&'a str>,
    /// RFC 3339, the build epoch.
    pub created: &'a str,
    /// The operating system `os-release` names, when it is known (for GitLab's properties).
    pub os: Option<&'a super::distro::Os>,
}

/// A UUID-shaped id from the image digest (deterministic).
fn uuid_of(digest: &Digest) -> String {
    let h = digest.hex();
    let h = if h.len() >= 32 { &h[..32] } else { "00000000000000000000000000000000" };
    format!("{}-{}-5{}-8{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// SPDX 2.3 JSON.
pub fn spdx(packages: &[Package], d: &Describe) -> Vec<u8> {
    let mut pkgs = vec![json!({
        "name": d.name,
        "SPDXID": "SPDXRef-Image",
        "versionInfo": d.digest.as_str(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
    })];
    let mut rels = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    for (i, p) in packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{i}", p.ecosystem);
        pkgs.push(json!({
            "name": p.name,
            "SPDXID": id,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "sourceInfo": format!("found at {}", p.found_at),
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl}],
        }));
        rels.push(json!({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", d.name, d.digest),
        "documentNamespace": format!("https://hoist.dev/spdx/{}", uuid_of(d.digest)),
        "creationInfo": {"created": d.created, "creators": [format!("Tool: hoist-{}", env!("CARGO_PKG_VERSION"))]},
        "packages": pkgs,
        "relationships": rels,
    });
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}

/// CycloneDX 1.6 JSON; `gitlab`: with GitLab's container-scanning properties (`--sbom-file`).
pub fn cyclonedx(packages: &[Package], d: &Describe, gitlab: bool) -> Vec<u8> {
    let components: Vec<Value> = packages
        .iter()
        .map(|p| {
            json!({
                "type": "library",
                "bom-ref": format!("{}?found-at={}", p.purl, p.found_at),
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
                "properties": [{"name": "hoist:found-at", "value": p.found_at}],
            })
        })
        .collect();
    let mut metadata = json!({
        "timestamp": d.created,
        "tools": {"components": [{"type": "application", "name": "hoist", "version": env!("CARGO_PKG_VERSION")}]},
        "component": {"type": "container", "bom-ref": d.digest.as_str(), "name": d.name, "version": d.digest.as_str()},
    });
    if gitlab {
        let mut props = vec![
            json!({"name": "gitlab:meta:schema_version", "value": "1"}),
            json!({"name": "gitlab:container_scanning:image:name", "value": d.name}),
        ];
        if let Some(t) = d.tag {
            props.push(json!({"name": "gitlab:container_scanning:image:tag", "value": t}));
        }
        if let Some(os) = d.os.filter(|os| !os.id.is_empty()) {
            props.push(json!({"name": "gitlab:container_scanning:operating_system:name", "value": os.id}));
            if !os.version_id.is_empty() {
                props.push(
                    json!({"name": "gitlab:container_scanning:operating_system:version", "value": os.version_id}),
                );
            }
        }
        metadata["properties"] = Value::Array(props);
    }
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid_of(d.digest)),
        "version": 1,
        "metadata": metadata,
        "components": components,
    });
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}
