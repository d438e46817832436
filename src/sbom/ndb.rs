//! rpm's own "ndb" package database (`Packages.db`: SUSE and openSUSE), read-only, as rpm's
//! `lib/backend/ndb/rpmpkg.c` lays it out, little-endian: a 32-byte header (magic `RpmP`, version 0,
//! generation, number of slot pages, next package index) in the first two 16-byte slots of the slot
//! pages (4 KiB each); then slots (magic `Slot`, package index — 0 for a free slot —, offset and
//! length in 16-byte blocks); each slot's blob starts with a 16-byte head (magic `BlbS`, package
//! index, generation, length) followed by the header blob. The tails (checksum, length, `BlbE`) are
//! not checked, as syft's reader (anchore's go-rpmdb) does not.

use super::bytes::u32_le;

const SLOT_PAGE: usize = 4096;
const SLOT: usize = 16;
/// rpm refuses more slot pages than this.
const MAX_SLOT_PAGES: usize = 2048;

/// The header blobs of an ndb `Packages.db`, in slot order; `None` when `db` is not one.
pub fn blobs(db: &[u8]) -> Option<Vec<Vec<u8>>> {
    let u32_at = |at: usize| u32_le(db, at);
    if db.get(..4)? != b"RpmP" || u32_at(4)? != 0 {
        return None;
    }
    let slot_pages = u32_at(12)? as usize;
    if slot_pages == 0 || slot_pages > MAX_SLOT_PAGES {
        return None;
    }
    let mut out = Vec::new();
    for at in (2 * SLOT..slot_pages * SLOT_PAGE).step_by(SLOT) {
        if db.get(at..at + 4)? != b"Slot" {
            return None;
        }
        let index = u32_at(at + 4)?;
        if index == 0 {
            continue;
        }
        let head = (u32_at(at + 8)? as usize).checked_mul(SLOT)?;
        if db.get(head..head + 4)? != b"BlbS" || u32_at(head + 4)? != index {
            return None;
        }
        let len = u32_at(head + 12)? as usize;
        out.push(db.get(head + 16..(head + 16).checked_add(len)?)?.to_vec());
    }
    Some(out)
}
