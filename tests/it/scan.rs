//! `hoist scan` against the **fake Harbor** (harness/harbor.rs: Harbor's documented scan API in front of a real
//! registry, not Harbor itself): a scan that goes Pending → Running → Success, scan-on-push's 409, a finished scan
//! reused, a repository name with `/`, an index's children merged, the CVE allowlist (and an expired one),
//! `--ignore-unfixed`, `--fail-on` (exit 6), a scan that ends in Error (its log quoted), one that never ends
//! (`--timeout`), 412 / 400 / 403 / not-Harbor in words, and `hoist doctor --scan`. Every GitLab report is
//! validated with `check-jsonschema --schemafile` against GitLab's schema 15.0.7 (tests/data/gitlab), every JUnit
//! file is parsed by Python's XML parser.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

const ROBOT: &str = "robot$team+ci";
const SECRET: &str = "Scan-Secret-Walrus-4471";

/// The CI robot plus what scanning needs.
fn scan_robot(project: &str) -> FakeRobot {
    FakeRobot::ci(ROBOT, SECRET, project).can(project, &["scan:create", "artifact-addition:read", "scanner:read"])
}

/// Pushes a small image to `fake/repo:tag` with hoist; returns its digest.
fn push_image(fake: &HarborFake, repo_tag: &str, seed: u64) -> String {
    let dir = tmp();
    let src = dir.path().join("src");
    oci_layout(&src, &LayoutSpec::new(seed).layer_sizes(&[3000]).tag("v1"));
    push_layout_dir(fake, &format!("oci:{}:v1", src.display()), repo_tag)
}

fn push_layout_dir(fake: &HarborFake, layout: &str, repo_tag: &str) -> String {
    let out = Hoist::run_with_stdin(
        ["push", layout, &format!("{}/{repo_tag}", fake.host()), "-u", ROBOT, "--password-stdin", "-q"],
        SECRET.as_bytes(),
    );
    out.assert_success();
    out.stdout().trim().rsplit_once('@').expect("REF@digest").1.to_string()
}

/// `hoist scan ARGS -u ROBOT --password-stdin` (as `user`/`secret` when given).
fn scan_as(args: &[&str], user: &str, secret: &str) -> Output {
    let mut cmd = Hoist::cmd();
    cmd.arg("scan").args(args).args(["-u", user, "--password-stdin"]);
    let out = Hoist::run_cmd(cmd, Some(secret.as_bytes()));
    eprintln!("$ hoist scan {}\n{}", args.join(" "), out.stderr());
    out.assert_no_leak(secret);
    out
}

fn scan(args: &[&str]) -> Output {
    scan_as(args, ROBOT, SECRET)
}

fn schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gitlab/container-scanning-report-format-15.0.7.json")
}

/// `check-jsonschema --schemafile <GitLab's 15.0.7 schema> FILE`: (ok, output).
fn gitlab_schema(file: &Path) -> (bool, String) {
    let mut cmd = Command::new(require_tool_hint("check-jsonschema", "pip install check-jsonschema"));
    cmd.arg("--schemafile").arg(schema()).arg(file);
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// Validates `file` against GitLab's schema and returns it parsed.
#[track_caller]
fn valid_gitlab_report(file: &Path) -> serde_json::Value {
    let (ok, out) = gitlab_schema(file);
    assert!(ok, "{} is not a valid container-scanning report: {out}", file.display());
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// The JUnit file parsed by Python's XML parser: {tests, failures, skipped, cases: [{name, failed, skipped}]}.
fn parse_junit(file: &Path) -> serde_json::Value {
    let script = r#"
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suite = root.find("testsuite")
cases = [{"name": c.get("name"), "failed": c.find("failure") is not None, "skipped": c.find("skipped") is not None}
         for c in suite.findall("testcase")]
print(json.dumps({"tests": int(suite.get("tests")), "failures": int(suite.get("failures")),
                  "skipped": int(suite.get("skipped")), "cases": cases}))
"#;
    let mut cmd = Command::new(require_tool_hint("python3", "apt-get install python3"));
    cmd.args(["-c", script]).arg(file);
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    assert!(out.status.success(), "JUnit does not parse: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ids(report: &serde_json::Value) -> Vec<String> {
    report["vulnerabilities"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn scan_waits_for_success_writes_valid_reports_and_fails_on_high() {
    let fake = HarborFake::start(vec![FakeProject::new(1, "team")], vec![scan_robot("team")]);
    let digest = push_image(&fake, "team/app:1", 501);
    let work = tmp();
    let (gl, junit) = (work.path().join("gl.json"), work.path().join("junit.xml"));
    let target = format!("{}/team/app:1", fake.host());
    let out = scan(&[
        &target,
        "--gitlab-report",
        gl.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        "--fail-on",
        "high",
    ]);
    out.assert_code(6)
        .assert_stderr_contains(&format!("scan: Harbor started scanning {target} ({digest})"))
        .assert_stderr_contains("scan: Pending")
        .assert_stderr_contains("scan: Running 66%")
        .assert_stderr_contains("4 vulnerabilities: Critical 1 (1 fixable), High 1 (0 fixable), Medium 1 (1 fixable), Negligible 1 (0 fixable)")
        .assert_stderr_contains("Critical   CVE-2024-0001        openssl 3.0.11-1 (fixed in 3.0.13-1)")
        .assert_stderr_contains("--fail-on High: 2 finding(s) at or above High")
        .assert_stderr_contains(&format!(
            "Harbor: http://{}/harbor/projects/1/repositories/app/artifacts-tab/artifacts/{digest}",
            fake.host()
        ))
        .assert_stderr_contains("hoist: error: scan: 2 vulnerability finding(s) at or above High");
    // Pending, Running, then Success: three overview reads, with the header Harbor needs for them.
    let reads = fake.scan_requests().iter().filter(|(m, p, _)| m == "GET" && p.contains("with_scan_overview")).count();
    assert!(reads >= 3, "{:?}", fake.scan_requests());

    let json: serde_json::Value = serde_json::from_str(&out.stdout()).expect("--json prints JSON");
    assert_eq!(json["digest"], digest.as_str());
    assert_eq!(json["failing"], 2);
    assert_eq!(json["scanner"]["name"], "Trivy");
    assert_eq!(json["findings"].as_array().unwrap().len(), 4, "the index-only finding is not here");

    let report = valid_gitlab_report(&gl);
    assert_eq!(report["version"], "15.0.7");
    assert_eq!(report["scan"]["scanner"]["vendor"]["name"], "Aqua Security");
    assert_eq!(report["scan"]["analyzer"]["id"], "hoist");
    assert_eq!(report["scan"]["start_time"], "2026-12-06T01:00:00");
    let vulns = report["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulns.len(), 4);
    let critical = &vulns[0];
    assert_eq!(critical["severity"], "Critical");
    assert_eq!(critical["solution"], "Upgrade openssl from 3.0.11-1 to 3.0.13-1");
    assert_eq!(critical["identifiers"][0]["value"], "CVE-2024-0001");
    assert_eq!(critical["identifiers"][1]["name"], "CWE-787");
    assert_eq!(critical["location"]["image"], target.as_str());
    assert_eq!(critical["location"]["default_branch_image"], format!("{}/team/app:latest", fake.host()));
    assert_eq!(critical["location"]["operating_system"], "Unknown");
    let negligible = vulns.iter().find(|v| v["name"] == "CVE-2023-0003 in bash").unwrap();
    assert_eq!(negligible["severity"], "Info", "Harbor's Negligible is GitLab's Info");
    assert_eq!(
        vulns.iter().find(|v| v["name"] == "GHSA-aaaa-bbbb-cccc in requests").unwrap()["identifiers"][0]["type"],
        "ghsa"
    );

    let j = parse_junit(&junit);
    assert_eq!(
        (j["tests"].as_i64(), j["failures"].as_i64(), j["skipped"].as_i64()),
        (Some(4), Some(2), Some(0)),
        "{j}"
    );
    let failed: Vec<&str> = j["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["failed"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["CVE-2024-0001 openssl 3.0.11-1 (Critical)", "CVE-2024-0002 zlib1g 1:1.2.13 (High)"]);

    // Again, by digest: the finished scan is reused (no second POST), the ids are the same.
    let gl2 = work.path().join("gl2.json");
    let by_digest = format!("{}/team/app@{digest}", fake.host());
    scan(&[&by_digest, "--gitlab-report", gl2.to_str().unwrap()])
        .assert_success()
        .assert_stderr_contains(&format!("scan: reusing Harbor's finished scan of {digest}"));
    assert_eq!(ids(&valid_gitlab_report(&gl2)), ids(&report), "finding ids are deterministic");
    let posts = fake.scan_requests().iter().filter(|(m, _, _)| m == "POST").count();
    assert_eq!(posts, 1, "{:?}", fake.scan_requests());
    // --rescan scans again.
    scan(&[&by_digest, "--rescan", "-q"]).assert_success();
    assert_eq!(fake.scan_requests().iter().filter(|(m, _, s)| m == "POST" && *s == 202).count(), 2);
}

#[test]
fn scan_waits_for_scan_on_push_and_encodes_nested_repositories_twice() {
    let fake = HarborFake::start(vec![FakeProject::new(4, "team").scan_on_push()], vec![scan_robot("team")]);
    let digest = push_image(&fake, "team/web/api:2", 502);
    let target = format!("{}/team/web/api@{digest}", fake.host());
    // Scan-on-push is running: hoist waits for it without starting another.
    scan(&[&target])
        .assert_success()
        .assert_stderr_contains(&format!("scan: Harbor is already scanning {digest} (Pending): waiting for it"));
    assert!(fake.scan_requests().iter().all(|(m, _, _)| m != "POST"));
    assert!(
        fake.scan_requests().iter().all(|(_, p, s)| p.contains("/repositories/web%252Fapi/") && *s == 200),
        "{:?}",
        fake.scan_requests()
    );
    // --rescan while a scan runs: Harbor answers 409 and hoist waits for that one.
    let digest2 = push_image(&fake, "team/web/api:3", 503);
    let out = scan(&[&format!("{}/team/web/api:3", fake.host()), "--rescan"]);
    out.assert_success()
        .assert_stderr_contains(&format!("a scan of {digest2} is already pending or running (scan-on-push): waiting"))
        .assert_stderr_contains("Harbor: ")
        .assert_stderr_contains("/repositories/web%2Fapi/artifacts-tab/artifacts/");
    assert!(fake.scan_requests().iter().any(|(m, _, s)| m == "POST" && *s == 409), "{:?}", fake.scan_requests());
}

#[test]
fn scan_merges_an_index_and_applies_the_allowlist_and_ignore_unfixed() {
    let fake = HarborFake::start(
        vec![
            FakeProject::new(1, "team").allowlist(&["CVE-2024-0001"], None),
            FakeProject::new(2, "old").allowlist(&["CVE-2024-0001"], Some(1_000)),
        ],
        vec![scan_robot("team").can(
            "old",
            &[
                "repository:pull",
                "repository:push",
                "artifact:read",
                "project:read",
                "scan:create",
                "artifact-addition:read",
            ],
        )],
    );
    let work = tmp();
    let layout = work.path().join("index");
    let idx = oci_index_layout(&layout);
    let digest = push_layout_dir(&fake, &format!("oci:{}:{}", layout.display(), idx.tag), "team/multi:1");
    assert_eq!(digest, idx.index_digest);
    let (gl, junit) = (work.path().join("gl.json"), work.path().join("junit.xml"));
    let out = scan(&[
        &format!("{}/team/multi:1", fake.host()),
        "--ignore-unfixed",
        "--fail-on",
        "critical",
        "--json",
        "--gitlab-report",
        gl.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    out.assert_success()
        .assert_stderr_contains("2 platforms")
        .assert_stderr_contains("allowlisted by project team's CVE allowlist: CVE-2024-0001 (1 finding(s) not counted)")
        .assert_stderr_contains("--ignore-unfixed: 2 finding(s) without a fix left out")
        .assert_stderr_contains("--fail-on Critical: passed");
    let json: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(json["children"].as_array().unwrap().len(), 2);
    let findings = json["findings"].as_array().unwrap();
    let names: Vec<&str> = findings.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(names, ["CVE-2024-0001", "GHSA-aaaa-bbbb-cccc", "CVE-2024-0005"], "worst first; unfixed dropped");
    assert_eq!(findings[0]["allowlisted"], true);
    let children: Vec<String> = idx.images.iter().map(|(_, i)| i.manifest_digest.clone()).collect();
    assert_eq!(findings[0]["artifact_digests"], serde_json::json!(children), "found in both platforms, merged");
    assert_eq!(findings[2]["artifact_digests"], serde_json::json!([children[1]]), "only in arm64");
    let report = valid_gitlab_report(&gl);
    assert_eq!(report["vulnerabilities"].as_array().unwrap().len(), 2, "the allowlisted CVE is not reported");
    let j = parse_junit(&junit);
    assert_eq!(
        (j["tests"].as_i64(), j["failures"].as_i64(), j["skipped"].as_i64()),
        (Some(3), Some(0), Some(1)),
        "{j}"
    );

    // An expired allowlist counts for nothing: the Critical fails.
    push_image(&fake, "old/app:1", 504);
    scan(&[&format!("{}/old/app:1", fake.host()), "--fail-on", "critical"]).assert_code(6).assert_stderr_contains(
        "project old's CVE allowlist expired at 1970-01-01T00:16:40Z: its 1 CVE(s) count again",
    );
}

#[test]
fn scan_quotes_the_log_of_a_failed_scan_and_stops_at_the_timeout() {
    let log = "2026-12-06T01:00:05Z [ERROR] trivy: failed to download vulnerability DB: 429 Too Many Requests";
    let fake = HarborFake::start(
        vec![
            FakeProject::new(1, "team").scanning(FakeScan::Fails { polls: 2, log: log.into() }),
            FakeProject::new(2, "stuck").scanning(FakeScan::Never),
        ],
        vec![scan_robot("team").can("stuck", &["repository:pull", "repository:push", "artifact:read", "scan:create"])],
    );
    push_image(&fake, "team/app:1", 505);
    let work = tmp();
    let gl = work.path().join("gl.json");
    let out = scan(&[&format!("{}/team/app:1", fake.host()), "--gitlab-report", gl.to_str().unwrap()]);
    out.assert_code(1)
        .assert_stderr_contains(&format!("Harbor's scan of {}/team/app:1 ended with Error; its log:", fake.host()))
        .assert_stderr_contains(&format!("  | {log}"))
        .assert_stderr_contains("hint: the log above is the scanner's");
    assert!(!gl.exists(), "no report from a failed scan");
    // The first Error is looked at again before the scan is called failed.
    let reads = fake.scan_requests().iter().filter(|(m, p, _)| m == "GET" && p.contains("with_scan_overview")).count();
    assert!(reads >= 3, "{:?}", fake.scan_requests());

    push_image(&fake, "stuck/app:1", 506);
    let started = std::time::Instant::now();
    let out = scan(&[&format!("{}/stuck/app:1", fake.host()), "--timeout", "3s"]);
    out.assert_code(1)
        .assert_stderr_contains("did not finish within 3s (last state: Running 50%)")
        .assert_stderr_contains("hint: raise --timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}

#[test]
fn scan_says_what_is_wrong_with_the_fix() {
    let fake = HarborFake::start(
        vec![
            FakeProject::new(1, "team"),
            FakeProject::new(2, "noscan").scanner(None),
            FakeProject::new(3, "off").scanner(Some(("Trivy", true))),
        ],
        vec![
            scan_robot("team")
                .can("noscan", &["repository:pull", "repository:push", "artifact:read", "scan:create", "scanner:read"])
                .can("off", &["repository:pull", "repository:push", "artifact:read", "scan:create"]),
            FakeRobot::ci("robot$team+pusher", "Pusher-Secret-Ibex-22", "team"),
            FakeRobot::ci("robot$team+scanonly", "ScanOnly-Secret-Lynx-9", "team").can("team", &["scan:create"]),
        ],
    );
    push_image(&fake, "team/app:1", 507);
    push_image(&fake, "noscan/app:1", 508);
    push_image(&fake, "off/app:1", 509);
    let h = fake.host();
    scan(&[&format!("{h}/noscan/app:1")])
        .assert_code(1)
        .assert_stderr_contains("Harbor has no usable scanner for project noscan (412 Precondition Failed")
        .assert_stderr_contains("Interrogation Services");
    scan(&[&format!("{h}/off/app:1")]).assert_code(1).assert_stderr_contains("no usable scanner for project off");
    scan_as(&[&format!("{h}/team/app:1")], "robot$team+pusher", "Pusher-Secret-Ibex-22")
        .assert_code(3)
        .assert_stderr_contains("the account may not start scans in project team (403 Forbidden")
        .assert_stderr_contains("`scan:create`");
    scan_as(&[&format!("{h}/team/app:1"), "--rescan"], "robot$team+scanonly", "ScanOnly-Secret-Lynx-9")
        .assert_code(3)
        .assert_stderr_contains("the account may not read scan reports in project team")
        .assert_stderr_contains("`artifact-addition:read`");
    scan_as(&[&format!("{h}/team/app:1")], ROBOT, "Wrong-Secret-Mole-1").assert_code(3);

    // A chart: Harbor's scanners do not read charts.
    let chart = tmp();
    std::fs::create_dir_all(chart.path().join("demo/templates")).unwrap();
    std::fs::write(chart.path().join("demo/Chart.yaml"), "apiVersion: v2\nname: demo\nversion: 0.1.0\n").unwrap();
    std::fs::write(chart.path().join("demo/templates/cm.yaml"), "kind: ConfigMap\n").unwrap();
    let demo = chart.path().join("demo");
    Hoist::run_with_stdin(
        ["chart", "push", demo.to_str().unwrap(), &format!("oci://{h}/team"), "-u", ROBOT, "--password-stdin", "-q"],
        SECRET.as_bytes(),
    )
    .assert_success();
    scan(&[&format!("{h}/team/demo:0.1.0")])
        .assert_code(1)
        .assert_stderr_contains("Harbor cannot scan")
        .assert_stderr_contains("CHART artifacts are not scannable (400 Bad Request")
        .assert_stderr_contains("scan the image instead");

    // Not Harbor: a registry without Harbor's API.
    let reg = Registry::start(RegistryOpts::plain());
    let src = tmp();
    oci_layout(src.path(), &LayoutSpec::new(510).tag("v1"));
    Hoist::run(["push", &format!("oci:{}:v1", src.path().display()), &format!("{}/team/app:1", reg.host()), "-q"])
        .assert_success();
    scan(&[&format!("{}/team/app:1", reg.host())])
        .assert_code(1)
        .assert_stderr_contains("is not Harbor")
        .assert_stderr_contains("GitLab's container registry");
    // No project component: a usage error before any request.
    scan(&[&format!("{h}/app:1")]).assert_code(2).assert_stderr_contains("has no project");
}

#[test]
fn doctor_scan_checks_the_scan_permissions_and_the_scanner() {
    let fake = HarborFake::start(
        vec![FakeProject::new(1, "team"), FakeProject::new(2, "noscan").scanner(None)],
        vec![scan_robot("team").can("noscan", &["repository:pull", "repository:push", "project:read", "scanner:read"])],
    );
    let doctor = |target: &str| {
        let mut cmd = Hoist::cmd();
        cmd.args(["doctor", target, "--scan", "-u", ROBOT, "--password-stdin"]);
        let out = Hoist::run_cmd(cmd, Some(SECRET.as_bytes()));
        eprintln!("$ hoist doctor {target} --scan\n{}", out.stderr());
        out.assert_no_leak(SECRET);
        out
    };
    doctor(&format!("{}/team/app:1", fake.host()))
        .assert_success()
        .assert_stderr_contains("✔ harbor-scan-permissions may start scans and read reports on \"team\"")
        .assert_stderr_contains("✔ harbor-scanner     project \"team\" scans with Trivy (healthy)");
    doctor(&format!("{}/noscan/app:1", fake.host()))
        .assert_code(3)
        .assert_stderr_contains(
            "✘ harbor-scan-permissions hoist scan needs scan:create and artifact-addition:read on \"noscan\"",
        )
        .assert_stderr_contains("✘ harbor-scanner     project \"noscan\" has no scanner: scans answer 412");
    // A registry that is not Harbor has no scanner to check.
    let reg = Registry::start(RegistryOpts::plain());
    let mut cmd = Hoist::cmd();
    cmd.args(["doctor", &format!("{}/team/app:1", reg.host()), "--scan"]);
    Hoist::run_cmd(cmd, None)
        .assert_code(1)
        .assert_stderr_contains("✘ harbor-scan        not Harbor: this registry has no scanner API for hoist scan");
    // Without --scan nothing of it is checked.
    let mut cmd = Hoist::cmd();
    cmd.args(["doctor", &format!("{}/noscan/app:1", fake.host()), "-u", ROBOT, "--password-stdin"]);
    let out = Hoist::run_cmd(cmd, Some(SECRET.as_bytes()));
    assert!(!out.stderr().contains("harbor-scan"), "{}", out.stderr());
}
