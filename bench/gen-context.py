#!/usr/bin/env python3
"""Writes a deterministic build context for bench/build.sh.

    gen-context.py mixed DIR [SEED]     ~200 MiB of mixed files:
                                          2000 text files of 1–64 KiB in 40 directories (~64 MiB,
                                          compressible: words drawn from a small vocabulary), and
                                          20 binaries of 5–8 MiB (~130 MiB, pseudo-random:
                                          incompressible)
    gen-context.py big DIR MIB [SEED]   one file of MIB MiB of pseudo-random bytes (the RSS check)

Bytes come from `random.Random(SEED-…)`, so the same arguments give the same files; mtimes are
fixed too. The context is written to DIR.tmp and renamed to DIR when complete; an existing DIR is
left alone.
"""

import os
import random
import shutil
import sys

CHUNK = 1 << 20
WORDS = (
    "the of and to in is for on that with as by this from at be are or an it not which have "
    "image layer registry manifest digest blob config build context copy push pull cache "
    "container runtime tarball gzip stream upload mount index platform tag repository "
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho"
).split()


def text_file(path, size, rng):
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + "\n"
        out.append(line)
        n += len(line)
    with open(path, "w") as f:
        f.write("".join(out)[:size])


def random_file(path, size, rng):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(CHUNK, left)
            f.write(rng.randbytes(n))
            left -= n


def fix_mtimes(top):
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (1_600_000_000, 1_600_000_000))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("mixed", "big"):
        sys.exit(__doc__)
    mode, out = sys.argv[1], sys.argv[2]
    if os.path.isdir(out):
        return
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if mode == "mixed":
        seed = sys.argv[3] if len(sys.argv) > 3 else "hoist-build-bench"
        rng = random.Random(f"{seed}-text")
        for i in range(2000):
            d = os.path.join(tmp, "src", f"mod{i % 40:02d}")
            os.makedirs(d, exist_ok=True)
            text_file(os.path.join(d, f"file{i:04d}.txt"), rng.randint(1 << 10, 64 << 10), rng)
        os.makedirs(os.path.join(tmp, "bin"))
        for i in range(20):
            r = random.Random(f"{seed}-bin-{i}")
            random_file(os.path.join(tmp, "bin", f"blob{i:02d}.bin"), r.randint(5 << 20, 8 << 20), r)
    else:
        mib = int(sys.argv[3])
        seed = sys.argv[4] if len(sys.argv) > 4 else "hoist-build-bench"
        random_file(os.path.join(tmp, "big.bin"), mib << 20, random.Random(f"{seed}-big"))
    fix_mtimes(tmp)
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
