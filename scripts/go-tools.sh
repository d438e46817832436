#!/usr/bin/env bash
# The judges the tests run beside hoist, built from the Go module proxy with `go install` at pinned versions:
# helm 4, crane, oras, syft, regctl, cosign 2 and 3, and distribution v3's registry; and cargo-auditable
# (a Rust tool, `cargo install --locked`).
#
# Each tool is built once per machine into $HOIST_TOOLS_CACHE/<name>-<version>/ (default
# ~/.cache/hoist-dev-tools: outside the work tree, so a fresh clone on the same machine reuses it; never
# committed) and linked into the project's .tools/bin, which scripts/test.sh puts first on PATH.
# Go's own module and build caches (GOMODCACHE, GOCACHE) make a rebuild after a version bump cheap.
#
# Usage: scripts/go-tools.sh            install what is missing, print the bin directory
#        scripts/go-tools.sh --list     print "name version module" for each pinned tool
# Needs Go >= 1.22 (apt-get install golang-go on Debian 13, or Go from go.dev); the machine's Go is used.
set -euo pipefail
cd "$(dirname "$0")/.."

# name  version  package path (module@version is built; a module that `go install` refuses because of
# replace directives is built from tools/go/<name>/go.mod, a small module of ours that requires it)
TOOLS=(
  "helm     v4.3.2  helm.sh/helm/v4/cmd/helm"
  "crane    v0.22.1 github.com/google/go-containerregistry/cmd/crane"
  "oras     v1.3.6  oras.land/oras/cmd/oras"
  "syft     v1.57.2 github.com/anchore/syft/cmd/syft"
  "regctl   v0.11.7 github.com/regclient/regclient/cmd/regctl"
  "cosign   v3.1.3  github.com/sigstore/cosign/v3/cmd/cosign"
  "cosign2  v2.6.5  github.com/sigstore/cosign/v2/cmd/cosign"
  "registry v3.1.2  github.com/distribution/distribution/v3/cmd/registry"
)

if [ "${1:-}" = --list ]; then
  for t in "${TOOLS[@]}"; do echo "$t"; done
  exit 0
fi

command -v go >/dev/null || { echo "go-tools.sh: Go is missing: apt-get install golang-go (Go >= 1.22)" >&2; exit 1; }
CACHE="${HOIST_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hoist-dev-tools}"
BIN="$PWD/.tools/bin"
mkdir -p "$CACHE" "$BIN"
export CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=local

for t in "${TOOLS[@]}"; do
  read -r name version pkg <<<"$t"
  dir="$CACHE/$name-$version"
  exe="$(basename "$pkg")"
  if [ ! -x "$dir/$exe" ]; then
    echo "go-tools.sh: building $name $version ($pkg)" >&2
    start=$(date +%s)
    tmp="$dir.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if [ -f "tools/go/$name/go.mod" ]; then
      (cd "tools/go/$name" && GOBIN="$tmp" go install "$pkg")
    else
      GOBIN="$tmp" go install "$pkg@$version"
    fi
    rm -rf "$dir"
    mv "$tmp" "$dir"
    echo "go-tools.sh: $name built in $(( $(date +%s) - start )) s" >&2
  fi
  ln -sfn "$dir/$exe" "$BIN/$name"
done

# Rust tools, pinned the same way with `cargo install --locked` (crates.io): cargo-auditable builds the
# Rust binary whose `.dep-v0` section the SBOM test compares with syft.
CARGO_TOOLS=(
  "cargo-auditable 0.7.7"
)
for t in "${CARGO_TOOLS[@]}"; do
  read -r name version <<<"$t"
  dir="$CACHE/$name-$version"
  if [ ! -x "$dir/bin/$name" ]; then
    command -v cargo >/dev/null || { echo "go-tools.sh: cargo is missing (rustup, or apt-get install cargo)" >&2; exit 1; }
    echo "go-tools.sh: building $name $version (cargo install)" >&2
    start=$(date +%s)
    tmp="$dir.tmp.$$"
    rm -rf "$tmp"
    cargo install --quiet --locked --version "$version" --root "$tmp" "$name" >&2
    rm -rf "$dir"
    mv "$tmp" "$dir"
    echo "go-tools.sh: $name built in $(( $(date +%s) - start )) s" >&2
  fi
  ln -sfn "$dir/bin/$name" "$BIN/$name"
done
echo "$BIN"
