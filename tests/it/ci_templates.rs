//! The shipped CI/CD components (`ci-templates/templates/*.yml`) and `examples/*/.gitlab-ci.yml`, checked
//! two ways: GitLab's own schema (`check-jsonschema --builtin-schema vendor.gitlab-ci`, on each component's
//! `spec:` header and on the pipeline gitlab-ci-local renders from it), and end to end with
//! `gitlab-ci-local --force-shell-executor` against a real htpasswd registry on loopback posing as Harbor
//! (HARBOR_* variables, a robot name with GitLab's `$$` escape, a password that must never appear in the log).
//!
//! How a component runs locally: each example is copied into a fresh git repository (gitlab-ci-local reads
//! the project's name, URL, branch and commit from git), `ci-templates/` beside it, and every
//! `- component: …/ci-templates/<name>@<version>` include is rewritten to `- local:
//! ci-templates/templates/<name>.yml` — the same file with the same `inputs:`, which is how GitLab itself
//! includes a component by path. The shell executor ignores `image:`, so the jobs find the hoist under test
//! on PATH.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const ROBOT: &str = "robot$team+ci";
const PASSWORD: &str = "Harbor-Pa55-never-in-the-log";
/// gitlab-ci-local runs a few jobs, each a hoist build: bounded well below the harness's tool timeout.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(240);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `- component: $CI_SERVER_FQDN/hoist/ci-templates/build@0.1.0` → `- local: ci-templates/templates/build.yml`.
fn localize_components(yaml: &str) -> String {
    yaml.lines()
        .map(|line| match line.split_once("- component: ") {
            Some((indent, target)) if target.contains("/ci-templates/") => {
                let name = target.rsplit('/').next().unwrap().split('@').next().unwrap();
                format!("{indent}- local: ci-templates/templates/{name}.yml")
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn git(dir: &Path, args: &[&str]) {
    let out = run_with_timeout(
        {
            let mut c = Command::new("git");
            c.current_dir(dir).args(args);
            c
        },
        None,
        TOOL_TIMEOUT,
    );
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A git project holding `files` (an example directory) and `ci-templates/`, committed on `main` with a
/// GitLab-looking remote so CI_PROJECT_NAME is `name`.
fn project(name: &str, example: Option<&Path>, ci_yaml: Option<&str>) -> tempfile::TempDir {
    let dir = tmp();
    let p = dir.path();
    if let Some(ex) = example {
        copy_dir(ex, p);
    }
    copy_dir(&repo_root().join("ci-templates"), &p.join("ci-templates"));
    let yaml = match ci_yaml {
        Some(y) => y.to_string(),
        None => std::fs::read_to_string(p.join(".gitlab-ci.yml")).unwrap(),
    };
    std::fs::write(p.join(".gitlab-ci.yml"), localize_components(&yaml)).unwrap();
    git(p, &["init", "-q", "-b", "main"]);
    git(p, &["config", "user.email", "ci@example.com"]);
    git(p, &["config", "user.name", "ci"]);
    git(p, &["remote", "add", "origin", &format!("https://gitlab.example.com/team/{name}.git")]);
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "example"]);
    dir
}

struct Pipeline {
    /// stdout, stderr and every job's log file.
    log: String,
    /// stdout alone (`--preview` prints the rendered pipeline there).
    stdout: String,
    ok: bool,
}

/// `gitlab-ci-local --force-shell-executor [ARGS]` in `dir`, the hoist under test first on PATH, Harbor-style
/// variables for `reg`.
fn gitlab_ci_local(dir: &Path, reg: Option<&Registry>, extra: &[&str]) -> Pipeline {
    let tool = require_tool_hint("gitlab-ci-local", "npm install -g gitlab-ci-local@4.60.0");
    let mut cmd = Command::new(tool);
    clean_env(&mut cmd, &scratch_dir("glcl-home"));
    let bin_dir = Hoist::bin().parent().unwrap().to_path_buf();
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin_dir.display())).current_dir(dir);
    cmd.args(["--force-shell-executor", "--no-color", "--variable", "GITLAB_CI=true"]);
    if let Some(reg) = reg {
        for (k, v) in [
            ("HARBOR_URL", format!("http://{}/", reg.host())),
            ("HARBOR_HOST", "127.0.0.1".to_string()),
            ("HARBOR_OCI", format!("oci://{}", reg.host())),
            ("HARBOR_PROJECT", "team".to_string()),
            // What GitLab stores for robot$team+ci: the runner's expansion turns $$ back into $.
            ("HARBOR_USERNAME", "robot$$team+ci".to_string()),
            ("HARBOR_PASSWORD", PASSWORD.to_string()),
        ] {
            cmd.arg("--variable").arg(format!("{k}={v}"));
        }
    }
    cmd.args(extra);
    let out = run_with_timeout(cmd, None, PIPELINE_TIMEOUT);
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Every job's own log file too.
    if let Ok(entries) = std::fs::read_dir(dir.join(".gitlab-ci-local/output")) {
        for e in entries.flatten() {
            log.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    assert!(!log.contains(PASSWORD), "the password leaked into the pipeline log:\n{log}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Pipeline { ok: out.status.success(), log, stdout }
}

impl Pipeline {
    /// The YAML `--preview` printed: from its `---` on (gitlab-ci-local prints warnings above it, e.g.
    /// that GITLAB_CI is a predefined variable this harness sets to `true` as GitLab does).
    fn rendered(&self) -> &str {
        self.stdout.find("---\n").map_or(&self.stdout, |i| &self.stdout[i..])
    }
}

/// `check-jsonschema --builtin-schema vendor.gitlab-ci FILE`: (ok, output).
fn gitlab_schema(file: &Path) -> (bool, String) {
    let tool = require_tool_hint("check-jsonschema", "pip install check-jsonschema");
    let mut cmd = Command::new(tool);
    cmd.args(["--builtin-schema", "vendor.gitlab-ci"]).arg(file);
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

fn components() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo_root().join("ci-templates/templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join(".gitlab-ci.yml").is_file())
        .collect();
    v.sort();
    v
}

/// The input names a component's `spec:` header declares (keys at 4 spaces under `  inputs:`).
fn declared_inputs(header: &str) -> Vec<String> {
    header
        .lines()
        .skip_while(|l| l.trim_end() != "  inputs:")
        .skip(1)
        .filter(|l| l.starts_with("    ") && !l.starts_with("     ") && l.trim_end().ends_with(':'))
        .map(|l| l.trim().trim_end_matches(':').to_string())
        .collect()
}

/// The `$[[ inputs.NAME ]]` a component's body uses.
fn used_inputs(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in body.split("$[[ inputs.").skip(1) {
        let name = part.split(' ').next().unwrap().to_string();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[test]
fn ci_templates_and_examples_pass_gitlabs_schema() {
    let work = tmp();
    // The check can fail: a job whose script is a number is refused.
    let bad = work.path().join("bad.yml");
    std::fs::write(&bad, "job:\n  script: 5\n  when: sometimes\n").unwrap();
    assert!(!gitlab_schema(&bad).0, "check-jsonschema accepted a broken pipeline: the check proves nothing");

    for c in components() {
        let text = std::fs::read_to_string(&c).unwrap();
        let (header, body) =
            text.split_once("\n---\n").unwrap_or_else(|| panic!("{}: no spec header then ---", c.display()));
        assert!(
            header.contains("\nspec:\n  inputs:\n") || header.starts_with("spec:\n"),
            "{}: spec: inputs:",
            c.display()
        );
        let hfile = work.path().join("header.yml");
        std::fs::write(&hfile, header).unwrap();
        let (ok, out) = gitlab_schema(&hfile);
        assert!(ok, "{} header: {out}", c.display());
        let (declared, used) = (declared_inputs(header), used_inputs(body));
        for u in &used {
            assert!(declared.contains(u), "{}: $[[ inputs.{u} ]] is not declared", c.display());
        }
        for d in &declared {
            assert!(used.contains(d), "{}: input {d} is declared but never used", c.display());
        }
        // The pipeline GitLab would run from it with every default, rendered by gitlab-ci-local.
        let name = c.file_stem().unwrap().to_str().unwrap().to_string();
        let yaml = format!("include:\n  - local: ci-templates/templates/{name}.yml\n");
        let p = project("component-check", None, Some(&yaml));
        let preview = gitlab_ci_local(p.path(), None, &["--preview"]);
        assert!(preview.ok, "{name}: gitlab-ci-local --preview failed:\n{}", preview.log);
        let rendered = work.path().join(format!("{name}.rendered.yml"));
        std::fs::write(&rendered, preview.rendered()).unwrap();
        let (ok, out) = gitlab_schema(&rendered);
        assert!(ok, "{name} rendered: {out}\n{}", std::fs::read_to_string(&rendered).unwrap());
    }

    let examples = examples();
    assert!(examples.len() >= 3, "examples with a .gitlab-ci.yml: {examples:?}");
    for ex in examples {
        let (ok, out) = gitlab_schema(&ex.join(".gitlab-ci.yml"));
        assert!(ok, "{}: {out}", ex.display());
        let p = project(ex.file_name().unwrap().to_str().unwrap(), Some(&ex), None);
        let preview = gitlab_ci_local(p.path(), None, &["--preview"]);
        assert!(preview.ok, "{}: gitlab-ci-local --preview failed:\n{}", ex.display(), preview.log);
        let rendered = work.path().join("example.rendered.yml");
        std::fs::write(&rendered, preview.rendered()).unwrap();
        let (ok, out) = gitlab_schema(&rendered);
        assert!(ok, "{} rendered: {out}\n{}", ex.display(), preview.log);
    }
}

fn harbor() -> Registry {
    Registry::start(RegistryOpts::plain().auth(Auth::htpasswd(ROBOT, PASSWORD)))
}

fn sorted_tags(reg: &Registry, repo: &str) -> Vec<String> {
    let mut t = reg.tags(repo);
    t.sort();
    t
}

/// Runs `examples/<example>` as project `name` (CI_PROJECT_NAME) under gitlab-ci-local; the pipeline must pass.
fn run_example(reg: &Registry, example: &str, name: &str, extra: &[&str]) -> (tempfile::TempDir, Pipeline) {
    let p = project(name, Some(&repo_root().join("examples").join(example)), None);
    let run = gitlab_ci_local(p.path(), Some(reg), extra);
    assert!(run.ok, "{example}: pipeline failed:\n{}", run.log);
    (p, run)
}

fn sorted(tags: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn head_sha(dir: &Path) -> String {
    let out = Command::new("git").current_dir(dir).args(["rev-parse", "HEAD"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn ci_example_static_binary_runs_in_gitlab_ci_local() {
    let reg = harbor();
    let (p, run) = run_example(&reg, "static-binary", "static-binary", &[]);
    let sha = head_sha(p.path());
    assert_eq!(sorted_tags(&reg, "team/static-binary"), sorted(&[&sha[..8], "latest", "main"]));
    assert!(run.log.contains("section_start:") && run.log.contains("hoist_push"), "log sections:\n{}", run.log);

    let skopeo = Skopeo::new(&reg).creds(ROBOT, PASSWORD);
    let manifest: serde_json::Value = serde_json::from_slice(&skopeo.inspect_raw("team/static-binary:latest")).unwrap();
    assert_eq!(manifest["annotations"]["org.opencontainers.image.revision"], sha.as_str());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://gitlab.example.com/team/static-binary"
    );
    assert_eq!(manifest["annotations"]["org.opencontainers.image.version"], "main");
    let digest = skopeo.inspect("team/static-binary:latest")["Digest"].as_str().unwrap().to_string();

    // The deploy job (a later stage) got the build job's dotenv report.
    let want = format!("deploying {}/team/static-binary@{digest} (tags {} main latest)", reg.host(), &sha[..8]);
    assert!(run.log.contains(&want), "want {want:?} in:\n{}", run.log);

    // And the image runs: the static binary from the unpacked FROM scratch root.
    let layout = p.path().join("pulled");
    skopeo.copy_to_layout("team/static-binary:latest", &layout);
    let rootfs = umoci_unpack(&layout, "latest", &p.path().join("bundle"));
    let out = Command::new(rootfs.join("hello")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from a FROM scratch image built by hoist\n");
}

#[test]
fn ci_example_static_site_builds_two_platforms_on_a_proxied_base() {
    let reg = harbor();
    // The "proxy cache" project holds the nginx base, an index of two platforms.
    let work = tmp();
    let base = work.path().join("base");
    oci_index_layout(&base);
    Hoist::run_with_stdin(
        [
            "push",
            &format!("oci:{}", base.display()),
            &format!("{}/dockerhub/library/nginx:1.27-alpine", reg.host()),
            "-u",
            ROBOT,
            "--password-stdin",
        ],
        PASSWORD.as_bytes(),
    )
    .assert_success();
    let base_registry = format!("BASE_REGISTRY={}/dockerhub", reg.host());
    let (p, _) = run_example(&reg, "static-site", "static-site", &["--variable", &base_registry]);
    let sha = head_sha(p.path());
    assert_eq!(sorted_tags(&reg, "team/website"), sorted(&[&sha[..8], "latest", "main"]));
    let skopeo = Skopeo::new(&reg).creds(ROBOT, PASSWORD);
    let index: serde_json::Value = serde_json::from_slice(&skopeo.inspect_raw("team/website:main")).unwrap();
    let platforms: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    assert_eq!(index["annotations"]["org.opencontainers.image.revision"], sha.as_str());
}

#[test]
fn ci_example_registry_boilerplate_pushes_short_sha_and_latest() {
    let reg = harbor();
    let p = project("registry-boilerplate", Some(&repo_root().join("examples/registry-boilerplate")), None);
    // A feature branch: the boilerplate still tags latest (as the dind job did), never the branch slug.
    git(p.path(), &["checkout", "-q", "-b", "feature/x"]);
    let run = gitlab_ci_local(p.path(), Some(&reg), &[]);
    assert!(run.ok, "pipeline failed:\n{}", run.log);
    let sha = head_sha(p.path());
    assert_eq!(sorted_tags(&reg, "team/registry-boilerplate"), sorted(&[&sha[..8], "latest"]));
}

#[test]
fn ci_build_component_inputs_and_a_dotenv_consumer() {
    let reg = harbor();
    let yaml = r#"stages: [build, verify]
include:
  - local: ci-templates/templates/build.yml
    inputs:
      job_name: build-worker
      context: app
      dockerfile: app/Dockerfile.worker
      image: worker
      tags: "stable, edge"
      tag_policy: sha
      build_args: GREETING=hi WHO
      args: --label team=web
      dotenv: worker.env
verify:
  stage: verify
  script:
    - echo "consumed image=$HOIST_IMAGE ref=$HOIST_IMAGE_REF tags=$HOIST_TAGS"
"#;
    let dir = tmp();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile.worker"),
        "FROM scratch\nARG GREETING\nARG WHO=nobody\nLABEL greeting=$GREETING who=$WHO\nCOPY w.txt /\n",
    )
    .unwrap();
    std::fs::write(app.join("w.txt"), "worker\n").unwrap();
    let p = project("inputs", Some(dir.path()), Some(yaml));
    let run = gitlab_ci_local(p.path(), Some(&reg), &["--variable", "WHO=a robot"]);
    assert!(run.ok, "pipeline failed:\n{}", run.log);
    let sha = head_sha(p.path());
    assert_eq!(sorted_tags(&reg, "team/worker"), sorted(&[&sha[..8], "edge", "stable"]));
    let info = Skopeo::new(&reg).creds(ROBOT, PASSWORD).inspect("team/worker:stable");
    let labels: BTreeMap<String, String> = serde_json::from_value(info["Labels"].clone()).unwrap();
    assert_eq!(labels["greeting"], "hi");
    assert_eq!(labels["who"], "a robot", "a bare KEY takes the CI variable, spaces and all");
    assert_eq!(labels["team"], "web");
    let digest = info["Digest"].as_str().unwrap();
    let want = format!(
        "consumed image={host}/team/worker ref={host}/team/worker@{digest} tags={} stable edge",
        &sha[..8],
        host = reg.host()
    );
    assert!(run.log.contains(&want), "want {want:?} in:\n{}", run.log);
}

#[test]
fn ci_promote_component_tags_stable_and_copies_on_a_tag_pipeline() {
    let reg = harbor();
    let yaml = r#"stages: [build, deploy]
include:
  - local: ci-templates/templates/build.yml
  - local: ci-templates/templates/promote.yml
  - local: ci-templates/templates/promote.yml
    inputs:
      job_name: copy-to-prod
      destination: $HARBOR_HOST_PORT/prod/web-app:$CI_COMMIT_TAG
"#;
    let dir = tmp();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY app.txt /\n").unwrap();
    std::fs::write(dir.path().join("app.txt"), "release\n").unwrap();
    let p = project("web-app", Some(dir.path()), Some(yaml));
    let host_port = format!("HARBOR_HOST_PORT={}", reg.host());
    // A tag pipeline: the promote jobs' rules ($CI_COMMIT_TAG) let them run.
    let run = gitlab_ci_local(p.path(), Some(&reg), &["--variable", "CI_COMMIT_TAG=v1.2.3", "--variable", &host_port]);
    assert!(run.ok, "pipeline failed:\n{}", run.log);
    let sha = head_sha(p.path());
    let mut want = vec![&sha[..8], "1", "1.2", "1.2.3", "stable"];
    want.sort();
    assert_eq!(sorted_tags(&reg, "team/web-app"), want);
    let skopeo = Skopeo::new(&reg).creds(ROBOT, PASSWORD);
    let built = skopeo.inspect("team/web-app:1.2.3")["Digest"].as_str().unwrap().to_string();
    assert_eq!(skopeo.inspect("team/web-app:stable")["Digest"], built.as_str(), "stable is the built digest");
    assert_eq!(skopeo.inspect("prod/web-app:v1.2.3")["Digest"], built.as_str(), "the copy keeps the digest");

    // A branch pipeline: the promote jobs do not run.
    let reg2 = harbor();
    let p2 = project("web-app", Some(dir.path()), Some(yaml));
    let host_port = format!("HARBOR_HOST_PORT={}", reg2.host());
    let run = gitlab_ci_local(p2.path(), Some(&reg2), &["--variable", &host_port]);
    assert!(run.ok, "pipeline failed:\n{}", run.log);
    assert!(!reg2.tags("team/web-app").contains(&"stable".to_string()));
}

#[test]
fn ci_multiarch_component_builds_per_platform_jobs_and_an_index() {
    let reg = harbor();
    let yaml =
        "include:\n  - local: ci-templates/templates/multiarch.yml\n    inputs:\n      tags: stable\n      sbom: added\n";
    let dir = tmp();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nARG TARGETARCH\nCOPY dist/${TARGETARCH}/app.txt /app.txt\n",
    )
    .unwrap();
    for arch in ["amd64", "arm64"] {
        std::fs::create_dir_all(dir.path().join("dist").join(arch)).unwrap();
        std::fs::write(dir.path().join("dist").join(arch).join("app.txt"), format!("built for {arch}\n")).unwrap();
    }
    let p = project("multi", Some(dir.path()), Some(yaml));
    let run = gitlab_ci_local(p.path(), Some(&reg), &[]);
    assert!(run.ok, "pipeline failed:\n{}", run.log);
    let sha = &head_sha(p.path())[..8];
    let mut want: Vec<String> = ["latest", "main", "stable", sha].iter().map(|s| s.to_string()).collect();
    want.push(format!("{sha}-linux-amd64"));
    want.push(format!("{sha}-linux-arm64"));
    want.sort();
    let (fallback, tags): (Vec<String>, Vec<String>) =
        sorted_tags(&reg, "team/multi").into_iter().partition(|t| t.starts_with("sha256-"));
    assert_eq!(tags, want);
    // sbom: added — each platform's image has its SBOM referrers (in a fallback tag here: no referrers API)
    // and its job wrote the CycloneDX report; provenance (auto) attached nothing on this registry.
    assert_eq!(fallback.len(), 2, "{fallback:?}");
    for arch in ["amd64", "arm64"] {
        let r = format!("{}/team/multi:{sha}-linux-{arch}", reg.host());
        assert_eq!(attached_types(&r), ["application/spdx+json", "application/vnd.cyclonedx+json"], "{arch}");
        let reports = find_files(p.path(), &format!("gl-sbom-linux-{arch}.cdx.json"));
        assert!(!reports.is_empty(), "no CycloneDX report for {arch}\n{}", run.log);
        assert!(!find_files(p.path(), &format!("provenance-linux-{arch}.json")).is_empty(), "{arch}");
    }
    let skopeo = Skopeo::new(&reg).creds(ROBOT, PASSWORD);
    let index: serde_json::Value = serde_json::from_slice(&skopeo.inspect_raw("team/multi:latest")).unwrap();
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["amd64", "arm64"]);
    // Each entry is the per-platform job's image, by digest.
    for arch in ["amd64", "arm64"] {
        let d = skopeo.inspect(&format!("team/multi:{sha}-linux-{arch}"))["Digest"].as_str().unwrap().to_string();
        assert!(index["manifests"].as_array().unwrap().iter().any(|m| m["digest"] == d.as_str()), "{arch} {d}");
    }
    for t in ["main", "stable", sha] {
        assert_eq!(skopeo.inspect_raw(&format!("team/multi:{t}")), skopeo.inspect_raw("team/multi:latest"), "{t}");
    }
}

#[test]
fn ci_example_helm_chart_pushes_with_the_chart_component() {
    let reg = harbor();
    // The project's image, under the chart's name and version (the usual release): the chart's default
    // destination is beside it, under charts/, so the image is left as it is.
    let ctx = scratch_dir("helm-chart-image");
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY app /app\n").unwrap();
    std::fs::write(ctx.join("app"), "app\n").unwrap();
    let image_ref = format!("{}/team/hello-web:0.3.1", reg.host());
    let args = ["build", ctx.to_str().unwrap(), "-t", &image_ref, "-u", ROBOT, "--password-stdin"];
    Hoist::run_with_stdin(args, PASSWORD.as_bytes()).assert_success();
    let image = reg.manifest_bytes("team/hello-web", "0.3.1").unwrap();
    let (_p, run) = run_example(&reg, "helm-chart", "hello-web", &[]);
    assert_eq!(reg.tags("team/charts/hello-web"), ["0.3.1"]);
    assert_eq!(reg.manifest_bytes("team/hello-web", "0.3.1").unwrap(), image, "the image tag did not move");
    let skopeo = Skopeo::new(&reg).creds(ROBOT, PASSWORD);
    let raw = skopeo.inspect_raw("team/charts/hello-web:0.3.1");
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.cncf.helm.config.v1+json");
    // skopeo inspects no chart summaries: the digest of the manifest bytes the registry serves.
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&raw)));
    // The later job read the chart job's dotenv report.
    let want = format!("helm install web oci://{}/team/charts/hello-web --version 0.3.1 (digest {digest})", reg.host());
    assert!(run.log.contains(&want), "want {want:?} in:\n{}", run.log);
}

/// `examples/harbor-scan` (the build component's `scan: true`, and the scan component after a build) against the
/// **fake Harbor** (harness/harbor.rs: Harbor's documented scan API in front of a real registry, not Harbor): the
/// digest comes from the build's dotenv report, both jobs write a GitLab report valid against GitLab's schema, and
/// `fail_on: critical` fails the pipeline unless the project's CVE allowlist accepts the Critical.
#[test]
fn ci_scan_component_and_build_scan_input_run_against_the_fake_harbor() {
    let robot = || FakeRobot::ci(ROBOT, PASSWORD, "team").can("team", &["scan:create", "artifact-addition:read"]);
    for allowlisted in [true, false] {
        let project_cfg = if allowlisted {
            FakeProject::new(1, "team").allowlist(&["CVE-2024-0001"], None)
        } else {
            FakeProject::new(1, "team")
        };
        let fake = HarborFake::start(vec![project_cfg], vec![robot()]);
        let p = project("harbor-scan", Some(&repo_root().join("examples/harbor-scan")), None);
        let vars = [
            format!("HARBOR_URL=http://{}/", fake.host()),
            "HARBOR_HOST=127.0.0.1".to_string(),
            "HARBOR_PROJECT=team".to_string(),
            "HARBOR_USERNAME=robot$$team+ci".to_string(),
            format!("HARBOR_PASSWORD={PASSWORD}"),
        ];
        let mut args: Vec<&str> = Vec::new();
        for v in &vars {
            args.extend(["--variable", v.as_str()]);
        }
        let run = gitlab_ci_local(p.path(), None, &args);
        let h = fake.host();
        for image in ["api", "web"] {
            let want = format!("scan: {h}/team/{image}@sha256:");
            assert!(run.log.contains(&want), "want {want:?} in:\n{}", run.log);
        }
        // Both scans went to Harbor by digest (the dotenv report's HOIST_IMAGE_REF).
        let scanned: Vec<String> =
            fake.scan_requests().into_iter().filter(|(m, _, _)| m == "POST").map(|(_, p, _)| p).collect();
        assert_eq!(scanned.len(), 2, "{scanned:?}");
        assert!(scanned.iter().all(|p| p.contains("/artifacts/sha256%3A")), "{scanned:?}");
        if allowlisted {
            assert!(run.ok, "pipeline failed:\n{}", run.log);
            assert!(run.log.contains("--fail-on Critical: passed"), "{}", run.log);
            assert!(run.log.contains("allowlisted by project team's CVE allowlist: CVE-2024-0001"), "{}", run.log);
        } else {
            assert!(!run.ok, "fail_on: critical passed a Critical finding:\n{}", run.log);
            assert!(run.log.contains("scan: 1 vulnerability finding(s) at or above Critical"), "{}", run.log);
        }
        // The container-scanning report, valid against GitLab's schema (the shell executor runs every job in the
        // project directory, so the two jobs' reports share one path there) and the JUnit report beside it.
        let reports = find_files(p.path(), "gl-container-scanning-report.json");
        assert!(!reports.is_empty(), "no report\n{}", run.log);
        assert!(!find_files(p.path(), "gl-scan-junit.xml").is_empty(), "no JUnit report\n{}", run.log);
        let schema = repo_root().join("tests/data/gitlab/container-scanning-report-format-15.0.7.json");
        for r in reports {
            let tool = require_tool_hint("check-jsonschema", "pip install check-jsonschema");
            let mut cmd = Command::new(tool);
            cmd.arg("--schemafile").arg(&schema).arg(&r);
            let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
            assert!(out.status.success(), "{}: {}", r.display(), String::from_utf8_lossy(&out.stdout));
        }
    }
}

/// Every file named `name` under `dir`.
fn find_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(find_files(&p, name));
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
    out
}

#[test]
fn ci_sign_input_signs_the_build_and_the_promoted_copy() {
    let reg = harbor();
    let yaml = r#"stages: [build, deploy]
include:
  - local: ci-templates/templates/build.yml
    inputs:
      sign: true
  - local: ci-templates/templates/promote.yml
    inputs:
      job_name: copy-to-prod
      destination: $HARBOR_HOST_PORT/prod/web-app:$CI_COMMIT_TAG
      sign: true
"#;
    let dir = tmp();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY app.txt /\n").unwrap();
    std::fs::write(dir.path().join("app.txt"), "release\n").unwrap();
    let p = project("web-app", Some(dir.path()), Some(yaml));
    // The key as a CI/CD variable of type File gives it: a path; the password a masked variable.
    let keys = tmp();
    let key_password = "Sign-Pw-in-CI-Heron-88";
    let mut gen = Hoist::cmd();
    gen.current_dir(keys.path()).arg("generate-key-pair").env("HOIST_SIGNING_PASSWORD", key_password);
    Hoist::run_cmd(gen, None).assert_success();
    let key_var = format!("HOIST_SIGNING_KEY={}", keys.path().join("cosign.key").display());
    let pw_var = format!("HOIST_SIGNING_PASSWORD={key_password}");
    let host_port = format!("HARBOR_HOST_PORT={}", reg.host());
    let run = gitlab_ci_local(
        p.path(),
        Some(&reg),
        &[
            "--variable",
            "CI_COMMIT_TAG=v1.2.3",
            "--variable",
            &host_port,
            "--variable",
            &key_var,
            "--variable",
            &pw_var,
        ],
    );
    assert!(run.ok, "pipeline failed:\n{}", run.log);
    assert!(!run.log.contains(key_password), "the key password leaked into the pipeline log:\n{}", run.log);
    let public = keys.path().join("cosign.pub");
    for r in [format!("{}/team/web-app:1.2.3", reg.host()), format!("{}/prod/web-app:v1.2.3", reg.host())] {
        Hoist::run_with_stdin(
            ["verify", &r, "--key", public.to_str().unwrap(), "-u", ROBOT, "--password-stdin"],
            PASSWORD.as_bytes(),
        )
        .assert_success();
    }
}

/// `hoist referrers REF --json` as the robot: the artifact types attached, sorted.
fn attached_types(reference: &str) -> Vec<String> {
    let out =
        Hoist::run_with_stdin(["referrers", reference, "--json", "-u", ROBOT, "--password-stdin"], PASSWORD.as_bytes());
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    let mut t: Vec<String> = v["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["artifactType"].as_str().map(str::to_string))
        .collect();
    t.sort();
    t
}

#[test]
fn ci_build_component_sbom_and_provenance_inputs() {
    // distribution 2.8 posing as Harbor: no referrers API, so `provenance: auto` (the default) attaches
    // nothing and `min` goes to the fallback tag.
    let reg = harbor();
    let yaml = r#"stages: [build, later]
include:
  - local: ci-templates/templates/build.yml
    inputs:
      job_name: build-attest
      image: attest
      sbom: added
      provenance: min
  - local: ci-templates/templates/build.yml
    inputs:
      job_name: build-default
      stage: later
      image: plain
"#;
    let dir = tmp();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY app /app/\n").unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/package-lock.json"),
        r#"{"name":"app","version":"1.0.0","lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0"},"node_modules/left-pad":{"version":"1.3.0"}}}"#,
    )
    .unwrap();
    let p = project("attest", Some(dir.path()), Some(yaml));
    let run = gitlab_ci_local(p.path(), Some(&reg), &[]);
    assert!(run.ok, "pipeline failed:\n{}", run.log);
    let sha = &head_sha(p.path())[..8];

    // sbom: added + provenance: min → the three referrers, listed in the fallback tag.
    let attest = format!("{}/team/attest:{sha}", reg.host());
    assert_eq!(
        attached_types(&attest),
        ["application/spdx+json", "application/vnd.cyclonedx+json", "application/vnd.in-toto+json"]
    );
    assert!(reg.tags("team/attest").iter().any(|t| t.starts_with("sha256-")), "{:?}", reg.tags("team/attest"));
    // The report for artifacts:reports:cyclonedx (with GitLab's properties) and the provenance artifact.
    let sboms = find_files(p.path(), "gl-sbom-hoist.cdx.json");
    assert!(!sboms.is_empty(), "no CycloneDX report\n{}", run.log);
    let cdx: serde_json::Value = serde_json::from_slice(&std::fs::read(&sboms[0]).unwrap()).unwrap();
    assert_eq!(cdx["bomFormat"], "CycloneDX");
    assert!(cdx["components"].as_array().unwrap().iter().any(|c| c["purl"] == "pkg:npm/left-pad@1.3.0"), "{cdx}");
    assert!(cdx.to_string().contains("gitlab:container_scanning:image:name"), "{cdx}");
    let attest_digest =
        Skopeo::new(&reg).creds(ROBOT, PASSWORD).inspect("team/attest:latest")["Digest"].as_str().unwrap().to_string();
    // gitlab-ci-local collects `artifacts:paths` per job: the attest job's provenance is its statement.
    let kept = p.path().join(".gitlab-ci-local/artifacts/build-attest/hoist-provenance.json");
    let statement: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&kept).unwrap_or_else(|e| panic!("{}: {e}\n{}", kept.display(), run.log)),
    )
    .unwrap();
    assert_eq!(statement["subject"][0]["digest"]["sha256"], attest_digest.trim_start_matches("sha256:"));
    assert_eq!(statement["predicate"]["buildDefinition"]["externalParameters"]["source"]["ref"], "main");
    // It does not collect `reports:`; the pipeline GitLab would run names the CycloneDX report there, and
    // passes GitLab's schema.
    let preview = gitlab_ci_local(p.path(), Some(&reg), &["--preview"]);
    assert!(preview.ok, "{}", preview.log);
    let rendered = p.path().join("rendered.yml");
    std::fs::write(&rendered, preview.rendered()).unwrap();
    let (ok, out) = gitlab_schema(&rendered);
    assert!(ok, "{out}\n{}", preview.rendered());
    let v: serde_json::Value = serde_norway::from_str(preview.rendered()).unwrap();
    assert_eq!(v["build-attest"]["artifacts"]["reports"]["cyclonedx"], "gl-sbom-hoist.cdx.json", "{v}");

    // The defaults (sbom off, provenance auto) on a registry without the referrers API: nothing attached,
    // no fallback tag, and the log says why.
    assert!(reg.tags("team/plain").iter().all(|t| !t.starts_with("sha256-")), "{:?}", reg.tags("team/plain"));
    assert!(attached_types(&format!("{}/team/plain:{sha}", reg.host())).is_empty());
    assert!(run.log.contains("provenance not attached"), "{}", run.log);
}
