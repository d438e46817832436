//! The fuzz targets' bodies, one function per parser of untrusted input, shared by `fuzz/` (cargo
//! fuzz, nightly) and by the stable test below, which runs every seed and every past crash in
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the same function — so CI checks
//! them without nightly. Each function must never panic, whatever the bytes; errors are fine.
//!
//! Adding a target: a function here, a line in [`TARGETS`], a file in `fuzz/fuzz_targets/`, a
//! `[[bin]]` in `fuzz/Cargo.toml` and a seed directory.

use std::collections::HashMap;

use crate::builder::dockerfile;
use crate::builder::ignore::IgnoreRules;
use crate::model::{OciImageIndex, OciImageManifest, Reference};

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the `fuzz/fuzz_targets/<name>.rs` file and corpus directory) and body.
pub const TARGETS: &[(&str, Body)] = &[
    ("reference", reference),
    ("www_authenticate", www_authenticate),
    ("dockerfile", dockerfile_parse),
    ("word_expansion", word_expansion),
    ("dockerignore", dockerignore),
    ("docker_archive_manifest", docker_archive_manifest),
    ("oci_documents", oci_documents),
    ("tar_add", tar_add),
    ("tar_layer", tar_layer),
    ("error_body", error_body),
    ("helmignore", helmignore),
    ("chart_yaml", chart_yaml),
    ("chart_archive", chart_archive),
    ("registries_conf", registries_conf),
    ("package_databases", package_databases),
    ("sbom_files", sbom_files),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Image references (`host:port/repo:tag@digest`), and the safe display of URLs.
pub fn reference(data: &[u8]) {
    let s = text(data);
    if let Ok(r) = s.parse::<Reference>() {
        let again = r.to_string();
        let _ = again.parse::<Reference>();
        let _ = (r.api_host(), r.repository(), r.tag());
    }
    let _ = crate::model::safe_url::display_safe(&s);
}

/// `WWW-Authenticate` header values.
pub fn www_authenticate(data: &[u8]) {
    let _ = crate::registry::auth::parse_challenge(&text(data));
    let _ = crate::registry::auth::jwt_scopes(&text(data));
}

/// The Dockerfile parser.
pub fn dockerfile_parse(data: &[u8]) {
    let _ = dockerfile::parse(&text(data));
}

/// Shell-word expansion against a few variables; the first byte picks the escape character.
pub fn word_expansion(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else { return };
    let escape = if first % 2 == 0 { '\\' } else { '`' };
    let env: HashMap<String, String> =
        [("A", "a b"), ("EMPTY", ""), ("X", "${A}")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let s = text(rest);
    let _ = dockerfile::expand_word(&s, &env, escape);
    let _ = dockerfile::expand_words(&s, &env, escape);
}

/// `.dockerignore` patterns: the first line is a path matched against the rest.
pub fn dockerignore(data: &[u8]) {
    let s = text(data);
    let (path, rules) = s.split_once('\n').unwrap_or(("a/b/c", &s));
    let rules = IgnoreRules::parse(rules);
    let _ = rules.is_ignored(&crate::builder::ignore::clean(path));
    let _ = crate::builder::ignore::glob_match(path, "a/b/c.txt");
}

/// A `docker save` archive's `manifest.json`.
pub fn docker_archive_manifest(data: &[u8]) {
    let _ = crate::layout::docker_archive::fuzz_manifest_json(data);
}

/// OCI index, manifest and config documents as hoist reads them from layouts and registries.
pub fn oci_documents(data: &[u8]) {
    let m = crate::model::Manifest::new("", data.to_vec());
    let _ = m.digest;
    if let Ok(index) = serde_json::from_slice::<OciImageIndex>(data) {
        let _ = crate::builder::base::pick_platform(
            &index,
            &crate::builder::source::Platform::parse("linux/amd64").unwrap(),
        );
    }
    let _ = serde_json::from_slice::<OciImageManifest>(data);
    let _ = serde_json::from_slice::<serde_json::Value>(data);
}

/// Tar archives as `ADD` reads them (compressed or not).
pub fn tar_add(data: &[u8]) {
    let _ = crate::builder::layer::read_tar(data, "app", None);
}

/// Tar layers as they are unpacked to disk (COPY --from images, pull --rootfs), into a fresh temporary
/// directory that is removed after.
pub fn tar_layer(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let desc = crate::model::OciDescriptor { size: data.len() as i64, ..Default::default() };
    let _ = crate::rootfs::apply_layers([(desc, data)], &dir.path().join("root"), &Default::default());
}

/// What `--sbom` and `hoist sbom` read from images: rpm's databases (sqlite, Berkeley DB, ndb), dpkg's status, apk's
/// installed, os-release (all from a base's layers), and SPDX/CycloneDX/in-toto documents (from its
/// referrers).
pub fn package_databases(data: &[u8]) {
    let _ = crate::sbom::rpm::headers(data);
    let files: std::collections::BTreeMap<String, Vec<u8>> = [
        "etc/os-release",
        "var/lib/dpkg/status",
        "lib/apk/db/installed",
        "var/lib/rpm/rpmdb.sqlite",
        "var/lib/rpm/Packages",
    ]
    .into_iter()
    .map(|p| (p.to_string(), data.to_vec()))
    .collect();
    let _ = crate::sbom::distro::packages(&files);
    let _ = crate::sbom::import::parse(data, "fuzz");
}

/// Registry error bodies (distribution's JSON, a proxy's HTML) for every status class.
pub fn error_body(data: &[u8]) {
    for status in [400u16, 401, 404, 413, 429, 502] {
        let status = reqwest::StatusCode::from_u16(status).expect("valid status");
        let _ = crate::registry::error::describe(status, data);
    }
}

/// `.helmignore` patterns: the first line is a path matched against the rest.
pub fn helmignore(data: &[u8]) {
    let s = text(data);
    let (path, rules) = s.split_once('\n').unwrap_or(("templates/a.yaml", &s));
    if let Ok(mut rules) = crate::chart::ignore::Rules::parse(rules) {
        rules.add_defaults();
        let _ = rules.ignored(path, false);
        let _ = rules.ignored(path, true);
    }
}

/// `Chart.yaml` as helm reads it (and `Chart.lock`).
pub fn chart_yaml(data: &[u8]) {
    let _ = crate::chart::metadata::Metadata::parse(data);
    let _ = crate::chart::metadata::Lock::parse("Chart.lock", data);
}

/// A chart archive (`.tgz`) as `hoist chart push` reads one.
pub fn chart_archive(data: &[u8]) {
    let _ = crate::chart::load_archive(data);
}

/// containers' `registries.conf` mirror sections, and `--registry-mirror` items.
pub fn registries_conf(data: &[u8]) {
    let s = text(data);
    let _ = crate::registry::mirrors::Mirrors::from_registries_conf(&s, "registries.conf");
    let _ = crate::registry::mirrors::Mirrors::from_pairs(s.lines(), "--registry-mirror");
}

/// The SBOM's catalogers (`--sbom`): the same bytes as each kind of file they read — a Java archive
/// (the zip reader), an executable (ELF sections, Go build info, `.dep-v0`), the lockfiles, `go.mod`,
/// `package.json`, Python metadata.
pub fn sbom_files(data: &[u8]) {
    use crate::sbom::files::{catalogue_file, Want};
    let size = data.len() as u64;
    let _ = catalogue_file("/usr/bin/x", Want::Executable, size, &mut &data[..]);
    for at in [
        "/app/a.jar",
        "/app/yarn.lock",
        "/app/pnpm-lock.yaml",
        "/app/package-lock.json",
        "/app/package.json",
        "/src/go.mod",
        "/src/Cargo.lock",
        "/site-packages/x.egg-info",
    ] {
        let _ = catalogue_file(at, Want::Document, size, &mut &data[..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every seed and every saved crash, through its target: none may panic.
    #[test]
    fn fuzz_seeds_and_regressions_run_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut ran = 0;
        for (name, body) in TARGETS {
            let mut seeds = 0;
            for kind in ["corpus", "regressions"] {
                let Ok(dir) = std::fs::read_dir(root.join(kind).join(name)) else { continue };
                for f in dir.flatten() {
                    let data = std::fs::read(f.path()).unwrap();
                    body(&data);
                    seeds += 1;
                }
            }
            assert!(seeds > 0, "fuzz target {name} has no seed in fuzz/corpus/{name}/");
            ran += seeds;
        }
        assert!(ran >= TARGETS.len());
    }

    /// Every target has its cargo-fuzz file, so the list here and `fuzz/` cannot drift apart.
    #[test]
    fn every_target_has_a_fuzz_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        for (name, _) in TARGETS {
            assert!(root.join("fuzz_targets").join(format!("{name}.rs")).is_file(), "fuzz/fuzz_targets/{name}.rs");
            assert!(cargo.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml lacks [[bin]] {name}");
        }
    }
}
