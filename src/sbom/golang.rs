//! Go: a binary's embedded build info (the main module, every dependency, the Go version as
//! `stdlib`) and `go.mod` (its `require`s, as syft's go-module-file-cataloger lists them).

use std::collections::BTreeMap;
use std::io::Read;

use super::{purl, Package};
use crate::error::{Error, Result};

/// How much of a Go binary is kept from the build-info magic on (the module list follows it).
pub const GO_INFO_MAX: usize = 4 << 20;
/// Executables too large to hold are scanned for the magic this many bytes at a time.
pub const CHUNK: usize = 1 << 20;

/// For an ELF file: the bytes from Go's build-info magic on (at most [`GO_INFO_MAX`]), read in
/// chunks so a large binary is never held whole. `None`: not ELF, or no Go build info.
pub fn go_buildinfo(r: &mut dyn Read, at: &str) -> Result<Option<Vec<u8>>> {
    let find = |b: &[u8]| memchr::memmem::find(b, GO_MAGIC);
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

pub const GO_MAGIC: &[u8] = b"\xff Go buildinf:";

/// A Go binary's build info (Go 1.18+: the inline form, flag bit 2): the Go version as the
/// `stdlib` package, the main module and every `dep` (a `=>` replacement replaces the line before).
pub fn go_binary(bytes: &[u8], at: &str) -> Vec<Package> {
    let Some(start) = memchr::memmem::find(bytes, GO_MAGIC) else { return Vec::new() };
    let Some(header) = bytes.get(start..start + 32) else { return Vec::new() };
    if header[15] & 2 == 0 {
        // Before Go 1.18 the strings are behind pointers into the data segment: not read.
        return Vec::new();
    }
    let mut pos = start + 32;
    let mut string = || -> Option<&[u8]> {
        let (len, n) = uvarint(bytes.get(pos..)?)?;
        let end = (pos + n).checked_add(usize::try_from(len).ok()?)?;
        let s = bytes.get(pos + n..end)?;
        pos = end;
        Some(s)
    };
    let (Some(go_version), Some(modinfo)) = (string(), string()) else { return Vec::new() };
    let go_version = String::from_utf8_lossy(go_version);
    // modinfo is framed by 16-byte sentinels (cut as bytes: the text between need not be UTF-8).
    let modinfo = String::from_utf8_lossy(if modinfo.len() >= 33 { &modinfo[16..modinfo.len() - 16] } else { b"" });
    let mut mods: Vec<(String, String)> = Vec::new();
    let mut main_path = None;
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["path", path, ..] => main_path = Some(path.to_string()),
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
    // A binary built in GOPATH mode has a `path` line and no `mod` line: syft names its main
    // package by that path, without a version.
    if !modinfo.lines().any(|l| l.starts_with("mod\t")) {
        if let Some(path) = main_path {
            mods.insert(0, (path, "(devel)".to_string()));
        }
    }
    let mut out: Vec<Package> = mods
        .into_iter()
        .map(|(path, version)| Package {
            purl: go_purl(&path, &version),
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

/// A Go purl; a version-less module (a main module built outside version control, `(devel)`, or a
/// `go.mod` replacement by a local directory) gets none, as syft writes it.
fn go_purl(path: &str, version: &str) -> String {
    purl("golang", path, if version == "(devel)" { "" } else { version })
}

/// `go.mod`: every `require` (direct and `// indirect`); a `replace` by another module replaces
/// it, one by a local directory keeps the path with the replacement's (empty) version; an
/// `exclude` removes it. The `module` itself is not a package (syft lists it only from source).
pub fn go_mod(bytes: &[u8], at: &str) -> Vec<Package> {
    let text = String::from_utf8_lossy(bytes);
    let mut mods: BTreeMap<String, String> = BTreeMap::new();
    let mut block: Option<String> = None;
    let mut replaces = Vec::new();
    let mut excludes = Vec::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let (verb, rest) = match &block {
            Some(_) if line == ")" => {
                block = None;
                continue;
            }
            Some(verb) => (verb.clone(), line),
            None => {
                let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    block = Some(verb.to_string());
                    continue;
                }
                (verb.to_string(), rest)
            }
        };
        let unquote = |s: &str| s.trim_matches('"').to_string();
        match verb.as_str() {
            "require" => {
                let mut f = rest.split_whitespace();
                if let (Some(p), Some(v)) = (f.next(), f.next()) {
                    mods.insert(unquote(p), unquote(v));
                }
            }
            "replace" => {
                if let Some((old, new)) = rest.split_once("=>") {
                    let old = old.split_whitespace().next().map(unquote).unwrap_or_default();
                    let mut new = new.split_whitespace().map(unquote);
                    let (path, version) = (new.next().unwrap_or_default(), new.next().unwrap_or_default());
                    replaces.push((old, path, version));
                }
            }
            "exclude" => excludes.extend(rest.split_whitespace().next().map(unquote)),
            _ => {}
        }
    }
    for (old, path, version) in replaces {
        if path.starts_with('.') || path.starts_with('/') {
            mods.insert(old, version);
        } else {
            mods.remove(&old);
            mods.insert(path, version);
        }
    }
    for path in excludes {
        mods.remove(&path);
    }
    mods.into_iter()
        .filter(|(path, _)| !path.is_empty())
        .map(|(path, version)| Package::with_purl("golang", go_purl(&path, &version), &path, &version, at))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go 1.18+ inline build info for `modinfo` (already framed by its sentinels).
    fn build_info(modinfo: &str) -> Vec<u8> {
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
        info
    }

    /// GOPATH mode: a `path` line and no `mod` line; the main package is named by its path.
    #[test]
    fn a_gopath_binary_is_named_by_its_path() {
        let info = build_info("0123456789abcdefpath\tcmd/tool\nbuild\t-compiler=gc\n0123456789abcdef");
        let purls: Vec<String> = go_binary(&info, "/usr/bin/tool").into_iter().map(|p| p.purl).collect();
        assert_eq!(purls, vec!["pkg:golang/cmd/tool", "pkg:golang/stdlib@1.22.3"]);
    }

    /// A synthetic Go 1.18+ build info, placed so the magic straddles two read chunks.
    #[test]
    fn go_build_info_is_found_across_a_chunk_boundary() {
        let modinfo = "0123456789abcdefpath\texample.com/x\nmod\texample.com/x\tv1.0.0\th1:a\n\
                       dep\tgolang.org/x/text\tv0.14.0\th1:b\ndep\told.example/y\tv1.0.0\n\
                       =>\tnew.example/y\tv1.1.0\th1:c\n0123456789abcdef";
        let info = build_info(modinfo);
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

        // Not UTF-8 where the sentinel ends, and a length past the end: nothing, no panic (found by
        // mutating the fuzz seeds).
        let mut bad = GO_MAGIC.to_vec();
        bad.extend([8u8, 2]);
        bad.resize(32, 0);
        bad.extend([1, b'g', 40]);
        bad.extend([b'x'; 15]);
        bad.extend([0xe2, 0x82, 0xac]);
        bad.extend([b'y'; 22]);
        assert!(go_binary(&bad, "/b").is_empty());
        let mut huge = GO_MAGIC.to_vec();
        huge.extend([8u8, 2]);
        huge.resize(32, 0);
        huge.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(go_binary(&huge, "/b").is_empty());
    }

    #[test]
    fn go_mod_requires_replaces_and_excludes() {
        let m = b"module example.com/app\n\ngo 1.22\n\nrequire github.com/a/b v1.0.0\n\
                  require (\n\tgolang.org/x/text v0.14.0 // indirect\n\told.example/y v1.0.0\n\
                  \tlocal.example/z v0.1.0\n\tgone.example/q v0.0.1\n)\n\
                  replace old.example/y => new.example/y v1.1.0\nreplace local.example/z => ../z\n\
                  exclude gone.example/q v0.0.1\n";
        let purls: Vec<String> = go_mod(m, "/go.mod").into_iter().map(|p| p.purl).collect();
        assert_eq!(
            purls,
            vec![
                "pkg:golang/github.com/a/b@v1.0.0",
                "pkg:golang/golang.org/x/text@v0.14.0",
                "pkg:golang/local.example/z",
                "pkg:golang/new.example/y@v1.1.0",
            ]
        );
    }
}
