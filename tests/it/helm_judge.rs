//! Helm 4 (the real one, built by `scripts/go-tools.sh`) beside `hoist chart`:
//! - `helm package` and `hoist chart package` of every chart in `../shared/conformance/charts-helm` and
//!   `charts-real` and of the example give the same tar stream (members, order, every header byte, contents)
//!   and the same gzip header, with the same `SOURCE_DATE_EPOCH`;
//! - `helm push` of helm's package and `hoist chart push` of the same `.tgz` give the same manifest digest
//!   (helm stamps `created` from the `.tgz` file's mtime, hoist from the build epoch: the test sets one
//!   instant for both);
//! - helm pulls, shows and templates what hoist pushed, logged in only by `hoist login` (Helm's default
//!   registry config under HOME); hoist inspects, copies and pulls what helm pushed; crane, regctl and oras
//!   judge both ([`check_remote`]);
//! - `hoist chart package --dependency-update` picks the versions `helm dependency update` picks (an `oci://`
//!   and an `https://` repository, no lock), and the ones `helm dependency build` picks from the lock.
//!
//! Tests named `conformance_*` need `../shared/conformance` (see `chart.rs`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::chart_repo::HttpsDir;
use crate::harness::*;

const EPOCH: &str = "1700000000";
const EPOCH_RFC3339: &str = "2023-11-14T22:13:20Z";

fn conformance() -> PathBuf {
    let dir = match std::env::var_os("HOIST_CONFORMANCE_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.join("charts-helm").is_dir() {
                d
            } else {
                d.parent().map(Path::to_path_buf).unwrap_or(d)
            }
        }
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"),
    };
    assert!(
        dir.join("charts-helm").is_dir() && dir.join("charts-real").is_dir(),
        "Helm conformance data not found under {} (charts-helm/, charts-real/); set HOIST_CONFORMANCE_DIR",
        dir.display()
    );
    dir
}

/// `helm ARGS…` with a clean environment and HOME = `home` (so Helm's registry config is
/// `home/.config/helm/registry/config.json`, where `hoist login` writes with the same HOME), times in UTC.
fn helm(home: &Path, args: &[&str], epoch: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(require_go_tool("helm"));
    crate::harness::clean_env(&mut cmd, home);
    cmd.env("TZ", "UTC").args(args);
    if let Some(e) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", e);
    }
    run_with_timeout(cmd, None, TOOL_TIMEOUT)
}

fn helm_ok(home: &Path, args: &[&str], epoch: Option<&str>) -> String {
    let out = crate::harness::skopeo::check(&format!("helm {}", args.join(" ")), helm(home, args, epoch));
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `hoist ARGS…` with HOME = `home`.
fn hoist(home: &Path, args: &[&str], epoch: Option<&str>, stdin: Option<&[u8]>) -> Output {
    let mut cmd = Hoist::cmd_with_home(home);
    cmd.args(args);
    if let Some(e) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", e);
    }
    Hoist::run_cmd(cmd, stdin)
}

/// The only file in `dir`.
fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "one archive in {}: {files:?}", dir.display());
    files.into_iter().next().unwrap()
}

/// The decompressed tar stream and the gzip header fields (mtime, extra, comment, os) of a `.tgz`.
fn unpack_tgz(tgz: &[u8]) -> (Vec<u8>, String) {
    let mut d = flate2::read::GzDecoder::new(tgz);
    let mut tar = Vec::new();
    d.read_to_end(&mut tar).unwrap();
    let h = d.header().expect("gzip header");
    let header = format!(
        "mtime {} extra {:?} comment {:?} os {} filename {:?}",
        h.mtime(),
        h.extra().map(String::from_utf8_lossy),
        h.comment().map(String::from_utf8_lossy),
        h.operating_system(),
        h.filename().map(String::from_utf8_lossy)
    );
    (tar, header)
}

/// One line per member: name, type, mode, owner, size, mtime, and a digest of the 512-byte header and of the
/// content — what a failure prints to show where the two archives part.
fn member_lines(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(format!(
            "{} type {} mode {:o} {}:{} size {} mtime {} header {} content {}",
            String::from_utf8_lossy(&e.path_bytes()),
            h.entry_type().as_byte() as char,
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.size().unwrap(),
            h.mtime().unwrap(),
            &sha256_digest(h.as_bytes())[7..19],
            &sha256_digest(&data)[7..19],
        ));
    }
    out
}

/// Every chart the comparison covers: (label, a copy of its source ready to package).
fn every_chart(work: &Path) -> Vec<(String, PathBuf)> {
    let c = conformance();
    let mut charts = Vec::new();
    for (set, names) in [
        (
            "charts-helm",
            &[
                "chart-with-compressed-dependencies",
                "chart-with-uncompressed-dependencies",
                "import-values-dev",
                "mariadb",
                "signtest",
            ][..],
        ),
        ("charts-real", &["bitnami-nginx", "prometheus-node-exporter", "prometheus-operator-crds"][..]),
    ] {
        for name in names {
            let fx = c.join(set).join(name);
            // The directory name is the chart's name for neither tool; keep the fixture's name.
            let dst = work.join("src").join(name);
            copy_dir(&fx.join("src"), &dst);
            if *name == "bitnami-nginx" {
                // `common` is declared but not vendored; both tools package it vendored as a directory.
                copy_dir(&fx.join("dep-source/common"), &dst.join("charts/common"));
            }
            charts.push((format!("{set}/{name}"), dst));
        }
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/helm-chart/chart");
    let dst = work.join("src/example-helm-chart");
    copy_dir(&example, &dst);
    charts.push(("examples/helm-chart/chart".into(), dst));
    charts
}

/// `helm package` and `hoist chart package` of `src` with the same epoch: (helm's .tgz, hoist's .tgz).
fn package_both(home: &Path, src: &Path, out: &Path) -> (PathBuf, PathBuf) {
    let (h_out, o_out) = (out.join("helm"), out.join("hoist"));
    std::fs::create_dir_all(&h_out).unwrap();
    helm_ok(home, &["package", src.to_str().unwrap(), "-d", h_out.to_str().unwrap()], Some(EPOCH));
    hoist(home, &["chart", "package", src.to_str().unwrap(), "-d", o_out.to_str().unwrap()], Some(EPOCH), None)
        .assert_success();
    (only_file(&h_out), only_file(&o_out))
}

#[test]
fn conformance_helm_package_and_hoist_chart_package_write_the_same_archive() {
    let work = tmp();
    let home = scratch_dir("helm-home");
    let mut failures = Vec::new();
    let charts = every_chart(work.path());
    for (i, (label, src)) in charts.iter().enumerate() {
        let (h, o) = package_both(&home, src, &work.path().join(format!("out{i}")));
        assert_eq!(h.file_name(), o.file_name(), "{label}: archive names");
        let (h_tar, h_gz) = unpack_tgz(&std::fs::read(&h).unwrap());
        let (o_tar, o_gz) = unpack_tgz(&std::fs::read(&o).unwrap());
        if h_tar != o_tar {
            let (hm, om) = (member_lines(&h_tar), member_lines(&o_tar));
            let mut diff = Vec::new();
            for k in 0..hm.len().max(om.len()) {
                let (a, b) = (hm.get(k).map_or("(none)", |s| s), om.get(k).map_or("(none)", |s| s));
                if a != b {
                    diff.push(format!("  #{k}\n    helm  {a}\n    hoist {b}"));
                }
            }
            failures.push(format!(
                "{label}: tar streams differ ({} vs {} bytes)\n{}",
                h_tar.len(),
                o_tar.len(),
                diff.join("\n")
            ));
        }
        if h_gz != o_gz {
            failures.push(format!("{label}: gzip headers differ: helm {h_gz}; hoist {o_gz}"));
        }
    }
    assert_eq!(charts.len(), 9);
    assert!(failures.is_empty(), "helm package vs hoist chart package:\n{}", failures.join("\n"));
}

/// `Digest: sha256:…` from helm push's output.
fn helm_digest(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest: line in helm push's output:\n{output}"))
        .trim()
        .to_string()
}

#[test]
fn conformance_helm_push_and_hoist_chart_push_of_one_tgz_give_one_digest() {
    let reg = Registry::start(RegistryOpts::plain().tls().auth(Auth::htpasswd("ci", "helm-judge-pw")));
    let ca = reg.ca_pem_path().to_str().unwrap().to_string();
    let work = tmp();
    let home = scratch_dir("helm-home");
    // Logged in once, by hoist: helm finds the credentials in its default registry config under HOME.
    hoist(
        &home,
        &["login", &reg.host(), "-u", "ci", "--password-stdin", "--ca-file", &ca],
        None,
        Some(b"helm-judge-pw\n"),
    )
    .assert_success()
    .assert_no_leak("helm-judge-pw");
    assert!(home.join(".config/helm/registry/config.json").is_file(), "hoist login wrote Helm's default config");
    let epoch_time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(EPOCH.parse().unwrap());
    for (i, (label, src)) in every_chart(work.path()).iter().enumerate() {
        let out = work.path().join(format!("out{i}"));
        std::fs::create_dir_all(&out).unwrap();
        helm_ok(&home, &["package", src.to_str().unwrap(), "-d", out.to_str().unwrap()], Some(EPOCH));
        let tgz = only_file(&out);
        // helm push stamps `created` with the archive's mtime; hoist with the build epoch. One instant for both.
        std::fs::File::options().write(true).open(&tgz).unwrap().set_modified(epoch_time).unwrap();
        let by_helm = helm_digest(&helm_ok(
            &home,
            &["push", tgz.to_str().unwrap(), &format!("oci://{}/by-helm", reg.host()), "--ca-file", &ca],
            None,
        ));
        let o = hoist(
            &home,
            &["chart", "push", tgz.to_str().unwrap(), &format!("oci://{}/by-hoist", reg.host()), "--ca-file", &ca],
            Some(EPOCH),
            None,
        );
        o.assert_success();
        let by_hoist = o.stdout().trim().rsplit_once('@').expect("REF@DIGEST").1.to_string();
        assert_eq!(by_hoist, by_helm, "{label}: hoist chart push vs helm push of {}", tgz.display());
        // host/by-hoist/NAME:TAG@DIGEST → by-hoist/NAME
        let repo = o
            .stdout()
            .trim()
            .split_once('/')
            .unwrap()
            .1
            .rsplit_once('@')
            .unwrap()
            .0
            .rsplit_once(':')
            .unwrap()
            .0
            .to_string();
        let m: serde_json::Value = serde_json::from_slice(&reg.manifest_bytes(&repo, &by_hoist).unwrap()).unwrap();
        assert_eq!(m["annotations"]["org.opencontainers.image.created"], EPOCH_RFC3339, "{label}");
    }
}

/// A chart pushed by hoist, read by helm (pull, show chart, template) with only `hoist login`'s credentials;
/// a chart pushed by helm, read by hoist (inspect, copy, pull); crane, regctl and oras judge both.
#[test]
fn helm_reads_what_hoist_pushed_and_hoist_reads_what_helm_pushed() {
    let reg = Registry::start(RegistryOpts::plain().tls().auth(Auth::htpasswd("robot$charts+ci", "helm-judge-pw2")));
    let ca = reg.ca_pem_path().to_str().unwrap().to_string();
    let host = reg.host();
    let work = tmp();
    let home = scratch_dir("helm-home");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/helm-chart/chart");
    let meta = ::hoist::chart::Metadata::parse(&std::fs::read(example.join("Chart.yaml")).unwrap()).unwrap();
    let (name, version) = (meta.name.clone(), meta.version.clone());

    // Before login helm is refused: what follows works because of the file hoist writes.
    let refused = helm(&home, &["show", "chart", &format!("oci://{host}/charts/{name}"), "--ca-file", &ca], None);
    assert!(!refused.status.success(), "helm without credentials must be refused");
    hoist(
        &home,
        &["login", &host, "-u", "robot$charts+ci", "--password-stdin", "--ca-file", &ca],
        None,
        Some(b"helm-judge-pw2\n"),
    )
    .assert_success()
    .assert_no_leak("helm-judge-pw2");

    // hoist pushes; helm reads.
    let o = hoist(
        &home,
        &["chart", "push", example.to_str().unwrap(), &format!("oci://{host}/charts"), "--ca-file", &ca],
        Some(EPOCH),
        None,
    );
    o.assert_success();
    let pushed = o.stdout().trim().to_string();
    let digest = pushed.rsplit_once('@').unwrap().1.to_string();
    check_remote(&reg, &format!("charts/{name}@{digest}"));
    let oci = format!("oci://{host}/charts/{name}");
    let pulled = work.path().join("pulled");
    std::fs::create_dir_all(&pulled).unwrap(); // helm pull -d wants an existing directory
    let out =
        helm_ok(&home, &["pull", &oci, "--version", &version, "-d", pulled.to_str().unwrap(), "--ca-file", &ca], None);
    assert!(out.contains(&digest), "helm pull names the digest hoist pushed:\n{out}");
    let (tgz_hoist, _) = {
        let d = work.path().join("pkg");
        hoist(&home, &["chart", "package", example.to_str().unwrap(), "-d", d.to_str().unwrap()], Some(EPOCH), None)
            .assert_success();
        (std::fs::read(only_file(&d)).unwrap(), ())
    };
    assert_eq!(std::fs::read(only_file(&pulled)).unwrap(), tgz_hoist, "helm pull gets hoist's archive byte for byte");
    let shown = helm_ok(&home, &["show", "chart", &oci, "--version", &version, "--ca-file", &ca], None);
    assert!(shown.contains(&format!("name: {name}")) && shown.contains(&format!("version: {version}")), "{shown}");
    let rendered = helm_ok(&home, &["template", "judge", &oci, "--version", &version, "--ca-file", &ca], None);
    assert!(rendered.contains("kind: "), "helm template renders manifests from hoist's chart:\n{rendered}");

    // helm pushes (its own package, its own clock); hoist reads.
    let hp = work.path().join("helm-pkg");
    helm_ok(&home, &["package", example.to_str().unwrap(), "-d", hp.to_str().unwrap()], None);
    let out = helm_ok(
        &home,
        &["push", only_file(&hp).to_str().unwrap(), &format!("oci://{host}/by-helm"), "--ca-file", &ca],
        None,
    );
    let helm_pushed = helm_digest(&out);
    let helm_ref = format!("{host}/by-helm/{name}:{version}");
    check_remote(&reg, &helm_ref);
    let creds_home = |args: &[&str]| hoist(&home, args, None, None);
    let inspected = creds_home(&["inspect", &helm_ref, "--ca-file", &ca]);
    inspected.assert_success();
    assert!(
        inspected.stdout().contains(&helm_pushed) || inspected.stderr().contains(&helm_pushed),
        "hoist inspect names helm's digest:\n{}{}",
        inspected.stdout(),
        inspected.stderr()
    );
    let copied = creds_home(&["copy", &helm_ref, &format!("{host}/copies/{name}:{version}"), "--ca-file", &ca]);
    copied.assert_success();
    assert!(copied.stdout().ends_with(&format!("@{helm_pushed}\n")), "copy keeps helm's digest: {}", copied.stdout());
    check_remote(&reg, &format!("copies/{name}:{version}"));
    let layout = work.path().join("layout");
    creds_home(&["pull", &helm_ref, "--output", &format!("oci:{}", layout.display()), "--ca-file", &ca])
        .assert_success();
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], helm_pushed.as_str(), "{index}");
    // And the copy is still a chart helm installs from.
    let rendered = helm_ok(
        &home,
        &["template", "judge", &format!("oci://{host}/copies/{name}"), "--version", &version, "--ca-file", &ca],
        None,
    );
    assert!(rendered.contains("kind: "), "{rendered}");
}

/// A chart directory `dir` named `name` at `version`, with one template recording the version.
fn tiny_chart(dir: &Path, name: &str, version: &str) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("Chart.yaml"), format!("apiVersion: v2\nname: {name}\nversion: {version}\n")).unwrap();
    std::fs::write(dir.join("templates/cm.yaml"), format!("# {name} {version}\n")).unwrap();
}

fn charts_dir(app: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(app.join("charts")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn dependency_update_picks_the_versions_helm_picks() {
    // An OCI repository (TLS, no auth) and an https index, each with versions a careless resolver gets wrong.
    let reg = Registry::start(RegistryOpts::plain().tls());
    let work = tmp();
    let home = scratch_dir("helm-home");
    for v in ["1.0.0", "1.4.0", "1.10.0", "1.11.0-rc.1", "2.0.0"] {
        let d = work.path().join(format!("lib-{v}"));
        tiny_chart(&d, "lib", v);
        let mut cmd = Hoist::cmd_with_home(&home);
        cmd.args(["chart", "push"])
            .arg(&d)
            .arg(format!("oci://{}/deps", reg.host()))
            .arg("--ca-file")
            .arg(reg.ca_pem_path());
        Hoist::run_cmd(cmd, None).assert_success();
    }
    let repo_dir = work.path().join("repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    let mut index = String::from("apiVersion: v1\nentries:\n  sub:\n");
    for v in ["0.1.0", "0.1.5", "0.2.0"] {
        let d = work.path().join(format!("sub-{v}"));
        tiny_chart(&d, "sub", v);
        let o =
            hoist(&home, &["chart", "package", d.to_str().unwrap(), "-d", repo_dir.to_str().unwrap()], Some("0"), None);
        o.assert_success();
        let tgz = std::fs::read(o.stdout().trim()).unwrap();
        index.push_str(&format!(
            "  - apiVersion: v2\n    name: sub\n    version: {v}\n    digest: {}\n    urls:\n    - sub-{v}.tgz\n",
            &sha256_digest(&tgz)[7..]
        ));
    }
    std::fs::write(repo_dir.join("index.yaml"), index).unwrap();
    let server = HttpsDir::serve(&repo_dir);
    // One CA bundle for both servers (helm takes one --ca-file).
    let bundle = work.path().join("bundle.pem");
    let pems =
        [std::fs::read_to_string(reg.ca_pem_path()).unwrap(), std::fs::read_to_string(&server.ca.ca_pem_path).unwrap()];
    std::fs::write(&bundle, pems.concat()).unwrap();
    let bundle_s = bundle.to_str().unwrap().to_string();
    let chart_yaml = format!(
        "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: lib\n  version: ^1.2\n  repository: oci://{}/deps\n\
         - name: sub\n  version: ~0.1\n  repository: {}\n",
        reg.host(),
        server.url()
    );
    let (by_helm, by_hoist) = (work.path().join("helm/app"), work.path().join("hoist/app"));
    for d in [&by_helm, &by_hoist] {
        std::fs::create_dir_all(d.join("templates")).unwrap();
        std::fs::write(d.join("Chart.yaml"), &chart_yaml).unwrap();
    }
    // helm needs an https repository added first; hoist reads the URL from Chart.yaml.
    helm_ok(&home, &["repo", "add", "subrepo", &server.url(), "--ca-file", &bundle_s], None);
    helm_ok(&home, &["dependency", "update", by_helm.to_str().unwrap(), "--ca-file", &bundle_s], None);
    let out = work.path().join("out");
    hoist(
        &home,
        &[
            "chart",
            "package",
            by_hoist.to_str().unwrap(),
            "-d",
            out.to_str().unwrap(),
            "--dependency-update",
            "--ca-file",
            reg.ca_pem_path().to_str().unwrap(),
            "--ca-file",
            server.ca.ca_pem_path.to_str().unwrap(),
        ],
        Some("0"),
        None,
    )
    .assert_success();
    assert_eq!(charts_dir(&by_helm), ["lib-1.10.0.tgz", "sub-0.1.5.tgz"], "helm's picks");
    assert_eq!(charts_dir(&by_hoist), charts_dir(&by_helm), "hoist picks what helm picks");

    // With helm's Chart.lock (pins 1.10.0) and a newer 1.12.0 published: `helm dependency build` and hoist
    // both take the lock.
    let d = work.path().join("lib-1.12.0");
    tiny_chart(&d, "lib", "1.12.0");
    let mut cmd = Hoist::cmd_with_home(&home);
    cmd.args(["chart", "push"])
        .arg(&d)
        .arg(format!("oci://{}/deps", reg.host()))
        .arg("--ca-file")
        .arg(reg.ca_pem_path());
    Hoist::run_cmd(cmd, None).assert_success();
    let lock = std::fs::read(by_helm.join("Chart.lock")).unwrap();
    for d in [&by_helm, &by_hoist] {
        std::fs::remove_dir_all(d.join("charts")).unwrap();
        std::fs::write(d.join("Chart.lock"), &lock).unwrap();
    }
    helm_ok(&home, &["dependency", "build", by_helm.to_str().unwrap(), "--ca-file", &bundle_s], None);
    let out2 = work.path().join("out2");
    hoist(
        &home,
        &[
            "chart",
            "package",
            by_hoist.to_str().unwrap(),
            "-d",
            out2.to_str().unwrap(),
            "--dependency-update",
            "--ca-file",
            reg.ca_pem_path().to_str().unwrap(),
            "--ca-file",
            server.ca.ca_pem_path.to_str().unwrap(),
        ],
        Some("0"),
        None,
    )
    .assert_success();
    assert_eq!(charts_dir(&by_helm), ["lib-1.10.0.tgz", "sub-0.1.5.tgz"], "helm dependency build follows the lock");
    assert_eq!(charts_dir(&by_hoist), charts_dir(&by_helm), "hoist follows the lock as helm does");
}
