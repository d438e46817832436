"""Writes an rpm >= 4.16 sqlite database (rpmdb.sqlite) for hoist's SBOM tests: sqlite itself (python3's
sqlite3 module) lays the file out, with rpm's schema (the Packages table of header blobs, one index
table); the header blobs are built here as rpm writes them (big-endian index entries and data store,
closed by an immutable region whose trailer points back over every entry), which syft's rpm reader
(anchore/go-rpmdb) verifies. Usage: python3 mkrpmdb.py OUT.sqlite"""
import sqlite3, struct, sys
# (name, version, release, epoch or None, arch, sourcerpm, license)
PKGS = [
    ("openssl-libs", "3.0.7", "24.el9", 1, "x86_64", "openssl-3.0.7-24.el9.src.rpm", "ASL 2.0"),
    ("bash", "5.1.8", "6.el9_1", None, "x86_64", "bash-5.1.8-6.el9_1.src.rpm", "GPLv3+"),
    ("tzdata", "2023c", "1.el9", None, "noarch", "tzdata-2023c-1.el9.src.rpm", "Public Domain"),
    ("gpg-pubkey", "fd431d51", "4ae0493b", None, None, None, "pubkey"),
]
def header(name, version, release, epoch, arch, source, lic):
    # (tag, type, value): STRING = 6, INT32 = 4
    entries = [(1000, 6, name), (1001, 6, version), (1002, 6, release)]
    if epoch is not None:
        entries.append((1003, 4, epoch))
    entries.append((1014, 6, lic))
    if arch is not None:
        entries.append((1022, 6, arch))
    if source is not None:
        entries.append((1044, 6, source))
    data = b""
    index = []
    for tag, typ, val in entries:
        if typ == 4:
            while len(data) % 4:
                data += b"\0"
            index.append((tag, typ, len(data), 1))
            data += struct.pack(">i", val)
        else:
            index.append((tag, typ, len(data), 1))
            data += val.encode() + b"\0"
    # The immutable region (tag 63): its trailer closes the data, pointing back over every entry.
    il = len(index) + 1
    trailer = struct.pack(">iiii", 63, 7, -(il * 16), 16)
    region = (63, 7, len(data), 16)
    data += trailer
    out = struct.pack(">ii", il, len(data))
    for e in [region] + index:
        out += struct.pack(">iiii", *e)
    return out + data
# Enough packages that the Packages table's b-tree needs interior pages.
PKGS += [(f"filler-{i:03}", "1.0", f"{i}.el9", None, "x86_64", f"filler-1.0-{i}.el9.src.rpm", "MIT") for i in range(300)]
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
db.execute("CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES Packages(hnum))")
for i, p in enumerate(PKGS):
    db.execute("INSERT INTO Packages (blob) VALUES (?)", (header(*p),))
    db.execute("INSERT INTO Name VALUES (?, ?, 0)", (p[0], i + 1))
# A big header, to need overflow pages (a real header carries file lists of many KiB).
big = header("big-files", "1.0", "1.el9", None, "x86_64", "big-1.0-1.el9.src.rpm", "MIT" + " " * 9000 + "x")
db.execute("INSERT INTO Packages (blob) VALUES (?)", (big,))
db.commit()
db.close()
