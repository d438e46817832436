//! Rust: binaries built with `cargo auditable` (the `.dep-v0` ELF section: zlib-compressed JSON
//! `{"packages":[{name, version, source, kind, dependencies, root}]}`) and `Cargo.lock`.

use std::io::Read;

use serde_json::Value;

use super::Package;

/// The decompressed `.dep-v0` JSON is refused past this (cargo-auditable's own reader caps it at 8 MiB).
const DEP_MAX: u64 = 8 << 20;

/// The packages in a `.dep-v0` section, as syft's cargo-auditable-binary-cataloger lists them:
/// every `runtime` package (a missing `kind` is runtime; `build` ones are left out), the root (the
/// binary's own crate) included, whatever its `source` (`crates.io`, `git`, `local`, `registry`):
/// all as `pkg:cargo/NAME@VERSION`.
pub fn auditable(section: &[u8], at: &str) -> Vec<Package> {
    let mut json = Vec::new();
    if flate2::read::ZlibDecoder::new(section).take(DEP_MAX + 1).read_to_end(&mut json).is_err()
        || json.len() as u64 > DEP_MAX
    {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&json) else { return Vec::new() };
    let Some(packages) = v["packages"].as_array() else { return Vec::new() };
    packages
        .iter()
        .filter(|p| p["kind"].as_str().unwrap_or("runtime") == "runtime")
        .filter_map(|p| {
            let (name, version) = (p["name"].as_str()?, p["version"].as_str()?);
            (!name.is_empty() && !version.is_empty()).then(|| Package::new("cargo", name, version, at))
        })
        .collect()
}

/// `Cargo.lock`: every `[[package]]` with a `source` (a registry or git). A package without one is
/// the workspace's own or a path dependency: syft writes no purl for it (a cargo purl without a
/// repository names a crates.io crate), and hoist leaves it out.
pub fn cargo_lock(bytes: &[u8], at: &str) -> Vec<Package> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut cur: Option<(String, String, bool)> = None;
    let mut flush = |cur: &mut Option<(String, String, bool)>| {
        if let Some((name, version, true)) = cur.take() {
            if !name.is_empty() && !version.is_empty() {
                out.push(Package::new("cargo", &name, &version, at));
            }
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            flush(&mut cur);
            if line == "[[package]]" {
                cur = Some(Default::default());
            }
            continue;
        }
        let Some(entry) = cur.as_mut() else { continue };
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim().trim_matches('"');
        match key.trim() {
            "name" => entry.0 = value.to_string(),
            "version" => entry.1 = value.to_string(),
            "source" => entry.2 = !value.is_empty(),
            _ => {}
        }
    }
    flush(&mut cur);
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn dep_v0_lists_runtime_packages_with_the_root() {
        let json = br#"{"packages":[{"name":"hello","version":"0.1.0","source":"local","dependencies":[1],"root":true},
            {"name":"itoa","version":"1.0.11","source":"crates.io"},
            {"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"},
            {"name":"forked","version":"0.2.0","source":"git"}]}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).unwrap();
        let purls: Vec<String> = auditable(&z.finish().unwrap(), "/bin/hello").into_iter().map(|p| p.purl).collect();
        assert_eq!(purls, vec!["pkg:cargo/hello@0.1.0", "pkg:cargo/itoa@1.0.11", "pkg:cargo/forked@0.2.0"]);
        assert!(auditable(b"not zlib", "/x").is_empty());
    }

    #[test]
    fn cargo_lock_lists_packages_with_a_source() {
        let lock =
            b"version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"itoa\",\n]\n\n\
                     [[package]]\nname = \"itoa\"\nversion = \"1.0.11\"\n\
                     source = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"ab\"\n\n\
                     [[package]]\nname = \"g\"\nversion = \"0.3.0\"\nsource = \"git+https://example.com/g#abc\"\n";
        let purls: Vec<String> = cargo_lock(lock, "/Cargo.lock").into_iter().map(|p| p.purl).collect();
        assert_eq!(purls, vec!["pkg:cargo/itoa@1.0.11", "pkg:cargo/g@0.3.0"]);
    }
}
