//! Zero-configuration CI: `hoist build` and `hoist push` with no `-t`, given only the variables GitLab's
//! Harbor integration and a pipeline set (a robot name with GitLab's `$$` escape, a port in HARBOR_URL and
//! a trailing `/`), against a real htpasswd registry on loopback: the pipeline's tags, the OCI annotations
//! and labels (read back with skopeo), the dotenv report, GitLab log sections, reproducible digests, and a
//! password that never shows.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

const ROBOT: &str = "robot$team+ci";
const PASSWORD: &str = "Harbor-Pa55-never-printed";

fn harbor_env(cmd: &mut Command, reg: &Registry, branch: &str) {
    cmd.env("GITLAB_CI", "true")
        .env("HARBOR_URL", format!("http://{}/", reg.host()))
        .env("HARBOR_HOST", "127.0.0.1")
        .env("HARBOR_OCI", format!("oci://{}", reg.host()))
        .env("HARBOR_PROJECT", "team")
        .env("HARBOR_USERNAME", "robot$$team+ci")
        .env("HARBOR_PASSWORD", PASSWORD)
        .env("CI_PROJECT_NAME", "Web-App")
        .env("CI_PROJECT_URL", "https://gitlab.example.com/team/web-app")
        .env("CI_PROJECT_TITLE", "Web App")
        .env("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("CI_COMMIT_SHORT_SHA", "01234567")
        .env("CI_COMMIT_TIMESTAMP", "2024-05-06T07:08:09+02:00")
        .env("CI_COMMIT_REF_NAME", branch)
        .env("CI_COMMIT_REF_SLUG", branch)
        .env("CI_COMMIT_BRANCH", branch)
        .env("CI_DEFAULT_BRANCH", "main");
}

fn context(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY hello.txt /\nCMD [\"/hello\"]\n").unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from CI\n").unwrap();
}

fn dotenv(file: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

#[test]
fn ci_build_with_no_flags_pushes_to_the_harbor_project_with_the_pipelines_tags() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd(ROBOT, PASSWORD)));
    let work = tmp();
    let ctx = work.path().join("ctx");
    context(&ctx);
    let env_file = work.path().join("build.env");

    let mut cmd = Hoist::cmd();
    harbor_env(&mut cmd, &reg, "main");
    cmd.current_dir(&ctx).args(["build", "--dotenv", env_file.to_str().unwrap()]);
    let out = Hoist::run_cmd(cmd, None);
    out.assert_success().assert_no_leak(PASSWORD);
    let err = out.stderr();
    assert!(err.contains("\x1b[0Ksection_start:") && err.contains(":hoist_push[collapsed=true]"), "{err}");
    assert!(err.contains("\x1b[0Ksection_end:") && err.contains(":hoist_build"), "{err}");
    assert!(!err.contains("warning: HARBOR_USERNAME"), "robot$$ is GitLab's own escape, no warning: {err}");

    let mut tags = reg.tags("team/web-app");
    tags.sort();
    assert_eq!(tags, ["01234567", "latest", "main"]);

    let skopeo = Skopeo::new(&reg).creds(ROBOT, PASSWORD);
    let manifest: serde_json::Value = serde_json::from_slice(&skopeo.inspect_raw("team/web-app:latest")).unwrap();
    let a = &manifest["annotations"];
    assert_eq!(a["org.opencontainers.image.source"], "https://gitlab.example.com/team/web-app");
    assert_eq!(a["org.opencontainers.image.url"], "https://gitlab.example.com/team/web-app");
    assert_eq!(a["org.opencontainers.image.revision"], "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(a["org.opencontainers.image.created"], "2024-05-06T05:08:09Z");
    assert_eq!(a["org.opencontainers.image.version"], "main");
    assert_eq!(a["org.opencontainers.image.title"], "Web App");
    assert!(a.get("org.opencontainers.image.ref.name").is_none(), "ref.name is for layouts' index.json");
    let info = skopeo.inspect("team/web-app:latest");
    assert_eq!(info["Labels"]["org.opencontainers.image.revision"], "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(info["Created"], "2024-05-06T05:08:09Z");

    let vars = dotenv(&env_file);
    let digest = info["Digest"].as_str().unwrap().to_string();
    assert_eq!(vars["HOIST_IMAGE"], format!("{}/team/web-app", reg.host()));
    assert_eq!(vars["HOIST_DIGEST"], digest);
    assert_eq!(vars["HOIST_TAGS"], "01234567 main latest");
    assert_eq!(vars["HOIST_IMAGE_REF"], format!("{}/team/web-app@{digest}", reg.host()));
    assert!(!std::fs::read_to_string(&env_file).unwrap().contains(PASSWORD));

    // A second pipeline on the same commit and ref builds the same digest: CI builds are reproducible
    // (the timestamps come from CI_COMMIT_TIMESTAMP).
    let env2 = work.path().join("again.env");
    let mut cmd = Hoist::cmd();
    harbor_env(&mut cmd, &reg, "main");
    cmd.current_dir(&ctx).args(["build", "-q", "--name", "again", "--dotenv", env2.to_str().unwrap()]);
    Hoist::run_cmd(cmd, None).assert_success().assert_no_leak(PASSWORD);
    assert_eq!(dotenv(&env2)["HOIST_DIGEST"], digest, "same commit, same digest");
}

#[test]
fn ci_feature_branch_push_and_mr_pipeline_tags() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd(ROBOT, PASSWORD)));
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(71).tag("v1"));

    // hoist push with no DEST: the CI destination; a feature branch gets the SHA and its slug, no latest.
    let mut cmd = Hoist::cmd();
    harbor_env(&mut cmd, &reg, "feature-x");
    cmd.args(["push", &format!("oci:{}", src.display())]);
    Hoist::run_cmd(cmd, None).assert_success().assert_no_leak(PASSWORD);
    let mut tags = reg.tags("team/web-app");
    tags.sort();
    assert_eq!(tags, ["01234567", "feature-x"]);

    // A bare NAME goes under the Harbor project; a merge-request pipeline gets mr-<iid>.
    let mut cmd = Hoist::cmd();
    harbor_env(&mut cmd, &reg, "feature-x");
    cmd.env_remove("CI_COMMIT_BRANCH").env("CI_MERGE_REQUEST_IID", "17");
    cmd.args(["push", &format!("oci:{}", src.display()), "worker", "--extra-tag", "review"]);
    Hoist::run_cmd(cmd, None).assert_success();
    let mut tags = reg.tags("team/worker");
    tags.sort();
    assert_eq!(tags, ["01234567", "mr-17", "review"]);

    // An eaten robot name warns (and the registry refuses it).
    let mut cmd = Hoist::cmd();
    harbor_env(&mut cmd, &reg, "feature-x");
    cmd.env("HARBOR_USERNAME", "robot+ci").args(["push", &format!("oci:{}", src.display())]);
    let out = Hoist::run_cmd(cmd, None);
    out.assert_code(3).assert_stderr_contains("warning: HARBOR_USERNAME").assert_no_leak(PASSWORD);
}

#[test]
fn ci_without_a_registry_says_what_to_set() {
    let work = tmp();
    let ctx = work.path().join("ctx");
    context(&ctx);
    let mut cmd = Hoist::cmd();
    cmd.current_dir(&ctx).env("GITLAB_CI", "true").env("CI_PROJECT_NAME", "app").arg("build");
    let out = Hoist::run_cmd(cmd, None);
    out.assert_code(2)
        .assert_stderr_contains("no destination")
        .assert_stderr_contains("HARBOR_PROJECT")
        .assert_stderr_contains("CI_REGISTRY_IMAGE");
}
