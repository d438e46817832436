#!/usr/bin/env bash
# hoist's whole test suite — the README's test command, and what .ci/run calls.
#  1. unit tests and the integration tests (real registries on loopback, skopeo/umoci as readers,
#     BuildKit's Dockerfile parser corpus and Helm's chart data from ../shared/conformance when present);
#  2. the static release binary, and a push from an empty chroot with it.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker-registry skopeo umoci rsync; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing: apt-get install docker-registry skopeo umoci rsync (or run .ci/run)" >&2; exit 1; }
done
# The CI/CD components and examples run under gitlab-ci-local and are validated against GitLab's schema.
command -v gitlab-ci-local >/dev/null || { echo "test.sh: gitlab-ci-local is missing: npm install -g gitlab-ci-local@4.60.0 (or run .ci/run)" >&2; exit 1; }
command -v check-jsonschema >/dev/null || { echo "test.sh: check-jsonschema is missing: pip install check-jsonschema (or run .ci/run)" >&2; exit 1; }

if [ -d ../shared/conformance/dockerfile-parser ] || [ -n "${HOIST_CONFORMANCE_DIR:-}" ]; then
  cargo test --locked
else
  echo "test.sh: NOTE: ../shared/conformance is absent; running everything except the BuildKit parser corpus and the Helm chart conformance tests (chart::conformance_*)" >&2
  cargo test --locked -- --skip dockerfile_conformance --skip chart::conformance_
fi

echo "test.sh: building the static release binary"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --release --target x86_64-unknown-linux-gnu
if [ "$(id -u)" = 0 ]; then
  scripts/static-check.sh target/x86_64-unknown-linux-gnu/release/hoist
else
  echo "test.sh: FAIL: the static-binary check needs root (chroot, mknod); run as root or via .ci/run" >&2
  exit 1
fi
echo "test.sh: all passed"
