//! Media types hoist reads and writes, and what each one is.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// True for media types whose content is an index of manifests.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// True for media types whose content is a single image (or artifact) manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// The `Accept` header for manifest reads: every manifest kind hoist understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// "layer", "config" or "blob", for messages.
pub fn kind_of(media_type: &str) -> &'static str {
    if media_type.contains("config") {
        "config"
    } else if media_type.contains("layer") || media_type.contains("tar") {
        "layer"
    } else {
        "blob"
    }
}

/// The largest manifest or index hoist reads or writes: distribution's and Harbor's limit (4 MiB), so
/// what hoist accepts a registry accepts too. Also bounds a layout's `index.json` and a docker
/// archive's `manifest.json`.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest image config hoist reads whole (configs are read into memory; real ones are a few KiB,
/// with long histories well under 1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The media type of manifest `bytes` served as `content_type`: the header when it names a manifest
/// kind, else what the manifest declares of itself (`mediaType`), else what its shape says (a
/// `manifests` list is an index). Registries serving generic types (`application/json`,
/// `text/plain`) and Helm's manifests (no `mediaType` field) need the fallbacks.
pub fn detect(content_type: &str, bytes: &[u8]) -> String {
    let header = content_type.split(';').next().unwrap_or_default().trim();
    if !header.is_empty() && header != "application/json" && header != "text/plain" {
        return header.to_string();
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe { media_type: Some(m), .. }) if !m.is_empty() => m,
        Ok(Probe { manifests: Some(_), .. }) => OCI_INDEX.to_string(),
        _ => OCI_MANIFEST.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_prefers_a_specific_header_then_the_body() {
        assert_eq!(detect("application/vnd.oci.image.index.v1+json; charset=utf-8", b"{}"), OCI_INDEX);
        assert_eq!(
            detect("application/json", br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#),
            DOCKER_MANIFEST
        );
        assert_eq!(detect("", br#"{"schemaVersion":2,"manifests":[]}"#), OCI_INDEX);
        assert_eq!(detect("text/plain", br#"{"schemaVersion":2,"config":{}}"#), OCI_MANIFEST);
    }
}

/// What kind of artifact a manifest holds, for refusing to move a tag across kinds: the manifest's
/// `artifactType` when it has one, else its config's media type (both image config types are one
/// kind, "container image"); an index takes its `artifactType`, else the kind of what it lists is
/// taken to be an image (multi-platform images are what indexes hold in practice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactKind {
    Image,
    HelmChart,
    /// Any other artifact, by its `artifactType` or config media type.
    Other(String),
}

/// The config media type of a Helm chart (as helm pushes it).
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";

impl ArtifactKind {
    /// The kind of manifest `bytes` (of media type `media_type`).
    pub fn of(media_type: &str, bytes: &[u8]) -> ArtifactKind {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
        let artifact_type = v.get("artifactType").and_then(|a| a.as_str()).filter(|a| !a.is_empty());
        let config = v.pointer("/config/mediaType").and_then(|c| c.as_str());
        let t = match (artifact_type, config) {
            (Some(a), _) => a,
            (None, _) if is_index(media_type) => return ArtifactKind::Image,
            (None, Some(c)) => c,
            (None, None) => return ArtifactKind::Image,
        };
        match t {
            OCI_CONFIG | DOCKER_CONFIG => ArtifactKind::Image,
            HELM_CONFIG => ArtifactKind::HelmChart,
            other => ArtifactKind::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArtifactKind::Image => f.write_str("a container image"),
            ArtifactKind::HelmChart => f.write_str("a Helm chart"),
            ArtifactKind::Other(t) => write!(f, "an artifact of type {t}"),
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn kinds_come_from_artifact_type_then_config() {
        let m = |config: &str| format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"{config}"}},"layers":[]}}"#);
        assert_eq!(ArtifactKind::of(OCI_MANIFEST, m(OCI_CONFIG).as_bytes()), ArtifactKind::Image);
        assert_eq!(ArtifactKind::of(DOCKER_MANIFEST, m(DOCKER_CONFIG).as_bytes()), ArtifactKind::Image);
        assert_eq!(ArtifactKind::of(OCI_MANIFEST, m(HELM_CONFIG).as_bytes()), ArtifactKind::HelmChart);
        let sbom =
            r#"{"artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"}}"#;
        assert_eq!(
            ArtifactKind::of(OCI_MANIFEST, sbom.as_bytes()),
            ArtifactKind::Other("application/spdx+json".into())
        );
        assert_eq!(ArtifactKind::of(OCI_INDEX, br#"{"manifests":[]}"#), ArtifactKind::Image);
        assert_eq!(ArtifactKind::HelmChart.to_string(), "a Helm chart");
        assert_ne!(ArtifactKind::Image, ArtifactKind::HelmChart);
    }
}
