//! `hoist index create`: one OCI image index from images pushed separately (one CI job per
//! platform), each entry's platform read from its image's config. `--append` adds to the index the
//! destination already holds, replacing an entry of the same platform. The images' manifests and
//! blobs reach the destination through the push engine — skipped when already there, mounted from
//! the source repository on the same registry, streamed otherwise — never downloaded to disk.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{open, read, Descriptor, Parsed};
use crate::error::{Context, Error, Result};
use crate::model::{media, Artifact, Blob, Digest, Manifest, Reference};
use crate::progress::Reporter;
use crate::push::{Clients, PushReport};

/// One entry of the index being made.
struct Entry {
    descriptor: Value,
    platform: String,
    digest: Digest,
    /// The source it came from, or `None` for an entry of the index appended to.
    from: Option<String>,
}

/// Builds the index from `sources` (images, or indexes whose entries are taken as they are) and
/// pushes it to `dest`; with `append`, starts from the index at `dest`.
pub async fn create(
    dest: &Reference,
    sources: &[Reference],
    append: bool,
    clients: &Clients<'_>,
    reporter: &Arc<Reporter>,
) -> Result<PushReport> {
    let ctx = || format!("creating image index {dest}");
    let mut entries: Vec<Entry> = Vec::new();
    let mut annotations = None;
    if append {
        let repo = open(clients, dest, "pull").await.with_context(ctx)?;
        match repo.manifest_digest(&dest.manifest_reference()).await.with_context(ctx)? {
            None => reporter.note(&format!("{dest} does not exist yet: --append starts a new index")),
            Some(_) => {
                let m = repo.get_manifest(&dest.manifest_reference()).await.with_context(ctx)?;
                let Parsed::Index(index) = Parsed::of(&m)? else {
                    return Err(Error::usage(format!("{dest} is an image ({}), not an index", m.media_type))
                        .context(ctx())
                        .with_hint("--append adds to an existing index; drop it to replace the tag with a new index"));
                };
                annotations = index.annotations.clone();
                let raw: Value = serde_json::from_slice(&m.bytes).expect("parsed above");
                for (d, v) in index.manifests.iter().zip(raw["manifests"].as_array().into_iter().flatten()) {
                    entries.push(Entry {
                        descriptor: v.clone(),
                        platform: d.platform_name().unwrap_or_default(),
                        digest: d.digest.clone(),
                        from: None,
                    });
                }
            }
        }
    }
    let mut blobs: Vec<Blob> = Vec::new();
    let mut manifests: Vec<Manifest> = Vec::new();
    for src in sources {
        let sctx = || format!("reading {src}");
        let repo = open(clients, src, "pull").await.with_context(sctx).with_context(ctx)?;
        let artifact = read(&repo, src, None).await.with_context(sctx).with_context(ctx)?;
        let root = artifact.root();
        let new: Vec<Entry> = match Parsed::of(root)? {
            Parsed::Index(index) => {
                let raw: Value = serde_json::from_slice(&root.bytes).expect("parsed above");
                index
                    .manifests
                    .iter()
                    .zip(raw["manifests"].as_array().into_iter().flatten())
                    .map(|(d, v)| Entry {
                        descriptor: v.clone(),
                        platform: d.platform_name().unwrap_or_default(),
                        digest: d.digest.clone(),
                        from: Some(src.to_string()),
                    })
                    .collect()
            }
            Parsed::Image(image) => {
                let config = repo.get_blob_bytes(&image.config.digest).await.with_context(sctx).with_context(ctx)?;
                vec![image_entry(src, root, &image.config, &config)?]
            }
        };
        for e in new {
            add(&mut entries, e, reporter)?;
        }
        let root_is_index = media::is_index(&root.media_type);
        merge(&mut blobs, &mut manifests, artifact, root_is_index);
    }
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": entries.iter().map(|e| e.descriptor.clone()).collect::<Vec<_>>(),
    });
    if let Some(a) = annotations {
        index["annotations"] = json!(a);
    }
    let bytes = serde_json::to_vec_pretty(&index).expect("index serializes");
    manifests.push(Manifest::new(media::OCI_INDEX, bytes));
    let platforms: Vec<&str> = entries.iter().map(|e| e.platform.as_str()).collect();
    reporter.note(&format!("index of {} image(s): {}", entries.len(), platforms.join(", ")));
    let artifact = Artifact { blobs, manifests };
    let mut report =
        crate::push::push_with(&artifact, std::slice::from_ref(dest), clients, reporter).await.with_context(ctx)?;
    // What is attached to each image taken in (signatures, SBOMs) stays attached to its digest: copied
    // from its source repository into the index's, where the images now are too.
    for src in sources {
        let from = src.to_string();
        let subjects: Vec<Digest> =
            entries.iter().filter(|e| e.from.as_deref() == Some(from.as_str())).map(|e| e.digest.clone()).collect();
        if !subjects.is_empty() {
            let copied = super::referrers::copy(src, dest, &subjects, clients, reporter).await.with_context(ctx)?;
            report.blobs.extend(copied.blobs);
        }
    }
    Ok(report)
}

/// The index entry for image `m` of `src`: its descriptor with the platform its config states.
fn image_entry(src: &Reference, m: &Manifest, config: &Descriptor, config_bytes: &[u8]) -> Result<Entry> {
    let v: Value = serde_json::from_slice(config_bytes)
        .map_err(|e| Error::other(format!("the config of {src} is not JSON: {e}")))?;
    let platform_name = super::platform_name(&v).ok_or_else(|| {
        Error::usage(format!(
            "{src} is not a container image: its config ({}) names no os/architecture",
            config.media_type
        ))
    })?;
    let mut platform = json!({"architecture": v["architecture"], "os": v["os"]});
    for key in ["variant", "os.version", "os.features"] {
        if let Some(x) = v.get(key).filter(|x| !x.is_null() && x.as_str() != Some("")) {
            platform[key] = x.clone();
        }
    }
    Ok(Entry {
        descriptor: json!({
            "mediaType": m.media_type,
            "digest": m.digest,
            "size": m.bytes.len(),
            "platform": platform,
        }),
        platform: platform_name,
        digest: m.digest.clone(),
        from: Some(src.to_string()),
    })
}

/// Adds `e`. An entry of the same platform from the index appended to is replaced (said on
/// stderr); two sources of one platform in the same run are a mistake.
fn add(entries: &mut Vec<Entry>, e: Entry, reporter: &Reporter) -> Result<()> {
    let Some(i) = entries.iter().position(|x| !e.platform.is_empty() && x.platform == e.platform) else {
        entries.push(e);
        return Ok(());
    };
    let old = &entries[i];
    if old.digest == e.digest {
        return Ok(());
    }
    if let (Some(a), Some(b)) = (&old.from, &e.from) {
        return Err(Error::usage(format!(
            "{a} and {b} are both {}: an index holds one image per platform",
            e.platform
        )));
    }
    reporter.note(&format!("{}: {} replaces {}", e.platform, e.digest, old.digest));
    entries[i] = e;
    Ok(())
}

/// Adds a source's manifests and blobs to what is pushed. An index source's own manifest is left
/// out (its entries go into the new index; the index itself is not needed).
fn merge(blobs: &mut Vec<Blob>, manifests: &mut Vec<Manifest>, artifact: Artifact, root_is_index: bool) {
    let count = artifact.manifests.len() - usize::from(root_is_index);
    for m in artifact.manifests.into_iter().take(count) {
        if !manifests.iter().any(|x| x.digest == m.digest) {
            manifests.push(m);
        }
    }
    for b in artifact.blobs {
        if !blobs.iter().any(|x| x.digest == b.digest) {
            blobs.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Mode;

    fn entry(platform: &str, seed: &[u8], from: Option<&str>) -> Entry {
        Entry {
            descriptor: json!({"digest": Digest::sha256_of(seed)}),
            platform: platform.to_string(),
            digest: Digest::sha256_of(seed),
            from: from.map(str::to_string),
        }
    }

    #[test]
    fn image_entries_carry_the_configs_platform() {
        let src: Reference = "r.example/app:arm".parse().unwrap();
        let m = Manifest::new(media::OCI_MANIFEST, br#"{"schemaVersion":2}"#.to_vec());
        let config: Descriptor = serde_json::from_value(
            json!({"mediaType": media::OCI_CONFIG, "digest": Digest::sha256_of(b"c"), "size": 1}),
        )
        .unwrap();
        let cfg = br#"{"os":"windows","architecture":"amd64","os.version":"10.0.17763.1","variant":"","rootfs":{}}"#;
        let e = image_entry(&src, &m, &config, cfg).unwrap();
        assert_eq!(e.platform, "windows/amd64");
        assert_eq!(
            e.descriptor["platform"],
            json!({"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1"})
        );
        assert_eq!(e.descriptor["size"], m.bytes.len());
        assert_eq!(e.descriptor["mediaType"], media::OCI_MANIFEST);
        // A chart's config names no platform: not an image for an index.
        let e = image_entry(&src, &m, &config, br#"{"name":"chart","version":"1.0.0"}"#).err().unwrap();
        assert!(e.to_string().contains("not a container image"), "{e}");
    }

    #[test]
    fn one_entry_per_platform_appended_ones_replaced() {
        let r = Reporter::new(Mode::Quiet);
        let mut entries = vec![entry("linux/amd64", b"old", None)];
        add(&mut entries, entry("linux/arm64", b"arm", Some("a:arm")), &r).unwrap();
        add(&mut entries, entry("linux/amd64", b"new", Some("a:amd")), &r).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.digest.clone()).collect::<Vec<_>>(),
            [Digest::sha256_of(b"new"), Digest::sha256_of(b"arm")]
        );
        // The same image twice is one entry; two images of one platform are refused.
        add(&mut entries, entry("linux/arm64", b"arm", Some("a:arm-again")), &r).unwrap();
        assert_eq!(entries.len(), 2);
        let e = add(&mut entries, entry("linux/arm64", b"other", Some("a:arm2")), &r).unwrap_err();
        assert!(e.to_string().contains("one image per platform"), "{e}");
    }
}
