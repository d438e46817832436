//! `hoist login` / `hoist logout`: the credentials are checked against a real htpasswd+TLS registry before
//! anything is written; docker's `config.json` it writes is read by skopeo's `--authfile` (an independent
//! reader), Helm's registry config gets the same entry, other entries and mode 0600 are kept, a refused password
//! writes nothing, and logout removes the entry.

use crate::harness::*;
use std::os::unix::fs::PermissionsExt;

fn skopeo_with_authfile(reg: &Registry, authfile: &std::path::Path, reference: &str) -> std::process::Output {
    let mut cmd = crate::harness::skopeo::skopeo_cmd();
    cmd.args(["inspect", "--raw", "--authfile"]).arg(authfile);
    cmd.arg("--cert-dir").arg(reg.ca_dir().expect("TLS registry"));
    cmd.arg(format!("docker://{}/{reference}", reg.host()));
    crate::harness::skopeo::run(cmd)
}

#[test]
fn login_writes_docker_and_helm_configs_that_skopeo_reads_and_logout_removes() {
    let reg = Registry::start(RegistryOpts::plain().tls().auth(Auth::htpasswd("robot$team+ci", "hunter2-robot")));
    let work = tmp();
    let layout = work.path().join("layout");
    oci_layout(&layout, &LayoutSpec::new(7).layer_sizes(&[300]).tag("v1"));
    Skopeo::new(&reg).push_layout(&layout, "v1", "team/app:v1");

    let docker_dir = work.path().join("docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    let config = docker_dir.join("config.json");
    std::fs::write(&config, r#"{"auths":{"other.example.com":{"auth":"dTpw"}},"detachKeys":"ctrl-e"}"#).unwrap();
    let helm = work.path().join("helm").join("registry").join("config.json");
    let ca = reg.ca_pem_path().to_path_buf();
    let hoist = |args: &[&str], stdin: Option<&[u8]>| {
        let mut cmd = Hoist::cmd();
        cmd.args(args).env("DOCKER_CONFIG", &docker_dir).env("HELM_REGISTRY_CONFIG", &helm);
        Hoist::run_cmd(cmd, stdin)
    };

    // Without credentials, skopeo is refused: the authfile is what makes it work below.
    assert!(!skopeo_with_authfile(&reg, &config, "team/app:v1").status.success());

    // A wrong password: refused, nothing written.
    let before = std::fs::read(&config).unwrap();
    let out = hoist(
        &["login", &reg.host(), "-u", "robot$team+ci", "--password-stdin", "--ca-file", ca.to_str().unwrap()],
        Some(b"wrong-password\n"),
    );
    out.assert_code(3).assert_stderr_contains("robot$team+ci").assert_no_leak("wrong-password");
    assert_eq!(std::fs::read(&config).unwrap(), before, "a refused login writes nothing");
    assert!(!helm.exists());

    let out = hoist(
        &["login", &reg.host(), "-u", "robot$team+ci", "--password-stdin", "--ca-file", ca.to_str().unwrap()],
        Some(b"hunter2-robot\n"),
    );
    out.assert_success().assert_stderr_contains("Login Succeeded").assert_no_leak("hunter2-robot");
    for file in [&config, &helm] {
        assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert!(doc["auths"][reg.host()]["auth"].is_string(), "{doc}");
    }
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(doc["detachKeys"], "ctrl-e", "other keys kept: {doc}");
    assert_eq!(doc["auths"]["other.example.com"]["auth"], "dTpw", "other entries kept: {doc}");

    // skopeo reads docker's format.
    let out = skopeo_with_authfile(&reg, &config, "team/app:v1");
    assert!(out.status.success(), "skopeo --authfile: {}", String::from_utf8_lossy(&out.stderr));
    // And hoist itself finds the entry (no -u): doctor logs in from the docker config.
    let mut cmd = Hoist::cmd();
    cmd.args(["doctor", &format!("{}/team/app", reg.host()), "--ca-file", ca.to_str().unwrap()])
        .env("DOCKER_CONFIG", &docker_dir);
    Hoist::run_cmd(cmd, None).assert_success().assert_stderr_contains(&format!("from {}", config.display()));

    hoist(&["logout", &reg.host()], None).assert_success().assert_stderr_contains(&format!(
        "removed credentials for {} from {}",
        reg.host(),
        config.display()
    ));
    for file in [&config, &helm] {
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert!(doc["auths"].get(reg.host()).is_none(), "{doc}");
    }
    assert!(!skopeo_with_authfile(&reg, &config, "team/app:v1").status.success());
    hoist(&["logout", &reg.host()], None).assert_success().assert_stderr_contains("not logged in");
}

#[test]
fn login_without_argument_uses_harbor_variables_and_warns_on_eaten_robot_names() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd("robot+ci", "pw")));
    let work = tmp();
    let mut cmd = Hoist::cmd();
    cmd.arg("login")
        .env("DOCKER_CONFIG", work.path())
        .env("HELM_REGISTRY_CONFIG", work.path().join("helm.json"))
        .env("HARBOR_URL", format!("http://{}", reg.host()))
        .env("HARBOR_USERNAME", "robot+ci")
        .env("HARBOR_PASSWORD", "pw");
    let out = Hoist::run_cmd(cmd, None);
    out.assert_success().assert_stderr_contains("warning: the username \"robot+ci\" looks like a robot account");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("config.json")).unwrap()).unwrap();
    assert!(doc["auths"][reg.host()]["auth"].is_string(), "{doc}");
}

#[test]
fn doctor_and_login_help_lists_only_the_flags_that_apply() {
    for verb in ["doctor", "login"] {
        let out = Hoist::run([verb, "--help"]);
        out.assert_success();
        let help = out.stdout();
        assert!(help.contains("--ca-file") && help.contains("--insecure"), "{verb} --help: {help}");
        assert!(
            !help.contains("--retries") && !help.contains("--chunk-size"),
            "{verb} --help lists transfer flags: {help}"
        );
    }
    // The verbs that move blobs keep them.
    for verb in ["push", "copy", "pull"] {
        let help = Hoist::run([verb, "--help"]).stdout();
        assert!(help.contains("--retries") && help.contains("--chunk-size"), "{verb} --help: {help}");
    }
}
