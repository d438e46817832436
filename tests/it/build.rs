//! `hoist build` end to end: FROM scratch images written as OCI layouts and unpacked by umoci,
//! reproducible digests across copies of a context, a registry base image reused without downloading
//! its layers (checked in the registry's access log), and the usage errors (file:line, exit 2) for
//! what hoist cannot or will not build.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::harness::fixtures::layout_manifest;
use crate::harness::skopeo::{inspect_docker_archive, inspect_docker_archive_config};
use crate::harness::*;

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const DOCKERFILE: &str = r#"ARG BASE=scratch
FROM ${BASE} AS files
COPY --chmod=640 lib/ /lib/
FROM scratch
ARG VERSION=0.1
ENV APP=/app VERSION=${VERSION}
LABEL org.example.version=$VERSION
WORKDIR $APP
COPY bin/ ./bin/
COPY etc/app.conf etc/
COPY --chown=1000:1000 data /var/lib/app
COPY --from=files /lib/util.txt /usr/lib/
COPY <<EOF /etc/motd
hello ${VERSION}
EOF
ADD vendor.tar.gz /opt/
WORKDIR /var/empty
USER 1000:1000
EXPOSE 8080 9000/udp
VOLUME ["/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s CMD ["/app/bin/tool", "health"]
ONBUILD COPY . /src
ENTRYPOINT ["/app/bin/tool"]
CMD serve --port 80
"#;

/// A context exercising COPY/ADD: an executable, a symlink, nested dirs, an ignored file, a tar.
fn fixture_context(dir: &Path) {
    write(&dir.join("Dockerfile"), DOCKERFILE);
    write(&dir.join("bin/tool"), "#!/bin/sh\necho tool\n");
    #[cfg(unix)]
    chmod(&dir.join("bin/tool"), 0o755);
    #[cfg(unix)]
    std::os::unix::fs::symlink("tool", dir.join("bin/tool-link")).unwrap();
    write(&dir.join("bin/debug.log"), "ignored\n");
    write(&dir.join("etc/app.conf"), "key=value\n");
    write(&dir.join("data/a/b.txt"), "deep\n");
    write(&dir.join("lib/util.txt"), "util\n");
    write(&dir.join("secret.env"), "TOKEN=x\n");
    write(&dir.join(".dockerignore"), "**/*.log\nsecret.env\n");
    // A gzip tar for ADD to extract.
    let f = std::fs::File::create(dir.join("vendor.tar.gz")).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_ustar();
    h.set_size(7);
    h.set_mode(0o600);
    h.set_mtime(123);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "vendor/lib.txt", &b"vendor\n"[..]).unwrap();
    b.into_inner().unwrap().finish().unwrap();
}

fn config_of(layout: &Path, tag: &str) -> (serde_json::Value, serde_json::Value) {
    let (_, _, bytes) = layout_manifest(layout, Some(tag));
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let cfg_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = serde_json::from_slice(&std::fs::read(blob_path(layout, cfg_digest)).unwrap()).unwrap();
    (manifest, config)
}

#[test]
fn scratch_build_to_layout_unpacks_with_umoci() {
    let work = tmp();
    let ctx = work.path().join("ctx");
    fixture_context(&ctx);
    let layout = work.path().join("out");
    let digest_file = work.path().join("digest");
    let out = Hoist::run([
        "build",
        ctx.to_str().unwrap(),
        "--output",
        &format!("oci:{}:v1", layout.display()),
        "--build-arg",
        "VERSION=2.5",
        "--label",
        "extra=yes",
        "--annotation",
        "org.example.note=built",
        "--digest-file",
        digest_file.to_str().unwrap(),
    ]);
    out.assert_success();
    let (digest, _, _) = layout_manifest(&layout, Some("v1"));
    assert_eq!(out.stdout(), format!("oci:{}:v1@{digest}\n", layout.display()));
    assert_eq!(std::fs::read_to_string(&digest_file).unwrap(), format!("{digest}\n"));

    let (manifest, config) = config_of(&layout, "v1");
    assert_eq!(manifest["annotations"]["org.example.note"], "built");
    let c = &config["config"];
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "APP=/app",
            "VERSION=2.5"
        ])
    );
    assert_eq!(c["Entrypoint"], serde_json::json!(["/app/bin/tool"]));
    assert_eq!(c["Cmd"], serde_json::json!(["/bin/sh", "-c", "serve --port 80"]));
    assert_eq!(c["WorkingDir"], "/var/empty");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}, "9000/udp": {}}));
    assert_eq!(c["Labels"], serde_json::json!({"org.example.version": "2.5", "extra": "yes"}));
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD", "/app/bin/tool", "health"]));
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000i64);
    assert_eq!(c["OnBuild"], serde_json::json!(["COPY . /src"]));
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    let layers = manifest["layers"].as_array().unwrap();
    // WORKDIR /app, 5 COPY, ADD, WORKDIR /var/empty.
    assert_eq!(layers.len(), 8, "{manifest}");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 8);
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.iter().filter(|h| h["empty_layer"] != true).count(), 8);
    assert!(history.iter().any(|h| h["created_by"] == "COPY etc/app.conf etc/"));

    let bundle = work.path().join("bundle");
    let rootfs = umoci_unpack(&layout, "v1", &bundle);
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("app/bin/tool"), "#!/bin/sh\necho tool\n");
    assert_eq!(read("app/etc/app.conf"), "key=value\n");
    assert_eq!(read("var/lib/app/a/b.txt"), "deep\n");
    assert_eq!(read("usr/lib/util.txt"), "util\n");
    assert_eq!(read("etc/motd"), "hello 2.5\n");
    assert_eq!(read("opt/vendor/lib.txt"), "vendor\n");
    assert!(!rootfs.join("app/bin/debug.log").exists(), ".dockerignore'd file was copied");
    assert!(rootfs.join("var/empty").is_dir());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("app/bin/tool"), 0o755);
        assert_eq!(mode("app/etc/app.conf"), 0o644);
        assert_eq!(mode("usr/lib/util.txt"), 0o640);
        assert_eq!(std::fs::read_link(rootfs.join("app/bin/tool-link")).unwrap(), Path::new("tool"));
    }
    // Owners as the layer tars say (umoci --rootless maps them away, so read the tar).
    let owners = layer_owners(&layout, &manifest);
    assert_eq!(owners.get("var/lib/app/a/b.txt"), Some(&(1000, 1000)));
    assert_eq!(owners.get("app/etc/app.conf"), Some(&(0, 0)));
}

/// path → (uid, gid) over every layer of `manifest`.
fn layer_owners(layout: &Path, manifest: &serde_json::Value) -> std::collections::HashMap<String, (u64, u64)> {
    let mut out = std::collections::HashMap::new();
    for l in manifest["layers"].as_array().unwrap() {
        let f = std::fs::File::open(blob_path(layout, l["digest"].as_str().unwrap())).unwrap();
        let mut a = tar::Archive::new(flate2::read::MultiGzDecoder::new(f));
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 0, "mtime is the build epoch");
            let p = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
            out.insert(p, (h.uid().unwrap(), h.gid().unwrap()));
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path, mtime: SystemTime) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        let ft = entry.file_type().unwrap();
        if ft.is_symlink() {
            #[cfg(unix)]
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else if ft.is_dir() {
            copy_tree(&entry.path(), &dest, mtime);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
            std::fs::File::options().write(true).open(&dest).unwrap().set_modified(mtime).unwrap();
        }
    }
}

#[test]
fn same_inputs_give_the_same_digest_wherever_they_are() {
    let work = tmp();
    let ctx = work.path().join("orig");
    fixture_context(&ctx);
    let a = work.path().join("a/ctx");
    let b = work.path().join("elsewhere/deeper/ctx");
    copy_tree(&ctx, &a, SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
    copy_tree(&ctx, &b, SystemTime::now());
    let build = |c: &Path, out: &Path| {
        let mut cmd = Hoist::cmd();
        cmd.args(["build", c.to_str().unwrap(), "--output", &format!("oci:{}:x", out.display())]);
        cmd.env("SOURCE_DATE_EPOCH", "1700000000");
        let o = Hoist::run_cmd(cmd, None);
        o.assert_success();
        o.stdout().rsplit_once('@').unwrap().1.trim().to_string()
    };
    let da = build(&a, &work.path().join("la"));
    let db = build(&b, &work.path().join("lb"));
    assert_eq!(da, db);
    let (_, config) = config_of(&work.path().join("la"), "x");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    // A content change changes the digest.
    write(&b.join("etc/app.conf"), "key=other\n");
    assert_ne!(build(&b, &work.path().join("lc")), da);
}

#[test]
fn registry_base_layers_are_reused_not_downloaded() {
    let reg = Registry::plain();
    let work = tmp();
    let base_layout = work.path().join("base");
    let base = oci_layout(&base_layout, &LayoutSpec::new(21).layer_sizes(&[5000, 70_000]).tag("1"));
    let base_ref = format!("{}/base/img:1", reg.host());
    Skopeo::new(&reg).preserve_digests().push_layout(&base_layout, "1", &base_ref);

    let ctx = work.path().join("ctx");
    write(
        &ctx.join("Dockerfile"),
        &format!("FROM {base_ref}\nCOPY app.txt /app/\nENV MODE=prod\nCMD [\"/app/app.txt\"]\n"),
    );
    write(&ctx.join("app.txt"), "app\n");
    let dest = format!("{}/app/x:1", reg.host());
    let mark = reg.log_mark();
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "-t", &dest]);
    out.assert_success();
    let digest = out.stdout().trim().rsplit_once('@').unwrap().1.to_string();
    assert_eq!(out.stdout(), format!("{dest}@{digest}\n"));

    // No GET of a base layer: only the config was read.
    let gets = reg.blob_gets_since(mark);
    for l in &base.layer_digests {
        assert!(!gets.iter().any(|(_, d, _)| d == l), "base layer {l} was downloaded: {gets:?}");
    }
    check_remote(&reg, &dest);
    // The manifest as skopeo reads it: base layers unchanged and first, then the COPY layer.
    let manifest: serde_json::Value = serde_json::from_slice(&Skopeo::new(&reg).inspect_raw(&dest)).unwrap();
    let layers: Vec<&str> =
        manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[..2], base.layer_digests.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.name"], base_ref.as_str());
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.digest"], base.manifest_digest.as_str());
    assert!(reg.has_blob("app/x", &base.layer_digests[0]));
    // The whole image copies out (every blob readable) and its config extends the base's.
    let copy = work.path().join("copy");
    Skopeo::new(&reg).copy_to_layout(&dest, &copy);
    let (_, config) = config_of(&copy, "1");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), 3);
    assert_eq!(diff_ids[0], base.diff_ids[0].as_str());
    assert!(config["config"]["Env"].as_array().unwrap().iter().any(|e| e == "MODE=prod"));

    // An OCI layout output from a registry base fetches the base layers (the one legitimate download).
    let layout = work.path().join("out");
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "--output", &format!("oci:{}:b", layout.display())]);
    out.assert_success();
    let (d, _, _) = layout_manifest(&layout, Some("b"));
    assert_eq!(d, digest, "layout and pushed image are the same image");
    for l in &base.layer_digests {
        assert!(blob_path(&layout, l).is_file());
    }
    // crane export flattens the pushed image into the tree hoist pull --rootfs unpacks.
    let rootfs = work.path().join("rootfs");
    Hoist::run(["pull", &dest, "--rootfs", rootfs.to_str().unwrap()]).assert_success();
    assert_export_matches_rootfs(&reg, &dest, None, &rootfs);
}

fn build_error(dockerfile: &str, setup: impl FnOnce(&Path)) -> Output {
    let work = tmp();
    let ctx = work.path().join("ctx");
    write(&ctx.join("Dockerfile"), dockerfile);
    write(&ctx.join("ok.txt"), "ok\n");
    setup(work.path());
    let out =
        Hoist::run(["build", ctx.to_str().unwrap(), "--output", &format!("oci:{}", work.path().join("o").display())]);
    out.assert_code(2);
    assert!(!work.path().join("o").exists(), "nothing is written on failure");
    out
}

#[test]
fn unsupported_instructions_and_context_escapes_are_usage_errors() {
    let out = build_error("FROM scratch\nCOPY ok.txt /\nRUN make\n", |_| {});
    out.assert_stderr_contains("Dockerfile:3: RUN needs a container runtime, which hoist does not use");
    out.assert_stderr_contains("COPY it");
    let out = build_error("FROM scratch\nADD https://example.com/x.tgz /x\n", |_| {});
    out.assert_stderr_contains("Dockerfile:2: ADD https://example.com/x.tgz");
    let out = build_error("FROM scratch\n\nCOPY ../secret /x\n", |w| write(&w.join("secret"), "s"));
    out.assert_stderr_contains("Dockerfile:3: source \"../secret\" is outside the build context");
    // A leading / is the context root: the host's /etc/hostname is never read, and / cannot climb.
    let out = build_error("FROM scratch\nCOPY /etc/hostname /x\n", |_| {});
    out.assert_stderr_contains("Dockerfile:2: source \"/etc/hostname\": file not found in build context");
    let out = build_error("FROM scratch\nCOPY /../secret /x\n", |w| write(&w.join("secret"), "s"));
    out.assert_stderr_contains("Dockerfile:2: source \"/../secret\" is outside the build context");
    #[cfg(unix)]
    {
        let out = build_error("FROM scratch\nCOPY link /x\n", |w| {
            write(&w.join("secret"), "s");
            std::os::unix::fs::symlink("../secret", w.join("ctx/link")).unwrap();
        });
        out.assert_stderr_contains("Dockerfile:2: source \"link\" is a symlink pointing outside the build context");
    }
    let out = build_error("FROM scratch\nCOPY missing.txt /x\n", |_| {});
    out.assert_stderr_contains("Dockerfile:2: source \"missing.txt\": file not found");
}

#[test]
fn check_validates_without_writing_and_prints_json() {
    let work = tmp();
    let ctx = work.path().join("ctx");
    fixture_context(&ctx);
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "--check"]);
    out.assert_success();
    assert_eq!(out.stdout(), "");
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "--check", "--json"]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).expect("--check --json prints JSON");
    let ins = v["instructions"].as_array().unwrap();
    assert_eq!(ins[0]["name"], "arg");
    assert_eq!(ins[1]["name"], "from");
    assert_eq!(ins[1]["line"], 2);
    assert!(ins.iter().any(|i| i["name"] == "copy" && i["flags"] == serde_json::json!(["--chown=1000:1000"])));
    assert_eq!(v["ok"], true);

    let bad = work.path().join("bad");
    write(&bad.join("Dockerfile"), "FROM scratch\nCOPY nothere /x\nRUN true\n");
    let out = Hoist::run(["build", bad.to_str().unwrap(), "--check"]);
    out.assert_code(2);
    out.assert_stderr_contains("Dockerfile:2:");
    let out = Hoist::run(["build", bad.to_str().unwrap(), "--check", "--json"]);
    out.assert_code(2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("Dockerfile:2:"));
    // Failures before any stage exists (an instruction before FROM, a parse error, a missing file)
    // still print exactly one JSON document.
    for (text, needle) in [
        ("CMD [\"x\"]\nFROM scratch\n", "Dockerfile:1: CMD before the first FROM"),
        ("FROM scratch\n\nENV PATH\n", "Dockerfile:3:"),
    ] {
        write(&bad.join("Dockerfile"), text);
        let out = Hoist::run(["build", bad.to_str().unwrap(), "--check", "--json"]);
        out.assert_code(2);
        let v: serde_json::Value = serde_json::from_str(&out.stdout()).expect("one JSON document");
        assert_eq!(v["ok"], false);
        assert!(v["error"].as_str().unwrap().contains(needle), "{v}");
    }
    let out = Hoist::run(["build", bad.to_str().unwrap(), "--check", "--json", "-f", "/nonexistent/Dockerfile"]);
    out.assert_code(2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).expect("one JSON document");
    assert!(v["error"].as_str().unwrap().contains("/nonexistent/Dockerfile"), "{v}");
    // --target picks a stage; an unknown one is a usage error.
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "--check", "--target", "files"]);
    out.assert_success();
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "--check", "--target", "nope"]);
    out.assert_code(2);
}

#[test]
fn example_hello_builds() {
    let work = tmp();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let layout = work.path().join("out");
    Hoist::run(["build", example.to_str().unwrap(), "--output", &format!("oci:{}:hello", layout.display())])
        .assert_success();
    let rootfs = umoci_unpack(&layout, "hello", &work.path().join("bundle"));
    assert!(rootfs.join("srv/hello/hello.sh").is_file());
    assert!(rootfs.join("etc/hello.conf").is_file());
    assert!(!rootfs.join("srv/hello/notes.tmp").exists());

    // The same image as a `docker load` archive, as skopeo reads it.
    let archive = work.path().join("hello.tar");
    let out =
        Hoist::run(["build", example.to_str().unwrap(), "--output", &format!("docker-archive:{}", archive.display())]);
    out.assert_success();
    let (digest, _, _) = layout_manifest(&layout, Some("hello"));
    assert_eq!(out.stdout(), format!("docker-archive:{}@{digest}\n", archive.display()));
    let info = inspect_docker_archive(&archive);
    assert_eq!(info["Layers"].as_array().unwrap().len(), 4, "{info}");
    let config: serde_json::Value = serde_json::from_slice(&inspect_docker_archive_config(&archive)).unwrap();
    assert!(config["config"]["Env"].as_array().unwrap().iter().any(|e| e == "APP_VERSION=1.0"));
}

#[test]
fn multi_platform_build_from_a_multi_arch_base_makes_an_index() {
    let reg = Registry::plain();
    let work = tmp();
    let base_layout = work.path().join("base");
    let base = oci_index_layout(&base_layout);
    let base_ref = format!("{}/base/multi:{}", reg.host(), base.tag);
    Skopeo::new(&reg).preserve_digests().push_layout(&base_layout, &base.tag, &base_ref);

    let ctx = work.path().join("ctx");
    write(
        &ctx.join("Dockerfile"),
        &format!("FROM {base_ref}\nARG TARGETARCH\nCOPY <<EOF /etc/arch\n$TARGETARCH\nEOF\nCOPY same.txt /\n"),
    );
    write(&ctx.join("same.txt"), "same\n");
    let dest = format!("{}/app/multi:1", reg.host());
    let mark = reg.log_mark();
    let out = Hoist::run([
        "build",
        ctx.to_str().unwrap(),
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        &dest,
        "--build-arg",
        "UNUSED=1",
    ]);
    out.assert_success();
    out.assert_stderr_contains("UNUSED");
    let gets = reg.blob_gets_since(mark);
    check_remote(&reg, &dest);
    let index: serde_json::Value = serde_json::from_slice(&Skopeo::new(&reg).inspect_raw(&dest)).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for (entry, (platform, image)) in entries.iter().zip(&base.images) {
        assert_eq!(
            format!(
                "{}/{}",
                entry["platform"]["os"].as_str().unwrap(),
                entry["platform"]["architecture"].as_str().unwrap()
            ),
            *platform
        );
        let m: serde_json::Value = serde_json::from_slice(&Skopeo::new(&reg).inspect_raw(&format!(
            "{}/app/multi@{}",
            reg.host(),
            entry["digest"].as_str().unwrap()
        )))
        .unwrap();
        let layers: Vec<&str> = m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
        assert_eq!(layers.len(), image.layer_digests.len() + 2);
        assert_eq!(
            layers[..image.layer_digests.len()],
            image.layer_digests.iter().map(String::as_str).collect::<Vec<_>>()[..]
        );
        for l in &image.layer_digests {
            assert!(!gets.iter().any(|(_, d, _)| d == l), "base layer {l} was downloaded");
        }
    }
    // Each platform's image carries its own TARGETARCH.
    let copy = work.path().join("copy");
    Skopeo::new(&reg).copy_to_layout(&dest, &copy);
    assert_ne!(entries[0]["digest"], entries[1]["digest"]);
}

#[test]
fn squash_makes_one_layer_with_every_file() {
    let work = tmp();
    let ctx = work.path().join("ctx");
    fixture_context(&ctx);
    let layout = work.path().join("out");
    Hoist::run(["build", ctx.to_str().unwrap(), "--squash", "--output", &format!("oci:{}:s", layout.display())])
        .assert_success();
    let (manifest, config) = config_of(&layout, "s");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    let rootfs = umoci_unpack(&layout, "s", &work.path().join("bundle"));
    for p in ["app/bin/tool", "app/etc/app.conf", "var/lib/app/a/b.txt", "etc/motd", "opt/vendor/lib.txt"] {
        assert!(rootfs.join(p).is_file(), "{p} missing");
    }
    assert!(rootfs.join("var/empty").is_dir());
}

#[test]
fn base_on_another_registry_is_streamed_across_blob_by_blob() {
    let base_reg = Registry::plain();
    let dest_reg = Registry::plain();
    let work = tmp();
    let base_layout = work.path().join("base");
    let base = oci_layout(&base_layout, &LayoutSpec::new(23).layer_sizes(&[6000, 80_000]).tag("1"));
    let base_ref = format!("{}/base/img:1", base_reg.host());
    Skopeo::new(&base_reg).preserve_digests().push_layout(&base_layout, "1", &base_ref);
    let ctx = work.path().join("ctx");
    write(&ctx.join("Dockerfile"), &format!("FROM {base_ref}\nCOPY app.txt /app/\n"));
    write(&ctx.join("app.txt"), "app\n");
    let dest = format!("{}/app/y:1", dest_reg.host());
    let meta = work.path().join("meta.json");
    Hoist::run(["build", ctx.to_str().unwrap(), "-t", &dest, "--metadata-file", meta.to_str().unwrap()])
        .assert_success();
    // Each base layer was read once from the base registry and uploaded to the destination.
    let gets = base_reg.access_log().into_iter().filter(|l| l.method == "GET" && l.blob().is_some()).count();
    assert_eq!(gets, 1 + base.layer_digests.len(), "config + each base layer once");
    for l in &base.layer_digests {
        assert!(dest_reg.has_blob("app/y", l), "{l}");
    }
    // A rebuild finds everything at the destination: nothing is read from the base registry again
    // but its manifest and config.
    let mark = base_reg.log_mark();
    Hoist::run(["build", ctx.to_str().unwrap(), "-t", &dest, "--metadata-file", meta.to_str().unwrap()])
        .assert_success();
    let layer_gets: Vec<_> =
        base_reg.blob_gets_since(mark).into_iter().filter(|(_, d, _)| base.layer_digests.contains(d)).collect();
    assert!(layer_gets.is_empty(), "{layer_gets:?}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert!(v["blobs"].as_array().unwrap().iter().all(|b| b["outcome"] == "skipped"), "{v}");
    let copy = work.path().join("copy");
    Skopeo::new(&dest_reg).copy_to_layout(&dest, &copy);
    assert_eq!(blobs_of_layout(&copy)[&base.layer_digests[1]], blobs_of_layout(&base_layout)[&base.layer_digests[1]]);
}

#[test]
fn zstd_layers_round_trip_through_a_registry() {
    // umoci 0.4.7 refuses tar+zstd layers, so: push, copy back with skopeo, decompress here.
    let reg = Registry::plain();
    let work = tmp();
    let ctx = work.path().join("ctx");
    fixture_context(&ctx);
    let dest = format!("{}/app/z:1", reg.host());
    let layout = work.path().join("out");
    Hoist::run([
        "build",
        ctx.to_str().unwrap(),
        "--compression",
        "zstd",
        "--compression-level",
        "9",
        "-t",
        &dest,
        "--output",
        &format!("oci:{}:z", layout.display()),
    ])
    .assert_success();
    check_remote(&reg, &dest);
    let rootfs = work.path().join("rootfs");
    Hoist::run(["pull", &dest, "--rootfs", rootfs.to_str().unwrap()]).assert_success();
    assert_export_matches_rootfs(&reg, &dest, None, &rootfs);
    let copy = work.path().join("copy");
    Skopeo::new(&reg).copy_to_layout(&dest, &copy);
    let (manifest, config) = config_of(&copy, "1");
    let (local, _) = config_of(&layout, "z");
    assert_eq!(manifest, local, "the registry holds what the layout holds");
    let layers = manifest["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(layers.len(), 8);
    let mut files = std::collections::BTreeMap::new();
    for (l, diff_id) in layers.iter().zip(diff_ids) {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
        let tar =
            zstd::decode_all(std::fs::File::open(blob_path(&copy, l["digest"].as_str().unwrap())).unwrap()).unwrap();
        assert_eq!(sha256_digest(&tar), diff_id.as_str().unwrap());
        for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
            let mut e = e.unwrap();
            let mut s = String::new();
            if e.header().entry_type().is_file() {
                std::io::Read::read_to_string(&mut e, &mut s).unwrap();
                files.insert(e.path().unwrap().to_string_lossy().to_string(), s);
            }
        }
    }
    assert_eq!(files["app/bin/tool"], "#!/bin/sh\necho tool\n");
    assert_eq!(files["opt/vendor/lib.txt"], "vendor\n");
    // The same inputs with gzip: same tars (diff_ids), other blobs.
    let gz = work.path().join("gz");
    Hoist::run(["build", ctx.to_str().unwrap(), "--output", &format!("oci:{}:g", gz.display())]).assert_success();
    let (gm, gc) = config_of(&gz, "g");
    assert_eq!(gc["rootfs"], config["rootfs"]);
    assert_eq!(gm["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let bad = Hoist::run(["build", ctx.to_str().unwrap(), "--compression-level", "12", "--output", "oci:x"]);
    assert_eq!(bad.code(), Some(2), "{}", bad.stderr());
}

#[test]
fn rebuilds_of_unchanged_input_come_from_the_layer_cache_and_upload_nothing() {
    let reg = Registry::plain();
    let work = tmp();
    let ctx = work.path().join("ctx");
    write(&ctx.join("Dockerfile"), "FROM scratch\nCOPY a.txt /a/\nCOPY dir/ /d/\nCOPY <<EOF /motd\nhi\nEOF\n");
    write(&ctx.join("a.txt"), "one\n");
    write(&ctx.join("dir/b.txt"), "bee\n");
    let cache = work.path().join("cache");
    let dest = format!("{}/app/c:1", reg.host());
    let meta = work.path().join("meta.json");
    let build = |extra: &[&str]| {
        let mut cmd = Hoist::cmd();
        cmd.env("HOIST_CACHE_DIR", &cache);
        cmd.args(["build", ctx.to_str().unwrap(), "-t", &dest, "--metadata-file", meta.to_str().unwrap()]);
        cmd.args(extra);
        let out = Hoist::run_cmd(cmd, None);
        out.assert_success();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
        (out, v)
    };
    let (first, v1) = build(&[]);
    assert!(!first.stderr().contains("from the cache"), "{}", first.stderr());
    assert!(cache.join("layers").read_dir().unwrap().count() >= 6, "3 layers and their records");
    let (second, v2) = build(&[]);
    assert_eq!(second.stdout(), first.stdout(), "same image");
    second.assert_stderr_contains("3 of 3 layers came from the cache");
    let blobs = v2["blobs"].as_array().unwrap();
    assert_eq!(blobs.len(), v1["blobs"].as_array().unwrap().len());
    assert!(blobs.iter().all(|b| b["outcome"] == "skipped"), "{v2}");
    // --no-cache writes the layers anew: the same image.
    let (fresh, _) = build(&["--no-cache"]);
    assert!(!fresh.stderr().contains("from the cache"));
    assert_eq!(fresh.stdout(), first.stdout());
    // An edit misses for that layer only and changes the image.
    write(&ctx.join("dir/b.txt"), "bumble\n");
    let (third, _) = build(&[]);
    third.assert_stderr_contains("2 of 3 layers came from the cache");
    assert_ne!(third.stdout(), first.stdout());
    // zstd layers are other cache entries.
    let (z, _) = build(&["--compression", "zstd"]);
    assert!(!z.stderr().contains("from the cache"), "{}", z.stderr());
}
