//! Berkeley DB hash databases, read-only and only as far as rpm's `Packages` needs (RHEL/UBI 8,
//! CentOS 7, Amazon Linux 2 keep their packages there): the values stored off-page. The layout is
//! Berkeley DB's `db_page.h`: page 0 the hash metadata (magic `0x061561` in the file's byte order,
//! page size, last page number), every bucket page (`P_HASH`, `P_HASH_UNSORTED`) a 26-byte header
//! and an index of item offsets, keys and values in turn; a value too large for its bucket page is an
//! `H_OFFPAGE` item naming the first page of a chain of overflow pages, each holding `hf_offset` bytes
//! of it after its header. rpm's header blobs are all larger than a quarter page, so they are all
//! stored off-page; its record 0 (the next header number, 4 bytes) is on-page and passed over, as
//! syft's reader (anchore's go-rpmdb) does. Encrypted databases and pages with checksums are not
//! read (rpm uses neither).

use super::bytes::{uint, Order};

/// The hash access method's magic number.
const HASH_MAGIC: u32 = 0x0006_1561;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
/// An item that is a reference to an overflow chain: type, 3 unused bytes, first page, total length.
const H_OFFPAGE: u8 = 3;
/// A page's header: lsn (8), pgno, prev_pgno, next_pgno (4 each), entries, hf_offset (2 each), level, type.
const PAGE_HEADER: usize = 26;

/// The off-page values of a Berkeley DB hash database, in page order; `None` when `db` is not one
/// (or is damaged: a chain that leaves the file, loops, or ends short of its length).
pub fn values(db: &[u8]) -> Option<Vec<Vec<u8>>> {
    let meta = db.get(..72)?;
    let little = meta[12..16] == HASH_MAGIC.to_le_bytes();
    if !little && meta[12..16] != HASH_MAGIC.to_be_bytes() {
        return None;
    }
    let order = if little { Order::Little } else { Order::Big };
    let u32_at = |b: &[u8], at: usize| uint(b, at, 4, order).map(|v| v as u32);
    let u16_at = |b: &[u8], at: usize| uint(b, at, 2, order).map(|v| v as usize);
    let page_size = u32_at(meta, 20)? as usize;
    // encrypt_alg (24) must be 0; type (25) the hash metadata page.
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() || meta[24] != 0 || meta[25] != P_HASHMETA {
        return None;
    }
    let pages = (db.len() / page_size).min(u32_at(meta, 32)? as usize + 1);
    let page = |n: usize| db.get(n.checked_mul(page_size)?..(n + 1).checked_mul(page_size)?);
    // Each overflow page belongs to one chain: more visits than the file has pages is a hostile
    // file (values sharing or looping chains), refused before it costs much.
    let mut budget = pages;
    let mut out = Vec::new();
    for n in 1..pages {
        let p = page(n)?;
        if p[25] != P_HASH && p[25] != P_HASH_UNSORTED {
            continue;
        }
        let entries = u16_at(p, 20)?;
        // Keys at even positions of the index, values at odd ones.
        for i in (1..entries).step_by(2) {
            let item = p.get(u16_at(p, PAGE_HEADER + 2 * i)?..)?;
            if item.first() != Some(&H_OFFPAGE) {
                continue;
            }
            let (mut next, len) = (u32_at(item, 4)? as usize, u32_at(item, 8)? as usize);
            let mut value = Vec::with_capacity(len.min(db.len()));
            while next != 0 && value.len() < len {
                budget = budget.checked_sub(1)?;
                let o = page(next)?;
                if o[25] != P_OVERFLOW {
                    return None;
                }
                value.extend_from_slice(o.get(PAGE_HEADER..PAGE_HEADER + u16_at(o, 22)?)?);
                next = u32_at(o, 16)? as usize;
            }
            if value.len() != len {
                return None;
            }
            out.push(value);
        }
    }
    Some(out)
}
