#!/usr/bin/env bash
# bench/sbom.sh — what `--sbom --provenance` cost on `hoist build` + push, side by side with the same build
# without them, and syft scanning the same pushed image, all in one run on one machine.
#
# What it does
#   1. The P2 fixture of bench/build.sh (generated once, cached under bench/work/): an ~80 MiB base
#      (3 layers) and a ~195 MiB context of 2000 text files and 20 random binaries, built by
#        FROM 127.0.0.1:PORT/base/img:1 / ENV … / COPY . /app/ / CMD …
#      so the SBOM cataloguer reads every one of the 2020 files the build adds.
#   2. ROUNDS rounds (default 3); in each round both variants run, in an order that alternates every
#      round. Each variant gets a fresh docker-registry (distribution 2.8: no referrers API, so the
#      documents go through the fallback tag — the slow path) with the base copied in (not timed) and an
#      empty layer cache directory:
#        plain           hoist build -q CTX -f Dockerfile -t 127.0.0.1:PORT/app/x:1 --metadata-file …
#        plain-rebuild   the same again, unchanged context (warm cache; every blob must be skipped)
#        attest          the same cold build with --sbom --provenance (SPDX + CycloneDX + the statement,
#                        attached as referrers, listed in one fallback-tag update)
#        documents       the same cold build with --sbom-file F --provenance-file F: both documents made
#                        (the base's packages read, the added files catalogued), nothing attached — what
#                        a registry with the referrers API (no fallback tag, no waits) costs but for a few
#                        small PUTs; none can run here to measure it directly
#        attest-rebuild  the same again, unchanged context: the documents are reproducible, so they are
#                        found in the registry and nothing is written (every image blob skipped)
#        syft            syft registry:127.0.0.1:PORT/app/x:1 -o json (after attest, same registry; its
#                        own fresh HOME/cache each round): the scanner's time for the same image — it
#                        downloads every layer, the base's included, and catalogues them
#   Every command runs under `/usr/bin/time -f '%e %U %S %M'` (wall, user+sys CPU, peak RSS).
#
# How to read it
#   Medians over the rounds. Targets (issue 17): attest / plain ≤ 1.10× on the cold build + push, and
#   attest-rebuild − plain-rebuild ≈ 0 (+0 on the rebuild). The registry runs on the same 2 cores as the
#   client: other work on the machine shows in the wall times (the load average is printed).
#   The table is printed and written to bench/work/sbom-results.md; raw numbers in bench/work/sbom-raw.tsv,
#   logs in bench/work/sbom-logs/.
#
# Usage
#   bench/sbom.sh                       full run (~3–6 min on 2 cores, plus ~1 min generating once)
#   ROUNDS=5 bench/sbom.sh              more rounds (default 3)
#   HOIST=/path/to/hoist bench/sbom.sh  another binary (default: target/release/hoist, built first)
#   SYFT=/path/to/syft                  (default: syft on PATH, else .tools/bin/syft of the main checkout)
#   STEP_TIMEOUT=s (default 600)
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
BENCH=$(dirname "$SELF")
ROOT=$(cd "$BENCH/.." && pwd)
WORK=$BENCH/work
ROUNDS=${ROUNDS:-3}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
BASE_DIR=$WORK/oci-base80
CTX=$WORK/ctx-mixed
RAW=$WORK/sbom-raw.tsv
LOGS=$WORK/sbom-logs
RESULTS=$WORK/sbom-results.md
REPO=app/x
TAG=1

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
for tool in docker-registry skopeo curl python3 timeout; do
    command -v "$tool" >/dev/null || { echo "bench/sbom.sh needs $tool" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "bench/sbom.sh needs GNU time at /usr/bin/time (apt-get install -y time)" >&2; exit 2; }
SYFT=${SYFT:-$(command -v syft || true)}
if [[ -z $SYFT ]]; then
    SYFT=$(PATH="$("$ROOT/scripts/go-tools.sh"):$PATH" command -v syft || true)
fi
[[ -n $SYFT && -x $SYFT ]] || { echo "bench/sbom.sh needs syft: scripts/go-tools.sh builds it (pinned)" >&2; exit 2; }

mkdir -p "$WORK" "$LOGS"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

STEP_PID=
CACHE_DIR=
SYFT_HOME=
cleanup() {
    if [[ -n $STEP_PID ]]; then
        kill "$STEP_PID" 2>/dev/null || true
        wait "$STEP_PID" 2>/dev/null || true
    fi
    stop_registry
    [[ -z $CACHE_DIR ]] || rm -rf "$CACHE_DIR"
    [[ -z $SYFT_HOME ]] || rm -rf "$SYFT_HOME"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_hoist
"$HOIST" build --help | grep -q -- '--sbom' || { echo "$HOIST has no --sbom" >&2; exit 2; }
FACTS=$(cat <<EOF
$(machine_line)
- $(hoist_version), syft $(go version -m "$SYFT" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'), $(registry_version) (no referrers API: fallback tag)
- $ROUNDS rounds, median shown; plain and attest alternate in order every round, each on a fresh registry with a cold layer cache
- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at the start: $(load_average)
EOF
)
echo "# hoist build --sbom --provenance benchmark"
echo "$FACTS"
echo

p2_inputs
ctx_bytes=$(du -sb --apparent-size "$CTX" | cut -f 1)
ctx_files=$(find "$CTX" -type f | wc -l)

printf 'step\tround\twall_s\tuser_s\tsys_s\tmaxrss_kib\n' >"$RAW"

run_variant() { # NAME ROUND [EXTRA ARGS...]: cold build + push, then the unchanged rebuild
    local name=$1 round=$2
    shift 2
    CACHE_DIR=$(mktemp -d "$WORK/hoist-cache.XXXXXX")
    start_registry_with_base
    hoist_build "$name" "$round" "$CTX" "$@"
    hoist_build "$name-rebuild" "$round" "$CTX" "$@"
    all_skipped "$LOGS/$name-rebuild-$round.json" ||
        { echo "the $name rebuild of the unchanged context uploaded something" >&2; exit 1; }
    if [[ $name == attest ]]; then
        # The documents are attached: the fallback tag lists the three of them.
        local listed
        listed=$("$HOIST" referrers "127.0.0.1:$PORT/$REPO:$TAG" --json |
            python3 -c 'import json,sys; print(len(json.load(sys.stdin)["referrers"]))')
        [[ $listed == 3 ]] || { echo "$name: $listed referrers listed, not 3" >&2; exit 1; }
        SYFT_HOME=$(mktemp -d "$WORK/syft-home.XXXXXX")
        timed syft "$round" env HOME="$SYFT_HOME" XDG_CACHE_HOME="$SYFT_HOME/.cache" \
            SYFT_REGISTRY_INSECURE_USE_HTTP=true SYFT_CHECK_FOR_APP_UPDATE=false \
            "$SYFT" "registry:127.0.0.1:$PORT/$REPO:$TAG" -o json -q
        rm -rf "$SYFT_HOME"
        SYFT_HOME=
    fi
    stop_registry
    rm -rf "$CACHE_DIR"
    CACHE_DIR=
    timeout 120 sync || true
}

echo "## context: $((ctx_bytes / 1048576)) MiB in $ctx_files files; base: ~80 MiB in 3 layers"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        run_variant plain "$r"
        run_variant attest "$r" --sbom --provenance
        run_variant documents "$r" --sbom-file "$LOGS/sbom-$r.cdx.json" --provenance-file "$LOGS/provenance-$r.json"
    else
        run_variant documents "$r" --sbom-file "$LOGS/sbom-$r.cdx.json" --provenance-file "$LOGS/provenance-$r.json"
        run_variant attest "$r" --sbom --provenance
        run_variant plain "$r"
    fi
done
echo

FACTS="$FACTS; at the end: $(load_average)"
report=$(python3 - "$RAW" "$FACTS" "$ctx_bytes" "$ctx_files" <<'PY'
import csv, statistics, sys

raw, facts, ctx_bytes, ctx_files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [r for r in csv.DictReader(open(raw), delimiter="\t") if not r["step"].startswith("registry-")]
per = {}
for r in rows:
    per.setdefault(r["step"], []).append((float(r["wall_s"]), float(r["user_s"]) + float(r["sys_s"]), int(r["maxrss_kib"]) / 1024))

def med(step, i):
    return statistics.median(x[i] for x in per[step])

names = [
    ("plain", "hoist build + push, cold"),
    ("attest", "hoist build + push --sbom --provenance, cold"),
    ("documents", "hoist build + push --sbom-file --provenance-file (both documents made, base read, nothing attached), cold"),
    ("plain-rebuild", "rebuild, unchanged context"),
    ("attest-rebuild", "rebuild --sbom --provenance, unchanged context"),
    ("syft", "syft registry:… -o json (the same pushed image)"),
]
out = ["# hoist build --sbom --provenance benchmark", "", facts,
       f"- context: {ctx_bytes / 1048576:.0f} MiB in {ctx_files} files (2000 text files 1–64 KiB + 20 random binaries 5–8 MiB); "
       "Dockerfile: FROM base (80 MiB, 3 layers) + ENV + COPY . /app/ + CMD", "",
       "| step | wall (s) | CPU user+sys (s) | peak RSS (MiB) | runs (wall s) |",
       "| --- | ---: | ---: | ---: | --- |"]
for key, label in names:
    if key in per:
        walls = ", ".join(f"{x[0]:.2f}" for x in per[key])
        out.append(f"| {label} | {med(key, 0):.2f} | {med(key, 1):.2f} | {med(key, 2):.1f} | {walls} |")

def verdict(ok):
    return "" if ok else " **(missed)**"

out += ["", "| target | result |", "| --- | ---: |"]
ratios = [a[0] / p[0] for a, p in zip(per["attest"], per["plain"])]
r = med("attest", 0) / med("plain", 0)
out.append(f"| cold build + push, --sbom --provenance / without ≤ 1.10× | {r:.2f}×{verdict(r <= 1.10)} "
           f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}; CPU {med('attest', 1) / med('plain', 1):.2f}×) |")
r = med("documents", 0) / med("plain", 0)
ratios = [a[0] / p[0] for a, p in zip(per["documents"], per["plain"])]
out.append(f"| (the documents made but not attached — what a registry with the referrers API adds but a few small PUTs — / without) | {r:.2f}× "
           f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}; CPU {med('documents', 1) / med('plain', 1):.2f}×) |")
d = med("attest-rebuild", 0) - med("plain-rebuild", 0)
out.append(f"| unchanged rebuild, --sbom --provenance − without: +0 | {d:+.2f} s (nothing uploaded or written) |")
if "syft" in per:
    out.append(f"| (syft scanning the pushed image / hoist's cold build + push with both documents) | "
               f"{med('syft', 0) / med('attest', 0):.2f}× |")
out += ["", "Medians of the rounds; raw numbers in bench/work/sbom-raw.tsv. Made by `bench/sbom.sh`."]
print("\n".join(out))
PY
)
echo "$report" >"$RESULTS"
echo "$report"
echo
echo "(written to ${RESULTS#"$ROOT"/}; raw numbers in ${RAW#"$ROOT"/}, logs in ${LOGS#"$ROOT"/}/)"
