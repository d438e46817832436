#!/usr/bin/env bash
# hoist's release: the static binary, then hoist's own images built by hoist (the Dockerfile at the root):
# hoist:VERSION and hoist:VERSION-debug (busybox shell, for GitLab jobs).
#   scripts/release.sh                     # writes OCI layouts target/release-images/{hoist,hoist-debug}
#   scripts/release.sh --push REPOSITORY   # pushes REPOSITORY:VERSION and REPOSITORY:VERSION-debug
#   scripts/release.sh --stage             # only stages target/image/ (for `docker build .`)
# The CA bundle is the system's (/etc/ssl/certs/ca-certificates.crt, Debian's ca-certificates; override with
# CA_BUNDLE=FILE); busybox is Debian's busybox-static (/bin/busybox; override with BUSYBOX=FILE), which must
# be statically linked: the image has no libc.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=layout push_repo=""
case "${1:-}" in
  --push) mode=push; push_repo=${2:?"--push needs a repository, e.g. registry.gitlab.com/hoist/hoist"} ;;
  --stage) mode=stage ;;
  "") ;;
  *) echo "usage: scripts/release.sh [--push REPOSITORY | --stage]" >&2; exit 2 ;;
esac
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
busybox=${BUSYBOX:-$(command -v busybox || echo /bin/busybox)}
[ -s "$ca" ] || { echo "release.sh: no CA bundle at $ca: apt-get install ca-certificates (or set CA_BUNDLE)" >&2; exit 1; }
[ -x "$busybox" ] || { echo "release.sh: no busybox at $busybox: apt-get install busybox-static (or set BUSYBOX)" >&2; exit 1; }
if ! file -L "$busybox" | grep -q "statically linked"; then
  echo "release.sh: $busybox is not statically linked: apt-get install busybox-static" >&2; exit 1
fi

echo "release.sh: building the static binary" >&2
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --release --target x86_64-unknown-linux-gnu
bin=target/x86_64-unknown-linux-gnu/release/hoist
version=$("$bin" --version | awk '{print $2}')

# Stage what the Dockerfile copies: the CA bundle, and per architecture (TARGETARCH) the binary, busybox
# and one symlink per applet. This script builds amd64; .gitlab-ci.yml's binary:arm64 job stages arm64.
rm -rf target/image && mkdir -p target/image/amd64/busybox
cp "$ca" target/image/ca-certificates.crt
cp "$bin" target/image/amd64/hoist
cp "$busybox" target/image/amd64/busybox/busybox
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "target/image/amd64/busybox/$applet"
done
[ "$mode" = stage ] && { echo "release.sh: staged target/image/; docker build . works now" >&2; exit 0; }

# Fixed timestamps: the commit's time, so a rebuild of one commit gives the same digests.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
for target in release debug; do
  suffix=""; [ "$target" = debug ] && suffix=-debug
  if [ "$mode" = push ]; then
    "$bin" build . --target "$target" -t "$push_repo:$version$suffix" --annotation "org.opencontainers.image.version=$version"
  else
    out=target/release-images/hoist$suffix
    rm -rf "$out"
    "$bin" build . --target "$target" --output "oci:$out:$version$suffix" --annotation "org.opencontainers.image.version=$version" >/dev/null
    echo "release.sh: wrote $out (tag $version$suffix)" >&2
  fi
done
