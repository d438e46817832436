//! Distribution packages: the package databases of an image's operating system and its
//! `os-release`, as syft reads them — `/var/lib/dpkg/status` and `/var/lib/dpkg/status.d/*`
//! (distroless keeps one file per package there), `/lib/apk/db/installed`, rpm's databases (sqlite,
//! Berkeley DB, ndb: [`super::rpm`]) — with syft's purls
//! (`pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl`,
//! `pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.0`; qualifiers sorted by key, as
//! the purl specification and syft write them).
//!
//! The files come from a layer's [`Listing`](crate::rootfs::Listing), which keeps the bytes of
//! every path [`is_database`] names, and [`crate::rootfs::visible_databases`] picks those the image
//! shows (whiteouts and replacements by higher layers honoured).

use std::collections::BTreeMap;

use super::Package;

const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];
const DPKG_STATUS: &str = "var/lib/dpkg/status";
const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d/";
const APK_INSTALLED: &str = "lib/apk/db/installed";
/// Where rpm keeps its database (`/usr/lib/sysimage/rpm`: Fedora ≥ 36, openSUSE), and its three
/// formats ([`super::rpm`]): sqlite (RHEL/UBI 9, Amazon Linux 2023), Berkeley DB (RHEL/UBI 8, CentOS
/// 7, Amazon Linux 2), ndb (SUSE) — the places syft looks.
const RPM_DIRS: [&str; 3] = ["var/lib/rpm/", "usr/lib/sysimage/rpm/", "usr/share/rpm/"];
const RPM_FILES: [&str; 3] = ["rpmdb.sqlite", "Packages", "Packages.db"];

fn is_rpm_database(path: &str) -> bool {
    RPM_DIRS.iter().any(|d| path.strip_prefix(d).is_some_and(|f| RPM_FILES.contains(&f)))
}

/// Whether `path` (no leading `/`) is a file the distribution packages are read from.
pub fn is_database(path: &str) -> bool {
    OS_RELEASE.contains(&path)
        || path == DPKG_STATUS
        || path == APK_INSTALLED
        || is_rpm_database(path)
        || path
            .strip_prefix(DPKG_STATUS_D)
            .is_some_and(|f| !f.is_empty() && !f.contains('/') && !f.ends_with(".md5sums"))
}

/// The operating system an image says it is (`ID`, `VERSION_ID` of `os-release`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Os {
    pub id: String,
    pub version_id: String,
}

impl Os {
    /// syft's `distro` qualifier: `debian-12`, `alpine-3.19.0`.
    fn qualifier(&self) -> Option<String> {
        match (self.id.is_empty(), self.version_id.is_empty()) {
            (false, false) => Some(format!("{}-{}", self.id, self.version_id)),
            (false, true) => Some(self.id.clone()),
            _ => None,
        }
    }
}

/// `os-release`'s `ID` and `VERSION_ID` (shell-style values, quotes removed).
pub fn os_release(text: &[u8]) -> Os {
    let mut os = Os::default();
    for line in String::from_utf8_lossy(text).lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "ID" => os.id = v,
            "VERSION_ID" => os.version_id = v,
            // syft's `distro` qualifier falls back to it (rolling releases have no VERSION_ID).
            "BUILD_ID" if os.version_id.is_empty() => os.version_id = v,
            _ => {}
        }
    }
    os
}

/// The operating system and its packages from the database files an image shows (path → bytes).
pub fn packages(files: &BTreeMap<String, Vec<u8>>) -> (Option<Os>, Vec<Package>) {
    packages_on(files, None)
}

/// [`packages`], with `os` when the files hold no `os-release` of their own.
fn packages_on(files: &BTreeMap<String, Vec<u8>>, os: Option<&Os>) -> (Option<Os>, Vec<Package>) {
    let os = OS_RELEASE.iter().find_map(|p| files.get(*p)).map(|b| os_release(b)).or_else(|| os.cloned());
    let mut out = Vec::new();
    for (path, bytes) in files {
        let at = format!("/{path}");
        if path == DPKG_STATUS || path.starts_with(DPKG_STATUS_D) {
            out.extend(dpkg(bytes, &at, os.as_ref()));
        } else if path == APK_INSTALLED {
            out.extend(apk(bytes, &at, os.as_ref()));
        } else if is_rpm_database(path) {
            out.extend(rpm(bytes, &at, os.as_ref()));
        }
    }
    out.sort();
    out.dedup();
    (os, out)
}

/// The distribution packages in the database files a build added (`COPY --from=debian
/// /var/lib/dpkg/status.d/ …`, as distroless images are made), on the base's `os` unless the added
/// files carry an `os-release` too.
pub fn in_tree(tree: &crate::builder::layer::Tree, os: Option<&Os>) -> crate::error::Result<Vec<Package>> {
    use crate::builder::layer::{Content, Kind};
    let mut files = BTreeMap::new();
    for (path, node) in tree.iter().filter(|(p, _)| is_database(p)) {
        let bytes = match &node.kind {
            Kind::File(Content::Bytes(b)) => b.to_vec(),
            Kind::File(Content::Path(p)) => {
                std::fs::read(p).map_err(|e| crate::error::Error::io(format!("/{path} (for the SBOM)"), e))?
            }
            _ => continue,
        };
        files.insert(path.clone(), bytes);
    }
    Ok(packages_on(&files, os).1)
}

/// `pkg:TYPE/NAMESPACE/NAME[@VERSION]?k=v&…`, the qualifiers sorted by key, values encoded as the
/// purl specification (and syft) do.
fn distro_purl(kind: &str, namespace: &str, name: &str, version: &str, mut q: Vec<(&str, String)>) -> String {
    let path = if namespace.is_empty() { name.to_string() } else { format!("{namespace}/{name}") };
    let base = super::purl(kind, &path, version);
    let base = if version.is_empty() { base.trim_end_matches('@').to_string() } else { base };
    q.retain(|(_, v)| !v.is_empty());
    q.sort();
    if q.is_empty() {
        return base;
    }
    let enc = |v: &str| super::purl("x", "", v).trim_start_matches("pkg:x/@").to_string();
    let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    format!("{base}?{}", qs.join("&"))
}

/// RFC 822-style paragraphs (dpkg's `status`), continuation lines dropped.
fn paragraphs(text: &str) -> Vec<BTreeMap<&str, &str>> {
    let mut out = Vec::new();
    let mut cur = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if !line.starts_with([' ', '\t']) {
            if let Some((k, v)) = line.split_once(':') {
                cur.insert(k.trim(), v.trim());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One distribution package with syft's purl: `pkg:KIND/NAMESPACE/NAME@VERSION?arch=…&distro=…&upstream=…`
/// (`distro` from `os-release`, empty qualifiers left out).
struct Record<'a> {
    name: &'a str,
    /// In the purl; `version` of the package (rpm's has the epoch) when that differs.
    purl_version: String,
    version: String,
    qualifiers: Vec<(&'static str, String)>,
}

impl Record<'_> {
    fn package(self, kind: &'static str, namespace: &str, os: Option<&Os>, at: &str) -> Package {
        let mut q = self.qualifiers;
        q.push(("distro", os.and_then(Os::qualifier).unwrap_or_default()));
        Package {
            purl: distro_purl(kind, namespace, self.name, &self.purl_version, q),
            name: self.name.to_string(),
            version: self.version,
            ecosystem: kind,
            found_at: at.to_string(),
        }
    }
}

/// The purl namespace: `os-release`'s `ID`, else `default`.
fn namespace<'a>(os: Option<&'a Os>, default: &'a str) -> &'a str {
    os.map(|o| o.id.as_str()).filter(|id| !id.is_empty()).unwrap_or(default)
}

/// dpkg's status file (or one of distroless' `status.d/*`): every installed package. As syft: a
/// package whose `Status` says it is not installed is left out; `Source: NAME (VERSION)` becomes
/// `upstream=NAME@VERSION`, `Source: NAME` `upstream=NAME`.
fn dpkg(bytes: &[u8], at: &str, os: Option<&Os>) -> Vec<Package> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for p in paragraphs(&text) {
        let Some(name) = p.get("Package").filter(|n| !n.is_empty()) else { continue };
        if p.get("Status").is_some_and(|s| s.split_whitespace().last() != Some("installed")) {
            continue;
        }
        let upstream = p.get("Source").map_or(String::new(), |s| match s.split_once(' ') {
            Some((n, v)) => format!("{n}@{}", v.trim().trim_start_matches('(').trim_end_matches(')')),
            None => s.to_string(),
        });
        let version = p.get("Version").copied().unwrap_or_default().to_string();
        let arch = p.get("Architecture").copied().unwrap_or_default().to_string();
        let qualifiers = vec![("arch", arch), ("upstream", upstream)];
        let r = Record { name, purl_version: version.clone(), version, qualifiers };
        out.push(r.package("deb", namespace(os, "debian"), os, at));
    }
    out
}

/// apk's `installed` database: paragraphs of one-letter keys (`P` name, `V` version, `A` arch, `o`
/// origin — `upstream=` when it is not the package's own name, as syft writes it).
fn apk(bytes: &[u8], at: &str, os: Option<&Os>) -> Vec<Package> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for p in paragraphs(&text) {
        let Some(name) = p.get("P").filter(|n| !n.is_empty()) else { continue };
        let upstream = p.get("o").copied().filter(|o| o != name).unwrap_or_default().to_string();
        let version = p.get("V").copied().unwrap_or_default().to_string();
        let arch = p.get("A").copied().unwrap_or_default().to_string();
        let qualifiers = vec![("arch", arch), ("upstream", upstream)];
        let r = Record { name, purl_version: version.clone(), version, qualifiers };
        out.push(r.package("apk", &namespace(os, "alpine").to_lowercase(), os, at));
    }
    out
}

/// An rpm database: every package header, as syft writes them — version `VERSION-RELEASE`
/// (`EPOCH:` before it in the package's version, `epoch=` in the purl), `upstream=` the source rpm,
/// namespace `redhat` for RHEL, `opensuse` for every openSUSE, else the `os-release` `ID` (none
/// without one). A database hoist cannot read gives no packages.
fn rpm(bytes: &[u8], at: &str, os: Option<&Os>) -> Vec<Package> {
    let ns = match namespace(os, "") {
        "rhel" => "redhat",
        id if id.starts_with("opensuse") => "opensuse",
        id => id,
    };
    let headers = super::rpm::headers(bytes).unwrap_or_default();
    headers
        .iter()
        .map(|h| {
            let purl_version = format!("{}-{}", h.version, h.release);
            let version = match h.epoch {
                Some(e) => format!("{e}:{purl_version}"),
                None => purl_version.clone(),
            };
            let qualifiers = vec![
                ("arch", h.arch.clone()),
                ("epoch", h.epoch.map(|e| e.to_string()).unwrap_or_default()),
                ("upstream", h.source_rpm.clone()),
            ];
            Record { name: &h.name, purl_version, version, qualifiers }.package("rpm", ns, os, at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The purls syft 1.x wrote for the same files (`syft scan dir:`), copied from its output.
    #[test]
    fn purls_as_syft_writes_them() {
        let mut files = BTreeMap::new();
        files.insert("usr/lib/os-release".to_string(), b"NAME=\"Debian\"\nID=debian\nVERSION_ID=\"12\"\n".to_vec());
        files.insert(
            "var/lib/dpkg/status".to_string(),
            b"Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\n\
              Package: foo\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
              Package: libc6\nArchitecture: amd64\nSource: glibc (2.36-9+deb12u4)\nVersion: 2.36-9+deb12u4\n\
              Description: x\n more: not a field\n"
                .to_vec(),
        );
        files.insert(
            "var/lib/dpkg/status.d/libssl3".to_string(),
            b"Package: libssl3\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n".to_vec(),
        );
        let (os, pkgs) = packages(&files);
        assert_eq!(os, Some(Os { id: "debian".into(), version_id: "12".into() }));
        let purls: Vec<&str> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            vec![
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc%402.36-9%2Bdeb12u4",
                "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl",
                "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib",
            ]
        );
        let apk_db = b"C:Q1=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\no:musl\n\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n";
        let mut files = BTreeMap::new();
        files.insert("etc/os-release".to_string(), b"ID=alpine\nVERSION_ID=3.19.1\n".to_vec());
        files.insert("lib/apk/db/installed".to_string(), apk_db.to_vec());
        let purls: Vec<String> = packages(&files).1.into_iter().map(|p| p.purl).collect();
        assert_eq!(
            purls,
            vec![
                "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl",
                "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1",
            ]
        );
        assert!(is_database("var/lib/dpkg/status.d/libssl3"));
        assert!(!is_database("var/lib/dpkg/status.d/libssl3.md5sums"));
        assert!(!is_database("var/lib/dpkg/status-old"));
    }
}
