//! Named sections of an ELF file held in memory (32/64-bit, either byte order): enough to find Go's
//! `.go.buildinfo` and `cargo auditable`'s `.dep-v0` without scanning the whole file.

use super::bytes::{uint, Order};

/// The byte range of each named section, in file order. `None`: not ELF, or its section header
/// table (or the table's string section) is missing or lies outside `file`.
pub fn sections(file: &[u8]) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    if !file.starts_with(b"\x7fELF") {
        return None;
    }
    let wide = match file.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let order = if *file.get(5)? == 2 { Order::Big } else { Order::Little };
    let int = |at: usize, n: usize| uint(file, at, n, order);
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (int(0x28, 8)?, int(0x3a, 2)?, int(0x3c, 2)?, int(0x3e, 2)?)
    } else {
        (int(0x20, 4)?, int(0x2e, 2)?, int(0x30, 2)?, int(0x32, 2)?)
    };
    if shoff == 0 || shnum == 0 || shentsize < if wide { 64 } else { 40 } {
        return None;
    }
    // (name offset, file offset, size) of section `i`.
    let header = |i: u64| -> Option<(u64, u64, u64)> {
        let at = usize::try_from(shoff.checked_add(i.checked_mul(shentsize)?)?).ok()?;
        if wide {
            Some((int(at, 4)?, int(at + 0x18, 8)?, int(at + 0x20, 8)?))
        } else {
            Some((int(at, 4)?, int(at + 0x10, 4)?, int(at + 0x14, 4)?))
        }
    };
    let range = |off: u64, size: u64| -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        (end <= file.len()).then_some(start..end)
    };
    let (_, str_off, str_size) = header(shstrndx)?;
    let names = &file[range(str_off, str_size)?];
    let mut out = Vec::new();
    for i in 0..shnum {
        let Some((name, off, size)) = header(i) else { break };
        let Some(name) = names.get(name as usize..) else { continue };
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        // SHT_NOBITS sections (.bss) have a size but no bytes in the file: their range may
        // fall outside it, and they are of no interest.
        if let Some(r) = range(off, size) {
            out.push((String::from_utf8_lossy(name).into_owned(), r));
        }
    }
    Some(out)
}

#[cfg(test)]
pub mod tests {
    /// A minimal little-endian ELF64 file with the given sections (and `.shstrtab`).
    pub fn elf64(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut file = vec![0u8; 64];
        file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let mut names = vec![0u8];
        let mut placed = Vec::new();
        for (name, data) in sections {
            placed.push((names.len(), file.len(), data.len()));
            names.extend_from_slice(name.as_bytes());
            names.push(0);
            file.extend_from_slice(data);
        }
        let strtab_name = names.len();
        names.extend_from_slice(b".shstrtab\0");
        placed.push((strtab_name, file.len(), names.len()));
        file.extend_from_slice(&names);
        let shoff = file.len();
        file.extend_from_slice(&[0u8; 64]); // the null section
        for (name, off, size) in &placed {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&(*name as u32).to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(*off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(*size as u64).to_le_bytes());
            file.extend_from_slice(&h);
        }
        file[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&(placed.len() as u16 + 1).to_le_bytes());
        file[0x3e..0x40].copy_from_slice(&(placed.len() as u16).to_le_bytes());
        file
    }

    #[test]
    fn sections_by_name() {
        let file = elf64(&[(".text", b"code"), (".dep-v0", b"deps")]);
        let s = super::sections(&file).unwrap();
        let dep = s.iter().find(|(n, _)| n == ".dep-v0").unwrap();
        assert_eq!(&file[dep.1.clone()], b"deps");
        assert!(s.iter().any(|(n, _)| n == ".text"));
        assert!(super::sections(b"#!/bin/sh\n").is_none());
        // A table that points outside the file is refused, not read.
        let mut cut = file.clone();
        cut.truncate(file.len() - 40);
        assert!(super::sections(&cut).is_none());
    }
}
