//! `hoist build -t` uploads each new layer while it is compressed: the image is the one a build to an
//! OCI layout makes (and skopeo reads it back byte for byte), the report counts streamed layers as
//! uploaded, a layer the registry already had as skipped, a stream that breaks falls back to the
//! layer file with the normal retries, and a proxy's body cap turns the stream into chunks.

use std::path::Path;

use crate::harness::proxy::{Fault, FaultProxy, Matcher, Rule};
use crate::harness::*;

/// A context whose first layer is ~6 MiB (half random, half text: two 4 MiB gzip members) and whose
/// second is one small file.
fn context(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY big.bin /data/\nCOPY small.txt /etc/\nCMD [\"/x\"]\n")
        .unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut big = Vec::with_capacity(6 << 20);
    while big.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    while big.len() < 6 << 20 {
        big.extend_from_slice(format!("line {} of a compressible text\n", big.len()).as_bytes());
    }
    std::fs::write(dir.join("big.bin"), big).unwrap();
    std::fs::write(dir.join("small.txt"), "small\n").unwrap();
}

/// `hoist build CTX ARGS…` with its own (empty unless reused) layer cache and a fixed epoch.
fn build(ctx: &Path, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Hoist::cmd();
    cmd.env("HOIST_CACHE_DIR", cache).env("SOURCE_DATE_EPOCH", "1700000000");
    cmd.arg("build").arg(ctx).args(args);
    Hoist::run_cmd(cmd, None)
}

fn digest_of(out: &Output) -> String {
    out.stdout().trim().rsplit_once('@').expect("REF@digest on stdout").1.to_string()
}

fn blobs(meta: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
    v["blobs"].as_array().unwrap().clone()
}

struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    /// A context, and the same build written to an OCI layout (tag 1) with a cold cache.
    fn new() -> (Work, String) {
        let w = Work { dir: tmp() };
        context(&w.ctx());
        let out = build(&w.ctx(), &w.path("cache-layout"), &["--output", &format!("oci:{}:1", w.layout().display())]);
        out.assert_success();
        let digest = digest_of(&out);
        (w, digest)
    }
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
    fn ctx(&self) -> std::path::PathBuf {
        self.path("ctx")
    }
    fn layout(&self) -> std::path::PathBuf {
        self.path("layout")
    }
    /// skopeo reads `reference` back from `reg` exactly as the layout has it.
    fn assert_same_as_layout(&self, reg: &Registry, reference: &str) {
        let copy = self.path(&format!("copy-{}", reference.replace(['/', ':'], "-")));
        Skopeo::new(reg).copy_to_layout(reference, &copy);
        assert_same_image(&self.layout(), Some("1"), &copy, None);
    }
}

#[test]
fn stream_cold_build_pushes_the_image_a_layout_build_makes() {
    let reg = Registry::plain();
    let (w, layout_digest) = Work::new();
    let meta = w.path("meta.json");
    let dest = format!("{}/app/stream:1", reg.host());
    let out = build(&w.ctx(), &w.path("cache"), &["-t", &dest, "--metadata-file", meta.to_str().unwrap()]);
    out.assert_success();
    assert_eq!(digest_of(&out), layout_digest, "the same image as the build to an OCI layout");
    let err = out.stderr();
    assert_eq!(err.matches("uploading while it is compressed").count(), 2, "{err}");
    assert!(err.contains("3 blobs: 3 uploaded"), "{err}");
    let b = blobs(&meta);
    assert_eq!(b.len(), 3);
    for blob in &b {
        assert_eq!(blob["outcome"], "uploaded", "{blob}");
        assert_eq!(blob["bytes"], blob["size"], "{blob}");
    }
    // The layers went as PATCHes (the stream), the config as a PUT.
    let log = reg.access_log();
    let patches = log.iter().filter(|l| l.method == "PATCH" && l.path.contains("/app/stream/blobs/uploads/")).count();
    assert_eq!(patches, 2, "one streaming PATCH per layer");
    w.assert_same_as_layout(&reg, "app/stream:1");

    // The same image pushed from the layout: same digest, and nothing streamed.
    let pushed =
        Hoist::run(["push", &format!("oci:{}:1", w.layout().display()), &format!("{}/app/plain:1", reg.host())]);
    pushed.assert_success();
    assert_eq!(digest_of(&pushed), layout_digest);

    // A rebuild that misses the layer cache streams again, but the registry had every layer: the
    // uploads are dropped and the report says skipped.
    // (--no-cache-from: otherwise the destination's tag is a candidate and nothing is streamed at all,
    // see build_cache.rs.)
    let again = build(
        &w.ctx(),
        &w.path("cache"),
        &["-t", &dest, "--no-cache", "--no-cache-from", "--metadata-file", meta.to_str().unwrap()],
    );
    again.assert_success();
    assert_eq!(digest_of(&again), layout_digest);
    assert_eq!(again.stderr().matches("was already in the registry").count(), 2, "{}", again.stderr());
    assert!(blobs(&meta).iter().all(|b| b["outcome"] == "skipped" && b["bytes"] == 0), "{:?}", blobs(&meta));
    // A warm rebuild takes the layers from the cache and never streams.
    let warm = build(&w.ctx(), &w.path("cache"), &["-t", &dest, "--metadata-file", meta.to_str().unwrap()]);
    warm.assert_success();
    assert!(!warm.stderr().contains("compressed"), "{}", warm.stderr());
    assert!(blobs(&meta).iter().all(|b| b["outcome"] == "skipped"));
}

#[test]
fn stream_broken_mid_layer_falls_back_to_the_layer_file() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let (w, layout_digest) = Work::new();
    // The first streaming PATCH (layer #1, written first with -j 1) is cut after 200,000 bytes.
    let cut = proxy.add(Rule::new(Matcher::method("PATCH"), Fault::cut_body(200_000)));
    let meta = w.path("meta.json");
    let dest = format!("{}/app/fallback:1", proxy.host());
    let out = build(&w.ctx(), &w.path("cache"), &["-t", &dest, "-j", "1", "--metadata-file", meta.to_str().unwrap()]);
    out.assert_success();
    assert_eq!(proxy.fired(cut), 1);
    assert_eq!(digest_of(&out), layout_digest);
    let err = out.stderr();
    assert!(
        err.contains("uploading layer #1 while compressing it failed") && err.contains("sent again from its file"),
        "{err}"
    );
    assert!(err.contains("3 blobs: 3 uploaded"), "{err}");
    assert!(blobs(&meta).iter().all(|b| b["outcome"] == "uploaded"));
    // The fallback sent the finished file in one PUT.
    let layer_puts = proxy
        .requests_matching("PUT", "/blobs/uploads/")
        .into_iter()
        .filter(|r| r.body_len.unwrap_or(0) > 1 << 20 && r.status == Some(201))
        .count();
    assert_eq!(layer_puts, 1, "{}", proxy.log_text());
    w.assert_same_as_layout(&reg, "app/fallback:1");
}

#[test]
fn stream_through_a_body_cap_goes_on_in_chunks() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let (w, layout_digest) = Work::new();
    let cap = 1_048_576;
    proxy.add(Rule::new(Matcher::any(), Fault::max_body(cap)).always());
    let dest = format!("{}/app/capped:1", proxy.host());
    let out = build(&w.ctx(), &w.path("cache"), &["-t", &dest, "-j", "1"]);
    out.assert_success();
    assert_eq!(digest_of(&out), layout_digest);
    let err = out.stderr();
    assert!(!err.contains("failed"), "the stream itself adapts: {err}");
    assert_eq!(err.matches("--chunk-size 1MiB").count(), 1, "{err}");
    // The streaming PATCH (no length) was refused, then chunks of a known length passed.
    let patches = proxy.requests_matching("PATCH", "/blobs/uploads/");
    assert!(patches.iter().any(|r| r.body_len.is_none() && r.status == Some(413)), "{}", proxy.log_text());
    assert!(patches.iter().filter(|r| r.status == Some(202)).all(|r| r.body_len.is_some_and(|l| l <= cap)));
    w.assert_same_as_layout(&reg, "app/capped:1");

    // With --chunk-size the stream is chunked from the start: no 413 at all.
    proxy.clear_log();
    let dest = format!("{}/app/chunked:1", proxy.host());
    let out = build(&w.ctx(), &w.path("cache-2"), &["-t", &dest, "--chunk-size", "512KiB"]);
    out.assert_success();
    assert_eq!(digest_of(&out), layout_digest);
    assert!(proxy.requests().iter().all(|r| r.status != Some(413)), "{}", proxy.log_text());
    assert!(proxy.requests_matching("PATCH", "/blobs/uploads/").len() >= 8, "{}", proxy.log_text());
    w.assert_same_as_layout(&reg, "app/chunked:1");
}
