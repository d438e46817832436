//! `hoist doctor` against each failure it names — a port serving HTML, an untrusted CA, a bad password, a token
//! without push, a robot name eaten by `$`, a GitLab job token on another registry — and, on the **fake Harbor**
//! (harness/harbor.rs: Harbor's documented API in front of a real registry, not Harbor itself), a robot without
//! List, a missing project and an immutable `latest`; plus a healthy registry (exit 0) and `--json`.

use crate::harness::*;
use std::io::{Read, Write};
use std::process::Command;

fn doctor(args: &[&str], setup: impl FnOnce(&mut Command), stdin: Option<&[u8]>) -> Output {
    let mut cmd = Hoist::cmd();
    cmd.arg("doctor").args(args);
    setup(&mut cmd);
    let out = Hoist::run_cmd(cmd, stdin);
    // The report in the test log: what a user would see.
    eprintln!("$ hoist doctor {}\n{}", args.join(" "), out.stderr());
    out
}

/// A web server on loopback answering every request with a GitLab-like HTML page (what the GitLab web host
/// answers on /v2/). Serves until the test process ends; one thread per connection.
fn html_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let body = "<!DOCTYPE html><html><head><title>Sign in · GitLab</title></head><body></body></html>";
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    host
}

#[test]
fn doctor_healthy_token_registry_passes_and_json_parses() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::Token(TokenIssuerOpts::with_user("ci", "s3cret"))));
    let target = format!("{}/team/app:1.0", reg.host());
    let out = doctor(&[&target, "-u", "ci", "--password-stdin"], |_| {}, Some(b"s3cret\n"));
    out.assert_success()
        .assert_stderr_contains("✔ api")
        .assert_stderr_contains("user \"ci\" from --username/--password-stdin")
        .assert_stderr_contains("the token service accepted \"ci\"")
        .assert_stderr_contains("token for team/app grants pull,push")
        .assert_stderr_contains("ready to push")
        .assert_no_leak("s3cret");

    let out = doctor(&[&target, "-u", "ci", "--password-stdin", "--json"], |_| {}, Some(b"s3cret\n"));
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).expect("doctor --json prints JSON");
    assert_eq!(v["ok"], true);
    let steps = v["steps"].as_array().unwrap();
    let checks: Vec<&str> = steps.iter().map(|s| s["check"].as_str().unwrap()).collect();
    assert_eq!(checks, ["dns", "tcp", "tls", "api", "credentials", "login", "token"], "{v:#}");
    assert!(steps.iter().all(|s| s["status"] == "pass" || s["status"] == "skip"), "{v:#}");
}

#[test]
fn doctor_names_a_web_ui_on_the_registry_port() {
    let host = html_server();
    let out = doctor(&[&format!("{host}/group/project")], |_| {}, None);
    out.assert_code(1)
        .assert_stderr_contains("✘ api")
        .assert_stderr_contains("with an HTML page")
        .assert_stderr_contains(
            "this is a web UI, not the registry API; self-managed GitLab registries usually listen on :5050",
        );
}

#[test]
fn doctor_tls_names_the_ca_source_or_why_not() {
    let reg = Registry::start(RegistryOpts::plain().tls());
    let ca = reg.ca_pem_path().to_path_buf();
    let host = reg.host();

    let out = doctor(&[&host], |_| {}, None);
    out.assert_code(4)
        .assert_stderr_contains("✘ tls")
        .assert_stderr_contains("certificate not trusted")
        .assert_stderr_contains("UnknownIssuer")
        .assert_stderr_contains("--ca-file");

    doctor(&[&host, "--ca-file", ca.to_str().unwrap()], |_| {}, None)
        .assert_success()
        .assert_stderr_contains(&format!("certificate verified by --ca-file {}", ca.display()));
    doctor(
        &[&host],
        |c| {
            c.env("CI_SERVER_TLS_CA_FILE", &ca);
        },
        None,
    )
    .assert_success()
    .assert_stderr_contains("certificate verified by CI_SERVER_TLS_CA_FILE");
    let work = tmp();
    let certs_d = work.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(&host)).unwrap();
    std::fs::copy(&ca, certs_d.join(&host).join("ca.crt")).unwrap();
    doctor(
        &[&host],
        |c| {
            c.env("HOIST_CERTS_DIR", &certs_d);
        },
        None,
    )
    .assert_success()
    .assert_stderr_contains("certificate verified by docker certs.d file");
}

#[test]
fn doctor_bad_password_and_gitlab_token_on_another_registry() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd("deployer", "right-pass")));
    let target = format!("{}/team/app", reg.host());
    let out = doctor(&[&target, "-u", "deployer", "--password-stdin"], |_| {}, Some(b"wrong-pass"));
    out.assert_code(3)
        .assert_stderr_contains("✘ login")
        .assert_stderr_contains("the registry refused \"deployer\"")
        .assert_stderr_contains("check the password")
        .assert_no_leak("wrong-pass");

    // GitLab's job token, found in DOCKER_AUTH_CONFIG, used on a registry that is not CI_REGISTRY.
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("gitlab-ci-token:job-token-123");
    let doc = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host());
    let out = doctor(
        &[&target],
        |c| {
            c.env("DOCKER_AUTH_CONFIG", &doc).env("CI_REGISTRY", "gitlab.example.com:5050");
        },
        None,
    );
    out.assert_code(3)
        .assert_stderr_contains("user \"gitlab-ci-token\" from DOCKER_AUTH_CONFIG")
        .assert_stderr_contains("✘ gitlab-token")
        .assert_stderr_contains("not GitLab's registry (CI_REGISTRY=gitlab.example.com:5050)")
        .assert_no_leak("job-token-123");
}

#[test]
fn doctor_token_without_push() {
    let opts = TokenIssuerOpts::with_user("reader", "pw").grant("reader", Grant::new("team/*", &["pull"]));
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::Token(opts)));
    let out = doctor(&[&format!("{}/team/app", reg.host()), "-u", "reader", "--password-stdin"], |_| {}, Some(b"pw"));
    out.assert_code(3)
        .assert_stderr_contains("✔ login")
        .assert_stderr_contains("✘ token")
        .assert_stderr_contains("token for team/app grants pull, not push")
        .assert_stderr_contains("give it push permission");
}

#[test]
fn doctor_robot_name_eaten_by_dollar_expansion() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd("robot$proj+ci", "robot-secret")));
    // What a shell leaves of HARBOR_USERNAME=robot$proj+ci in double quotes.
    let out = doctor(
        &[&format!("{}/proj/app", reg.host())],
        |c| {
            c.env("HARBOR_URL", format!("https://{}/", reg.host()))
                .env("HARBOR_USERNAME", "robot+ci")
                .env("HARBOR_PASSWORD", "robot-secret");
        },
        None,
    );
    out.assert_code(3)
        .assert_stderr_contains("user \"robot+ci\" from HARBOR_USERNAME/HARBOR_PASSWORD")
        .assert_stderr_contains("✘ login")
        .assert_stderr_contains("✘ robot-name")
        .assert_stderr_contains("eaten by variable expansion")
        .assert_no_leak("robot-secret");
}

const ROBOT: &str = "robot$team+ci";

fn harbor_env(c: &mut Command, fake: &HarborFake, user: &str, pass: &str) {
    c.env("HARBOR_URL", format!("http://{}/", fake.host()))
        .env("HARBOR_PROJECT", "team")
        .env("CI_PROJECT_NAME", "app")
        .env("HARBOR_USERNAME", user)
        .env("HARBOR_PASSWORD", pass);
}

#[test]
fn doctor_fake_harbor_robot_without_list_warns_but_passes() {
    let fake = HarborFake::start(
        vec![FakeProject::new(7, "team")],
        vec![FakeRobot::new(ROBOT, "pw").can("team", &["repository:pull", "repository:push"])],
    );
    // No argument: the CI variables point at the (fake) Harbor.
    let out = doctor(&[], |c| harbor_env(c, &fake, ROBOT, "pw"), None);
    out.assert_success()
        .assert_stderr_contains("(from HARBOR_URL)")
        .assert_stderr_contains("✔ harbor-project")
        .assert_stderr_contains("token for team/app grants pull,push")
        .assert_stderr_contains("✔ harbor-permissions")
        .assert_stderr_contains("⚠ harbor-list")
        .assert_stderr_contains("no List on \"team\": pushes and pulls work, but listing tags")
        .assert_stderr_contains("List/Read are not implied by Pull/Push")
        .assert_stderr_contains("ready to push (1 warning(s))");
}

#[test]
fn doctor_fake_harbor_list_and_read_without_push() {
    let fake = HarborFake::start(
        vec![FakeProject::new(7, "team")],
        vec![FakeRobot::new(ROBOT, "pw").can("team", &["repository:list", "artifact:read", "repository:pull"])],
    );
    let out = doctor(&[&format!("{}/team/app", fake.host())], |c| harbor_env(c, &fake, ROBOT, "pw"), None);
    out.assert_code(3)
        .assert_stderr_contains("token for team/app grants pull, not push")
        .assert_stderr_contains("✘ harbor-permissions")
        .assert_stderr_contains("List and Read are API permissions");
}

#[test]
fn doctor_fake_harbor_missing_project() {
    let fake = HarborFake::start(vec![FakeProject::new(7, "team")], vec![FakeRobot::ci(ROBOT, "pw", "team")]);
    let out = doctor(&[&format!("{}/nosuch/app", fake.host())], |c| harbor_env(c, &fake, ROBOT, "pw"), None);
    out.assert_code(1)
        .assert_stderr_contains("✘ harbor-project")
        .assert_stderr_contains("project \"nosuch\" does not exist on this Harbor")
        .assert_stderr_contains("Harbor never creates projects on push");
}

#[test]
fn doctor_fake_harbor_immutable_latest_and_quota() {
    let fake = HarborFake::start(
        vec![FakeProject::new(7, "team").immutable("{latest,stable}").quota(10 << 30, 1 << 30)],
        vec![FakeRobot::ci(ROBOT, "pw", "team")],
    );
    let out = doctor(&[], |c| harbor_env(c, &fake, ROBOT, "pw"), None);
    out.assert_code(1)
        .assert_stderr_contains("✔ harbor-permissions")
        .assert_stderr_contains("✘ harbor-immutable")
        .assert_stderr_contains("rule #1: tags matching \"{latest,stable}\"")
        .assert_stderr_contains("412 PRECONDITION")
        .assert_stderr_contains("✔ harbor-quota")
        .assert_stderr_contains("1.0 GiB of 10.0 GiB used");
    // A unique tag is not protected.
    doctor(&[&format!("{}/team/app:1.4.2", fake.host())], |c| harbor_env(c, &fake, ROBOT, "pw"), None)
        .assert_success()
        .assert_stderr_contains("✔ harbor-immutable");
    // Wrong password: the fake answers like Harbor (anonymous token with a scope, 401 without).
    doctor(&[], |c| harbor_env(c, &fake, ROBOT, "bad"), None).assert_code(3).assert_stderr_contains("✘ login");
}
