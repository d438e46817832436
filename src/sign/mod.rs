//! Signatures, as cosign makes and reads them (key-based; keyless signing is not here yet).
//!
//! - [`keys`]: the private and public keys (cosign's encrypted PEM, PKCS#8, PKIX), signing, checking.
//! - [`source`]: where the key and its password come from (`--key`, `HOIST_SIGNING_KEY`, cosign's variables).
//! - [`payload`]: the bytes: simple-signing payload, signature layer, the legacy `.sig` manifest.
//! - here: [`sign`] a manifest already in a registry by its digest (never fetching the image: Harbor
//!   refuses to serve unsigned images under a signing policy), and [`verify`] one.
//!
//! A signature is written as cosign's legacy `sha256-<hex>.sig` tag (read by cosign 2 and 3, podman,
//! Harbor), signatures appended through [`crate::remote::append`] so parallel jobs lose none, and as
//! an OCI 1.1 referrer (artifactType `application/vnd.dev.cosign.artifact.sig.v1+json`, what Harbor
//! 2.11+ shows as signed) through [`crate::remote::referrers::attach`], the one attach mechanism.

pub mod keys;
pub mod payload;
pub mod source;

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use std::sync::Arc;

use crate::error::{Context, Error, Result};
use crate::model::{Blob, Digest, Reference};
use crate::progress::Reporter;
use crate::push::Clients;
use crate::registry::ops::Repository;
use crate::remote::append::Merge;
use crate::remote::referrers::{Attached, Attachment, Layer, Listing, Subject};
use keys::{PublicKey, SigningKey};
use payload::{sig_layers, sig_manifest, sig_tag, Payload, SignatureLayer, SIMPLE_SIGNING};

/// Which forms of a signature `hoist sign` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigFormat {
    /// cosign's `sha256-<hex>.sig` tag (cosign 2 and 3, podman, Harbor read it).
    Legacy,
    /// An OCI 1.1 referrer with artifactType application/vnd.dev.cosign.artifact.sig.v1+json.
    Referrer,
    /// Both.
    Both,
}

impl SigFormat {
    fn legacy(self) -> bool {
        matches!(self, SigFormat::Legacy | SigFormat::Both)
    }
    fn referrer(self) -> bool {
        matches!(self, SigFormat::Referrer | SigFormat::Both)
    }
}

/// How to sign.
#[derive(Debug, Clone)]
pub struct SignOptions {
    pub key: SigningKey,
    /// `-a key=value`: into the payload's `optional`.
    pub annotations: BTreeMap<String, String>,
    pub format: SigFormat,
}

/// What was signed and where the signature went (`--metadata-file`, the summary).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignReport {
    /// `registry/repository@digest`.
    pub reference: String,
    pub digest: Digest,
    pub payload_digest: Digest,
    /// The legacy form: the tag (`sha256-<hex>.sig`) and whether hoist added to it (false: the same
    /// signature was there already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyWritten>,
    /// The referrer form: the artifact manifest and where it is listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<Attached>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LegacyWritten {
    pub tag: String,
    pub written: bool,
}

impl SignReport {
    /// `sha256-….sig, referrer sha256:… (fallback tag)` for the log line.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = &self.legacy {
            parts.push(if l.written { l.tag.clone() } else { format!("{}: this signature was there already", l.tag) });
        }
        if let Some(r) = &self.referrer {
            let listed = match &r.listing {
                Listing::Registry => "listed by the registry".to_string(),
                Listing::FallbackTag { tag, .. } => format!("listed in {tag}"),
                Listing::Unlisted { .. } => "not listed".to_string(),
            };
            parts.push(format!("referrer {} {listed}", r.descriptor.digest.short()));
        }
        parts.join(", ")
    }
}

/// Signs `subject` in `repository` (its tag or digest ignored): builds the payload, signs it, and
/// writes the forms `opts.format` asks for — the payload blob and the `.sig` tag (signatures
/// appended), and/or the referrer through [`crate::remote::referrers::attach`]. Needs push on the
/// repository; reads only the signature tag, never the image.
pub async fn sign(
    clients: &Clients<'_>,
    repository: &Reference,
    subject: &Subject,
    opts: &SignOptions,
    reporter: &Arc<Reporter>,
) -> Result<SignReport> {
    let signature = Signature::new(repository, subject, opts);
    let legacy = signature.write_legacy(clients, repository).await?;
    let referrer = match signature.attachment() {
        Some(a) => Some(
            crate::remote::referrers::attach(clients, repository, subject, &a, reporter)
                .await
                .with_context(|| format!("signing {}", signature.reference))?,
        ),
        None => None,
    };
    Ok(signature.report(legacy, referrer))
}

/// A signature of a subject as one repository names it, made but not written yet: a caller attaching
/// other documents too (`hoist build --sign --sbom --provenance`) puts [`Signature::attachment`] in the
/// same [`crate::remote::referrers::attach_all`] (one fallback tag update) and writes the `.sig` tag
/// meanwhile.
pub struct Signature {
    /// `registry/repository@digest`.
    pub reference: String,
    digest: Digest,
    layer: SignatureLayer,
    bytes: Vec<u8>,
    format: SigFormat,
}

impl Signature {
    /// Builds the payload for `subject` in `repository` and signs it.
    pub fn new(repository: &Reference, subject: &Subject, opts: &SignOptions) -> Signature {
        let name = repository.name();
        let bytes = Payload::new(&name, &subject.digest, &opts.annotations).to_bytes();
        let layer = SignatureLayer {
            signature_b64: B64.encode(opts.key.sign(&bytes)),
            payload: Blob::from_bytes(SIMPLE_SIGNING, bytes.clone()),
        };
        Signature {
            reference: format!("{name}@{}", subject.digest),
            digest: subject.digest.clone(),
            layer,
            bytes,
            format: opts.format,
        }
    }

    /// The referrer form (cosign's signature artifact), when the format asks for it.
    pub fn attachment(&self) -> Option<Attachment> {
        self.format.referrer().then(|| Attachment {
            artifact_type: payload::SIGNATURE_ARTIFACT_TYPE.to_string(),
            annotations: BTreeMap::new(),
            layers: vec![Layer {
                media_type: SIMPLE_SIGNING.to_string(),
                bytes: self.bytes.clone().into(),
                annotations: [(payload::SIGNATURE_ANNOTATION.to_string(), self.layer.signature_b64.clone())].into(),
            }],
            config_media_type: None,
        })
    }

    /// Writes the legacy form (the payload blob, the signature appended to the `.sig` tag), when the
    /// format asks for it.
    pub async fn write_legacy(&self, clients: &Clients<'_>, repository: &Reference) -> Result<Option<LegacyWritten>> {
        if !self.format.legacy() {
            return Ok(None);
        }
        let ctx = || format!("signing {}", self.reference);
        let repo = crate::remote::open(clients, repository, "pull,push").await.with_context(ctx)?;
        Ok(Some(append_legacy(&repo, &self.digest, &self.layer).await.with_context(ctx)?))
    }

    /// The report, once the forms are written.
    pub fn report(self, legacy: Option<LegacyWritten>, referrer: Option<Attached>) -> SignReport {
        SignReport {
            reference: self.reference,
            digest: self.digest,
            payload_digest: self.layer.payload.digest.clone(),
            legacy,
            referrer,
        }
    }
}

/// Uploads the payload and appends its signature layer to `digest`'s `.sig` tag.
async fn append_legacy(repo: &Repository, digest: &Digest, layer: &SignatureLayer) -> Result<LegacyWritten> {
    if !repo.blob_exists(&layer.payload.digest).await? {
        repo.upload_blob(&layer.payload, &[], None, Arc::new(crate::registry::ops::NoProgress)).await?;
    }
    let tag = sig_tag(digest);
    let has = |m: &crate::model::Manifest| Ok(sig_layers(m)?.iter().any(|l| layer.is(l)));
    let merge = |current: Option<&crate::model::Manifest>| {
        let mut layers = match current {
            None => Vec::new(),
            Some(m) => sig_layers(m).map_err(|e| e.context(format!("the tag {tag}")))?,
        };
        if layers.iter().any(|l| layer.is(l)) {
            return Ok(Merge::Present);
        }
        layers.push(layer.descriptor());
        let (manifest, config) = sig_manifest(&layers);
        Ok(Merge::Write { manifest, blobs: vec![config] })
    };
    let appended = crate::remote::append::append(repo, &tag, merge, has).await?;
    Ok(LegacyWritten { tag, written: appended.written() })
}

/// One signature found for an image, and whether it holds.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    /// Where it was found: `legacy` (the `.sig` tag) or `referrer` (an OCI 1.1 referrer).
    pub form: &'static str,
    pub payload_digest: Digest,
    /// `None` when valid; else why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The payload's `docker-reference` and annotations (when it could be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, serde_json::Value>>,
}

/// What `hoist verify` found.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub reference: String,
    pub digest: Digest,
    pub verified: bool,
    pub signatures: Vec<Checked>,
}

/// Checks the signatures of `digest` in `repo` against `key`: a signature holds when it verifies over
/// its payload's exact bytes, the payload names `digest`, and it carries every annotation of `want`.
/// The report lists each signature found; the caller decides on `verified`.
pub async fn verify(
    repo: &Repository,
    repository: &str,
    digest: &Digest,
    key: &PublicKey,
    want: &BTreeMap<String, String>,
) -> Result<VerifyReport> {
    let tag = sig_tag(digest);
    let mut signatures = Vec::new();
    if let Some((m, _)) = repo.get_manifest_etag(&tag).await? {
        for layer in sig_layers(&m).map_err(|e| e.context(format!("the tag {tag}")))? {
            if layer["mediaType"].as_str() != Some(SIMPLE_SIGNING) {
                continue;
            }
            signatures.push(check_layer(repo, "legacy", &layer, digest, key, want).await?);
        }
    }
    // The OCI 1.1 form: cosign signature referrers, from the registry's API or the fallback tag.
    let listed = crate::remote::referrers::list(repo, digest, Some(payload::SIGNATURE_ARTIFACT_TYPE)).await?;
    for r in listed.referrers {
        let m = repo.get_manifest(r.digest.as_str()).await?;
        for layer in sig_layers(&m)? {
            if layer["mediaType"].as_str() == Some(SIMPLE_SIGNING) {
                signatures.push(check_layer(repo, "referrer", &layer, digest, key, want).await?);
            }
        }
    }
    let verified = signatures.iter().any(|s| s.problem.is_none());
    Ok(VerifyReport { reference: format!("{repository}@{digest}"), digest: digest.clone(), verified, signatures })
}

async fn check_layer(
    repo: &Repository,
    form: &'static str,
    layer: &serde_json::Value,
    digest: &Digest,
    key: &PublicKey,
    want: &BTreeMap<String, String>,
) -> Result<Checked> {
    let payload_digest: Digest = layer["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| Error::other("a signature layer has no valid digest"))?;
    let mut checked = Checked {
        form,
        payload_digest: payload_digest.clone(),
        problem: None,
        docker_reference: None,
        annotations: None,
    };
    let signature = layer["annotations"][payload::SIGNATURE_ANNOTATION].as_str().and_then(|s| B64.decode(s).ok());
    let Some(signature) = signature else {
        checked.problem = Some("the layer has no base64 signature annotation".into());
        return Ok(checked);
    };
    let bytes = repo.get_blob_bytes(&payload_digest).await?;
    if !key.verify(&bytes, &signature) {
        checked.problem =
            Some("the signature does not verify with this key (another key, or a changed payload)".into());
        return Ok(checked);
    }
    let p = match Payload::parse(&bytes) {
        Ok(p) => p,
        Err(e) => {
            checked.problem = Some(e.to_string());
            return Ok(checked);
        }
    };
    checked.docker_reference = Some(p.critical.identity.docker_reference.clone());
    checked.annotations = p.optional.clone();
    if p.critical.image.docker_manifest_digest != digest.as_str() {
        checked.problem =
            Some(format!("the payload signs {}, not this image", p.critical.image.docker_manifest_digest));
    } else if let missing @ [_, ..] = p.missing(want).as_slice() {
        checked.problem = Some(format!("the payload lacks the annotations {}", missing.join(", ")));
    }
    Ok(checked)
}

/// `-a key=value` pairs.
pub fn parse_annotation(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}
