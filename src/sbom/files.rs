//! Catalogers over single files: which files are worth opening ([`wanted`]) and the packages
//! each holds ([`catalogue_file`]) — Go binaries' embedded build info, `package-lock.json`, Python
//! `*.dist-info/METADATA`. They read through `std::io::Read`, so the same code serves the files
//! of hoist's own layers (a [`Tree`](crate::builder::layer::Tree)) and entries of a layer's tar
//! stream (an existing image).

use std::io::Read;

use serde_json::Value;

use super::{purl, Package};
use crate::error::{Error, Result};

/// Lockfiles and metadata files larger than this are skipped.
pub const MAX_DOC: u64 = 64 << 20;
/// How much of a Go binary is kept from the build-info magic on (the module list follows it).
const GO_INFO_MAX: usize = 4 << 20;
/// Executables are scanned for the magic this many bytes at a time.
const CHUNK: usize = 1 << 20;

/// How a wanted file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A metadata document or lockfile, read whole (at most [`MAX_DOC`] bytes).
    Document,
    /// An executable, scanned in chunks for embedded build info (never held whole).
    Executable,
}

/// Whether the file at `path` (relative to the image root, no leading `/`) with `mode` may hold
/// packages, and how to read it.
pub fn wanted(path: &str, mode: u32) -> Option<Want> {
    let base = path.rsplit('/').next().unwrap_or(path);
    if base == "package-lock.json" || (base == "METADATA" && path.contains(".dist-info/")) {
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
    match want {
        Want::Document => {
            if size > MAX_DOC {
                return Ok(Vec::new());
            }
            let mut bytes = Vec::with_capacity(size as usize);
            r.take(MAX_DOC).read_to_end(&mut bytes).map_err(|e| Error::io(format!("{at} (for the SBOM)"), e))?;
            Ok(if base == "package-lock.json" { npm_lock(&bytes, at) } else { python_metadata(&bytes, at) })
        }
        Want::Executable => Ok(match go_buildinfo(r, at)? {
            Some(info) => go_binary(&info, at),
            None => Vec::new(),
        }),
    }
}

/// For an ELF file: the bytes from Go's build-info magic on (at most [`GO_INFO_MAX`]), read in
/// chunks so a large binary is never held whole. `None`: not ELF, or no Go build info.
fn go_buildinfo(r: &mut dyn Read, at: &str) -> Result<Option<Vec<u8>>> {
    let find = |b: &[u8]| b.windows(GO_MAGIC.len()).position(|w| w == GO_MAGIC);
    let io = |e| Error::io(format!("{at} (for the SBOM)"), e);
    let mut buf = Vec::with_capacity(CHUNK + GO_MAGIC.len());
    let mut chunk = vec![0u8; CHUNK];
    let mut first = true;
    loop {
        let n = r.read(&mut chunk).map_err(io)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if first {
            if buf.len() < 4 {
                continue;
            }
            if !buf.starts_with(b"\x7fELF") {
                return Ok(None);
            }
            first = false;
        }
        if let Some(i) = find(&buf) {
            let mut info = buf.split_off(i);
            let want = GO_INFO_MAX.saturating_sub(info.len()) as u64;
            r.take(want).read_to_end(&mut info).map_err(io)?;
            info.truncate(GO_INFO_MAX);
            return Ok(Some(info));
        }
        // Keep the tail: the magic may straddle two chunks.
        let keep = buf.len().min(GO_MAGIC.len() - 1);
        buf.drain(..buf.len() - keep);
    }
}

/// `package-lock.json` v2/v3 (`packages`, keyed `node_modules/…`) and v1 (`dependencies`).
fn npm_lock(bytes: &[u8], at: &str) -> Vec<Package> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else { return Vec::new() };
    let mut out = Vec::new();
    let mut add = |name: &str, version: &str| {
        if !name.is_empty() && !version.is_empty() {
            out.push(Package {
                purl: purl("npm", name, version),
                name: name.to_string(),
                version: version.to_string(),
                ecosystem: "npm",
                found_at: at.to_string(),
            });
        }
    };
    if let Some(packages) = v["packages"].as_object() {
        for (key, p) in packages {
            let Some(idx) = key.rfind("node_modules/") else { continue };
            if p["link"].as_bool() == Some(true) {
                continue;
            }
            let name = p["name"].as_str().unwrap_or(&key[idx + "node_modules/".len()..]);
            add(name, p["version"].as_str().unwrap_or_default());
        }
    } else if let Some(deps) = v["dependencies"].as_object() {
        for (name, p) in deps {
            add(name, p["version"].as_str().unwrap_or_default());
        }
    }
    out
}

/// A wheel's `METADATA` (RFC 822 headers): `Name` and `Version`.
fn python_metadata(bytes: &[u8], at: &str) -> Vec<Package> {
    let text = String::from_utf8_lossy(bytes);
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name.get_or_insert(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version.get_or_insert(v.trim().to_string());
        }
    }
    match (name, version) {
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => {
            vec![Package {
                purl: purl("pypi", &n.to_lowercase(), &v),
                name: n,
                version: v,
                ecosystem: "pypi",
                found_at: at.into(),
            }]
        }
        _ => Vec::new(),
    }
}

const GO_MAGIC: &[u8] = b"\xff Go buildinf:";

/// A Go binary's build info (Go 1.18+: the inline form, flag bit 2): the Go version as the
/// `stdlib` package, the main module and every `dep` (a `=>` replacement replaces the line before).
fn go_binary(bytes: &[u8], at: &str) -> Vec<Package> {
    let Some(start) = bytes.windows(GO_MAGIC.len()).position(|w| w == GO_MAGIC) else { return Vec::new() };
    let Some(header) = bytes.get(start..start + 32) else { return Vec::new() };
    if header[15] & 2 == 0 {
        // Before Go 1.18 the strings are behind pointers into the data segment: not read.
        return Vec::new();
    }
    let mut pos = start + 32;
    let mut string = || -> Option<String> {
        let (len, n) = uvarint(bytes.get(pos..)?)?;
        let s = bytes.get(pos + n..pos + n + len as usize)?;
        pos += n + len as usize;
        Some(String::from_utf8_lossy(s).into_owned())
    };
    let (Some(go_version), Some(modinfo)) = (string(), string()) else { return Vec::new() };
    // modinfo is framed by 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 { &modinfo[16..modinfo.len() - 16] } else { "" };
    let mut mods: Vec<(String, String)> = Vec::new();
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod", path, version, ..] | ["dep", path, version, ..] => {
                mods.push((path.to_string(), version.to_string()))
            }
            ["=>", path, version, ..] => {
                if let Some(last) = mods.last_mut() {
                    *last = (path.to_string(), version.to_string());
                }
            }
            _ => {}
        }
    }
    let mut out: Vec<Package> = mods
        .into_iter()
        .map(|(path, version)| Package {
            // A main module built outside version control has no version: syft writes its purl
            // without one, and so does hoist.
            purl: if version == "(devel)" {
                purl("golang", &path, "").trim_end_matches('@').to_string()
            } else {
                purl("golang", &path, &version)
            },
            name: path,
            version,
            ecosystem: "golang",
            found_at: at.to_string(),
        })
        .collect();
    if let Some(v) = go_version.strip_prefix("go") {
        let v = v.split([' ', '-']).next().unwrap_or(v);
        out.push(Package {
            purl: purl("golang", "stdlib", v),
            name: "stdlib".into(),
            version: v.into(),
            ecosystem: "golang",
            found_at: at.to_string(),
        });
    }
    out
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((x, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_and_parsers() {
        assert_eq!(purl("npm", "@scope/pkg", "1.0.0"), "pkg:npm/%40scope/pkg@1.0.0");
        let lock = br#"{"lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0"},
            "node_modules/left-pad":{"version":"1.3.0"},"node_modules/a/node_modules/b":{"version":"2.0.0"}}}"#;
        let p: Vec<String> = npm_lock(lock, "/app/package-lock.json").into_iter().map(|p| p.purl).collect();
        assert_eq!(p, vec!["pkg:npm/b@2.0.0", "pkg:npm/left-pad@1.3.0"]);
        let m = python_metadata(b"Metadata-Version: 2.1\nName: Requests\nVersion: 2.31.0\n\nName: x\n", "/m");
        assert_eq!(m[0].purl, "pkg:pypi/requests@2.31.0");
        assert_eq!(uvarint(&[0x96, 0x01]), Some((150, 2)));
    }

    /// A synthetic Go 1.18+ build info, placed so the magic straddles two read chunks.
    #[test]
    fn go_build_info_is_found_across_a_chunk_boundary() {
        let modinfo = "0123456789abcdefpath\texample.com/x\nmod\texample.com/x\tv1.0.0\th1:a\n\
                       dep\tgolang.org/x/text\tv0.14.0\th1:b\ndep\told.example/y\tv1.0.0\n\
                       =>\tnew.example/y\tv1.1.0\th1:c\n0123456789abcdef";
        let mut info = GO_MAGIC.to_vec();
        info.extend([8u8, 2]);
        info.resize(32, 0);
        for s in ["go1.22.3", modinfo] {
            let mut n = s.len();
            while n >= 0x80 {
                info.push((n as u8 & 0x7f) | 0x80);
                n >>= 7;
            }
            info.push(n as u8);
            info.extend_from_slice(s.as_bytes());
        }
        let mut file = b"\x7fELF".to_vec();
        file.resize(CHUNK - 5, 0);
        file.extend_from_slice(&info);
        file.resize(file.len() + 100, 0);
        let found = go_buildinfo(&mut file.as_slice(), "/bin").unwrap().expect("found");
        let purls: Vec<String> = go_binary(&found, "/bin").into_iter().map(|p| p.purl).collect();
        assert_eq!(
            purls,
            vec![
                "pkg:golang/example.com/x@v1.0.0",
                "pkg:golang/golang.org/x/text@v0.14.0",
                "pkg:golang/new.example/y@v1.1.0",
                "pkg:golang/stdlib@1.22.3"
            ]
        );
        assert!(go_buildinfo(&mut &b"#!/bin/sh\n"[..], "/s").unwrap().is_none());
    }
}
