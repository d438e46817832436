//! hoist's own `.gitlab-ci.yml`: it and the component project's pipeline (`ci-templates/.gitlab-ci.yml`) pass
//! GitLab's schema; the versions agree (Cargo.toml, `HOIST_VERSION`, every component's default `job_image`,
//! which must be the `-debug` image the pipeline publishes for that version); and its image jobs — the release
//! image through `multiarch`, the `-debug` image through `build`, both `promote` jobs of a tag pipeline — run
//! under `gitlab-ci-local --force-shell-executor` against a real registry on loopback posing as GitLab's
//! (`CI_REGISTRY*`), with crane, regctl and oras judging what they pushed.
//!
//! The test and binary jobs are not run here (the test job is this suite; the binaries take minutes to build
//! in release mode): the test stages what `binary:amd64` and `binary:arm64` leave as artifacts —
//! `target/image/<arch>/hoist` (the hoist under test, stripped), busybox and the CA bundle. This machine has no
//! aarch64 toolchain, so the arm64 slot holds the same amd64 files: the test checks the pipeline's wiring
//! (platform images, indexes, tags, promotion), not an arm64 binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const USER: &str = "gitlab-ci-token";
const PASSWORD: &str = "Own-Pipeline-Job-Token-never-in-the-log";
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(480);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn git(dir: &Path, args: &[&str]) -> String {
    let mut c = Command::new("git");
    c.current_dir(dir).args(args);
    run_ok(c, &format!("git {args:?}"))
}

#[test]
fn own_pipeline_passes_gitlabs_schema_and_its_versions_agree() {
    let check = require_tool_hint("check-jsonschema", "pip install check-jsonschema");
    for f in [".gitlab-ci.yml", "ci-templates/.gitlab-ci.yml"] {
        let mut cmd = Command::new(&check);
        cmd.args(["--builtin-schema", "vendor.gitlab-ci"]).arg(repo_root().join(f));
        run_ok(cmd, &format!("check-jsonschema {f}"));
    }
    let version = env!("CARGO_PKG_VERSION");
    let pipeline = std::fs::read_to_string(repo_root().join(".gitlab-ci.yml")).unwrap();
    assert!(
        pipeline.contains(&format!("  HOIST_VERSION: \"{version}\"\n")),
        ".gitlab-ci.yml's HOIST_VERSION must be Cargo.toml's {version}"
    );
    // The components' default job image is the -debug image this pipeline publishes for the tag v{version}
    // ($CI_REGISTRY_IMAGE:$HOIST_VERSION-debug, $CI_REGISTRY_IMAGE being registry.gitlab.com/hoist/hoist).
    assert!(pipeline.contains("tags: $HOIST_VERSION-debug"), "hoist-promote-debug publishes X.Y.Z-debug");
    let want = format!("default: registry.gitlab.com/hoist/hoist:{version}-debug");
    let mut seen = 0;
    for e in std::fs::read_dir(repo_root().join("ci-templates/templates")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let header = text.split("\n---\n").next().unwrap();
        let lines: Vec<&str> = header.lines().collect();
        let i = lines.iter().position(|l| l.trim() == "job_image:").unwrap_or_else(|| panic!("{}", p.display()));
        assert_eq!(lines[i + 1].trim(), want, "{}: the default job_image", p.display());
        seen += 1;
    }
    assert_eq!(seen, 5, "build, chart, multiarch, promote, scan");
}

/// A git project holding what the image jobs need: the Dockerfile, .dockerignore, the pipeline, the components
/// and the binary jobs' artifacts (see the module comment).
fn own_project() -> tempfile::TempDir {
    let dir = tmp();
    let p = dir.path();
    let root = repo_root();
    for f in ["Dockerfile", ".dockerignore", ".gitlab-ci.yml"] {
        std::fs::copy(root.join(f), p.join(f)).unwrap();
    }
    copy_dir(&root.join("ci-templates"), &p.join("ci-templates"));
    let image = p.join("target/image");
    std::fs::create_dir_all(&image).unwrap();
    let ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    std::fs::copy(ca, image.join("ca-certificates.crt"))
        .unwrap_or_else(|e| panic!("{}: {e}: apt-get install ca-certificates", ca.display()));
    let busybox = require_tool_hint("busybox", "apt-get install busybox-static");
    let strip = require_tool_hint("strip", "apt-get install binutils");
    for arch in ["amd64", "arm64"] {
        let d = image.join(arch);
        std::fs::create_dir_all(d.join("busybox")).unwrap();
        let mut cmd = Command::new(&strip);
        cmd.arg("-o").arg(d.join("hoist")).arg(Hoist::bin());
        run_ok(cmd, "strip");
        std::fs::copy(&busybox, d.join("busybox/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", d.join("busybox/sh")).unwrap();
    }
    git(p, &["init", "-q", "-b", "main"]);
    git(p, &["config", "user.email", "ci@example.com"]);
    git(p, &["config", "user.name", "ci"]);
    git(p, &["remote", "add", "origin", "https://gitlab.com/hoist/hoist.git"]);
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "release"]);
    dir
}

#[test]
fn own_pipeline_builds_pushes_and_promotes_hoists_images_under_gitlab_ci_local() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd(USER, PASSWORD)));
    let project = own_project();
    let p = project.path();
    let version = env!("CARGO_PKG_VERSION");
    let image = format!("{}/hoist/hoist", reg.host());

    let glcl = require_tool_hint("gitlab-ci-local", "npm install -g gitlab-ci-local@4.60.0");
    let mut cmd = Command::new(glcl);
    clean_env(&mut cmd, &scratch_dir("glcl-home"));
    let bin_dir = Hoist::bin().parent().unwrap().to_path_buf();
    cmd.env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default())).current_dir(p);
    cmd.args(["--force-shell-executor", "--no-color", "--variable", "GITLAB_CI=true"]);
    for (k, v) in [
        ("CI_COMMIT_TAG", format!("v{version}")),
        ("CI_REGISTRY", reg.host()),
        ("CI_REGISTRY_IMAGE", image.clone()),
        ("CI_REGISTRY_USER", USER.to_string()),
        ("CI_REGISTRY_PASSWORD", PASSWORD.to_string()),
    ] {
        cmd.arg("--variable").arg(format!("{k}={v}"));
    }
    // The image and promote jobs of a tag pipeline; the artifacts of the binary jobs are staged.
    cmd.args(["hoist-image-build", "hoist-image-index", "hoist-image-debug", "hoist-promote-debug", "hoist-promote"]);
    let out = run_with_timeout(cmd, None, PIPELINE_TIMEOUT);
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if let Ok(entries) = std::fs::read_dir(p.join(".gitlab-ci-local/output")) {
        for e in entries.flatten() {
            log.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    assert!(!log.contains(PASSWORD), "the job token leaked into the pipeline log:\n{log}");
    assert!(out.status.success(), "pipeline failed:\n{log}");

    let sha = &git(p, &["rev-parse", "HEAD"])[..8];
    let mut tags = reg.tags("hoist/hoist");
    tags.sort();
    let mut want: Vec<String> = [
        sha.to_string(),
        format!("{sha}-linux-amd64"),
        format!("{sha}-linux-arm64"),
        format!("{sha}-debug"),
        version.to_string(),
        version.rsplit_once('.').unwrap().0.to_string(),
        version.split('.').next().unwrap().to_string(),
        format!("{version}-debug"),
        "stable".to_string(),
    ]
    .into();
    want.sort();
    want.dedup();
    assert_eq!(tags, want, "the tags of hoist/hoist after a v{version} pipeline");

    for (tag, cmdline) in [(version.to_string(), "--help"), (format!("{version}-debug"), "")] {
        let raw = reg.manifest_bytes("hoist/hoist", &tag).unwrap();
        let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{tag}");
        let mut archs: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        archs.sort();
        assert_eq!(archs, ["amd64", "arm64"], "{tag}");
        check_remote(&reg, &format!("hoist/hoist:{tag}"));
        // The amd64 image holds the hoist the binary job staged, and the -debug one a shell.
        let judge = Judge::new(&reg);
        let export = scratch_dir("own-export").join("x.tar");
        judge.crane_export(&format!("hoist/hoist:{tag}"), Some("linux/amd64"), &export);
        let tree = crate::harness::judges::tar_tree(&export);
        let staged = sha256_digest(&std::fs::read(p.join("target/image/amd64/hoist")).unwrap());
        assert_eq!(tree["usr/local/bin/hoist"].content, staged, "{tag}");
        assert_eq!(tree.contains_key("bin/sh"), tag.ends_with("-debug"), "{tag}");
        let config: serde_json::Value = {
            let m: serde_json::Value = serde_json::from_slice(
                &reg.manifest_bytes("hoist/hoist", index["manifests"][0]["digest"].as_str().unwrap()).unwrap(),
            )
            .unwrap();
            let d = m["config"]["digest"].as_str().unwrap();
            reg.get_authed(&format!("/v2/hoist/hoist/blobs/{d}"), &["repository:hoist/hoist:pull"], &[]).json()
        };
        assert_eq!(config["config"]["Entrypoint"][0], "hoist", "{tag}");
        let cmd = config["config"]["Cmd"].as_array().map(|c| c.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>());
        assert_eq!(cmd.unwrap_or_default().join(" "), cmdline, "{tag}");
    }
    // stable is the release image of this tag.
    assert_eq!(reg.manifest_bytes("hoist/hoist", "stable"), reg.manifest_bytes("hoist/hoist", version));
}
