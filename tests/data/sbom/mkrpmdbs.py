"""Writes the three rpm database formats for hoist's SBOM tests, from packages rpm itself builds:

  OUT/sqlite/rpmdb.sqlite  rpm >= 4.16's database, written by rpm (`rpm -i --justdb`) — RHEL/UBI 9,
                           Fedora, Amazon Linux 2023
  OUT/bdb/Packages         Berkeley DB hash database (RHEL/UBI 8, CentOS 7, Amazon Linux 2), written by
                           Berkeley DB itself (`db5.3_load -t hash`) from the header blobs rpm stored: the
                           key is the header number (4 bytes, host order), the value the header; plus
                           rpm's record 0 (the next header number), which readers skip
  OUT/ndb/Packages.db      rpm's own ndb format (SUSE, openSUSE), laid out here as rpm's rpmpkg.c does
                           (Debian's rpm is built without ndb): a 32-byte header and slot page, then
                           each blob in 16-byte blocks, head `BlbS` and tail `BlbE`

The packages (rpmbuild -bb of generated specs, no files): an epoch, noarch and x86_64, and one whose
header spans several database pages (a long description). Needs rpm, rpmbuild (Debian: rpm) and
db5.3_load (Debian: db5.3-util). Prints one line per package: name version release epoch arch.

Usage: python3 mkrpmdbs.py OUT"""
import os, sqlite3, struct, subprocess, sys, zlib

# (name, version, release, epoch or None, arch, description lines)
PKGS = [
    ("openssl-libs", "1.1.1k", "9.el8_7", 1, "x86_64", 1),
    ("bash", "4.4.20", "4.el8_6", None, "x86_64", 1),
    ("tzdata", "2023c", "1.el8", None, "noarch", 1),
    ("big-docs", "2.0", "3.el8", None, "noarch", 400),
]


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def build(out):
    top = os.path.join(out, "rpmbuild")
    rpms = []
    for name, version, release, epoch, arch, lines in PKGS:
        spec = os.path.join(out, f"{name}.spec")
        desc = "\n".join(f"Line {i} of the {name} test package's description." for i in range(lines))
        with open(spec, "w") as f:
            f.write(f"Name: {name}\nVersion: {version}\nRelease: {release}\n")
            if epoch is not None:
                f.write(f"Epoch: {epoch}\n")
            f.write(f"Summary: {name} for hoist's tests\nLicense: MIT\nBuildArch: {arch}\n")
            f.write(f"%description\n{desc}\n%files\n")
        run("rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", "--target", arch, spec)
        rpms.append(os.path.join(top, "RPMS", arch, f"{name}-{version}-{release}.{arch}.rpm"))
        print(name, version, release, epoch if epoch is not None else "", arch)
    return rpms


def bdb(blobs, path):
    """Berkeley DB's own writer: db_load's text input, non-printing bytes as \\HH."""

    def text(b):
        return "".join(chr(c) if 0x20 < c < 0x7F and c != 0x5C else f"\\{c:02x}" for c in b)

    records = [(0, struct.pack("<I", len(blobs) + 1))] + blobs
    lines = "".join(f"{text(struct.pack('<I', k))}\n{text(v)}\n" for k, v in records)
    subprocess.run(["db5.3_load", "-T", "-t", "hash", "-c", "db_pagesize=4096", path], input=lines.encode(),
                   check=True, stderr=subprocess.PIPE)


def ndb(blobs, path):
    """rpmpkg.c's layout, little-endian: header (magic, version 0, generation, slot pages, next index)
    in the first two 16-byte slots of the slot page; each slot (magic, pkgidx, block offset, block
    count; a free slot keeps its magic, pkgidx 0); blobs after the slot page, in 16-byte blocks:
    head (magic, pkgidx, generation, length), the header, tail (adler32, length, magic)."""
    slot_page, block = 4096, 16
    slots, data = [], b""
    for idx, blob in blobs:
        head = struct.pack("<4I", 0x53626C42, idx, 1, len(blob))  # "BlbS"
        body = head + blob
        body += b"\0" * (-(len(body) + 12) % block)
        body += struct.pack("<3I", zlib.adler32(head + blob), len(blob), 0x45626C42)  # "BlbE"
        offset = (slot_page + len(data)) // block
        slots.append(struct.pack("<4I", 0x746F6C53, idx, offset, len(body) // block))  # "Slot"
        data += body
    slots += [struct.pack("<4I", 0x746F6C53, 0, 0, 0)] * (slot_page // block - 2 - len(slots))
    header = struct.pack("<8I", 0x506D7052, 0, 1, 1, len(blobs) + 1, 0, 0, 0)  # "RpmP"
    with open(path, "wb") as f:
        f.write(header + b"".join(slots) + data)


def main(out):
    rpms = build(out)
    for d in ("sqlite", "bdb", "ndb"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    dbpath = os.path.join(out, "sqlite")
    run("rpm", "--dbpath", dbpath, "-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos", "--nosignature",
        *rpms)
    con = sqlite3.connect(os.path.join(dbpath, "rpmdb.sqlite"))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    blobs = [(h, bytes(b)) for h, b in con.execute("SELECT hnum, blob FROM Packages ORDER BY hnum")]
    con.close()
    assert len(blobs) == len(PKGS), blobs
    assert max(len(b) for _, b in blobs) > 3 * 4096, "one header must span several pages"
    bdb(blobs, os.path.join(out, "bdb", "Packages"))
    ndb(blobs, os.path.join(out, "ndb", "Packages.db"))


if __name__ == "__main__":
    main(sys.argv[1])
