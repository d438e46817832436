//! Python: installed packages' metadata — a wheel's `*.dist-info/METADATA`, an egg's
//! `*.egg-info/PKG-INFO` or an `*.egg-info` file (all RFC 822 headers: `Name`, `Version`).

use super::{purl, Package};

/// The package one metadata document describes. `Python` itself (Python 2.7 installs an
/// `egg-info` for the interpreter) is not a package, as syft has it.
pub fn metadata(bytes: &[u8], at: &str) -> Vec<Package> {
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
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() && n != "Python" => {
            vec![Package::with_purl("pypi", purl("pypi", &n.to_lowercase(), &v), &n, &v, at)]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_and_pkg_info() {
        let m = super::metadata(b"Metadata-Version: 2.1\nName: Requests\nVersion: 2.31.0\n\nName: x\n", "/m");
        assert_eq!(m[0].purl, "pkg:pypi/requests@2.31.0");
        let p = super::metadata(b"Metadata-Version: 1.2\nName: simplejson\nVersion: 3.19.2\nSummary: s\n", "/p");
        assert_eq!(p[0].purl, "pkg:pypi/simplejson@3.19.2");
        assert!(super::metadata(b"Metadata-Version: 1.0\nName: Python\nVersion: 2.7.18\n", "/p").is_empty());
    }
}
