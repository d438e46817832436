//! A chart package as the OCI artifact `helm push` makes (`pkg/registry/chart.go`, `client.go`):
//! config = Chart.yaml's metadata as Go JSON (`application/vnd.cncf.helm.config.v1+json`), layers =
//! the `.tgz` as is and an optional `.prov`, sorted by digest; the manifest compact in Go's field order
//! with no `mediaType` field, and Helm's annotations — `created` taken from the build epoch rather than
//! a file's mtime, so the digest is the same on every machine. The destination is
//! `<oci://host/path>/<name>:<version>` with `+` written `_`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::metadata::{go_json, Metadata};
use crate::error::{Error, Result};
use crate::model::{media, Artifact, Blob, Manifest, Reference};

pub const CONFIG_MEDIA_TYPE: &str = crate::model::media::HELM_CONFIG;
pub const CHART_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const PROV_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";

#[derive(Serialize)]
struct Descriptor<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    digest: &'a str,
    size: u64,
}

fn desc(b: &Blob) -> Descriptor<'_> {
    Descriptor { media_type: &b.media_type, digest: b.digest.as_str(), size: b.size }
}

#[derive(Serialize)]
struct ManifestBody<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// Helm's manifest annotations for `m`, `created` as given (RFC 3339).
pub fn annotations(m: &Metadata, created: &str) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        if !v.trim().is_empty() {
            a.insert(format!("org.opencontainers.image.{k}"), v.to_string());
        }
    };
    set("description", &m.description);
    set("title", &m.name);
    set("version", &m.version);
    set("url", &m.home);
    set("created", created);
    if let Some(s) = m.sources.first() {
        set("source", s);
    }
    let authors: Vec<String> = m
        .maintainers
        .iter()
        .map(|mt| if mt.email.is_empty() { mt.name.clone() } else { format!("{} ({})", mt.name, mt.email) })
        .collect();
    set("authors", &authors.join(", "));
    for (k, v) in &m.annotations {
        if k != "org.opencontainers.image.title" && k != "org.opencontainers.image.version" {
            a.insert(k.clone(), v.clone());
        }
    }
    a
}

/// The artifact for a chart package (`tgz`), its metadata, an optional provenance file, and `created`.
pub fn artifact(tgz: Vec<u8>, metadata: &Metadata, prov: Option<Vec<u8>>, created: &str) -> Artifact {
    let config = Blob::from_bytes(CONFIG_MEDIA_TYPE, metadata.config_json());
    let mut layers = vec![Blob::from_bytes(CHART_MEDIA_TYPE, tgz)];
    if let Some(p) = prov {
        layers.push(Blob::from_bytes(PROV_MEDIA_TYPE, p));
    }
    layers.sort_by(|a, b| a.digest.as_str().cmp(b.digest.as_str()));
    let body = ManifestBody {
        schema_version: 2,
        config: desc(&config),
        layers: layers.iter().map(desc).collect(),
        annotations: annotations(metadata, created),
    };
    let manifest = Manifest::new(media::OCI_MANIFEST, go_json(&body));
    let mut blobs = layers;
    blobs.push(config);
    Artifact { blobs, manifests: vec![manifest] }
}

/// `oci://host[:port]/path` + chart name + version → the reference (`+` in the tag written `_`).
pub fn destination(dest: &str, name: &str, version: &str) -> Result<Reference> {
    let bare = dest.strip_prefix("oci://").ok_or_else(|| {
        Error::usage(format!("chart destination {dest:?} must start with oci://"))
            .with_hint("e.g. oci://harbor.example.com/project")
    })?;
    let bare = bare.trim_end_matches('/');
    if bare.is_empty()
        || bare.contains('@')
        || bare.rsplit('/').next().is_some_and(|l| l.contains(':') && bare.contains('/'))
    {
        return Err(Error::usage(format!(
            "chart destination {dest:?} must be oci://HOST[:PORT]/PATH without a tag or digest"
        ))
        .with_hint("the chart's name and version make the repository's last part and the tag"));
    }
    let tag = version.replace('+', "_");
    format!("{bare}/{name}:{tag}").parse::<Reference>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::metadata::Maintainer;

    #[test]
    fn references_like_helm() {
        let r = destination("oci://h.io:5000/proj/", "app", "1.0+001").unwrap();
        assert_eq!(r.to_string(), "h.io:5000/proj/app:1.0_001");
        assert!(destination("h.io/proj", "a", "1").is_err());
        assert!(destination("oci://h.io/proj:tag", "a", "1").is_err());
    }

    #[test]
    fn authors_and_overrides() {
        let m = Metadata {
            name: "n".into(),
            version: "1".into(),
            maintainers: vec![
                Maintainer { name: "a".into(), email: "a@x".into(), ..Default::default() },
                Maintainer { name: "b".into(), ..Default::default() },
            ],
            annotations: [("org.opencontainers.image.title".to_string(), "no".to_string())].into(),
            ..Default::default()
        };
        let a = annotations(&m, "1970-01-01T00:00:00Z");
        assert_eq!(a["org.opencontainers.image.authors"], "a (a@x), b");
        assert_eq!(a["org.opencontainers.image.title"], "n");
    }
}
