#!/usr/bin/env bash
# Proves the release binary is static and self-sufficient: it runs in an empty root that holds only the
# binary, a CA bundle, /dev/random + /dev/urandom and an OCI layout, resolves `localhost` without glibc's NSS (no
# /etc/hosts, no /etc/resolv.conf) and pushes to a real registry on loopback.
# Usage: scripts/static-check.sh [BINARY]   (default: the static build's path). Needs root (chroot, mknod).
set -euo pipefail
bin=${1:-target/x86_64-unknown-linux-gnu/release/hoist}
[ -x "$bin" ] || { echo "static-check: no binary at $bin; build it with:" >&2
  echo '  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target x86_64-unknown-linux-gnu' >&2; exit 1; }
command -v docker-registry >/dev/null || { echo "static-check: docker-registry missing (apt-get install docker-registry)" >&2; exit 1; }
command -v umoci >/dev/null || { echo "static-check: umoci missing (apt-get install umoci)" >&2; exit 1; }

if file "$bin" | grep -q "dynamically linked"; then
  echo "static-check: FAIL: $bin is dynamically linked: $(file -b "$bin")" >&2; exit 1
fi
if ldd "$bin" 2>&1 | grep -q "=>"; then
  echo "static-check: FAIL: ldd lists shared libraries for $bin" >&2; exit 1
fi

work=$(mktemp -d)
reg_pid=""
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/reg.yml" <<YML
version: 0.1
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/reg.yml" > "$work/reg.log" 2>&1 &
reg_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done

root="$work/root"
mkdir -p "$root/etc/ssl/certs" "$root/dev"
cp "$bin" "$root/hoist"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
# The getrandom crate in a static binary cannot find getrandom(2) through dlsym, so it falls back to
# polling /dev/random and reading /dev/urandom — both exist in every real container.
mknod -m 444 "$root/dev/random" c 1 8
mknod -m 444 "$root/dev/urandom" c 1 9
umoci init --layout "$root/layout" >/dev/null
umoci new --image "$root/layout:v1" >/dev/null

echo "static-check: root holds: $(cd "$root" && find . -mindepth 1 -maxdepth 3 ! -path './layout/*' | sort | tr '\n' ' ')"
out=$(chroot "$root" /hoist push -q oci:/layout:v1 "localhost:$port/static/check:1")
echo "static-check: pushed from the empty root: $out"
case "$out" in
  "localhost:$port/static/check:1@sha256:"*) ;;
  *) echo "static-check: FAIL: unexpected output" >&2; exit 1 ;;
esac
curl -fs -o /dev/null "http://127.0.0.1:$port/v2/static/check/manifests/1" \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' || { echo "static-check: FAIL: manifest not in registry" >&2; exit 1; }
echo "static-check: ok ($(file -b "$bin" | cut -d, -f1-2), $(du -h "$bin" | cut -f1))"
