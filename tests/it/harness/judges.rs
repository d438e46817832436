//! The tools people run, as judges of what hoist pushed: crane (go-containerregistry), regctl (regclient) and
//! oras read every image, index and chart the tests push. [`check_remote`] is the one call a test adds after a
//! push: `crane validate --remote` (every manifest of an index, every blob downloaded and its digest and size
//! checked against the descriptors; diff IDs against the config for images), `regctl image copy` into an OCI
//! layout (every blob downloaded, digests checked), `regctl manifest get` and `oras manifest fetch`, both of
//! which must return exactly the bytes the registry stores. [`Judge::crane_export`]
//! flattens an image into a tar the way crane does, for comparing with `hoist pull --rootfs`
//! ([`assert_export_matches_rootfs`]).
//!
//! Each judge runs with a clean environment and its own HOME holding only a docker `config.json` with the
//! registry's credentials (crane and oras read it; regctl gets its own config with the same credentials), and,
//! for a TLS registry, the test CA as `SSL_CERT_FILE` (crane, regctl) or `--ca-file` (oras). A missing judge
//! fails the test with the hint to run `scripts/go-tools.sh` ([`super::require_go_tool`]).

use super::registry::Registry;
use super::{require_go_tool, run_with_timeout, scratch_dir, TOOL_TIMEOUT};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The judges, set up for one registry.
pub struct Judge<'a> {
    reg: &'a Registry,
    home: PathBuf,
}

/// Every judge's verdict on `reference` (`repo:tag`, `repo@sha256:…`, with or without the registry's host):
/// `crane validate --remote`; `regctl image copy` into an OCI layout (every blob of every platform downloaded
/// and its digest checked); `regctl manifest get` and `oras manifest fetch` returning the stored bytes.
pub fn check_remote(reg: &Registry, reference: &str) {
    let j = Judge::new(reg);
    j.crane_validate(reference);
    let stored = j.stored_manifest(reference);
    j.regctl_copy_to_layout(reference, &super::sha256_digest(&stored));
    let by_regctl = j.regctl_manifest_get(reference);
    assert!(
        by_regctl == stored,
        "regctl manifest get {reference} returned other bytes than the registry stores:\n{}\nvs\n{}",
        String::from_utf8_lossy(&by_regctl),
        String::from_utf8_lossy(&stored)
    );
    let by_oras = j.oras_manifest_fetch(reference);
    assert!(
        by_oras == stored,
        "oras manifest fetch {reference} returned other bytes than the registry stores:\n{}\nvs\n{}",
        String::from_utf8_lossy(&by_oras),
        String::from_utf8_lossy(&stored)
    );
}

impl<'a> Judge<'a> {
    pub fn new(reg: &'a Registry) -> Self {
        let home = super::scratch_dir("judge-home");
        let host = reg.host();
        let docker = home.join(".docker");
        std::fs::create_dir_all(&docker).expect("create .docker");
        let mut auths = serde_json::Map::new();
        let mut regctl_host = serde_json::json!({
            "tls": if reg.is_tls() { "enabled" } else { "disabled" },
        });
        if let Some((u, p)) = reg.credentials() {
            use base64::Engine;
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            auths.insert(host.clone(), serde_json::json!({ "auth": auth }));
            auths.insert(format!("localhost:{}", reg.port()), serde_json::json!({ "auth": auth }));
            regctl_host["user"] = u.into();
            regctl_host["pass"] = p.into();
        }
        if reg.is_tls() {
            let pem = std::fs::read_to_string(reg.ca_pem_path()).expect("read the test CA");
            regctl_host["regcert"] = pem.into();
        }
        std::fs::write(docker.join("config.json"), serde_json::json!({ "auths": auths }).to_string())
            .expect("write docker config");
        let regctl = home.join(".regctl");
        std::fs::create_dir_all(&regctl).expect("create .regctl");
        std::fs::write(regctl.join("config.json"), serde_json::json!({ "hosts": { host: regctl_host } }).to_string())
            .expect("write regctl config");
        Judge { reg, home }
    }

    /// A `Command` for a Go-built judge with a clean environment, HOME and DOCKER_CONFIG of this judge, and the
    /// test CA trusted when the registry speaks TLS.
    pub fn cmd(&self, tool: &str) -> Command {
        let mut cmd = Command::new(super::require_go_tool(tool));
        super::clean_env(&mut cmd, &self.home);
        cmd.env("DOCKER_CONFIG", self.home.join(".docker"));
        cmd.env("XDG_CONFIG_HOME", self.home.join(".config"));
        cmd.env("XDG_CACHE_HOME", self.home.join(".cache"));
        if self.reg.is_tls() {
            cmd.env("SSL_CERT_FILE", self.reg.ca_pem_path());
        }
        cmd
    }

    /// `HOST:PORT/<reference>` (a reference already starting with the host is kept).
    pub fn full_ref(&self, reference: &str) -> String {
        let host = self.reg.host();
        if reference.starts_with(&format!("{host}/")) {
            reference.to_string()
        } else {
            format!("{host}/{reference}")
        }
    }

    fn run(&self, what: &str, cmd: Command) -> Vec<u8> {
        super::skopeo::check(what, super::run_with_timeout(cmd, None, super::TOOL_TIMEOUT)).stdout
    }

    /// The manifest bytes the registry stores for `reference`, read directly.
    pub fn stored_manifest(&self, reference: &str) -> Vec<u8> {
        let (repo, r) = split_reference(&self.full_ref(reference), &self.reg.host());
        self.reg.manifest_bytes(&repo, &r).unwrap_or_else(|| panic!("{reference} is not in the registry"))
    }

    /// Whether the image, or any image of the index, at `reference` has a zstd layer.
    fn has_zstd_layers(&self, reference: &str) -> bool {
        let m: serde_json::Value = serde_json::from_slice(&self.stored_manifest(reference)).expect("manifest JSON");
        let zstd = |m: &serde_json::Value| {
            m["layers"]
                .as_array()
                .is_some_and(|ls| ls.iter().any(|l| l["mediaType"].as_str().is_some_and(|t| t.ends_with("+zstd"))))
        };
        match m["manifests"].as_array() {
            Some(children) => {
                let (repo, _) = split_reference(&self.full_ref(reference), &self.reg.host());
                children
                    .iter()
                    .filter_map(|c| c["digest"].as_str())
                    .any(|d| self.has_zstd_layers(&format!("{repo}@{d}")))
            }
            None => zstd(&m),
        }
    }

    /// `crane validate --remote REF`: panics with crane's output when crane rejects the image or index.
    /// crane's layer check reads every layer as gzip (`validate.Layer`), so for images with zstd layers it
    /// runs with `--fast` (manifests, config and descriptors; the layers are then judged by `regctl image copy`
    /// and `crane export`).
    pub fn crane_validate(&self, reference: &str) {
        let full = self.full_ref(reference);
        let mut cmd = self.cmd("crane");
        cmd.args(["validate", "--remote", &full]);
        if self.has_zstd_layers(reference) {
            cmd.arg("--fast");
        }
        let out = self.run(&format!("crane validate --remote {full}"), cmd);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("PASS"), "crane validate --remote {full} did not say PASS:\n{text}");
    }

    /// `regctl image copy REF ocidir://DIR:judge`: regctl downloads every manifest and blob (every platform
    /// of an index) and checks each digest; the layout's entry must be `digest`.
    pub fn regctl_copy_to_layout(&self, reference: &str, digest: &str) {
        let full = self.full_ref(reference);
        let dir = super::scratch_dir("regctl-copy");
        let mut cmd = self.cmd("regctl");
        cmd.args(["image", "copy", &full, &format!("ocidir://{}:judge", dir.display())]);
        self.run(&format!("regctl image copy {full}"), cmd);
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("regctl wrote index.json"))
                .expect("index.json");
        let found = index["manifests"].as_array().into_iter().flatten().any(|m| m["digest"] == digest);
        assert!(found, "regctl image copy of {full} holds no {digest}: {index}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `regctl manifest get --format raw-body REF`: the manifest bytes as regctl reads them.
    pub fn regctl_manifest_get(&self, reference: &str) -> Vec<u8> {
        let full = self.full_ref(reference);
        let mut cmd = self.cmd("regctl");
        cmd.args(["manifest", "get", "--format", "raw-body", &full]);
        self.run(&format!("regctl manifest get {full}"), cmd)
    }

    /// `oras manifest fetch REF`: the manifest bytes as oras reads them. oras-go refuses a token realm on a
    /// loopback address unless the realm's host name is the registry's: with a realm on `localhost` (see
    /// `TokenIssuerOpts::realm_host`, which crane needs) oras addresses the registry as `localhost:PORT`.
    pub fn oras_manifest_fetch(&self, reference: &str) -> Vec<u8> {
        let full = self.full_ref(reference);
        let realm_on_localhost =
            self.reg.token_issuer_opt().is_some_and(|t| t.opts().realm_host.eq_ignore_ascii_case("localhost"));
        let full = if realm_on_localhost {
            full.replacen(&self.reg.host(), &format!("localhost:{}", self.reg.port()), 1)
        } else {
            full
        };
        let mut cmd = self.cmd("oras");
        cmd.args(["manifest", "fetch", "--registry-config"]).arg(self.home.join(".docker/config.json"));
        if self.reg.is_tls() {
            cmd.arg("--ca-file").arg(self.reg.ca_pem_path());
        } else {
            cmd.arg("--plain-http");
        }
        cmd.arg(&full);
        self.run(&format!("oras manifest fetch {full}"), cmd)
    }

    /// `crane export [--platform P] REF FILE`: the image's layers flattened into one tar, as crane does it.
    pub fn crane_export(&self, reference: &str, platform: Option<&str>, tar: &Path) {
        let full = self.full_ref(reference);
        let mut cmd = self.cmd("crane");
        if let Some(p) = platform {
            cmd.args(["--platform", p]);
        }
        cmd.args(["export", &full]).arg(tar);
        self.run(&format!("crane export {full}"), cmd);
    }
}

/// `(repository, tag or digest)` of `host/repo[:tag][@digest]`.
fn split_reference(full: &str, host: &str) -> (String, String) {
    let rest = full.strip_prefix(&format!("{host}/")).unwrap_or(full);
    if let Some((repo, digest)) = rest.split_once('@') {
        let repo = repo.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map_or(repo, |(r, _)| r);
        return (repo.to_string(), digest.to_string());
    }
    match rest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (rest.to_string(), "latest".to_string()),
    }
}

/// One filesystem entry as both sides describe it: kind, permission bits, owner, and content digest or link
/// target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub content: String,
}

/// The entries of a flattened tar (`crane export`), hard links resolved to their target's content.
pub fn tar_tree(tar: &Path) -> BTreeMap<String, TreeEntry> {
    let mut out = BTreeMap::new();
    let mut links = Vec::new();
    let f = std::fs::File::open(tar).unwrap_or_else(|e| panic!("open {}: {e}", tar.display()));
    let mut a = tar::Archive::new(f);
    for e in a.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        let h = e.header().clone();
        let path = normal(&e.path().expect("tar path").to_string_lossy());
        if path.is_empty() {
            continue;
        }
        let (kind, content) = match h.entry_type() {
            tar::EntryType::Directory => ("dir", String::new()),
            tar::EntryType::Symlink => {
                ("symlink", e.link_name().expect("link").map(|l| l.to_string_lossy().into_owned()).unwrap_or_default())
            }
            tar::EntryType::Link => {
                let target = normal(&e.link_name().expect("link").unwrap_or_default().to_string_lossy());
                links.push((path.clone(), target));
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut v = Vec::new();
                e.read_to_end(&mut v).expect("read tar entry");
                ("file", super::sha256_digest(&v))
            }
            other => ("other", format!("{other:?}")),
        };
        let entry = TreeEntry {
            kind,
            mode: h.mode().expect("mode") & 0o7777,
            uid: h.uid().expect("uid"),
            gid: h.gid().expect("gid"),
            content,
        };
        out.insert(path, entry);
    }
    for (path, target) in links {
        let t = out.get(&target).unwrap_or_else(|| panic!("hard link {path} to missing {target}")).clone();
        out.insert(path, t);
    }
    out
}

/// The entries under `root` (an unpacked root filesystem).
pub fn dir_tree(root: &Path) -> BTreeMap<String, TreeEntry> {
    use std::os::unix::fs::MetadataExt;
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, TreeEntry>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
            let ft = m.file_type();
            let (kind, content) = if ft.is_symlink() {
                ("symlink", std::fs::read_link(&p).expect("readlink").to_string_lossy().into_owned())
            } else if ft.is_dir() {
                ("dir", String::new())
            } else if ft.is_file() {
                ("file", super::sha256_digest(&std::fs::read(&p).expect("read file")))
            } else {
                ("other", String::new())
            };
            out.insert(
                rel,
                TreeEntry { kind, mode: m.mode() & 0o7777, uid: m.uid() as u64, gid: m.gid() as u64, content },
            );
            if ft.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn normal(p: &str) -> String {
    p.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/').to_string()
}

/// `crane export` of `reference` and the root filesystem hoist unpacked at `rootfs` hold the same entries
/// (kind, mode, content, link target, and owner when the tests run as root, as hoist then sets owners). A
/// directory only hoist has must be the parent of an entry crane has: hoist makes missing parents (0755), a
/// flattened tar need not list them.
pub fn assert_export_matches_rootfs(reg: &Registry, reference: &str, platform: Option<&str>, rootfs: &Path) {
    use std::os::unix::fs::MetadataExt;
    let tmp = super::scratch_dir("crane-export");
    let owners = std::fs::metadata(&tmp).expect("scratch dir").uid() == 0;
    let tar = tmp.join("export.tar");
    Judge::new(reg).crane_export(reference, platform, &tar);
    let strip = |mut t: BTreeMap<String, TreeEntry>| {
        if !owners {
            for e in t.values_mut() {
                e.uid = 0;
                e.gid = 0;
            }
        }
        t
    };
    let crane = strip(tar_tree(&tar));
    let hoist = strip(dir_tree(rootfs));
    assert!(!crane.is_empty(), "crane export of {reference} is empty");
    let mut diffs = Vec::new();
    for (p, c) in &crane {
        match hoist.get(p) {
            Some(h) if h == c => {}
            Some(h) => diffs.push(format!("{p}: crane {c:?}, hoist {h:?}")),
            None => diffs.push(format!("{p}: only in crane export ({c:?})")),
        }
    }
    for (p, h) in &hoist {
        if crane.contains_key(p) {
            continue;
        }
        let parent_of_crane = h.kind == "dir" && crane.keys().any(|c| c.starts_with(&format!("{p}/")));
        if !parent_of_crane {
            diffs.push(format!("{p}: only in hoist's rootfs ({h:?})"));
        }
    }
    assert!(diffs.is_empty(), "crane export of {reference} differs from hoist pull --rootfs:\n{}", diffs.join("\n"));
}

/// The SPDX project's own validator (PyPI `spdx-tools`, `pyspdxtools -i`) accepts the document in
/// `file`; else the test fails with its message.
pub fn assert_valid_spdx(file: &Path) {
    let mut cmd = Command::new(super::require_tool_hint("pyspdxtools", "pip install spdx-tools==0.8.5"));
    cmd.arg("-i").arg(file);
    super::run_ok(cmd, &format!("pyspdxtools -i {} (the SPDX project's validator)", file.display()));
}

/// The CycloneDX project's own validator (PyPI `cyclonedx-python-lib[json-validation]`, strict, 1.6)
/// accepts the document in `file`; else the test fails with its message.
pub fn assert_valid_cyclonedx(file: &Path) {
    let mut cmd = Command::new(super::require_tool("python3"));
    cmd.args([
        "-c",
        "import sys\n\
         from cyclonedx.validation.json import JsonStrictValidator\n\
         from cyclonedx.schema import SchemaVersion\n\
         e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
         sys.exit(str(e) if e else 0)",
    ])
    .arg(file);
    let out = super::run_with_timeout(cmd, None, super::TOOL_TIMEOUT);
    assert!(
        out.status.success(),
        "the CycloneDX validator (pip install 'cyclonedx-python-lib[json-validation]') rejects {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `syft registry:REF -o json` (plain HTTP registry on loopback), parsed.
fn syft_json(reference: &str) -> serde_json::Value {
    let home = super::scratch_dir("syft-home");
    let mut cmd = Command::new(super::require_go_tool("syft"));
    cmd.args([&format!("registry:{reference}"), "-o", "json", "-q"])
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false");
    let out = super::run_with_timeout(cmd, None, super::TOOL_TIMEOUT);
    assert!(out.status.success(), "syft failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The purls syft (the pinned judge) lists for `reference`, whatever file each came from.
pub fn syft_purls(reference: &str) -> BTreeSet<String> {
    let v = syft_json(reference);
    v["artifacts"].as_array().unwrap().iter().filter_map(|a| a["purl"].as_str().map(str::to_string)).collect()
}

/// Each package syft lists for `reference`: its purl and the path it was read from.
pub fn syft_packages(reference: &str) -> BTreeSet<(String, String)> {
    let v = syft_json(reference);
    let mut found = BTreeSet::new();
    for a in v["artifacts"].as_array().unwrap() {
        let purl = a["purl"].as_str().unwrap_or_default();
        if purl.is_empty() {
            continue;
        }
        // The file the package was read from (syft's primary evidence), not the supporting ones
        // (a dist-info's RECORD, an egg-info's top_level.txt).
        for l in a["locations"].as_array().unwrap().iter().filter(|l| l["annotations"]["evidence"] == "primary") {
            found.insert((purl.to_string(), l["path"].as_str().unwrap().to_string()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn split_reference_reads_tags_digests_and_ports() {
        let s = |r| super::split_reference(r, "127.0.0.1:5000");
        assert_eq!(s("127.0.0.1:5000/a/b:1.0"), ("a/b".into(), "1.0".into()));
        assert_eq!(s("a/b"), ("a/b".into(), "latest".into()));
        assert_eq!(s("a/b:t@sha256:ab"), ("a/b".into(), "sha256:ab".into()));
        assert_eq!(s("127.0.0.1:5000/a@sha256:ab"), ("a".into(), "sha256:ab".into()));
    }
}
