//! `hoist ls` and `hoist inspect`: what a repository holds and what a reference is — digest, media
//! type, size, platforms, config summary, layers, annotations — as a [`Description`] that renders as
//! text for people and as JSON for machines. Reads manifests and, for an image, its config; never a layer.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::{open, pick, Parsed};
use crate::builder::source::Platform;
use crate::error::{Context, Error, Result};
use crate::model::{media, Digest, Reference};
use crate::progress::human_bytes;
use crate::push::Clients;

/// The tags of `repo`'s repository (`page_size` tags per request; `None`: the registry's default).
pub async fn ls(clients: &Clients<'_>, repo: &Reference, page_size: Option<u32>) -> Result<Vec<String>> {
    let ctx = || format!("listing {}", repo.name());
    let r = open(clients, repo, "pull").await.with_context(ctx)?;
    r.list_tags(page_size).await
}

/// What `hoist inspect` reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    pub reference: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The index this image was picked from with `--platform`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<Digest>,
    /// An index's entries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<Entry>,
    /// An image's config, summarised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Entry>,
    pub annotations: BTreeMap<String, String>,
    /// Artifacts attached to this digest (first level; `hoist referrers` lists them), when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers: Option<usize>,
}

/// A descriptor in the description: an index entry or a layer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The parts of an image config people look for. Fields the config lacks are left out.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSummary {
    pub digest: Option<Digest>,
    pub media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<usize>,
}

impl ConfigSummary {
    /// Summarises an image config (OCI or docker: both keep run settings under `config`).
    pub fn of(digest: Digest, media_type: &str, v: &Value) -> ConfigSummary {
        let run = v.get("config").unwrap_or(&Value::Null);
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let list = |k: &str| {
            run.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        };
        ConfigSummary {
            digest: Some(digest),
            media_type: media_type.to_string(),
            platform: super::platform_name(v),
            created: s(v, "created"),
            author: s(v, "author"),
            user: s(run, "User"),
            working_dir: s(run, "WorkingDir"),
            entrypoint: list("Entrypoint"),
            cmd: list("Cmd"),
            env: list("Env").unwrap_or_default(),
            exposed_ports: run
                .get("ExposedPorts")
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
            labels: run
                .get("Labels")
                .and_then(Value::as_object)
                .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default(),
            history: v.get("history").and_then(Value::as_array).map(Vec::len),
        }
    }
}

/// What `inspect` prints besides the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// The description.
    Summary,
    /// The manifest's exact bytes.
    Raw,
    /// The image config's exact bytes.
    Config,
}

/// Inspects `reference`; with `platform`, an index is replaced by that platform's image. Returns the
/// description and, for [`Show::Raw`]/[`Show::Config`], the exact bytes to print.
pub async fn inspect(
    clients: &Clients<'_>,
    reference: &Reference,
    platform: Option<&Platform>,
    show: Show,
) -> Result<(Description, Option<Vec<u8>>)> {
    let ctx = || format!("inspecting {reference}");
    let repo = open(clients, reference, "pull").await.with_context(ctx)?;
    let mut m = repo.get_manifest(&reference.manifest_reference()).await.with_context(ctx)?;
    let mut parsed = Parsed::of(&m).with_context(ctx)?;
    let mut from_index = None;
    let wants_image = platform.is_some() || show == Show::Config;
    if let (true, Parsed::Index(index)) = (wants_image, &parsed) {
        let child = match platform {
            Some(p) => pick(index, p).with_context(ctx)?,
            None => match index.manifests.as_slice() {
                [only] => only,
                _ => {
                    let have: Vec<String> = index.manifests.iter().filter_map(|d| d.platform_name()).collect();
                    return Err(Error::usage(format!("{reference} is an image index: say which platform's config"))
                        .with_hint(format!("add --platform OS/ARCH; it has: {}", have.join(", "))));
                }
            },
        };
        from_index = Some(m.digest.clone());
        m = repo.get_manifest(child.digest.as_str()).await.with_context(ctx)?;
        parsed = Parsed::of(&m).with_context(ctx)?;
    }
    let mut d = Description {
        reference: reference.to_string(),
        digest: m.digest.clone(),
        media_type: m.media_type.clone(),
        size: m.bytes.len() as u64,
        index: from_index,
        manifests: Vec::new(),
        config: None,
        layers: Vec::new(),
        annotations: BTreeMap::new(),
        referrers: None,
    };
    let entry = |x: &super::Descriptor| Entry {
        digest: x.digest.clone(),
        media_type: x.media_type.clone(),
        size: x.size,
        platform: x.platform_name(),
        annotations: x.annotations.clone().unwrap_or_default(),
    };
    let mut extra = None;
    match parsed {
        Parsed::Index(index) => {
            d.manifests = index.manifests.iter().map(entry).collect();
            d.annotations = index.annotations.unwrap_or_default();
        }
        Parsed::Image(image) => {
            d.layers = image.layers.iter().map(entry).collect();
            d.annotations = image.annotations.unwrap_or_default();
            let bytes = repo.get_blob_bytes(&image.config.digest).await.with_context(ctx)?;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            d.config = Some(ConfigSummary::of(image.config.digest.clone(), &image.config.media_type, &v));
            if show == Show::Config {
                extra = Some(bytes.to_vec());
            }
        }
    }
    if show == Show::Raw {
        extra = Some(m.bytes.to_vec());
    }
    if show == Show::Summary {
        let found = super::referrers::list(&repo, &m.digest, None).await.with_context(ctx)?;
        d.referrers = Some(found.referrers.len());
    }
    Ok((d, extra))
}

impl Description {
    /// The description for people: one `Key: value` per line, lists indented below their key.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: &str| out.push_str(&format!("{:<12}{v}\n", format!("{k}:")));
        line("Reference", &self.reference);
        line("Digest", self.digest.as_str());
        line("Media type", &self.media_type);
        line("Size", &human_bytes(self.size));
        if let Some(i) = &self.index {
            line("From index", i.as_str());
        }
        if media::is_index(&self.media_type) {
            line("Manifests", &self.manifests.len().to_string());
        }
        if let Some(n) = self.referrers {
            line("Referrers", &n.to_string());
        }
        if let Some(c) = &self.config {
            if let Some(p) = &c.platform {
                line("Platform", p);
            }
            for (k, v) in
                [("Created", &c.created), ("Author", &c.author), ("User", &c.user), ("Workdir", &c.working_dir)]
            {
                if let Some(v) = v {
                    line(k, v);
                }
            }
            for (k, v) in [("Entrypoint", &c.entrypoint), ("Cmd", &c.cmd)] {
                if let Some(v) = v {
                    line(k, &serde_json::to_string(v).expect("strings serialize"));
                }
            }
            if !c.exposed_ports.is_empty() {
                line("Ports", &c.exposed_ports.join(", "));
            }
            if let Some(d) = &c.digest {
                line("Config", &format!("{d} ({})", c.media_type));
            }
            let total: u64 = self.layers.iter().map(|l| l.size).sum();
            line("Layers", &format!("{} ({})", self.layers.len(), human_bytes(total)));
        }
        let mut list = |title: &str, rows: Vec<String>| {
            if !rows.is_empty() {
                out.push_str(&format!("{title}:\n"));
                for r in rows {
                    out.push_str(&format!("  {r}\n"));
                }
            }
        };
        list(
            "Platforms",
            self.manifests
                .iter()
                .map(|e| {
                    format!(
                        "{:<16} {} {:>10}",
                        e.platform.as_deref().unwrap_or("(none)"),
                        e.digest,
                        human_bytes(e.size)
                    )
                })
                .collect(),
        );
        list(
            "Layer list",
            self.layers.iter().map(|l| format!("{} {:>10}  {}", l.digest, human_bytes(l.size), l.media_type)).collect(),
        );
        if let Some(c) = &self.config {
            list("Env", c.env.clone());
            list("Labels", c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect());
        }
        list("Annotations", self.annotations.iter().map(|(k, v)| format!("{k}={v}")).collect());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_summary_reads_oci_and_docker_configs() {
        let v = serde_json::json!({
            "architecture": "arm64", "os": "linux", "variant": "v8", "created": "2024-01-01T00:00:00Z",
            "config": {"Entrypoint": ["/app"], "Cmd": null, "Env": ["PATH=/bin"], "User": "1000",
                       "ExposedPorts": {"8080/tcp": {}}, "Labels": {"a": "b"}},
            "history": [{}, {}]
        });
        let d = Digest::sha256_of(b"c");
        let s = ConfigSummary::of(d.clone(), media::OCI_CONFIG, &v);
        assert_eq!(s.platform.as_deref(), Some("linux/arm64/v8"));
        assert_eq!(s.entrypoint, Some(vec!["/app".to_string()]));
        assert_eq!(s.cmd, None);
        assert_eq!(s.exposed_ports, vec!["8080/tcp"]);
        assert_eq!(s.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(s.history, Some(2));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["workingDir"], Value::Null);
        assert_eq!(json["user"], "1000");
        // A chart's config (no run settings, no platform) summarises to almost nothing.
        let chart = ConfigSummary::of(d, "application/vnd.cncf.helm.config.v1+json", &serde_json::json!({"name": "c"}));
        assert!(chart.platform.is_none() && chart.env.is_empty());
    }
}
