//! rpm's package databases, read without their C libraries, and the rpm header blobs they hold (index
//! entries and data store, big-endian: `NAME`, `VERSION`, `RELEASE`, `EPOCH`, `ARCH`, `SOURCERPM`).
//! Three formats, told apart by their magic:
//! - `rpmdb.sqlite` (rpm ≥ 4.16: RHEL/UBI 9, Fedora, Amazon Linux 2023): a read-only walk of the
//!   `Packages (hnum, blob)` table's b-tree pages (sqlite's file format,
//!   <https://www.sqlite.org/fileformat2.html>: table interior and leaf pages, overflow chains, record
//!   serial types), here. A write-ahead log beside the file (`rpmdb.sqlite-wal`) is not read: images
//!   ship checkpointed databases.
//! - `Packages`, Berkeley DB's hash format (RHEL/UBI 8, CentOS 7, Amazon Linux 2): [`super::bdb`].
//! - `Packages.db`, rpm's own ndb format (SUSE, openSUSE): [`super::ndb`].
//!
//! Only what hoist needs; anything unexpected ends the read with `None` (no packages), never a panic.

use super::bytes::{u16_be, u32_be};

/// The sqlite file's magic.
const MAGIC: &[u8] = b"SQLite format 3\0";
/// Page trees deeper than this are refused (a loop in a hostile file).
const MAX_DEPTH: usize = 32;

/// One package's fields from its header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<i32>,
    pub arch: String,
    pub source_rpm: String,
}

/// Every package header of an rpm database (`rpmdb.sqlite`, Berkeley DB `Packages` or ndb
/// `Packages.db`); `None` when the file is not one hoist can read. Records that are not headers
/// (Berkeley DB's record 0 holds the next header number) are passed over.
pub fn headers(db: &[u8]) -> Option<Vec<Header>> {
    let blobs = if db.starts_with(MAGIC) {
        sqlite_blobs(db)?
    } else if let Some(values) = super::bdb::values(db) {
        values
    } else {
        super::ndb::blobs(db)?
    };
    Some(blobs.iter().filter_map(|b| header(b)).collect())
}

/// The `blob` column of an `rpmdb.sqlite`'s `Packages` table.
fn sqlite_blobs(db: &[u8]) -> Option<Vec<Vec<u8>>> {
    let file = Db::open(db)?;
    let schema = file.rows(1)?;
    // sqlite_schema: type, name, tbl_name, rootpage, sql.
    let root = schema.iter().find_map(|r| match (r.first(), r.get(1), r.get(3)) {
        (Some(Value::Text(t)), Some(Value::Text(n)), Some(Value::Int(p))) if t == b"table" && n == b"Packages" => {
            usize::try_from(*p).ok()
        }
        _ => None,
    })?;
    // Packages: hnum (the rowid, stored as NULL), blob.
    Some(
        file.rows(root)?
            .into_iter()
            .filter_map(|mut r| match r.get_mut(1) {
                Some(Value::Blob(b)) => Some(std::mem::take(b)),
                _ => None,
            })
            .collect(),
    )
}

enum Value {
    Null,
    Int(i64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

struct Db<'a> {
    bytes: &'a [u8],
    page_size: usize,
    usable: usize,
}

impl<'a> Db<'a> {
    fn open(bytes: &'a [u8]) -> Option<Db<'a>> {
        if !bytes.starts_with(MAGIC) || bytes.len() < 100 {
            return None;
        }
        let page_size = match u16_be(bytes, 16)? {
            1 => 65536,
            n if n >= 512 && n.is_power_of_two() => n as usize,
            _ => return None,
        };
        let usable = page_size.checked_sub(bytes[20] as usize)?;
        (usable >= 480).then_some(Db { bytes, page_size, usable })
    }

    fn page(&self, n: usize) -> Option<&'a [u8]> {
        let start = n.checked_sub(1)?.checked_mul(self.page_size)?;
        self.bytes.get(start..start.checked_add(self.page_size)?)
    }

    /// The records of the table whose b-tree is rooted at page `root`, in rowid order.
    fn rows(&self, root: usize) -> Option<Vec<Vec<Value>>> {
        let mut out = Vec::new();
        // A b-tree visits each page once: more visits than the file has pages is a hostile file
        // (interior pages naming the same child again and again), refused before it costs much.
        let mut budget = self.bytes.len() / self.page_size;
        self.walk(root, 0, &mut budget, &mut out)?;
        Some(out)
    }

    fn walk(&self, n: usize, depth: usize, budget: &mut usize, out: &mut Vec<Vec<Value>>) -> Option<()> {
        if depth > MAX_DEPTH || *budget == 0 {
            return None;
        }
        *budget -= 1;
        let page = self.page(n)?;
        let h = if n == 1 { 100 } else { 0 };
        let kind = *page.get(h)?;
        let cells = u16_be(page, h + 3)? as usize;
        let (header_len, leaf) = match kind {
            0x0d => (8, true),
            0x05 => (12, false),
            _ => return None,
        };
        for i in 0..cells {
            let at = h + header_len + 2 * i;
            let cell = u16_be(page, at)? as usize;
            if leaf {
                let (size, a) = varint(page.get(cell..)?)?;
                let (_rowid, b) = varint(page.get(cell + a..)?)?;
                let payload = self.payload(page, cell + a + b, usize::try_from(size).ok()?)?;
                out.push(record(&payload)?);
            } else {
                let child = u32_be(page, cell)? as usize;
                self.walk(child, depth + 1, budget, out)?;
            }
        }
        if !leaf {
            let right = u32_be(page, h + 8)? as usize;
            self.walk(right, depth + 1, budget, out)?;
        }
        Some(())
    }

    /// A table leaf cell's payload of `size` bytes starting at `at` in `page`, overflow pages followed.
    fn payload(&self, page: &[u8], at: usize, size: usize) -> Option<Vec<u8>> {
        let u = self.usable;
        let x = u - 35;
        if size <= x {
            return Some(page.get(at..at + size)?.to_vec());
        }
        let m = ((u - 12) * 32 / 255) - 23;
        let k = m + ((size - m) % (u - 4));
        let local = if k <= x { k } else { m };
        let mut out = page.get(at..at + local)?.to_vec();
        let mut next = u32_be(page, at + local)? as usize;
        let mut hops = 0;
        while out.len() < size {
            hops += 1;
            if next == 0 || hops > self.bytes.len() / self.page_size {
                return None;
            }
            let p = self.page(next)?;
            next = u32_be(p, 0)? as usize;
            let take = (size - out.len()).min(u - 4);
            out.extend_from_slice(p.get(4..4 + take)?);
        }
        Some(out)
    }
}

/// sqlite's big-endian varint (1–9 bytes).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for i in 0..9 {
        let byte = *b.get(i)?;
        if i == 8 {
            return Some(((x << 8) | u64::from(byte), 9));
        }
        x = (x << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((x, i + 1));
        }
    }
    None
}

/// A record: its header of serial types, then the values.
fn record(p: &[u8]) -> Option<Vec<Value>> {
    let (header_len, mut pos) = varint(p)?;
    let header_len = usize::try_from(header_len).ok()?;
    let mut types = Vec::new();
    while pos < header_len {
        let (t, n) = varint(p.get(pos..)?)?;
        types.push(t);
        pos += n;
    }
    let mut at = header_len;
    let mut out = Vec::new();
    for t in types {
        let (len, value) = match t {
            0 => (0, Value::Null),
            1..=6 => {
                let len = [0, 1, 2, 3, 4, 6, 8][t as usize];
                let bytes = p.get(at..at + len)?;
                let mut v = if bytes[0] & 0x80 != 0 { -1i64 } else { 0 };
                for b in bytes {
                    v = (v << 8) | i64::from(*b);
                }
                (len, Value::Int(v))
            }
            7 => (8, Value::Null),
            8 => (0, Value::Int(0)),
            9 => (0, Value::Int(1)),
            t if t >= 12 => {
                let len = usize::try_from((t - 12) / 2).ok()?;
                let bytes = p.get(at..at + len)?.to_vec();
                (len, if t % 2 == 0 { Value::Blob(bytes) } else { Value::Text(bytes) })
            }
            _ => return None,
        };
        at += len;
        out.push(value);
    }
    Some(out)
}

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;

/// One rpm header blob (as the database stores it: no lead, no magic): `il` index entries of (tag,
/// type, offset, count), then `dl` bytes of data.
fn header(b: &[u8]) -> Option<Header> {
    let be = |at: usize| u32_be(b, at);
    let (il, dl) = (be(0)? as usize, be(4)? as usize);
    let data_start = 8usize.checked_add(il.checked_mul(16)?)?;
    let data = b.get(data_start..data_start.checked_add(dl)?)?;
    let mut h = Header::default();
    for i in 0..il {
        let e = 8 + 16 * i;
        let (tag, kind, offset) = (be(e)?, be(e + 4)?, be(e + 8)? as usize);
        let string = || -> Option<String> {
            let s = data.get(offset..)?;
            let end = s.iter().position(|c| *c == 0)?;
            Some(String::from_utf8_lossy(&s[..end]).into_owned())
        };
        match (tag, kind) {
            (TAG_NAME, TYPE_STRING) => h.name = string()?,
            (TAG_VERSION, TYPE_STRING) => h.version = string()?,
            (TAG_RELEASE, TYPE_STRING) => h.release = string()?,
            (TAG_ARCH, TYPE_STRING) => h.arch = string()?,
            (TAG_SOURCERPM, TYPE_STRING) => h.source_rpm = string()?,
            (TAG_EPOCH, TYPE_INT32) => {
                h.epoch = Some(u32_be(data, offset)? as i32);
            }
            _ => {}
        }
    }
    (!h.name.is_empty()).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_blob(fields: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut index = Vec::new();
        for (tag, kind, value) in fields {
            index.extend([*tag, *kind, data.len() as u32, 1].iter().flat_map(|v| v.to_be_bytes()));
            data.extend_from_slice(value);
        }
        let mut out = Vec::new();
        out.extend((fields.len() as u32).to_be_bytes());
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    #[test]
    fn headers_varints_and_records_parse_and_garbage_does_not_panic() {
        let b = header_blob(&[
            (TAG_NAME, TYPE_STRING, b"bash\0"),
            (TAG_VERSION, TYPE_STRING, b"5.1.8\0"),
            (TAG_RELEASE, TYPE_STRING, b"6.el9\0\0\0"),
            (TAG_EPOCH, TYPE_INT32, &2i32.to_be_bytes()),
        ]);
        let h = header(&b).unwrap();
        assert_eq!(
            (h.name.as_str(), h.version.as_str(), h.release.as_str(), h.epoch),
            ("bash", "5.1.8", "6.el9", Some(2))
        );
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        // header 3 bytes: int8 (1), text of 2 (17); values: 7, "hi".
        let r = record(&[3, 1, 17, 7, b'h', b'i']).unwrap();
        assert!(matches!((&r[0], &r[1]), (Value::Int(7), Value::Text(t)) if t == b"hi"));
        assert!(headers(b"SQLite format 3\0 but nothing after").is_none());
        assert!(headers(&[0u8; 4096]).is_none());
        for cut in [0, 7, 20, b.len() - 3] {
            let _ = header(&b[..cut]);
        }
    }

    fn seed(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/package_databases").join(name))
            .unwrap()
    }

    /// `rounds` deterministic corruptions of `db` (1–4 bytes each) never panic nor run away.
    fn corruptions_do_not_panic(db: &[u8], rounds: usize) {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..rounds {
            let mut bad = db.to_vec();
            for _ in 0..1 + (x % 4) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % bad.len();
                bad[at] = (x >> 32) as u8;
            }
            let _ = headers(&bad);
        }
    }

    /// The fuzz seed (sqlite wrote it: 512-byte pages, so an interior page and an overflow chain)
    /// reads whole; 20 000 deterministic corruptions of it never panic nor run away.
    #[test]
    fn a_database_sqlite_wrote_reads_and_its_corruptions_do_not_panic() {
        let db = seed("rpmdb.sqlite");
        let all = headers(&db).unwrap();
        assert_eq!(all.len(), 25);
        assert!(all.iter().any(|h| h.name == "big" && h.source_rpm == "big-1-1.src.rpm"), "the overflowing header");
        let ssl = all.iter().find(|h| h.name == "openssl-libs").unwrap();
        assert_eq!((ssl.version.as_str(), ssl.release.as_str(), ssl.epoch), ("3.0.7", "24.el9", Some(1)));
        corruptions_do_not_panic(&db, 20_000);
    }

    /// The Berkeley DB and ndb seeds (tests/data/sbom/mkrpmdbs.py: headers rpm built and stored,
    /// the Berkeley DB file written by db_load) read whole — a header over several overflow pages
    /// included, Berkeley DB's record 0 passed over — and their corruptions never panic.
    #[test]
    fn berkeley_db_and_ndb_databases_read_and_their_corruptions_do_not_panic() {
        for name in ["rpm-bdb-Packages", "rpm-ndb-Packages.db"] {
            let db = seed(name);
            let mut all = headers(&db).unwrap();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            let got: Vec<String> = all
                .iter()
                .map(|h| format!("{} {} {} {:?} {} {}", h.name, h.version, h.release, h.epoch, h.arch, h.source_rpm))
                .collect();
            assert_eq!(
                got,
                [
                    "bash 4.4.20 4.el8_6 None x86_64 bash-4.4.20-4.el8_6.src.rpm",
                    "big-docs 2.0 3.el8 None noarch big-docs-2.0-3.el8.src.rpm",
                    "openssl-libs 1.1.1k 9.el8_7 Some(1) x86_64 openssl-libs-1.1.1k-9.el8_7.src.rpm",
                    "tzdata 2023c 1.el8 None noarch tzdata-2023c-1.el8.src.rpm",
                ],
                "{name}"
            );
            corruptions_do_not_panic(&db, 5_000);
        }
        // Neither format mistakes the other, nor sqlite, nor nothing, for itself.
        assert!(super::super::bdb::values(&seed("rpm-ndb-Packages.db")).is_none());
        assert!(super::super::ndb::blobs(&seed("rpm-bdb-Packages")).is_none());
        assert!(super::super::bdb::values(&seed("rpmdb.sqlite")).is_none());
        assert!(headers(&[0u8; 8192]).is_none());
    }
}
