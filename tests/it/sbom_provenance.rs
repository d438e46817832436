//! SLSA provenance on `hoist build --provenance`: the statement's fields from a GitLab CI variable set,
//! attached as a referrer of the pushed image (a real distribution registry on loopback, listed in the
//! fallback tag), signed with `--sign` so that cosign 3 and cosign 2 `verify-attestation --type
//! slsaprovenance1` pass, the same bytes on a rebuild, and `hoist verify --provenance`.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

const KEY_PASSWORD: &str = "Kp-Otter-41d9-Provenance";
const BUILD_ARG_SECRET: &str = "Ba-Heron-88e2-FromEnv";

fn hoist_keys(dir: &Path) {
    let mut cmd = Hoist::cmd();
    cmd.current_dir(dir).arg("generate-key-pair").env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
    Hoist::run_cmd(cmd, None).assert_success().assert_no_leak(KEY_PASSWORD);
}

/// A GitLab job's variables (a branch pipeline).
const CI_VARS: &[(&str, &str)] = &[
    ("GITLAB_CI", "true"),
    ("CI_PROJECT_URL", "https://gitlab.example.com/team/app"),
    ("CI_PROJECT_NAME", "app"),
    ("CI_COMMIT_REF_NAME", "feature-x"),
    ("CI_COMMIT_REF_SLUG", "feature-x"),
    ("CI_COMMIT_BRANCH", "feature-x"),
    ("CI_COMMIT_SHA", "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"),
    ("CI_COMMIT_SHORT_SHA", "4f1c2d3e"),
    ("CI_COMMIT_TIMESTAMP", "2026-01-02T03:04:05+00:00"),
    ("CI_SERVER_URL", "https://gitlab.example.com"),
    ("CI_RUNNER_ID", "42"),
    ("CI_JOB_URL", "https://gitlab.example.com/team/app/-/jobs/1001"),
];

fn cosign(tool: &str, args: &[&str]) -> std::process::Output {
    let home = scratch_dir("cosign-home");
    let mut cmd = Command::new(require_go_tool(tool));
    cmd.args(args)
        .env("HOME", &home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("COSIGN_EXPERIMENTAL", "0")
        .env("TUF_ROOT", home.join(".sigstore"));
    run_with_timeout(cmd, None, TOOL_TIMEOUT)
}

#[test]
fn provenance_from_ci_variables_is_attached_signed_verified_by_cosign_and_reproducible() {
    let reg = Registry::plain();
    let work = tmp();
    hoist_keys(work.path());
    let base_layout = work.path().join("base");
    oci_layout(&base_layout, &LayoutSpec::new(71).layer_sizes(&[4000]).tag("1"));
    let base_ref = format!("{}/base/img:1", reg.host());
    Skopeo::new(&reg).preserve_digests().push_layout(&base_layout, "1", &base_ref);
    let base_digest = sha256_digest(&reg.manifest_bytes("base/img", "1").expect("the base is in the registry"));

    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {base_ref}\nARG VERSION\nARG TOKEN\nCOPY app.txt /app/\n"))
        .unwrap();
    std::fs::write(ctx.join("app.txt"), "app\n").unwrap();
    let dest = format!("{}/team/app:1", reg.host());
    let build = |level: &str, file: &Path| {
        let mut cmd = Hoist::cmd();
        cmd.current_dir(work.path())
            .args(["build", "ctx", "-t", &dest, "--build-arg", "VERSION=1.2", "--build-arg", "TOKEN"])
            .arg(format!("--provenance={level}"))
            .arg("--provenance-file")
            .arg(file)
            .args(["--sign", "--signing-key", "cosign.key"])
            .env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD)
            .env("TOKEN", BUILD_ARG_SECRET);
        for (k, v) in CI_VARS {
            cmd.env(k, v);
        }
        let out = Hoist::run_cmd(cmd, None);
        out.assert_success()
            .assert_stderr_contains("provenance ")
            .assert_no_leak(KEY_PASSWORD)
            .assert_no_leak(BUILD_ARG_SECRET);
        out.stdout().trim().rsplit_once('@').unwrap().1.to_string()
    };
    let file = work.path().join("provenance.json");
    let digest = build("min", &file);
    let bytes = std::fs::read(&file).unwrap();
    let s: serde_json::Value = serde_json::from_slice(&bytes).unwrap();

    // The statement's fields.
    assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(s["subject"][0]["name"], format!("{}/team/app", reg.host()));
    assert_eq!(s["subject"][0]["digest"]["sha256"], digest.strip_prefix("sha256:").unwrap());
    let def = &s["predicate"]["buildDefinition"];
    let ext = &def["externalParameters"];
    assert_eq!(ext["source"]["repository"], "https://gitlab.example.com/team/app");
    assert_eq!(ext["source"]["ref"], "feature-x");
    assert_eq!(ext["dockerfile"], "ctx/Dockerfile");
    assert_eq!(ext["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(ext["buildArgNames"], serde_json::json!(["TOKEN", "VERSION"]));
    assert!(ext["buildArgs"].is_null(), "values at min: {ext}");
    let deps = def["resolvedDependencies"].as_array().unwrap();
    assert_eq!(deps[0]["uri"], "git+https://gitlab.example.com/team/app@refs/heads/feature-x");
    assert_eq!(deps[0]["digest"]["gitCommit"], "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c");
    assert_eq!(deps[1]["uri"], format!("oci://{base_ref}"));
    assert_eq!(deps[1]["digest"]["sha256"], base_digest.strip_prefix("sha256:").unwrap());
    let run = &s["predicate"]["runDetails"];
    assert_eq!(run["builder"]["id"], "https://gitlab.example.com/admin/runners/42");
    assert_eq!(run["builder"]["version"]["hoist"], env!("CARGO_PKG_VERSION"));
    assert_eq!(run["metadata"]["invocationId"], "https://gitlab.example.com/team/app/-/jobs/1001");
    assert!(run["metadata"]["startedOn"].is_null(), "no times at min: {run}");

    // Attached: the statement and the signed envelope are referrers; the .att tag is cosign's.
    let listed = Hoist::run(["referrers", &dest, "--json"]);
    listed.assert_success();
    let v: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
    let kinds: Vec<&str> =
        v["referrers"].as_array().unwrap().iter().filter_map(|r| r["artifactType"].as_str()).collect();
    assert!(kinds.contains(&"application/vnd.in-toto+json"), "{v}");
    assert!(kinds.contains(&"application/vnd.dsse.envelope.v1+json"), "{v}");
    let statement_ref = v["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["artifactType"] == "application/vnd.in-toto+json")
        .unwrap();
    assert_eq!(statement_ref["annotations"]["in-toto.io/predicate-type"], "https://slsa.dev/provenance/v1");
    let att = reg.manifest_bytes("team/app", &format!("{}.att", digest.replace(':', "-"))).expect("the .att tag");
    let att: serde_json::Value = serde_json::from_slice(&att).unwrap();
    assert_eq!(att["layers"].as_array().unwrap().len(), 1);
    assert_eq!(att["layers"][0]["mediaType"], "application/vnd.dsse.envelope.v1+json");

    // cosign 3 and 2 verify the attestation with the public key.
    let public = work.path().join("cosign.pub");
    for tool in ["cosign", "cosign2"] {
        let out = cosign(
            tool,
            &[
                "verify-attestation",
                "--key",
                public.to_str().unwrap(),
                "--type",
                "slsaprovenance1",
                "--insecure-ignore-tlog=true",
                &format!("{}/team/app@{digest}", reg.host()),
            ],
        );
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{tool} verify-attestation failed:\n{text}");
    }
    // Another key does not verify it.
    let other = work.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    hoist_keys(&other);
    let out = cosign(
        "cosign2",
        &[
            "verify-attestation",
            "--key",
            other.join("cosign.pub").to_str().unwrap(),
            "--type",
            "slsaprovenance1",
            "--insecure-ignore-tlog=true",
            &format!("{}/team/app@{digest}", reg.host()),
        ],
    );
    assert!(!out.status.success(), "cosign verified with another key");

    // A rebuild gives the same image and the same statement bytes; the .att tag gains nothing.
    let file2 = work.path().join("provenance2.json");
    assert_eq!(build("min", &file2), digest);
    assert_eq!(std::fs::read(&file2).unwrap(), bytes, "the statement is not reproducible");
    let att2 = reg.manifest_bytes("team/app", &format!("{}.att", digest.replace(':', "-"))).unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&att2).unwrap()["layers"].as_array().unwrap().len(), 1);

    // max: literal build-arg values (never the one taken from the environment) and the times.
    let file3 = work.path().join("provenance3.json");
    build("max", &file3);
    let s3: serde_json::Value = serde_json::from_slice(&std::fs::read(&file3).unwrap()).unwrap();
    let ext3 = &s3["predicate"]["buildDefinition"]["externalParameters"];
    assert_eq!(ext3["buildArgs"], serde_json::json!({"VERSION": "1.2"}));
    assert!(s3["predicate"]["runDetails"]["metadata"]["startedOn"].is_string());
    assert!(!String::from_utf8_lossy(&std::fs::read(&file3).unwrap()).contains(BUILD_ARG_SECRET));

    // hoist verify --provenance: the subject matches; source, commit, builder and base are printed.
    let out = Hoist::run(["verify", &dest, "--provenance", "--key", public.to_str().unwrap()]);
    out.assert_success()
        .assert_stdout_contains("https://gitlab.example.com/team/app")
        .assert_stdout_contains("4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c")
        .assert_stdout_contains("https://gitlab.example.com/admin/runners/42")
        .assert_stdout_contains(&format!("{base_ref}@{base_digest}"));
    // Without a key: the unsigned statement referrer.
    Hoist::run(["verify", &dest, "--provenance"])
        .assert_success()
        .assert_stdout_contains("https://gitlab.example.com/admin/runners/42");
    // With another key, the signed statement does not hold.
    let out = Hoist::run(["verify", &dest, "--provenance", "--key", other.join("cosign.pub").to_str().unwrap()]);
    out.assert_code(5).assert_stderr_contains("does not verify with this key");
}

#[test]
fn provenance_needs_a_destination_and_the_file_alone_attaches_nothing() {
    let work = tmp();
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a.txt /\n").unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    let out_dir = work.path().join("out");
    let out =
        Hoist::run(["build", ctx.to_str().unwrap(), "--output", &format!("oci:{}", out_dir.display()), "--provenance"]);
    out.assert_code(2).assert_stderr_contains("--provenance attaches to what is pushed");
    let file = work.path().join("p.json");
    Hoist::run([
        "build",
        ctx.to_str().unwrap(),
        "--output",
        &format!("oci:{}", out_dir.display()),
        "--provenance-file",
        file.to_str().unwrap(),
    ])
    .assert_success();
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
    assert!(s["subject"][0]["digest"]["sha256"].is_string());
}

#[test]
fn sbom_of_the_added_files_lists_what_syft_lists_in_spdx_and_cyclonedx_and_is_reproducible() {
    let reg = Registry::plain();
    let work = tmp();
    let ctx = work.path().join("ctx");
    // A Go binary built here (no dependencies: the module proxy is off), a package-lock.json, a wheel's
    // dist-info.
    let src = work.path().join("gosrc");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/hello\n\ngo 1.22\n").unwrap();
    std::fs::write(src.join("main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n")
        .unwrap();
    std::fs::create_dir_all(ctx.join("usr/local/bin")).unwrap();
    let mut go = Command::new(require_tool("go"));
    go.current_dir(&src)
        .args(["build", "-o"])
        .arg(ctx.join("usr/local/bin/hello"))
        .arg(".")
        .env("GOFLAGS", "-buildvcs=false")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", work.path().join("gocache"))
        .env("HOME", work.path());
    let out = run_with_timeout(go, None, TOOL_TIMEOUT);
    assert!(out.status.success(), "go build: {}", String::from_utf8_lossy(&out.stderr));
    let go_version = go_version();
    std::fs::create_dir_all(ctx.join("app")).unwrap();
    std::fs::write(
        ctx.join("app/package-lock.json"),
        r#"{"name":"app","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"app","version":"1.0.0"},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/@types/node":{"version":"20.1.0"}}}"#,
    )
    .unwrap();
    let dist = ctx.join("usr/lib/python3/site-packages/six-1.16.0.dist-info");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("METADATA"), "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\n").unwrap();
    std::fs::write(dist.join("RECORD"), "six.py,,\n").unwrap();
    std::fs::write(work.path().join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    let dest = format!("{}/team/sbom:1", reg.host());
    let build = |file: &Path| {
        let mut cmd = Hoist::cmd();
        cmd.current_dir(work.path())
            .args(["build", "ctx", "-f", "Dockerfile", "-t", &dest, "--sbom", "--sbom-file"])
            .arg(file)
            .env("SOURCE_DATE_EPOCH", "1700000000");
        let out = Hoist::run_cmd(cmd, None);
        out.assert_success().assert_stderr_contains("SBOM (5 packages)");
        out.stdout().trim().rsplit_once('@').unwrap().1.to_string()
    };
    let file = work.path().join("cdx.json");
    let digest = build(&file);

    // The referrers: one SPDX and one CycloneDX manifest, each one layer of that media type.
    let listed = Hoist::run(["referrers", &dest, "--json"]);
    listed.assert_success();
    let v: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
    let mut docs = std::collections::BTreeMap::new();
    for r in v["referrers"].as_array().unwrap() {
        let kind = r["artifactType"].as_str().unwrap().to_string();
        let m: serde_json::Value =
            serde_json::from_slice(&reg.manifest_bytes("team/sbom", r["digest"].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 1, "{m}");
        assert_eq!(m["layers"][0]["mediaType"].as_str().unwrap(), kind);
        let path = format!("/v2/team/sbom/blobs/{}", m["layers"][0]["digest"].as_str().unwrap());
        let got = reg.request("GET", &path, &HttpAuth::None, &[], b"");
        assert_eq!(got.status, 200, "{}", got.text());
        let blob = got.body;
        docs.insert(
            kind,
            (r["digest"].as_str().unwrap().to_string(), serde_json::from_slice::<serde_json::Value>(&blob).unwrap()),
        );
    }
    let (spdx_ref, spdx) = &docs["application/spdx+json"];
    let (cdx_ref, cdx) = &docs["application/vnd.cyclonedx+json"];
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(cdx["specVersion"], "1.6");
    assert_eq!(cdx["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let spdx_purls: std::collections::BTreeSet<String> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str().map(str::to_string))
        .collect();
    let cdx_purls: std::collections::BTreeSet<String> =
        cdx["components"].as_array().unwrap().iter().map(|c| c["purl"].as_str().unwrap().to_string()).collect();
    assert_eq!(spdx_purls, cdx_purls);
    let expected: std::collections::BTreeSet<String> = [
        "pkg:golang/example.com/hello".to_string(),
        format!("pkg:golang/stdlib@{go_version}"),
        "pkg:npm/%40types/node@20.1.0".to_string(),
        "pkg:npm/left-pad@1.3.0".to_string(),
        "pkg:pypi/six@1.16.0".to_string(),
    ]
    .into();
    assert_eq!(cdx_purls, expected);
    let found_at: Vec<&str> =
        cdx["components"].as_array().unwrap().iter().map(|c| c["properties"][0]["value"].as_str().unwrap()).collect();
    assert!(found_at.contains(&"/usr/local/bin/hello") && found_at.contains(&"/app/package-lock.json"), "{found_at:?}");

    // syft on the same pushed image: every purl it lists, hoist lists; hoist's extras are the
    // lockfile's packages (syft catalogues installed node_modules in images, not lockfiles).
    let syft = syft_purls(&dest);
    assert!(!syft.is_empty());
    let missing: Vec<&String> = syft.difference(&cdx_purls).collect();
    assert!(missing.is_empty(), "syft lists {missing:?}, hoist does not (hoist: {cdx_purls:?})");
    let extra: Vec<&String> = cdx_purls.difference(&syft).collect();
    assert!(extra.iter().all(|p| p.starts_with("pkg:npm/")), "hoist lists {extra:?}, syft does not");

    // Both formats pass the SPDX and CycloneDX projects' own validators (PyPI: spdx-tools,
    // cyclonedx-python-lib[json-validation]).
    let spdx_file = work.path().join("spdx.json");
    std::fs::write(&spdx_file, serde_json::to_vec(spdx).unwrap()).unwrap();
    assert_valid_spdx(&spdx_file);
    let cdx_file = work.path().join("cdx-referrer.json");
    std::fs::write(&cdx_file, serde_json::to_vec(cdx).unwrap()).unwrap();
    for f in [&cdx_file, &file] {
        assert_valid_cyclonedx(f);
    }

    // --sbom-file: CycloneDX with GitLab's properties.
    let f: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let props: std::collections::BTreeMap<String, String> = f["metadata"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["value"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(props["gitlab:meta:schema_version"], "1");
    assert_eq!(props["gitlab:container_scanning:image:name"], format!("{}/team/sbom", reg.host()));
    assert_eq!(props["gitlab:container_scanning:image:tag"], "1");

    // Reproducible: a rebuild attaches the same two manifests (same digests) and writes the same file.
    let file2 = work.path().join("cdx2.json");
    assert_eq!(build(&file2), digest);
    assert_eq!(std::fs::read(&file2).unwrap(), std::fs::read(&file).unwrap());
    let listed = Hoist::run(["referrers", &dest, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
    let mut again: Vec<String> =
        v["referrers"].as_array().unwrap().iter().map(|r| r["digest"].as_str().unwrap().to_string()).collect();
    again.sort();
    let mut before = vec![spdx_ref.clone(), cdx_ref.clone()];
    before.sort();
    assert_eq!(again, before);
}

/// A context whose added files hold two npm packages (a package-lock.json).
fn npm_context(dir: &Path) -> std::path::PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(ctx.join("app")).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY app /app/\n").unwrap();
    std::fs::write(
        ctx.join("app/package-lock.json"),
        r#"{"name":"app","version":"1.0.0","lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0"},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/is-odd":{"version":"3.0.1"}}}"#,
    )
    .unwrap();
    ctx
}

/// `hoist build CTX -t DEST EXTRA…` with the CI variables `ci` (and `env`), as the fake Harbor's robot
/// when `robot` is set.
fn ci_build(ctx: &Path, dest: &str, extra: &[&str], ci: &[(&str, &str)], robot: bool) -> crate::harness::Output {
    let mut cmd = Hoist::cmd();
    cmd.arg("build").arg(ctx).args(["-t", dest]).args(extra).env("SOURCE_DATE_EPOCH", "1700000000");
    if robot {
        cmd.args(["-u", "robot$proj+ci", "--password-stdin"]);
    }
    for (k, v) in ci {
        cmd.env(k, v);
    }
    Hoist::run_cmd(cmd, robot.then_some(&b"harbor-pw"[..]))
}

/// Harbor's accessories of `digest` in `proj/<repo>` (its API): (digest, type) pairs.
fn harbor_accessories(h: &HarborFake, repo: &str, digest: &str) -> Vec<(String, String)> {
    h.accessories("proj", repo, digest, ("robot$proj+ci", "harbor-pw"))
}

#[test]
fn on_harbor_a_ci_build_gets_provenance_by_default_and_the_sbom_in_harbors_form_too() {
    let h = HarborFake::start(
        vec![FakeProject::new(1, "proj")],
        vec![FakeRobot::new("robot$proj+ci", "harbor-pw").can("proj", &["repository:pull", "repository:push"])],
    );
    let work = tmp();
    let ctx = npm_context(work.path());
    let dest = format!("{}/proj/app:1", h.host());
    // A CI job, no --provenance: Harbor answers the referrers API, so provenance is attached at min.
    let out = ci_build(&ctx, &dest, &["--sbom"], CI_VARS, true);
    out.assert_success()
        .assert_stderr_contains("listed by the registry")
        .assert_stderr_contains("Harbor's SBOM form")
        .assert_no_leak("harbor-pw");
    let digest = out.stdout().trim().rsplit_once('@').unwrap().1.to_string();
    let reg = h.registry();
    assert!(reg.tags("proj/app").iter().all(|t| !t.starts_with("sha256-")), "{:?}", reg.tags("proj/app"));

    // What the referrers API lists: the statement (min: no times), SPDX, CycloneDX and Harbor's form.
    let listed = on_harbor_run(&["referrers", &dest, "--json"]);
    listed.assert_success();
    let v: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
    assert_eq!(v["source"]["kind"], "api", "{v}");
    let by_type = |t: &str| -> serde_json::Value {
        v["referrers"].as_array().unwrap().iter().find(|r| r["artifactType"] == t).cloned().unwrap_or_else(|| {
            panic!("no {t} referrer: {v}");
        })
    };
    let statement = by_type("application/vnd.in-toto+json");
    let spdx = by_type("application/spdx+json");
    let harbor_form = by_type("application/vnd.goharbor.harbor.sbom.v1");
    by_type("application/vnd.cyclonedx+json");
    assert_eq!(v["referrers"].as_array().unwrap().len(), 4, "{v}");
    let manifest = |d: &serde_json::Value| -> serde_json::Value {
        serde_json::from_slice(&reg.manifest_bytes("proj/app", d["digest"].as_str().unwrap()).unwrap()).unwrap()
    };
    let blob = |d: &serde_json::Value| -> Vec<u8> {
        let path = format!("/v2/proj/app/blobs/{}", d.as_str().unwrap());
        let r = reg.get_authed(&path, &["repository:proj/app:pull"], &[]);
        assert_eq!(r.status, 200);
        r.body
    };
    let s: serde_json::Value = serde_json::from_slice(&blob(&manifest(&statement)["layers"][0]["digest"])).unwrap();
    assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(s["subject"][0]["digest"]["sha256"], digest.strip_prefix("sha256:").unwrap());
    assert_eq!(s["predicate"]["buildDefinition"]["externalParameters"]["source"]["ref"], "feature-x");
    assert!(s["predicate"]["runDetails"]["metadata"]["startedOn"].is_null(), "auto is min");

    // Harbor's form: config media type and artifactType Harbor's, one SPDX JSON layer (the same bytes as
    // the SPDX referrer's), the subject the image.
    let m = manifest(&harbor_form);
    assert_eq!(m["artifactType"], "application/vnd.goharbor.harbor.sbom.v1");
    assert_eq!(m["config"]["mediaType"], "application/vnd.goharbor.harbor.sbom.v1");
    assert_eq!(m["subject"]["digest"], digest.as_str());
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    assert_eq!(layers[0]["mediaType"], "application/spdx+json");
    assert_eq!(layers[0]["digest"], manifest(&spdx)["layers"][0]["digest"]);
    let doc: serde_json::Value = serde_json::from_slice(&blob(&layers[0]["digest"])).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let names: Vec<&str> = doc["packages"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"left-pad") && names.contains(&"is-odd"), "{names:?}");

    // Harbor's API classifies it as its SBOM accessory; the others are plain accessories.
    let mut kinds: Vec<String> = harbor_accessories(&h, "app", &digest).into_iter().map(|(_, k)| k).collect();
    kinds.sort();
    assert_eq!(kinds, ["harbor.sbom", "subject.accessory", "subject.accessory", "subject.accessory"]);

    // --no-provenance, and HOIST_PROVENANCE=off, attach none in CI; the flag wins over the variable.
    let other = format!("{}/proj/other:1", h.host());
    let out = ci_build(&ctx, &other, &["--no-provenance"], CI_VARS, true);
    out.assert_success();
    let d = out.stdout().trim().rsplit_once('@').unwrap().1.to_string();
    assert!(harbor_accessories(&h, "other", &d).is_empty());
    let mut off = CI_VARS.to_vec();
    off.push(("HOIST_PROVENANCE", "off"));
    let third = format!("{}/proj/third:1", h.host());
    let d = ci_build(&ctx, &third, &[], &off, true).stdout().trim().rsplit_once('@').unwrap().1.to_string();
    assert!(harbor_accessories(&h, "third", &d).is_empty());
    let out = ci_build(&ctx, &third, &["--provenance=max"], &off, true);
    out.assert_success().assert_stderr_contains("provenance ");
    assert_eq!(harbor_accessories(&h, "third", &d).len(), 1);
}

/// hoist as the fake Harbor's robot.
fn on_harbor_run(args: &[&str]) -> crate::harness::Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-u", "robot$proj+ci", "--password-stdin"]);
    Hoist::run_with_stdin(&all, b"harbor-pw")
}

#[test]
fn without_a_referrers_api_ci_builds_attach_provenance_only_when_asked() {
    // distribution 2.8 (Debian's docker-registry): no referrers API, so no fallback tag unasked.
    let reg = Registry::plain();
    let work = tmp();
    let ctx = npm_context(work.path());
    let dest = format!("{}/team/app:1", reg.host());
    let mark = reg.log_mark();
    let out = ci_build(&ctx, &dest, &[], CI_VARS, false);
    out.assert_success().assert_stderr_contains("provenance not attached").assert_stderr_contains("no referrers API");
    assert!(reg.tags("team/app").iter().all(|t| !t.starts_with("sha256-")), "{:?}", reg.tags("team/app"));
    // The probe was one GET of the referrers API, and nothing was written but the image.
    let log = reg.access_log_since(mark);
    assert_eq!(log.iter().filter(|l| l.path.contains("/referrers/")).count(), 1, "{log:?}");
    let puts: Vec<String> =
        log.iter().filter(|l| l.method == "PUT" && l.manifest().is_some()).map(|l| l.path.clone()).collect();
    assert_eq!(puts, ["/v2/team/app/manifests/1".to_string()]);
    // Outside CI: not even the probe.
    let mark = reg.log_mark();
    let out = ci_build(&ctx, &format!("{}/team/plain:1", reg.host()), &[], &[], false);
    out.assert_success();
    assert!(!out.stderr().contains("provenance"), "{}", out.stderr());
    assert!(reg.access_log_since(mark).iter().all(|l| !l.path.contains("/referrers/")));

    // Asked for (HOIST_PROVENANCE=min): attached, in the fallback tag.
    let mut min = CI_VARS.to_vec();
    min.push(("HOIST_PROVENANCE", "min"));
    let out = ci_build(&ctx, &dest, &[], &min, false);
    out.assert_success().assert_stderr_contains("listed in the fallback tag");
    let digest = out.stdout().trim().rsplit_once('@').unwrap().1.to_string();
    let index: serde_json::Value =
        serde_json::from_slice(&reg.manifest_bytes("team/app", &digest.replace(':', "-")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["artifactType"], "application/vnd.in-toto+json", "{index}");
    // A wrong value is a usage error that says what is expected.
    let mut bad = CI_VARS.to_vec();
    bad.push(("HOIST_PROVENANCE", "always"));
    ci_build(&ctx, &dest, &[], &bad, false).assert_code(2).assert_stderr_contains("off, auto, min or max");
}

/// The statement from a CI variable set (no registry: `--provenance-file` with `--output`).
fn statement_for(ci: &[(&str, &str)]) -> serde_json::Value {
    let work = tmp();
    let ctx = npm_context(work.path());
    let file = work.path().join("p.json");
    let mut cmd = Hoist::cmd();
    cmd.arg("build")
        .arg(&ctx)
        .arg("--output")
        .arg(format!("oci:{}", work.path().join("out").display()))
        .arg("--provenance-file")
        .arg(&file);
    for (k, v) in ci {
        cmd.env(k, v);
    }
    Hoist::run_cmd(cmd, None).assert_success();
    serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap()
}

#[test]
fn provenance_fields_of_tag_and_merge_request_pipelines() {
    let base: Vec<(&str, &str)> =
        CI_VARS.iter().copied().filter(|(k, _)| !k.starts_with("CI_COMMIT_REF") && *k != "CI_COMMIT_BRANCH").collect();
    // A tag pipeline: the ref is the tag, under refs/tags/.
    let mut tag = base.clone();
    tag.extend([("CI_COMMIT_TAG", "v1.2.3"), ("CI_COMMIT_REF_NAME", "v1.2.3"), ("CI_COMMIT_REF_SLUG", "v1-2-3")]);
    let s = statement_for(&tag);
    let def = &s["predicate"]["buildDefinition"];
    assert_eq!(def["externalParameters"]["source"]["ref"], "v1.2.3");
    assert!(def["externalParameters"]["source"]["mergeRequest"].is_null());
    assert_eq!(def["resolvedDependencies"][0]["uri"], "git+https://gitlab.example.com/team/app@refs/tags/v1.2.3");
    assert_eq!(def["resolvedDependencies"][0]["digest"]["gitCommit"], "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c");
    assert_eq!(s["predicate"]["runDetails"]["builder"]["id"], "https://gitlab.example.com/admin/runners/42");

    // A merge-request pipeline (merged results): the merge request, its branches, and the ref the runner
    // fetched; the commit is the pipeline's.
    let mut mr = base.clone();
    mr.extend([
        ("CI_COMMIT_REF_NAME", "feature-x"),
        ("CI_COMMIT_REF_SLUG", "feature-x"),
        ("CI_MERGE_REQUEST_IID", "17"),
        ("CI_MERGE_REQUEST_REF_PATH", "refs/merge-requests/17/merge"),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature-x"),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
    ]);
    let s = statement_for(&mr);
    let def = &s["predicate"]["buildDefinition"];
    assert_eq!(
        def["externalParameters"]["source"],
        serde_json::json!({
            "repository": "https://gitlab.example.com/team/app",
            "ref": "feature-x",
            "mergeRequest": {"iid": "17", "sourceBranch": "feature-x", "targetBranch": "main"},
        })
    );
    assert_eq!(
        def["resolvedDependencies"][0]["uri"],
        "git+https://gitlab.example.com/team/app@refs/merge-requests/17/merge"
    );
    assert_eq!(
        s["predicate"]["runDetails"]["metadata"]["invocationId"],
        "https://gitlab.example.com/team/app/-/jobs/1001"
    );

    // Outside CI: what is known locally — no source, no commit, no builder id, hoist's version.
    let s = statement_for(&[]);
    let def = &s["predicate"]["buildDefinition"];
    assert!(def["externalParameters"]["source"].is_null(), "{s}");
    assert_eq!(def["resolvedDependencies"], serde_json::json!([]));
    assert!(s["predicate"]["runDetails"]["builder"]["id"].is_null());
    assert_eq!(s["predicate"]["runDetails"]["builder"]["version"]["hoist"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn an_unchanged_rebuild_attaches_the_same_documents_and_writes_nothing_new() {
    let reg = Registry::plain();
    let work = tmp();
    hoist_keys(work.path());
    let ctx = npm_context(work.path());
    let dest = format!("{}/team/app:1", reg.host());
    let key = work.path().join("cosign.key");
    let args = ["--sbom", "--provenance", "--sign", "--signing-key", key.to_str().unwrap()];
    let build = || {
        let mut cmd = Hoist::cmd();
        cmd.arg("build").arg(&ctx).args(["-t", &dest]).args(args).env("SOURCE_DATE_EPOCH", "1700000000");
        cmd.env("HOIST_SIGNING_PASSWORD", KEY_PASSWORD);
        for (k, v) in CI_VARS {
            cmd.env(k, v);
        }
        let out = Hoist::run_cmd(cmd, None);
        out.assert_success().assert_no_leak(KEY_PASSWORD);
        (out.stdout().trim().rsplit_once('@').unwrap().1.to_string(), out.stderr())
    };
    let referrers = || {
        let out = Hoist::run(["referrers", &dest, "--json"]);
        out.assert_success();
        let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
        let mut d: Vec<(String, String)> = v["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["artifactType"].as_str().unwrap().to_string(), r["digest"].as_str().unwrap().to_string()))
            .collect();
        d.sort();
        d
    };
    let mark = reg.log_mark();
    let (digest, first) = build();
    let log = reg.access_log_since(mark);
    let manifest_puts = |log: &[AccessLine]| -> Vec<String> {
        log.iter().filter(|l| l.method == "PUT" && l.manifest().is_some()).map(|l| l.manifest().unwrap().1).collect()
    };
    let puts = manifest_puts(&log);
    let fallback = digest.replace(':', "-");
    // The first build: the image, the .sig and .att tags, the signature referrer and the four documents by
    // digest, and ONE write of the fallback tag for all five of them.
    assert!(first.contains("(1 write)"), "{first}");
    let documents: Vec<&String> = puts.iter().filter(|r| r.starts_with("sha256:")).collect();
    assert_eq!(documents.len(), 5, "signature referrer + 4 documents: {puts:?}");
    assert_eq!(puts.iter().filter(|r| **r == fallback).count(), 1, "one fallback tag update: {puts:?}");
    let listed = referrers();
    let kinds: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "application/spdx+json",
            "application/vnd.cyclonedx+json",
            "application/vnd.dev.cosign.artifact.sig.v1+json",
            "application/vnd.dsse.envelope.v1+json",
            "application/vnd.in-toto+json",
        ]
    );

    // The rebuild: same image, same documents (reproducible digests), and not one manifest PUT.
    let mark = reg.log_mark();
    let (again, second) = build();
    assert_eq!(again, digest);
    assert!(second.contains("(0 writes)"), "{second}");
    assert_eq!(referrers(), listed, "the same documents, nothing added");
    let log = reg.access_log_since(mark);
    assert_eq!(manifest_puts(&log), Vec::<String>::new(), "an unchanged rebuild wrote manifests");
    assert!(log.iter().all(|l| l.method != "POST" && l.method != "PATCH"), "an unchanged rebuild uploaded blobs");
}
