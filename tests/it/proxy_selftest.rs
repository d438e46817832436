//! Proves the fault proxy ([`crate::harness::proxy`]) without hoist: skopeo pushes and pulls through it
//! byte-identically (with the registry's absolute `Location`s rewritten to the proxy); and each fault has its
//! effect on the wire, shown with direct requests from the harness's blocking HTTP client and checked against
//! the registry itself: a 503 rule answers 503 without forwarding and is spent after `times`; `skip` lets
//! earlier requests through; 429 carries `Retry-After`; 413 fires only for bodies over N, and a `max_body` cap
//! refuses chunked bodies over it too; BLOB_UPLOAD_UNKNOWN
//! has distribution's error body; a cut body breaks the client connection and the registry gets exactly the
//! bytes before the cut; a dropped response leaves the client without an answer although the registry applied
//! the PATCH (or PUT); a delay delays. Along the way they pin down what distribution 2.8 does after such faults:
//! the client's now-stale upload Location (and the bare upload URL) get 404 BLOB_UPLOAD_INVALID, so the client
//! cannot learn the offset and must restart the blob, while the session itself stays usable at the newest
//! Location.

use crate::harness::http::{self, HttpAuth, HttpResponse};
use crate::harness::proxy::{try_copy_to_layout_via, try_push_layout_via};
use crate::harness::skopeo::check;
use crate::harness::*;
use std::time::{Duration, Instant};

/// One request through the proxy; the proxy must answer.
fn req(proxy: &FaultProxy, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    try_req(proxy, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} through the proxy: {e}\n--- proxy log ---\n{}", proxy.log_text()))
}

fn try_req(
    proxy: &FaultProxy,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    http::request(method, &proxy.host(), path, None, &HttpAuth::None, headers, body)
}

/// The path and query of an absolute `Location` pointing at the proxy (asserting it does).
fn proxy_path(proxy: &FaultProxy, location: &str) -> String {
    let prefix = format!("http://{}", proxy.host());
    location
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("Location {location} does not point at the proxy {prefix}"))
        .to_string()
}

/// Starts an upload session through the proxy; returns its path (with `_state`).
fn start_upload(proxy: &FaultProxy, repo: &str) -> String {
    let r = req(proxy, "POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(r.status, 202, "POST upload: {}", r.text());
    proxy_path(proxy, r.header("location").expect("Location on POST"))
}

/// `GET <upload location>` through the proxy: the status and, on 204, the number of bytes the session holds.
fn upload_status(proxy: &FaultProxy, location: &str) -> (u16, Option<u64>) {
    let r = req(proxy, "GET", location, &[], b"");
    let bytes = r.header("range").map(|range| {
        let end: u64 = range.rsplit('-').next().and_then(|e| e.parse().ok()).expect("Range 0-<end>");
        // distribution reports a fresh session as `0-0`.
        if end == 0 {
            0
        } else {
            end + 1
        }
    });
    (r.status, bytes)
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

#[test]
fn proxy_forwards_skopeo_push_and_pull_byte_identical() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let work = tmp();
    let src = work.path().join("src");
    // A 2 MiB layer so bodies really stream in many frames.
    let img = oci_layout(&src, &LayoutSpec::new(71).tag("v1").layer_sizes(&[4096, 2 << 20]));

    check("skopeo push via proxy", try_push_layout_via(&proxy.host(), None, &src, "v1", "proxied/img:v1"));
    assert_eq!(reg.manifest_bytes("proxied/img", "v1").as_deref(), Some(&img.manifest_bytes[..]));
    for d in &img.blob_digests {
        assert!(reg.has_blob("proxied/img", d), "blob {d} not in the registry");
    }
    let log = proxy.requests();
    assert!(log.iter().all(|r| r.fault.is_none() && r.error.is_none()), "{}", proxy.log_text());
    assert!(
        log.iter().any(|r| r.method == "PUT" && r.path().contains("/blobs/uploads/") && r.status == Some(201)),
        "no blob PUT through the proxy:\n{}",
        proxy.log_text()
    );
    assert!(
        log.iter().any(|r| r.method == "PUT" && r.path() == "/v2/proxied/img/manifests/v1" && r.status == Some(201)),
        "no manifest PUT through the proxy:\n{}",
        proxy.log_text()
    );

    // Pull back through the proxy: every byte identical.
    let copy = work.path().join("copy");
    check("skopeo pull via proxy", try_copy_to_layout_via(&proxy.host(), None, "proxied/img:v1", &copy));
    assert_same_image(&src, Some("v1"), &copy, Some("v1"));
    let big = img.layer_digests[1].clone();
    assert!(
        proxy.requests().iter().any(|r| r.method == "GET" && r.path().ends_with(&big) && r.status == Some(200)),
        "the layer was not GET through the proxy:\n{}",
        proxy.log_text()
    );

    // HEAD keeps the registry's Content-Length; the upstream's absolute Location is rewritten to the proxy.
    let head = req(&proxy, "HEAD", &format!("/v2/proxied/img/blobs/{big}"), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some(img.layer_sizes[1].to_string().as_str()));
    assert_eq!(head.header("docker-content-digest"), Some(big.as_str()));
    let direct = reg.request("POST", "/v2/proxied/img/blobs/uploads/", &HttpAuth::None, &[], b"");
    assert!(direct.header("location").unwrap().starts_with(&format!("http://{}/v2/", reg.host())));
    let location = start_upload(&proxy, "proxied/img");
    assert!(location.starts_with("/v2/proxied/img/blobs/uploads/"), "{location}");
}

#[test]
fn proxy_status_rule_answers_without_forwarding_and_is_spent() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let mark = reg.log_mark();
    let id =
        proxy.add(Rule::new(Matcher::method("GET").path(PathMatch::Exact("/v2/".into())), Fault::status(503)).times(2));

    assert_eq!(req(&proxy, "GET", "/v2/", &[], b"").status, 503);
    assert_eq!(req(&proxy, "GET", "/v2/", &[], b"").status, 503);
    assert_eq!(proxy.fired(id), 2);
    let third = req(&proxy, "GET", "/v2/", &[], b"");
    assert_eq!(third.status, 200, "rule not spent after 2: {}", proxy.log_text());
    assert_eq!(proxy.fired(id), 2);
    // Other methods and paths were never affected.
    assert_eq!(req(&proxy, "GET", "/v2/_catalog", &[], b"").status, 200);

    // The two 503s never reached the registry.
    let gets: Vec<_> = reg.access_log_since(mark).into_iter().filter(|l| l.path == "/v2/").collect();
    assert_eq!(gets.len(), 1, "registry saw {gets:?}");
    let log = proxy.requests();
    assert_eq!(log[0].status, Some(503));
    assert_eq!(log[0].upstream_status, None);
    assert_eq!(log[0].fault.as_deref(), Some("status 503"));
    assert_eq!(log[0].rule, Some(id));
    assert_eq!(log[2].status, Some(200));
    assert_eq!(log[2].upstream_status, Some(200));
    assert_eq!(log[2].fault, None);

    // `skip`: the first matching request passes, the next three get 500, 502, 504 from three rules.
    let base = Matcher::method("GET").path(PathMatch::Exact("/v2/_catalog".into()));
    let r500 = proxy.add(Rule::new(base.clone().skip(1), Fault::status(500)));
    let r502 = proxy.add(Rule::new(base.clone().skip(2), Fault::status(502)));
    let r504 = proxy.add(Rule::new(base.skip(3), Fault::status(504)));
    let statuses: Vec<u16> = (0..5).map(|_| req(&proxy, "GET", "/v2/_catalog", &[], b"").status).collect();
    assert_eq!(statuses, vec![200, 500, 502, 504, 200], "{}", proxy.log_text());
    assert_eq!((proxy.fired(r500), proxy.fired(r502), proxy.fired(r504)), (1, 1, 1));

    // clear_rules spends everything.
    let forever = proxy.add(Rule::new(Matcher::any(), Fault::status(500)).always());
    assert_eq!(req(&proxy, "GET", "/v2/", &[], b"").status, 500);
    proxy.clear_rules();
    assert_eq!(req(&proxy, "GET", "/v2/", &[], b"").status, 200);
    assert_eq!(proxy.fired(forever), 1);
}

#[test]
fn proxy_429_carries_retry_after_and_upload_unknown_has_distribution_body() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    proxy.add(Rule::new(Matcher::method("POST").path_contains("/blobs/uploads/"), Fault::too_many_requests("7")));
    let r = req(&proxy, "POST", "/v2/faults/x/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json()["errors"][0]["code"], "TOOMANYREQUESTS");

    let location = start_upload(&proxy, "faults/x");
    let id =
        proxy.add(Rule::new(Matcher::method("PATCH").path_contains("/blobs/uploads/"), Fault::blob_upload_unknown()));
    let r = req(&proxy, "PATCH", &location, &[("Content-Type", "application/octet-stream")], &[7u8; 1000]);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["errors"][0]["code"], "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    assert_eq!(proxy.fired(id), 1);
    // The registry never saw that PATCH: its session is still empty.
    assert_eq!(upload_status(&proxy, &location), (204, Some(0)));
}

/// A PATCH with a chunked (unknown-length) body, written by hand: status and `Location` of the answer.
fn chunked_patch(proxy: &FaultProxy, path: &str, body: &[u8]) -> (u16, Option<String>) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(proxy.host()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut raw = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
        proxy.host()
    )
    .into_bytes();
    for piece in body.chunks(70_000) {
        raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    tcp.write_all(&raw).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let location = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"))
        .map(|l| l.split_once(':').unwrap().1.trim().to_string());
    (status, location)
}

#[test]
fn proxy_max_body_caps_declared_and_chunked_bodies() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    proxy.add(Rule::new(Matcher::any(), Fault::max_body(200_000)).always());
    let location = start_upload(&proxy, "faults/cap");
    // A chunked body at the cap is buffered and forwarded whole; one byte more is refused.
    let (status, next) = chunked_patch(&proxy, &location, &vec![3u8; 200_000]);
    assert_eq!(status, 202, "{}", proxy.log_text());
    let location = proxy_path(&proxy, &next.unwrap());
    assert_eq!(upload_status(&proxy, &location), (204, Some(200_000)));
    let (status, _) = chunked_patch(&proxy, &location, &vec![4u8; 200_001]);
    assert_eq!(status, 413, "{}", proxy.log_text());
    // Declared lengths: over the cap refused without reading on, at the cap forwarded.
    let r = req(&proxy, "PATCH", &location, &[("Content-Type", "application/octet-stream")], &vec![5u8; 200_001]);
    assert_eq!(r.status, 413);
    assert!(r.text().contains("413 Request Entity Too Large"));
    // The registry only ever got the first body.
    assert_eq!(upload_status(&proxy, &location), (204, Some(200_000)));
    let r = req(&proxy, "PATCH", &location, &[("Content-Type", "application/octet-stream")], &vec![6u8; 200_000]);
    assert_eq!(r.status, 202, "{}", r.text());
}

#[test]
fn proxy_413_only_for_bodies_over_n() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let id = proxy.add(Rule::new(Matcher::any().body_over(1000), Fault::payload_too_large()).always());

    let location = start_upload(&proxy, "faults/big");
    let small = vec![1u8; 1000];
    let r = req(&proxy, "PATCH", &location, &[("Content-Type", "application/octet-stream")], &small);
    assert_eq!(r.status, 202, "{}", r.text());
    let location = proxy_path(&proxy, r.header("location").unwrap());
    assert_eq!(upload_status(&proxy, &location), (204, Some(1000)));

    // 1001 bytes and a large body: 413, read completely by the proxy so the client gets the answer.
    for n in [1001usize, 4 << 20] {
        let r = req(&proxy, "PATCH", &location, &[("Content-Type", "application/octet-stream")], &vec![2u8; n]);
        assert_eq!(r.status, 413, "{n} bytes");
        assert!(r.text().contains("413 Request Entity Too Large"));
    }
    assert_eq!(proxy.fired(id), 2);
    // The registry only ever got the small chunk.
    assert_eq!(upload_status(&proxy, &location), (204, Some(1000)));
    let digest = sha256_digest(&small);
    let r = req(&proxy, "PUT", &with_digest(&location, &digest), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(reg.has_blob("faults/big", &digest));
}

#[test]
fn proxy_cut_body_breaks_the_connection_and_the_upload() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let mark = reg.log_mark();
    let location = start_upload(&proxy, "faults/cut");
    let id = proxy.add(Rule::new(Matcher::method("PATCH"), Fault::cut_body(64 << 10)));

    let body = fixtures::seeded_bytes(5, 1 << 20);
    let started = Instant::now();
    let r = try_req(&proxy, "PATCH", &location, &[("Content-Type", "application/octet-stream")], &body);
    assert!(r.is_err(), "the client got an answer despite the cut: {:?}", r.map(|r| (r.status, r.text())));
    assert!(started.elapsed() < Duration::from_secs(5), "cut took {:?}", started.elapsed());
    assert_eq!(proxy.fired(id), 1);
    let entry = proxy.requests_matching("PATCH", "/blobs/uploads/").pop().unwrap();
    assert_eq!(entry.status, None);
    assert_eq!(entry.body_len, Some(1 << 20));
    assert_eq!(entry.fault.as_deref(), Some("cut body after 65536 bytes"));

    // The registry saw a broken PATCH (never 202) ...
    let patches: Vec<_> = reg.access_log_since(mark).into_iter().filter(|l| l.method == "PATCH").collect();
    assert!(patches.iter().all(|l| l.status != 202), "registry accepted the cut PATCH: {patches:?}");
    // ... that ended exactly at the cut (distribution 2.8 logs what it copied before the EOF) ...
    let log = reg.log_text();
    assert!(
        log.contains("client disconnected during blob PATCH") && log.contains("copied=65536 "),
        "registry log does not show a PATCH cut at 65536 bytes:\n{log}"
    );
    // ... and its session does not hold the full body: distribution 2.8 now refuses the client's Location
    // (its `_state` says offset 0, the session holds 65536 bytes) with 404 BLOB_UPLOAD_INVALID.
    let r = req(&proxy, "GET", &location, &[], b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "BLOB_UPLOAD_INVALID");
    // Completing the upload with the full digest fails.
    let r = req(&proxy, "PUT", &with_digest(&location, &sha256_digest(&body)), &[], b"");
    assert_ne!(r.status, 201, "PUT after a cut body succeeded");
    assert!(!reg.has_blob("faults/cut", &sha256_digest(&body)));
}

#[test]
fn proxy_drop_response_hides_an_applied_patch() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let location = start_upload(&proxy, "faults/drop");
    // Break the second PATCH: the first passes.
    let id =
        proxy.add(Rule::new(Matcher::method("PATCH").path_contains("/blobs/uploads/").skip(1), Fault::DropResponse));

    let chunk1 = fixtures::seeded_bytes(8, 3000);
    let chunk2 = fixtures::seeded_bytes(9, 5000);
    let r = req(&proxy, "PATCH", &location, &[("Content-Type", "application/octet-stream")], &chunk1);
    assert_eq!(r.status, 202);
    assert_eq!(proxy.fired(id), 0);
    let location = proxy_path(&proxy, r.header("location").unwrap());

    let started = Instant::now();
    let r = try_req(&proxy, "PATCH", &location, &[("Content-Type", "application/octet-stream")], &chunk2);
    assert!(r.is_err(), "the client got an answer despite DropResponse: {:?}", r.map(|r| r.status));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(proxy.fired(id), 1);
    let entry = proxy.requests_matching("PATCH", "/blobs/uploads/").pop().unwrap();
    assert_eq!((entry.status, entry.upstream_status), (None, Some(202)), "{}", proxy.log_text());
    assert_eq!(entry.fault.as_deref(), Some("drop response"));

    // The registry applied the second chunk although the client never heard: the Location of the dropped
    // answer (which only the proxy saw) reports all 8000 bytes.
    let mut whole = chunk1.clone();
    whole.extend_from_slice(&chunk2);
    let newest = proxy_path(&proxy, entry.upstream_header("location").expect("Location of the dropped answer"));
    assert_eq!(upload_status(&proxy, &newest), (204, Some(whole.len() as u64)), "{}", proxy.log_text());
    // distribution 2.8 cannot tell the client where it stands: its stale Location (offset 3000) and the bare
    // upload URL are refused with 404 BLOB_UPLOAD_INVALID (so a client must restart the blob with a new POST) ...
    for stale in [location.clone(), location.split('?').next().unwrap().to_string()] {
        let r = req(&proxy, "GET", &stale, &[], b"");
        assert_eq!(r.status, 404, "GET {stale}: {}", r.text());
        assert_eq!(r.json()["errors"][0]["code"], "BLOB_UPLOAD_INVALID");
    }
    // ... while the session itself lives on: with the Location the client never got, it completes.
    assert_eq!(upload_status(&proxy, &newest), (204, Some(whole.len() as u64)));
    let r = req(&proxy, "PUT", &with_digest(&newest, &sha256_digest(&whole)), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(reg.has_blob("faults/drop", &sha256_digest(&whole)));

    // A dropped PUT: the blob exists although the client got no answer.
    let location = start_upload(&proxy, "faults/drop2");
    let put = proxy.add(Rule::new(Matcher::method("PUT"), Fault::DropResponse));
    let blob = fixtures::seeded_bytes(10, 10_000);
    let digest = sha256_digest(&blob);
    let r = try_req(
        &proxy,
        "PUT",
        &with_digest(&location, &digest),
        &[("Content-Type", "application/octet-stream")],
        &blob,
    );
    assert!(r.is_err(), "the client got an answer despite DropResponse: {:?}", r.map(|r| r.status));
    assert_eq!(proxy.fired(put), 1);
    assert_eq!(proxy.requests_matching("PUT", "/blobs/uploads/").pop().unwrap().upstream_status, Some(201));
    assert!(reg.has_blob("faults/drop2", &digest));
}

#[test]
fn proxy_delay_then_forward() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let id = proxy.add(Rule::new(Matcher::method("GET"), Fault::Delay(Duration::from_millis(400))));
    let started = Instant::now();
    let r = req(&proxy, "GET", "/v2/", &[], b"");
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(proxy.fired(id), 1);
    let log = proxy.requests();
    assert_eq!((log[0].status, log[0].upstream_status), (Some(200), Some(200)));
}
