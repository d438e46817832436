//! Pushes that survive real networks: a fault-injecting proxy in front of the real registry breaks
//! requests on a script. Every retryable fault ends with the image read back by skopeo byte-identical to
//! the source; every non-retryable one ends quickly with a clear error and its exit code.

use std::time::{Duration, Instant};

use crate::harness::proxy::{Fault, FaultProxy, Matcher, Rule};
use crate::harness::*;

struct Setup {
    reg: Registry,
    proxy: FaultProxy,
    work: tempfile::TempDir,
}

/// A registry, a proxy in front of it, and a layout of `layers` (sizes in bytes) tagged v1.
fn setup(layers: &[usize]) -> Setup {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let work = tempfile::tempdir().unwrap();
    oci_layout(&work.path().join("src"), &LayoutSpec::new(101).layer_sizes(layers).tag("v1"));
    Setup { reg, proxy, work }
}

impl Setup {
    fn push(&self, repo: &str, extra: &[&str]) -> Output {
        let src = format!("oci:{}:v1", self.work.path().join("src").display());
        let dest = format!("{}/{repo}:1", self.proxy.host());
        let mut args = vec!["push", src.as_str(), dest.as_str()];
        args.extend_from_slice(extra);
        Hoist::run(&args)
    }

    /// skopeo (straight from the registry, not through the proxy) reads back the source's exact bytes.
    fn assert_intact(&self, repo: &str) {
        let copy = self.work.path().join(format!("copy-{}", repo.replace('/', "-")));
        copy_to_layout(&format!("{repo}:1"), &self.reg, &copy);
        assert_same_image(&self.work.path().join("src"), Some("v1"), &copy, None);
    }
}

#[test]
fn resilience_5xx_and_429_are_retried_and_counted() {
    let s = setup(&[200_000, 50_000]);
    let put =
        s.proxy.add(Rule::new(Matcher::method("PUT").path_contains("/blobs/uploads/"), Fault::status(503)).times(2));
    let head = s.proxy.add(Rule::new(Matcher::method("HEAD").path_contains("/blobs/"), Fault::status(502)).times(1));
    let post =
        s.proxy.add(Rule::new(Matcher::method("POST").path_contains("/blobs/uploads/"), Fault::status(500)).times(1));
    let man = s.proxy.add(Rule::new(Matcher::method("PUT").path_contains("/manifests/"), Fault::status(504)).times(1));
    let tmr = s.proxy.add(
        Rule::new(Matcher::method("POST").path_contains("/blobs/uploads/"), Fault::too_many_requests("1")).times(1),
    );
    let started = Instant::now();
    let out = s.push("r/fivexx", &[]);
    out.assert_success();
    for (name, id, n) in [("put", put, 2), ("head", head, 1), ("post", post, 1), ("manifest", man, 1), ("429", tmr, 1)]
    {
        assert_eq!(s.proxy.fired(id), n, "rule {name}");
    }
    // Retry-After: 1 was honoured.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let err = out.stderr();
    assert!(err.contains("retries:") && err.contains("503") && err.contains("429"), "{err}");
    // The registry said it was overloaded: hoist uploads fewer blobs at once from then on.
    assert!(err.contains("is overloaded (429/503): now 3 upload(s) at a time"), "{err}");
    s.assert_intact("r/fivexx");
}

#[test]
fn resilience_cut_body_restarts_the_blob() {
    let s = setup(&[400_000]);
    let cut = s.proxy.add(Rule::new(
        Matcher::method("PUT").path_contains("/blobs/uploads/").body_over(300_000),
        Fault::cut_body(100_000),
    ));
    s.push("r/cut", &[]).assert_success();
    assert_eq!(s.proxy.fired(cut), 1);
    s.assert_intact("r/cut");
}

#[test]
fn resilience_lost_put_response_is_retried() {
    let s = setup(&[100_000]);
    let drop = s
        .proxy
        .add(Rule::new(Matcher::method("PUT").path_contains("/blobs/uploads/").body_over(50_000), Fault::DropResponse));
    s.push("r/lostput", &[]).assert_success();
    assert_eq!(s.proxy.fired(drop), 1);
    s.assert_intact("r/lostput");
}

#[test]
fn resilience_lost_patch_response_is_never_repeated_blindly() {
    // 3 MiB in 1 MiB chunks; the second PATCH is applied by the registry but its answer is lost.
    // hoist asks the registry for its Range; distribution 2.8 refuses the stale Location (404
    // BLOB_UPLOAD_INVALID), so the blob starts over with a new POST — never a repeated PATCH that
    // distribution would append, corrupting the blob.
    let s = setup(&[3 << 20]);
    let drop = s.proxy.add(Rule::new(Matcher::method("PATCH").skip(1), Fault::DropResponse));
    s.push("r/lostpatch", &["--chunk-size", "1MiB"]).assert_success();
    assert_eq!(s.proxy.fired(drop), 1);
    // The registry's Range was asked, and the blob restarted with a second POST.
    assert!(!s.proxy.requests_matching("GET", "/blobs/uploads/").is_empty(), "{}", s.proxy.log_text());
    assert_eq!(
        s.proxy.requests_matching("POST", "/blobs/uploads/").len(),
        3,
        "layer, its restart, config: {}",
        s.proxy.log_text()
    );
    s.assert_intact("r/lostpatch");
}

#[test]
fn resilience_cut_patch_and_upload_unknown_restart_cleanly() {
    let s = setup(&[3 << 20]);
    let cut = s.proxy.add(Rule::new(Matcher::method("PATCH").skip(1), Fault::cut_body(300_000)));
    let unknown = s.proxy.add(Rule::new(Matcher::method("PATCH").skip(3), Fault::blob_upload_unknown()));
    s.push("r/cutpatch", &["--chunk-size", "1MiB"]).assert_success();
    assert_eq!((s.proxy.fired(cut), s.proxy.fired(unknown)), (1, 1));
    s.assert_intact("r/cutpatch");
}

/// The lines of `stderr` that announce the chunk size chosen after a 413.
fn chunk_notices(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("413 Payload Too Large from a proxy")).collect()
}

/// The `--chunk-size` value a notice suggests, in bytes.
fn suggested_chunk(notice: &str) -> u64 {
    let arg = notice.split("--chunk-size ").nth(1).and_then(|r| r.split_whitespace().next()).expect("a --chunk-size");
    let digits: String = arg.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits.parse().unwrap();
    match &arg[digits.len()..] {
        "MiB" => n << 20,
        "KiB" => n << 10,
        "" => n,
        other => panic!("unit {other} in {notice}"),
    }
}

#[test]
fn resilience_body_cap_of_3000000_halves_chunks_until_they_pass_and_says_so_once() {
    // A proxy refusing bodies over 3,000,000 bytes: 8 MiB chunks fail, 4 MiB fail, 2 MiB pass.
    let s = setup(&[20 << 20, 12 << 20, 1000]);
    let cap = 3_000_000;
    s.proxy.add(Rule::new(Matcher::any(), Fault::max_body(cap)).always());
    let out = s.push("r/cap3m", &["--jobs", "1"]);
    out.assert_success();
    let err = out.stderr();
    let notices = chunk_notices(&err);
    assert_eq!(notices.len(), 1, "said once: {err}");
    assert!(notices[0].contains("--chunk-size 2MiB"), "{err}");
    let refused: Vec<_> = s.proxy.requests().into_iter().filter(|r| r.status == Some(413)).collect();
    // The whole ~20 MiB layer's PUT, an 8 MiB PATCH, a 4 MiB PATCH; then the size is remembered for
    // the ~12 MiB layer, which goes straight to 2 MiB chunks.
    let sizes: Vec<_> = refused.iter().map(|r| (r.method.as_str(), r.body_len.unwrap_or(0))).collect();
    assert!(
        matches!(sizes[..], [("PUT", l), ("PATCH", 0x80_0000), ("PATCH", 0x40_0000)] if l > 20 << 20),
        "{sizes:?}: {}",
        s.proxy.log_text()
    );
    let passed: Vec<_> =
        s.proxy.requests_matching("PATCH", "/blobs/uploads/").into_iter().filter(|r| r.status == Some(202)).collect();
    assert!(passed.len() >= 16 && passed.iter().all(|r| r.body_len <= Some(2 << 20)), "{}", s.proxy.log_text());
    s.assert_intact("r/cap3m");
}

#[test]
fn resilience_body_cap_of_1mib_is_found_by_concurrent_uploads() {
    // ingress-nginx's default client_max_body_size (1m), with four uploads finding it at once.
    let s = setup(&[5 << 20, 3 << 20, 2 << 20, 200_000]);
    let cap = 1_048_576;
    s.proxy.add(Rule::new(Matcher::any(), Fault::max_body(cap)).always());
    let out = s.push("r/cap1m", &[]);
    out.assert_success();
    let err = out.stderr();
    let notices = chunk_notices(&err);
    assert_eq!(notices.len(), 1, "said once: {err}");
    let chosen = suggested_chunk(notices[0]);
    assert!(chosen <= cap && chosen >= cap / 2, "halving stops at the first size that passes: {chosen}");
    let refused = s.proxy.requests().iter().filter(|r| r.status == Some(413)).count();
    assert!(refused <= 12, "{refused} refusals: {}", s.proxy.log_text());
    s.assert_intact("r/cap1m");
    // A later push to the same proxy can start at the suggested size: no 413 at all.
    s.proxy.clear_log();
    let arg = notices[0].split("--chunk-size ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    s.push("r/cap1m-again", &["--chunk-size", &arg]).assert_success();
    assert!(s.proxy.requests().iter().all(|r| r.status != Some(413)), "{}", s.proxy.log_text());
    s.assert_intact("r/cap1m-again");
}

#[test]
fn resilience_body_cap_below_the_smallest_chunk_fails_with_an_accurate_hint() {
    let s = setup(&[200_000]);
    s.proxy.add(Rule::new(Matcher::any(), Fault::max_body(40_000)).always());
    let started = Instant::now();
    let out = s.push("r/cap40k", &[]);
    out.assert_code(1)
        .assert_stderr_contains("413 Payload Too Large")
        .assert_stderr_contains("caps request bodies below 65536 bytes")
        .assert_stderr_contains("client_max_body_size");
    assert!(!out.stderr().contains("--chunk-size 8MiB"), "{}", out.stderr());
    // The whole ~200 KB layer, 128 KiB (8 MiB halved until below it), 64 KiB (the floor) and no more.
    let refused: Vec<_> =
        s.proxy.requests().into_iter().filter(|r| r.status == Some(413)).map(|r| r.body_len.unwrap_or(0)).collect();
    assert!(matches!(refused[..], [l, 131_072, 65_536] if l > 200_000), "{refused:?}: {}", s.proxy.log_text());
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn resilience_413_switches_to_chunked_uploads_and_says_so_once() {
    // A proxy that refuses bodies over 9 MiB (ingress-nginx's common 10m): 8 MiB chunks pass at once.
    let s = setup(&[20 << 20, 12 << 20, 1000]);
    let limit = s.proxy.add(Rule::new(Matcher::any().body_over(9 << 20), Fault::payload_too_large()).always());
    let out = s.push("r/toolarge", &["--jobs", "1"]);
    out.assert_success();
    let err = out.stderr();
    assert_eq!(chunk_notices(&err).len(), 1, "{err}");
    assert!(err.contains("--chunk-size 8MiB"), "{err}");
    // Everything after the switch went in chunks: only one oversized request was ever refused.
    assert_eq!(s.proxy.fired(limit), 1, "{}", s.proxy.log_text());
    assert!(!s.proxy.requests_matching("PATCH", "/blobs/uploads/").is_empty());
    s.assert_intact("r/toolarge");
}

#[test]
fn resilience_non_retryable_errors_fail_fast_with_their_exit_code() {
    let s = setup(&[1000]);
    let cases: [(&str, Fault, i32, &str); 3] = [
        ("POST", Fault::registry_error(403, "DENIED", "quota exceeded"), 3, "quota exceeded"),
        ("POST", Fault::registry_error(404, "NAME_UNKNOWN", "repository name not known"), 1, "NAME_UNKNOWN"),
        ("PUT", Fault::registry_error(400, "MANIFEST_INVALID", "manifest invalid"), 1, "MANIFEST_INVALID"),
    ];
    for (i, (method, fault, code, text)) in cases.into_iter().enumerate() {
        s.proxy.clear_rules();
        let path = if method == "PUT" { "/manifests/" } else { "/blobs/uploads/" };
        let id = s.proxy.add(Rule::new(Matcher::method(method).path_contains(path), fault).always());
        let started = Instant::now();
        let out = s.push(&format!("r/fatal{i}"), &[]);
        out.assert_code(code).assert_stderr_contains(text);
        assert_eq!(s.proxy.fired(id), 1, "never retried: {text}");
        assert!(started.elapsed() < Duration::from_secs(10), "fails fast: {text}");
    }
    // Retries run out: a registry that is always 503 ends with the network exit code.
    s.proxy.clear_rules();
    let id = s.proxy.add(Rule::new(Matcher::method("HEAD"), Fault::status(503)).always());
    let out = s.push("r/down", &["--retries", "2"]);
    out.assert_code(4).assert_stderr_contains("after 2 retries");
    assert_eq!(s.proxy.fired(id), 3);
}

#[test]
fn resilience_manifest_blob_unknown_is_retried_briefly() {
    // distribution 2.8 answers 400 DIGEST_INVALID + MANIFEST_BLOB_UNKNOWN to a manifest PUT that reads a
    // blob's link file while a parallel upload of the same blob rewrites it: hoist has put every blob
    // first, so it tries again.
    let s = setup(&[1000]);
    let race = Fault::status_with(
        400,
        &[("Content-Type", "application/json")],
        r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
    );
    let id = s.proxy.add(Rule::new(Matcher::method("PUT").path_contains("/manifests/"), race.clone()).times(1));
    s.push("r/linkrace", &[]).assert_success();
    assert_eq!(s.proxy.fired(id), 1);
    s.assert_intact("r/linkrace");

    // A blob that stays unknown: a few short waits, then the registry's words, not a hang.
    s.proxy.clear_rules();
    let id = s.proxy.add(Rule::new(Matcher::method("PUT").path_contains("/manifests/"), race).always());
    let started = Instant::now();
    let out = s.push("r/linkgone", &[]);
    out.assert_code(1).assert_stderr_contains("MANIFEST_BLOB_UNKNOWN").assert_stderr_contains("after 4 retries");
    assert_eq!(s.proxy.fired(id), 5);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn resilience_short_tokens_are_refreshed_mid_push() {
    // Tokens live 2 s, and the issuer does not say so (no expires_in: clients assume 60 s), so the push
    // meets an expired token half-way and must fetch a new one on the 401.
    let mut opts = TokenIssuerOpts::with_user("ci", "pw").lifetime(Duration::from_secs(2));
    opts.omit_expires_in = true;
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::Token(opts)));
    let proxy = FaultProxy::start(&reg.host());
    // Slow every blob check down so the push lasts well past the token's life.
    proxy.add(
        Rule::new(Matcher::method("HEAD").path_contains("/blobs/"), Fault::Delay(Duration::from_millis(700))).always(),
    );
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(111).layer_sizes(&[10_000, 20_000, 30_000, 40_000, 50_000]).tag("v1"));
    let out = Hoist::run_with_stdin(
        [
            "push",
            &format!("oci:{}:v1", src.display()),
            &format!("{}/tok/refresh:1", proxy.host()),
            "-u",
            "ci",
            "--password-stdin",
            "--jobs",
            "1",
        ],
        b"pw",
    );
    out.assert_success();
    assert!(reg.token_issuer().request_count() >= 2, "a second token was fetched: {:?}", reg.token_issuer().requests());
    let copy = work.path().join("copy");
    Skopeo::new(&reg).copy_to_layout("tok/refresh:1", &copy);
    assert_same_image(&src, Some("v1"), &copy, None);
}

#[test]
fn resilience_mount_from_is_used_when_granted_and_falls_back_when_refused() {
    let opts = TokenIssuerOpts::with_user("owner", "pw")
        .user("full", "pw")
        .user("pushonly", "pw")
        .grant("full", Grant::new("*", &["pull", "push"]))
        .grant("pushonly", Grant::new("dst/*", &["pull", "push"]));
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::Token(opts)));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(121).layer_sizes(&[30_000, 40_000]).tag("v1"));
    let source = format!("oci:{}:v1", src.display());
    let push = |user: &str, repo: &str, meta: &std::path::Path| {
        Hoist::run_with_stdin(
            [
                "push",
                &source,
                &format!("{}/{repo}:1", reg.host()),
                "-u",
                user,
                "--password-stdin",
                "--mount-from",
                "src/base",
                "--metadata-file",
                meta.to_str().unwrap(),
            ],
            b"pw",
        )
    };
    let outcomes = |meta: &std::path::Path| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
        v["blobs"].as_array().unwrap().iter().map(|b| b["outcome"].as_str().unwrap().to_string()).collect()
    };
    let m0 = work.path().join("m0.json");
    push("owner", "src/base", &m0).assert_success();
    // With pull on the source repository: every blob is mounted, nothing uploaded.
    let m1 = work.path().join("m1.json");
    push("full", "dst/a", &m1).assert_success();
    assert_eq!(outcomes(&m1), ["mounted", "mounted", "mounted"]);
    // Without it the registry refuses the mount (401), and hoist uploads instead.
    let m2 = work.path().join("m2.json");
    push("pushonly", "dst/b", &m2).assert_success();
    assert_eq!(outcomes(&m2), ["uploaded", "uploaded", "uploaded"]);
    for repo in ["dst/a", "dst/b"] {
        let copy = work.path().join(repo.replace('/', "-"));
        Skopeo::new(&reg).creds("full", "pw").copy_to_layout(&format!("{repo}:1"), &copy);
        assert_same_image(&src, Some("v1"), &copy, None);
    }
}
