//! SLSA provenance for what `hoist build` pushed: an in-toto Statement v1 with the predicate
//! `https://slsa.dev/provenance/v1` (see docs/sbom-provenance.md for every field), attached to the
//! image through [`crate::remote::referrers::attach`] — the one attach mechanism — and, with a
//! signing key, also as a DSSE envelope signed with it: an OCI 1.1 referrer and cosign's legacy
//! `sha256-<hex>.att` tag (appended through [`crate::remote::append`], as `.sig` is), which
//! `cosign verify-attestation --type slsaprovenance1` reads.
//!
//! Deterministic: the statement's bytes depend only on the build's inputs (keys sorted, no wall
//! clock at `min`), so the same build in the same job gives the same attached manifest digest.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::ci::{vars, Env};
use crate::error::{Context, Error, Result};
use crate::model::{Blob, Digest, Manifest, Reference};
use crate::push::Clients;
use crate::remote::append::Merge;
use crate::remote::referrers::{Attachment, Layer, Subject};
use crate::sign::keys::SigningKey;
use crate::sign::payload::{sig_layers, sig_manifest, SIGNATURE_ANNOTATION};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The layer (and artifact type) of the unsigned statement.
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The layer (and artifact type) of the signed envelope.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation naming the predicate, on the referrer manifest and its layer.
pub const PREDICATE_ANNOTATION: &str = "in-toto.io/predicate-type";
/// The `buildType`: the page that describes the fields below.
pub const BUILD_TYPE: &str = "https://hoist.dev/docs/sbom-provenance.md#buildtype-v1";

/// How much the statement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Build-arg names only; no times (the bytes are reproducible).
    Min,
    /// Also the values of build args given on the command line as K=V, and startedOn/finishedOn.
    Max,
}

/// What the statement describes: filled by `hoist build` from its flags, the CI variables and the
/// built images.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub level: Level,
    /// `host/repository` → digest, the pushed root first, then each platform's manifest.
    pub subjects: Vec<(String, Digest)>,
    /// The Dockerfile, as given (relative to the working directory).
    pub dockerfile: String,
    pub target: Option<String>,
    pub platforms: Vec<String>,
    /// Every `--build-arg` name → its value when it was written on the command line (`K=V`); `None`
    /// when it came from the environment (`K` alone): GitLab does not tell a job which variables are
    /// masked, so such values are never recorded.
    pub build_args: BTreeMap<String, Option<String>>,
    /// The flags that change the result.
    pub internal: BTreeMap<String, Value>,
    /// Every registry image read (bases, `COPY --from`): the name as written, the digest it resolved to.
    pub images: Vec<(String, Digest)>,
    /// RFC 3339 times (only recorded at `max`).
    pub started_on: Option<String>,
    pub finished_on: Option<String>,
}

fn digest_set(d: &Digest) -> Value {
    json!({ d.algorithm(): d.hex() })
}

/// The in-toto Statement v1, as JSON bytes (keys sorted).
pub fn statement(inputs: &Inputs, env: &dyn Env) -> Vec<u8> {
    let get = |k: &str| env.non_empty(k).map(|v| v.trim().to_string());
    let subject: Vec<Value> =
        inputs.subjects.iter().map(|(name, d)| json!({"name": name, "digest": digest_set(d)})).collect();
    let mut external = serde_json::Map::new();
    let mut source = serde_json::Map::new();
    if let Some(url) = get(vars::CI_PROJECT_URL) {
        source.insert("repository".into(), json!(url));
    }
    if let Some(r) = get(vars::CI_COMMIT_REF_NAME) {
        source.insert("ref".into(), json!(r));
    }
    if let Some(iid) = get(vars::CI_MERGE_REQUEST_IID) {
        // A merge-request pipeline: which one, and its branches (the commit may be the merged result).
        let mut mr = serde_json::Map::from_iter([("iid".to_string(), json!(iid))]);
        for (key, var) in [
            ("sourceBranch", vars::CI_MERGE_REQUEST_SOURCE_BRANCH_NAME),
            ("targetBranch", vars::CI_MERGE_REQUEST_TARGET_BRANCH_NAME),
        ] {
            if let Some(v) = get(var) {
                mr.insert(key.into(), json!(v));
            }
        }
        source.insert("mergeRequest".into(), Value::Object(mr));
    }
    if !source.is_empty() {
        external.insert("source".into(), Value::Object(source));
    }
    external.insert("dockerfile".into(), json!(inputs.dockerfile));
    if let Some(t) = &inputs.target {
        external.insert("target".into(), json!(t));
    }
    external.insert("platforms".into(), json!(inputs.platforms));
    external.insert("buildArgNames".into(), json!(inputs.build_args.keys().collect::<Vec<_>>()));
    if inputs.level == Level::Max {
        let values: BTreeMap<&String, &String> =
            inputs.build_args.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))).collect();
        external.insert("buildArgs".into(), json!(values));
    }
    let mut deps = Vec::new();
    if let Some(sha) = get(vars::CI_COMMIT_SHA) {
        // The ref the runner fetched: a merge request's own (refs/merge-requests/<iid>/head or
        // /merge) in its pipelines, else the branch or tag.
        let mr_ref = get(vars::CI_MERGE_REQUEST_REF_PATH).filter(|_| get(vars::CI_MERGE_REQUEST_IID).is_some());
        let uri = match (get(vars::CI_PROJECT_URL), mr_ref, get(vars::CI_COMMIT_REF_NAME)) {
            (Some(url), Some(mr), _) => format!("git+{url}@{mr}"),
            (Some(url), None, Some(r)) => format!("git+{url}@refs/{}/{r}", ref_kind(env)),
            (Some(url), None, None) => format!("git+{url}"),
            _ => "git".to_string(),
        };
        deps.push(json!({"uri": uri, "digest": {"gitCommit": sha}}));
    }
    for (name, d) in &inputs.images {
        deps.push(json!({"uri": format!("oci://{name}"), "digest": digest_set(d)}));
    }
    let mut builder = json!({"id": builder_id(env), "version": {"hoist": env!("CARGO_PKG_VERSION")}});
    if builder["id"].is_null() {
        builder.as_object_mut().expect("object").remove("id");
    }
    let mut metadata = serde_json::Map::new();
    if let Some(job) = get(vars::CI_JOB_URL) {
        metadata.insert("invocationId".into(), json!(job));
    }
    if inputs.level == Level::Max {
        if let Some(t) = &inputs.started_on {
            metadata.insert("startedOn".into(), json!(t));
        }
        if let Some(t) = &inputs.finished_on {
            metadata.insert("finishedOn".into(), json!(t));
        }
    }
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": inputs.internal,
                "resolvedDependencies": deps,
            },
            "runDetails": {"builder": builder, "metadata": metadata},
        },
    });
    serde_json::to_vec(&statement).expect("a JSON value serializes")
}

/// `heads` or `tags`, for the source URI.
fn ref_kind(env: &dyn Env) -> &'static str {
    if env.non_empty(vars::CI_COMMIT_TAG).is_some() {
        "tags"
    } else {
        "heads"
    }
}

/// The runner: `$CI_SERVER_URL/admin/runners/$CI_RUNNER_ID` in GitLab CI; none outside it.
fn builder_id(env: &dyn Env) -> Value {
    match (env.non_empty(vars::CI_SERVER_URL), env.non_empty(vars::CI_RUNNER_ID)) {
        (Some(server), Some(id)) => json!(format!("{}/admin/runners/{}", server.trim_end_matches('/'), id.trim())),
        (Some(server), None) => json!(server.trim_end_matches('/')),
        _ => Value::Null,
    }
}

/// DSSE's pre-authentication encoding, the bytes the signature covers.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// The statement in a DSSE envelope signed with `key` (ECDSA P-256, DER signature, as cosign).
pub fn envelope(statement: &[u8], key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(&pae(IN_TOTO_MEDIA_TYPE, statement));
    let env = json!({
        "payloadType": IN_TOTO_MEDIA_TYPE,
        "payload": B64.encode(statement),
        "signatures": [{"keyid": "", "sig": B64.encode(sig)}],
    });
    serde_json::to_vec(&env).expect("a JSON value serializes")
}

/// cosign's attestation tag for `digest`: `sha256-<hex>.att`.
pub fn att_tag(digest: &Digest) -> String {
    format!("{}-{}.att", digest.algorithm(), digest.hex())
}

/// The referrers that carry `statement`: the statement itself (an `application/vnd.in-toto+json`
/// layer) and, with `key`, the DSSE envelope signed with it; and the envelope, for cosign's `.att` tag
/// ([`write_att_tag`]). Attached together with the build's other documents through
/// [`crate::remote::referrers::attach_all`], so the fallback tag is updated once.
pub fn attachments(statement: &[u8], key: Option<&SigningKey>) -> (Vec<Attachment>, Option<Vec<u8>>) {
    let annotations: BTreeMap<String, String> = [(PREDICATE_ANNOTATION.to_string(), PREDICATE_TYPE.to_string())].into();
    let plain = Attachment {
        artifact_type: IN_TOTO_MEDIA_TYPE.to_string(),
        annotations: annotations.clone(),
        layers: vec![Layer {
            media_type: IN_TOTO_MEDIA_TYPE.to_string(),
            bytes: statement.to_vec().into(),
            annotations: annotations.clone(),
        }],
        config_media_type: None,
    };
    let Some(key) = key else { return (vec![plain], None) };
    let envelope = envelope(statement, key);
    let signed = Attachment {
        artifact_type: DSSE_MEDIA_TYPE.to_string(),
        annotations: annotations.clone(),
        layers: vec![Layer { media_type: DSSE_MEDIA_TYPE.to_string(), bytes: envelope.clone().into(), annotations }],
        config_media_type: None,
    };
    (vec![plain, signed], Some(envelope))
}

/// Appends the signed `envelope` to cosign's `sha256-<hex>.att` tag of `subject` in `repository`
/// (another tag than the fallback index: it can be written while the referrers are attached).
pub async fn write_att_tag(
    clients: &Clients<'_>,
    repository: &Reference,
    subject: &Subject,
    envelope: Vec<u8>,
) -> Result<crate::sign::LegacyWritten> {
    let ctx = || format!("writing the attestation tag of {}@{}", repository.name(), subject.digest);
    let repo = crate::remote::open(clients, repository, "pull,push").await.with_context(ctx)?;
    append_att(&repo, &subject.digest, Blob::from_bytes(DSSE_MEDIA_TYPE, envelope)).await.with_context(ctx)
}

/// Uploads the envelope and appends it to `digest`'s `.att` tag (cosign's layout: one layer per
/// attestation, the predicate type in its annotations, an empty signature annotation — the signature
/// is inside the envelope).
async fn append_att(
    repo: &crate::registry::ops::Repository,
    digest: &Digest,
    envelope: Blob,
) -> Result<crate::sign::LegacyWritten> {
    if !repo.blob_exists(&envelope.digest).await? {
        repo.upload_blob(&envelope, &[], None, Arc::new(crate::registry::ops::NoProgress)).await?;
    }
    let tag = att_tag(digest);
    let descriptor = json!({
        "mediaType": DSSE_MEDIA_TYPE,
        "size": envelope.size,
        "digest": envelope.digest,
        "annotations": {SIGNATURE_ANNOTATION: "", "predicateType": PREDICATE_TYPE},
    });
    let is = |l: &Value| l["digest"].as_str() == Some(envelope.digest.as_str());
    let has = |m: &Manifest| Ok(sig_layers(m)?.iter().any(is));
    let merge = |current: Option<&Manifest>| {
        let mut layers = match current {
            None => Vec::new(),
            Some(m) => sig_layers(m).map_err(|e| e.context(format!("the tag {tag}")))?,
        };
        if layers.iter().any(is) {
            return Ok(Merge::Present);
        }
        layers.push(descriptor.clone());
        let (manifest, config) = sig_manifest(&layers);
        Ok(Merge::Write { manifest, blobs: vec![config] })
    };
    let appended = crate::remote::append::append(repo, &tag, merge, has).await?;
    Ok(crate::sign::LegacyWritten { tag, written: appended.written() })
}

/// What `hoist verify --provenance` found in a statement.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub subject_matches: bool,
    pub source: Option<String>,
    pub commit: Option<String>,
    pub builder: Option<String>,
    pub bases: Vec<String>,
}

/// Reads a statement's bytes: checks it is SLSA provenance v1 naming `digest` among its subjects.
pub fn summarize(bytes: &[u8], digest: &Digest) -> Result<Summary> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| Error::other(format!("the statement is not JSON: {e}")))?;
    if v["predicateType"].as_str() != Some(PREDICATE_TYPE) {
        return Err(Error::other(format!("the statement's predicate is {}, not {PREDICATE_TYPE}", v["predicateType"])));
    }
    let subject_matches = v["subject"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["digest"][digest.algorithm()].as_str() == Some(digest.hex())));
    let p = &v["predicate"];
    let ext = &p["buildDefinition"]["externalParameters"];
    let source = ext["source"]["repository"]
        .as_str()
        .map(|r| ext["source"]["ref"].as_str().map_or(r.to_string(), |rf| format!("{r} ({rf})")));
    let deps = p["buildDefinition"]["resolvedDependencies"].as_array().cloned().unwrap_or_default();
    let commit = deps.iter().find_map(|d| d["digest"]["gitCommit"].as_str().map(str::to_string));
    let bases = deps
        .iter()
        .filter_map(|d| {
            let uri = d["uri"].as_str()?.strip_prefix("oci://")?;
            let (alg, hex) = d["digest"].as_object()?.iter().next()?;
            Some(format!("{uri}@{alg}:{}", hex.as_str()?))
        })
        .collect();
    let builder = p["runDetails"]["builder"]["id"].as_str().map(str::to_string);
    Ok(Summary { subject_matches, source, commit, builder, bases })
}

/// One provenance statement found for an image, and whether it holds.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    /// `referrer` (an in-toto or DSSE referrer) or `att` (cosign's `.att` tag).
    pub form: &'static str,
    /// The statement's (or envelope's) blob.
    pub digest: Digest,
    /// `None` when it holds; else why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// Finds the provenance of `digest` in `repo` and checks it: with `key`, the signed envelopes (DSSE
/// referrers and the `.att` tag) whose signature verifies over their PAE; without, the unsigned
/// statement referrers. A statement holds when it is SLSA provenance v1 naming `digest`.
pub async fn verify(
    repo: &crate::registry::ops::Repository,
    digest: &Digest,
    key: Option<&crate::sign::keys::PublicKey>,
) -> Result<Vec<Found>> {
    let mut blobs: Vec<(&'static str, Digest)> = Vec::new();
    let wanted = if key.is_some() { DSSE_MEDIA_TYPE } else { IN_TOTO_MEDIA_TYPE };
    let listed = crate::remote::referrers::list(repo, digest, Some(wanted)).await?;
    for r in listed.referrers {
        let m = repo.get_manifest(r.digest.as_str()).await?;
        for l in sig_layers(&m)? {
            if l["mediaType"].as_str() == Some(wanted) {
                if let Some(d) = l["digest"].as_str().and_then(|d| d.parse().ok()) {
                    blobs.push(("referrer", d));
                }
            }
        }
    }
    if key.is_some() {
        if let Some((m, _)) = repo.get_manifest_etag(&att_tag(digest)).await? {
            for l in sig_layers(&m)? {
                if l["mediaType"].as_str() == Some(DSSE_MEDIA_TYPE) {
                    if let Some(d) = l["digest"].as_str().and_then(|d| d.parse().ok()) {
                        blobs.push(("att", d));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    for (form, blob) in blobs {
        let bytes = repo.get_blob_bytes(&blob).await?;
        let statement = match key {
            None => Ok(bytes.to_vec()),
            Some(key) => open_envelope(&bytes, key),
        };
        let (problem, summary) = match statement.and_then(|s| summarize(&s, digest)) {
            Err(e) => (Some(e.to_string()), None),
            Ok(s) if !s.subject_matches => (Some(format!("the statement's subject is not {digest}")), Some(s)),
            Ok(s) => (None, Some(s)),
        };
        found.push(Found { form, digest: blob, problem, summary });
    }
    Ok(found)
}

/// The statement inside a DSSE envelope whose signature verifies with `key`.
fn open_envelope(bytes: &[u8], key: &crate::sign::keys::PublicKey) -> Result<Vec<u8>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| Error::other(format!("the envelope is not JSON: {e}")))?;
    let payload_type = v["payloadType"].as_str().unwrap_or_default();
    let payload = v["payload"]
        .as_str()
        .and_then(|p| B64.decode(p).ok())
        .ok_or_else(|| Error::other("the envelope has no base64 payload"))?;
    let pae = pae(payload_type, &payload);
    let signed = v["signatures"].as_array().is_some_and(|sigs| {
        sigs.iter().filter_map(|s| s["sig"].as_str().and_then(|s| B64.decode(s).ok())).any(|sig| key.verify(&pae, &sig))
    });
    if !signed {
        return Err(Error::other("the envelope's signature does not verify with this key"));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::MapEnv;

    fn inputs(level: Level) -> Inputs {
        Inputs {
            level,
            subjects: vec![("r.example/app".into(), Digest::sha256_of(b"image"))],
            dockerfile: "Dockerfile".into(),
            target: None,
            platforms: vec!["linux/amd64".into()],
            build_args: [("A".to_string(), Some("1".to_string())), ("TOKEN".to_string(), None)].into(),
            internal: BTreeMap::new(),
            images: vec![("docker.io/library/alpine:3".into(), Digest::sha256_of(b"base"))],
            started_on: Some("2026-01-01T00:00:00Z".into()),
            finished_on: Some("2026-01-01T00:00:01Z".into()),
        }
    }

    #[test]
    fn a_tag_pipeline_names_the_tag_ref() {
        let env = MapEnv::new([
            ("CI_PROJECT_URL", "https://gitlab.example/g/p"),
            ("CI_COMMIT_REF_NAME", "v1.2.0"),
            ("CI_COMMIT_TAG", "v1.2.0"),
            ("CI_COMMIT_SHA", "abc123"),
        ]);
        let v: Value = serde_json::from_slice(&statement(&inputs(Level::Min), &env)).unwrap();
        let dep = &v["predicate"]["buildDefinition"]["resolvedDependencies"][0];
        assert_eq!(dep["uri"], "git+https://gitlab.example/g/p@refs/tags/v1.2.0");
        // Outside CI: no source, builder id or invocation id.
        let v: Value = serde_json::from_slice(&statement(&inputs(Level::Min), &MapEnv::new([]))).unwrap();
        assert!(v["predicate"]["buildDefinition"]["externalParameters"]["source"].is_null());
        assert!(v["predicate"]["runDetails"]["builder"]["id"].is_null());
        assert_eq!(v["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
    }

    #[test]
    fn min_has_names_and_no_times_max_has_literal_values_only() {
        let env = MapEnv::new([
            ("CI_PROJECT_URL", "https://gitlab.example/g/p"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_COMMIT_SHA", "abc123"),
            ("CI_SERVER_URL", "https://gitlab.example"),
            ("CI_RUNNER_ID", "7"),
            ("CI_JOB_URL", "https://gitlab.example/g/p/-/jobs/9"),
        ]);
        let min: Value = serde_json::from_slice(&statement(&inputs(Level::Min), &env)).unwrap();
        let p = &min["predicate"];
        assert_eq!(p["buildDefinition"]["externalParameters"]["buildArgNames"], json!(["A", "TOKEN"]));
        assert!(p["buildDefinition"]["externalParameters"]["buildArgs"].is_null());
        assert!(p["runDetails"]["metadata"]["startedOn"].is_null());
        assert_eq!(p["runDetails"]["builder"]["id"], "https://gitlab.example/admin/runners/7");
        assert_eq!(p["runDetails"]["metadata"]["invocationId"], "https://gitlab.example/g/p/-/jobs/9");
        assert_eq!(p["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"], "abc123");
        assert_eq!(
            p["buildDefinition"]["resolvedDependencies"][0]["uri"],
            "git+https://gitlab.example/g/p@refs/heads/main"
        );
        let max: Value = serde_json::from_slice(&statement(&inputs(Level::Max), &env)).unwrap();
        let p = &max["predicate"];
        assert_eq!(p["buildDefinition"]["externalParameters"]["buildArgs"], json!({"A": "1"}));
        assert_eq!(p["runDetails"]["metadata"]["startedOn"], "2026-01-01T00:00:00Z");
        // Reproducible at min.
        assert_eq!(statement(&inputs(Level::Min), &env), statement(&inputs(Level::Min), &env));
        let s = summarize(&statement(&inputs(Level::Min), &env), &Digest::sha256_of(b"image")).unwrap();
        assert!(s.subject_matches);
        assert_eq!(s.commit.as_deref(), Some("abc123"));
        assert_eq!(s.bases.len(), 1);
        assert!(
            !summarize(&statement(&inputs(Level::Min), &env), &Digest::sha256_of(b"other")).unwrap().subject_matches
        );
    }
}
