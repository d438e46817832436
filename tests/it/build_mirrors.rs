//! `hoist build` through registry mirrors: a mirror that has the image serves it (the origin is not
//! asked, and the image still names the origin as its base), a mirror that lacks it falls back to
//! the origin with a warning, a mirror behind credentials (GitLab's Dependency Proxy variables), and
//! containers' registries.conf read through CONTAINERS_REGISTRIES_CONF.

use std::path::Path;

use serde_json::json;

use crate::harness::images::{dir, file, flatten, layout_layers, push_synthetic};
use crate::harness::*;

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn layers() -> Vec<Vec<crate::harness::images::Ent>> {
    vec![vec![
        dir("etc"),
        file("etc/passwd", "root:x:0:0::/:\nweb:x:33:33::/:\n"),
        dir("srv"),
        file("srv/index.html", "<h1>hi</h1>"),
    ]]
}

fn manifest_gets(reg: &Registry, mark: usize) -> usize {
    reg.access_log_since(mark).iter().filter(|l| l.method == "GET" && l.manifest().is_some()).count()
}

#[test]
fn a_mirror_serves_first_and_the_origin_backs_a_mirror_that_lacks_the_image() {
    let origin = Registry::plain();
    let mirror = Registry::plain();
    let work = tmp();
    let base_ref = format!("{}/lib/web:1", origin.host());
    let src_ref = format!("{}/lib/files:1", origin.host());
    push_synthetic(&origin, work.path(), &base_ref, &layers(), json!({"WorkingDir": "/srv"}));
    push_synthetic(&origin, work.path(), &src_ref, &layers(), json!({}));
    // The mirror holds the base under its proxy path, not the --from image.
    let base = push_synthetic(
        &mirror,
        work.path(),
        &format!("{}/proxy/lib/web:1", mirror.host()),
        &layers(),
        json!({"WorkingDir": "/srv"}),
    );

    let ctx = work.path().join("ctx");
    write(&ctx.join("Dockerfile"), &format!("FROM {base_ref}\nCOPY --from={src_ref} /srv/index.html /copied.html\n"));
    let dest = format!("{}/out/app:1", mirror.host());
    let (om, mm) = (origin.log_mark(), mirror.log_mark());
    let out = Hoist::run([
        "build",
        ctx.to_str().unwrap(),
        "-t",
        &dest,
        "--registry-mirror",
        &format!("{}={}/proxy", origin.host(), mirror.host()),
    ]);
    out.assert_success();
    // The base came from the mirror: the origin was asked only for the --from image, after the
    // mirror said it has no such image.
    let origin_manifests: Vec<_> =
        origin.access_log_since(om).into_iter().filter_map(|l| l.manifest()).map(|(r, _)| r).collect();
    assert!(origin_manifests.iter().all(|r| r == "lib/files"), "origin asked for: {origin_manifests:?}");
    assert!(mirror
        .access_log_since(mm)
        .iter()
        .any(|l| l.manifest() == Some(("proxy/lib/files".into(), "1".into())) && l.status == 404));
    out.assert_stderr_contains(&format!("mirror {}/proxy/lib/files:1 for {src_ref}", mirror.host()));
    assert!(manifest_gets(&mirror, mm) >= 1);
    let manifest: serde_json::Value = serde_json::from_slice(&mirror.manifest_bytes("out/app", "1").unwrap()).unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        base_ref.as_str(),
        "the name the Dockerfile wrote"
    );
    assert_eq!(manifest["layers"][0]["digest"], base.layer_digests[0].as_str());
    // Complete and readable.
    let layout = work.path().join("copy");
    Skopeo::new(&mirror).copy_to_layout(&dest, &layout);
    let fs = flatten(&layout_layers(&layout, "1"));
    assert!(fs.contains_key("copied.html") && fs.contains_key("srv/index.html"));
}

#[test]
fn a_mirror_behind_credentials_and_registries_conf() {
    let origin = Registry::plain();
    let mirror = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd("gitlab-ci-token", "job-token")));
    let work = tmp();
    let base_ref = format!("{}/lib/web:1", origin.host());
    push_synthetic(&origin, work.path(), &base_ref, &layers(), json!({}));
    let mirror_dir = work.path().join("mirror-layout");
    let s = crate::harness::images::synthetic_layout(&mirror_dir, "t", &layers(), json!({}));
    Skopeo::new(&mirror).creds("gitlab-ci-token", "job-token").preserve_digests().push_layout(
        &mirror_dir,
        "t",
        &format!("{}/group/dependency_proxy/containers/lib/web:1", mirror.host()),
    );
    let conf = work.path().join("registries.conf");
    write(
        &conf,
        &format!(
            "unqualified-search-registries = [\"docker.io\"]\n\n[[registry]]\nprefix = \"{}\"\n[[registry.mirror]]\nlocation = \"{}/group/dependency_proxy/containers\"  # GitLab's Dependency Proxy\n",
            origin.host(),
            mirror.host()
        ),
    );
    let ctx = work.path().join("ctx");
    write(&ctx.join("Dockerfile"), &format!("FROM {base_ref}\nCOPY --chown=web a /a\n"));
    write(&ctx.join("a"), "a\n");
    let build = |with_creds: bool| {
        let mut cmd = Hoist::cmd();
        cmd.env("CONTAINERS_REGISTRIES_CONF", &conf);
        if with_creds {
            cmd.env("CI_DEPENDENCY_PROXY_SERVER", mirror.host())
                .env("CI_DEPENDENCY_PROXY_USER", "gitlab-ci-token")
                .env("CI_DEPENDENCY_PROXY_PASSWORD", "job-token");
        }
        cmd.args(["build", ctx.to_str().unwrap(), "-t", &format!("{}/out/app:1", origin.host())]);
        Hoist::run_cmd(cmd, None)
    };
    let om = origin.log_mark();
    let out = build(true);
    out.assert_success();
    out.assert_no_leak("job-token");
    assert!(
        origin.access_log_since(om).iter().all(|l| l.manifest().is_none_or(|(r, _)| r == "out/app")),
        "the base came from the mirror"
    );
    let fs = {
        let layout = work.path().join("copy");
        Skopeo::new(&origin).copy_to_layout(&format!("{}/out/app:1", origin.host()), &layout);
        flatten(&layout_layers(&layout, "1"))
    };
    assert_eq!((fs["a"].uid, fs["a"].gid), (33, 33), "--chown read the mirror's layers");
    assert!(mirror.has_blob("group/dependency_proxy/containers/lib/web", &s.layer_digests[0]));
    // Without the credentials the mirror refuses; the origin still serves.
    let out = build(false);
    out.assert_success();
    out.assert_stderr_contains(&format!("mirror {}/group/dependency_proxy/containers/lib/web:1", mirror.host()));
}

#[test]
fn registries_conf_insecure_mirrors_and_blocked_registries() {
    let origin = Registry::plain();
    let mirror = Registry::start(RegistryOpts::plain().tls());
    let work = tmp();
    let base_ref = format!("{}/lib/web:1", origin.host());
    push_synthetic(&origin, work.path(), &base_ref, &layers(), json!({}));
    let mirror_dir = work.path().join("mirror-layout");
    crate::harness::images::synthetic_layout(&mirror_dir, "t", &layers(), json!({}));
    Skopeo::new(&mirror).preserve_digests().push_layout(&mirror_dir, "t", "mirror/lib/web:1");
    let ctx = work.path().join("ctx");
    write(&ctx.join("Dockerfile"), &format!("FROM {base_ref}\nCOPY --chown=web a /a\n"));
    write(&ctx.join("a"), "a\n");
    let conf = work.path().join("registries.conf");
    let build = |registry_keys: &str, mirror_keys: &str| {
        write(
            &conf,
            &format!(
                "[[registry]]\nprefix = \"{}\"\n{registry_keys}\n[[registry.mirror]]\nlocation = \"{}/mirror\"\n{mirror_keys}\n",
                origin.host(),
                mirror.host()
            ),
        );
        let mut cmd = Hoist::cmd();
        cmd.env("CONTAINERS_REGISTRIES_CONF", &conf);
        cmd.args(["build", ctx.to_str().unwrap(), "--output", &format!("oci:{}:t", work.path().join("out").display())]);
        let om = origin.log_mark();
        (Hoist::run_cmd(cmd, None), origin.access_log_since(om))
    };
    let base_manifest_gets =
        |log: &[AccessLine]| log.iter().filter(|l| l.manifest().is_some_and(|(r, _)| r == "lib/web")).count();

    // The mirror's certificate is not trusted: without `insecure = true` it is skipped for the origin.
    let (out, log) = build("", "");
    out.assert_success().assert_stderr_contains("trying the next source");
    assert!(base_manifest_gets(&log) > 0, "the origin served the base");
    // `insecure = true` on the mirror: reached without verifying its certificate, and said so.
    let (out, log) = build("", "insecure = true");
    out.assert_success().assert_stderr_contains(&format!("{} is marked insecure in registries.conf", mirror.host()));
    assert_eq!(base_manifest_gets(&log), 0, "the mirror served the base: {log:?}");
    // `blocked = true`: refused before anything is asked of either, naming the file.
    let mm = mirror.log_mark();
    let (out, log) = build("blocked = true", "insecure = true");
    out.assert_code(2).assert_stderr_contains(&format!("registry {} is blocked in {}", origin.host(), conf.display()));
    assert!(log.is_empty() && mirror.access_log_since(mm).is_empty(), "nothing was asked: {log:?}");
}
