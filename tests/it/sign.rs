//! Signatures: what hoist signs, cosign 3 and cosign 2 verify (`--key … --insecure-ignore-tlog`); what
//! cosign signs, hoist verifies; keys made by either work in both; a wrong key, a tampered payload and a
//! signature of another digest fail; parallel signers lose no signature; `--sign` on build and push.
//! Everything against a real distribution registry on loopback.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

const KEY_PASSWORD: &str = "Kp-Walrus-73c1-Signing";

/// `hoist generate-key-pair` in `dir` → (cosign.key, cosign.pub).
fn hoist_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let mut cmd = Hoist::cmd();
    cmd.current_dir(dir).arg("generate-key-pair").env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
    Hoist::run_cmd(cmd, None).assert_success().assert_no_leak(KEY_PASSWORD);
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

/// `cosign generate-key-pair` (v3) in `dir` → (cosign.key, cosign.pub).
fn cosign_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let mut cmd = Command::new(require_go_tool("cosign"));
    cmd.current_dir(dir).arg("generate-key-pair").env("COSIGN_PASSWORD", KEY_PASSWORD);
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    assert!(out.status.success(), "cosign generate-key-pair: {}", String::from_utf8_lossy(&out.stderr));
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

/// Runs a cosign (`cosign` = v3, `cosign2` = v2) with a throwaway HOME and the key password.
fn cosign(tool: &str, args: &[&str]) -> std::process::Output {
    let home = scratch_dir("cosign-home");
    let mut cmd = Command::new(require_go_tool(tool));
    cmd.args(args)
        .env("HOME", &home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("COSIGN_PASSWORD", KEY_PASSWORD)
        .env("COSIGN_EXPERIMENTAL", "0")
        .env("TUF_ROOT", home.join(".sigstore"));
    run_with_timeout(cmd, None, TOOL_TIMEOUT)
}

/// `cosign verify --key PUB --insecure-ignore-tlog REF`: whether it passed, and what it said.
fn cosign_verify(tool: &str, public: &Path, reference: &str) -> (bool, String) {
    let out = cosign(tool, &["verify", "--key", public.to_str().unwrap(), "--insecure-ignore-tlog=true", reference]);
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[track_caller]
fn assert_cosign_verifies(public: &Path, reference: &str) {
    for tool in ["cosign", "cosign2"] {
        let (ok, text) = cosign_verify(tool, public, reference);
        assert!(ok, "{tool} verify {reference} failed:\n{text}");
    }
}

fn hoist_verify(public: &Path, reference: &str, extra: &[&str]) -> Output {
    let mut args = vec!["verify", reference, "--key", public.to_str().unwrap()];
    args.extend_from_slice(extra);
    Hoist::run(args)
}

fn hoist_sign(key: &Path, reference: &str, extra: &[&str]) -> Output {
    let mut cmd = Hoist::cmd();
    cmd.args(["sign", reference, "--key", key.to_str().unwrap()]).args(extra);
    cmd.env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
    Hoist::run_cmd(cmd, None)
}

/// Pushes a small image to `reg` as `repo:tag`; returns its digest.
fn push_image(reg: &Registry, work: &Path, seed: u64, repo: &str, tag: &str) -> String {
    let dir = work.join(format!("layout-{seed}"));
    let info = oci_layout(&dir, &LayoutSpec::new(seed).layer_sizes(&[3000]).tag("v1"));
    Hoist::run(["push", &format!("oci:{}:v1", dir.display()), &format!("{}/{repo}:{tag}", reg.host()), "-q"])
        .assert_success();
    info.manifest_digest
}

/// The `.sig` manifest of `digest` in `repo`, parsed.
fn sig_manifest(reg: &Registry, repo: &str, digest: &str) -> serde_json::Value {
    let tag = digest.replace(':', "-") + ".sig";
    let bytes = reg.manifest_bytes(repo, &tag).unwrap_or_else(|| panic!("no {tag} in {repo}"));
    serde_json::from_slice(&bytes).unwrap()
}

/// Uploads `bytes` as a blob of `repo` (plain registry, no auth); returns its digest.
fn put_blob(reg: &Registry, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let r = reg.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &HttpAuth::None, &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    let path = loc.split_once("://").map_or(loc.as_str(), |(_, rest)| &rest[rest.find('/').unwrap()..]).to_string();
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = reg.request("PUT", &format!("{path}{sep}digest={digest}"), &HttpAuth::None, &[], bytes);
    assert_eq!(r.status, 201, "{}", r.text());
    digest
}

fn put_manifest(reg: &Registry, repo: &str, tag: &str, manifest: &serde_json::Value) {
    let body = serde_json::to_vec(manifest).unwrap();
    let ct = manifest["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json");
    let r = reg.request("PUT", &format!("/v2/{repo}/manifests/{tag}"), &HttpAuth::None, &[("Content-Type", ct)], &body);
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn sign_hoist_signatures_verify_in_cosign_3_and_2_on_an_image_an_index_and_a_chart() {
    let reg = Registry::plain();
    let work = tmp();
    let (key, public) = hoist_keys(work.path());
    // An image, signed by tag (resolved by a HEAD, never a GET of the image).
    let image = push_image(&reg, work.path(), 301, "proj/app", "1.0");
    let mark = reg.log_mark();
    let out = hoist_sign(&key, &format!("{}/proj/app:1.0", reg.host()), &["-a", "env=prod"]);
    out.assert_success()
        .assert_stdout_contains(&format!("{}/proj/app@{image}", reg.host()))
        .assert_no_leak(KEY_PASSWORD);
    let image_gets: Vec<AccessLine> = reg
        .access_log_since(mark)
        .into_iter()
        .filter(|l| l.method == "GET" && l.manifest().is_some_and(|(_, r)| r == "1.0" || r == image))
        .collect();
    assert!(image_gets.is_empty(), "hoist sign read the image: {image_gets:?}");
    // An index, signed by digest.
    let idx_dir = work.path().join("index");
    let index = oci_index_layout(&idx_dir);
    Hoist::run(["push", &format!("oci:{}:latest", idx_dir.display()), &format!("{}/proj/multi:1", reg.host()), "-q"])
        .assert_success();
    hoist_sign(&key, &format!("{}/proj/multi@{}", reg.host(), index.index_digest), &[]).assert_success();
    // A chart, signed as it is pushed.
    let chart = work.path().join("demo");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: demo\nversion: 0.1.0\n").unwrap();
    std::fs::write(chart.join("templates/cm.yaml"), "kind: ConfigMap\n").unwrap();
    let mut cmd = Hoist::cmd();
    cmd.args(["chart", "push", chart.to_str().unwrap(), &format!("oci://{}/charts", reg.host())])
        .args(["--sign", "--signing-key", key.to_str().unwrap(), "--digest-file"])
        .arg(work.path().join("chart.digest"))
        .env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
    Hoist::run_cmd(cmd, None).assert_success().assert_stderr_contains("signed ");
    let chart_digest = std::fs::read_to_string(work.path().join("chart.digest")).unwrap().trim().to_string();

    for r in [
        format!("{}/proj/app:1.0", reg.host()),
        format!("{}/proj/multi@{}", reg.host(), index.index_digest),
        format!("{}/charts/demo@{chart_digest}", reg.host()),
    ] {
        assert_cosign_verifies(&public, &r);
        hoist_verify(&public, &r, &[]).assert_success();
    }
    // The annotation is in the payload, as cosign reads it: -a checks it in both tools.
    let app = format!("{}/proj/app:1.0", reg.host());
    let out = cosign(
        "cosign2",
        &["verify", "--key", public.to_str().unwrap(), "--insecure-ignore-tlog=true", "-a", "env=prod", &app],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    hoist_verify(&public, &app, &["-a", "env=prod"]).assert_success();
    hoist_verify(&public, &app, &["-a", "env=dev"])
        .assert_code(5)
        .assert_stderr_contains("lacks the annotations env=dev");
    // The .sig manifest is cosign's shape.
    let m = sig_manifest(&reg, "proj/app", &image);
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
    assert!(m["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].is_string());
}

#[test]
fn sign_cosign_signatures_and_keys_work_in_hoist() {
    let reg = Registry::plain();
    let work = tmp();
    let (ckey, cpub) = cosign_keys(work.path());
    let image = push_image(&reg, work.path(), 311, "proj/cos", "1");
    let r = format!("{}/proj/cos@{image}", reg.host());
    // cosign 2 writes the legacy .sig tag; hoist verifies it, annotations included.
    let out = cosign(
        "cosign2",
        &["sign", "--key", ckey.to_str().unwrap(), "--tlog-upload=false", "-y", "-a", "team=core", &r],
    );
    assert!(out.status.success(), "cosign2 sign: {}", String::from_utf8_lossy(&out.stderr));
    hoist_verify(&cpub, &r, &["-a", "team=core"]).assert_success();
    // cosign 3 writes the same legacy form when asked for the old format without a signing config.
    let three = push_image(&reg, work.path(), 313, "proj/cos3", "1");
    let r3 = format!("{}/proj/cos3@{three}", reg.host());
    let out = cosign(
        "cosign",
        &["sign", "--key", ckey.to_str().unwrap(), "--tlog-upload=false", "--new-bundle-format=false"]
            .into_iter()
            .chain(["--use-signing-config=false", "-y", "-a", "by=cosign3", r3.as_str()])
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "cosign 3 sign: {}", String::from_utf8_lossy(&out.stderr));
    hoist_verify(&cpub, &r3, &["-a", "by=cosign3"]).assert_success();
    let json = hoist_verify(&cpub, &r, &["--json"]);
    json.assert_success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["signatures"][0]["annotations"]["team"], "core");
    // cosign's key signs in hoist, and hoist's key verifies in cosign: the key formats agree both ways.
    let other = push_image(&reg, work.path(), 312, "proj/cos", "2");
    let r2 = format!("{}/proj/cos@{other}", reg.host());
    hoist_sign(&ckey, &r2, &[]).assert_success().assert_no_leak(KEY_PASSWORD);
    assert_cosign_verifies(&cpub, &r2);
    // A signature hoist appends keeps cosign's: both verify, two layers under the tag.
    let (hkey, hpub) = hoist_keys(&work.path().join("h").tap_mkdir());
    hoist_sign(&hkey, &r, &[]).assert_success();
    assert_eq!(sig_manifest(&reg, "proj/cos", &image)["layers"].as_array().unwrap().len(), 2);
    hoist_verify(&cpub, &r, &[]).assert_success();
    hoist_verify(&hpub, &r, &[]).assert_success();
    assert_cosign_verifies(&cpub, &r);
    assert_cosign_verifies(&hpub, &r);
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}
impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn sign_verify_fails_for_a_wrong_key_a_tampered_payload_and_another_digest() {
    let reg = Registry::plain();
    let work = tmp();
    let (key, public) = hoist_keys(work.path());
    let (_, wrong_pub) = hoist_keys(&work.path().join("other").tap_mkdir());
    let a = push_image(&reg, work.path(), 321, "proj/t", "a");
    let b = push_image(&reg, work.path(), 322, "proj/t", "b");
    let c = push_image(&reg, work.path(), 323, "proj/t", "c");
    let ra = format!("{}/proj/t@{a}", reg.host());
    hoist_sign(&key, &ra, &[]).assert_success();
    hoist_verify(&public, &ra, &[]).assert_success();

    // A wrong key.
    hoist_verify(&wrong_pub, &ra, &[]).assert_code(5).assert_stderr_contains("does not verify with this key");
    assert!(!cosign_verify("cosign2", &wrong_pub, &ra).0, "cosign accepted a wrong key");

    // A tampered payload: b's .sig made of a's signature over a payload edited to name b.
    let sig = sig_manifest(&reg, "proj/t", &a);
    let layer = &sig["layers"][0];
    let payload = reg.request(
        "GET",
        &format!("/v2/proj/t/blobs/{}", layer["digest"].as_str().unwrap()),
        &HttpAuth::None,
        &[],
        b"",
    );
    let edited = payload.text().replace(&a, &b);
    assert_ne!(edited, payload.text());
    let edited_digest = put_blob(&reg, "proj/t", edited.as_bytes());
    let mut tampered = sig.clone();
    tampered["layers"][0]["digest"] = edited_digest.clone().into();
    tampered["layers"][0]["size"] = edited.len().into();
    let cfg = serde_json::json!({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": [edited_digest]}, "config": {}});
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    tampered["config"]["digest"] = put_blob(&reg, "proj/t", &cfg_bytes).into();
    tampered["config"]["size"] = cfg_bytes.len().into();
    put_manifest(&reg, "proj/t", &format!("{}.sig", b.replace(':', "-")), &tampered);
    let rb = format!("{}/proj/t@{b}", reg.host());
    hoist_verify(&public, &rb, &[]).assert_code(5).assert_stderr_contains("does not verify with this key");
    assert!(!cosign_verify("cosign2", &public, &rb).0, "cosign accepted a tampered payload");

    // A valid signature of another digest: a's .sig manifest, as is, under c's tag.
    put_manifest(&reg, "proj/t", &format!("{}.sig", c.replace(':', "-")), &sig);
    let rc = format!("{}/proj/t@{c}", reg.host());
    hoist_verify(&public, &rc, &[])
        .assert_code(5)
        .assert_stderr_contains(&format!("the payload signs {a}, not this image"));
    assert!(!cosign_verify("cosign2", &public, &rc).0, "cosign accepted a signature of another digest");

    // No signature at all.
    let d = push_image(&reg, work.path(), 324, "proj/t", "d");
    hoist_verify(&public, &format!("{}/proj/t@{d}", reg.host()), &[])
        .assert_code(5)
        .assert_stderr_contains("no signatures found");
}

#[test]
fn sign_eight_parallel_signers_lose_no_signature() {
    let reg = Registry::plain();
    let work = tmp();
    let (key, public) = hoist_keys(work.path());
    let image = push_image(&reg, work.path(), 331, "proj/par", "1");
    let r = format!("{}/proj/par@{image}", reg.host());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (key, r) = (key.clone(), r.clone());
            std::thread::spawn(move || hoist_sign(&key, &r, &["-a", &format!("run={i}")]))
        })
        .collect();
    for h in handles {
        h.join().unwrap().assert_success();
    }
    let layers = sig_manifest(&reg, "proj/par", &image)["layers"].as_array().unwrap().clone();
    assert_eq!(layers.len(), 8, "signatures lost: {layers:#?}");
    // The referrer form too: eight signature referrers in the fallback tag sha256-<hex>.
    let fallback = reg.manifest_bytes("proj/par", &image.replace(':', "-")).expect("the fallback tag");
    let index: serde_json::Value = serde_json::from_slice(&fallback).unwrap();
    let sigs: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["artifactType"] == "application/vnd.dev.cosign.artifact.sig.v1+json")
        .collect();
    assert_eq!(sigs.len(), 8, "referrers lost: {index:#}");
    for i in 0..8 {
        hoist_verify(&public, &r, &["-a", &format!("run={i}")]).assert_success();
    }
    // Signing again with the same key and annotations adds nothing (the signature is deterministic).
    hoist_sign(&key, &r, &["-a", "run=3"]).assert_success().assert_stderr_contains("was there already");
    assert_eq!(sig_manifest(&reg, "proj/par", &image)["layers"].as_array().unwrap().len(), 8);
}

#[test]
fn sign_flag_on_build_and_push_signs_what_was_pushed() {
    let reg = Registry::plain();
    let work = tmp();
    let (key, public) = hoist_keys(work.path());
    // push --sign, two tags in one repository: one signature, verified by tag.
    let dir = work.path().join("layout");
    oci_layout(&dir, &LayoutSpec::new(341).layer_sizes(&[2000]).tag("v1"));
    let mut cmd = Hoist::cmd();
    cmd.args(["push", &format!("oci:{}:v1", dir.display())])
        .args([format!("{}/proj/pushed:1", reg.host()), format!("{}/proj/pushed:latest", reg.host())])
        .args(["--sign", "--signing-key", key.to_str().unwrap(), "--sign-annotation", "via=push"])
        .env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
    Hoist::run_cmd(cmd, None).assert_success();
    hoist_verify(&public, &format!("{}/proj/pushed:latest", reg.host()), &["-a", "via=push"]).assert_success();
    assert_cosign_verifies(&public, &format!("{}/proj/pushed:1", reg.host()));

    // build --sign with the key from HOIST_SIGNING_KEY (the PEM itself, as a CI/CD variable holds it).
    let ctx = work.path().join("ctx").tap_mkdir();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n").unwrap();
    std::fs::write(ctx.join("hello.txt"), "hi\n").unwrap();
    let mut cmd = Hoist::cmd();
    cmd.args(["build", ctx.to_str().unwrap(), "-t", &format!("{}/proj/built:1", reg.host()), "--sign"])
        .env("HOIST_SIGNING_KEY", std::fs::read_to_string(&key).unwrap())
        .env("COSIGN_PASSWORD", KEY_PASSWORD);
    Hoist::run_cmd(cmd, None).assert_success();
    hoist_verify(&public, &format!("{}/proj/built:1", reg.host()), &[]).assert_success();
    assert_cosign_verifies(&public, &format!("{}/proj/built:1", reg.host()));

    // A wrong password fails before anything is pushed.
    let mut cmd = Hoist::cmd();
    cmd.args(["push", &format!("oci:{}:v1", dir.display()), &format!("{}/proj/never:1", reg.host())])
        .args(["--sign", "--signing-key", key.to_str().unwrap()])
        .env("HOIST_SIGNING_PASSWORD", "not-the-password");
    Hoist::run_cmd(cmd, None)
        .assert_code(2)
        .assert_stderr_contains("wrong password")
        .assert_no_leak("not-the-password");
    assert!(reg.tags("proj/never").is_empty(), "pushed despite an unusable key");
}

#[test]
fn sign_generate_key_pair_is_cosign_readable_private_and_never_overwrites() {
    let work = tmp();
    let (key, public) = hoist_keys(work.path());
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&public).unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
    // cosign reads the private key with the password: its public-key command derives the same public key.
    let out = cosign("cosign", &["public-key", "--key", key.to_str().unwrap()]);
    assert!(out.status.success(), "cosign public-key: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), std::fs::read_to_string(&public).unwrap().trim());
    // Never overwritten.
    let mut cmd = Hoist::cmd();
    cmd.current_dir(work.path()).arg("generate-key-pair").env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
    Hoist::run_cmd(cmd, None).assert_code(2).assert_stderr_contains("never overwrites");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
}

#[test]
fn sign_each_form_alone_is_found_and_the_referrer_is_listed_by_oras() {
    let reg = Registry::plain();
    let work = tmp();
    let (key, public) = hoist_keys(work.path());
    let legacy = push_image(&reg, work.path(), 351, "proj/forms", "legacy");
    let referrer = push_image(&reg, work.path(), 352, "proj/forms", "referrer");
    let rl = format!("{}/proj/forms@{legacy}", reg.host());
    let rr = format!("{}/proj/forms@{referrer}", reg.host());
    hoist_sign(&key, &rl, &["--sig-format", "legacy"]).assert_success();
    hoist_sign(&key, &rr, &["--sig-format", "referrer"]).assert_success();
    assert!(reg.manifest_bytes("proj/forms", &legacy.replace(':', "-")).is_none(), "legacy only: no fallback tag");
    assert!(reg.manifest_bytes("proj/forms", &format!("{}.sig", referrer.replace(':', "-"))).is_none());
    let forms = |r: &str| -> Vec<String> {
        let out = hoist_verify(&public, r, &["--json"]);
        out.assert_success();
        let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
        v["signatures"].as_array().unwrap().iter().map(|s| s["form"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(forms(&rl), ["legacy"]);
    assert_eq!(forms(&rr), ["referrer"]);
    assert_cosign_verifies(&public, &rl);
    // cosign reads the referrer form when told to look for OCI 1.1 referrers.
    for tool in ["cosign", "cosign2"] {
        let out = cosign(
            tool,
            &["verify", "--experimental-oci11", "--key", public.to_str().unwrap(), "--insecure-ignore-tlog=true", &rr],
        );
        assert!(out.status.success(), "{tool} verify --experimental-oci11: {}", String::from_utf8_lossy(&out.stderr));
    }
    // oras lists the signature referrer with cosign's artifact type.
    let mut cmd = Command::new(require_go_tool("oras"));
    cmd.args(["discover", "--plain-http", "--format", "json", &rr]);
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "oras discover: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("application/vnd.dev.cosign.artifact.sig.v1+json"), "oras discover: {text}");
}

#[test]
fn sign_copy_carries_signatures_along_and_tag_sign_signs_in_place() {
    let reg = Registry::plain();
    let work = tmp();
    let (key, public) = hoist_keys(work.path());
    let image = push_image(&reg, work.path(), 361, "proj/src", "1");
    hoist_sign(&key, &format!("{}/proj/src@{image}", reg.host()), &["-a", "stage=built"]).assert_success();
    // Promotion by copy (no --sign): both signature forms arrive with the image and still verify.
    let dest = format!("{}/prod/app:1", reg.host());
    Hoist::run(["copy", &format!("{}/proj/src:1", reg.host()), &dest, "-q"]).assert_success();
    let out = hoist_verify(&public, &dest, &["-a", "stage=built", "--json"]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    let forms: Vec<&str> = v["signatures"].as_array().unwrap().iter().map(|s| s["form"].as_str().unwrap()).collect();
    assert_eq!(forms, ["legacy", "referrer"], "{v:#}");
    assert_cosign_verifies(&public, &dest);
    // Promotion by tag with --sign: one more signature (other annotations) on the same digest.
    let mut cmd = Hoist::cmd();
    cmd.args(["tag", &dest, "stable", "--sign", "--signing-key", key.to_str().unwrap()])
        .args(["--sign-annotation", "stage=promoted"])
        .env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
    Hoist::run_cmd(cmd, None).assert_success().assert_stderr_contains("signed ");
    hoist_verify(&public, &format!("{}/prod/app:stable", reg.host()), &["-a", "stage=promoted"]).assert_success();
    assert_eq!(sig_manifest(&reg, "prod/app", &image)["layers"].as_array().unwrap().len(), 2);
}

#[test]
fn sign_on_the_fake_harbor_the_referrer_is_kept_by_its_referrers_api() {
    let h = HarborFake::start(
        vec![FakeProject::new(1, "proj")],
        vec![FakeRobot::new("robot$proj+ci", "harbor-pw").can("proj", &["repository:pull", "repository:push"])],
    );
    let work = tmp();
    let (key, public) = hoist_keys(work.path());
    let layout = work.path().join("l");
    let info = oci_layout(&layout, &LayoutSpec::new(371).layer_sizes(&[1000]));
    let image = format!("{}/proj/app:1", h.host());
    let mut cmd = Hoist::cmd();
    cmd.args(["push", &format!("oci:{}", layout.display()), &image, "-u", "robot$proj+ci", "--password-stdin"])
        .args(["--sign", "--signing-key", key.to_str().unwrap()])
        .env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
    Hoist::run_cmd(cmd, Some(b"harbor-pw")).assert_success().assert_stderr_contains("listed by the registry");
    // Harbor keeps the list (OCI-Subject): no fallback tag; the .sig tag is there for cosign and podman.
    let tags = h.registry().tags("proj/app");
    assert!(tags.iter().all(|t| !t.starts_with("sha256-") || t.ends_with(".sig")), "{tags:?}");
    assert!(tags.contains(&format!("{}.sig", info.manifest_digest.replace(':', "-"))), "{tags:?}");
    let out = Hoist::run_with_stdin(
        ["verify", &image, "--key", public.to_str().unwrap(), "--json", "-u", "robot$proj+ci", "--password-stdin"],
        b"harbor-pw",
    );
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    let forms: Vec<&str> = v["signatures"].as_array().unwrap().iter().map(|s| s["form"].as_str().unwrap()).collect();
    assert_eq!(forms, ["legacy", "referrer"], "{v:#}");
    // Harbor classifies the referrer as a cosign signature.
    let acc = http::request(
        "GET",
        &h.host(),
        &format!("/api/v2.0/projects/proj/repositories/app/artifacts/{}/accessories", info.manifest_digest),
        None,
        &HttpAuth::Basic("robot$proj+ci".into(), "harbor-pw".into()),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(acc.status, 200, "{}", acc.text());
    assert!(acc.text().contains("signature.cosign"), "{}", acc.text());
}

#[test]
fn sign_generate_key_pair_prompts_on_a_terminal_without_echo() {
    // `script` gives hoist a pseudo-terminal; the password is typed twice and never echoed.
    let script = require_tool("script");
    let work = tmp();
    let typed = "Pty-Typed-Pass-Gecko-17";
    let feeder = format!("sleep 1; printf '%s\\n' {typed}; sleep 1; printf '%s\\n' {typed}; sleep 1");
    let mut cmd = Command::new("sh");
    cmd.current_dir(work.path()).arg("-c").arg(format!(
        "({feeder}) | {} -qec 'env -u HOIST_SIGNING_PASSWORD -u COSIGN_PASSWORD {} generate-key-pair' /dev/null",
        script.display(),
        Hoist::bin().display()
    ));
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Enter password for private key again"), "{text}");
    assert!(!text.contains(typed), "the typed password was echoed: {text}");
    // The typed password is the key's: cosign derives the same public key with it.
    let mut cmd = Command::new(require_go_tool("cosign"));
    cmd.args(["public-key", "--key"]).arg(work.path().join("cosign.key")).env("COSIGN_PASSWORD", typed);
    let pk = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    assert!(pk.status.success(), "{}", String::from_utf8_lossy(&pk.stderr));
    assert_eq!(
        String::from_utf8_lossy(&pk.stdout).trim(),
        std::fs::read_to_string(work.path().join("cosign.pub")).unwrap().trim()
    );
}
