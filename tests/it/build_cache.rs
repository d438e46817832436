//! The registry as the layer cache (`hoist build`, [`hoist::builder::reuse`]): a fresh clone (new
//! mtimes, new inodes) with an empty `HOIST_CACHE_DIR` re-running the same commit uploads no layer
//! byte; a changed last layer is the only one uploaded; `--cache-from` mounts from another
//! repository; a base image's layer is reused; a candidate that is missing or unreachable leaves the
//! build working and the log saying why; `--metadata-file` records each layer's origin.

use std::path::{Path, PathBuf};

use crate::harness::*;

/// A context of three COPY layers (`a/`, `b/`, `c/`: a few hundred KiB each, compressible) whose
/// Dockerfile starts `FROM base`.
fn context(dir: &Path, base: &str, c_text: &str) {
    for (sub, n) in [("a", 40), ("b", 60)] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for i in 0..n {
            std::fs::write(dir.join(sub).join(format!("f{i}.txt")), format!("{sub} file {i}\n").repeat(300)).unwrap();
        }
    }
    std::fs::create_dir_all(dir.join("c")).unwrap();
    std::fs::write(dir.join("c/app.txt"), c_text).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {base}\nCOPY a /a/\nCOPY b /b/\nCOPY c /c/\nCMD [\"/c/app.txt\"]\n"),
    )
    .unwrap();
}

/// `hoist build CTX ARGS…` with the cache directory `cache` (empty = a fresh runner) and a fixed epoch.
fn build(ctx: &Path, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Hoist::cmd();
    cmd.env("HOIST_CACHE_DIR", cache).env("SOURCE_DATE_EPOCH", "1700000000").env_remove("HOIST_CACHE_FROM");
    cmd.arg("build").arg(ctx).args(args);
    Hoist::run_cmd(cmd, None)
}

fn digest_of(out: &Output) -> String {
    out.stdout().trim().rsplit_once('@').expect("REF@digest on stdout").1.to_string()
}

fn metadata(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Upload requests (POST/PATCH/PUT on `…/blobs/uploads/`) in the access log since `mark`.
fn uploads_since(reg: &Registry, mark: usize) -> Vec<AccessLine> {
    reg.access_log_since(mark).into_iter().filter(|l| l.path.contains("/blobs/uploads/")).collect()
}

/// A scratch base with one small layer, pushed as `base/img:1`.
fn push_base(reg: &Registry, dir: &Path) -> String {
    let ctx = dir.join("base-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY os-release /etc/\n").unwrap();
    std::fs::write(ctx.join("os-release"), "ID=test\n").unwrap();
    let base = format!("{}/base/img:1", reg.host());
    build(&ctx, &dir.join("cache-base"), &["-t", &base, "-q"]).assert_success();
    base
}

/// A fresh clone: the same files copied into a new directory (new mtimes, new inodes).
fn clone_of(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in walk(src) {
        let rel = entry.strip_prefix(src).unwrap();
        let to = dest.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn build_cache_fresh_clone_rerun_uploads_no_layer_byte() {
    let reg = Registry::plain();
    let dir = tmp();
    let base = push_base(&reg, dir.path());
    let first = dir.path().join("clone-1");
    context(&first, &base, "v1\n");
    let dest = format!("{}/app/web:main", reg.host());
    let meta = dir.path().join("meta.json");
    let out = build(&first, &dir.path().join("cache-1"), &["-t", &dest, "--metadata-file", meta.to_str().unwrap()]);
    out.assert_success();
    let digest = digest_of(&out);
    let err = out.stderr();
    // The first push: the tag is not there yet, the base lists none of these layers.
    assert!(err.contains(&format!("not read: {dest}:")), "{err}");
    assert_eq!(err.matches(" built (").count(), 3, "{err}");
    // The summary's time covers the layers streamed while they were compressed.
    let v = metadata(&meta);
    let slowest = v["blobs"].as_array().unwrap().iter().map(|b| b["seconds"].as_f64().unwrap()).fold(0.0, f64::max);
    assert!(v["seconds"].as_f64().unwrap() >= slowest, "{v}");
    let layers = v["layers"].as_array().unwrap().clone();
    assert_eq!(layers.len(), 3);
    assert!(layers
        .iter()
        .all(|l| l["origin"] == "built" && l["why"].as_str().unwrap().contains("none of the 1 image")));

    // The same commit in a fresh clone on a fresh runner: nothing is compressed or uploaded.
    let second = dir.path().join("clone-2");
    clone_of(&first, &second);
    let mark = reg.log_mark();
    let started = std::time::Instant::now();
    let out = build(&second, &dir.path().join("cache-2"), &["-t", &dest, "--metadata-file", meta.to_str().unwrap()]);
    let took = started.elapsed();
    out.assert_success();
    assert_eq!(digest_of(&out), digest, "the same image");
    let err = out.stderr();
    assert_eq!(err.matches(&format!("reused from {dest}")).count(), 3, "{err}");
    assert!(!err.contains("compressed"), "nothing streamed: {err}");
    assert!(err.contains("0 uploaded (0 B)"), "{err}");
    let uploads = uploads_since(&reg, mark);
    assert!(uploads.is_empty(), "no upload session at all (layers and config exist): {uploads:?}");
    // Only small reads: manifests and the configs, never a layer.
    let v = metadata(&meta);
    let layer_digests: Vec<String> =
        v["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect();
    let gets: Vec<AccessLine> = reg
        .access_log_since(mark)
        .into_iter()
        .filter(|l| l.method == "GET" && l.blob().is_some_and(|(_, d)| layer_digests.contains(&d)))
        .collect();
    assert!(gets.is_empty(), "no layer downloaded: {gets:?}");
    for l in v["layers"].as_array().unwrap() {
        assert_eq!(l["origin"], "registry", "{l}");
        assert_eq!(l["from"], dest.as_str(), "{l}");
    }
    assert!(v["blobs"].as_array().unwrap().iter().all(|b| b["bytes"] == 0), "{v}");
    // Loopback, tiny context: far under the 0.3 s budget even on a busy machine (bounded loosely).
    assert!(took.as_secs_f64() < 5.0, "{took:?}");
}

#[test]
fn build_cache_changed_last_layer_is_the_only_one_uploaded() {
    let reg = Registry::plain();
    let dir = tmp();
    let base = push_base(&reg, dir.path());
    let first = dir.path().join("clone-1");
    context(&first, &base, "v1\n");
    let dest = format!("{}/app/web:main", reg.host());
    build(&first, &dir.path().join("cache-1"), &["-t", &dest, "-q"]).assert_success();

    let second = dir.path().join("clone-2");
    clone_of(&first, &second);
    std::fs::write(second.join("c/app.txt"), "v2\n").unwrap();
    let meta = dir.path().join("meta.json");
    let mark = reg.log_mark();
    let out = build(&second, &dir.path().join("cache-2"), &["-t", &dest, "--metadata-file", meta.to_str().unwrap()]);
    out.assert_success();
    let err = out.stderr();
    assert!(err.contains("layer 1/3") && err.contains("layer 2/3"), "{err}");
    assert_eq!(err.matches(&format!("reused from {dest}")).count(), 2, "{err}");
    assert!(err.contains("layer 3/3") && err.contains("built") && err.contains("new: none of the"), "{err}");
    let v = metadata(&meta);
    let origins: Vec<&str> = v["layers"].as_array().unwrap().iter().map(|l| l["origin"].as_str().unwrap()).collect();
    assert_eq!(origins, ["registry", "registry", "built"]);
    let new_layer = v["layers"][2]["digest"].as_str().unwrap().to_string();
    // Uploaded: the new layer (streamed while compressed) and the new config; nothing else.
    let uploaded: Vec<&serde_json::Value> =
        v["blobs"].as_array().unwrap().iter().filter(|b| b["outcome"] == "uploaded").collect();
    assert_eq!(uploaded.len(), 2, "{v}");
    assert!(uploaded.iter().any(|b| b["digest"] == new_layer.as_str()));
    let patches = uploads_since(&reg, mark).into_iter().filter(|l| l.method == "PATCH").count();
    assert_eq!(patches, 1, "one layer streamed");
    assert!(reg.has_blob("app/web", &new_layer));
}

#[test]
fn build_cache_from_another_repository_mounts_and_missing_candidates_are_named() {
    let reg = Registry::plain();
    let dir = tmp();
    let base = push_base(&reg, dir.path());
    let first = dir.path().join("clone-1");
    context(&first, &base, "v1\n");
    let one = format!("{}/team/one:1", reg.host());
    build(&first, &dir.path().join("cache-1"), &["-t", &one, "-q"]).assert_success();

    let second = dir.path().join("clone-2");
    clone_of(&first, &second);
    let two = format!("{}/team/two:1", reg.host());
    let missing = format!("{}/team/nothing:here", reg.host());
    let meta = dir.path().join("meta.json");
    let mark = reg.log_mark();
    let out = build(
        &second,
        &dir.path().join("cache-2"),
        &[
            "-t",
            &two,
            "--cache-from",
            &missing,
            "--cache-from",
            &one,
            "--cache-from",
            // Nothing listens here: the candidate cannot be read, the build goes on.
            "127.0.0.1:9/gone/image:1",
            "--retries",
            "0",
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    out.assert_success();
    let err = out.stderr();
    assert_eq!(err.matches(&format!("reused from {one}")).count(), 3, "{err}");
    assert!(err.contains(&format!("{missing}: ")), "the missing tag is named: {err}");
    assert!(err.contains("127.0.0.1:9/gone/image:1: "), "the unreachable one too: {err}");
    let v = metadata(&meta);
    let mounted = v["blobs"].as_array().unwrap().iter().filter(|b| b["outcome"] == "mounted").count();
    assert_eq!(mounted, 4, "the three layers mounted from team/one, the base's from base/img: {v}");
    // Plain-log mode names what happened: mounted blobs never get an "uploading" line (only the config does).
    assert_eq!(err.matches(" uploading (").count(), 1, "{err}");
    assert_eq!(err.matches(" mounted 0 B").count(), 4, "{err}");
    let mounts = uploads_since(&reg, mark).into_iter().filter(|l| l.path.contains("mount=")).count();
    assert!(mounts >= 3);
    assert!(uploads_since(&reg, mark).iter().all(|l| l.method != "PATCH"), "no layer streamed");

    // The same without --cache-from: team/one is no candidate, every layer is built and sent.
    let third = dir.path().join("clone-3");
    clone_of(&first, &third);
    let out = build(&third, &dir.path().join("cache-3"), &["-t", &format!("{}/team/three:1", reg.host())]);
    out.assert_success();
    assert_eq!(out.stderr().matches(" built (").count(), 3, "{}", out.stderr());

    // --no-cache-from: no candidate is read, the log says so.
    let out = build(&third, &dir.path().join("cache-4"), &["-t", &two, "--no-cache-from"]);
    out.assert_success();
    assert_eq!(out.stderr().matches("--no-cache-from: the registry is not asked").count(), 3, "{}", out.stderr());
}

#[test]
fn build_cache_a_base_another_tool_built_costs_no_pre_hash() {
    // A base pushed by skopeo (no `hoist build` in its history), nothing at the destination yet: the
    // cold build's layers are compressed straight away, and each says why nothing was looked up.
    let reg = Registry::plain();
    let dir = tmp();
    let layout = dir.path().join("base-layout");
    oci_layout(&layout, &LayoutSpec::new(7).layer_sizes(&[2000]).tag("1"));
    let base = format!("{}/base/foreign:1", reg.host());
    push_layout(&layout, "1", &base, &reg);
    let ctx = dir.path().join("ctx");
    context(&ctx, &base, "v1\n");
    let meta = dir.path().join("meta.json");
    let dest = format!("{}/app/cold:1", reg.host());
    build(&ctx, &dir.path().join("cache"), &["-t", &dest, "--metadata-file", meta.to_str().unwrap()]).assert_success();
    let v = metadata(&meta);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{v}");
    for l in layers {
        assert_eq!(l["origin"], "built", "{v}");
        let why = l["why"].as_str().unwrap();
        assert!(why.contains("not looked up") && why.contains(&base) && why.contains("another tool built"), "{why}");
    }
}

#[test]
fn build_cache_reuses_a_base_image_layer() {
    let reg = Registry::plain();
    let dir = tmp();
    // root:1 (scratch + os-release), then base:1 = root:1 + one COPY of `motd`; the app builds FROM
    // base:1 and COPYs the very same `motd` again: the same tar as base:1's second layer.
    let root = push_base(&reg, dir.path());
    let motd = |ctx: &Path, from: &str| {
        std::fs::create_dir_all(ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), format!("FROM {from}\nCOPY motd /etc/\nCMD [\"/x\"]\n")).unwrap();
        std::fs::write(ctx.join("motd"), "hello\n").unwrap();
    };
    let base = format!("{}/base/with-motd:1", reg.host());
    motd(&dir.path().join("base-2"), &root);
    build(&dir.path().join("base-2"), &dir.path().join("cache-b"), &["-t", &base, "-q"]).assert_success();
    let ctx = dir.path().join("ctx");
    motd(&ctx, &base);
    let meta = dir.path().join("meta.json");
    let dest = format!("{}/app/on-base:1", reg.host());
    let out = build(&ctx, &dir.path().join("cache"), &["-t", &dest, "--metadata-file", meta.to_str().unwrap()]);
    out.assert_success();
    let err = out.stderr();
    assert!(err.contains("layer 1/1 sha256:") && err.contains(&format!("reused from {base}")), "{err}");
    let v = metadata(&meta);
    assert_eq!(v["layers"][0]["origin"], "registry");
    assert_eq!(v["layers"][0]["from"], base.as_str());
    assert!(
        v["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["mediaType"] != "application/vnd.oci.image.config.v1+json")
            .all(|b| b["bytes"] == 0),
        "{v}"
    );
}

#[test]
fn build_copy_from_an_image_downloads_its_layers_with_progress() {
    let reg = Registry::plain();
    let dir = tmp();
    let base = push_base(&reg, dir.path());
    let src = dir.path().join("src");
    context(&src, &base, "v1\n");
    let image = format!("{}/team/files:1", reg.host());
    build(&src, &dir.path().join("cache-src"), &["-t", &image, "-q"]).assert_success();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM scratch\nCOPY --from={image} /b /b\n")).unwrap();
    let out =
        build(&ctx, &dir.path().join("cache"), &["--output", &format!("oci:{}", dir.path().join("out").display())]);
    out.assert_success();
    let err = out.stderr();
    // The image's four layers (the base's and three COPYs), each with a start and an end line.
    assert_eq!(err.matches(" downloading (").count(), 4, "{err}");
    assert_eq!(err.matches(" downloaded ").count(), 4, "{err}");
    // A second build finds them in the cache: nothing downloaded.
    let again =
        build(&ctx, &dir.path().join("cache"), &["--output", &format!("oci:{}", dir.path().join("out2").display())]);
    again.assert_success();
    assert!(!again.stderr().contains("downloading"), "{}", again.stderr());
}
