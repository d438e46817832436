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
