//! Java archives (`.jar`, `.war`, `.ear` and the other zip forms syft reads): every
//! `META-INF/maven/GROUP/ARTIFACT/pom.properties`, the archive's own package from its
//! `META-INF/MANIFEST.MF` and file name when no `pom.properties` names it, and the same for
//! archives nested in it (`WEB-INF/lib/*.jar`, Spring Boot's `BOOT-INF/lib/*.jar`), as syft does.
//!
//! The archive is held in memory (at most [`super::files::MAX_DOC`]) and read through a small zip
//! reader: the central directory, stored and deflated entries only, every size bounded (a zip
//! bomb is refused, not expanded).

use super::bytes::{u16_le, u32_le};

use std::io::Read;

use super::Package;

/// Extensions syft's java-archive-cataloger reads (its `archiveFormatGlobs`).
pub const EXTENSIONS: &[&str] = &["jar", "war", "ear", "par", "sar", "nar", "jpi", "hpi", "kar", "lpkg"];
/// A manifest or `pom.properties` larger than this is skipped.
const SMALL_MAX: u64 = 1 << 20;
/// Archives nested deeper than this are not opened.
const MAX_DEPTH: usize = 3;
/// At most this many bytes are inflated for one top-level archive (nested archives included).
const INFLATE_BUDGET: u64 = 256 << 20;
/// Entries a central directory may list before the archive is refused.
const MAX_ENTRIES: usize = 200_000;

pub fn is_archive(base: &str) -> bool {
    base.rsplit_once('.').is_some_and(|(_, ext)| EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

/// One central-directory entry.
struct Entry {
    name: String,
    method: u16,
    compressed: u64,
    size: u64,
    offset: u64,
}

/// The central directory of the zip in `zip` (`None`: not a zip, or ZIP64, which no jar this
/// small needs).
fn entries(zip: &[u8]) -> Option<Vec<Entry>> {
    // The end-of-central-directory record: 22 bytes plus a comment of at most 64 KiB, at the end.
    let from = zip.len().saturating_sub(22 + 0xffff);
    let eocd = (from..zip.len().saturating_sub(21)).rev().find(|&i| zip[i..].starts_with(b"PK\x05\x06"))?;
    let count = usize::from(u16_le(zip, eocd + 10)?);
    let mut at = u32_le(zip, eocd + 16)? as usize;
    if count == 0xffff || at == 0xffff_ffff_usize || count > MAX_ENTRIES {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if u32_le(zip, at)? != 0x0201_4b50 {
            return None;
        }
        let name_len = usize::from(u16_le(zip, at + 28)?);
        let skip = usize::from(u16_le(zip, at + 30)?) + usize::from(u16_le(zip, at + 32)?);
        out.push(Entry {
            name: String::from_utf8_lossy(zip.get(at + 46..at + 46 + name_len)?).into_owned(),
            method: u16_le(zip, at + 10)?,
            compressed: u64::from(u32_le(zip, at + 20)?),
            size: u64::from(u32_le(zip, at + 24)?),
            offset: u64::from(u32_le(zip, at + 42)?),
        });
        at += 46 + name_len + skip;
    }
    Some(out)
}

/// An entry's bytes, at most `max` (a larger entry, or one the budget no longer covers, is
/// `None`), stored or deflated.
fn read_entry(zip: &[u8], e: &Entry, max: u64, budget: &mut u64) -> Option<Vec<u8>> {
    if e.size > max || e.size > *budget {
        return None;
    }
    let at = usize::try_from(e.offset).ok()?;
    if u32_le(zip, at)? != 0x0403_4b50 {
        return None;
    }
    let start = at + 30 + usize::from(u16_le(zip, at + 26)?) + usize::from(u16_le(zip, at + 28)?);
    let data = zip.get(start..start.checked_add(usize::try_from(e.compressed).ok()?)?)?;
    let out = match e.method {
        0 => data.to_vec(),
        8 => {
            // The declared size bounds what is inflated: a lying header gets a truncated entry.
            let mut out = Vec::with_capacity(e.size as usize);
            flate2::read::DeflateDecoder::new(data).take(e.size).read_to_end(&mut out).ok()?;
            out
        }
        _ => return None,
    };
    *budget -= out.len() as u64;
    Some(out)
}

/// The packages in the Java archive `zip`, found at `at`.
pub fn archive(zip: &[u8], at: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mut budget = INFLATE_BUDGET;
    walk(zip, at, 0, &mut budget, &mut out);
    out
}

fn walk(zip: &[u8], at: &str, depth: usize, budget: &mut u64, out: &mut Vec<Package>) {
    let Some(entries) = entries(zip) else { return };
    let mut manifest = None;
    let mut poms = Vec::new();
    for e in &entries {
        if e.name == "META-INF/MANIFEST.MF" {
            manifest = read_entry(zip, e, SMALL_MAX, budget);
        } else if e.name.starts_with("META-INF/maven/") && e.name.ends_with("/pom.properties") {
            if let Some(b) = read_entry(zip, e, SMALL_MAX, budget) {
                poms.push(properties(&String::from_utf8_lossy(&b)));
            }
        }
    }
    let file_name = at.rsplit(['/', ':']).next().unwrap_or(at);
    let (stem_name, stem_version) = name_and_version(file_name.rsplit_once('.').map_or(file_name, |(s, _)| s));
    let mut named_by_pom = poms.len() == 1;
    for p in &poms {
        let (group, artifact, version) = (p.get("groupId"), p.get("artifactId"), p.get("version"));
        let (Some(artifact), Some(version)) = (artifact, version) else { continue };
        named_by_pom |= *artifact == stem_name;
        let group = group.filter(|g| !g.is_empty()).unwrap_or(artifact);
        out.push(maven(group, artifact, version, at));
    }
    if !named_by_pom {
        if let Some(m) = &manifest {
            out.extend(from_manifest(&properties_colon(&String::from_utf8_lossy(m)), &stem_name, &stem_version, at));
        }
    }
    if depth < MAX_DEPTH {
        for e in &entries {
            let base = e.name.rsplit('/').next().unwrap_or(&e.name);
            if is_archive(base) {
                if let Some(inner) = read_entry(zip, e, super::files::MAX_DOC, budget) {
                    walk(&inner, &format!("{at}:{}", e.name), depth + 1, budget, out);
                }
            }
        }
    }
}

fn maven(group: &str, artifact: &str, version: &str, at: &str) -> Package {
    let purl = super::purl("maven", &format!("{group}/{artifact}"), version);
    Package::with_purl("maven", purl, &format!("{group}:{artifact}"), version, at)
}

/// `key=value` lines (`pom.properties`).
fn properties(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A manifest's main section (`Key: value`, continuation lines start with a space).
fn properties_colon(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let (Some(cont), Some(k)) = (line.strip_prefix(' '), &last) {
            out.entry(k.clone()).or_insert_with(String::new).push_str(cont);
        } else if let Some((k, v)) = line.split_once(':') {
            out.insert(k.trim().to_string(), v.trim().to_string());
            last = Some(k.trim().to_string());
        }
    }
    out
}

/// A file name's stem split as syft's `nameAndVersionPattern` does: the name is the words up to
/// the first `-` followed by a digit (`commons-lang3-3.12.0` → `commons-lang3`, `3.12.0`).
fn name_and_version(stem: &str) -> (String, String) {
    let bytes = stem.as_bytes();
    for i in 0..bytes.len().saturating_sub(1) {
        if bytes[i] == b'-' && bytes[i + 1].is_ascii_digit() {
            return (stem[..i].to_string(), stem[i + 1..].to_string());
        }
    }
    (stem.to_string(), String::new())
}

/// The archive's own package when no `pom.properties` names it: syft's rules in short — the name
/// from the file name (else the manifest's `Name`, `Bundle-Name`, `Implementation-Title`), the
/// version from the file name (else `Implementation-Version`, `Specification-Version`,
/// `Bundle-Version`), the group from the first manifest field that looks like one (has a dot),
/// else the name. Without a version it is listed as syft lists it: version `UNKNOWN`, a purl
/// without one.
fn from_manifest(
    m: &std::collections::BTreeMap<String, String>,
    stem_name: &str,
    stem_version: &str,
    at: &str,
) -> Option<Package> {
    let field = |keys: &[&str]| keys.iter().find_map(|k| m.get(*k).filter(|v| !v.is_empty()).cloned());
    let name = Some(stem_name.to_string())
        .filter(|n| !n.is_empty())
        .or_else(|| field(&["Name", "Bundle-Name", "Implementation-Title"]))?;
    let version = Some(stem_version.to_string())
        .filter(|v| !v.is_empty())
        .or_else(|| field(&["Implementation-Version", "Specification-Version", "Bundle-Version"]))
        .unwrap_or_default();
    let group = [
        "Group-Id",
        "Bundle-SymbolicName",
        "Extension-Name",
        "Specification-Vendor",
        "Implementation-Vendor",
        "Implementation-Vendor-Id",
        "Implementation-Title",
        "Bundle-Activator",
        "Automatic-Module-Name",
    ]
    .iter()
    .filter_map(|k| m.get(*k))
    .map(|v| v.split(';').next().unwrap_or_default().trim())
    .find(|v| v.contains('.') && !v.contains(' '))
    .map_or(name.clone(), str::to_string);
    let mut p = maven(&group, &name, &version, at);
    if version.is_empty() {
        p.version = super::UNKNOWN.into();
    }
    Some(p)
}

#[cfg(test)]
pub mod tests {
    use std::io::Write;

    use super::*;

    /// A zip of `(name, bytes, deflate?)` entries.
    pub fn zip(files: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, deflate) in files {
            let body = if *deflate {
                let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                z.write_all(data).unwrap();
                z.finish().unwrap()
            } else {
                data.to_vec()
            };
            let method: u16 = if *deflate { 8 } else { 0 };
            let offset = out.len() as u32;
            out.extend(0x0403_4b50u32.to_le_bytes());
            out.extend([20, 0, 0, 0]);
            out.extend(method.to_le_bytes());
            out.extend([0u8; 8]); // time, date, crc (not checked)
            out.extend((body.len() as u32).to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(0u16.to_le_bytes());
            out.extend(name.as_bytes());
            out.extend(&body);
            central.extend(0x0201_4b50u32.to_le_bytes());
            central.extend([20, 0, 20, 0, 0, 0]);
            central.extend(method.to_le_bytes());
            central.extend([0u8; 8]);
            central.extend((body.len() as u32).to_le_bytes());
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((name.len() as u16).to_le_bytes());
            central.extend([0u8; 12]);
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_at = out.len() as u32;
        out.extend(&central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u8; 4]);
        out.extend((files.len() as u16).to_le_bytes());
        out.extend((files.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_at.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    #[test]
    fn poms_manifests_and_nested_archives() {
        let manifest = b"Manifest-Version: 1.0\r\nCreated-By: test\r\n\r\n".as_slice();
        let dep = zip(&[
            ("META-INF/MANIFEST.MF", manifest, true),
            (
                "META-INF/maven/org.example/dep/pom.properties",
                b"groupId=org.example\nartifactId=dep\nversion=2.1\n",
                true,
            ),
        ]);
        let bare = zip(&[(
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\nImplementation-Version: 0.9\nImplementation-Vendor: org.bare\n\n",
            false,
        )]);
        let war = zip(&[("META-INF/MANIFEST.MF", manifest, true), ("WEB-INF/lib/dep-2.1.jar", &dep, false)]);
        let got: Vec<String> = archive(&war, "/opt/shop.war").into_iter().map(|p| p.purl).collect();
        assert_eq!(got, vec!["pkg:maven/shop/shop", "pkg:maven/org.example/dep@2.1"]);
        let app = zip(&[
            ("META-INF/MANIFEST.MF", manifest, true),
            (
                "META-INF/maven/com.example/app/pom.properties",
                b"#x\nversion=1.0.0\ngroupId=com.example\nartifactId=app\n",
                true,
            ),
            ("BOOT-INF/lib/dep-2.1.jar", &dep, false),
            ("BOOT-INF/lib/bare.jar", &bare, true),
        ]);
        let got: Vec<(String, String)> =
            archive(&app, "/app/app.jar").into_iter().map(|p| (p.purl, p.found_at)).collect();
        assert_eq!(
            got,
            vec![
                ("pkg:maven/com.example/app@1.0.0".to_string(), "/app/app.jar".to_string()),
                ("pkg:maven/org.example/dep@2.1".into(), "/app/app.jar:BOOT-INF/lib/dep-2.1.jar".into()),
                ("pkg:maven/org.bare/bare@0.9".into(), "/app/app.jar:BOOT-INF/lib/bare.jar".into()),
            ]
        );
        assert_eq!(name_and_version("commons-lang3-3.12.0"), ("commons-lang3".into(), "3.12.0".into()));
        assert!(archive(b"not a zip", "/x.jar").is_empty());
    }

    #[test]
    fn a_zip_bomb_is_not_inflated_past_its_bounds() {
        // 64 MiB of zeros deflate to ~64 KiB; a manifest that large is skipped, not read.
        let zeros = vec![0u8; 64 << 20];
        let bomb = zip(&[("META-INF/MANIFEST.MF", &zeros, true)]);
        assert!(bomb.len() < 1 << 20);
        let e = &entries(&bomb).unwrap()[0];
        let mut budget = INFLATE_BUDGET;
        assert!(read_entry(&bomb, e, SMALL_MAX, &mut budget).is_none());
        assert_eq!(budget, INFLATE_BUDGET);
        // A header that understates the size gets the declared bytes only.
        let mut lying = bomb.clone();
        let cd = entries(&bomb).map(|_| lying.len() - 22 - 46 - "META-INF/MANIFEST.MF".len()).unwrap();
        lying[cd + 24..cd + 28].copy_from_slice(&100u32.to_le_bytes());
        let e = &entries(&lying).unwrap()[0];
        assert_eq!(read_entry(&lying, e, SMALL_MAX, &mut budget).unwrap().len(), 100);
    }
}
