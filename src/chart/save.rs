//! Writing a chart archive laid out as Helm lays it out (`pkg/chart/v2/util/save.go`): entries under
//! `<name>/` in Helm's order (Chart.yaml, Chart.lock for v2, values.yaml, values.schema.json, templates,
//! other files, then each subchart under `charts/<subname>/`), regular files only, no directory entries,
//! USTAR headers exactly as Go's `archive/tar` writes them (mode 0644, uid/gid 0, empty owner names,
//! long names split into prefix/name or carried by a PAX record), two zero blocks at the end; gzip with
//! Helm 4.2.4's header (extra subfield `rr`, comment `Helm`, MTIME 0, OS 255). Every entry's mtime is
//! the one build epoch, so the same chart gives the same bytes everywhere.

use std::io::Write;

use super::load::Chart;
use super::metadata::API_V2;
use crate::error::{Error, Result};

/// Helm ≥ 4.2.4's gzip extra field: subfield `rr`, 40 bytes of data.
const GZIP_EXTRA_DATA: &[u8] = b"aHR0cHM6Ly95b3V0dS5iZS96OVV6MWljandyTQo=";

/// The archive members of `chart`, in Helm's order, as (path, bytes).
pub fn members(chart: &Chart) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    collect(chart, "", &mut out);
    out
}

fn collect(chart: &Chart, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let base =
        if prefix.is_empty() { chart.metadata.name.clone() } else { format!("{prefix}/{}", chart.metadata.name) };
    out.push((format!("{base}/Chart.yaml"), chart.metadata.to_yaml().into_bytes()));
    if chart.metadata.api_version == API_V2 {
        if let Some(lock) = &chart.lock {
            out.push((format!("{base}/Chart.lock"), lock.to_yaml().into_bytes()));
        }
    }
    if let Some(v) = &chart.values {
        out.push((format!("{base}/values.yaml"), v.clone()));
    }
    if let Some(s) = &chart.schema {
        out.push((format!("{base}/values.schema.json"), s.clone()));
    }
    for f in chart.templates.iter().chain(&chart.files) {
        out.push((format!("{base}/{}", f.name), f.data.clone()));
    }
    for sub in &chart.dependencies {
        collect(sub, &format!("{base}/charts"), out);
    }
}

/// The uncompressed tar stream of `members`, every mtime `mtime`.
pub fn tar_stream(members: &[(String, Vec<u8>)], mtime: u64) -> Result<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (name, data) in members {
        if !seen.insert(name.as_str()) {
            return Err(Error::other(format!(
                "two files would be written as {name} (two subcharts with the same name?)"
            )));
        }
        write_entry(&mut out, name, data, mtime)?;
    }
    out.extend_from_slice(&[0u8; 1024]);
    Ok(out)
}

fn write_entry(out: &mut Vec<u8>, name: &str, data: &[u8], mtime: u64) -> Result<()> {
    match ustar_name(name) {
        Some((prefix, short)) => out.extend_from_slice(&header(short, prefix, data.len() as u64, mtime, b'0', true)),
        None => {
            // PAX: a `path` record, then a USTAR header with the name cut to fit.
            let record = pax_record("path", name);
            let (dir, file) = name.rsplit_once('/').map_or(("", name), |(d, f)| (d, f));
            let pax_name =
                if dir.is_empty() { format!("PaxHeaders.0/{file}") } else { format!("{dir}/PaxHeaders.0/{file}") };
            let pax_name = truncate_ascii(&pax_name);
            out.extend_from_slice(&header(pax_name.trim_end_matches('/'), "", record.len() as u64, 0, b'x', false));
            pad(out, &record);
            out.extend_from_slice(&header(&truncate_ascii(name), "", data.len() as u64, mtime, b'0', true));
        }
    }
    pad(out, data);
    Ok(())
}

fn pad(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    let rem = data.len() % 512;
    if rem != 0 {
        out.extend(std::iter::repeat_n(0u8, 512 - rem));
    }
}

/// `"<len> key=value\n"` where len counts the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}").len() + body.len() != len {
        len = format!("{len}").len() + body.len();
    }
    format!("{len}{body}").into_bytes()
}

fn truncate_ascii(s: &str) -> String {
    let ascii: String = s.chars().filter(char::is_ascii).collect();
    ascii.chars().take(100).collect()
}

/// (prefix, name) when `name` fits USTAR: ≤ 100 bytes as is, or split at a `/` into ≤ 155 + ≤ 100.
fn ustar_name(name: &str) -> Option<(&str, &str)> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= 100 {
        return Some(("", name));
    }
    let mut length = name.len().min(156);
    if length == name.len() && name.ends_with('/') {
        length -= 1;
    }
    let i = name[..length].rfind('/')?;
    let (plen, nlen) = (i, name.len() - i - 1);
    if i == 0 || nlen > 100 || nlen == 0 || plen > 155 {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// One 512-byte header as Go's `archive/tar` writes it for Helm's entries.
fn header(name: &str, prefix: &str, size: u64, mtime: u64, flag: u8, ustar_dev: bool) -> [u8; 512] {
    let mut h = [0u8; 512];
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0width$o}", width = len - 1);
        h[at..at + len - 1].copy_from_slice(s.as_bytes());
    };
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h, 100, 8, if flag == b'x' { 0 } else { 0o644 });
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, mtime);
    h[156] = flag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    if ustar_dev {
        octal(&mut h, 329, 8, 0);
        octal(&mut h, 337, 8, 0);
    }
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// Gzips a tar stream with Helm's header (deflate level 6, as Helm's Go default).
pub fn gzip(tar: &[u8]) -> Result<Vec<u8>> {
    let mut extra = vec![b'r', b'r', GZIP_EXTRA_DATA.len() as u8, 0];
    extra.extend_from_slice(GZIP_EXTRA_DATA);
    let mut gz = flate2::GzBuilder::new()
        .extra(extra)
        .comment("Helm")
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(tar.len() / 3), flate2::Compression::new(6));
    gz.write_all(tar).and_then(|_| gz.finish()).map_err(|e| Error::other(format!("compressing the chart: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_gos() {
        let h = header("a/Chart.yaml", "", 86, 0, b'0', true);
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[124..136], b"00000000126\0");
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[329..345], b"0000000\x000000000\0");
        assert_eq!(h[155], b' ');
    }

    #[test]
    fn long_names() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        assert_eq!(ustar_name(&long), Some((&long[..120], &long[121..])));
        assert_eq!(ustar_name(&"x".repeat(101)), None);
        assert_eq!(pax_record("path", "abc"), b"12 path=abc\n");
        let mut out = Vec::new();
        write_entry(&mut out, &"x".repeat(101), b"hi", 0).unwrap();
        assert_eq!(out[156], b'x');
        assert_eq!(out.len(), 512 * 4);
    }
}
