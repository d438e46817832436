//! The real-world corpus (`../shared/conformance/dockerfiles-realworld/`, 24 RUN-free Dockerfiles
//! from public projects) built by hoist and by buildah (the reference builder: Debian's buildah,
//! vfs storage, chroot isolation, docker format so HEALTHCHECK and SHELL survive), and the two
//! results compared: every file of the final filesystem (path, type, mode, owner, content or link
//! target) and the config (User, WorkingDir, Env, Entrypoint, Cmd, ports, volumes, labels, stop
//! signal, healthcheck, shell, author).
//!
//! Each case's context gets the stubs its SOURCE.md lists. The base and `--from` images are small
//! synthetic stand-ins (a distroless-like, a busybox-like, an alpine-like, …) pushed into one test
//! registry under mirror paths; both builders reach them through registry mirrors only
//! (`--registry-mirror` for hoist, a registries.conf for buildah), so no real registry is ever
//! contacted. Four files pin their images by digest, which a synthetic image cannot have: the test
//! substitutes the synthetic image's digest in the Dockerfile (etcd, crossplane, gke-kubeconfiger)
//! or passes it as the build arg the file offers (thanos) — an adaptation of the input, the same
//! for both builders. Where hoist deliberately differs from buildah the case says so in
//! `DIVERGENCES` with the reason (the README's "Where hoist differs" list has the same).
//! Builds run one after the other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::images::{dir, file, flatten, layout_config, layout_layers, push_synthetic, Ent, FsNode};
use crate::harness::*;

/// The corpus: `HOIST_CONFORMANCE_DIR` (the conformance root), else `../shared/conformance`.
fn corpus() -> PathBuf {
    let root = std::env::var_os("HOIST_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"));
    root.join("dockerfiles-realworld")
}

/// What a stub path is.
#[derive(Clone, Copy)]
enum Stub {
    Exec,
    Text,
    /// A directory with two YAML files.
    Dir,
    /// A real archive, auto-extracted by ADD.
    TarGz,
    TarXz,
}

struct Case {
    name: &'static str,
    stubs: &'static [(&'static str, Stub)],
    args: &'static [(&'static str, &'static str)],
    target: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case { name: "node-exporter", stubs: &[(".build/linux-amd64/node_exporter", Stub::Exec)], args: &[], target: None },
    Case {
        name: "etcd",
        stubs: &[
            ("release/etcd-v3.6.0-linux-amd64/etcd", Stub::Exec),
            ("release/etcd-v3.6.0-linux-amd64/etcdctl", Stub::Exec),
            ("release/etcd-v3.6.0-linux-amd64/etcdutl", Stub::Exec),
        ],
        args: &[("VERSION", "v3.6.0"), ("BUILDDIR", "release")],
        target: None,
    },
    Case { name: "syft", stubs: &[("linux/amd64/syft", Stub::Exec)], args: &[], target: None },
    Case {
        name: "gke-kubeconfiger",
        stubs: &[("gker", Stub::Exec), ("linux/amd64/gker", Stub::Exec)],
        args: &[],
        target: None,
    },
    Case {
        name: "opa-envoy-plugin",
        stubs: &[("opa_envoy_linux_amd64_static", Stub::Exec)],
        args: &[("BASE", "chainguard/static:latest"), ("VARIANT", "static")],
        target: None,
    },
    Case { name: "thanos", stubs: &[("thanos_tmp_for_docker", Stub::Exec)], args: &[], target: None },
    Case {
        name: "crossplane",
        stubs: &[("bin/linux_amd64/crossplane", Stub::Exec), ("crds", Stub::Dir), ("webhookconfigurations", Stub::Dir)],
        args: &[],
        target: None,
    },
    Case {
        name: "vpa-recommender",
        stubs: &[("recommender-amd64", Stub::Exec)],
        args: &[("ARCH", "amd64")],
        target: None,
    },
    Case {
        name: "http-echo",
        stubs: &[("dist/linux/amd64/http-echo", Stub::Exec), ("LICENSE", Stub::Text)],
        args: &[("BIN_NAME", "http-echo"), ("PRODUCT_VERSION", "1.0.0")],
        target: None,
    },
    Case { name: "hello-world", stubs: &[("hello", Stub::Exec)], args: &[], target: None },
    Case { name: "traefik-scratch", stubs: &[], args: &[], target: None },
    Case { name: "gss", stubs: &[("gss", Stub::Exec)], args: &[], target: None },
    Case { name: "go-static-build", stubs: &[("app", Stub::Exec)], args: &[], target: None },
    Case {
        name: "bucketrepo",
        stubs: &[("config/config.yaml", Stub::Text), ("bin/bucketrepo", Stub::Exec)],
        args: &[],
        target: None,
    },
    Case { name: "go-hello-world", stubs: &[("go-hello-world", Stub::Exec)], args: &[], target: None },
    Case {
        name: "gravity-webhead",
        stubs: &[("bashrc", Stub::Text), ("build/webhead", Stub::Exec)],
        args: &[],
        target: None,
    },
    Case {
        name: "alpine-rootfs",
        stubs: &[("alpine-minirootfs-3.20.3-x86_64.tar.gz", Stub::TarGz)],
        args: &[],
        target: None,
    },
    Case {
        name: "oraclelinux-9-slim",
        stubs: &[("oraclelinux-9-slim-amd64-rootfs.tar.xz", Stub::TarXz)],
        args: &[],
        target: None,
    },
    Case {
        name: "easybell-billing-info",
        stubs: &[("build/linux/amd64/easybell-billing-info", Stub::Exec)],
        args: &[],
        target: None,
    },
    Case {
        name: "wavefront-operator",
        stubs: &[
            ("linux/amd64/manager", Stub::Exec),
            ("linux/amd64/deploy", Stub::Dir),
            ("open_source_licenses.txt", Stub::Text),
        ],
        args: &[],
        target: None,
    },
    Case {
        name: "jaeger",
        stubs: &[("jaeger-linux-amd64", Stub::Exec), ("sampling-strategies.json", Stub::Text)],
        args: &[("base_image", "alpine:3.21"), ("debug_image", "alpine:3.21")],
        target: Some("release"),
    },
    Case {
        name: "istio-proxyv2",
        stubs: &[("envoy_bootstrap.json", Stub::Text), ("amd64/envoy", Stub::Exec), ("amd64/pilot-agent", Stub::Exec)],
        args: &[("BASE_VERSION", "1.0"), ("proxy_version", "abc123")],
        target: None,
    },
    Case { name: "vairogs-scratch", stubs: &[], args: &[], target: None },
    Case {
        name: "gitlab-binary-scratch",
        stubs: &[("etc/ssl/certs/ca-certificates.crt", Stub::Text), ("app", Stub::Exec)],
        args: &[],
        target: None,
    },
];

/// Where hoist deliberately differs from buildah (Debian's 1.28), per case: (case, what, why).
/// The test checks that each shows up as described and that nothing else differs.
const DIVERGENCES: &[(&str, &str, &str)] = &[
    (
        "go-hello-world",
        "Healthcheck.Test",
        "`HEALTHCHECK CMD [\"healthchecker\", …] || exit 1` is not a JSON array as a whole, so docker and \
         BuildKit take the shell form: [\"CMD-SHELL\", \"[\\\"healthchecker\\\", …] || exit 1\"], as hoist does; \
         buildah 1.28 reads the JSON prefix as the exec form and drops `|| exit 1`",
    ),
    (
        "oraclelinux-9-slim",
        "the .tar.xz is extracted",
        "docker and BuildKit detect xz by its magic bytes and extract it (as hoist does); buildah 1.28 copies \
         the archive as a file",
    ),
];

fn stub(ctx: &Path, rel: &str, kind: Stub) {
    let path = ctx.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    match kind {
        Stub::Exec | Stub::Text => {
            std::fs::write(&path, format!("stub {rel}\n")).unwrap();
            let mode = if matches!(kind, Stub::Exec) { 0o755 } else { 0o644 };
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        Stub::Dir => {
            std::fs::create_dir_all(path.join("sub")).unwrap();
            std::fs::write(path.join("a.yaml"), format!("name: {rel}/a\n")).unwrap();
            std::fs::write(path.join("sub/b.yaml"), format!("name: {rel}/b\n")).unwrap();
        }
        Stub::TarGz | Stub::TarXz => {
            let tar = crate::harness::images::layer_tar(&[
                Ent::Dir("bin", 0o755, 0, 0),
                Ent::File("bin/busybox", "busybox stub".into(), 0o755, 0, 0),
                Ent::Symlink("bin/sh", "/bin/busybox"),
                Ent::Dir("etc", 0o755, 0, 0),
                Ent::File("etc/os-release", "ID=stub\n".into(), 0o644, 0, 0),
                Ent::File("etc/shadow", "root:*::0:::::\n".into(), 0o640, 0, 42),
                Ent::Dir("tmp", 0o1777, 0, 0),
            ]);
            let bytes = if matches!(kind, Stub::TarGz) {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut gz, &tar).unwrap();
                gz.finish().unwrap()
            } else {
                let mut xz = Vec::new();
                lzma_rs::xz_compress(&mut std::io::BufReader::new(tar.as_slice()), &mut xz).unwrap();
                xz
            };
            std::fs::write(&path, bytes).unwrap();
        }
    }
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";

/// A distroless-like image: accounts, CA bundle, /home/nonroot, /tmp; an upper layer that whites
/// out a file of the lower one.
fn distroless(nonroot: bool) -> (Vec<Vec<Ent>>, Value) {
    let layers = vec![
        vec![
            dir("etc"),
            file("etc/passwd", PASSWD),
            file("etc/group", GROUP),
            file("etc/os-release", "PRETTY_NAME=\"Distroless\"\n"),
            dir("etc/ssl"),
            dir("etc/ssl/certs"),
            file("etc/ssl/certs/ca-certificates.crt", "-----BEGIN CERTIFICATE-----\nstub\n"),
            dir("home"),
            Ent::Dir("home/nonroot", 0o700, 65532, 65532),
            Ent::Dir("tmp", 0o1777, 0, 0),
            file("etc/obsolete", "x"),
        ],
        vec![Ent::Whiteout("etc/obsolete"), file("etc/debian_version", "12\n")],
    ];
    let mut config = json!({
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
        "WorkingDir": "/",
        "User": "0",
    });
    if nonroot {
        config["User"] = json!("65532");
        config["WorkingDir"] = json!("/home/nonroot");
    }
    (layers, config)
}

/// A busybox-like image (`CMD ["sh"]`).
fn busybox() -> (Vec<Vec<Ent>>, Value) {
    (
        vec![vec![
            dir("bin"),
            Ent::File("bin/busybox", "busybox".into(), 0o755, 0, 0),
            Ent::Symlink("bin/sh", "busybox"),
            dir("etc"),
            file("etc/passwd", PASSWD),
            file("etc/group", GROUP),
            Ent::Dir("tmp", 0o1777, 0, 0),
        ]],
        json!({"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}),
    )
}

/// An alpine-like image with what the `--from` copies read: a certificate directory with a
/// symlink, tzdata with a hard link, nginx's index, binaries.
fn alpine() -> (Vec<Vec<Ent>>, Value) {
    (
        vec![
            vec![
                dir("bin"),
                Ent::File("bin/busybox", "busybox".into(), 0o755, 0, 0),
                Ent::Symlink("bin/sh", "/bin/busybox"),
                dir("etc"),
                file("etc/passwd", PASSWD),
                file("etc/group", GROUP),
                dir("etc/ssl"),
                dir("etc/ssl/certs"),
                file("etc/ssl/certs/ca-certificates.crt", "-----BEGIN CERTIFICATE-----\nalpine\n"),
                Ent::Symlink("etc/ssl/cert.pem", "certs/ca-certificates.crt"),
                dir("usr"),
                dir("usr/share"),
                dir("usr/share/zoneinfo"),
                dir("usr/share/zoneinfo/Europe"),
                file("usr/share/zoneinfo/Europe/Paris", "TZif-paris"),
                Ent::Hardlink("usr/share/zoneinfo/Europe/Monaco", "usr/share/zoneinfo/Europe/Paris"),
                Ent::Symlink("usr/share/zoneinfo/localtime", "Europe/Paris"),
                file("usr/share/zoneinfo/old", "to be deleted"),
            ],
            vec![
                Ent::Whiteout("usr/share/zoneinfo/old"),
                dir("usr/local"),
                dir("usr/local/bin"),
                Ent::File("usr/local/bin/traefik", "traefik".into(), 0o755, 0, 0),
                Ent::File("usr/local/bin/healthchecker", "healthchecker".into(), 0o755, 0, 0),
                dir("usr/share/nginx"),
                dir("usr/share/nginx/html"),
                Ent::File("usr/share/nginx/html/index.html", "<h1>nginx</h1>".into(), 0o644, 101, 101),
            ],
        ],
        json!({"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]}),
    )
}

/// Registries the corpus names and the mirror paths both builders reach them under.
const MIRRORED: &[(&str, &str)] =
    &[("docker.io", "dh"), ("gcr.io", "gcr"), ("quay.io", "quay"), ("cgr.dev", "cgr"), ("registry.istio.io", "istio")];

/// Pushes every stand-in image; returns the digests the pinned Dockerfiles need.
fn push_images(reg: &Registry, work: &Path) -> BTreeMap<&'static str, String> {
    let h = reg.host();
    let mut pinned = BTreeMap::new();
    let push = |path: &str, (layers, config): (Vec<Vec<Ent>>, Value)| {
        push_synthetic(reg, work, &format!("{h}/{path}"), &layers, config).manifest_digest
    };
    for p in ["gcr/distroless/static:nonroot", "gcr/distroless/static-debian12:nonroot", "gcr/distroless/base:nonroot"]
    {
        push(p, distroless(true));
    }
    for p in [
        "gcr/distroless/static:latest",
        "gcr/distroless/static-debian13:latest",
        "cgr/chainguard/static:latest",
        "dh/chainguard/static:latest",
    ] {
        push(p, distroless(false));
    }
    pinned.insert("etcd", push("gcr/distroless/static-debian12:pinned", distroless(false)));
    pinned.insert("crossplane", push("gcr/distroless/static:pinned", distroless(false)));
    push("quay/prometheus/busybox-linux-amd64:latest", busybox());
    pinned.insert("thanos", push("quay/prometheus/busybox:pinned", busybox()));
    for p in [
        "dh/library/alpine:3.21",
        "dh/library/alpine:latest",
        "dh/library/traefik:v3.7.11-alpine",
        "dh/library/nginx:stable-alpine",
        "dh/braveokafor/healthchecker:latest",
        "istio/release/base:1.0",
        "istio/release/iptables:1.0",
    ] {
        push(p, alpine());
    }
    pinned.insert("gke-kubeconfiger", push("dh/library/alpine:20250108", alpine()));
    pinned
}

/// The Dockerfile with pinned digests replaced by the stand-ins' (see the module doc).
fn adapted(name: &str, text: &str, pinned: &BTreeMap<&str, String>) -> String {
    let swap = |old: &str| text.replace(old, pinned[name].as_str());
    match name {
        "etcd" => swap("sha256:6447365a6337c3732f412d1b74357b30a633831955b2bc45552b0086be907687"),
        "crossplane" => swap("sha256:41972110a1c1a5c0b6adb283e8aa092c43c31f7c5d79b8656fbffff2c3e61f05"),
        "gke-kubeconfiger" => swap("sha256:115729ec5cb049ba6359c3ab005ac742012d92bbaa5b8bc1a878f1e8f62c0cb8"),
        _ => text.to_string(),
    }
}

fn registries_conf(reg: &Registry, path: &Path) {
    let mut conf = String::from("unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n");
    for (origin, prefix) in MIRRORED {
        conf.push_str(&format!(
            "\n[[registry]]\nprefix = \"{origin}\"\nlocation = \"{origin}\"\n[[registry.mirror]]\nlocation = \"{}/{prefix}\"\ninsecure = true\n",
            reg.host()
        ));
    }
    std::fs::write(path, conf).unwrap();
}

/// The final filesystem and config of one build.
struct Image {
    fs: BTreeMap<String, FsNode>,
    config: Value,
}

fn hoist_build(case: &Case, args: &[(&str, String)], ctx: &Path, reg: &Registry, work: &Path) -> Result<Image, String> {
    let layout = work.join(format!("hoist-{}", case.name));
    let mut cmd = Hoist::cmd();
    cmd.env("HOIST_CACHE_DIR", work.join("hoist-cache")).env("CONTAINERS_REGISTRIES_CONF", "/dev/null");
    cmd.args(["build", ctx.to_str().unwrap(), "--output", &format!("oci:{}:t", layout.display())]);
    for (origin, prefix) in MIRRORED {
        cmd.arg("--registry-mirror").arg(format!("{origin}={}/{prefix}", reg.host()));
    }
    for (k, v) in args {
        cmd.arg("--build-arg").arg(format!("{k}={v}"));
    }
    if let Some(t) = case.target {
        cmd.args(["--target", t]);
    }
    let out = Hoist::run_cmd(cmd, None);
    if !out.success() {
        return Err(format!("hoist build failed:\n{}", out.stderr()));
    }
    Ok(Image { fs: flatten(&layout_layers(&layout, "t")), config: layout_config(&layout, "t") })
}

fn buildah(storage: &Path, conf: &Path) -> Command {
    let mut cmd = crate::harness::skopeo::clean_command("buildah");
    cmd.env("CONTAINERS_REGISTRIES_CONF", conf).env("BUILDAH_ISOLATION", "chroot").args([
        "--storage-driver",
        "vfs",
        "--root",
        storage.join("root").to_str().unwrap(),
        "--runroot",
        storage.join("runroot").to_str().unwrap(),
    ]);
    cmd
}

fn buildah_build(
    case: &Case,
    args: &[(&str, String)],
    ctx: &Path,
    storage: &Path,
    conf: &Path,
    work: &Path,
) -> Result<Image, String> {
    let tag = format!("localhost/rw-{}", case.name);
    let mut cmd = buildah(storage, conf);
    cmd.args(["bud", "--isolation", "chroot", "--format", "docker", "--tls-verify=false", "-q", "-t", &tag]);
    for (k, v) in args {
        cmd.arg("--build-arg").arg(format!("{k}={v}"));
    }
    if let Some(t) = case.target {
        cmd.args(["--target", t]);
    }
    // Debian's buildah 1.28 predates COPY --link (which changes nothing in the result): its copy of
    // the Dockerfile goes without the flag.
    let dockerfile = ctx.join("Dockerfile");
    let buildah_file = ctx.with_extension("buildah.Dockerfile");
    std::fs::write(&buildah_file, std::fs::read_to_string(&dockerfile).unwrap().replace(" --link", "")).unwrap();
    cmd.arg("-f").arg(&buildah_file).arg(ctx);
    let out = run_with_timeout(cmd, None, Duration::from_secs(120));
    if !out.status.success() {
        return Err(format!("buildah bud failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    let dir = work.join(format!("buildah-{}", case.name));
    let mut cmd = buildah(storage, conf);
    cmd.args(["push", "-q", &tag, &format!("dir:{}", dir.display())]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(120));
    if !out.status.success() {
        return Err(format!("buildah push failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let blob = |d: &Value| std::fs::read(dir.join(d.as_str().unwrap().trim_start_matches("sha256:"))).unwrap();
    let layers: Vec<Vec<u8>> = manifest["layers"].as_array().unwrap().iter().map(|l| blob(&l["digest"])).collect();
    let config: Value = serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
    Ok(Image { fs: flatten(&layers), config })
}

/// The config fields both builders write, normalized: buildah's own label dropped, empty and
/// null the same.
fn config_view(image: &Image) -> BTreeMap<&'static str, Value> {
    let c = &image.config["config"];
    let mut out = BTreeMap::new();
    for key in [
        "User",
        "WorkingDir",
        "Env",
        "Entrypoint",
        "Cmd",
        "ExposedPorts",
        "Volumes",
        "Labels",
        "StopSignal",
        "Healthcheck",
        "Shell",
    ] {
        let mut v = c.get(key).cloned().unwrap_or(Value::Null);
        if key == "Labels" {
            if let Some(m) = v.as_object_mut() {
                m.remove("io.buildah.version");
            }
        }
        let empty = v.is_null()
            || v.as_str() == Some("")
            || v.as_array().is_some_and(|a| a.is_empty())
            || v.as_object().is_some_and(|o| o.is_empty());
        out.insert(key, if empty { Value::Null } else { v });
    }
    let author = image.config.get("author").cloned().unwrap_or(Value::Null);
    out.insert("author", if author.as_str() == Some("") { Value::Null } else { author });
    out
}

#[test]
fn realworld_dockerfiles_build_like_buildah() {
    let corpus = corpus();
    if !corpus.join("INDEX.md").is_file() {
        eprintln!(
            "\n\n*** realworld corpus NOT FOUND at {} — set HOIST_CONFORMANCE_DIR to the conformance directory; \
             these 24 cases were NOT run ***\n\n",
            corpus.display()
        );
        return;
    }
    require_tool("buildah");
    let reg = Registry::plain();
    let work = tmp();
    let pinned = push_images(&reg, work.path());
    let conf = work.path().join("registries.conf");
    registries_conf(&reg, &conf);
    let storage = work.path().join("buildah-storage");
    let dirs: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Dockerfile").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(dirs.len(), 24, "the corpus has 24 cases: {dirs:?}");
    for d in &dirs {
        assert!(CASES.iter().any(|c| c.name == d), "{d} has no entry in CASES");
    }
    let mut failures = Vec::new();
    let mut divergences_seen = Vec::new();
    let mut compared = 0;
    for case in CASES {
        let src = corpus.join(case.name);
        let ctx = work.path().join("ctx").join(case.name);
        std::fs::create_dir_all(&ctx).unwrap();
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().to_string();
            if name == "SOURCE.md" {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let text = if name == "Dockerfile" { adapted(case.name, &text, &pinned) } else { text };
            std::fs::write(ctx.join(&name), text).unwrap();
        }
        for (rel, kind) in case.stubs {
            stub(&ctx, rel, *kind);
        }
        let mut args: Vec<(&str, String)> = case.args.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if case.name == "thanos" {
            args.push(("BASE_DOCKER_SHA", pinned["thanos"].trim_start_matches("sha256:").to_string()));
        }
        let (h, b) = match (
            hoist_build(case, &args, &ctx, &reg, work.path()),
            buildah_build(case, &args, &ctx, &storage, &conf, work.path()),
        ) {
            (Ok(h), Ok(b)) => (h, b),
            (h, b) => {
                failures.push(format!(
                    "{}: {}",
                    case.name,
                    [h.err(), b.err()].into_iter().flatten().collect::<Vec<_>>().join("\n")
                ));
                continue;
            }
        };

        let mut diffs = Vec::new();
        let paths: std::collections::BTreeSet<&String> = h.fs.keys().chain(b.fs.keys()).collect();
        compared += paths.len();
        for p in paths {
            match (h.fs.get(p), b.fs.get(p)) {
                (Some(x), Some(y)) if x == y => {}
                (x, y) => diffs.push(format!("{p}: hoist {x:?} buildah {y:?}")),
            }
        }
        let (hc, bc) = (config_view(&h), config_view(&b));
        for (k, v) in &hc {
            if bc[k] != *v {
                diffs.push(format!("config {k}: hoist {v} buildah {}", bc[k]));
            }
        }
        match case.name {
            "gke-kubeconfiger" => {
                // $TARGETPLATFORM is undeclared in the stage: empty under BuildKit's scoping.
                assert_eq!(h.fs["gker"].data, sha256_digest(b"stub gker\n"), "hoist copies /gker");
            }
            "go-hello-world" => {
                let test = &hc["Healthcheck"]["Test"];
                assert_eq!(test[0], "CMD-SHELL", "shell form, as BuildKit: {test}");
                assert!(test[1].as_str().unwrap().ends_with("|| exit 1"), "{test}");
                assert_eq!(bc["Healthcheck"]["Test"][0], "CMD", "buildah 1.28's exec form");
                let (mut x, mut y) = (hc["Healthcheck"].clone(), bc["Healthcheck"].clone());
                x.as_object_mut().unwrap().remove("Test");
                y.as_object_mut().unwrap().remove("Test");
                assert_eq!(x, y, "the other HEALTHCHECK fields agree");
                diffs.retain(|d| !d.starts_with("config Healthcheck"));
                divergences_seen.push(case.name);
            }
            "oraclelinux-9-slim" => {
                assert_eq!(h.fs["bin/sh"].data, "/bin/busybox", "hoist extracted the .tar.xz");
                assert!(b.fs.contains_key("oraclelinux-9-slim-amd64-rootfs.tar.xz"), "buildah 1.28 copied it");
                diffs.retain(|d| d.starts_with("config "));
                divergences_seen.push(case.name);
            }
            _ => {}
        }
        if !diffs.is_empty() {
            failures.push(format!("{}:\n  {}", case.name, diffs.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "hoist and buildah differ:\n{}", failures.join("\n"));
    assert_eq!(divergences_seen.len(), DIVERGENCES.len());
    assert!(compared > 250, "only {compared} paths compared");
}

/// New directories as BuildKit makes them, on a distroless-like base (USER 65532, WORKDIR
/// /home/nonroot 0700): a `COPY --chown` destination and the parents it makes get the owner and
/// 0755, an existing directory keeps its own, `--chmod` is for the copied entries, a WORKDIR is made
/// as the USER and one the base has is left — compared with buildah path by path. The base's
/// layers are read once (the registry's access log), and never again on a rebuild.
#[test]
fn new_directories_get_the_owner_and_mode_buildah_gives_them() {
    require_tool("buildah");
    let reg = Registry::plain();
    let work = tmp();
    let (layers, config) = distroless(true);
    let base =
        push_synthetic(&reg, work.path(), &format!("{}/gcr/distroless/static:nonroot", reg.host()), &layers, config);
    let conf = work.path().join("registries.conf");
    registries_conf(&reg, &conf);
    let ctx = work.path().join("ctx").join("ownership");
    std::fs::create_dir_all(ctx.join("config/sub")).unwrap();
    std::fs::write(ctx.join("config/app.yaml"), "a: 1\n").unwrap();
    std::fs::write(ctx.join("config/sub/b.yaml"), "b: 2\n").unwrap();
    std::fs::write(ctx.join("app.txt"), "app\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM gcr.io/distroless/static:nonroot\n\
         COPY --chown=nonroot config/ ./config/\n\
         COPY --chown=nonroot:nonroot app.txt /srv/app/deep/\n\
         COPY --chown=65532 app.txt /home/nonroot/existing.txt\n\
         COPY --chmod=640 config /etc/appconf\n\
         COPY --chown=1000:1000 --chmod=600 app.txt /opt/data/\n\
         WORKDIR /tmp\n\
         WORKDIR /var/lib/app\n\
         USER 0\n\
         WORKDIR /home/nonroot\n",
    )
    .unwrap();
    let case = Case { name: "ownership", stubs: &[], args: &[], target: None };
    let storage = work.path().join("buildah-storage");
    // Pushed to the registry: the base's layers are read once for their listings (an OCI layout
    // output, below, downloads them anyway), and never again by a rebuild.
    let cache = work.path().join("push-cache");
    let push = |tag: &str| {
        let mut cmd = Hoist::cmd();
        cmd.env("HOIST_CACHE_DIR", &cache).env("CONTAINERS_REGISTRIES_CONF", "/dev/null");
        cmd.args(["build", ctx.to_str().unwrap(), "-t", &format!("{}/out/own:{tag}", reg.host())]);
        cmd.arg("--registry-mirror").arg(format!("gcr.io={}/gcr", reg.host()));
        Hoist::run_cmd(cmd, None)
    };
    let mark = reg.log_mark();
    let out = push("1");
    out.assert_success().assert_stderr_contains("base layer 1/2 of gcr.io/distroless/static:nonroot");
    out.assert_stderr_contains("downloaded, its headers read, to find /etc/passwd and /etc/group");
    let gets = reg.blob_gets_since(mark);
    for l in &base.layer_digests {
        let n = gets.iter().filter(|(_, d, _)| d == l).count();
        assert_eq!(n, 1, "base layer {l} read once: {gets:?}");
    }
    let mark = reg.log_mark();
    push("2").assert_success().assert_stderr_contains("its listing from the cache");
    let gets: Vec<_> =
        reg.blob_gets_since(mark).into_iter().filter(|(_, d, _)| base.layer_digests.contains(d)).collect();
    assert!(gets.is_empty(), "a rebuild read base layers: {gets:?}");
    assert_eq!(reg.manifest_bytes("out/own", "1"), reg.manifest_bytes("out/own", "2"));

    let h = hoist_build(&case, &[], &ctx, &reg, work.path()).unwrap();
    let b = buildah_build(&case, &[], &ctx, &storage, &conf, work.path()).unwrap();
    let meta = |fs: &BTreeMap<String, FsNode>, p: &str| fs.get(p).map(|n| (n.kind, n.mode, n.uid, n.gid));
    // BuildKit's rules, checked on hoist's image by themselves…
    assert_eq!(meta(&h.fs, "home/nonroot/config"), Some(('d', 0o755, 65532, 65532)), "the --chown destination");
    assert_eq!(meta(&h.fs, "home/nonroot"), Some(('d', 0o700, 65532, 65532)), "the base's, left as it was");
    for p in ["srv", "srv/app", "srv/app/deep"] {
        assert_eq!(meta(&h.fs, p), Some(('d', 0o755, 65532, 65532)), "{p}: parents a --chown copy makes");
    }
    assert_eq!(meta(&h.fs, "etc/appconf"), Some(('d', 0o755, 0, 0)), "--chmod is for the copied entries");
    assert_eq!(meta(&h.fs, "etc/appconf/app.yaml"), Some(('f', 0o640, 0, 0)));
    assert_eq!(meta(&h.fs, "opt/data"), Some(('d', 0o755, 1000, 1000)));
    assert_eq!(meta(&h.fs, "opt/data/app.txt"), Some(('f', 0o600, 1000, 1000)));
    assert_eq!(meta(&h.fs, "tmp"), Some(('d', 0o1777, 0, 0)), "WORKDIR of the base's /tmp leaves it");
    for p in ["var", "var/lib", "var/lib/app"] {
        assert_eq!(meta(&h.fs, p), Some(('d', 0o755, 65532, 65532)), "{p}: WORKDIR makes it as the USER");
    }
    // …and path by path against buildah.
    let paths: std::collections::BTreeSet<&String> = h.fs.keys().chain(b.fs.keys()).collect();
    let diffs: Vec<String> = paths
        .into_iter()
        .filter(|p| h.fs.get(*p) != b.fs.get(*p))
        .map(|p| format!("{p}: hoist {:?} buildah {:?}", meta(&h.fs, p), meta(&b.fs, p)))
        .collect();
    assert!(diffs.is_empty(), "hoist and buildah differ:\n{}", diffs.join("\n"));
}
