#!/usr/bin/env bash
# hoist's whole test suite — the README's test command, and what .ci/run calls.
#  1. unit tests and the integration tests (real registries on loopback, skopeo/umoci as readers,
#     BuildKit's Dockerfile parser corpus and Helm's chart data from ../shared/conformance when present);
#  2. the layer writer's output with each of libdeflate's run-time CPU paths (bench/compress.sh dispatch);
#     the static release binary, and a push from an empty chroot with it;
#  3. hoist's own images built by hoist (scripts/release.sh), run from their unpacked roots.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker-registry skopeo umoci rsync; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing: apt-get install docker-registry skopeo umoci rsync (or run .ci/run)" >&2; exit 1; }
done
# The CI/CD components and examples run under gitlab-ci-local and are validated against GitLab's schema.
command -v gitlab-ci-local >/dev/null || { echo "test.sh: gitlab-ci-local is missing: npm install -g gitlab-ci-local@4.60.0 (or run .ci/run)" >&2; exit 1; }
command -v check-jsonschema >/dev/null || { echo "test.sh: check-jsonschema is missing: pip install check-jsonschema (or run .ci/run)" >&2; exit 1; }
# The Go-built judges (helm 4, crane, oras, syft, regctl, cosign, distribution v3): built once per machine by
# scripts/go-tools.sh (cached outside the work tree) and put first on PATH.
TOOLS_BIN="$(scripts/go-tools.sh)" || { echo "test.sh: the Go tools could not be built: scripts/go-tools.sh needs Go >= 1.22 and the Go module proxy" >&2; exit 1; }
export PATH="$TOOLS_BIN:$PATH"

if [ -d ../shared/conformance/dockerfile-parser ] || [ -n "${HOIST_CONFORMANCE_DIR:-}" ]; then
  cargo test --locked
else
  echo "test.sh: NOTE: ../shared/conformance is absent; running everything except the BuildKit parser corpus and the Helm chart conformance tests (chart::conformance_*)" >&2
  cargo test --locked -- --skip dockerfile_conformance --skip chart::conformance_
fi

# The layer writer's bytes must not depend on the CPU: libdeflate picks checksum code at run time,
# so its output and hoist's gzip members are compared with each run-time path switched off, and with
# an x86-64-v3 build (docs/compression.md).
echo "test.sh: libdeflate's CPU-dispatch check (bench/compress.sh dispatch)"
MIB=8 bench/compress.sh dispatch

echo "test.sh: building the static release binary"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --release --target x86_64-unknown-linux-gnu
if [ "$(id -u)" = 0 ]; then
  scripts/static-check.sh target/x86_64-unknown-linux-gnu/release/hoist
  # hoist's own images (release and -debug), built by hoist from the same static binary.
  scripts/image-check.sh
else
  echo "test.sh: FAIL: the static-binary check needs root (chroot, mknod); run as root or via .ci/run" >&2
  exit 1
fi
echo "test.sh: all passed"
