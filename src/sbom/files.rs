//! Catalogers over single files: which files are worth opening ([`wanted`]) and the packages
//! each holds ([`catalogue_file`]). They read through `std::io::Read`, so the same code serves the
//! files of hoist's own layers (a [`Tree`](crate::builder::layer::Tree)) and entries of a layer's
//! tar stream (an existing image). Each ecosystem parses in its own module; this one dispatches:
//!
//! | File | Module |
//! |---|---|
//! | an executable ELF file: Go build info, `cargo auditable`'s `.dep-v0` | `golang`, `rust` (sections found by `elf`) |
//! | `go.mod` | `golang` |
//! | `Cargo.lock` | `rust` |
//! | `package-lock.json`, `yarn.lock`, `pnpm-lock.yaml`, `package.json` | `node` |
//! | `*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, an `*.egg-info` file | `python` |
//! | `*.jar`, `*.war`, `*.ear` (and the other Java archive extensions syft reads) | `java` |

use std::io::Read;

use super::{elf, golang, java, node, python, rust, Package};
use crate::error::{Error, Result};

/// Lockfiles, metadata files and Java archives larger than this are skipped.
pub const MAX_DOC: u64 = 64 << 20;
/// Executables up to this size are held whole so their section headers (at the end of the file)
/// can be read; larger ones are only scanned for Go build info, [`golang::CHUNK`] at a time.
pub const MAX_EXEC_HELD: u64 = 128 << 20;

/// How a wanted file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A metadata document, lockfile or Java archive, read whole (at most [`MAX_DOC`] bytes).
    Document,
    /// An executable: its ELF sections, or for a very large one a chunked scan for Go build info.
    Executable,
}

/// Whether the file at `path` (relative to the image root, no leading `/`) with `mode` may hold
/// packages, and how to read it.
pub fn wanted(path: &str, mode: u32) -> Option<Want> {
    let base = path.rsplit('/').next().unwrap_or(path);
    let document = matches!(base, "package-lock.json" | "package.json" | "pnpm-lock.yaml" | "Cargo.lock" | "go.mod")
        // syft skips the lockfiles of installed packages: the app's lockfile is the one that counts.
        || (base == "yarn.lock" && !path.contains("node_modules/"))
        || (base == "METADATA" && path.to_ascii_lowercase().contains(".dist-info/"))
        || (base == "PKG-INFO" && path.to_ascii_lowercase().contains(".egg-info/"))
        || base.to_ascii_lowercase().ends_with(".egg-info")
        || java::is_archive(base);
    if document {
        Some(Want::Document)
    } else if mode & 0o111 != 0 {
        Some(Want::Executable)
    } else {
        None
    }
}

/// The packages in one wanted file, read from `r` (`size` bytes). `at` is its absolute path.
pub fn catalogue_file(at: &str, want: Want, size: u64, r: &mut dyn Read) -> Result<Vec<Package>> {
    let path = at.trim_start_matches('/');
    let base = path.rsplit('/').next().unwrap_or(path);
    let io = |e| Error::io(format!("{at} (for the SBOM)"), e);
    match want {
        Want::Document => {
            if size > MAX_DOC {
                return Ok(Vec::new());
            }
            let mut bytes = Vec::with_capacity(size as usize);
            r.take(MAX_DOC).read_to_end(&mut bytes).map_err(io)?;
            Ok(match base {
                "package-lock.json" => node::npm_lock(&bytes, at),
                "package.json" => node::package_json(&bytes, at),
                "yarn.lock" => node::yarn_lock(&bytes, at),
                "pnpm-lock.yaml" => node::pnpm_lock(&bytes, at),
                "Cargo.lock" => rust::cargo_lock(&bytes, at),
                "go.mod" => golang::go_mod(&bytes, at),
                _ if java::is_archive(base) => java::archive(&bytes, at),
                _ => python::metadata(&bytes, at),
            })
        }
        Want::Executable => {
            let mut head = Vec::with_capacity(4);
            r.take(4).read_to_end(&mut head).map_err(io)?;
            if head != b"\x7fELF" {
                return Ok(Vec::new());
            }
            if size > MAX_EXEC_HELD {
                let mut rest = head.as_slice().chain(r);
                return Ok(golang::go_buildinfo(&mut rest, at)?.map(|i| golang::go_binary(&i, at)).unwrap_or_default());
            }
            let mut file = head;
            file.reserve(size as usize);
            r.take(MAX_EXEC_HELD).read_to_end(&mut file).map_err(io)?;
            Ok(executable(&file, at))
        }
    }
}

/// The packages in an ELF executable held whole: Go build info from `.go.buildinfo` (or, when the
/// section headers are stripped, from wherever its magic is) and `cargo auditable`'s `.dep-v0`.
fn executable(file: &[u8], at: &str) -> Vec<Package> {
    let sections = elf::sections(file).unwrap_or_default();
    let section = |name: &str| sections.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone());
    let mut out = Vec::new();
    let go = match section(".go.buildinfo") {
        Some(r) => Some(r.start),
        None if sections.is_empty() => memchr::memmem::find(file, golang::GO_MAGIC),
        None => None,
    };
    if let Some(start) = go {
        out.extend(golang::go_binary(&file[start..file.len().min(start + golang::GO_INFO_MAX)], at));
    }
    if let Some(r) = section(".dep-v0") {
        out.extend(rust::auditable(&file[r], at));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn wanted_files() {
        for p in [
            "app/package.json",
            "app/yarn.lock",
            "app/pnpm-lock.yaml",
            "src/Cargo.lock",
            "src/go.mod",
            "usr/lib/python3/site-packages/six-1.16.0.dist-info/METADATA",
            "usr/lib/python3/site-packages/simplejson-3.19.2-py3.12.egg-info/PKG-INFO",
            "usr/lib/python2.7/dist-packages/argparse-1.2.1.egg-info",
            "opt/app/app.jar",
            "opt/tomcat/webapps/ROOT.WAR",
        ] {
            assert_eq!(wanted(p, 0o644), Some(Want::Document), "{p}");
        }
        assert_eq!(wanted("app/node_modules/x/yarn.lock", 0o644), None);
        assert_eq!(wanted("usr/bin/tool", 0o755), Some(Want::Executable));
        assert_eq!(wanted("etc/motd", 0o644), None);
    }

    /// An ELF executable with both a `.go.buildinfo` and a `.dep-v0` section, read through `Read`.
    #[test]
    fn an_executable_is_read_by_its_sections() {
        let mut info = golang::GO_MAGIC.to_vec();
        info.extend([8u8, 2]);
        info.resize(32, 0);
        for s in ["go1.22.3", "0123456789abcdefmod\texample.com/x\tv1.0.0\th1:a\n0123456789abcdef"] {
            info.push(s.len() as u8);
            info.extend_from_slice(s.as_bytes());
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(br#"{"packages":[{"name":"hello","version":"0.1.0","source":"local","root":true}]}"#).unwrap();
        let dep = z.finish().unwrap();
        let file = elf::tests::elf64(&[(".text", &[0x90; 100]), (".go.buildinfo", &info), (".dep-v0", &dep)]);
        let got = catalogue_file("/bin/x", Want::Executable, file.len() as u64, &mut file.as_slice()).unwrap();
        let purls: Vec<&str> = got.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(purls, vec!["pkg:golang/example.com/x@v1.0.0", "pkg:golang/stdlib@1.22.3", "pkg:cargo/hello@0.1.0"]);
        assert!(catalogue_file("/s", Want::Executable, 10, &mut &b"#!/bin/sh\n"[..]).unwrap().is_empty());
    }

    /// Sections cut by objcopy from the test's real binaries (fuzz seeds too): a `cargo auditable`
    /// build of hello-audit (itoa 1.0.11) and a Go 1.26 build using github.com/google/uuid.
    #[test]
    fn real_binaries_sections() {
        let seed =
            |n: &str| std::fs::read(format!("{}/fuzz/corpus/sbom_files/{n}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let purls = |b: Vec<u8>| -> Vec<String> {
            catalogue_file("/bin/x", Want::Executable, b.len() as u64, &mut b.as_slice())
                .unwrap()
                .into_iter()
                .map(|p| p.purl)
                .collect()
        };
        assert_eq!(purls(seed("dep-v0.elf")), vec!["pkg:cargo/hello-audit@0.1.0", "pkg:cargo/itoa@1.0.11"]);
        assert_eq!(
            purls(seed("go-buildinfo.elf")),
            vec![
                "pkg:golang/example.com/hello",
                "pkg:golang/github.com/google/uuid@v1.6.0",
                "pkg:golang/stdlib@1.26.8"
            ]
        );
    }
}
