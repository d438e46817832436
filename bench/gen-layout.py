#!/usr/bin/env python3
"""Writes a deterministic OCI image layout for bench/push.sh.

    gen-layout.py DIR TAG LAYERS TOTAL_MIB [SEED]

Each layer is a real gzip stream (RFC 1952, deflate "stored" blocks, i.e. gzip level 0) of a real
tar holding one file of pseudo-random bytes: incompressible, like a compressed layer, and a valid
`tar+gzip` layer for any client that sniffs or unpacks it (skopeo checks the gzip magic, and would
recompress a layer that is not gzip). Stored blocks cost no CPU to make, so 2 GiB takes ~20 s.
The bytes come from `random.Random(f"{SEED}-{i}")`, so the same arguments give the same digests.

The layout is written to DIR.tmp and renamed to DIR when complete; an existing DIR is left alone.
"""

import hashlib
import json
import os
import random
import shutil
import sys
import tarfile
import zlib

CHUNK = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def write_blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def write_layer(blobs, index, payload, seed):
    """Streams tar -> gzip(level 0) -> file; returns (descriptor, diff_id)."""
    rng = random.Random(f"{seed}-{index}")
    info = tarfile.TarInfo(f"layer{index}.bin")
    info.size = payload
    info.mode = 0o644
    info.mtime = 0
    info.uname = info.gname = "root"
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    pad = (-payload) % 512
    trailer = b"\0" * (pad + 1024)  # pad the member to a block, then two zero blocks end the archive

    tar_sha = hashlib.sha256()
    gz_sha = hashlib.sha256()
    gz = zlib.compressobj(0, zlib.DEFLATED, 31)  # wbits 31: gzip wrapper, mtime 0: deterministic
    tmp = os.path.join(blobs, f".layer{index}.tmp")
    size = 0
    with open(tmp, "wb") as out:

        def feed(chunk):
            nonlocal size
            tar_sha.update(chunk)
            z = gz.compress(chunk)
            gz_sha.update(z)
            out.write(z)
            size += len(z)

        feed(header)
        left = payload
        while left:
            n = min(CHUNK, left)
            feed(rng.randbytes(n))
            left -= n
        feed(trailer)
        z = gz.flush()
        gz_sha.update(z)
        out.write(z)
        size += len(z)
    digest = gz_sha.hexdigest()
    os.rename(tmp, os.path.join(blobs, digest))
    desc = {"mediaType": OCI_LAYER_GZIP, "digest": "sha256:" + digest, "size": size}
    return desc, "sha256:" + tar_sha.hexdigest()


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    out, tag, layers, total_mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    seed = sys.argv[5] if len(sys.argv) == 6 else "hoist-bench"
    if os.path.exists(os.path.join(out, "index.json")):
        return
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    blobs = os.path.join(tmp, "blobs", "sha256")
    os.makedirs(blobs)
    # Each blob is TOTAL/LAYERS bytes, less the tar header/trailer; gzip's stored-block framing adds
    # 5 bytes per 64 KiB back (< 0.01 %).
    payload = total_mib * (1 << 20) // layers - 2048
    descs, diff_ids = [], []
    for i in range(layers):
        d, diff = write_layer(blobs, i, payload, seed)
        descs.append(d)
        diff_ids.append(diff)
    config = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": f"bench layer {i}"} for i in range(layers)],
    }
    cfg = write_blob(blobs, json.dumps(config, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **cfg},
        "layers": descs,
    }
    man = write_blob(blobs, json.dumps(manifest, separators=(",", ":")).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": OCI_MANIFEST, **man, "annotations": {"org.opencontainers.image.ref.name": tag}}
        ],
    }
    with open(os.path.join(tmp, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(tmp, "index.json"), "w") as f:
        json.dump(index, f)
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
