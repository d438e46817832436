//! The SBOM's file catalogers judged by syft: for a Go binary (with a dependency from the module
//! proxy), a Rust binary built with `cargo auditable` (with a dependency from crates.io), a node app
//! (lockfiles and `node_modules`), a Python wheel's dist-info and two egg-infos, and Java archives
//! (a jar with `pom.properties`, a manifest-only jar, a war with a nested jar), hoist builds an image
//! and pushes it to a real distribution registry, syft scans the pushed image, and every package
//! syft lists (purl and path) hoist lists too. What hoist lists beyond syft is only what
//! docs/sbom-provenance.md says: the packages of files syft does not read in images (`go.mod`,
//! `Cargo.lock`, npm/yarn/pnpm lockfiles).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::harness::*;

/// `(purl, path)`: a package and the file it was found in (for an archive nested in another, the
/// outer one: syft's location).
type Found = BTreeSet<(String, String)>;

/// The files whose packages hoist lists and syft does not, in an image scan (syft catalogues them in
/// directory scans only): docs/sbom-provenance.md's table.
const ONLY_HOIST: &[&str] = &["go.mod", "Cargo.lock", "package-lock.json", "yarn.lock", "pnpm-lock.yaml"];

/// Fixtures compiled once per test run, in a directory kept for the run.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch_dir("sbom-fixtures"))
}

/// A Go program using github.com/google/uuid (from the module proxy), built with the machine's Go:
/// the binary and its go.mod.
fn go_program() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = fixtures().join("gosrc");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("go.mod"), "module example.com/hello\n\ngo 1.22\n\nrequire github.com/google/uuid v1.6.0\n")
            .unwrap();
        std::fs::write(
            src.join("main.go"),
            "package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/google/uuid\"\n)\n\nfunc main() { fmt.Println(uuid.NewString()) }\n",
        )
        .unwrap();
        let go = |args: &[&str]| {
            let mut cmd = Command::new(require_tool("go"));
            cmd.current_dir(&src)
                .args(args)
                .env("GOFLAGS", "-buildvcs=false -mod=mod")
                .env("GOTOOLCHAIN", "local")
                .env("CGO_ENABLED", "0");
            cmd
        };
        run_ok(go(&["mod", "tidy"]), "go mod tidy (github.com/google/uuid from the module proxy)");
        run_ok(go(&["build", "-o", "hello", "."]), "go build");
        (src.join("hello"), src.join("go.mod"))
    })
}

/// A Rust crate depending on itoa (from crates.io), built with `cargo auditable` (pinned in
/// scripts/go-tools.sh): the binary and its Cargo.lock. The target directory outlives the run.
fn rust_program() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = fixtures().join("rustsrc");
        std::fs::create_dir_all(src.join("src")).unwrap();
        std::fs::write(
            src.join("Cargo.toml"),
            "[package]\nname = \"hello-audit\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"=1.0.11\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(src.join("src/main.rs"), "fn main() {\n    println!(\"{}\", itoa::Buffer::new().format(42));\n}\n")
            .unwrap();
        let auditable = require_go_tool("cargo-auditable");
        let mut path = vec![auditable.parent().unwrap().to_path_buf()];
        path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sbom-rust-fixture-target");
        let mut cmd = Command::new(require_tool("cargo"));
        cmd.current_dir(&src)
            .args(["auditable", "build", "--release", "--quiet"])
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET");
        run_ok(cmd, "cargo auditable build");
        (target.join("release/hello-audit"), src.join("Cargo.lock"))
    })
}

/// A zip written by Python's zipfile (an independent writer): `(name, bytes)` entries, deflated.
fn zip(to: &Path, entries: &[(&str, Vec<u8>)]) {
    let mut script = String::from("import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\n");
    for (i, (name, _)) in entries.iter().enumerate() {
        script.push_str(&format!("z.write(sys.argv[{}], {name:?})\n", i + 2));
    }
    script.push_str("z.close()\n");
    let parts = tmp();
    let mut cmd = Command::new(require_tool("python3"));
    cmd.args(["-c", &script]).arg(to);
    for (i, (_, data)) in entries.iter().enumerate() {
        let f = parts.path().join(i.to_string());
        std::fs::write(&f, data).unwrap();
        cmd.arg(f);
    }
    run_ok(cmd, "python3 zipfile");
}

fn write(ctx: &Path, path: &str, data: impl AsRef<[u8]>) {
    let to = ctx.join(path);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, data).unwrap();
}

fn copy_exe(ctx: &Path, path: &str, from: &Path) {
    write(ctx, path, std::fs::read(from).unwrap());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(ctx.join(path), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Each ecosystem's build context and the purls hoist must list for it.
fn contexts(root: &Path) -> Vec<(&'static str, PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    let go_version = go_version();
    let ctx = root.join("go");
    let (bin, go_mod) = go_program();
    copy_exe(&ctx, "usr/local/bin/hello", bin);
    write(&ctx, "src/hello/go.mod", std::fs::read(go_mod).unwrap());
    let purls = ["pkg:golang/example.com/hello", "pkg:golang/github.com/google/uuid@v1.6.0"];
    let mut go: Vec<String> = purls.map(str::to_string).into();
    go.push(format!("pkg:golang/stdlib@{go_version}"));
    out.push(("go", ctx, go));

    let ctx = root.join("rust");
    let (bin, lock) = rust_program();
    copy_exe(&ctx, "usr/local/bin/hello-audit", bin);
    write(&ctx, "src/hello-audit/Cargo.lock", std::fs::read(lock).unwrap());
    out.push(("rust", ctx, vec!["pkg:cargo/hello-audit@0.1.0".into(), "pkg:cargo/itoa@1.0.11".into()]));

    let ctx = root.join("node");
    write(
        &ctx,
        "app/package.json",
        r#"{"name":"web","version":"1.2.0","dependencies":{"left-pad":"^1.3.0","@types/node":"^20.1.0"}}"#,
    );
    write(&ctx, "app/node_modules/left-pad/package.json", r#"{"name":"left-pad","version":"1.3.0"}"#);
    write(&ctx, "app/node_modules/@types/node/package.json", r#"{"name":"@types/node","version":"20.1.0"}"#);
    write(
        &ctx,
        "app/package-lock.json",
        r#"{"name":"web","version":"1.2.0","lockfileVersion":3,"packages":{"":{"name":"web","version":"1.2.0"},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/@types/node":{"version":"20.1.0"},"node_modules/ms":{"version":"2.1.3"}}}"#,
    );
    write(&ctx, "app/yarn.lock", "# yarn lockfile v1\n\n\"@types/node@^20.1.0\":\n  version \"20.1.0\"\n\nleft-pad@^1.3.0:\n  version \"1.3.0\"\n");
    write(
        &ctx,
        "app/pnpm-lock.yaml",
        "lockfileVersion: '9.0'\n\npackages:\n  left-pad@1.3.0:\n    resolution: {integrity: sha512-y}\n  chalk@5.3.0:\n    resolution: {integrity: sha512-z}\n",
    );
    let purls = [
        "pkg:npm/%40types/node@20.1.0",
        "pkg:npm/chalk@5.3.0",
        "pkg:npm/left-pad@1.3.0",
        "pkg:npm/ms@2.1.3",
        "pkg:npm/web@1.2.0",
    ];
    out.push(("node", ctx, purls.map(str::to_string).into()));

    let ctx = root.join("python");
    let sp = "usr/lib/python3/site-packages";
    write(
        &ctx,
        &format!("{sp}/six-1.16.0.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\n",
    );
    write(&ctx, &format!("{sp}/six-1.16.0.dist-info/RECORD"), "six.py,,\n");
    write(
        &ctx,
        &format!("{sp}/simplejson-3.19.2-py3.12.egg-info/PKG-INFO"),
        "Metadata-Version: 1.2\nName: simplejson\nVersion: 3.19.2\n\n",
    );
    write(&ctx, &format!("{sp}/simplejson-3.19.2-py3.12.egg-info/top_level.txt"), "simplejson\n");
    write(&ctx, &format!("{sp}/argparse-1.2.1.egg-info"), "Metadata-Version: 1.1\nName: argparse\nVersion: 1.2.1\n\n");
    let purls = ["pkg:pypi/argparse@1.2.1", "pkg:pypi/simplejson@3.19.2", "pkg:pypi/six@1.16.0"];
    out.push(("python", ctx, purls.map(str::to_string).into()));

    let ctx = root.join("java");
    std::fs::create_dir_all(ctx.join("opt/app")).unwrap();
    let manifest = b"Manifest-Version: 1.0\r\nCreated-By: 17 (test)\r\n\r\n".to_vec();
    let pom = |g: &str, a: &str, v: &str| {
        format!("#Generated by Maven\ngroupId={g}\nartifactId={a}\nversion={v}\n").into_bytes()
    };
    zip(
        &ctx.join("opt/app/demo-1.0.0.jar"),
        &[
            ("META-INF/MANIFEST.MF", manifest.clone()),
            ("META-INF/maven/com.example/demo/pom.properties", pom("com.example", "demo", "1.0.0")),
            ("com/example/Demo.class", vec![0xca, 0xfe, 0xba, 0xbe]),
        ],
    );
    zip(
        &ctx.join("opt/app/bare-lib.jar"),
        &[(
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nImplementation-Title: bare\r\nImplementation-Version: 0.9\r\nImplementation-Vendor: org.bare\r\n\r\n".to_vec(),
        )],
    );
    let dep = fixtures().join("dep-2.1.jar");
    zip(
        &dep,
        &[
            ("META-INF/MANIFEST.MF", manifest.clone()),
            ("META-INF/maven/org.example/dep/pom.properties", pom("org.example", "dep", "2.1")),
        ],
    );
    zip(
        &ctx.join("opt/app/shop.war"),
        &[
            ("META-INF/MANIFEST.MF", manifest),
            ("WEB-INF/lib/dep-2.1.jar", std::fs::read(&dep).unwrap()),
            ("index.html", b"<html/>".to_vec()),
        ],
    );
    let purls = [
        "pkg:maven/com.example/demo@1.0.0",
        "pkg:maven/org.bare/bare-lib@0.9",
        "pkg:maven/org.example/dep@2.1",
        "pkg:maven/shop/shop",
    ];
    out.push(("java", ctx, purls.map(str::to_string).into()));
    out
}

#[test]
fn every_package_syft_lists_in_each_ecosystem_hoist_lists_with_its_path() {
    let reg = Registry::plain();
    let work = tmp();
    std::fs::write(work.path().join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    for (name, ctx, expected) in contexts(work.path()) {
        let dest = format!("{}/sbom/{name}:1", reg.host());
        let file = work.path().join(format!("{name}.cdx.json"));
        let mut cmd = Hoist::cmd();
        cmd.current_dir(work.path())
            .arg("build")
            .arg(&ctx)
            .args(["-f", "Dockerfile", "-t", &dest, "--sbom-file"])
            .arg(&file);
        Hoist::run_cmd(cmd, None).assert_success();
        assert_valid_cyclonedx(&file);
        let cdx: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let mut hoist = Found::new();
        for c in cdx["components"].as_array().unwrap() {
            let at = c["properties"][0]["value"].as_str().unwrap();
            // A nested archive's path is `outer.war:inner.jar`; syft names the outer file.
            hoist.insert((c["purl"].as_str().unwrap().to_string(), at.split(':').next().unwrap().to_string()));
        }
        let purls: BTreeSet<String> = hoist.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(purls, expected.iter().cloned().collect(), "{name}: hoist's purls");

        let syft = syft_packages(&dest);
        assert!(!syft.is_empty(), "{name}: syft lists nothing");
        let missing: Vec<_> = syft.difference(&hoist).collect();
        assert!(missing.is_empty(), "{name}: syft lists {missing:?}, hoist does not (hoist: {hoist:?})");
        let extra: Vec<_> = hoist.difference(&syft).collect();
        let unexplained: Vec<_> =
            extra.iter().filter(|(_, at)| !ONLY_HOIST.contains(&at.rsplit('/').next().unwrap())).collect();
        assert!(
            unexplained.is_empty(),
            "{name}: hoist lists {unexplained:?}, syft does not, and the docs do not say why"
        );
    }
}
