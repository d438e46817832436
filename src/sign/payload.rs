//! What a cosign signature is made of, as bytes (pure): the simple-signing payload, the signature
//! layer that carries it, and cosign's legacy `sha256-<hex>.sig` manifest (one layer per signature).
//!
//! The payload is cosign's (sigstore `payload.Cosign`): `{"critical":{"identity":{"docker-reference":
//! REPO},"image":{"docker-manifest-digest":DIGEST},"type":"cosign container image signature"},
//! "optional":ANNOTATIONS|null}`. The signature is over SHA-256 of these exact bytes; verifiers read
//! the bytes back from the blob, so hoist's serialization need not match Go's byte for byte.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{media, Blob, Digest, Manifest};

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `artifactType` of cosign's OCI 1.1 signature referrer (what Harbor 2.11+ shows as "signed").
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The payload's `critical.type`.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The legacy signature tag of `digest`: `sha256-<hex>.sig`.
pub fn sig_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm(), digest.hex())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Payload {
    pub critical: Critical,
    /// Annotations (`-a key=value`); cosign writes `null` when there are none.
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Critical {
    pub identity: Identity,
    pub image: Image,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Image {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl Payload {
    /// The payload signing `digest` in repository `repository` (`registry/name`).
    pub fn new(repository: &str, digest: &Digest, annotations: &BTreeMap<String, String>) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity { docker_reference: repository.to_string() },
                image: Image { docker_manifest_digest: digest.to_string() },
                kind: PAYLOAD_TYPE.to_string(),
            },
            optional: (!annotations.is_empty())
                .then(|| annotations.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect()),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload serializes")
    }

    pub fn parse(bytes: &[u8]) -> Result<Payload> {
        let p: Payload = serde_json::from_slice(bytes)
            .map_err(|e| Error::other(format!("the signature payload is not cosign's simple-signing JSON: {e}")))?;
        if p.critical.kind != PAYLOAD_TYPE {
            return Err(Error::other(format!(
                "the signature payload's type is {:?}, not {PAYLOAD_TYPE:?}",
                p.critical.kind
            )));
        }
        Ok(p)
    }

    /// The annotations of `want` this payload lacks or has with another value, as `key=value`.
    pub fn missing(&self, want: &BTreeMap<String, String>) -> Vec<String> {
        want.iter()
            .filter(|(k, v)| {
                let have = self.optional.as_ref().and_then(|o| o.get(*k));
                have.and_then(|h| h.as_str()) != Some(v.as_str())
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// One signature: the payload blob and its layer descriptor (signature in the annotation).
#[derive(Debug, Clone)]
pub struct SignatureLayer {
    pub payload: Blob,
    pub signature_b64: String,
}

impl SignatureLayer {
    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": SIMPLE_SIGNING,
            "size": self.payload.size,
            "digest": self.payload.digest,
            "annotations": {SIGNATURE_ANNOTATION: self.signature_b64},
        })
    }

    /// Whether `layer` (a descriptor from a manifest) is this signature.
    pub fn is(&self, layer: &serde_json::Value) -> bool {
        layer["digest"].as_str() == Some(self.payload.digest.as_str())
            && layer["annotations"][SIGNATURE_ANNOTATION].as_str() == Some(self.signature_b64.as_str())
    }
}

/// The layers of a `.sig` manifest (JSON kept as read: cosign's other annotations survive).
pub fn sig_layers(m: &Manifest) -> Result<Vec<serde_json::Value>> {
    if !media::is_manifest(&m.media_type) {
        return Err(Error::other(format!(
            "it is a {} ({}), not cosign's signature manifest; hoist will not overwrite it",
            m.media_type, m.digest
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&m.bytes)
        .map_err(|e| Error::other(format!("the signature manifest {} is not JSON: {e}", m.digest)))?;
    Ok(v["layers"].as_array().cloned().unwrap_or_default())
}

/// cosign's `.sig` manifest for `layers`, with the config go-containerregistry writes for such an
/// image (`rootfs.diff_ids` = the layers' digests: the payloads are not compressed). Returns the
/// manifest and its config blob.
pub fn sig_manifest(layers: &[serde_json::Value]) -> (Manifest, Blob) {
    let diff_ids: Vec<&serde_json::Value> = layers.iter().map(|l| &l["digest"]).collect();
    let config = serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    });
    let config = Blob::from_bytes(media::OCI_CONFIG, serde_json::to_vec(&config).expect("json"));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "size": config.size, "digest": config.digest},
        "layers": layers,
    });
    (Manifest::new(media::OCI_MANIFEST, serde_json::to_vec(&manifest).expect("json")), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cosigns_shape() {
        let d = Digest::sha256_of(b"image");
        let p = Payload::new("localhost:5000/app", &d, &BTreeMap::new());
        let text = String::from_utf8(p.to_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"localhost:5000/app\"}},\"image\":{{\"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
            )
        );
        assert_eq!(Payload::parse(text.as_bytes()).unwrap(), p);
    }

    #[test]
    fn annotations_go_in_optional_and_are_checked() {
        let d = Digest::sha256_of(b"image");
        let a: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
        let p = Payload::new("r/app", &d, &a);
        assert_eq!(p.optional.as_ref().unwrap()["env"], "prod");
        assert!(p.missing(&a).is_empty());
        let other: BTreeMap<String, String> = [("env".to_string(), "dev".to_string())].into();
        assert_eq!(p.missing(&other), vec!["env=dev"]);
        assert_eq!(Payload::new("r/app", &d, &BTreeMap::new()).missing(&a), vec!["env=prod"]);
    }

    #[test]
    fn sig_manifest_lists_every_layer_and_matches_them_in_its_config() {
        let one =
            SignatureLayer { payload: Blob::from_bytes(SIMPLE_SIGNING, b"a".to_vec()), signature_b64: "c2ln".into() };
        let two = SignatureLayer {
            payload: Blob::from_bytes(SIMPLE_SIGNING, b"b".to_vec()),
            signature_b64: "c2lnMg==".into(),
        };
        let (m, config) = sig_manifest(&[one.descriptor(), two.descriptor()]);
        let layers = sig_layers(&m).unwrap();
        assert_eq!(layers.len(), 2);
        assert!(one.is(&layers[0]) && two.is(&layers[1]) && !one.is(&layers[1]));
        let cfg: serde_json::Value = match &config.source {
            crate::model::BlobSource::Bytes(b) => serde_json::from_slice(b).unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(cfg["rootfs"]["diff_ids"][1], two.payload.digest.as_str());
        assert_eq!(sig_tag(&Digest::sha256_of(b"x")), format!("sha256-{}.sig", Digest::sha256_of(b"x").hex()));
    }

    #[test]
    fn an_index_under_the_sig_tag_is_never_overwritten() {
        let m = Manifest::new(media::OCI_INDEX, b"{\"manifests\":[]}".to_vec());
        assert!(sig_layers(&m).unwrap_err().message().contains("will not overwrite"));
    }
}
