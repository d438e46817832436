//! The registry as the layer cache. Every image config lists its layers' `diff_id`s (the sha256 of
//! the uncompressed tar), and hoist's layers are reproducible: the same tree at the same epoch is the
//! same tar. So a build reads the manifests and configs of images that likely share its layers — the
//! candidates: what the destination tags point at now, the pipeline's ref slug and default-branch
//! tags in the same repository (the previous pipeline's image), `--cache-from`, and the base images
//! — and before compressing a layer it hashes the layer's tar ([`super::layer::diff_id`], one pass
//! over the files at sha256 speed). A layer whose `diff_id` a candidate lists reuses that
//! candidate's blob: the push engine HEADs it (same repository) or mounts it (same registry), and it
//! is never compressed or uploaded again.
//!
//! When the pre-hash pays: only when at least one candidate was read and lists a layer compressed as
//! this build asks (gzip or zstd) — a base image another tool built does not count, as it cannot hold
//! a layer hoist writes ([`Candidates::add_base`]). Without one, nothing is hashed first, and a layer
//! costs what it did before. With one, a layer that still matches nothing pays one extra read-and-hash of its files
//! (from the page cache) before compression, measured in docs/build-cache.md.
//!
//! Only small GETs are made: a manifest (and, for an index, the platform's manifest) and a config per
//! candidate, concurrently. A candidate that is missing or unreadable is noted and skipped: the
//! build goes on without it.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::Value;

use super::layer::Compression;
use super::source::{BaseImage, Platform};
use crate::model::{media, Blob, BlobSource, Digest, OciDescriptor, Reference};
use crate::push::Clients;
use crate::registry::ops::RetryPolicy;

/// A layer blob a candidate image has, by the `diff_id` its config gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The candidate as the log names it (`host/repo:tag`, or the FROM reference of a base).
    pub from: String,
    /// Where the blob is: the candidate's registry and repository (a mirror's for a mirrored base).
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

impl Match {
    /// The reused layer's blob: in the candidate's repository, for the push engine to HEAD or mount.
    pub fn blob(&self) -> Blob {
        Blob {
            digest: self.digest.clone(),
            size: self.size,
            media_type: self.media_type.clone(),
            source: BlobSource::Remote { registry: self.registry.clone(), repository: self.repository.clone() },
        }
    }
}

/// The candidates of one build (one platform): what was read, what could not be, and every layer
/// they list by `diff_id` (the first candidate listing one wins: candidates come in order of
/// likelihood, the destination first).
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    by_diff_id: HashMap<Digest, Vec<Match>>,
    /// The candidates whose config was read.
    pub read: Vec<String>,
    /// The candidates that were not, and why (a tag not pushed yet, no access, not an image).
    pub unread: Vec<(String, String)>,
    /// Why nothing is looked up at all (`--no-cache-from`); `None` when candidates were asked for.
    pub off: Option<String>,
    /// Base images another tool built (no `hoist build` in their history): their layers are matched
    /// when another candidate makes the pre-hash worth it, but never make it so on their own.
    foreign_bases: Vec<String>,
}

/// Whether a candidate's layer compressed as `media_type` can stand for one this build compresses
/// with `compression` (any gzip level stands for any other: the content is the same).
fn compatible(compression: Compression, media_type: &str) -> bool {
    match compression {
        Compression::Gzip(_) => media_type == media::OCI_LAYER_GZIP || media_type == media::DOCKER_LAYER_GZIP,
        Compression::Zstd(_) => media_type == media::OCI_LAYER_ZSTD,
    }
}

impl Candidates {
    /// No registry lookups: every layer is built (the reason goes into each layer's record).
    pub fn off(why: &str) -> Candidates {
        Candidates { off: Some(why.to_string()), ..Default::default() }
    }

    /// Adds one image's layers: its config's `rootfs.diff_ids` paired with its manifest's layers.
    pub fn add(&mut self, from: &str, source: &Reference, config: &Value, layers: &[OciDescriptor]) {
        let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if diff_ids.len() != layers.len() {
            self.unread.push((
                from.to_string(),
                format!("its config lists {} diff_ids for {} layers", diff_ids.len(), layers.len()),
            ));
            return;
        }
        for (diff_id, d) in diff_ids.iter().zip(layers) {
            let (Ok(diff_id), Ok(digest)) = (diff_id.parse::<Digest>(), d.digest.parse::<Digest>()) else { continue };
            let m = Match {
                from: from.to_string(),
                registry: source.registry().to_string(),
                repository: source.repository().to_string(),
                digest,
                size: d.size.max(0) as u64,
                media_type: d.media_type.clone(),
            };
            let all = self.by_diff_id.entry(diff_id).or_default();
            if !all.contains(&m) {
                all.push(m);
            }
        }
        self.read.push(from.to_string());
    }

    /// Adds a base image ([`Candidates::add`]). One that hoist did not build cannot hold a layer this
    /// build writes — another builder's tar of the same files differs in its headers — so it is noted
    /// as foreign: a cold build `FROM` a public base pays no pre-hash.
    pub fn add_base(&mut self, from: &str, source: &Reference, config: &Value, layers: &[OciDescriptor]) {
        self.add(from, source, config, layers);
        let by_hoist = config["history"]
            .as_array()
            .is_some_and(|h| h.iter().any(|e| e["comment"].as_str() == Some(super::HISTORY_COMMENT)));
        if !by_hoist {
            self.foreign_bases.push(from.to_string());
        }
    }

    /// Whether hashing a layer before compressing it can pay: some candidate other than a foreign
    /// base ([`Candidates::add_base`]) has a layer this build could reuse as it is compressed.
    pub fn worth_hashing(&self, compression: Compression) -> bool {
        self.by_diff_id
            .values()
            .flatten()
            .any(|m| compatible(compression, &m.media_type) && !self.foreign_bases.contains(&m.from))
    }

    /// Why a layer was built without a pre-hash ([`Candidates::worth_hashing`] said no).
    pub fn why_not_hashed(&self) -> String {
        if self.off.is_none() && !self.read.is_empty() && self.read.iter().all(|r| self.foreign_bases.contains(r)) {
            let n = self.read.len();
            return format!(
                "new: not looked up — the only image{} read ({}) {} base{} another tool built, which cannot hold a \
                 layer hoist writes",
                if n == 1 { "" } else { "s" },
                self.read.join(", "),
                if n == 1 { "is a" } else { "are" },
                if n == 1 { "" } else { "s" }
            );
        }
        self.why_not()
    }

    /// The blob to reuse for a layer with `diff_id`, or why there is none (for the log).
    pub fn find(&self, diff_id: &Digest, compression: Compression) -> Result<&Match, String> {
        let all = self.by_diff_id.get(diff_id).map(Vec::as_slice).unwrap_or_default();
        if let Some(m) = all.iter().find(|m| compatible(compression, &m.media_type)) {
            return Ok(m);
        }
        if let Some(m) = all.first() {
            return Err(format!(
                "{} has it, but as {} while this build compresses with {}",
                m.from,
                m.media_type,
                compression.tag()
            ));
        }
        Err(self.why_not())
    }

    /// Why a layer was built without looking (no pre-hash) or without finding a match.
    pub fn why_not(&self) -> String {
        if let Some(off) = &self.off {
            return off.clone();
        }
        match self.read.len() {
            0 if self.unread.is_empty() => "no image to reuse layers from".to_string(),
            0 => format!("no candidate image could be read ({})", self.unread_list()),
            n => format!(
                "new: none of the {n} image{} read lists it ({})",
                if n == 1 { "" } else { "s" },
                self.read.join(", ")
            ),
        }
    }

    /// `ref: why; …` of the candidates not read.
    pub fn unread_list(&self) -> String {
        self.unread.iter().map(|(r, why)| format!("{r}: {why}")).collect::<Vec<_>>().join("; ")
    }
}

/// Reads the candidates `refs` (concurrently; manifest and config only) for `platform`, then adds
/// the base images already resolved (`bases`, no request), in that order.
pub async fn gather(
    clients: &Clients<'_>,
    refs: &[Reference],
    bases: &[Arc<BaseImage>],
    platform: &Platform,
    retry: RetryPolicy,
) -> Candidates {
    let mut out = Candidates::default();
    let mut seen: Vec<String> = Vec::new();
    let mut unique: Vec<&Reference> = Vec::new();
    for r in refs {
        let s = r.to_string();
        if !seen.contains(&s) {
            seen.push(s);
            unique.push(r);
        }
    }
    let reads = join_all(unique.iter().map(|r| async move {
        let name = r.to_string();
        (name.clone(), super::base::resolve_at(clients, &name, r, platform, retry).await)
    }))
    .await;
    for ((name, read), reference) in reads.into_iter().zip(unique.iter()) {
        match read {
            Ok((_, config, layers, _)) => out.add(&name, reference, &config, &layers),
            Err(e) => {
                let why = short_error(&e, &name);
                out.unread.push((name, why));
            }
        }
    }
    for b in bases {
        let name = b.reference.to_string();
        if !out.read.contains(&name) {
            out.add_base(&name, &b.source, &b.config, &b.layers);
        }
    }
    out
}

/// The error without the context [`super::base::resolve_at`] gives it (which names the candidate,
/// as the log line already does).
fn short_error(e: &crate::error::Error, name: &str) -> String {
    let s = e.to_string();
    s.strip_prefix(&format!("resolving base image {name}: ")).unwrap_or(&s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desc(digest: &Digest, media_type: &str) -> OciDescriptor {
        OciDescriptor {
            media_type: media_type.into(),
            digest: digest.to_string(),
            size: 42,
            urls: None,
            annotations: None,
            artifact_type: None,
        }
    }

    #[test]
    fn matches_by_diff_id_and_compression() {
        let (d1, d2) = (Digest::sha256_of(b"tar1"), Digest::sha256_of(b"tar2"));
        let (b1, b2) = (Digest::sha256_of(b"gz1"), Digest::sha256_of(b"zst2"));
        let r: Reference = "reg.example/team/app:main".parse().unwrap();
        let mut c = Candidates::default();
        let gz = Compression::default();
        assert!(!c.worth_hashing(gz));
        assert_eq!(c.why_not(), "no image to reuse layers from");
        let config = json!({"rootfs": {"type": "layers", "diff_ids": [d1.to_string(), d2.to_string()]}});
        c.add(
            "reg.example/team/app:main",
            &r,
            &config,
            &[desc(&b1, media::OCI_LAYER_GZIP), desc(&b2, media::OCI_LAYER_ZSTD)],
        );
        assert!(c.worth_hashing(gz) && c.worth_hashing(Compression::Zstd(3)));
        let m = c.find(&d1, Compression::Gzip(9)).unwrap();
        assert_eq!((m.digest.clone(), m.size, m.repository.as_str()), (b1.clone(), 42, "team/app"));
        assert!(matches!(m.blob().source, BlobSource::Remote { ref registry, .. } if registry == "reg.example"));
        let why = c.find(&d2, gz).unwrap_err();
        assert!(why.contains("as application/vnd.oci.image.layer.v1.tar+zstd") && why.contains("gzip-"), "{why}");
        let why = c.find(&Digest::sha256_of(b"other"), gz).unwrap_err();
        assert!(why.contains("none of the 1 image read") && why.contains("team/app:main"), "{why}");
        // A config that does not pair with its manifest is not used.
        c.add("bad", &r, &json!({"rootfs": {"diff_ids": []}}), &[desc(&b1, media::OCI_LAYER_GZIP)]);
        assert!(c.unread_list().contains("bad: its config lists 0 diff_ids for 1 layers"));
        assert_eq!(Candidates::off("--no-cache-from").why_not(), "--no-cache-from");
    }

    #[test]
    fn a_base_another_tool_built_matches_but_never_makes_the_pre_hash_worth_it_alone() {
        let (d1, b1) = (Digest::sha256_of(b"tar1"), Digest::sha256_of(b"gz1"));
        let gz = Compression::default();
        let r: Reference = "docker.io/library/debian:12".parse().unwrap();
        let foreign = json!({"rootfs": {"diff_ids": [d1.to_string()]},
            "history": [{"created_by": "/bin/sh -c #(nop) ADD file:… in / "}]});
        let mut c = Candidates::default();
        c.add_base("debian:12", &r, &foreign, &[desc(&b1, media::DOCKER_LAYER_GZIP)]);
        assert!(!c.worth_hashing(gz), "a public base alone: no pre-hash");
        let why = c.why_not_hashed();
        assert!(why.contains("not looked up") && why.contains("debian:12") && why.contains("another tool"), "{why}");
        assert!(c.find(&d1, gz).is_ok(), "still matched when something else makes hashing pay");

        // A base hoist built may hold this build's layers: it counts.
        let mut c = Candidates::default();
        let ours = json!({"rootfs": {"diff_ids": [d1.to_string()]},
            "history": [{"created_by": "COPY motd /etc/", "comment": crate::builder::HISTORY_COMMENT}]});
        c.add_base("reg.example/base/with-motd:1", &r, &ours, &[desc(&b1, media::OCI_LAYER_GZIP)]);
        assert!(c.worth_hashing(gz));

        // So does any other candidate (the destination, branch tags, --cache-from), beside a foreign base.
        let mut c = Candidates::default();
        c.add_base("debian:12", &r, &foreign, &[desc(&b1, media::DOCKER_LAYER_GZIP)]);
        let d2 = Digest::sha256_of(b"tar2");
        c.add(
            "reg.example/team/app:main",
            &r,
            &json!({"rootfs": {"diff_ids": [d2.to_string()]}}),
            &[desc(&b1, media::OCI_LAYER_GZIP)],
        );
        assert!(c.worth_hashing(gz));
        assert!(c.why_not_hashed().contains("none of the 2 images read"), "{}", c.why_not_hashed());
    }
}
