//! TLS: a registry with a private CA is trusted through each CA source hoist reads — `--ca-file`,
//! `CI_SERVER_TLS_CA_FILE`, docker's `certs.d/<host:port>/ca.crt`, `SSL_CERT_FILE` — and refused
//! without one; `--insecure` works and warns every run.

use crate::harness::*;

#[test]
fn tls_private_ca_is_found_through_every_source_and_refused_without() {
    let reg = Registry::start(RegistryOpts::plain().tls());
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(91).layer_sizes(&[2000]).tag("v1"));
    let source = format!("oci:{}", src.display());
    let ca = reg.ca_pem_path().to_path_buf();
    let push = |repo: &str, setup: &dyn Fn(&mut std::process::Command)| {
        let mut cmd = Hoist::cmd();
        cmd.args(["push", &source, &format!("{}/{repo}:1", reg.host()), "--retries", "0"]);
        setup(&mut cmd);
        Hoist::run_cmd(cmd, None)
    };

    let out = push("tls/none", &|_| {});
    out.assert_code(4).assert_stderr_contains("certificate").assert_stderr_contains("--ca-file");

    push("tls/flag", &|c| {
        c.arg("--ca-file").arg(&ca);
    })
    .assert_success();
    push("tls/gitlab", &|c| {
        c.env("CI_SERVER_TLS_CA_FILE", &ca);
    })
    .assert_success();
    push("tls/sslcertfile", &|c| {
        c.env("SSL_CERT_FILE", &ca);
    })
    .assert_success();
    let certs_d = work.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(reg.host())).unwrap();
    std::fs::copy(&ca, certs_d.join(reg.host()).join("ca.crt")).unwrap();
    push("tls/certsd", &|c| {
        c.env("HOIST_CERTS_DIR", &certs_d);
    })
    .assert_success();
    // The certs.d directory of another host does not count.
    let other = work.path().join("other.d");
    std::fs::create_dir_all(other.join("127.0.0.1:1")).unwrap();
    std::fs::copy(&ca, other.join("127.0.0.1:1").join("ca.crt")).unwrap();
    push("tls/otherhost", &|c| {
        c.env("HOIST_CERTS_DIR", &other);
    })
    .assert_code(4);

    let out = push("tls/insecure", &|c| {
        c.arg("--insecure");
    });
    out.assert_success().assert_stderr_contains("warning: --insecure");
    // Even with -q the warning stays.
    push("tls/insecure2", &|c| {
        c.args(["--insecure", "-q"]);
    })
    .assert_success()
    .assert_stderr_contains("warning: --insecure");

    for repo in ["tls/flag", "tls/gitlab", "tls/sslcertfile", "tls/certsd", "tls/insecure"] {
        assert!(Skopeo::new(&reg).try_inspect_raw(&format!("{repo}:1")).status.success(), "{repo}");
    }
}

/// `--insecure` warns on every run of every verb that talks to registries (one line per verb below),
/// even with `-q`; and a TLS registry is never reached over plain HTTP behind the user's back.
#[test]
fn tls_insecure_warns_for_every_verb() {
    let reg = Registry::start(RegistryOpts::plain().tls());
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(93).layer_sizes(&[1000]).tag("v1"));
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a /a\n").unwrap();
    std::fs::write(ctx.join("a"), "a").unwrap();
    let host = reg.host();
    let verbs: Vec<Vec<String>> = vec![
        vec!["push".into(), format!("oci:{}:v1", src.display()), format!("{host}/ins/push:1")],
        vec!["build".into(), ctx.display().to_string(), "-t".into(), format!("{host}/ins/build:1")],
    ];
    for args in verbs {
        let out = Hoist::run(args.iter().map(String::as_str).chain(["--insecure", "-q"]));
        out.assert_success().assert_stderr_contains("warning: --insecure");
        // Without it the same run fails on the certificate (exit 4) instead of trying plain HTTP.
        let out = Hoist::run(args.iter().map(String::as_str).chain(["--retries", "0"]));
        out.assert_code(4).assert_stderr_contains("certificate");
    }
}
