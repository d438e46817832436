//! Layers from the parallel gzip writer (4 MiB blocks, each one gzip member by libdeflate, or several
//! when runs of it are incompressible and stored; docs/compression.md) read back by every reader the
//! suite has — skopeo, umoci, buildah and crane, each of which checks the layer against its digest and
//! its diff_id — no more than 5% above zlib level 1's size, and the same bytes whatever the number of
//! cores or `--jobs`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::skopeo::{check, clean_command, run};
use crate::harness::{copy_to_layout, require_go_tool, require_tool, run_with_timeout, tmp, umoci_unpack, Hoist};
use crate::harness::{sha256_digest, Registry};

/// An xorshift generator: the same numbers everywhere.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// 9 MiB that compresses like binaries and text (words, numbers, runs of noise from an xorshift
/// generator): three 4 MiB blocks, so the layer holds three gzip members.
fn mixed_bytes() -> Vec<u8> {
    let words: [&[u8]; 8] = [b"static ", b"return ", b"0x7fff ", b"libc.so.6 ", b"\n", b"GLIBC_2.34 ", b"{ ", b"} "];
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::with_capacity(9 << 20);
    while out.len() < 9 << 20 {
        let x = next();
        match x % 8 {
            0 => out.extend((0..(x >> 8) % 200).map(|i| (x >> (i % 56)) as u8 ^ i as u8)),
            1 => out.extend_from_slice(format!("{} ", x % 1_000_000).as_bytes()),
            _ => out.extend_from_slice(words[(x >> 4) as usize % words.len()]),
        }
    }
    out.truncate(9 << 20);
    out
}

/// `n` bytes of noise: what encrypted or already compressed files look like to deflate.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut next = xorshift(seed);
    (0..n).map(|_| (next() >> 24) as u8).collect()
}

/// (compressed, uncompressed) bytes of each gzip member of `stream`, each read alone (CRC checked).
fn members(mut stream: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        let before = stream.len();
        let mut back = Vec::new();
        flate2::bufread::GzDecoder::new(&mut stream).read_to_end(&mut back).unwrap();
        out.push((before - stream.len(), back.len()));
    }
    out
}

/// The size of `data` gzipped by zlib itself at level 1 (Python's `zlib` module is zlib).
fn zlib_1_size(data: &[u8]) -> usize {
    let mut cmd = Command::new(require_tool("python3"));
    cmd.args([
        "-c",
        "import sys, zlib; c = zlib.compressobj(1, zlib.DEFLATED, 31); d = sys.stdin.buffer.read(); \
         print(len(c.compress(d) + c.flush()))",
    ]);
    let out = tool_with_stdin(cmd, Some(data.to_vec()), "python3 zlib");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("python3 printed a size")
}

/// A context: `FROM scratch`, the 9 MiB file and a small one copied to /data.
fn context(dir: &Path) -> Vec<u8> {
    let big = mixed_bytes();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("files/big.bin"), &big).unwrap();
    std::fs::write(dir.join("files/small.txt"), "small\n").unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY files/ /data/\n").unwrap();
    big
}

/// The registry's stored blob (filesystem storage of the harness's distribution).
fn stored_blob(reg: &Registry, digest: &str) -> Vec<u8> {
    let hex = digest.trim_start_matches("sha256:");
    let path = reg.storage_dir().join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

fn tool(cmd: Command, what: &str) -> std::process::Output {
    tool_with_stdin(cmd, None, what)
}

fn tool_with_stdin(cmd: Command, stdin: Option<Vec<u8>>, what: &str) -> std::process::Output {
    let out = run_with_timeout(cmd, stdin, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn multi_member_layers_round_trip_through_skopeo_umoci_buildah_and_crane() {
    let reg = Registry::plain();
    let work = tmp();
    let ctx = work.path().join("ctx");
    let big = context(&ctx);
    let image = format!("{}/compress/rt:1", reg.host());
    Hoist::run(["build", ctx.to_str().unwrap(), "--no-cache", "-t", &image]).assert_success();

    // The layer is one gzip stream of several members whose tar is the config's diff_id.
    let manifest = json_of(&reg.manifest_bytes("compress/rt", "1").expect("manifest pushed"));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let blob = stored_blob(&reg, layers[0]["digest"].as_str().unwrap());
    let config = json_of(&stored_blob(&reg, manifest["config"]["digest"].as_str().unwrap()));
    let diff_id = config["rootfs"]["diff_ids"][0].as_str().unwrap().to_string();
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar).unwrap();
    assert_eq!(sha256_digest(&tar), diff_id);
    let mut first_member = Vec::new();
    flate2::read::GzDecoder::new(&blob[..]).read_to_end(&mut first_member).unwrap();
    assert!(
        first_member.len() == 4 << 20 && tar.len() > 9 << 20,
        "expected 4 MiB members: first {} of {}",
        first_member.len(),
        tar.len()
    );

    // skopeo (containers/image, Go's gzip): decompressing copy; the uncompressed layer is the diff_id.
    let dir = work.path().join("skopeo-dir");
    let mut cmd = crate::harness::skopeo::skopeo_cmd();
    cmd.args(["copy", "--src-tls-verify=false", "--dest-decompress", &format!("docker://{image}")])
        .arg(format!("dir:{}", dir.display()));
    check("skopeo copy --dest-decompress", run(cmd));
    let hex = diff_id.trim_start_matches("sha256:");
    let plain = std::fs::read(dir.join(hex)).unwrap_or_else(|e| panic!("skopeo wrote no blob named {hex}: {e}"));
    assert!(plain == tar, "skopeo's decompressed layer differs");

    // umoci (checks the diff_id as it unpacks).
    let layout = work.path().join("layout");
    copy_to_layout(&image, &reg, &layout);
    let rootfs = umoci_unpack(&layout, "1", &work.path().join("bundle"));
    assert!(std::fs::read(rootfs.join("data/big.bin")).unwrap() == big, "umoci: data/big.bin differs");
    assert_eq!(std::fs::read_to_string(rootfs.join("data/small.txt")).unwrap(), "small\n");

    // buildah (containers/storage: pulls, verifies the diff_id, mounts the container's rootfs).
    require_tool("buildah");
    let store = work.path().join("buildah");
    let buildah = || {
        let mut cmd = clean_command("buildah");
        cmd.args(["--storage-driver", "vfs", "--root"]).arg(store.join("root")).arg("--runroot").arg(store.join("run"));
        cmd
    };
    let mut cmd = buildah();
    cmd.args(["from", "--tls-verify=false", "--pull-always", "-q", &format!("docker://{image}")]);
    let container = String::from_utf8(tool(cmd, "buildah from").stdout).unwrap().trim().to_string();
    let mut cmd = buildah();
    cmd.args(["mount", &container]);
    let mnt = PathBuf::from(String::from_utf8(tool(cmd, "buildah mount").stdout).unwrap().trim());
    let read = std::fs::read(mnt.join("data/big.bin"));
    let mut cmd = buildah();
    cmd.args(["rm", &container]);
    tool(cmd, "buildah rm");
    assert!(read.expect("buildah's rootfs holds data/big.bin") == big, "buildah: data/big.bin differs");

    // crane (go-containerregistry): validate recomputes every digest and diff_id; export flattens.
    let crane = require_go_tool("crane");
    let mut cmd = Command::new(&crane);
    cmd.args(["validate", "--insecure", "--remote", &image]);
    let out = tool(cmd, "crane validate");
    assert!(String::from_utf8_lossy(&out.stdout).contains("PASS"), "crane validate: {out:?}");
    let exported = work.path().join("export.tar");
    let mut cmd = Command::new(&crane);
    cmd.args(["export", "--insecure", &image]).arg(&exported);
    tool(cmd, "crane export");
    let mut archive = tar::Archive::new(std::fs::File::open(&exported).unwrap());
    let mut found = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy().trim_start_matches('/') == "data/big.bin" {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            assert!(bytes == big, "crane export: data/big.bin differs");
            found = true;
        }
    }
    assert!(found, "crane export has no data/big.bin");
}

#[test]
fn stored_runs_round_trip_through_skopeo_umoci_and_crane_within_5_percent_of_zlib_1() {
    // 3 MiB of text-like bytes, 6 MiB of noise, 2 MiB of text-like bytes, as one layer (11 MiB: three
    // blocks, the noise stored).
    let reg = Registry::plain();
    let work = tmp();
    let ctx = work.path().join("ctx");
    let text = mixed_bytes();
    let files = [
        ("a.txt", text[..3 << 20].to_vec()),
        ("b.bin", noise(6 << 20, 11)),
        ("c.txt", text[3 << 20..5 << 20].to_vec()),
    ];
    std::fs::create_dir_all(ctx.join("files")).unwrap();
    for (name, bytes) in &files {
        std::fs::write(ctx.join("files").join(name), bytes).unwrap();
    }
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY files/ /data/\n").unwrap();
    let image = format!("{}/compress/stored:1", reg.host());
    Hoist::run(["build", ctx.to_str().unwrap(), "--no-cache", "-t", &image]).assert_success();

    let manifest = json_of(&reg.manifest_bytes("compress/stored", "1").expect("manifest pushed"));
    let blob = stored_blob(&reg, manifest["layers"][0]["digest"].as_str().unwrap());
    let config = json_of(&stored_blob(&reg, manifest["config"]["digest"].as_str().unwrap()));
    let diff_id = config["rootfs"]["diff_ids"][0].as_str().unwrap().to_string();
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar).unwrap();
    assert_eq!(sha256_digest(&tar), diff_id);
    // The noise went out stored: members of at least 1 MiB whose compressed size is the input plus
    // deflate's framing (5 bytes per 64 KiB stored block) and gzip's (18 bytes). (Before, a block of
    // text and noise was one deflated member: only the all-noise block looked like this.)
    let members = members(&blob);
    let stored: usize = members
        .iter()
        .filter(|&&(c, u)| u >= 1 << 20 && c >= u && c <= u + u / 65535 * 5 + 5 + 18)
        .map(|(_, u)| u)
        .sum();
    assert!(stored >= 5 << 20, "expected ~6 MiB in stored members: {members:?}");
    assert!(members.len() > 3, "text and noise in separate members: {members:?}");
    // No more than 5% above zlib's level 1 on the same tar.
    let zlib = zlib_1_size(&tar);
    assert!(blob.len() * 100 <= zlib * 105, "layer {} bytes, zlib level 1 {zlib}", blob.len());

    // skopeo (Go's gzip): the decompressed layer is the diff_id's tar.
    let dir = work.path().join("skopeo-dir");
    let mut cmd = crate::harness::skopeo::skopeo_cmd();
    cmd.args(["copy", "--src-tls-verify=false", "--dest-decompress", &format!("docker://{image}")])
        .arg(format!("dir:{}", dir.display()));
    check("skopeo copy --dest-decompress", run(cmd));
    let plain =
        std::fs::read(dir.join(diff_id.trim_start_matches("sha256:"))).expect("skopeo wrote the diff_id's blob");
    assert!(plain == tar, "skopeo's decompressed layer differs");
    // umoci (checks the diff_id as it unpacks).
    let layout = work.path().join("layout");
    copy_to_layout(&image, &reg, &layout);
    let rootfs = umoci_unpack(&layout, "1", &work.path().join("bundle"));
    for (name, bytes) in &files {
        assert!(std::fs::read(rootfs.join("data").join(name)).unwrap() == *bytes, "umoci: data/{name} differs");
    }
    // crane validate recomputes every digest and diff_id.
    let mut cmd = Command::new(require_go_tool("crane"));
    cmd.args(["validate", "--insecure", "--remote", &image]);
    let out = tool(cmd, "crane validate");
    assert!(String::from_utf8_lossy(&out.stdout).contains("PASS"), "crane validate: {out:?}");
}

/// The layout's manifest digest for `tag` (index.json) and its one layer's digest.
fn layout_digests(layout: &Path) -> (String, String) {
    let index = json_of(&std::fs::read(layout.join("index.json")).unwrap());
    let manifest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let hex = manifest.trim_start_matches("sha256:");
    let m = json_of(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap());
    (manifest, m["layers"][0]["digest"].as_str().unwrap().to_string())
}

#[test]
fn layer_bytes_do_not_depend_on_cores_or_jobs() {
    let work = tmp();
    let ctx = work.path().join("ctx");
    context(&ctx);
    // And 5 MiB of noise, which is stored: the stored-or-deflated choice must not depend on them either.
    std::fs::write(ctx.join("files/noise.bin"), noise(5 << 20, 5)).unwrap();
    let build = |name: &str, one_core: bool, jobs: &[&str]| {
        let layout = work.path().join(name);
        let mut cmd = if one_core {
            // One CPU in the affinity mask: available_parallelism() is 1, so one block is compressed at a time.
            let mut cmd = Command::new(require_tool("taskset"));
            crate::harness::clean_env(&mut cmd, &crate::harness::scratch_dir("hoist-home"));
            cmd.args(["-c", "0"]).arg(Hoist::bin());
            cmd
        } else {
            Hoist::cmd()
        };
        cmd.args(["build", ctx.to_str().unwrap(), "--no-cache"])
            .args(jobs)
            .arg("--output")
            .arg(format!("oci:{}:1", layout.display()));
        Hoist::run_cmd(cmd, None).assert_success();
        layout_digests(&layout)
    };
    let single = build("one-core", true, &["--jobs", "1"]);
    let default = build("default", false, &[]);
    assert_eq!(single, default, "one core and --jobs 1 against every core and the default --jobs");
}
