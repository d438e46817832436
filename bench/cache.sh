#!/usr/bin/env bash
# bench/cache.sh — the registry as the layer cache (docs/build-cache.md): what `hoist build` costs in
# a fresh CI clone (new mtimes) on a fresh runner (empty HOIST_CACHE_DIR), and its peak memory.
#
# What it does (one run; every hoist command under `/usr/bin/time -f '%e %U %S %M'`)
#   Inputs (generated once under bench/work/, shared with bench/build.sh): the ~80 MiB 3-layer base
#   (oci-base80), the ~195 MiB mixed context (ctx-mixed: src/ = 2000 text files, bin/ = 20 random
#   binaries), and for the memory case a context of one 2 GiB random file (ctx-2g).
#   A fresh docker-registry (bench/lib.sh) gets the base as base/img:1. The Dockerfile has three COPY
#   layers, the last one small:
#       FROM 127.0.0.1:PORT/base/img:1
#       COPY bin/ /app/bin/
#       COPY src/ /app/src/
#       COPY VERSION /app/
#   Every build is `hoist build -q CLONE -f Dockerfile -t 127.0.0.1:PORT/app/x:main --metadata-file M`
#   with SOURCE_DATE_EPOCH fixed and HOIST_CACHE_DIR a new empty directory, CLONE a fresh `cp -r` of
#   the context (new mtimes and inodes: what a CI checkout gives).
#     cold        the first push (nothing in the registry but the base)
#     rerun       the same commit again in a fresh clone: must upload 0 layer bytes
#     last        a fresh clone with VERSION changed: must upload only that layer (and the config)
#     miss-hash   a fresh clone with a file changed in every layer, candidates present (the tag
#                 app/x:main): every layer is hashed first, matches nothing, then is compressed
#     miss-plain  the same kind of change (other bytes) with --no-cache-from: today's path, no pre-hash
#                 (miss-hash / miss-plain is the price of the pre-hash; ROUNDS pairs, alternating)
#     hash-ctx    for reference: sha256 over the context's files (`cat | sha256sum`)
#   Memory (unless SKIP_2G=1): hoist build of the 2 GiB context pushed to a fresh repository (peak
#   RSS), and `hoist push` of that image from an OCI layout to another fresh repository.
#
# Usage
#   bench/cache.sh                 (ROUNDS=3 pairs of miss-hash/miss-plain; SKIP_2G=1 to skip memory)
#   HOIST=/path/to/hoist bench/cache.sh
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
BENCH=$(dirname "$SELF")
ROOT=$(cd "$BENCH/.." && pwd)
WORK=$BENCH/work
ROUNDS=${ROUNDS:-3}
SKIP_2G=${SKIP_2G:-0}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
BASE_DIR=$WORK/oci-base80
CTX=$WORK/ctx-mixed
CTX2G=$WORK/ctx-2g
RUN=$WORK/cache-run
RAW=$WORK/cache-raw.tsv

for tool in docker-registry skopeo curl python3 timeout; do
    command -v "$tool" >/dev/null || { echo "bench/cache.sh needs $tool" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "bench/cache.sh needs GNU time at /usr/bin/time (apt-get install -y time)" >&2; exit 2; }
mkdir -p "$WORK"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

cleanup() {
    stop_registry
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_hoist
if [[ ! -f $BASE_DIR/index.json ]]; then
    timeout 900 python3 "$BENCH/gen-layout.py" "$BASE_DIR" base 3 80 hoist-build-base
fi
[[ -d $CTX ]] || timeout 900 python3 "$BENCH/gen-context.py" mixed "$CTX"
if [[ $SKIP_2G != 1 && ! -d $CTX2G ]]; then
    timeout 900 python3 "$BENCH/gen-context.py" big "$CTX2G" 2048
fi

echo "# hoist build: the registry as the layer cache"
machine_line
echo "- $(hoist_version), $(registry_version)"
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at the start: $(load_average)"
echo

rm -rf "$RUN"
mkdir -p "$RUN"
printf 'step\twall_s\tuser_s\tsys_s\tmaxrss_kib\tuploaded_bytes\tlayers\n' >"$RAW"
timeout 300 find "$CTX" "$BASE_DIR" -type f -exec cat {} + >/dev/null

start_registry
timeout "$STEP_TIMEOUT" skopeo copy -q --dest-tls-verify=false "oci:$BASE_DIR:base" "docker://127.0.0.1:$PORT/base/img:1"
DOCKERFILE=$RUN/Dockerfile
cat >"$DOCKERFILE" <<EOF
FROM 127.0.0.1:$PORT/base/img:1
COPY bin/ /app/bin/
COPY src/ /app/src/
COPY VERSION /app/
EOF
DEST=127.0.0.1:$PORT/app/x:main

# clone NAME: a fresh copy of the context (new mtimes, new inodes), with VERSION 1.
n_clone=0
clone() {
    n_clone=$((n_clone + 1))
    CLONE=$RUN/clone-$n_clone
    cp -r "$CTX" "$CLONE"
    echo 1 >"$CLONE/VERSION"
}

# run STEP ARGS…: one timed build of $CLONE with an empty cache; appends a row (uploaded bytes and the
# layer origins from --metadata-file).
run() {
    local step=$1
    shift
    local meta=$RUN/$step.json tf=$RUN/$step.time log=$RUN/$step.log cache
    cache=$(mktemp -d "$RUN/cache.XXXXXX")
    if ! HOIST_CACHE_DIR=$cache SOURCE_DATE_EPOCH=1700000000 timeout "$STEP_TIMEOUT" /usr/bin/time -o "$tf" -f '%e %U %S %M' \
        "$HOIST" build -q "$CLONE" -f "$DOCKERFILE" -t "$DEST" --metadata-file "$meta" "$@" >"$log" 2>&1; then
        echo "FAILED: $step" >&2
        cat "$log" >&2
        exit 1
    fi
    rm -rf "$cache"
    local wall user sys rss uploaded origins
    read -r wall user sys rss < <(tail -n 1 "$tf")
    read -r uploaded origins < <(python3 - "$meta" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
layers = m.get("layers", [])
up = sum(b["bytes"] for b in m["blobs"] if not b["mediaType"].endswith("config.v1+json"))
print(up, ",".join(l["origin"] for l in layers) or "-")
PY
)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "$wall" "$user" "$sys" "$rss" "$uploaded" "$origins" >>"$RAW"
    printf '  %-12s wall %6.2f s  cpu %6.2f s  peak rss %6.1f MiB  layer bytes uploaded %s  layers %s\n' \
        "$step" "$wall" "$(echo "$user + $sys" | bc)" "$(echo "scale=1; $rss / 1024" | bc)" "$uploaded" "$origins"
    rm -rf "$CLONE"
}

clone && run cold
clone && run rerun
clone && echo 2 >"$CLONE/VERSION" && run last
for ((r = 1; r <= ROUNDS; r++)); do
    # Alternate the order each round; each change is new bytes, so no layer matches anything.
    if ((r % 2)); then kinds="hash plain"; else kinds="plain hash"; fi
    for kind in $kinds; do
        clone
        echo "change $r $kind" >>"$CLONE/src/mod00/file0000.txt"
        echo "change $r $kind" >>"$CLONE/bin/blob00.bin"
        echo "$r-$kind" >"$CLONE/VERSION"
        if [[ $kind == hash ]]; then run "miss-hash-$r"; else run "miss-plain-$r" --no-cache-from; fi
    done
done

clone
start=$(date +%s.%N)
find "$CLONE" -type f -print0 | sort -z | xargs -0 cat | sha256sum >/dev/null
hash_s=$(echo "$(date +%s.%N) - $start" | bc)
printf 'hash-ctx\t%.2f\t-\t-\t-\t-\t-\n' "$hash_s" >>"$RAW"
printf '  %-12s wall %6.2f s  (sha256 of the context files, page cache warm)\n' hash-ctx "$hash_s"
rm -rf "$CLONE"

if [[ $SKIP_2G != 1 ]]; then
    timeout 300 cat "$CTX2G/big.bin" >/dev/null || true
    printf 'FROM scratch\nCOPY big.bin /data/\n' >"$RUN/Dockerfile.2g"
    tf=$RUN/mem-build.time
    HOIST_CACHE_DIR=$(mktemp -d "$RUN/cache.XXXXXX") timeout "$STEP_TIMEOUT" /usr/bin/time -o "$tf" -f '%e %U %S %M' \
        "$HOIST" build -q "$CTX2G" -f "$RUN/Dockerfile.2g" -t "127.0.0.1:$PORT/mem/build:1" \
        >"$RUN/mem-build.log" 2>&1 || { cat "$RUN/mem-build.log" >&2; exit 1; }
    read -r wall user sys rss < <(tail -n 1 "$tf")
    printf 'mem-build\t%s\t%s\t%s\t%s\t-\t-\n' "$wall" "$user" "$sys" "$rss" >>"$RAW"
    printf '  %-12s wall %6.2f s  peak rss %6.1f MiB  (hoist build -t of one 2 GiB file)\n' mem-build "$wall" "$(echo "scale=1; $rss / 1024" | bc)"
    # The same image as an OCI layout (not measured), pushed to another repository (measured).
    HOIST_CACHE_DIR=$(mktemp -d "$RUN/cache.XXXXXX") timeout "$STEP_TIMEOUT" \
        "$HOIST" build -q "$CTX2G" -f "$RUN/Dockerfile.2g" --output "oci:$RUN/layout-2g:1" >/dev/null 2>&1
    tf=$RUN/mem-push.time
    timeout "$STEP_TIMEOUT" /usr/bin/time -o "$tf" -f '%e %U %S %M' \
        "$HOIST" push -q "oci:$RUN/layout-2g:1" "127.0.0.1:$PORT/mem/push:1" >"$RUN/mem-push.log" 2>&1 ||
        { cat "$RUN/mem-push.log" >&2; exit 1; }
    read -r wall user sys rss < <(tail -n 1 "$tf")
    printf 'mem-push\t%s\t%s\t%s\t%s\t-\t-\n' "$wall" "$user" "$sys" "$rss" >>"$RAW"
    printf '  %-12s wall %6.2f s  peak rss %6.1f MiB  (hoist push of the 2 GiB layer from the layout)\n' mem-push "$wall" "$(echo "scale=1; $rss / 1024" | bc)"
fi

echo
echo "raw numbers: $RAW; load average at the end: $(load_average)"
