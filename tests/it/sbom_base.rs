//! The base image's packages in `hoist build --sbom`, and `hoist sbom REF`: crafted bases (a
//! distroless-style one with `var/lib/dpkg/status.d/*`, an alpine-style one with
//! `lib/apk/db/installed`) pushed to a real registry; syft (pinned, `registry:` scans) as the judge of
//! the purls; the registry's access log as the judge of which base layers were read, and how often.

use std::collections::BTreeSet;
use std::path::Path;

use crate::harness::fixtures::write_blob;
use crate::harness::images::{dir, file, push_synthetic, synthetic_layout, Ent};
use crate::harness::*;

const DEBIAN_OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";

/// A distroless-style base: `os-release` in `usr/lib` (with `etc/os-release` a symlink to it), one
/// dpkg status file per package in `status.d` (md5sums beside them), and a second layer that adds a
/// package and deletes one of the first layer's (a whiteout).
fn distroless_layers() -> Vec<Vec<Ent>> {
    vec![
        vec![
            dir("etc"),
            dir("usr/lib"),
            file("usr/lib/os-release", DEBIAN_OS_RELEASE),
            Ent::Symlink("etc/os-release", "../usr/lib/os-release"),
            dir("var/lib/dpkg/status.d"),
            file(
                "var/lib/dpkg/status.d/base-files",
                "Package: base-files\nStatus: install ok installed\nPriority: required\nArchitecture: amd64\n\
                 Version: 12.4+deb12u5\nDescription: Debian base system miscellaneous files\n",
            ),
            file(
                "var/lib/dpkg/status.d/libc6",
                "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc (2.36-9+deb12u4)\n\
                 Version: 2.36-9+deb12u4\nDescription: GNU C Library: Shared libraries\n Contains the libraries.\n",
            ),
            file("var/lib/dpkg/status.d/libc6.md5sums", "0123456789abcdef0123456789abcdef  lib/libc.so.6\n"),
            file(
                "var/lib/dpkg/status.d/tzdata",
                "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\nSource: tzdata (2024a-0+deb12u1)\n",
            ),
        ],
        vec![
            file(
                "var/lib/dpkg/status.d/libssl3",
                "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\n\
                 Source: openssl\nVersion: 3.0.11-1~deb12u2\nDescription: Secure Sockets Layer toolkit\n",
            ),
            Ent::Whiteout("var/lib/dpkg/status.d/tzdata"),
        ],
    ]
}

fn alpine_layers() -> Vec<Vec<Ent>> {
    vec![
        vec![
            dir("etc"),
            file(
                "etc/os-release",
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
            ),
            dir("lib/apk/db"),
            file("lib/apk/db/installed", "C:Q1old=\nP:musl\nV:1.2.4_git20230717-r3\nA:x86_64\no:musl\n\n"),
        ],
        vec![file(
            "lib/apk/db/installed",
            "C:Q1Kd=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:407278\nI:667648\nT:the musl c library\n\
             U:https://musl.libc.org/\nL:MIT\no:musl\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:1705066223\n\
             F:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\n\n\
             C:Q1Z=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nT:Crypto library from openssl\nL:Apache-2.0\no:openssl\n\
             D:so:libc.musl-x86_64.so.1\n\n\
             C:Q1Y=\nP:busybox-binsh\nV:1.36.1-r15\nA:x86_64\no:busybox\nL:GPL-2.0-only\n",
        )],
    ]
}

/// The purls of an SPDX document's packages.
fn spdx_purls(doc: &serde_json::Value) -> BTreeSet<String> {
    assert_eq!(doc["spdxVersion"], "SPDX-2.3", "{doc}");
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str().map(str::to_string))
        .collect()
}

/// The purls of a CycloneDX document's components.
fn cdx_purls(doc: &serde_json::Value) -> BTreeSet<String> {
    assert_eq!(doc["bomFormat"], "CycloneDX", "{doc}");
    doc["components"].as_array().unwrap().iter().map(|c| c["purl"].as_str().unwrap().to_string()).collect()
}

/// The SPDX referrer hoist attached to `image` (`host/repo:tag`, repository `repo`), parsed.
fn attached_spdx(reg: &Registry, repo: &str, image: &str) -> serde_json::Value {
    let listed = Hoist::run(["referrers", image, "--json"]);
    listed.assert_success();
    let v: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
    let r = v["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["artifactType"] == "application/spdx+json")
        .unwrap_or_else(|| panic!("no SPDX referrer on {image}: {v}"));
    let m: serde_json::Value =
        serde_json::from_slice(&reg.manifest_bytes(repo, r["digest"].as_str().unwrap()).unwrap()).unwrap();
    let got = reg.request(
        "GET",
        &format!("/v2/{repo}/blobs/{}", m["layers"][0]["digest"].as_str().unwrap()),
        &HttpAuth::None,
        &[],
        b"",
    );
    assert_eq!(got.status, 200, "{}", got.text());
    serde_json::from_slice(&got.body).unwrap()
}

/// `hoist build` of `ctx` with the cache directory `cache` and a fixed epoch.
fn build(work: &Path, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Hoist::cmd();
    cmd.current_dir(work).env("HOIST_CACHE_DIR", cache).env("SOURCE_DATE_EPOCH", "1700000000").arg("build").args(args);
    Hoist::run_cmd(cmd, None)
}

/// Blob GETs of `layers` since `mark`, by digest.
fn layer_gets(reg: &Registry, mark: usize, layers: &[String]) -> Vec<String> {
    reg.access_log_since(mark)
        .into_iter()
        .filter(|l| l.method == "GET")
        .filter_map(|l| l.blob().map(|(_, d)| d))
        .filter(|d| layers.contains(d))
        .collect()
}

fn context(work: &Path, base: &str) {
    let ctx = work.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nCOPY app.txt /app/\n")).unwrap();
    std::fs::write(ctx.join("app.txt"), "app\n").unwrap();
}

#[test]
fn sbom_lists_a_distroless_base_as_syft_does_reading_each_base_layer_once_ever() {
    let reg = Registry::plain();
    let work = tmp();
    let base = format!("{}/base/distroless:12", reg.host());
    let synthetic = push_synthetic(&reg, work.path(), &base, &distroless_layers(), serde_json::json!({}));
    context(work.path(), &base);
    let cache = work.path().join("cache");
    let dest = format!("{}/team/app:1", reg.host());

    // --sbom=added reads no base blob (a fresh cache: nothing could come from there).
    // (Another repository: the image is the same, and a subject's referrers are per repository.)
    let added_dest = format!("{}/team/added:1", reg.host());
    let mark = reg.log_mark();
    let out = build(work.path(), &work.path().join("cache-added"), &["ctx", "-t", &added_dest, "--sbom=added"]);
    out.assert_success();
    assert_eq!(layer_gets(&reg, mark, &synthetic.layer_digests), Vec::<String>::new(), "{}", out.stderr());
    let added = spdx_purls(&attached_spdx(&reg, "team/added", &added_dest));
    assert!(added.iter().all(|p| !p.starts_with("pkg:deb/")), "--sbom=added lists the base: {added:?}");

    // --sbom: each base layer downloaded exactly once (its headers and databases read, then dropped).
    let mark = reg.log_mark();
    let out = build(work.path(), &cache, &["ctx", "-t", &dest, "--sbom"]);
    out.assert_success().assert_stderr_contains("packages of the base");
    let mut gets = layer_gets(&reg, mark, &synthetic.layer_digests);
    gets.sort();
    let mut want = synthetic.layer_digests.clone();
    want.sort();
    assert_eq!(gets, want, "each base layer once: {}", out.stderr());
    let ours = spdx_purls(&attached_spdx(&reg, "team/app", &dest));
    let expected: BTreeSet<String> = [
        "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc%402.36-9%2Bdeb12u4",
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(ours, expected, "tzdata is deleted by the second layer's whiteout");

    // The judge: syft on the base and on the built image lists nothing hoist does not.
    for image in [&base, &dest] {
        let syft = syft_purls(image);
        assert!(!syft.is_empty(), "syft found nothing in {image}");
        let missing: Vec<&String> = syft.difference(&ours).collect();
        assert!(missing.is_empty(), "syft lists {missing:?} in {image}, hoist does not (hoist: {ours:?})");
    }

    // A rebuild on the same runner reads no base blob: the listings are cached by layer digest.
    let mark = reg.log_mark();
    let out = build(work.path(), &cache, &["ctx", "-t", &dest, "--sbom"]);
    out.assert_success();
    assert_eq!(layer_gets(&reg, mark, &synthetic.layer_digests), Vec::<String>::new(), "{}", out.stderr());
    assert_eq!(spdx_purls(&attached_spdx(&reg, "team/app", &dest)), ours);

    // Listings cached by an older hoist are read again once, then kept with the databases: those with
    // none, and those with the first set of kept files (`databases`, before rpm's Berkeley DB and ndb).
    let listings = cache.join("listings/sha256");
    for (i, layer) in synthetic.layer_digests.iter().enumerate() {
        let f = listings.join(format!("{}.json", layer.trim_start_matches("sha256:")));
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let kept = v.as_object_mut().unwrap().remove("databases_v2");
        assert!(kept.is_some(), "{v}");
        if i % 2 == 0 {
            v["databases"] = kept.unwrap();
        }
        std::fs::write(&f, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    for expected_gets in [2, 0] {
        let mark = reg.log_mark();
        build(work.path(), &cache, &["ctx", "-t", &dest, "--sbom"]).assert_success();
        assert_eq!(layer_gets(&reg, mark, &synthetic.layer_digests).len(), expected_gets);
        assert_eq!(spdx_purls(&attached_spdx(&reg, "team/app", &dest)), ours);
    }

    // `hoist sbom` of an image without an SBOM attached reads its layers and finds what the build
    // wrote (--sbom-file alone attaches nothing; it lists the base too).
    let plain = format!("{}/team/plain:1", reg.host());
    let cdx_file = work.path().join("gl.cdx.json");
    let out = build(work.path(), &cache, &["ctx", "-t", &plain, "--sbom-file", cdx_file.to_str().unwrap()]);
    out.assert_success();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&cdx_file).unwrap()).unwrap();
    let from_build = cdx_purls(&doc);
    assert_eq!(from_build, ours);
    assert_eq!(gitlab_os(&doc), ("debian".to_string(), "12".to_string()), "GitLab's OS properties");
    // Distribution packages (deb purls with qualifiers, the OS component) pass both projects' validators.
    assert_valid_cyclonedx(&cdx_file);
    let spdx_file = work.path().join("attached.spdx.json");
    std::fs::write(&spdx_file, serde_json::to_vec(&attached_spdx(&reg, "team/app", &dest)).unwrap()).unwrap();
    assert_valid_spdx(&spdx_file);
    let mark = reg.log_mark();
    let out = Hoist::run(["sbom", &plain, "--format", "cyclonedx"]);
    out.assert_success().assert_stderr_contains("from 3 layers");
    let mut gets = layer_gets(&reg, mark, &synthetic.layer_digests);
    gets.sort();
    assert_eq!(gets, want, "each base layer downloaded once");
    assert_eq!(cdx_purls(&serde_json::from_str(&out.stdout()).unwrap()), from_build);
    // And of the built image with its SBOM attached: that SBOM, no layer read.
    let mark = reg.log_mark();
    let out = Hoist::run(["sbom", &dest]);
    out.assert_success().assert_stderr_contains("from referrer sha256:");
    assert_eq!(spdx_purls(&serde_json::from_str(&out.stdout()).unwrap()), ours);
    assert_eq!(layer_gets(&reg, mark, &synthetic.layer_digests), Vec::<String>::new());
}

#[test]
fn sbom_of_an_alpine_style_base_and_of_its_oci_layout_lists_what_syft_lists() {
    let reg = Registry::plain();
    let work = tmp();
    let base = format!("{}/base/alpine:3.19", reg.host());
    push_synthetic(&reg, work.path(), &base, &alpine_layers(), serde_json::json!({}));
    let expected: BTreeSet<String> = [
        "pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1&upstream=busybox",
        "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl",
        "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1",
    ]
    .into_iter()
    .map(String::from)
    .collect();

    let out = Hoist::run(["sbom", &base, "--format", "spdx"]);
    out.assert_success();
    let ours = spdx_purls(&serde_json::from_str(&out.stdout()).unwrap());
    assert_eq!(ours, expected, "the upper layer's database replaces the lower one's");
    let spdx_file = work.path().join("alpine.spdx.json");
    std::fs::write(&spdx_file, out.stdout()).unwrap();
    assert_valid_spdx(&spdx_file);
    let syft = syft_purls(&base);
    assert!(!syft.is_empty());
    let missing: Vec<&String> = syft.difference(&ours).collect();
    assert!(missing.is_empty(), "syft lists {missing:?}, hoist does not (hoist: {ours:?})");

    // The same image as an OCI layout, to a file, in GitLab's CycloneDX.
    let layout = work.path().join("layout");
    synthetic_layout(&layout, "3.19", &alpine_layers(), serde_json::json!({}));
    let file = work.path().join("gl.json");
    let out = Hoist::run([
        "sbom",
        &format!("oci:{}:3.19", layout.display()),
        "--format",
        "gitlab",
        "-o",
        file.to_str().unwrap(),
    ]);
    out.assert_success();
    assert_eq!(out.stdout(), "", "the document goes to the file");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(cdx_purls(&doc), expected);
    let props: Vec<&str> =
        doc["metadata"]["properties"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(props.contains(&"gitlab:meta:schema_version"), "{props:?}");
    assert_eq!(gitlab_os(&doc), ("alpine".to_string(), "3.19.1".to_string()), "GitLab's OS properties");
    assert_valid_cyclonedx(&file);

    // In a build: the base's packages beside the added files'.
    context(work.path(), &base);
    let dest = format!("{}/team/alpine-app:1", reg.host());
    let out = build(work.path(), &work.path().join("cache"), &["ctx", "-t", &dest, "--sbom"]);
    out.assert_success();
    assert_eq!(spdx_purls(&attached_spdx(&reg, "team/alpine-app", &dest)), expected);
}

#[test]
fn sbom_uses_the_spdx_referrer_a_base_carries_instead_of_its_layers() {
    let reg = Registry::plain();
    let work = tmp();
    let base = format!("{}/base/carried:1", reg.host());
    let synthetic = push_synthetic(&reg, work.path(), &base, &distroless_layers(), serde_json::json!({}));
    // The base's own SBOM (as a vendor attaches it), naming a package its layers do not hold: the
    // build's SBOM lists it only if the referrer was read.
    let doc = serde_json::json!({
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "vendor",
        "documentNamespace": "https://vendor.example/spdx/1", "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: vendor"]},
        "packages": [{
            "name": "vendored", "SPDXID": "SPDXRef-Package-1", "versionInfo": "9.9.9", "downloadLocation": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:deb/debian/vendored@9.9.9?arch=amd64&distro=debian-12"}]
        }]
    });
    let f = work.path().join("base.spdx.json");
    std::fs::write(&f, serde_json::to_vec(&doc).unwrap()).unwrap();
    Hoist::run(["attach", &base, "--artifact-type", "application/spdx+json", f.to_str().unwrap()]).assert_success();

    context(work.path(), &base);
    let dest = format!("{}/team/carried:1", reg.host());
    let mark = reg.log_mark();
    let out = build(work.path(), &work.path().join("cache"), &["ctx", "-t", &dest, "--sbom"]);
    out.assert_success().assert_stderr_contains("from referrer sha256:");
    assert_eq!(layer_gets(&reg, mark, &synthetic.layer_digests), Vec::<String>::new(), "{}", out.stderr());
    let ours = spdx_purls(&attached_spdx(&reg, "team/carried", &dest));
    assert_eq!(ours, BTreeSet::from(["pkg:deb/debian/vendored@9.9.9?arch=amd64&distro=debian-12".to_string()]));
}

#[test]
fn sbom_of_a_distroless_style_build_lists_the_copied_package_databases_as_syft_does() {
    let reg = Registry::plain();
    let work = tmp();
    let src = format!("{}/base/debian-files:12", reg.host());
    push_synthetic(&reg, work.path(), &src, &distroless_layers(), serde_json::json!({}));
    // As distroless images are made: the package records copied from another image, FROM scratch.
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY --from={src} /usr/lib/os-release /usr/lib/os-release\n\
             COPY --from={src} /var/lib/dpkg/status.d/ /var/lib/dpkg/status.d/\n"
        ),
    )
    .unwrap();
    let dest = format!("{}/team/distroless:1", reg.host());
    let out = build(work.path(), &work.path().join("cache"), &["ctx", "-t", &dest, "--sbom"]);
    out.assert_success();
    let ours = spdx_purls(&attached_spdx(&reg, "team/distroless", &dest));
    assert_eq!(ours.len(), 3, "base-files, libc6, libssl3 (tzdata was deleted in the source image): {ours:?}");
    assert!(ours.iter().all(|p| p.starts_with("pkg:deb/debian/") && p.contains("distro=debian-12")), "{ours:?}");
    let syft = syft_purls(&dest);
    assert_eq!(syft.len(), 3, "syft sees the same three: {syft:?}");
    let missing: Vec<&String> = syft.difference(&ours).collect();
    assert!(missing.is_empty(), "syft lists {missing:?}, hoist does not (hoist: {ours:?})");
}

/// Pushes (with skopeo, digests kept) a base of one layer holding `files` as `REGISTRY/base/NAME:TAG`,
/// runs `hoist sbom` on it and returns the base's reference, the CycloneDX document and its purls.
fn sbom_of_one_layer_base(
    reg: &Registry,
    work: &Path,
    name_tag: (&str, &str),
    files: &[(&str, &[u8])],
) -> (String, String, BTreeSet<String>) {
    let (name, tag) = name_tag;
    let layout = work.join(format!("layout-{name}"));
    oci_layout_with_tars(&layout, &[tar_of(files)], tag);
    let base = format!("{}/base/{name}:{tag}", reg.host());
    Skopeo::new(reg).preserve_digests().push_layout(&layout, tag, &base);
    let out = Hoist::run(["sbom", &base, "--format", "cyclonedx"]);
    out.assert_success();
    let purls = cdx_purls(&serde_json::from_str(&out.stdout()).unwrap());
    (base, out.stdout(), purls)
}

/// One uncompressed layer tar of (path, bytes) regular files (binary content allowed).
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        h.set_size(bytes.len() as u64);
        h.set_path(path).unwrap();
        h.set_cksum();
        b.append(&h, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn sbom_of_an_rpm_sqlite_base_lists_what_syft_lists() {
    let reg = Registry::plain();
    let work = tmp();
    // rpmdb.sqlite written by sqlite itself (python3's sqlite3) with rpm's schema; the header blobs
    // are crafted by the script (no rpm database from a real distribution is available offline here).
    let db = work.path().join("rpmdb.sqlite");
    let mut py = std::process::Command::new(require_tool("python3"));
    py.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sbom/mkrpmdb.py")).arg(&db);
    let out = run_with_timeout(py, None, TOOL_TIMEOUT);
    assert!(out.status.success(), "mkrpmdb.py: {}", String::from_utf8_lossy(&out.stderr));
    let db = std::fs::read(&db).unwrap();
    let os_release = b"NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\n";
    let files: &[(&str, &[u8])] = &[("etc/os-release", os_release), ("var/lib/rpm/rpmdb.sqlite", &db)];
    let (base, cdx, ours) = sbom_of_one_layer_base(&reg, work.path(), ("ubi", "9"), files);
    let cdx_file = work.path().join("rpm.cdx.json");
    std::fs::write(&cdx_file, cdx).unwrap();
    assert_valid_cyclonedx(&cdx_file);
    assert_eq!(ours.len(), 305, "every header of the Packages table (its b-tree has interior pages)");
    for p in [
        "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rhel-9.3&epoch=1&upstream=openssl-3.0.7-24.el9.src.rpm",
        "pkg:rpm/redhat/gpg-pubkey@fd431d51-4ae0493b?distro=rhel-9.3",
        "pkg:rpm/redhat/big-files@1.0-1.el9?arch=x86_64&distro=rhel-9.3&upstream=big-1.0-1.el9.src.rpm",
    ] {
        assert!(ours.contains(p), "{p} (a header on overflow pages: big-files) missing from {ours:?}");
    }
    let syft = syft_purls(&base);
    assert_eq!(syft.len(), 305, "syft reads the same database");
    let missing: Vec<&String> = syft.difference(&ours).collect();
    assert!(missing.is_empty(), "syft lists {missing:?}, hoist does not");
}

/// rpm's three database formats (tests/data/sbom/mkrpmdbs.py: packages built by rpmbuild, stored by
/// rpm in its sqlite database; the same headers in a Berkeley DB hash file written by db_load and in an
/// ndb file): each base's packages, from `hoist sbom` and from a `--sbom` build on it, are exactly
/// syft's. The Berkeley DB base is RHEL 8's layout, the ndb one openSUSE's.
#[test]
fn sbom_of_rpm_bases_in_sqlite_berkeley_db_and_ndb_lists_what_syft_lists() {
    let reg = Registry::plain();
    let work = tmp();
    for tool in ["rpm", "rpmbuild"] {
        require_tool_hint(tool, "apt-get install rpm");
    }
    require_tool_hint("db5.3_load", "apt-get install db5.3-util");
    let dbs = work.path().join("dbs");
    std::fs::create_dir_all(&dbs).unwrap();
    let mut py = std::process::Command::new(require_tool("python3"));
    py.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sbom/mkrpmdbs.py")).arg(&dbs);
    let made = run_ok(py, "mkrpmdbs.py");
    assert_eq!(made.lines().count(), 4, "{made}");
    let rhel: &[u8] = b"NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"8.9\"\n";
    let suse: &[u8] = b"NAME=\"openSUSE Leap\"\nID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"\n";
    let cases = [
        ("sqlite", "sqlite/rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite", rhel, "redhat", "rhel-8.9"),
        ("bdb", "bdb/Packages", "var/lib/rpm/Packages", rhel, "redhat", "rhel-8.9"),
        ("ndb", "ndb/Packages.db", "usr/lib/sysimage/rpm/Packages.db", suse, "opensuse", "opensuse-leap-15.5"),
    ];
    for (kind, file, at, os_release, ns, distro) in cases {
        let db = std::fs::read(dbs.join(file)).unwrap();
        let (base, _, ours) =
            sbom_of_one_layer_base(&reg, work.path(), (kind, "1"), &[("etc/os-release", os_release), (at, &db)]);
        let ssl = format!(
            "pkg:rpm/{ns}/openssl-libs@1.1.1k-9.el8_7?arch=x86_64&distro={distro}&epoch=1&upstream=openssl-libs-1.1.1k-9.el8_7.src.rpm"
        );
        assert!(ours.contains(&ssl), "{kind}: {ssl} missing from {ours:?}");
        assert_eq!(ours.len(), 4, "{kind}: {ours:?}");
        assert_eq!(syft_purls(&base), ours, "{kind}: syft and hoist list the same packages");

        context(work.path(), &base);
        let dest = format!("{}/team/rpm-{kind}:1", reg.host());
        build(work.path(), &work.path().join("cache"), &["ctx", "-t", &dest, "--sbom"]).assert_success();
        assert_eq!(spdx_purls(&attached_spdx(&reg, &format!("team/rpm-{kind}"), &dest)), ours, "{kind}: the build's");
    }
}

#[test]
fn sbom_uses_buildkits_attestation_in_the_bases_index() {
    let reg = Registry::plain();
    let work = tmp();
    // An index as BuildKit pushes one with --sbom: the image, and an attestation manifest
    // (unknown/unknown) for it whose in-toto layer holds an SPDX statement.
    let layout = work.path().join("layout");
    let image = synthetic_layout(&layout, "img", &alpine_layers(), serde_json::json!({}));
    let image_size =
        std::fs::metadata(layout.join("blobs/sha256").join(image.manifest_digest.trim_start_matches("sha256:")))
            .unwrap()
            .len();
    let purl = "pkg:apk/alpine/from-buildkit@1.0-r0?arch=x86_64&distro=alpine-3.19.1";
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "img", "digest": {"sha256": image.manifest_digest.trim_start_matches("sha256:")}}],
        "predicate": {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "buildkit", "packages": [{
            "name": "from-buildkit", "SPDXID": "SPDXRef-1", "versionInfo": "1.0-r0",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}]
        }]},
    });
    let statement = serde_json::to_vec(&statement).unwrap();
    let statement_digest = write_blob(&layout, &statement);
    let config = br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = write_blob(&layout, config);
    let attestation = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement_digest, "size": statement.len(),
                    "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}],
    }))
    .unwrap();
    let attestation_digest = write_blob(&layout, &attestation);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.manifest_digest, "size": image_size,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": attestation_digest, "size": attestation.len(),
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": image.manifest_digest}},
        ],
    }))
    .unwrap();
    let index_digest = write_blob(&layout, &index);
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest, "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "3.19"}}]}))
        .unwrap(),
    )
    .unwrap();
    let base = format!("{}/base/buildkit:3.19", reg.host());
    Hoist::run(["push", &format!("oci:{}:3.19", layout.display()), &base]).assert_success();

    let mark = reg.log_mark();
    let out = Hoist::run(["sbom", &base]);
    out.assert_success().assert_stderr_contains("from BuildKit attestation sha256:");
    assert_eq!(spdx_purls(&serde_json::from_str(&out.stdout()).unwrap()), BTreeSet::from([purl.to_string()]));
    assert_eq!(layer_gets(&reg, mark, &image.layer_digests), Vec::<String>::new(), "no layer read");

    context(work.path(), &base);
    let dest = format!("{}/team/from-buildkit:1", reg.host());
    let out = build(work.path(), &work.path().join("cache"), &["ctx", "-t", &dest, "--sbom"]);
    out.assert_success().assert_stderr_contains("from BuildKit attestation");
    assert_eq!(spdx_purls(&attached_spdx(&reg, "team/from-buildkit", &dest)), BTreeSet::from([purl.to_string()]));
}

/// GitLab's `operating_system:name` and `:version` properties of a CycloneDX document's metadata.
fn gitlab_os(doc: &serde_json::Value) -> (String, String) {
    let prop = |name: &str| {
        doc["metadata"]["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == format!("gitlab:container_scanning:operating_system:{name}"))
            .and_then(|p| p["value"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    (prop("name"), prop("version"))
}
