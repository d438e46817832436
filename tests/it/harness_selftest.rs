//! Proves the harness works without hoist: real registries (plain, htpasswd+TLS, token auth) accept fixture
//! layouts pushed by skopeo and serve back the exact manifest bytes; copies out of them are byte-identical; the
//! token issuer's tokens are accepted, counted, limited by grants and really expire; wrong credentials are
//! refused; docker archives and index layouts are readable by skopeo and umoci; and the registry's access log
//! records blob GETs (so a "no GET of base blobs" assertion can fail).

use crate::harness::fixtures::{layout_manifest, seeded_bytes, LayerSpec};
use crate::harness::http::HttpAuth;
use crate::harness::skopeo::{inspect_docker_archive, inspect_docker_archive_config};
use crate::harness::*;
use std::time::Duration;

#[test]
fn harness_plain_registry_push_inspect_and_copy_back() {
    let reg = Registry::plain();
    assert!(reg.url().starts_with("http://127.0.0.1:"));
    let work = tmp();
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(1).tag("v1"));

    push_layout(&src, "v1", "selftest/plain:v1", &reg);
    assert_eq!(inspect_raw("selftest/plain:v1", &reg), img.manifest_bytes);
    assert_eq!(inspect_raw(&format!("selftest/plain@{}", img.manifest_digest), &reg), img.manifest_bytes);
    assert_eq!(reg.manifest_bytes("selftest/plain", "v1").as_deref(), Some(&img.manifest_bytes[..]));
    assert_eq!(reg.tags("selftest/plain"), vec!["v1".to_string()]);
    for d in &img.blob_digests {
        assert!(reg.has_blob("selftest/plain", d), "blob {d} not in registry");
    }
    assert!(reg.storage_dir().join("docker/registry/v2/repositories/selftest/plain").is_dir());

    // A plain copy (no --preserve-digests) keeps the OCI manifest and every blob byte for byte.
    let copy = work.path().join("copy");
    copy_to_layout("selftest/plain:v1", &reg, &copy);
    assert_same_image(&src, Some("v1"), &copy, Some("v1"));
    let copied = blobs_of_layout(&copy);
    assert_eq!(copied.len(), 1 + img.blob_digests.len());

    // And with --preserve-digests too.
    let copy2 = work.path().join("copy2");
    Skopeo::new(&reg).preserve_digests().copy_to_layout("selftest/plain:v1", &copy2);
    assert_same_image(&src, Some("v1"), &copy2, Some("v1"));
}

#[test]
fn harness_access_log_records_blob_gets() {
    let reg = Registry::plain();
    let work = tmp();
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(2).tag("base"));
    push_layout(&src, "base", "selftest/base:1", &reg);

    // Pushing checks blobs with HEAD but GETs none of them.
    let pushed: Vec<AccessLine> = reg.access_log();
    assert!(
        pushed.iter().any(|l| l.method == "PUT"
            && l.manifest() == Some(("selftest/base".into(), "1".into()))
            && l.status == 201),
        "no manifest PUT in access log:\n{}",
        reg.log_text()
    );
    assert!(reg.blob_gets_since(0).is_empty());

    let mark = reg.log_mark();
    copy_to_layout("selftest/base:1", &reg, &work.path().join("out"));
    let gets = reg.blob_gets_since(mark);
    for d in &img.blob_digests {
        assert!(
            gets.iter().any(|(r, g, s)| r == "selftest/base" && g == d && *s == 200),
            "no GET of {d} after copying from the registry; log:\n{}",
            reg.log_text()
        );
    }
    let raw_line = format!("\"GET /v2/selftest/base/blobs/{} HTTP/1.1\" 200 ", img.layer_digests[0]);
    assert!(reg.log_text().contains(&raw_line), "{raw_line} not in log");
}

#[test]
fn harness_htpasswd_tls_registry() {
    let reg = Registry::start(RegistryOpts::default().tls().auth(Auth::htpasswd("alice", "s3cret-pass")));
    assert!(reg.url().starts_with("https://127.0.0.1:"));
    assert!(std::fs::read_to_string(reg.ca_pem_path()).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    let work = tmp();
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(3));

    push_layout(&src, "latest", "selftest/tls:latest", &reg);
    assert_eq!(inspect_raw("selftest/tls:latest", &reg), img.manifest_bytes);
    let copy = work.path().join("copy");
    copy_to_layout("selftest/tls:latest", &reg, &copy);
    assert_same_image(&src, Some("latest"), &copy, Some("latest"));

    // Credentials are checked: none → 401 with a Basic challenge, wrong → 401, right → 200.
    let r = reg.request("GET", "/v2/", &HttpAuth::None, &[], b"");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic "));
    let wrong = HttpAuth::Basic("alice".into(), "wrong".into());
    assert_eq!(reg.request("GET", "/v2/", &wrong, &[], b"").status, 401);
    let right = HttpAuth::Basic("alice".into(), "s3cret-pass".into());
    assert_eq!(reg.request("GET", "/v2/", &right, &[], b"").status, 200);
    let out = Skopeo::new(&reg).creds("alice", "wrong").try_inspect_raw("selftest/tls:latest");
    assert!(!out.status.success(), "skopeo with wrong password succeeded");

    // skopeo without the CA refuses the certificate.
    let mut cmd = crate::harness::skopeo::skopeo_cmd();
    cmd.args(["inspect", "--raw", "--tls-verify=true", "--creds=alice:s3cret-pass"])
        .arg(format!("docker://{}/selftest/tls:latest", reg.host()));
    let out = crate::harness::skopeo::run(cmd);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "unexpected error: {err}");
}

#[test]
fn harness_token_auth_registry() {
    let reg = Registry::start(
        RegistryOpts::default().auth(Auth::Token(
            TokenIssuerOpts::with_user("ci", "ci-pass")
                .user("reader", "reader-pass")
                .grant("reader", Grant::new("selftest/*", &["pull"])),
        )),
    );
    let issuer = reg.token_issuer();
    assert_eq!(issuer.kid().len(), 59); // 48 base32 chars + 11 colons
    let work = tmp();
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(4));

    // The registry challenges with our issuer's realm.
    let r = reg.request("GET", "/v2/selftest/token/tags/list", &HttpAuth::None, &[], b"");
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap().to_string();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains(&format!("realm=\"{}\"", issuer.realm())), "{challenge}");
    assert!(challenge.contains("service=\"hoist-test-registry\""), "{challenge}");
    assert!(challenge.contains("scope=\"repository:selftest/token:pull\""), "{challenge}");

    issuer.reset_counters();
    push_layout(&src, "latest", "selftest/token:latest", &reg);
    assert!(issuer.request_count() >= 1);
    let scopes = issuer.requested_scopes();
    assert!(scopes.iter().any(|s| s == "repository:selftest/token:pull,push"), "scopes: {scopes:?}");
    assert!(issuer.requests().iter().all(|r| r.user.as_deref() == Some("ci") && r.authenticated));

    assert_eq!(inspect_raw("selftest/token:latest", &reg), img.manifest_bytes);
    let copy = work.path().join("copy");
    copy_to_layout("selftest/token:latest", &reg, &copy);
    assert_same_image(&src, Some("latest"), &copy, Some("latest"));

    // Wrong credentials: the issuer answers 401 and skopeo fails.
    let before = issuer.request_count();
    let out = Skopeo::new(&reg).creds("ci", "wrong").try_inspect_raw("selftest/token:latest");
    assert!(!out.status.success(), "skopeo with wrong password succeeded");
    let reqs = issuer.requests();
    assert!(reqs.len() > before);
    assert!(reqs[before..].iter().all(|r| r.status == 401 && !r.authenticated));
    let r = issuer.fetch(Some(("ci", "wrong")), &["repository:selftest/token:pull"]);
    assert_eq!(r.status, 401);

    // A token for another repository, or a garbage token, is refused by the registry.
    let other = issuer.fetch(Some(("ci", "ci-pass")), &["repository:selftest/other:pull"]);
    assert_eq!(other.status, 200);
    let other = other.json()["token"].as_str().unwrap().to_string();
    let path = format!("/v2/selftest/token/manifests/{}", img.manifest_digest);
    let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")];
    assert_eq!(reg.request("GET", &path, &HttpAuth::Bearer(other), &accept, b"").status, 401);
    assert_eq!(reg.request("GET", &path, &HttpAuth::Bearer("a.b.c".into()), &accept, b"").status, 401);
    let good = reg.auth_for(&["repository:selftest/token:pull"]);
    assert_eq!(reg.request("GET", &path, &good, &accept, b"").status, 200);

    // Grants: "reader" may pull but its push is refused by the registry.
    let reader = Skopeo::new(&reg).creds("reader", "reader-pass");
    assert_eq!(reader.inspect_raw("selftest/token:latest"), img.manifest_bytes);
    let out = reader.try_push_layout(&src, "latest", "selftest/token:reader");
    assert!(!out.status.success(), "push with a pull-only grant succeeded");
    let last = issuer.requests().pop().unwrap();
    assert_eq!(last.user.as_deref(), Some("reader"));
    assert!(last.granted.iter().all(|(_, _, actions)| actions == &vec!["pull".to_string()]));
}

#[test]
fn harness_token_lifetime_is_enforced_by_the_registry() {
    let reg = Registry::start(
        RegistryOpts::default().auth(Auth::Token(TokenIssuerOpts::default().lifetime(Duration::from_secs(2)))),
    );
    let issuer = reg.token_issuer();
    let r = issuer.fetch(Some(("hoist", "hoist-secret")), &["repository:selftest/exp:pull"]);
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["expires_in"], 2);
    assert_eq!(j["token"], j["access_token"]);
    assert!(j["issued_at"].as_str().unwrap().ends_with('Z'));
    let token = HttpAuth::Bearer(j["token"].as_str().unwrap().to_string());
    // An unknown repository answers 404 NAME_UNKNOWN once authorised, 401 when the token is refused.
    assert_eq!(reg.request("GET", "/v2/selftest/exp/tags/list", &token, &[], b"").status, 404);
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(
        reg.request("GET", "/v2/selftest/exp/tags/list", &token, &[], b"").status,
        401,
        "an expired token was accepted"
    );

    // Without the compensation, distribution's 60 s leeway keeps an "expired" token working.
    let stale = issuer.mint("hoist", &[("repository", "selftest/exp", &["pull"])], Duration::from_secs(2));
    issuer.update_opts(|o| o.compensate_registry_leeway = false);
    let uncompensated = issuer.mint("hoist", &[("repository", "selftest/exp", &["pull"])], Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(2100));
    let status =
        |t: &str| reg.request("GET", "/v2/selftest/exp/tags/list", &HttpAuth::Bearer(t.to_string()), &[], b"").status;
    assert_eq!(status(&stale), 401);
    assert_eq!(status(&uncompensated), 404, "distribution has no 60 s leeway?");
}

#[test]
fn harness_token_issuer_harbor_quirk_and_failures() {
    let reg = Registry::start(
        RegistryOpts::default().auth(Auth::Token(TokenIssuerOpts::default().harbor_bad_credentials_quirk())),
    );
    let issuer = reg.token_issuer();
    let r = issuer.fetch(Some(("hoist", "nope")), &["repository:selftest/q:pull,push"]);
    assert_eq!(r.status, 200, "Harbor quirk: bad credentials still get a token");
    let token = r.json()["token"].as_str().unwrap().to_string();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["access"], serde_json::json!([]));
    assert_eq!(claims["sub"], "");
    assert_eq!(reg.request("GET", "/v2/selftest/q/tags/list", &HttpAuth::Bearer(token), &[], b"").status, 401);
    assert!(!issuer.requests()[0].authenticated);

    issuer.fail_next(2, 503);
    assert_eq!(issuer.fetch(Some(("hoist", "hoist-secret")), &[]).status, 503);
    assert_eq!(issuer.fetch(Some(("hoist", "hoist-secret")), &[]).status, 503);
    assert_eq!(issuer.fetch(Some(("hoist", "hoist-secret")), &[]).status, 200);
    assert_eq!(issuer.request_count(), 4);
}

#[test]
fn harness_index_layout_roundtrip() {
    let reg = Registry::plain();
    let work = tmp();
    let src = work.path().join("src");
    let idx = oci_index_layout(&src);
    assert_eq!(idx.images.len(), 2);
    assert_eq!(idx.blob_digests.len(), 1 + 2 * 4 - 1, "index + 2×(manifest, config, 2 layers) − shared layer");
    let (digest, media_type, _) = layout_manifest(&src, Some("latest"));
    assert_eq!(digest, idx.index_digest);
    assert_eq!(media_type, "application/vnd.oci.image.index.v1+json");

    push_layout(&src, "latest", "selftest/multi:latest", &reg);
    assert_eq!(inspect_raw("selftest/multi:latest", &reg), idx.index_bytes);
    let copy = work.path().join("copy");
    copy_to_layout("selftest/multi:latest", &reg, &copy);
    assert_same_image(&src, Some("latest"), &copy, Some("latest"));
}

#[test]
fn harness_fixtures_are_deterministic_and_unpackable() {
    let work = tmp();
    let spec = LayoutSpec::new(9)
        .layers(vec![LayerSpec::new(90, 10_000), LayerSpec { seed: 91, size: 50_000, compressible: true }])
        .annotation("org.opencontainers.image.title", "fixture");
    let a = oci_layout(&work.path().join("a"), &spec);
    let b = oci_layout(&work.path().join("b"), &spec);
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.blob_digests, b.blob_digests);
    assert_eq!(blobs_of_layout(&work.path().join("a")), blobs_of_layout(&work.path().join("b")));
    assert!(a.layer_sizes[1] < 40_000, "compressible layer did not shrink");
    let c = oci_layout(&work.path().join("c"), &LayoutSpec::new(10));
    assert_ne!(a.manifest_digest, c.manifest_digest);

    // Every blob's name is its digest, and the config lists the layers' diff_ids.
    for (d, bytes) in blobs_of_layout(&work.path().join("a")) {
        assert_eq!(sha256_digest(&bytes), d);
    }
    let config: serde_json::Value = serde_json::from_slice(&a.config_bytes).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(a.diff_ids));

    // umoci unpacks it: the files are real.
    let bundle = work.path().join("bundle");
    let rootfs = umoci_unpack(&work.path().join("a"), "latest", &bundle);
    let data = std::fs::read(rootfs.join("layer-90/data.bin")).unwrap();
    assert_eq!(data, seeded_bytes(90, 10_000));
    assert_eq!(std::fs::metadata(rootfs.join("layer-91/data.bin")).unwrap().len(), 50_000);
}

#[test]
fn harness_docker_archive_readable_by_skopeo() {
    let work = tmp();
    for compressed in [false, true] {
        let file = work.path().join(format!("image-{compressed}.tar"));
        let arch = docker_archive(&file, compressed);
        let info = inspect_docker_archive(&file);
        let layers = info["Layers"].as_array().expect("Layers");
        assert_eq!(layers.len(), arch.diff_ids.len(), "{info}");
        if !compressed {
            // Uncompressed layers are addressed by their diff_ids.
            assert_eq!(info["Layers"], serde_json::json!(arch.diff_ids), "{info}");
        }
        assert_eq!(info["Architecture"], "amd64");
        let config = inspect_docker_archive_config(&file);
        assert_eq!(config, arch.config_bytes);
        let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(arch.diff_ids));
    }
}

#[test]
fn harness_hoist_command_has_clean_environment() {
    let cmd = Hoist::cmd();
    assert_eq!(cmd.get_program(), Hoist::bin().as_os_str());
    assert!(Hoist::bin().is_file(), "hoist binary not built");
    let envs: Vec<(String, Option<String>)> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
        .collect();
    let home = envs.iter().find(|(k, _)| k == "HOME").and_then(|(_, v)| v.clone()).expect("HOME is set");
    assert!(std::path::Path::new(&home).is_dir());
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0, "HOME is not empty");
    for (k, _) in std::env::vars() {
        if k.starts_with("CI_") || k.starts_with("HARBOR_") || k == "DOCKER_CONFIG" || k == "DOCKER_AUTH_CONFIG" {
            assert!(envs.contains(&(k.clone(), None)), "{k} is not removed");
        }
    }
}
