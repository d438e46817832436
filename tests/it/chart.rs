//! `hoist chart package` and `hoist chart push`. Conformance with Helm (tests named `conformance_*`,
//! which need `../shared/conformance` or `HOIST_CONFORMANCE_DIR`; `scripts/test.sh` skips them with a
//! notice when it is absent): Helm's `.helmignore` cases one by one; every helm-made archive in
//! `charts-helm/` rebuilt entry by entry; the member lists of `charts-real/`; bitnami nginx with its
//! `common` dependency from `file://` and `oci://` repositories; helm's golden OCI push. Beyond Helm:
//! pushes read back with skopeo, reproducibility from copies with other mtimes, the default destination
//! from the CI variables, an `https://` repository, invalid charts failing without leaving files, and
//! no tag moved between a chart and an image without `--force`.

use std::io::Read;
use std::path::{Path, PathBuf};

use ::hoist::chart::ignore::Rules;

use crate::harness::chart_repo::HttpsDir;
use crate::harness::*;

// ---- helpers ----------------------------------------------------------------------------------------

/// The conformance root: `HOIST_CONFORMANCE_DIR` (this root or a folder holding it), else `../shared/conformance`.
fn conformance() -> PathBuf {
    let dir = match std::env::var_os("HOIST_CONFORMANCE_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.join("helmignore").is_dir() {
                d
            } else {
                d.parent().map(Path::to_path_buf).unwrap_or(d)
            }
        }
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"),
    };
    assert!(
        dir.join("helmignore").is_dir() && dir.join("charts-helm").is_dir() && dir.join("charts-real").is_dir(),
        "Helm conformance data not found under {} (helmignore/, charts-helm/, charts-real/). Set \
         HOIST_CONFORMANCE_DIR to the conformance directory; scripts/test.sh skips the chart::conformance_ \
         tests when ../shared/conformance is absent.",
        dir.display()
    );
    dir
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Sets every file's mtime under `dir` to `secs`.
fn touch_all(dir: &Path, secs: u64) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            touch_all(&e.path(), secs);
        } else {
            let f = std::fs::File::options().write(true).open(e.path()).unwrap();
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).unwrap();
        }
    }
}

/// One tar member: raw header fields and content.
#[derive(Debug)]
struct Member {
    name: String,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    uname: String,
    gname: String,
    size: u64,
    mtime: u64,
    magic: Vec<u8>,
    data: Vec<u8>,
}

fn members_of(tgz: &[u8]) -> Vec<Member> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Member {
            name: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            typeflag: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            uname: String::from_utf8_lossy(h.username_bytes().unwrap_or_default()).into_owned(),
            gname: String::from_utf8_lossy(h.groupname_bytes().unwrap_or_default()).into_owned(),
            size: h.size().unwrap(),
            mtime: h.mtime().unwrap(),
            magic: h.as_bytes()[257..265].to_vec(),
            data,
        });
    }
    out
}

fn names(members: &[Member]) -> Vec<String> {
    members.iter().map(|m| m.name.clone()).collect()
}

fn yaml(bytes: &[u8]) -> serde_json::Value {
    let v: serde_norway::Value = serde_norway::from_slice(bytes).unwrap();
    serde_json::to_value(v).unwrap()
}

/// `hoist chart package DIR -d OUT` with a fixed epoch; returns the archive's bytes and path.
fn package(dir: &Path, out: &Path, epoch: &str, extra: &[&str]) -> (Vec<u8>, PathBuf) {
    let o = run_package(dir, out, epoch, extra);
    o.assert_success();
    let path = PathBuf::from(o.stdout().trim());
    assert!(path.starts_with(out), "stdout names the archive in -d: {}", o.stdout());
    (std::fs::read(&path).unwrap(), path)
}

/// `hoist chart package DIR -d OUT EXTRA…` with `SOURCE_DATE_EPOCH=epoch`, whatever the outcome.
fn run_package(dir: &Path, out: &Path, epoch: &str, extra: &[&str]) -> Output {
    let mut cmd = Hoist::cmd();
    cmd.env("SOURCE_DATE_EPOCH", epoch).args(["chart", "package"]).arg(dir).arg("-d").arg(out).args(extra);
    Hoist::run_cmd(cmd, None)
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

/// A small chart of our own: templates, a dotfile the default rule drops, an ignored dir, a vendored subchart.
fn sample_chart(dir: &Path, version: &str) {
    let w = |p: &str, s: &str| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    w(
        "Chart.yaml",
        &format!(
            "apiVersion: v2\nname: demo\nversion: {version}\nappVersion: \"2.0\"\ndescription: A demo & test chart\n\
             home: https://example.com/demo\nsources:\n  - https://git.example.com/demo\nmaintainers:\n  - name: Ada\n    \
             email: ada@example.com\n  - name: Bob\nannotations:\n  team: platform\nengine: gotpl\n\
             dependencies:\n  - name: sub\n    version: 0.1.0\n"
        ),
    );
    w("values.yaml", "replicas: 1\n");
    w("templates/deploy.yaml", "kind: Deployment\n");
    w("templates/.gitkeep", "");
    w("README.md", "# demo\n");
    w(".helmignore", "secret/\n*.bak\n");
    w("secret/key.txt", "nope\n");
    w("notes.bak", "old\n");
    w("charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n");
    w("charts/sub/templates/cm.yaml", "kind: ConfigMap\n");
}

const SAMPLE_MEMBERS: &[&str] = &[
    "demo/Chart.yaml",
    "demo/values.yaml",
    "demo/templates/deploy.yaml",
    "demo/.helmignore",
    "demo/README.md",
    "demo/charts/sub/Chart.yaml",
    "demo/charts/sub/templates/cm.yaml",
];

// ---- .helmignore -----------------------------------------------------------------------------------

#[test]
fn conformance_helmignore_cases() {
    let dir = conformance().join("helmignore");
    let cases = json(&dir.join("cases.json"));
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 43, "expected Helm's 43 cases, found {}", cases.len());
    let mut failures = Vec::new();
    for c in cases {
        let patterns: Vec<&str> = c["patterns"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        let rules = Rules::parse(&patterns.join("\n")).unwrap();
        let path = c["path"].as_str().unwrap();
        let got = rules.ignored(path, c["is_dir"].as_bool().unwrap());
        if got != c["ignored"].as_bool().unwrap() {
            failures.push(format!("{} {patterns:?} {path:?}: hoist says ignored={got}", c["source"]));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn conformance_helmignore_parse_cases() {
    let dir = conformance().join("helmignore");
    let cases = json(&dir.join("parse_cases.json"));
    for c in cases.as_array().unwrap() {
        let input = match c.get("input_file") {
            Some(f) => std::fs::read_to_string(dir.join(f.as_str().unwrap())).unwrap(),
            None => c["input"].as_str().unwrap().to_string(),
        };
        let parsed = Rules::parse(&input);
        let name = c["name"].as_str().unwrap();
        if c["error"].as_bool().unwrap() {
            assert!(parsed.is_err(), "{name}: parsing must fail");
            continue;
        }
        let mut rules = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
        if c.get("defaults").and_then(|d| d.as_bool()) == Some(true) {
            rules.add_defaults();
        }
        if let Some(want) = c.get("patterns") {
            let want: Vec<&str> = want.as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
            assert_eq!(rules.patterns(), want, "{name}");
        }
        if let Some(n) = c.get("pattern_count") {
            assert_eq!(rules.patterns().len() as u64, n.as_u64().unwrap(), "{name}");
        }
    }
}

// ---- charts-helm: entry by entry ---------------------------------------------------------------------

#[test]
fn conformance_charts_helm_entry_by_entry() {
    let root = conformance().join("charts-helm");
    let mut fixtures: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("src").is_dir()).collect();
    fixtures.sort();
    assert_eq!(fixtures.len(), 5, "expected Helm's 5 fixtures in {}", root.display());
    let epoch = 1_700_000_000u64;
    for fx in fixtures {
        let name = fx.file_name().unwrap().to_string_lossy().into_owned();
        let expect = json(&fx.join("entries.json"));
        let helm_tgz = std::fs::read(fx.join(expect["file"].as_str().unwrap())).unwrap();
        let helm = members_of(&helm_tgz);
        let work = tmp();
        let (tgz, path) = package(&fx.join("src"), work.path(), &epoch.to_string(), &[]);
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), expect["file"].as_str().unwrap(), "{name}: file name");
        let ours = members_of(&tgz);
        assert_eq!(names(&ours), names(&helm), "{name}: member list and order");
        for (o, (h, e)) in ours.iter().zip(helm.iter().zip(expect["entries"].as_array().unwrap())) {
            let what = format!("{name}: {}", o.name);
            // Headers: what every Helm ≥ 3.0 writes; mtimes are our epoch (helm's were its clock).
            assert_eq!((o.typeflag, o.uid, o.gid), (b'0', 0, 0), "{what}");
            assert_eq!((o.uname.as_str(), o.gname.as_str()), ("", ""), "{what}");
            assert_eq!(o.magic, h.magic, "{what}: USTAR magic");
            assert_eq!(o.mode, 0o644, "{what}");
            assert_eq!(o.mtime, epoch, "{what}");
            assert_eq!(o.size, o.data.len() as u64, "{what}");
            if o.name.ends_with("/Chart.yaml") || o.name.ends_with("/Chart.lock") {
                assert_eq!(yaml(&o.data), yaml(&h.data), "{what}: equal as data");
                // Not required, but what we aim for: the bytes helm wrote.
                assert_eq!(String::from_utf8_lossy(&o.data), String::from_utf8_lossy(&h.data), "{what}: bytes");
            } else if name == "signtest" && o.name == "signtest/values.yaml" {
                // Known: that 2019 dev build re-marshalled an empty values.yaml to `{}\n`; helm ≥ 3.0
                // copies the 0-byte source file (SOURCE.md).
                assert_eq!((o.data.as_slice(), h.data.as_slice()), (&b""[..], &b"{}\n"[..]), "{what}");
            } else {
                assert_eq!(sha256_digest(&o.data), format!("sha256:{}", e["sha256"].as_str().unwrap()), "{what}");
            }
        }
        // Gzip header: Helm 4.2.4's (FEXTRA|FCOMMENT, MTIME 0, OS 255, `rr` subfield, comment Helm).
        assert_eq!(&tgz[..10], &[0x1f, 0x8b, 8, 0x14, 0, 0, 0, 0, 0, 255], "{name}: gzip header");
        assert_eq!(&tgz[10..16], &[44, 0, b'r', b'r', 40, 0], "{name}: gzip extra");
        assert_eq!(&tgz[56..61], b"Helm\0", "{name}: gzip comment");
    }
}

/// Helm's tar streams, rebuilt by hoist's writer from helm's own members, mode and mtime, are byte-identical
/// (the headers are Go's `archive/tar` bytes exactly).
#[test]
fn conformance_charts_helm_tar_stream_is_gos() {
    let root = conformance().join("charts-helm");
    let mut checked = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let fx = e.unwrap().path();
        if !fx.join("entries.json").is_file() {
            continue;
        }
        let expect = json(&fx.join("entries.json"));
        let helm = members_of(&std::fs::read(fx.join(expect["file"].as_str().unwrap())).unwrap());
        if helm.iter().any(|m| m.mode != 0o644) {
            continue; // signtest: a 2019 dev build wrote 0755
        }
        let mtime = helm[0].mtime;
        assert!(helm.iter().all(|m| m.mtime == mtime));
        let pairs: Vec<(String, Vec<u8>)> = helm.iter().map(|m| (m.name.clone(), m.data.clone())).collect();
        let tar = ::hoist::chart::save::tar_stream(&pairs, mtime).unwrap();
        assert_eq!(
            sha256_digest(&tar),
            format!("sha256:{}", expect["tar_sha256"].as_str().unwrap()),
            "{}",
            fx.display()
        );
        checked += 1;
    }
    assert_eq!(checked, 4, "the four Helm 3 archives");
}

// ---- charts-real ------------------------------------------------------------------------------------

#[test]
fn conformance_charts_real_member_lists() {
    let root = conformance().join("charts-real");
    for name in ["prometheus-node-exporter", "prometheus-operator-crds"] {
        let work = tmp();
        let (tgz, _) = package(&root.join(name).join("src"), work.path(), "0", &[]);
        let ours = members_of(&tgz);
        assert_eq!(names(&ours), read_lines(&root.join(name).join("expected-members.txt")), "{name}");
        if name == "prometheus-operator-crds" {
            let chart = ours.iter().find(|m| m.name == "prometheus-operator-crds/Chart.yaml").unwrap();
            let v = yaml(&chart.data);
            // Sanitized block description, kept UTF-8 name, `repository: ""` added.
            assert!(v["description"].as_str().unwrap().ends_with("GitOps tools "), "{v}");
            assert_eq!(v["maintainers"][3]["name"], "Jan-Otto Kröpke");
            assert_eq!(v["dependencies"][0]["repository"], "");
            assert_eq!(v["kubeVersion"], ">=1.16.0-0");
        }
    }
    // nginx with `common` vendored as a directory: the root's rules apply to it (CHANGELOG.md dropped).
    let nginx = root.join("bitnami-nginx");
    let work = tmp();
    let src = work.path().join("nginx");
    copy_dir(&nginx.join("src"), &src);
    let out = run_package(&src, work.path(), "0", &[]);
    out.assert_code(1).assert_stderr_contains("common").assert_stderr_contains("--dependency-update");
    copy_dir(&nginx.join("dep-source/common"), &src.join("charts/common"));
    let (tgz, _) = package(&src, &work.path().join("out"), "0", &[]);
    assert_eq!(names(&members_of(&tgz)), read_lines(&nginx.join("expected-members-with-common.txt")));
}

/// nginx's Chart.yaml and Chart.lock pointed at `repository`, the lock's digest recomputed.
fn retarget_nginx(src: &Path, repository: &str) {
    const ORIG: &str = "oci://registry-1.docker.io/bitnamicharts";
    for f in ["Chart.yaml", "Chart.lock"] {
        let p = src.join(f);
        std::fs::write(&p, std::fs::read_to_string(&p).unwrap().replace(ORIG, repository)).unwrap();
    }
    let meta = ::hoist::chart::Metadata::parse(&std::fs::read(src.join("Chart.yaml")).unwrap()).unwrap();
    let lock_path = src.join("Chart.lock");
    let lock = ::hoist::chart::metadata::Lock::parse("Chart.lock", &std::fs::read(&lock_path).unwrap()).unwrap();
    let text = std::fs::read_to_string(&lock_path)
        .unwrap()
        .replace(&lock.digest, &::hoist::chart::metadata::lock_digest(&meta.dependencies, &lock.dependencies));
    std::fs::write(&lock_path, text).unwrap();
}

#[test]
fn conformance_nginx_dependency_from_file_repository() {
    let nginx = conformance().join("charts-real/bitnami-nginx");
    let work = tmp();
    let src = work.path().join("nginx");
    copy_dir(&nginx.join("src"), &src);
    copy_dir(&nginx.join("dep-source/common"), &work.path().join("common"));
    // A lock out of step with Chart.yaml is refused before anything is fetched.
    let p = src.join("Chart.yaml");
    std::fs::write(&p, std::fs::read_to_string(&p).unwrap().replace("2.x.x", "2.31.x")).unwrap();
    let out = run_package(&src, work.path(), "0", &["--dependency-update"]);
    out.assert_code(1).assert_stderr_contains("Chart.lock is out of sync");
    std::fs::write(&p, std::fs::read_to_string(&p).unwrap().replace("2.31.x", "2.x.x")).unwrap();

    retarget_nginx(&src, "file://../common");
    let (tgz, _) = package(&src, &work.path().join("out"), "0", &["--dependency-update"]);
    assert_eq!(names(&members_of(&tgz)), read_lines(&nginx.join("expected-members-with-common.txt")));
    // The dependency was written to charts/ as a .tgz (and nothing else was left there).
    let charts: Vec<String> =
        std::fs::read_dir(src.join("charts")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(charts, ["common-2.31.4.tgz"]);
}

#[test]
fn conformance_nginx_dependency_from_oci_repository() {
    let nginx = conformance().join("charts-real/bitnami-nginx");
    let reg = Registry::plain();
    let work = tmp();
    // Publish common 2.31.4 (and a 3.0.0 the constraint 2.x.x must not pick) to the test registry.
    let repo = format!("oci://{}/bitnamicharts", reg.host());
    for version in ["2.31.4", "3.0.0"] {
        let out = Hoist::run([
            "chart",
            "push",
            nginx.join("dep-source/common").to_str().unwrap(),
            &repo,
            "--version",
            version,
        ]);
        out.assert_success();
    }
    assert_eq!(reg.tags("bitnamicharts/common").len(), 2);
    // With the lock (pinned 2.31.4, digest checked).
    let src = work.path().join("nginx");
    copy_dir(&nginx.join("src"), &src);
    retarget_nginx(&src, &repo);
    let (tgz, _) = package(&src, &work.path().join("out"), "0", &["--dependency-update"]);
    assert_eq!(names(&members_of(&tgz)), read_lines(&nginx.join("expected-members-with-common.txt")));
    // Without a lock: the highest tag matching 2.x.x.
    let src2 = work.path().join("nginx2");
    copy_dir(&nginx.join("src"), &src2);
    retarget_nginx(&src2, &repo);
    std::fs::remove_file(src2.join("Chart.lock")).unwrap();
    let (tgz, _) = package(&src2, &work.path().join("out2"), "0", &["--dependency-update"]);
    let ms = members_of(&tgz);
    let common = ms.iter().find(|m| m.name == "nginx/charts/common/Chart.yaml").unwrap();
    assert_eq!(yaml(&common.data)["version"], "2.31.4");
    assert!(src2.join("charts/common-2.31.4.tgz").is_file());
}

// ---- push ------------------------------------------------------------------------------------------

#[test]
fn conformance_golden_oci_push_signtest() {
    let fx = conformance().join("charts-helm/signtest");
    let tgz = std::fs::read(fx.join("signtest-0.1.0.tgz")).unwrap();
    let prov = std::fs::read(fx.join("signtest-0.1.0.tgz.prov")).unwrap();
    let chart = ::hoist::chart::load_archive(&tgz).unwrap();
    let art = ::hoist::chart::oci::artifact(tgz.clone(), &chart.metadata, Some(prov.clone()), "1977-09-02T22:04:05Z");
    let want_manifest = std::fs::read(fx.join("oci-push/manifest.json")).unwrap();
    let want_config = std::fs::read(fx.join("oci-push/config.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&art.root().bytes), String::from_utf8_lossy(&want_manifest));
    let config = art.blobs.iter().find(|b| b.media_type == ::hoist::chart::oci::CONFIG_MEDIA_TYPE).unwrap();
    assert_eq!(config.digest.as_str(), sha256_digest(&want_config));

    // End to end: helm's archive and .prov pushed as is, with that instant as the build epoch.
    let reg = Registry::plain();
    let work = tmp();
    std::fs::copy(fx.join("signtest-0.1.0.tgz"), work.path().join("signtest-0.1.0.tgz")).unwrap();
    std::fs::copy(fx.join("signtest-0.1.0.tgz.prov"), work.path().join("signtest-0.1.0.tgz.prov")).unwrap();
    let epoch = ::hoist::builder::config::parse_rfc3339("1977-09-02T22:04:05Z").unwrap();
    let mut cmd = Hoist::cmd();
    cmd.env("SOURCE_DATE_EPOCH", epoch.to_string())
        .args(["chart", "push"])
        .arg(work.path().join("signtest-0.1.0.tgz"))
        .arg(format!("oci://{}/charts", reg.host()));
    let out = Hoist::run_cmd(cmd, None);
    out.assert_success();
    let want = "sha256:fbbade96da6050f68f94f122881e3b80051a18f13ab5f4081868dd494538f5c2";
    assert_eq!(out.stdout(), format!("{}/charts/signtest:0.1.0@{want}\n", reg.host()));
    assert_eq!(reg.manifest_bytes("charts/signtest", "0.1.0").unwrap(), want_manifest);
}

#[test]
fn chart_push_reads_back_with_skopeo() {
    let reg = Registry::start(RegistryOpts::plain().tls().auth(Auth::htpasswd("ci", "s3cret-pw")));
    let work = tmp();
    let src = work.path().join("demo");
    sample_chart(&src, "1.2.3+build.7");
    let digest_file = work.path().join("digest");
    let meta_file = work.path().join("meta.json");
    let mut cmd = Hoist::cmd();
    cmd.env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["chart", "push"])
        .arg(&src)
        .arg(format!("oci://{}/team/charts/", reg.host()))
        .args(["-u", "ci", "--password-stdin", "--ca-file"])
        .arg(reg.ca_pem_path())
        .arg("--digest-file")
        .arg(&digest_file)
        .arg("--metadata-file")
        .arg(&meta_file);
    let dotenv = work.path().join("chart.env");
    cmd.arg("--dotenv").arg(&dotenv);
    let out = Hoist::run_cmd(cmd, Some(b"s3cret-pw\n"));
    out.assert_success().assert_no_leak("s3cret-pw").assert_stderr_contains("1.2.3_build.7");
    let reference = format!("{}/team/charts/demo:1.2.3_build.7", reg.host());
    let digest = std::fs::read_to_string(&digest_file).unwrap().trim().to_string();
    assert_eq!(out.stdout(), format!("{reference}@{digest}\n"));
    let env = std::fs::read_to_string(&dotenv).unwrap();
    for line in [
        "HOIST_CHART_NAME=demo".to_string(),
        "HOIST_CHART_VERSION=1.2.3+build.7".to_string(),
        format!("HOIST_CHART_REF=oci://{}/team/charts/demo", reg.host()),
        format!("HOIST_CHART_DIGEST={digest}"),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing from the dotenv report:\n{env}");
    }
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_file).unwrap()).unwrap();
    assert_eq!(meta["digest"], digest.as_str());
    assert_eq!(meta["blobs"].as_array().unwrap().len(), 2);

    check_remote(&reg, &reference);
    let sk = Skopeo::new(&reg).creds("ci", "s3cret-pw");
    let raw = sk.inspect_raw(&reference);
    assert_eq!(sha256_digest(&raw), digest, "the registry keeps the bytes hoist sent");
    let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert!(m.get("mediaType").is_none(), "helm's manifests carry no mediaType field");
    assert_eq!(m["config"]["mediaType"], "application/vnd.cncf.helm.config.v1+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.cncf.helm.chart.content.v1.tar+gzip");
    let a = &m["annotations"];
    assert_eq!(a["org.opencontainers.image.title"], "demo");
    assert_eq!(a["org.opencontainers.image.version"], "1.2.3+build.7");
    assert_eq!(a["org.opencontainers.image.description"], "A demo & test chart");
    assert_eq!(a["org.opencontainers.image.url"], "https://example.com/demo");
    assert_eq!(a["org.opencontainers.image.source"], "https://git.example.com/demo");
    assert_eq!(a["org.opencontainers.image.authors"], "Ada (ada@example.com), Bob");
    assert_eq!(a["org.opencontainers.image.created"], "2023-11-14T22:13:20Z");
    assert_eq!(a["team"], "platform");
    // The config blob, read from the registry: Chart.yaml's metadata as helm writes it.
    let mut cmd = crate::harness::skopeo::skopeo_cmd();
    cmd.args(["inspect", "--config", "--raw", "--creds=ci:s3cret-pw", "--cert-dir"])
        .arg(reg.ca_dir().unwrap())
        .arg(format!("docker://{reference}"));
    let config =
        crate::harness::skopeo::check("skopeo inspect --config --raw", crate::harness::skopeo::run(cmd)).stdout;
    assert_eq!(sha256_digest(&config), m["config"]["digest"].as_str().unwrap());
    let c: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(c["name"], "demo");
    assert_eq!(c["version"], "1.2.3+build.7");
    assert_eq!(c["apiVersion"], "v2");
    assert_eq!(c["appVersion"], "2.0");
    assert_eq!(c["dependencies"][0]["name"], "sub");
    assert!(c.get("engine").is_none(), "unknown keys are dropped");
    assert!(String::from_utf8_lossy(&config).contains("A demo \\u0026 test chart"), "Go escapes & in JSON");
    // The chart layer is the package hoist makes for the same directory and epoch.
    let (tgz, _) = package(&src, &work.path().join("out"), "1700000000", &[]);
    assert_eq!(m["layers"][0]["digest"], sha256_digest(&tgz).as_str());
    assert_eq!(names(&members_of(&tgz)), SAMPLE_MEMBERS);
}

#[test]
fn chart_package_and_push_are_reproducible() {
    let reg = Registry::plain();
    let work = tmp();
    let (a, b) = (work.path().join("a/demo"), work.path().join("b/demo"));
    sample_chart(&a, "0.3.0");
    copy_dir(&a, &b);
    touch_all(&a, 1_000_000_000);
    touch_all(&b, 1_600_000_000);
    let mut digests = Vec::new();
    let mut archives = Vec::new();
    for (i, src) in [&a, &b].into_iter().enumerate() {
        let mut cmd = Hoist::cmd();
        cmd.env("CI_COMMIT_TIMESTAMP", "2024-05-06T07:08:09+02:00")
            .args(["chart", "package"])
            .arg(src)
            .arg("-d")
            .arg(work.path().join(format!("out{i}")));
        let o = Hoist::run_cmd(cmd, None);
        o.assert_success();
        archives.push(std::fs::read(o.stdout().trim()).unwrap());
        let mut cmd = Hoist::cmd();
        cmd.env("CI_COMMIT_TIMESTAMP", "2024-05-06T07:08:09+02:00")
            .args(["chart", "push"])
            .arg(src)
            .arg(format!("oci://{}/repro", reg.host()));
        let o = Hoist::run_cmd(cmd, None);
        o.assert_success();
        digests.push(o.stdout());
    }
    assert_eq!(archives[0], archives[1], "same chart, other mtimes: same bytes");
    assert_eq!(digests[0], digests[1], "same manifest digest");
    let ms = members_of(&archives[0]);
    let epoch = ::hoist::builder::config::parse_rfc3339("2024-05-06T07:08:09+02:00").unwrap();
    assert!(ms.iter().all(|m| m.mtime == epoch), "every mtime is CI_COMMIT_TIMESTAMP");
    let m: serde_json::Value = serde_json::from_slice(&reg.manifest_bytes("repro/demo", "0.3.0").unwrap()).unwrap();
    assert_eq!(m["annotations"]["org.opencontainers.image.created"], "2024-05-06T05:08:09Z");
    assert_eq!(m["layers"][0]["digest"], sha256_digest(&archives[0]).as_str(), "push sends the packaged bytes");
}

#[test]
fn chart_version_flags_take_git_tags() {
    let work = tmp();
    let src = work.path().join("demo");
    sample_chart(&src, "0.0.1");
    let (tgz, path) = package(&src, work.path(), "0", &["--version", "v2.0.0-rc.1", "--app-version", "v2.0.0"]);
    assert_eq!(path.file_name().unwrap(), "demo-2.0.0-rc.1.tgz");
    let ms = members_of(&tgz);
    let chart = yaml(&ms[0].data);
    assert_eq!((chart["version"].as_str(), chart["appVersion"].as_str()), (Some("2.0.0-rc.1"), Some("v2.0.0")));
    run_package(&src, work.path(), "0", &["--version", "vNext"])
        .assert_code(1)
        .assert_stderr_contains("not a SemVer 2");
}

#[test]
fn chart_push_default_destination_from_ci_env() {
    // A registry that wants a password: the Harbor and GitLab variables must bring their credentials.
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd("robot$proj+ci", "harbor-pw")));
    let work = tmp();
    let src = work.path().join("demo");
    sample_chart(&src, "0.1.0");
    // Harbor: HARBOR_OCI keeps its port and a trailing slash, which must not double; GitLab writes the
    // robot's `$` as `$$`.
    let mut cmd = Hoist::cmd();
    cmd.env("HARBOR_OCI", format!("oci://{}/", reg.host()))
        .env("HARBOR_URL", format!("https://{}/", reg.host()))
        .env("HARBOR_PROJECT", "proj")
        .env("HARBOR_USERNAME", "robot$$proj+ci")
        .env("HARBOR_PASSWORD", "harbor-pw")
        .env("CI_REGISTRY_IMAGE", format!("{}/group/project", reg.host()))
        .args(["chart", "push"])
        .arg(&src);
    let out = Hoist::run_cmd(cmd, None);
    out.assert_success().assert_stderr_contains("HARBOR_OCI/HARBOR_PROJECT/charts").assert_no_leak("harbor-pw");
    // Under charts/ in the Harbor project: never on the project's image of the same name.
    assert!(out.stdout().starts_with(&format!("{}/proj/charts/demo:0.1.0@sha256:", reg.host())), "{}", out.stdout());
    assert_eq!(reg.tags("proj/charts/demo"), ["0.1.0"]);
    assert!(reg.tags("proj/demo").is_empty());
    // GitLab's registry otherwise, with the job's registry credentials.
    let mut cmd = Hoist::cmd();
    cmd.env("CI_REGISTRY_IMAGE", format!("{}/group/project", reg.host()))
        .env("CI_REGISTRY", reg.host())
        .env("CI_REGISTRY_USER", "robot$proj+ci")
        .env("CI_REGISTRY_PASSWORD", "harbor-pw")
        .args(["chart", "push"])
        .arg(&src);
    let out = Hoist::run_cmd(cmd, None);
    out.assert_success().assert_stderr_contains("CI_REGISTRY_IMAGE");
    assert_eq!(reg.tags("group/project/demo"), ["0.1.0"]);
    // Without credentials the same push is refused (the variables above were what made it work).
    let mut cmd = Hoist::cmd();
    cmd.env("CI_REGISTRY_IMAGE", format!("{}/group/project", reg.host())).args(["chart", "push"]).arg(&src);
    Hoist::run_cmd(cmd, None).assert_code(3);
    // Nothing to go on.
    Hoist::run(["chart", "push", src.to_str().unwrap()]).assert_code(2).assert_stderr_contains("no destination");
}

#[test]
fn chart_oci_dependency_through_a_registry_mirror() {
    // The dependency's registry is unreachable; its mirror has the chart.
    let mirror = Registry::plain();
    let work = tmp();
    let sub = work.path().join("sub");
    std::fs::create_dir_all(sub.join("templates")).unwrap();
    std::fs::write(sub.join("Chart.yaml"), "apiVersion: v2\nname: sub\nversion: 0.4.0\n").unwrap();
    std::fs::write(sub.join("templates/cm.yaml"), "kind: ConfigMap\n").unwrap();
    Hoist::run(["chart", "push", sub.to_str().unwrap(), &format!("oci://{}/mirror/charts", mirror.host())])
        .assert_success();
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Chart.yaml"),
        "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: sub\n  version: '>=0.2'\n  \
         repository: oci://127.0.0.1:1/charts\n",
    )
    .unwrap();
    let rule = format!("127.0.0.1:1={}/mirror", mirror.host());
    let (tgz, _) = package(&app, &work.path().join("out"), "0", &["--dependency-update", "--registry-mirror", &rule]);
    assert_eq!(
        names(&members_of(&tgz)),
        ["app/Chart.yaml", "app/charts/sub/Chart.yaml", "app/charts/sub/templates/cm.yaml"]
    );
    assert!(app.join("charts/sub-0.4.0.tgz").is_file());
}

#[test]
fn chart_dependency_from_https_repository() {
    let work = tmp();
    // A repository: sub-0.1.0 and sub-0.2.0 archives made by hoist, and an index.yaml listing them.
    let repo_dir = work.path().join("repo");
    let mut index = String::from("apiVersion: v1\nentries:\n  sub:\n");
    for v in ["0.1.0", "0.2.0"] {
        let d = work.path().join(format!("sub-{v}"));
        std::fs::create_dir_all(d.join("templates")).unwrap();
        std::fs::write(d.join("Chart.yaml"), format!("apiVersion: v2\nname: sub\nversion: {v}\n")).unwrap();
        std::fs::write(d.join("templates/cm.yaml"), format!("v: {v}\n")).unwrap();
        let (tgz, _) = package(&d, &repo_dir, "0", &[]);
        index.push_str(&format!(
            "  - name: sub\n    version: {v}\n    digest: {}\n    urls:\n    - sub-{v}.tgz\n",
            sha256_digest(&tgz).trim_start_matches("sha256:")
        ));
    }
    std::fs::write(repo_dir.join("index.yaml"), index).unwrap();
    let server = HttpsDir::serve(&repo_dir);
    let src = work.path().join("app");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("Chart.yaml"),
        format!("apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: sub\n  version: ~0.1\n  repository: {}/\n", server.url()),
    )
    .unwrap();
    let ca = server.ca.ca_pem_path.to_str().unwrap().to_string();
    let (tgz, _) = package(&src, &work.path().join("out"), "0", &["--dependency-update", "--ca-file", &ca]);
    let ms = members_of(&tgz);
    assert_eq!(names(&ms), ["app/Chart.yaml", "app/charts/sub/Chart.yaml", "app/charts/sub/templates/cm.yaml"]);
    assert_eq!(ms[2].data, b"v: 0.1.0\n", "~0.1 picks 0.1.0, not 0.2.0");
    // An archive that does not match the index's digest is refused and not written.
    std::fs::remove_file(src.join("charts/sub-0.1.0.tgz")).unwrap();
    let tampered = std::fs::read(repo_dir.join("sub-0.2.0.tgz")).unwrap();
    std::fs::write(repo_dir.join("sub-0.1.0.tgz"), tampered).unwrap();
    let out = run_package(&src, work.path(), "0", &["--dependency-update", "--ca-file", &ca]);
    out.assert_code(1).assert_stderr_contains("the index says");
    assert_eq!(std::fs::read_dir(src.join("charts")).unwrap().count(), 0, "nothing half-written in charts/");
}

// ---- invalid charts --------------------------------------------------------------------------------

#[test]
fn chart_invalid_charts_fail_cleanly() {
    let work = tmp();
    let out_dir = work.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let fresh = |name: &str| {
        let d = work.path().join(name);
        sample_chart(&d, "1.0.0");
        d
    };
    let cases: Vec<(PathBuf, &str)> = {
        let mut v = Vec::new();
        let d = fresh("no-chart-yaml");
        std::fs::remove_file(d.join("Chart.yaml")).unwrap();
        v.push((d, "has no Chart.yaml"));
        let d = fresh("bad-version");
        let p = d.join("Chart.yaml");
        std::fs::write(&p, std::fs::read_to_string(&p).unwrap().replace("version: 1.0.0", "version: one")).unwrap();
        v.push((d, "version \"one\" is not a SemVer 2 version"));
        let d = fresh("big-file");
        std::fs::write(d.join("blob.bin"), vec![7u8; 5 * 1024 * 1024 + 1]).unwrap();
        v.push((d, "blob.bin is 5242881 bytes, larger than the 5 MiB"));
        let d = fresh("too-big-chart");
        for i in 0..21 {
            // Sparse 5 MiB files: each within the per-file limit, 105 MiB together.
            std::fs::File::create(d.join(format!("data-{i:02}.bin"))).unwrap().set_len(5 * 1024 * 1024).unwrap();
        }
        v.push((d, "larger than 100 MiB uncompressed"));
        let d = fresh("missing-dep");
        std::fs::remove_dir_all(d.join("charts")).unwrap();
        v.push((d, "dependencies that charts/ lacks: sub"));
        let d = fresh("escaping-symlink");
        std::os::unix::fs::symlink("/etc/hostname", d.join("templates/host.txt")).unwrap();
        v.push((d, "symlink templates/host.txt points outside the chart"));
        v
    };
    for (dir, needle) in cases {
        let out = run_package(&dir, &out_dir, "0", &[]);
        assert!(!out.success(), "{} must fail", dir.display());
        out.assert_stderr_contains(needle);
        assert!(out.stdout().is_empty(), "{}", out.stdout());
        let push = Hoist::run(["chart", "push", dir.to_str().unwrap(), "oci://127.0.0.1:9/x"]);
        push.assert_stderr_contains(needle);
    }
    // Nothing written, not even a temporary file.
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // A symlink inside the chart is followed (as helm does).
    let d = fresh("inner-symlink");
    std::os::unix::fs::symlink("../README.md", d.join("templates/readme-link.md")).unwrap();
    let (tgz, _) = package(&d, &out_dir, "0", &[]);
    let ms = members_of(&tgz);
    let link = ms.iter().find(|m| m.name == "demo/templates/readme-link.md").expect("link packaged as a file");
    assert_eq!(link.data, b"# demo\n");
    // A bad .tgz given to push is refused with the archive rule it breaks.
    let bad = work.path().join("bad.tgz");
    std::fs::write(&bad, b"not gzip").unwrap();
    Hoist::run(["chart", "push", bad.to_str().unwrap(), "oci://127.0.0.1:9/x"])
        .assert_code(1)
        .assert_stderr_contains("bad.tgz");
}

// ---- one kind of artifact per tag -----------------------------------------------------------------

/// Builds a one-file image and pushes it to `reference` with `extra` flags.
fn build_image(work: &Path, reference: &str, extra: &[&str]) -> Output {
    let ctx = work.join("image-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY app /app\n").unwrap();
    std::fs::write(ctx.join("app"), "app\n").unwrap();
    let mut args = vec!["build", ctx.to_str().unwrap(), "-t", reference];
    args.extend_from_slice(extra);
    Hoist::run(args)
}

fn config_type(reg: &Registry, repo: &str, tag: &str) -> String {
    let m: serde_json::Value = serde_json::from_slice(&reg.manifest_bytes(repo, tag).unwrap()).unwrap();
    m["config"]["mediaType"].as_str().unwrap().to_string()
}

#[test]
fn a_chart_never_silently_replaces_an_image_tag_nor_an_image_a_chart() {
    let reg = Registry::plain();
    let work = tmp();
    let src = work.path().join("demo");
    sample_chart(&src, "0.1.0");
    const IMAGE: &str = "application/vnd.oci.image.config.v1+json";
    const CHART: &str = "application/vnd.cncf.helm.config.v1+json";

    // Chart over image: the release's image tag is refused to the chart, naming both and the fix.
    build_image(work.path(), &format!("{}/proj/demo:0.1.0", reg.host()), &[]).assert_success();
    let image = reg.manifest_bytes("proj/demo", "0.1.0").unwrap();
    let dest = format!("oci://{}/proj", reg.host());
    let out = Hoist::run(["chart", "push", src.to_str().unwrap(), &dest]);
    out.assert_code(2)
        .assert_stderr_contains(&format!("{}/proj/demo:0.1.0 holds a container image", reg.host()))
        .assert_stderr_contains("pushing a Helm chart there would replace it")
        .assert_stderr_contains("--force");
    assert_eq!(reg.manifest_bytes("proj/demo", "0.1.0").unwrap(), image, "the image tag did not move");
    // The same kind moves the tag as always (a re-push of the chart after a forced one is a no-op).
    let out = Hoist::run(["chart", "push", src.to_str().unwrap(), &dest, "--force"]);
    out.assert_success().assert_stderr_contains("replacing it with a Helm chart (--force)");
    assert_eq!(config_type(&reg, "proj/demo", "0.1.0"), CHART);
    Hoist::run(["chart", "push", src.to_str().unwrap(), &dest]).assert_success();

    // Image over chart: build, copy and tag refuse too; --force replaces.
    let target = format!("{}/proj/demo:0.1.0", reg.host());
    let mark = reg.log_mark();
    build_image(work.path(), &target, &[])
        .assert_code(2)
        .assert_stderr_contains("holds a Helm chart")
        .assert_stderr_contains("pushing a container image there would replace it");
    let uploads: Vec<_> =
        reg.access_log_since(mark).into_iter().filter(|l| l.method != "GET" && l.method != "HEAD").collect();
    assert!(uploads.is_empty(), "refused before a layer streamed: {uploads:?}");
    assert_eq!(config_type(&reg, "proj/demo", "0.1.0"), CHART);
    build_image(work.path(), &format!("{}/proj/app:1", reg.host()), &[]).assert_success();
    Hoist::run(["copy", &format!("{}/proj/app:1", reg.host()), &target])
        .assert_code(2)
        .assert_stderr_contains("holds a Helm chart");
    Hoist::run(["tag", &format!("{}/proj/demo@{}", reg.host(), ::hoist::model::Digest::sha256_of(&image)), "0.1.0"])
        .assert_code(2)
        .assert_stderr_contains("holds a Helm chart");
    assert_eq!(config_type(&reg, "proj/demo", "0.1.0"), CHART);
    build_image(work.path(), &target, &["--force"]).assert_success().assert_stderr_contains("(--force)");
    assert_eq!(config_type(&reg, "proj/demo", "0.1.0"), IMAGE);
}
