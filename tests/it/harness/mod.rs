//! The integration-test harness every hoist test uses: real CNCF distribution registries started on loopback
//! ([`registry`]) with optional TLS ([`tls`]), htpasswd or token auth ([`token`]), deterministic image fixtures
//! ([`fixtures`]), a fake Harbor API in front of a real registry ([`harbor`]), skopeo and umoci as independent
//! witnesses ([`skopeo`]), a tiny blocking HTTP client for poking at registries directly ([`http`]), an HTTPS
//! Helm chart repository ([`chart_repo`]) and a runner for the hoist binary ([`hoist`]). A missing external tool
//! (`docker-registry`, `skopeo`, `umoci`, `python3`) is a failing test, never a skip.
#![allow(dead_code)]
#![allow(unused_imports)]

pub mod chart_repo;
pub mod fixtures;
pub mod harbor;
pub mod hoist;
pub mod http;
pub mod images;
pub mod judges;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod skopeo;
pub mod tls;
pub mod token;

pub use fixtures::{
    blobs_of_layout, docker_archive, oci_index_layout, oci_layout, oci_layout_with_tars, DockerArchive, ImageInfo,
    IndexLayout, LayerSpec, LayoutSpec,
};
pub use harbor::{FakeProject, FakeRobot, FakeScan, HarborFake};
pub use hoist::{Hoist, Output};
pub use http::{HttpAuth, HttpResponse};
pub use judges::{
    assert_export_matches_rootfs, assert_valid_cyclonedx, assert_valid_spdx, check_remote, syft_packages, syft_purls,
    Judge,
};
pub use proxy::{Fault, FaultProxy, Matcher, PathMatch, ProxyRequest, Rule, RuleId};
pub use registry::{AccessLine, Auth, Registry, RegistryOpts};
pub use skopeo::{assert_same_image, copy_to_layout, inspect_raw, push_layout, umoci_unpack, Skopeo};
pub use tls::TestCa;
pub use token::{Grant, TokenIssuer, TokenIssuerOpts, TokenRequest};

use std::path::PathBuf;
use std::time::Duration;

/// How long any external tool call made by the harness may take before it is killed and the test fails.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// A temporary directory for one test, removed when dropped.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// `tool` in a directory of `PATH`, if there is one.
fn on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|c| c.is_file())
}

/// Finds `tool` on `PATH`, or panics saying how to install it (`hint`): a missing tool fails the test.
pub fn require_tool_hint(tool: &str, hint: &str) -> PathBuf {
    on_path(tool).unwrap_or_else(|| {
        panic!("`{tool}` is not installed (not on PATH); the integration tests need it: {hint} (or run .ci/run)")
    })
}

/// Finds one of the Debian-packaged tools on `PATH`, or panics with the install hint.
pub fn require_tool(tool: &str) -> PathBuf {
    require_tool_hint(tool, "apt-get install docker-registry skopeo umoci buildah")
}

/// Finds one of the Go-built judges (helm, crane, oras, syft, regctl, cosign, cosign2, registry) that
/// `scripts/go-tools.sh` installs into the project's `.tools/bin`, else on `PATH`; panics with the install hint:
/// a missing judge fails the test, never skips it.
pub fn require_go_tool(tool: &str) -> PathBuf {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/bin").join(tool);
    if local.is_file() {
        return local;
    }
    on_path(tool).unwrap_or_else(|| {
        panic!(
            "`{tool}` is not installed (not in .tools/bin nor on PATH); the integration tests need it: \
             run scripts/go-tools.sh (needs Go >= 1.22; builds the pinned helm, crane, oras, syft, regctl, cosign \
             and registry with `go install`, and cargo-auditable with `cargo install --locked`)"
        )
    })
}

/// A directory under cargo's per-target scratch space (`CARGO_TARGET_TMPDIR`) for state that must outlive a
/// value but not the build tree (e.g. a HOME for a spawned hoist).
pub fn scratch_dir(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Strips the variables [`is_leaky_env`] names from `cmd`'s environment and points HOME at `home`:
/// what every spawned tool (hoist, skopeo, umoci) gets.
pub(crate) fn clean_env(cmd: &mut std::process::Command, home: &std::path::Path) {
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str() {
            if is_leaky_env(k) {
                cmd.env_remove(k);
            }
        }
    }
    cmd.env("HOME", home);
}

/// Environment variables that would leak the developer's or CI's setup into a spawned tool.
pub(crate) fn is_leaky_env(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "HOME",
        "DOCKER_CONFIG",
        "DOCKER_AUTH_CONFIG",
        "REGISTRY_AUTH_FILE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CI",
        "GITLAB_CI",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "HOIST_CACHE_DIR",
        "HOIST_CERTS_DIR",
        "XDG_RUNTIME_DIR",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
    ];
    EXACT.contains(&name) || name.starts_with("HARBOR_") || name.starts_with("CI_")
}

/// The machine's Go version without its `go` prefix (`1.26.8`), as Go binaries record it.
pub fn go_version() -> String {
    let out = run_ok(
        {
            let mut c = std::process::Command::new(require_tool("go"));
            c.args(["env", "GOVERSION"]);
            c
        },
        "go env GOVERSION",
    );
    out.trim().trim_start_matches("go").to_string()
}

/// Runs `cmd` (within [`TOOL_TIMEOUT`]) and fails the test with its output unless it succeeds; its stdout.
pub fn run_ok(cmd: std::process::Command, what: &str) -> String {
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` to completion with a time limit, capturing stdout and stderr; kills it and panics on timeout.
pub fn run_with_timeout(
    mut cmd: std::process::Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> std::process::Output {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait for child") {
            Some(status) => break status,
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = out_t.join().unwrap_or_default();
                let stderr = err_t.join().unwrap_or_default();
                panic!(
                    "{desc} did not finish within {timeout:?}; killed.\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&stdout),
                    String::from_utf8_lossy(&stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    std::process::Output { status, stdout: out_t.join().unwrap_or_default(), stderr: err_t.join().unwrap_or_default() }
}

/// Copies a directory tree, keeping file modes but making every file writable by its owner (sources
/// such as `../shared` are read-only, and tests edit or touch their copies).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("creating {}: {e}", to.display()));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display())) {
        let e = e.expect("directory entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap_or_else(|err| panic!("copying {}: {err}", e.path().display()));
            let mode = std::fs::metadata(&target).expect("copied file").permissions().mode();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode | 0o200)).expect("chmod u+w");
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
