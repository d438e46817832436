#!/usr/bin/env bash
# Proves hoist's own images work: scripts/release.sh builds them with hoist (OCI layouts), umoci unpacks
# each, and from the unpacked root (chroot, as a container would run it) the binary prints its version;
# in the -debug image, busybox's shell runs a GitLab-style `script:` line that calls hoist. Needs root
# (chroot); bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in umoci file; do
  command -v "$tool" >/dev/null || { echo "image-check: $tool missing (apt-get install $tool)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "image-check: FAIL: needs root (chroot)" >&2; exit 1; }
timeout 900 scripts/release.sh
bin=target/x86_64-unknown-linux-gnu/release/hoist
want=$("$bin" --version)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(echo "$want" | awk '{print $2}')

umoci unpack --image "target/release-images/hoist:$version" "$work/hoist" >/dev/null
root=$work/hoist/rootfs
[ -f "$root/etc/ssl/certs/ca-certificates.crt" ] || { echo "image-check: FAIL: no CA bundle in the image" >&2; exit 1; }
[ ! -e "$root/bin/sh" ] || { echo "image-check: FAIL: the release image has a shell" >&2; exit 1; }
got=$(timeout 30 chroot "$root" /usr/local/bin/hoist --version)
[ "$got" = "$want" ] || { echo "image-check: FAIL: chroot hoist --version gave '$got', want '$want'" >&2; exit 1; }
python3 - "$work/hoist/config.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
args = cfg["process"]["args"]
assert args[0] == "hoist", f"ENTRYPOINT should be [\"hoist\"], the bundle runs {args}"
PY
echo "image-check: hoist:$version ok ($got from the unpacked root; ENTRYPOINT hoist)"

umoci unpack --image "target/release-images/hoist-debug:$version-debug" "$work/debug" >/dev/null
root=$work/debug/rootfs
# What a GitLab runner does with `entrypoint: [""]`: sh -c the job's script.
got=$(timeout 30 chroot "$root" /bin/sh -c 'set -e; test -s /etc/ssl/certs/ca-certificates.crt; echo "script: $(hoist --version)"')
[ "$got" = "script: $want" ] || { echo "image-check: FAIL: the debug shell gave '$got'" >&2; exit 1; }
echo "image-check: hoist-debug:$version-debug ok (busybox sh ran a script line: $got)"
