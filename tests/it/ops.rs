//! The registry operations against real registries (plain, htpasswd + TLS, token auth): `copy` within one
//! registry (mounts) and across two (streams, then skips), `tag` (one manifest PUT, none when the tag is
//! already there), `ls` over several pages, `inspect` (JSON fields; `--raw` equal to skopeo's bytes),
//! `pull` into a layout (read back by skopeo and umoci) and `index create` (skopeo sees every platform).
//! What hoist did is read from the registries' access logs and from skopeo/umoci, never from hoist alone.

use std::path::Path;

use crate::harness::*;

/// `hoist ARGS` against `reg` with its credentials (`-u … --password-stdin`) and CA when it has them.
fn hoist_on(reg: &Registry, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if reg.is_tls() {
        all.extend(["--ca-file".into(), reg.ca_pem_path().display().to_string()]);
    }
    match reg.credentials() {
        Some((user, pass)) => {
            all.extend(["-u".into(), user, "--password-stdin".into()]);
            Hoist::run_with_stdin(&all, pass.as_bytes())
        }
        None => Hoist::run(&all),
    }
}

fn token_registry() -> Registry {
    // The realm on `localhost`: crane refuses one on a loopback IP literal (see TokenIssuerOpts::realm_host).
    let opts = TokenIssuerOpts { realm_host: "localhost".into(), ..TokenIssuerOpts::default() };
    Registry::start(RegistryOpts::plain().auth(Auth::Token(opts)))
}

fn tls_htpasswd_registry() -> Registry {
    Registry::start(RegistryOpts::plain().tls().auth(Auth::htpasswd("ops", "ops-secret")))
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The outcomes in a `--metadata-file` report, e.g. `["mounted", "mounted", …]`.
fn outcomes(meta: &serde_json::Value) -> Vec<String> {
    meta["blobs"].as_array().unwrap().iter().map(|b| b["outcome"].as_str().unwrap().to_string()).collect()
}

/// Requests since `mark` with this method whose path contains `needle`.
fn requests(reg: &Registry, mark: usize, method: &str, needle: &str) -> Vec<AccessLine> {
    reg.access_log_since(mark).into_iter().filter(|l| l.method == method && l.path.contains(needle)).collect()
}

#[test]
fn copy_within_one_registry_mounts_every_blob_of_an_index() {
    let reg = token_registry();
    let work = tmp();
    let src = work.path().join("src");
    let idx = oci_index_layout(&src);
    push_layout(&src, &idx.tag, "team/app:1", &reg);
    let meta = work.path().join("meta.json");
    let digest_file = work.path().join("digest");
    let mark = reg.log_mark();
    let dest = format!("{}/prod/app:1", reg.host());
    let out = hoist_on(
        &reg,
        &[
            "copy",
            &format!("{}/team/app:1", reg.host()),
            &dest,
            "--metadata-file",
            meta.to_str().unwrap(),
            "--digest-file",
            digest_file.to_str().unwrap(),
        ],
    );
    out.assert_success().assert_no_leak("hoist-secret");
    assert_eq!(out.stdout(), format!("{dest}@{}\n", idx.index_digest));
    assert_eq!(std::fs::read_to_string(&digest_file).unwrap(), format!("{}\n", idx.index_digest));
    // Two configs and three distinct layers, all mounted: nothing read, nothing uploaded.
    let meta = read_json(&meta);
    assert_eq!(outcomes(&meta), vec!["mounted"; 5], "{meta:#}");
    assert!(reg.blob_gets_since(mark).is_empty(), "no blob may be read: {:?}", reg.blob_gets_since(mark));
    assert!(requests(&reg, mark, "PUT", "/blobs/uploads/").is_empty());
    // Children first, then the index under the tag.
    let puts: Vec<String> =
        requests(&reg, mark, "PUT", "/v2/prod/app/manifests/").iter().map(|l| l.manifest().unwrap().1).collect();
    assert_eq!(puts.len(), 3, "{puts:?}");
    assert_eq!(puts[2], "1");
    check_remote(&reg, &dest);
    assert_eq!(inspect_raw("prod/app:1", &reg), idx.index_bytes);
    for (platform, image) in &idx.images {
        assert_eq!(
            inspect_raw(&format!("prod/app@{}", image.manifest_digest), &reg),
            image.manifest_bytes,
            "{platform}"
        );
    }
    let copy = work.path().join("copy");
    copy_to_layout("prod/app:1", &reg, &copy);
    assert_same_image(&src, Some(&idx.tag), &copy, None);
}

#[test]
fn copy_across_registries_streams_each_blob_once_then_skips() {
    let from = Registry::plain();
    let to = tls_htpasswd_registry();
    let work = tmp();
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(41).layer_sizes(&[400_000, 9000, 1_200_000]).tag("v1"));
    push_layout(&src, "v1", "app:v1", &from);
    let meta = work.path().join("meta.json");
    let mark = from.log_mark();
    let src_ref = format!("{}/app:v1", from.host());
    let dest = format!("{}/promoted/app:1.0", to.host());
    // --username goes to both registries; the plain one asks for none and gets none.
    let out = hoist_on(&to, &["copy", &src_ref, &dest, "--metadata-file", meta.to_str().unwrap()]);
    out.assert_success().assert_no_leak("ops-secret");
    assert_eq!(out.stdout(), format!("{dest}@{}\n", img.manifest_digest));
    let meta = read_json(&meta);
    assert_eq!(outcomes(&meta), vec!["uploaded"; 4], "{meta:#}");
    assert!(meta["blobs"].as_array().unwrap().iter().all(|b| b["bytes"] == b["size"]));
    // Each blob read from the source exactly once, by GET, streaming into its upload.
    let mut gets: Vec<String> = from
        .blob_gets_since(mark)
        .into_iter()
        .map(|(_, d, s)| {
            assert_eq!(s, 200);
            d
        })
        .collect();
    gets.sort();
    let mut want = img.blob_digests.clone();
    want.sort();
    assert_eq!(gets, want);
    check_remote(&to, &dest);
    assert_eq!(Skopeo::new(&to).inspect_raw("promoted/app:1.0"), img.manifest_bytes);
    let copy = work.path().join("copy");
    Skopeo::new(&to).copy_to_layout("promoted/app:1.0", &copy);
    assert_same_image(&src, Some("v1"), &copy, None);

    // Again: everything is there; nothing is read from the source but its manifest.
    let mark = from.log_mark();
    let meta2 = work.path().join("meta2.json");
    hoist_on(&to, &["copy", &src_ref, &dest, "--metadata-file", meta2.to_str().unwrap()]).assert_success();
    assert_eq!(outcomes(&read_json(&meta2)), vec!["skipped"; 4]);
    assert!(from.blob_gets_since(mark).is_empty());
}

#[test]
fn tag_puts_the_exact_manifest_once_and_then_does_nothing() {
    let reg = tls_htpasswd_registry();
    let work = tmp();
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(42).tag("v1"));
    Skopeo::new(&reg).push_layout(&src, "v1", "app:build-7");
    let reference = format!("{}/app:build-7", reg.host());
    let mark = reg.log_mark();
    let out = hoist_on(&reg, &["tag", &reference, "1.4.0", "latest"]);
    out.assert_success();
    assert_eq!(out.stdout(), format!("{0}/app:1.4.0@{1}\n{0}/app:latest@{1}\n", reg.host(), img.manifest_digest));
    let log = reg.access_log_since(mark);
    assert!(log.iter().all(|l| l.blob().is_none() && !l.path.contains("/blobs/")), "no blob request: {log:?}");
    let puts: Vec<String> =
        requests(&reg, mark, "PUT", "/manifests/").iter().map(|l| l.manifest().unwrap().1).collect();
    assert_eq!(puts, vec!["1.4.0", "latest"]);
    for t in ["1.4.0", "latest"] {
        assert_eq!(Skopeo::new(&reg).inspect_raw(&format!("app:{t}")), img.manifest_bytes, "{t}");
    }
    check_remote(&reg, "app:1.4.0");
    // Already there: said so, and no manifest PUT at all (Harbor's immutable tags would answer 412).
    let mark = reg.log_mark();
    let out = hoist_on(&reg, &["tag", &reference, "latest"]);
    out.assert_success().assert_stderr_contains("already points at");
    assert!(requests(&reg, mark, "PUT", "/manifests/").is_empty());
    // A repository path is not a tag.
    hoist_on(&reg, &["tag", &reference, "other/app:1"]).assert_code(2).assert_stderr_contains("hoist copy");
}

#[test]
fn ls_follows_link_pages_to_the_last_tag() {
    let reg = tls_htpasswd_registry();
    let work = tmp();
    let src = work.path().join("src");
    oci_layout(&src, &LayoutSpec::new(43).layer_sizes(&[1000]).tag("v1"));
    Skopeo::new(&reg).push_layout(&src, "v1", "lots:t0");
    let tags: Vec<String> = (1..8).map(|i| format!("t{i}")).collect();
    let mut args = vec!["tag".to_string(), format!("{}/lots:t0", reg.host())];
    args.extend(tags.iter().cloned());
    hoist_on(&reg, &args.iter().map(String::as_str).collect::<Vec<_>>()).assert_success();
    // distribution 2.8 answers the whole list whatever `n` says (tag pagination came in v3): all 8 in one page.
    let out = hoist_on(&reg, &["ls", &format!("{}/lots", reg.host()), "--page-size", "3"]);
    out.assert_success();
    let stdout = out.stdout();
    let mut got: Vec<&str> = stdout.lines().collect();
    got.sort();
    let want: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    assert_eq!(got, want);
    let out = hoist_on(&reg, &["ls", &format!("{}/lots", reg.host()), "--json"]);
    out.assert_success();
    let json: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(json["tags"].as_array().unwrap().len(), 8);
    assert_eq!(json["repository"], format!("{}/lots", reg.host()));
    // A repository that does not exist: exit 1 with the registry's reason.
    hoist_on(&reg, &["ls", &format!("{}/nope", reg.host())]).assert_code(1).assert_stderr_contains("NAME_UNKNOWN");
}

/// distribution 2.8 cannot page a tag list, so a proxy in front of a real registry answers the three
/// pages a v3 registry (or Harbor behind one) would send for `n=3`: an absolute `Link` first, then a
/// relative one, then none. hoist must follow both forms and stop at the last page.
#[test]
fn ls_follows_link_pages_from_a_paging_registry() {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(&reg.host());
    let page = |tags: &[&str], link: Option<String>| {
        let body = serde_json::json!({"name": "lots", "tags": tags}).to_string();
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        headers.extend(link.map(|l| ("Link", format!("<{l}>; rel=\"next\""))));
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Fault::status_with(200, &headers, &body)
    };
    // Rules match paths (not queries) and fire once each, in order: page 1, 2, 3.
    let list = || Matcher::method("GET").path(PathMatch::Exact("/v2/lots/tags/list".into()));
    let first = proxy
        .add(Rule::new(list(), page(&["a", "b", "c"], Some(format!("{}/v2/lots/tags/list?last=c&n=3", proxy.url())))));
    let second = proxy.add(Rule::new(list(), page(&["d", "e", "f"], Some("/v2/lots/tags/list?last=f&n=3".into()))));
    let third = proxy.add(Rule::new(list(), page(&["g", "h"], None)));
    let out = Hoist::run(["ls", &format!("{}/lots", proxy.host()), "--page-size", "3"]);
    out.assert_success();
    assert_eq!(out.stdout(), "a\nb\nc\nd\ne\nf\ng\nh\n");
    assert_eq!([proxy.fired(first), proxy.fired(second), proxy.fired(third)], [1, 1, 1]);
    let asked: Vec<String> =
        proxy.requests().into_iter().filter(|r| r.path().contains("/tags/list")).map(|r| r.path_and_query).collect();
    assert_eq!(asked, ["/v2/lots/tags/list?n=3", "/v2/lots/tags/list?last=c&n=3", "/v2/lots/tags/list?last=f&n=3"]);
}

#[test]
fn inspect_describes_an_index_and_its_images_and_raw_matches_skopeo() {
    let reg = token_registry();
    let work = tmp();
    let src = work.path().join("src");
    let idx = oci_index_layout(&src);
    push_layout(&src, &idx.tag, "multi/app:2", &reg);
    let reference = format!("{}/multi/app:2", reg.host());

    let raw = hoist_on(&reg, &["inspect", &reference, "--raw"]);
    raw.assert_success();
    assert_eq!(raw.inner.stdout, inspect_raw("multi/app:2", &reg));

    let out = hoist_on(&reg, &["inspect", &reference, "--json"]);
    out.assert_success();
    let json: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(json["digest"], idx.index_digest.as_str());
    assert_eq!(json["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(json["size"], idx.index_bytes.len());
    let platforms: Vec<&str> =
        json["manifests"].as_array().unwrap().iter().map(|m| m["platform"].as_str().unwrap()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    let (_, arm) = &idx.images[1];
    let out = hoist_on(&reg, &["inspect", &reference, "--platform", "linux/arm64", "--json"]);
    out.assert_success();
    let json: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(json["digest"], arm.manifest_digest.as_str());
    assert_eq!(json["index"], idx.index_digest.as_str());
    assert_eq!(json["config"]["platform"], "linux/arm64");
    assert_eq!(json["config"]["digest"], arm.config_digest.as_str());
    let layers: Vec<&str> = json["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(layers, arm.layer_digests.iter().map(String::as_str).collect::<Vec<_>>());

    let config = hoist_on(&reg, &["inspect", &reference, "--platform", "linux/arm64", "--config"]);
    config.assert_success();
    assert_eq!(config.inner.stdout, arm.config_bytes);

    // Text for people names the platforms.
    hoist_on(&reg, &["inspect", &reference]).assert_success().assert_stdout_contains("linux/arm64");
    // An index's config needs a platform; a platform it lacks is named with what it has.
    hoist_on(&reg, &["inspect", &reference, "--config"]).assert_code(2).assert_stderr_contains("--platform");
    hoist_on(&reg, &["inspect", &reference, "--platform", "linux/s390x"])
        .assert_code(2)
        .assert_stderr_contains("linux/amd64, linux/arm64");
}

#[test]
fn pull_writes_a_layout_that_skopeo_and_umoci_read() {
    let reg = tls_htpasswd_registry();
    let work = tmp();
    let src = work.path().join("src");
    let idx = oci_index_layout(&src);
    Skopeo::new(&reg).push_layout(&src, &idx.tag, "multi/app:3");
    let reference = format!("{}/multi/app:3", reg.host());

    // Every platform.
    let all = work.path().join("all");
    let out = hoist_on(&reg, &["pull", &reference, "--output", &format!("oci:{}:v3", all.display())]);
    out.assert_success().assert_stderr_contains("pulled");
    assert_same_image(&src, Some(&idx.tag), &all, Some("v3"));
    let partials: Vec<_> = std::fs::read_dir(all.join("blobs/sha256"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some())
        .collect();
    assert!(partials.is_empty(), "temporary files left: {partials:?}");

    // Again into the same layout: nothing downloaded.
    let mark = reg.log_mark();
    hoist_on(&reg, &["pull", &reference, "--output", &format!("oci:{}:v3", all.display())]).assert_success();
    assert!(reg.blob_gets_since(mark).is_empty(), "{:?}", reg.blob_gets_since(mark));

    // One platform, unpacked by umoci.
    let one = work.path().join("one");
    let meta = work.path().join("meta.json");
    let out = hoist_on(
        &reg,
        &[
            "pull",
            &reference,
            "--platform",
            "linux/arm64",
            "--output",
            &format!("oci:{}:arm", one.display()),
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    out.assert_success();
    let (_, arm) = &idx.images[1];
    assert!(out.stdout().ends_with(&format!("@{}\n", arm.manifest_digest)), "{}", out.stdout());
    assert_eq!(outcomes(&read_json(&meta)), vec!["downloaded"; 3]);
    let rootfs = umoci_unpack(&one, "arm", &work.path().join("bundle"));
    // The fixture's layers each hold layer-<seed>/data.bin.
    let found: Vec<_> = std::fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("layer-"))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");

    // A directory that is not a layout is not written into.
    let foreign = work.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    hoist_on(&reg, &["pull", &reference, "--output", &format!("oci:{}", foreign.display())])
        .assert_code(2)
        .assert_stderr_contains("not an OCI image layout");
}

#[test]
fn index_create_merges_platform_images_without_reading_a_blob() {
    let reg = token_registry();
    let work = tmp();
    let src = work.path().join("src");
    let amd = oci_layout(&src, &LayoutSpec::new(51).platform("linux", "amd64").tag("amd64"));
    let arm = oci_layout(&src, &LayoutSpec::new(52).platform("linux", "arm64").tag("arm64"));
    let s390 = oci_layout(&src, &LayoutSpec::new(53).platform("linux", "s390x").tag("s390x"));
    push_layout(&src, "amd64", "app:1-amd64", &reg);
    push_layout(&src, "arm64", "app:1-arm64", &reg);
    push_layout(&src, "s390x", "other/app:s390x", &reg);
    let h = reg.host();
    let mark = reg.log_mark();
    let meta = work.path().join("meta.json");
    let out = hoist_on(
        &reg,
        &[
            "index",
            "create",
            &format!("{h}/app:1"),
            &format!("{h}/app:1-amd64"),
            &format!("{h}/app:1-arm64"),
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    out.assert_success();
    // The only blobs read are the two configs (for their platforms): no layer.
    let mut gets: Vec<String> = reg.blob_gets_since(mark).into_iter().map(|(_, d, _)| d).collect();
    gets.sort();
    let mut configs = vec![amd.config_digest.clone(), arm.config_digest.clone()];
    configs.sort();
    assert_eq!(gets, configs);
    assert_eq!(outcomes(&read_json(&meta)), vec!["skipped"; 6]);
    let raw = inspect_raw("app:1", &reg);
    assert_eq!(out.stdout(), format!("{h}/app:1@{}\n", sha256_digest(&raw)));
    check_remote(&reg, "app:1");
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let entries = |index: &serde_json::Value| -> Vec<(String, String)> {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (m["digest"].as_str().unwrap().to_string(), m["platform"]["architecture"].as_str().unwrap().to_string())
            })
            .collect()
    };
    assert_eq!(
        entries(&index),
        vec![(amd.manifest_digest.clone(), "amd64".to_string()), (arm.manifest_digest.clone(), "arm64".to_string())]
    );
    // skopeo reads every platform through the new index.
    let copy = work.path().join("copy");
    copy_to_layout("app:1", &reg, &copy);
    let blobs = blobs_of_layout(&copy);
    for d in amd.all_digests().iter().chain(&arm.all_digests()) {
        assert!(blobs.contains_key(d), "{d} missing from skopeo's copy");
    }

    // --append an image from another repository: its blobs are mounted, never read.
    let mark = reg.log_mark();
    let meta = work.path().join("meta2.json");
    hoist_on(
        &reg,
        &[
            "index",
            "create",
            &format!("{h}/app:1"),
            &format!("{h}/other/app:s390x"),
            "--append",
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    )
    .assert_success();
    let gets: Vec<String> = reg.blob_gets_since(mark).into_iter().map(|(_, d, _)| d).collect();
    assert_eq!(gets, vec![s390.config_digest.clone()]);
    assert_eq!(outcomes(&read_json(&meta)), vec!["mounted"; 3]);
    let index: serde_json::Value = serde_json::from_slice(&inspect_raw("app:1", &reg)).unwrap();
    assert_eq!(entries(&index).len(), 3);
    assert_eq!(entries(&index)[2], (s390.manifest_digest.clone(), "s390x".to_string()));
    check_remote(&reg, "app:1");
    let copy = work.path().join("copy3");
    copy_to_layout("app:1", &reg, &copy);
    assert!(blobs_of_layout(&copy).contains_key(&s390.config_digest));

    // A source that does not exist: exit 1, naming it.
    let out = hoist_on(
        &reg,
        &["index", "create", &format!("{h}/app:bad"), &format!("{h}/app:1-amd64"), &format!("{h}/app:1-amd64-again")],
    );
    out.assert_code(1).assert_stderr_contains("app:1-amd64-again");
    // Two images of one platform: refused, nothing pushed.
    oci_layout(&src, &LayoutSpec::new(54).platform("linux", "amd64").tag("amd64-again"));
    push_layout(&src, "amd64-again", "app:1-amd64-again", &reg);
    let out = hoist_on(
        &reg,
        &["index", "create", &format!("{h}/app:bad"), &format!("{h}/app:1-amd64"), &format!("{h}/app:1-amd64-again")],
    );
    out.assert_code(2).assert_stderr_contains("one image per platform");
    assert!(Skopeo::new(&reg).try_inspect_raw("app:bad").status.code() != Some(0));
}

/// One entry of a hand-made layer.
enum Tar<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    CharDevice(&'a str),
}

/// An uncompressed tar of `entries`, names written raw (the tar crate refuses `..`, which hostile
/// layers need).
fn tar_of(entries: &[Tar]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, data): (&str, &[u8]) = match e {
            Tar::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, b"")
            }
            Tar::File(n, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (n, d)
            }
            Tar::CharDevice(n) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                (n, b"")
            }
        };
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mtime(crate::harness::fixtures::FIXED_MTIME);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Every path below `root` (relative, sorted), directories included.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn pull_rootfs_applies_whiteouts_like_umoci_and_refuses_hostile_layers() {
    let reg = tls_htpasswd_registry();
    let work = tmp();
    let src = work.path().join("src");
    let lower = tar_of(&[
        Tar::Dir("etc/"),
        Tar::File("etc/keep", b"kept"),
        Tar::File("etc/gone", b"deleted above"),
        Tar::Dir("var/"),
        Tar::Dir("var/cache/"),
        Tar::File("var/cache/a", b"hidden by the opaque dir"),
    ]);
    let upper = tar_of(&[
        Tar::Dir("etc/"),
        Tar::File("etc/.wh.gone", b""),
        Tar::Dir("var/cache/"),
        Tar::File("var/cache/.wh..wh..opq", b""),
        Tar::File("var/cache/b", b"new"),
        Tar::File("hello", b"hi"),
    ]);
    oci_layout_with_tars(&src, &[lower, upper], "wh");
    Skopeo::new(&reg).push_layout(&src, "wh", "fs/app:wh");
    let reference = format!("{}/fs/app:wh", reg.host());

    let rootfs = work.path().join("rootfs");
    let out = hoist_on(&reg, &["pull", &reference, "--rootfs", rootfs.to_str().unwrap()]);
    out.assert_success().assert_stderr_contains("unpacked");
    let want = ["etc", "etc/keep", "hello", "var", "var/cache", "var/cache/b"];
    assert_eq!(tree(&rootfs), want);
    assert_eq!(std::fs::read(rootfs.join("etc/keep")).unwrap(), b"kept");
    assert_eq!(std::fs::read(rootfs.join("var/cache/b")).unwrap(), b"new");
    assert_export_matches_rootfs(&reg, &reference, None, &rootfs);
    // umoci, unpacking the same image from a layout hoist pulled, sees the same tree.
    let layout = work.path().join("layout");
    hoist_on(&reg, &["pull", &reference, "--output", &format!("oci:{}:wh", layout.display())]).assert_success();
    let umoci_rootfs = umoci_unpack(&layout, "wh", &work.path().join("bundle"));
    assert_eq!(tree(&umoci_rootfs), want);
    // A directory that is not empty is not unpacked into.
    hoist_on(&reg, &["pull", &reference, "--rootfs", rootfs.to_str().unwrap()])
        .assert_code(2)
        .assert_stderr_contains("not empty");

    // Hostile layers: a path climbing out of the root, a device node. Nothing lands outside.
    let escape = tar_of(&[Tar::File("../../escaped", b"x")]);
    oci_layout_with_tars(&src, &[escape], "escape");
    let device = tar_of(&[Tar::Dir("dev/"), Tar::CharDevice("dev/null")]);
    oci_layout_with_tars(&src, &[device], "device");
    for (tag, why) in [("escape", "climbs out of the root"), ("device", "device node")] {
        Skopeo::new(&reg).push_layout(&src, tag, &format!("fs/app:{tag}"));
        let dest = work.path().join("hostile").join(tag);
        let out =
            hoist_on(&reg, &["pull", &format!("{}/fs/app:{tag}", reg.host()), "--rootfs", dest.to_str().unwrap()]);
        out.assert_code(1).assert_stderr_contains(why).assert_stderr_contains("layer 1 (sha256:");
    }
    assert!(!work.path().join("escaped").exists() && !work.path().join("hostile/escaped").exists());
}

/// `copy` and `pull` read their source through registry mirrors as `build` does: a mirror that has the
/// image serves it (the origin is not asked), one that lacks it falls back to the origin, said on stderr.
#[test]
fn copy_and_pull_read_through_registry_mirrors() {
    let origin = Registry::plain();
    let mirror = Registry::plain();
    let work = tmp();
    let src = work.path().join("src");
    let img = oci_layout(&src, &LayoutSpec::new(61).tag("v1"));
    let only_origin = oci_layout(&src, &LayoutSpec::new(62).tag("v2"));
    push_layout(&src, "v1", "proxy/lib/app:1", &mirror);
    push_layout(&src, "v2", "lib/app:2", &origin);
    let rule = format!("{}={}/proxy", origin.host(), mirror.host());

    // pull: the mirror serves the manifest and every blob; the origin sees nothing.
    let (om, mm) = (origin.log_mark(), mirror.log_mark());
    let out_dir = work.path().join("pulled");
    let out = Hoist::run([
        "pull",
        &format!("{}/lib/app:1", origin.host()),
        "--output",
        &format!("oci:{}:v1", out_dir.display()),
        "--registry-mirror",
        &rule,
    ]);
    out.assert_success().assert_stderr_contains("from its mirror");
    assert_same_image(&src, Some("v1"), &out_dir, Some("v1"));
    assert!(origin.access_log_since(om).iter().all(|l| l.path == "/v2/"), "{:?}", origin.access_log_since(om));
    assert_eq!(mirror.blob_gets_since(mm).len(), img.blob_digests.len());

    // copy of a tag the mirror lacks: the origin serves it, and the copy lands.
    let dest = format!("{}/copied/app:2", mirror.host());
    let out = Hoist::run(["copy", &format!("{}/lib/app:2", origin.host()), &dest, "--registry-mirror", &rule]);
    out.assert_success().assert_stderr_contains("trying the next source");
    assert_eq!(out.stdout(), format!("{dest}@{}\n", only_origin.manifest_digest));
    assert_eq!(inspect_raw("copied/app:2", &mirror), only_origin.manifest_bytes);
}
