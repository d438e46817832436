//! `hoist push` against real registries: every pushed image is read back by skopeo and compared byte for
//! byte with its source; auth failures, bad sources and every credentials source are pinned with their
//! exit codes and messages.

use std::path::Path;

use crate::harness::*;
use flate2::read::GzDecoder;
use sha2::{Digest as _, Sha256};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Blob upload requests (POST …/blobs/uploads/) the registry saw since `mark`.
fn upload_posts(reg: &Registry, mark: usize) -> usize {
    reg.access_log_since(mark).iter().filter(|l| l.method == "POST" && l.path.contains("/blobs/uploads/")).count()
}

/// Registry CLI args for a TLS registry: trust its CA.
fn ca_args(reg: &Registry) -> Vec<String> {
    vec!["--ca-file".into(), reg.ca_pem_path().display().to_string()]
}

#[test]
fn push_multi_layer_layout_is_byte_identical_and_reports() {
    let reg = Registry::plain();
    let work = tmp();
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(11).layer_sizes(&[300_000, 4096, 1_500_000, 70_000]).tag("v1"));
    let dest = format!("{}/team/app:1.0", reg.host());
    let digest_file = work.path().join("digest");
    let meta_file = work.path().join("meta.json");
    let out = Hoist::run([
        "push",
        &format!("oci:{}:v1", src.display()),
        &dest,
        "--digest-file",
        digest_file.to_str().unwrap(),
        "--metadata-file",
        meta_file.to_str().unwrap(),
    ]);
    out.assert_success();
    assert_eq!(out.stdout(), format!("{dest}@{}\n", img.manifest_digest));
    assert_eq!(std::fs::read_to_string(&digest_file).unwrap(), format!("{}\n", img.manifest_digest));
    // Not a terminal: one line per blob start and end, then the summary.
    let err = out.stderr();
    assert_eq!(err.matches(" uploading (").count(), 5, "{err}");
    assert!(err.contains("pushed 1 reference, 5 blobs: 5 uploaded"), "{err}");

    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_file).unwrap()).unwrap();
    assert_eq!(meta["digest"], img.manifest_digest.as_str());
    assert_eq!(meta["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(meta["size"], img.manifest_bytes.len());
    assert_eq!(meta["references"][0], dest.as_str());
    let blobs = meta["blobs"].as_array().unwrap();
    assert_eq!(blobs.len(), 5);
    assert!(blobs.iter().all(|b| b["outcome"] == "uploaded" && b["bytes"] == b["size"]));

    // skopeo reads back exactly what the layout holds; crane, regctl and oras accept it.
    assert_eq!(inspect_raw("team/app:1.0", &reg), img.manifest_bytes);
    check_remote(&reg, &dest);
    let copy = work.path().join("copy");
    copy_to_layout("team/app:1.0", &reg, &copy);
    assert_same_image(&src, Some("v1"), &copy, None);
}

#[test]
fn push_index_layout_pushes_every_platform_then_the_index() {
    let reg = Registry::plain();
    let work = tmp();
    let src = work.path().join("src");
    let idx = oci_index_layout(&src);
    let dest = format!("{}/multi/app:{}", reg.host(), idx.tag);
    let out = Hoist::run(["push", &format!("oci:{}:{}", src.display(), idx.tag), &dest]);
    out.assert_success();
    assert_eq!(out.stdout(), format!("{dest}@{}\n", idx.index_digest));
    assert_eq!(inspect_raw(&format!("multi/app:{}", idx.tag), &reg), idx.index_bytes);
    check_remote(&reg, &dest);
    for (platform, image) in &idx.images {
        let raw = inspect_raw(&format!("multi/app@{}", image.manifest_digest), &reg);
        assert_eq!(raw, image.manifest_bytes, "{platform}");
    }
    // The layer both platforms share was uploaded once.
    let shared = out.stderr().matches(&format!("layer {} uploading", &idx.shared_layer_digest[..19])).count();
    assert_eq!(shared, 1, "{}", out.stderr());
    let copy = work.path().join("copy");
    copy_to_layout(&format!("multi/app:{}", idx.tag), &reg, &copy);
    assert_same_image(&src, Some(&idx.tag), &copy, None);
}

#[test]
fn push_docker_archive_uncompressed_layers_are_gzipped_with_matching_diff_ids() {
    let reg = Registry::plain();
    let work = tmp();
    let archive = docker_archive(&work.path().join("img.tar"), false);
    let out = Hoist::run(["push", archive.path.to_str().unwrap(), &format!("{}/arch/plain:1", reg.host())]);
    out.assert_success();
    check_archive_push(&reg, &archive, "arch/plain:1", work.path());
}

#[test]
fn push_docker_archive_compressed_layers_are_pushed_as_they_are() {
    let reg = Registry::plain();
    let work = tmp();
    let archive = docker_archive(&work.path().join("img.tar"), true);
    let src = format!("docker-archive:{}", archive.path.display());
    let out = Hoist::run(["push", &src, &format!("{}/arch/gz:1", reg.host())]);
    out.assert_success();
    let layers = check_archive_push(&reg, &archive, "arch/gz:1", work.path());
    // Compressed layers keep their bytes: their digests are the archive files' digests.
    let mut tar = tar::Archive::new(std::fs::File::open(&archive.path).unwrap());
    let mut in_archive = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().to_string();
        if archive.layer_paths.contains(&name) {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut b).unwrap();
            in_archive.push((archive.layer_paths.iter().position(|p| *p == name).unwrap(), sha256(&b)));
        }
    }
    in_archive.sort();
    assert_eq!(in_archive.into_iter().map(|(_, d)| d).collect::<Vec<_>>(), layers);
}

/// Reads the pushed image back through skopeo: the config is the archive's byte for byte, and each
/// layer gunzips to the tar whose sha256 is the config's diff_id. Returns the layer digests.
fn check_archive_push(reg: &Registry, archive: &DockerArchive, reference: &str, work: &Path) -> Vec<String> {
    let manifest: serde_json::Value = serde_json::from_slice(&inspect_raw(reference, reg)).unwrap();
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["config"]["digest"], archive.config_digest.as_str());
    check_remote(reg, reference);
    let copy = work.join("copy");
    copy_to_layout(reference, reg, &copy);
    let blobs = blobs_of_layout(&copy);
    assert_eq!(blobs[&archive.config_digest], archive.config_bytes);
    let mut layer_digests = Vec::new();
    for (i, layer) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
        let digest = layer["digest"].as_str().unwrap();
        let bytes = &blobs[digest];
        assert_eq!(sha256(bytes), digest);
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut GzDecoder::new(&bytes[..]), &mut tar).unwrap();
        assert_eq!(sha256(&tar), archive.diff_ids[i], "layer {i} does not match its diff_id");
        layer_digests.push(digest.to_string());
    }
    layer_digests
}

#[test]
fn push_several_tags_share_one_upload_and_a_repush_uploads_nothing() {
    let reg = Registry::plain();
    let work = tmp();
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(21).layer_sizes(&[200_000, 30_000]).tag("v1"));
    let tags = ["1.0", "1", "latest"];
    let dests: Vec<String> = tags.iter().map(|t| format!("{}/tags/app:{t}", reg.host())).collect();
    let mark = reg.log_mark();
    let mut args = vec!["push".to_string(), format!("oci:{}", src.display())];
    args.extend(dests.iter().cloned());
    let out = Hoist::run(&args);
    out.assert_success();
    let want: String = dests.iter().map(|d| format!("{d}@{}\n", img.manifest_digest)).collect();
    assert_eq!(out.stdout(), want);
    assert_eq!(upload_posts(&reg, mark), 3, "config + 2 layers, once for all tags");
    for t in tags {
        assert_eq!(reg.manifest_bytes("tags/app", t).unwrap(), img.manifest_bytes, "tag {t}");
    }

    let mark = reg.log_mark();
    let meta_file = work.path().join("meta.json");
    let out = Hoist::run([&args[..], &["--metadata-file".into(), meta_file.display().to_string()]].concat());
    out.assert_success();
    assert_eq!(upload_posts(&reg, mark), 0, "a re-push uploads nothing");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_file).unwrap()).unwrap();
    assert!(meta["blobs"].as_array().unwrap().iter().all(|b| b["outcome"] == "skipped" && b["bytes"] == 0));
    assert!(out.stderr().contains("0 uploaded (0 B), 3 skipped"), "{}", out.stderr());
    // Tags already pointing at the digest are not PUT again (Harbor refuses re-puts to immutable tags).
    let manifest_puts =
        reg.access_log_since(mark).iter().filter(|l| l.method == "PUT" && l.manifest().is_some()).count();
    assert_eq!(manifest_puts, 0);
}

#[test]
fn push_to_two_repositories_mounts_the_second_time() {
    let reg = Registry::plain();
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(31).layer_sizes(&[100_000]).tag("v1"));
    let meta_file = work.path().join("meta.json");
    let out = Hoist::run([
        "push",
        &format!("oci:{}", src.display()),
        &format!("{}/one/app:1", reg.host()),
        &format!("{}/two/app:1", reg.host()),
        "--metadata-file",
        meta_file.to_str().unwrap(),
    ]);
    out.assert_success();
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_file).unwrap()).unwrap();
    let outcomes: Vec<(&str, &str)> = meta["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["repository"].as_str().unwrap(), b["outcome"].as_str().unwrap()))
        .collect();
    let host = reg.host();
    assert_eq!(outcomes.iter().filter(|(r, o)| *r == format!("{host}/one/app") && *o == "uploaded").count(), 2);
    assert_eq!(outcomes.iter().filter(|(r, o)| *r == format!("{host}/two/app") && *o == "mounted").count(), 2);
}

#[test]
fn push_with_wrong_password_fails_with_auth_exit_code_and_no_leak() {
    let reg = Registry::start(RegistryOpts::plain().tls().auth(Auth::htpasswd("ci", "right-pass")));
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(41).tag("v1"));
    let mut args = vec![
        "push".to_string(),
        format!("oci:{}", src.display()),
        format!("{}/p/app:1", reg.host()),
        "--username".into(),
        "ci".into(),
        "--password-stdin".into(),
    ];
    args.extend(ca_args(&reg));
    let out = Hoist::run_with_stdin(&args, b"wrong-pass-123\n");
    out.assert_code(3).assert_stderr_contains("401").assert_stderr_contains("hint:").assert_no_leak("wrong-pass-123");
    assert!(out.stdout().is_empty());

    // The same push with the right password works (over TLS, with --ca-file).
    let out = Hoist::run_with_stdin(&args, b"right-pass\n");
    out.assert_success().assert_no_leak("right-pass");
}

#[test]
fn push_eaten_robot_name_gets_a_hint() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd("robot$proj+ci", "pw")));
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(42).tag("v1"));
    let mut cmd = Hoist::cmd();
    // What a shell leaves of robot$proj+ci in double quotes.
    cmd.args(["push", &format!("oci:{}", src.display()), &format!("{}/proj/app:1", reg.host())])
        .env("HARBOR_URL", format!("http://{}/", reg.host()))
        .env("HARBOR_USERNAME", "robot+ci")
        .env("HARBOR_PASSWORD", "pw");
    let out = Hoist::run_cmd(cmd, None);
    out.assert_code(3).assert_stderr_contains("eaten").assert_stderr_contains("HARBOR_USERNAME");
}

#[test]
fn push_tls_registry_without_its_ca_is_refused_with_a_hint() {
    let reg = Registry::start(RegistryOpts::plain().tls());
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(43).tag("v1"));
    // localhost resolves through hoist's own resolver; the certificate names it too.
    let dest = format!("localhost:{}/p/app:1", reg.port());
    let out = Hoist::run(["push", &format!("oci:{}", src.display()), &dest, "--retries", "0"]);
    out.assert_code(4).assert_stderr_contains("--ca-file");
    let out = Hoist::run([
        "push",
        &format!("oci:{}", src.display()),
        &dest,
        "--ca-file",
        reg.ca_pem_path().to_str().unwrap(),
    ]);
    out.assert_success();
}

#[test]
fn push_missing_or_malformed_source_fails_clearly() {
    let reg = Registry::plain();
    let work = tmp();
    let dest = format!("{}/p/app:1", reg.host());
    let out = Hoist::run(["push", "oci:/nonexistent/layout", &dest]);
    out.assert_code(1).assert_stderr_contains("/nonexistent/layout");
    let out = Hoist::run(["push", "/nonexistent/file.tar", &dest]);
    out.assert_code(2).assert_stderr_contains("does not exist");

    // A layout whose manifest names a blob that is not there.
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(51).tag("v1"));
    let missing = &img.layer_digests[0];
    std::fs::remove_file(src.join("blobs/sha256").join(&missing[7..])).unwrap();
    let mark = reg.log_mark();
    let out = Hoist::run(["push", &format!("oci:{}:v1", src.display()), &dest]);
    out.assert_code(1).assert_stderr_contains(missing).assert_stderr_contains("missing");
    assert_eq!(upload_posts(&reg, mark), 0, "nothing is uploaded from a broken layout");

    // A tag that is not in the layout: the error lists what is.
    let out = Hoist::run(["push", &format!("oci:{}:nope", src.display()), &dest]);
    out.assert_code(2).assert_stderr_contains("v1");

    // Not a tar at all.
    let junk = work.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive, not at all").unwrap();
    Hoist::run(["push", junk.to_str().unwrap(), &dest]).assert_code(1);

    // Usage errors: a bad reference, no destination.
    Hoist::run(["push", &format!("oci:{}", src.display()), "UPPER/Case:x"]).assert_code(2);
    Hoist::run(["push", &format!("oci:{}", src.display())]).assert_code(2);
}

/// Every credentials source, each tried alone against an htpasswd registry.
#[test]
fn push_finds_credentials_in_every_source() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::htpasswd("alice", "s3cret-pw")));
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(61).layer_sizes(&[1000]).tag("v1"));
    let host = reg.host();
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let run = |name: &str, setup: &dyn Fn(&mut std::process::Command, &Path)| {
        let home = work.path().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = Hoist::cmd_with_home(&home);
        cmd.args(["push", &format!("oci:{}", src.display()), &format!("{host}/creds/{name}:1")]);
        setup(&mut cmd, &home);
        let out = Hoist::run_cmd(cmd, None);
        out.assert_success().assert_no_leak("s3cret-pw");
        assert!(reg.manifest_bytes(&format!("creds/{name}"), "1").is_some(), "{name}");
    };
    // No credentials at all: 401 → exit 3 with the list of sources.
    let mut cmd = Hoist::cmd();
    cmd.args(["push", &format!("oci:{}", src.display()), &format!("{host}/creds/none:1")]);
    Hoist::run_cmd(cmd, None).assert_code(3).assert_stderr_contains("no credentials were found");

    let out = Hoist::run_with_stdin(
        [
            "push",
            &format!("oci:{}", src.display()),
            &format!("{host}/creds/flags:1"),
            "-u",
            "alice",
            "--password-stdin",
        ],
        b"s3cret-pw\n",
    );
    out.assert_success();
    run("harbor", &|c, _| {
        c.env("HARBOR_URL", format!("http://{host}/"))
            .env("HARBOR_USERNAME", "alice")
            .env("HARBOR_PASSWORD", "s3cret-pw");
    });
    run("gitlab", &|c, _| {
        c.env("CI_REGISTRY", &host).env("CI_REGISTRY_USER", "alice").env("CI_REGISTRY_PASSWORD", "s3cret-pw");
    });
    run("authconfig", &|c, _| {
        c.env("DOCKER_AUTH_CONFIG", format!(r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#, b64("alice:s3cret-pw")));
    });
    run("configjson", &|_, home| {
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::write(
            home.join(".docker/config.json"),
            format!(r#"{{"auths":{{"http://{host}":{{"username":"alice","password":"s3cret-pw"}}}}}}"#),
        )
        .unwrap();
    });
    run("dockerconfig", &|c, home| {
        let dir = home.join("elsewhere");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#, b64("alice:s3cret-pw")),
        )
        .unwrap();
        c.env("DOCKER_CONFIG", &dir);
    });
    // A credential helper: a script on PATH speaking docker's helper protocol.
    for (name, key) in [("helper", "credHelpers"), ("store", "credsStore")] {
        run(name, &|c, home| {
            let bin = home.join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            let script = bin.join("docker-credential-testhelper");
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n[ \"$server\" = \"{host}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\n\
                     echo '{{\"ServerURL\":\"{host}\",\"Username\":\"alice\",\"Secret\":\"s3cret-pw\"}}'\n"
                ),
            )
            .unwrap();
            std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&script).unwrap().permissions(), 0o755);
            std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            std::fs::create_dir_all(home.join(".docker")).unwrap();
            let cfg = if key == "credHelpers" {
                format!(r#"{{"credHelpers":{{"{host}":"testhelper"}}}}"#)
            } else {
                r#"{"credsStore":"testhelper"}"#.to_string()
            };
            std::fs::write(home.join(".docker/config.json"), cfg).unwrap();
            c.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
        });
    }
}

#[test]
fn push_token_auth_shares_one_token_across_concurrent_uploads() {
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::Token(TokenIssuerOpts::with_user("ci", "tok-pw"))));
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(71).layer_sizes(&[50_000, 60_000, 70_000, 80_000, 90_000, 100_000]).tag("v1"));
    reg.token_issuer().reset_counters();
    let out = Hoist::run_with_stdin(
        [
            "push",
            &format!("oci:{}", src.display()),
            &format!("{}/tok/app:1", reg.host()),
            "-u",
            "ci",
            "--password-stdin",
            "--jobs",
            "4",
        ],
        b"tok-pw",
    );
    out.assert_success().assert_no_leak("tok-pw");
    assert_eq!(
        reg.token_issuer().request_count(),
        1,
        "one token for the whole push: {:?}",
        reg.token_issuer().requests()
    );
    let copy = work.path().join("copy");
    Skopeo::new(&reg).copy_to_layout("tok/app:1", &copy);
    assert_same_image(&src, Some("v1"), &copy, None);
}

#[test]
fn push_without_push_permission_fails_before_uploading() {
    let opts = TokenIssuerOpts::with_user("reader", "pw").grant("reader", Grant::new("tok/*", &["pull"]));
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::Token(opts)));
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(81).tag("v1"));
    let mark = reg.log_mark();
    let out = Hoist::run_with_stdin(
        [
            "push",
            &format!("oci:{}", src.display()),
            &format!("{}/tok/app:1", reg.host()),
            "-u",
            "reader",
            "--password-stdin",
        ],
        b"pw",
    );
    out.assert_code(3).assert_stderr_contains("not push");
    assert_eq!(upload_posts(&reg, mark), 0);
}

#[test]
fn push_harbor_bad_credentials_anonymous_token_is_caught_early() {
    let opts = TokenIssuerOpts::with_user("robot$p+ci", "good").harbor_bad_credentials_quirk();
    let reg = Registry::start(RegistryOpts::plain().auth(Auth::Token(opts)));
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(82).tag("v1"));
    let mark = reg.log_mark();
    let out = Hoist::run_with_stdin(
        [
            "push",
            &format!("oci:{}", src.display()),
            &format!("{}/p/app:1", reg.host()),
            "-u",
            "robot$p+ci",
            "--password-stdin",
        ],
        b"bad",
    );
    out.assert_code(3).assert_stderr_contains("grants").assert_stderr_contains("robot$p+ci");
    assert_eq!(upload_posts(&reg, mark), 0);
}
