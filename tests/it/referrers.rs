//! Referrers: `hoist attach` / `hoist referrers` / `copy` / `index create` / `inspect` against
//! distribution 2.8 (no referrers API: the fallback tag `sha256-<hex>`), the fake Harbor (referrers API,
//! `OCI-Subject`, Harbor's accessory types), a GitLab stand-in (a fault proxy answering `sha256-<hex>`
//! with the image itself, as GitLab's registry is reported to), distribution v3, and oras as the judge.
//! What was stored is read from the registries (raw HTTP) and from oras, never from hoist alone.

use std::path::Path;

use crate::harness::*;

const SBOM: &str = "application/spdx+json";
const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const EMPTY_CONFIG_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Pushes a small single-platform image (seeded) to `reference` on `reg` with skopeo; returns its digest.
fn image_on(reg: &Registry, reference: &str, seed: u64) -> String {
    let dir = tmp();
    let info = oci_layout(dir.path(), &LayoutSpec::new(seed).layer_sizes(&[1000]));
    push_layout(dir.path(), "latest", reference, reg);
    info.manifest_digest
}

/// A file holding `text`, kept alive by `dir`.
fn file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// `hoist attach REF --artifact-type T FILE:MT -a k=v…`; returns `host/repo@digest` of the artifact.
fn attach(reference: &str, artifact_type: &str, file: &str, extra: &[&str]) -> String {
    let mut args = vec!["attach", reference, "--artifact-type", artifact_type, file];
    args.extend(extra);
    let out = Hoist::run(&args);
    out.assert_success();
    let line = out.stdout().trim().to_string();
    assert!(line.contains("@sha256:"), "{out:?}");
    line
}

fn referrers_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["referrers"];
    all.extend(args);
    all.push("--json");
    let out = Hoist::run(&all);
    out.assert_success();
    serde_json::from_str(&out.stdout()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn digests(list: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> =
        list.as_array().unwrap().iter().map(|e| e["digest"].as_str().unwrap().to_string()).collect();
    v.sort();
    v
}

fn digest_of(reference: &str) -> String {
    reference.rsplit_once('@').unwrap().1.to_string()
}

/// The fallback index `sha256-<hex>` of `subject` in `repo`, read from the registry.
fn fallback_index(reg: &Registry, repo: &str, subject: &str) -> serde_json::Value {
    let tag = subject.replace(':', "-");
    let bytes = reg.manifest_bytes(repo, &tag).unwrap_or_else(|| panic!("no fallback tag {tag} in {repo}"));
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn attach_and_list_through_the_fallback_tag_on_distribution_2_8() {
    let reg = Registry::plain();
    let work = tmp();
    let subject = image_on(&reg, &format!("{}/app:1", reg.host()), 1);
    let sbom = file(work.path(), "sbom.spdx.json", r#"{"spdxVersion":"SPDX-2.3"}"#);
    let image = format!("{}/app:1", reg.host());
    let artifact = attach(&image, SBOM, &format!("{sbom}:{SBOM}"), &["-a", "org.example.kind=sbom"]);
    assert!(artifact.starts_with(&format!("{}/app@sha256:", reg.host())), "{artifact}");
    let a_digest = digest_of(&artifact);

    // The artifact manifest, as the registry stores it: OCI 1.1 with subject, artifactType, empty config.
    let m: serde_json::Value = serde_json::from_slice(&reg.manifest_bytes("app", &a_digest).unwrap()).unwrap();
    assert_eq!(m["artifactType"], SBOM);
    assert_eq!(m["subject"]["digest"], subject.as_str());
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
    assert_eq!(m["config"]["digest"], EMPTY_CONFIG_DIGEST);
    assert_eq!(m["layers"][0]["mediaType"], SBOM);
    assert_eq!(m["layers"][0]["annotations"]["org.opencontainers.image.title"], "sbom.spdx.json");
    assert!(reg.has_blob("app", EMPTY_CONFIG_DIGEST));

    // distribution 2.8 has no referrers API: the fallback tag is an index naming it, with its annotations.
    let idx = fallback_index(&reg, "app", &subject);
    assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(digests(&idx["manifests"]), vec![a_digest.clone()]);
    assert_eq!(idx["manifests"][0]["artifactType"], SBOM);
    assert_eq!(idx["manifests"][0]["annotations"]["org.example.kind"], "sbom");

    // Attaching the same content again: same digest, no duplicate entry.
    let again = attach(&image, SBOM, &format!("{sbom}:{SBOM}"), &["-a", "org.example.kind=sbom"]);
    assert_eq!(again, artifact);
    assert_eq!(fallback_index(&reg, "app", &subject)["manifests"].as_array().unwrap().len(), 1);

    // A signature of the SBOM: listed under it (the tree), not under the image.
    let sig = file(work.path(), "sig.json", r#"{"sig":"of the sbom"}"#);
    let s_digest = digest_of(&attach(&artifact, SIG, &sig, &[]));
    let v = referrers_json(&[&image]);
    assert_eq!(v["subject"], subject.as_str());
    assert_eq!(v["source"]["kind"], "fallback-tag");
    assert_eq!(digests(&v["referrers"]), vec![a_digest.clone()]);
    assert_eq!(v["referrers"][0]["artifactType"], SBOM);
    assert_eq!(digests(&v["referrers"][0]["referrers"]), vec![s_digest.clone()]);
    let text = Hoist::run(["referrers", &image]);
    text.assert_success();
    let lines: Vec<String> = text.stdout().lines().map(str::to_string).collect();
    assert_eq!(lines[0], format!("{}/app@{subject}", reg.host()), "{text:?}");
    assert_eq!(lines[1], format!("└── {SBOM}  {a_digest}"), "{text:?}");
    assert_eq!(lines[2], format!("    └── {SIG}  {s_digest}"), "{text:?}");

    // --artifact-type filters (client-side here: there is no API to ask).
    assert!(referrers_json(&[&image, "--artifact-type", SIG])["referrers"].as_array().unwrap().is_empty());
    assert_eq!(digests(&referrers_json(&[&image, "--artifact-type", SBOM])["referrers"]), vec![a_digest]);

    // inspect counts them.
    let out = Hoist::run(["inspect", &image]);
    out.assert_success().assert_stdout_contains("Referrers:  1");
    let out = Hoist::run(["inspect", &image, "--json"]);
    let j: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(j["referrers"], 1);

    // Nothing attached to another image: an empty list, not an error.
    let other = image_on(&reg, &format!("{}/app:2", reg.host()), 2);
    let v = referrers_json(&[&format!("{}/app@{other}", reg.host())]);
    assert!(v["referrers"].as_array().unwrap().is_empty(), "{v:#}");
}

#[test]
fn eight_parallel_attaches_through_the_fallback_tag_lose_nothing() {
    let reg = Registry::plain();
    let work = tmp();
    let image = format!("{}/app:1", reg.host());
    let subject = image_on(&reg, &image, 3);
    let mark = reg.log_mark();
    let files: Vec<String> =
        (0..8).map(|i| file(work.path(), &format!("doc{i}.json"), &format!("{{\"n\":{i}}}"))).collect();
    let handles: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (image, f) = (image.clone(), f.clone());
            std::thread::spawn(move || {
                let t = format!("application/vnd.example.doc{i}");
                digest_of(&attach(&image, &t, &f, &[]))
            })
        })
        .collect();
    let mut attached: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    attached.sort();
    attached.dedup();
    assert_eq!(attached.len(), 8);
    let idx = fallback_index(&reg, "app", &subject);
    assert_eq!(digests(&idx["manifests"]), attached, "every attach is in the fallback tag, once: {idx:#}");
    assert_eq!(digests(&referrers_json(&[&image])["referrers"]), attached);
    let tag = subject.replace(':', "-");
    let writes = reg.access_log_since(mark).iter().filter(|l| l.method == "PUT" && l.path.ends_with(&tag)).count();
    eprintln!("8 parallel attaches wrote the fallback tag {writes} times");
    assert!(writes >= 8, "each attach writes at least once ({writes})");
}

fn harbor() -> HarborFake {
    HarborFake::start(
        vec![FakeProject::new(1, "proj")],
        vec![FakeRobot::new("robot$proj+ci", "harbor-pw").can("proj", &["repository:pull", "repository:push"])],
    )
}

/// `hoist ARGS -u robot --password-stdin` against the fake Harbor.
fn on_harbor(args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-u", "robot$proj+ci", "--password-stdin"]);
    Hoist::run_with_stdin(&all, b"harbor-pw")
}

#[test]
fn fake_harbor_keeps_the_list_with_its_referrers_api() {
    let h = harbor();
    let work = tmp();
    let layout = work.path().join("l");
    let info = oci_layout(&layout, &LayoutSpec::new(4).layer_sizes(&[1000]));
    let image = format!("{}/proj/app:1", h.host());
    on_harbor(&["push", &format!("oci:{}", layout.display()), &image]).assert_success();
    let subject = info.manifest_digest;
    let mark = h.registry().log_mark();
    let mut attached = Vec::new();
    for (t, name) in [
        (SIG, "sig"),
        ("application/vnd.goharbor.harbor.sbom.v1", "sbom"),
        ("application/vnd.cncf.notary.signature", "notation"),
        ("application/vnd.example.report", "report"),
    ] {
        let f = file(work.path(), name, &format!("{{\"{name}\":1}}"));
        let out = on_harbor(&["attach", &image, "--artifact-type", t, &f]);
        out.assert_success()
            .assert_stderr_contains("listed by the registry (referrers API)")
            .assert_no_leak("harbor-pw");
        attached.push((t, digest_of(out.stdout().trim())));
    }
    // OCI-Subject came back: no fallback tag was read or written.
    let tag = subject.replace(':', "-");
    assert!(
        h.registry().tags("proj/app").iter().all(|t| !t.starts_with("sha256-")),
        "{:?}",
        h.registry().tags("proj/app")
    );
    assert!(h.registry().access_log_since(mark).iter().all(|l| !l.path.contains(&tag)));

    let mut all: Vec<String> = attached.iter().map(|(_, d)| d.clone()).collect();
    all.sort();
    let v = on_harbor(&["referrers", &image, "--json"]);
    v.assert_success();
    let v: serde_json::Value = serde_json::from_str(&v.stdout()).unwrap();
    assert_eq!(v["source"]["kind"], "api");
    assert_eq!(digests(&v["referrers"]), all);
    // The registry filters (OCI-Filters-Applied: artifactType).
    let v = on_harbor(&["referrers", &image, "--json", "--artifact-type", SIG]);
    let v: serde_json::Value = serde_json::from_str(&v.stdout()).unwrap();
    assert_eq!(digests(&v["referrers"]), vec![attached[0].1.clone()]);
    let raw = http::request(
        "GET",
        &h.host(),
        &format!("/v2/proj/app/referrers/{subject}?artifactType={}", SIG.replace('+', "%2B")),
        None,
        &h.registry().auth_for(&["repository:proj/app:pull"]),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("oci-filters-applied"), Some("artifactType"));

    // Harbor's accessory types, as its API shows them.
    let kinds = h.accessories("proj", "app", &subject, ("robot$proj+ci", "harbor-pw"));
    let want: Vec<(String, String)> = attached
        .iter()
        .zip(["signature.cosign", "harbor.sbom", "signature.notation", "subject.accessory"])
        .map(|((_, d), k)| (d.clone(), k.to_string()))
        .collect();
    assert_eq!(kinds, want);
    let out = on_harbor(&["inspect", &image]);
    out.assert_success().assert_stdout_contains("Referrers:  4");
}

#[test]
fn a_registry_resolving_the_fallback_tag_to_the_image_lists_nothing_and_is_never_overwritten() {
    // The GitLab report (oras-go #1396): `manifests/sha256-<hex>` answers with the image itself.
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let subject = image_on(&reg, &format!("{}/app:1", reg.host()), 5);
    let bytes = reg.manifest_bytes("app", &subject).unwrap();
    let tag_path = format!("/v2/app/manifests/{}", subject.replace(':', "-"));
    for method in ["GET", "HEAD"] {
        proxy.add(
            Rule::new(
                Matcher::method(method).path(PathMatch::Exact(tag_path.clone())),
                Fault::status_with(
                    200,
                    &[
                        ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                        ("Docker-Content-Digest", &subject),
                    ],
                    std::str::from_utf8(&bytes).unwrap(),
                ),
            )
            .always(),
        );
    }
    let image = format!("{}/app:1", proxy.host());
    let out = Hoist::run(["referrers", &image, "--json"]);
    out.assert_success().assert_stderr_contains("answers the fallback tag");
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["source"]["kind"], "none");
    assert!(v["referrers"].as_array().unwrap().is_empty());

    let work = tmp();
    let f = file(work.path(), "sbom.json", "{}");
    let out = Hoist::run(["attach", &image, "--artifact-type", SBOM, &f]);
    out.assert_success().assert_stderr_contains("not listed as a referrer");
    let artifact = digest_of(out.stdout().trim());
    assert!(reg.manifest_bytes("app", &artifact).is_some(), "the artifact is stored by digest");
    assert!(proxy.requests_matching("PUT", &tag_path).is_empty(), "the fallback tag is never written");
    assert_eq!(reg.manifest_bytes("app", &subject).unwrap(), bytes);
    assert!(reg.tags("app").iter().all(|t| !t.starts_with("sha256-")));
}

#[test]
fn oras_discover_lists_what_hoist_attached_and_hoist_lists_what_oras_attached() {
    let oras = require_go_tool("oras");
    let reg = Registry::plain();
    let work = tmp();
    let image = format!("{}/app:1", reg.host());
    let subject = image_on(&reg, &image, 6);
    let f = file(work.path(), "sbom.json", r#"{"by":"hoist"}"#);
    let ours = digest_of(&attach(&image, SBOM, &format!("{f}:{SBOM}"), &[]));

    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(&oras);
        cmd.args(args).current_dir(work.path()).env("HOME", work.path());
        let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
        assert!(out.status.success(), "oras {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let found = run(&["discover", "--plain-http", "--format", "json", &format!("{}/app@{subject}", reg.host())]);
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    let listed: Vec<&str> =
        found["referrers"].as_array().unwrap().iter().map(|r| r["digest"].as_str().unwrap()).collect();
    assert_eq!(listed, vec![ours.as_str()], "{found:#}");
    assert_eq!(found["referrers"][0]["artifactType"], SBOM);

    std::fs::write(work.path().join("vex.json"), r#"{"by":"oras"}"#).unwrap();
    let out = run(&[
        "attach",
        "--plain-http",
        "--artifact-type",
        "application/vnd.example.vex",
        "--format",
        "json",
        &image,
        "vex.json:application/json",
    ]);
    let theirs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let theirs = theirs["digest"].as_str().unwrap().to_string();
    let v = referrers_json(&[&image]);
    let mut want = vec![ours, theirs.clone()];
    want.sort();
    assert_eq!(digests(&v["referrers"]), want);
    let vex = v["referrers"].as_array().unwrap().iter().find(|r| r["digest"] == theirs.as_str()).unwrap();
    assert_eq!(vex["artifactType"], "application/vnd.example.vex");
}

/// Attaches an SBOM to `subject_ref`, a signature to the SBOM, and writes a cosign-style
/// `sha256-<hex>.sig` tag (any manifest: copying does not read it); returns (sbom, sig) digests.
fn decorate(reg: &Registry, repo: &str, subject: &str, work: &Path) -> (String, String) {
    let subject_ref = format!("{}/{repo}@{subject}", reg.host());
    let f = file(work, &format!("sbom-{}.json", &subject[7..15]), &format!("{{\"of\":\"{subject}\"}}"));
    let sbom = digest_of(&attach(&subject_ref, SBOM, &f, &[]));
    let f = file(work, &format!("sig-{}.json", &subject[7..15]), &format!("{{\"sig\":\"{sbom}\"}}"));
    let sig = digest_of(&attach(&format!("{}/{repo}@{sbom}", reg.host()), SIG, &f, &[]));
    (sbom, sig)
}

/// The tree `hoist referrers --json` gives, as (depth, digest, artifactType), sorted.
fn flat_tree(reference: &str) -> Vec<(usize, String, String)> {
    fn walk(nodes: &serde_json::Value, depth: usize, out: &mut Vec<(usize, String, String)>) {
        for n in nodes.as_array().into_iter().flatten() {
            out.push((depth, n["digest"].as_str().unwrap().into(), n["artifactType"].as_str().unwrap_or("").into()));
            walk(&n["referrers"], depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(&referrers_json(&[reference])["referrers"], 0, &mut out);
    out.sort();
    out
}

#[test]
fn copy_keeps_every_attached_artifact_across_registries_and_within_one() {
    let a = Registry::plain();
    let b = Registry::plain();
    let work = tmp();
    let layout = work.path().join("idx");
    let idx = oci_index_layout(&layout);
    push_layout(&layout, &idx.tag, &format!("{}/team/app:1", a.host()), &a);
    let child = idx.images[1].1.manifest_digest.clone();
    decorate(&a, "team/app", &idx.index_digest, work.path());
    decorate(&a, "team/app", &child, work.path());
    // A legacy cosign signature tag on the index (oras pushes any manifest under it).
    let cosign_tag = format!("{}.sig", idx.index_digest.replace(':', "-"));
    let oras = require_go_tool("oras");
    std::fs::write(work.path().join("payload.json"), "{}").unwrap();
    let mut cmd = std::process::Command::new(&oras);
    cmd.args(["push", "--plain-http", &format!("{}/team/app:{cosign_tag}", a.host()), "payload.json"])
        .current_dir(work.path())
        .env("HOME", work.path());
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    assert!(out.status.success(), "oras push: {}", String::from_utf8_lossy(&out.stderr));
    let sig_manifest = a.manifest_bytes("team/app", &cosign_tag).unwrap();

    let src_index = format!("{}/team/app@{}", a.host(), idx.index_digest);
    let src_child = format!("{}/team/app@{child}", a.host());
    let want_index = flat_tree(&src_index);
    let want_child = flat_tree(&src_child);
    assert_eq!(want_index.len(), 2);
    assert_eq!(want_child.len(), 2);

    // Across registries: streamed, the fallback tags rebuilt at the destination.
    let out = Hoist::run(["copy", &format!("{}/team/app:1", a.host()), &format!("{}/prod/app:1", b.host())]);
    out.assert_success().assert_stderr_contains("copied 4 attached artifacts and 1 cosign tag");
    assert_eq!(flat_tree(&format!("{}/prod/app@{}", b.host(), idx.index_digest)), want_index);
    assert_eq!(flat_tree(&format!("{}/prod/app@{child}", b.host())), want_child);
    assert_eq!(b.manifest_bytes("prod/app", &cosign_tag).unwrap(), sig_manifest);
    assert_eq!(fallback_index(&b, "prod/app", &idx.index_digest)["manifests"].as_array().unwrap().len(), 1);

    // Within one registry: mounted, listed at the new repository too.
    let out = Hoist::run(["copy", &format!("{}/team/app:1", a.host()), &format!("{}/prod/app:1", a.host())]);
    out.assert_success();
    assert_eq!(flat_tree(&format!("{}/prod/app@{}", a.host(), idx.index_digest)), want_index);
    assert_eq!(flat_tree(&format!("{}/prod/app@{child}", a.host())), want_child);

    // --no-referrers: the image alone.
    let out = Hoist::run([
        "copy",
        &format!("{}/team/app:1", a.host()),
        &format!("{}/bare/app:1", b.host()),
        "--no-referrers",
    ]);
    out.assert_success();
    assert!(flat_tree(&format!("{}/bare/app@{}", b.host(), idx.index_digest)).is_empty());
    assert!(b.tags("bare/app").iter().all(|t| t == "1"), "{:?}", b.tags("bare/app"));

    // To the fake Harbor (referrers API): listed by the registry, no fallback tag written there.
    let h = harbor();
    let out = on_harbor(&["copy", &format!("{}/team/app:1", a.host()), &format!("{}/proj/app:1", h.host())]);
    out.assert_success();
    let v = on_harbor(&["referrers", &format!("{}/proj/app@{child}", h.host()), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&v.stdout()).unwrap();
    assert_eq!(v["source"]["kind"], "api");
    assert_eq!(v["referrers"].as_array().unwrap().len(), 1);
    assert_eq!(v["referrers"][0]["referrers"].as_array().unwrap().len(), 1, "{v:#}");
    assert!(h.registry().tags("proj/app").iter().all(|t| !t.starts_with("sha256-") || t.ends_with(".sig")));
}

#[test]
fn index_create_keeps_what_is_attached_to_its_images() {
    let reg = Registry::plain();
    let work = tmp();
    let mut subjects = Vec::new();
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let dir = work.path().join(arch);
        let info = oci_layout(&dir, &LayoutSpec::new(80 + i as u64).platform("linux", arch).layer_sizes(&[900]));
        push_layout(&dir, "latest", &format!("{}/build-{arch}/app:1", reg.host()), &reg);
        let (sbom, _) = decorate(&reg, &format!("build-{arch}/app"), &info.manifest_digest, work.path());
        subjects.push((arch.to_string(), info.manifest_digest, sbom));
    }
    let out = Hoist::run([
        "index",
        "create",
        &format!("{}/release/app:1", reg.host()),
        &format!("{}/build-amd64/app:1", reg.host()),
        &format!("{}/build-arm64/app:1", reg.host()),
    ]);
    out.assert_success();
    for (arch, digest, sbom) in &subjects {
        let tree = flat_tree(&format!("{}/release/app@{digest}", reg.host()));
        assert_eq!(tree.len(), 2, "{arch}: {tree:?}");
        assert!(tree.iter().any(|(d, x, t)| *d == 0 && x == sbom && t == SBOM), "{arch}: {tree:?}");
    }
}

#[test]
fn distribution_v3_attach_and_list() {
    let reg = Registry::start(RegistryOpts::plain().distribution_v3());
    let work = tmp();
    let image = format!("{}/app:1", reg.host());
    let subject = image_on(&reg, &image, 9);
    // What distribution v3 does with the referrers API (found out here, asserted so a change shows).
    let probe =
        http::request("GET", &reg.host(), &format!("/v2/app/referrers/{subject}"), None, &HttpAuth::None, &[], b"")
            .unwrap();
    eprintln!("distribution v3: GET /v2/app/referrers/<digest> → {}", probe.status);
    let f = file(work.path(), "sbom.json", "{}");
    let out = Hoist::run(["attach", &image, "--artifact-type", SBOM, &f]);
    out.assert_success();
    let artifact = digest_of(out.stdout().trim());
    // Found out here: v3.1.2 has no referrers API (404) and sends no OCI-Subject, so the fallback tag
    // is used. Should a later v3 serve the API, this fails: switch the assertions and docs/referrers.md.
    assert_eq!(probe.status, 404, "distribution v3 now answers the referrers API: {probe:?}");
    out.assert_stderr_contains("listed in the fallback tag");
    let v = referrers_json(&[&image]);
    assert_eq!(v["source"]["kind"], "fallback-tag");
    assert_eq!(digests(&v["referrers"]), vec![artifact.clone()]);
    assert_eq!(digests(&fallback_index(&reg, "app", &subject)["manifests"]), vec![artifact]);
}
