//! skopeo and umoci as independent witnesses of what hoist did: read raw manifests from the test registry
//! ([`inspect_raw`]), copy images out of it into OCI layouts ([`copy_to_layout`]), push fixture layouts into it
//! ([`push_layout`]), compare layouts byte for byte ([`assert_same_image`]) and unpack an image's rootfs
//! ([`umoci_unpack`]). skopeo runs with `--insecure-policy`, a clean environment and an empty HOME, and talks
//! to the registry with `--tls-verify=false` (plain HTTP), or `--cert-dir` holding only the test CA (TLS), plus
//! `--creds` when the registry has auth. Every call is time-bounded by [`super::TOOL_TIMEOUT`].

use super::fixtures::{blobs_of_layout, layout_manifest, reachable_digests};
use super::registry::Registry;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A `Command` for `tool` with the leaky variables removed and HOME pointing at an empty scratch dir.
pub fn clean_command(tool: &str) -> Command {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    let home = HOME.get_or_init(|| super::scratch_dir("tool-home"));
    let mut cmd = Command::new(super::require_tool(tool));
    super::clean_env(&mut cmd, home);
    cmd
}

/// `skopeo --insecure-policy` with a clean environment.
pub fn skopeo_cmd() -> Command {
    let mut cmd = clean_command("skopeo");
    cmd.arg("--insecure-policy");
    cmd
}

/// Runs a command with [`super::TOOL_TIMEOUT`].
pub fn run(cmd: Command) -> std::process::Output {
    super::run_with_timeout(cmd, None, super::TOOL_TIMEOUT)
}

/// Asserts `out` succeeded, printing both streams otherwise; returns it.
pub fn check(what: &str, out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// skopeo against one test registry, with its credentials (override with [`Skopeo::creds`]).
pub struct Skopeo<'a> {
    reg: &'a Registry,
    creds: Option<(String, String)>,
    preserve_digests: bool,
}

impl<'a> Skopeo<'a> {
    pub fn new(reg: &'a Registry) -> Self {
        Skopeo { reg, creds: reg.credentials(), preserve_digests: false }
    }

    pub fn creds(mut self, user: &str, pass: &str) -> Self {
        self.creds = Some((user.to_string(), pass.to_string()));
        self
    }

    pub fn anonymous(mut self) -> Self {
        self.creds = None;
        self
    }

    /// Pass `--preserve-digests` to copies (fail rather than change a digest).
    pub fn preserve_digests(mut self) -> Self {
        self.preserve_digests = true;
        self
    }

    /// `docker://127.0.0.1:PORT/<reference>` (a reference already starting with the host is kept).
    pub fn docker_ref(&self, reference: &str) -> String {
        let host = self.reg.host();
        if reference.starts_with(&format!("{host}/")) {
            format!("docker://{reference}")
        } else {
            format!("docker://{host}/{reference}")
        }
    }

    /// TLS and credential flags; `prefix` is "" (inspect), "src-" or "dest-" (copy).
    fn registry_args(&self, prefix: &str) -> Vec<String> {
        let mut a = Vec::new();
        match self.reg.ca_dir() {
            Some(dir) => {
                a.push(format!("--{prefix}tls-verify=true"));
                a.push(format!("--{prefix}cert-dir={}", dir.display()));
            }
            None => a.push(format!("--{prefix}tls-verify=false")),
        }
        match &self.creds {
            Some((u, p)) => a.push(format!("--{prefix}creds={u}:{p}")),
            None => a.push(format!("--{prefix}no-creds")),
        }
        a
    }

    /// `skopeo inspect --raw`, whatever the outcome.
    pub fn try_inspect_raw(&self, reference: &str) -> std::process::Output {
        let mut cmd = skopeo_cmd();
        cmd.arg("inspect").arg("--raw");
        cmd.args(self.registry_args(""));
        cmd.arg(self.docker_ref(reference));
        run(cmd)
    }

    /// The manifest bytes exactly as the registry serves them.
    pub fn inspect_raw(&self, reference: &str) -> Vec<u8> {
        check(&format!("skopeo inspect --raw {reference}"), self.try_inspect_raw(reference)).stdout
    }

    /// `skopeo inspect` (skopeo's JSON summary: Digest, Layers, Architecture, …).
    pub fn inspect(&self, reference: &str) -> serde_json::Value {
        let mut cmd = skopeo_cmd();
        cmd.arg("inspect");
        cmd.args(self.registry_args(""));
        cmd.arg(self.docker_ref(reference));
        let out = check(&format!("skopeo inspect {reference}"), run(cmd));
        serde_json::from_slice(&out.stdout).expect("skopeo inspect JSON")
    }

    /// `skopeo copy --all docker://… oci:DEST[:tag]`, whatever the outcome. The layout tag is the
    /// reference's tag (none for a digest reference).
    pub fn try_copy_to_layout(&self, reference: &str, dest: &Path) -> std::process::Output {
        let mut cmd = skopeo_cmd();
        cmd.arg("copy").arg("--all");
        if self.preserve_digests {
            cmd.arg("--preserve-digests");
        }
        cmd.args(self.registry_args("src-"));
        cmd.arg(self.docker_ref(reference));
        let dest_ref = match reference_tag(reference) {
            Some(tag) => format!("oci:{}:{tag}", dest.display()),
            None => format!("oci:{}", dest.display()),
        };
        cmd.arg(dest_ref);
        run(cmd)
    }

    pub fn copy_to_layout(&self, reference: &str, dest: &Path) {
        check(&format!("skopeo copy {reference} to {}", dest.display()), self.try_copy_to_layout(reference, dest));
    }

    /// `skopeo copy --all oci:LAYOUT:tag docker://…`, whatever the outcome.
    pub fn try_push_layout(&self, layout: &Path, tag: &str, reference: &str) -> std::process::Output {
        let mut cmd = skopeo_cmd();
        cmd.arg("copy").arg("--all");
        if self.preserve_digests {
            cmd.arg("--preserve-digests");
        }
        cmd.args(self.registry_args("dest-"));
        cmd.arg(format!("oci:{}:{tag}", layout.display()));
        cmd.arg(self.docker_ref(reference));
        run(cmd)
    }

    pub fn push_layout(&self, layout: &Path, tag: &str, reference: &str) {
        check(
            &format!("skopeo copy {}:{tag} to {reference}", layout.display()),
            self.try_push_layout(layout, tag, reference),
        );
    }
}

/// The tag of `repo:tag` / `host:port/repo:tag`; `None` for `repo@digest` or an untagged name.
pub fn reference_tag(reference: &str) -> Option<String> {
    if reference.contains('@') {
        return None;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.split_once(':').map(|(_, t)| t.to_string())
}

/// The raw manifest of `reference` (`repo:tag` or `repo@digest`) on `reg`.
pub fn inspect_raw(reference: &str, reg: &Registry) -> Vec<u8> {
    Skopeo::new(reg).inspect_raw(reference)
}

/// Copies `reference` from `reg` into the OCI layout `dest` (all platforms).
pub fn copy_to_layout(reference: &str, reg: &Registry, dest: &Path) {
    Skopeo::new(reg).copy_to_layout(reference, dest)
}

/// Pushes the layout's image tagged `tag` to `reference` on `reg` with skopeo (e.g. a base image).
pub fn push_layout(layout: &Path, tag: &str, reference: &str, reg: &Registry) {
    Skopeo::new(reg).push_layout(layout, tag, reference)
}

/// `skopeo inspect docker-archive:FILE` (skopeo's JSON summary).
pub fn inspect_docker_archive(file: &Path) -> serde_json::Value {
    let mut cmd = skopeo_cmd();
    cmd.arg("inspect").arg(format!("docker-archive:{}", file.display()));
    let out = check("skopeo inspect docker-archive", run(cmd));
    serde_json::from_slice(&out.stdout).expect("skopeo inspect JSON")
}

/// `skopeo inspect --config docker-archive:FILE`: the image config as skopeo sees it.
pub fn inspect_docker_archive_config(file: &Path) -> Vec<u8> {
    let mut cmd = skopeo_cmd();
    cmd.arg("inspect").arg("--raw").arg("--config").arg(format!("docker-archive:{}", file.display()));
    check("skopeo inspect --config docker-archive", run(cmd)).stdout
}

/// Asserts that layout `copy` (entry `copy_tag`) holds exactly the image of layout `src` (entry `src_tag`):
/// the same top manifest digest and bytes, and every blob reachable from it present and byte-identical.
/// A tag of `None` means "the only entry".
pub fn assert_same_image(src: &Path, src_tag: Option<&str>, copy: &Path, copy_tag: Option<&str>) {
    let (src_digest, _, src_bytes) = layout_manifest(src, src_tag);
    let (copy_digest, _, copy_bytes) = layout_manifest(copy, copy_tag);
    assert_eq!(
        copy_digest,
        src_digest,
        "top manifest digest differs\n--- source ---\n{}\n--- copy ---\n{}",
        String::from_utf8_lossy(&src_bytes),
        String::from_utf8_lossy(&copy_bytes)
    );
    assert!(copy_bytes == src_bytes, "manifest bytes differ");
    let src_blobs = blobs_of_layout(src);
    let copy_blobs = blobs_of_layout(copy);
    for d in reachable_digests(src, &src_digest) {
        let a = src_blobs.get(&d).expect("source blob");
        let b = copy_blobs.get(&d).unwrap_or_else(|| panic!("blob {d} missing from the copy {}", copy.display()));
        assert!(a == b, "blob {d} differs between source and copy");
    }
}

/// `umoci unpack --rootless --image LAYOUT:TAG BUNDLE`; returns `BUNDLE/rootfs`. `bundle` must not exist yet.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    let mut cmd = clean_command("umoci");
    cmd.arg("unpack").arg("--rootless").arg("--image").arg(format!("{}:{tag}", layout.display())).arg(bundle);
    check("umoci unpack", run(cmd));
    bundle.join("rootfs")
}
