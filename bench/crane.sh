#!/usr/bin/env bash
# bench/crane.sh — hoist beside crane (go-containerregistry), the daemon-less client a platform team would
# pick, and skopeo, in one run on one machine against local docker-registry instances.
#
# What it does (ROUNDS rounds, default 1; the order of the clients rotates every round)
#   push    the 512 MiB / 8-layer layout of bench/push.sh (bench/work/oci-512m-8, generated when missing)
#             hoist push -q oci:DIR:bench REF   |   crane push DIR REF   |   skopeo copy oci:DIR:bench docker://REF
#           each into a fresh registry; the tag must then resolve to the layout's manifest digest.
#   copy    the same image from one registry to another (both fresh per client; the source filled by hoist,
#           not timed):
#             hoist copy SRC DEST   |   crane copy SRC DEST   |   skopeo copy docker://SRC docker://DEST
#           the destination tag must resolve to the same manifest digest.
#   append  bench/build.sh's ~80 MiB / 3-layer base (bench/work/oci-base80) in a fresh registry as base/img:1,
#           and its ~195 MiB mixed context (bench/work/ctx-mixed) added on top as one layer under /app:
#             crane append -b BASE -f ctx.tar -t REF   (ctx.tar: the context tarred under app/, made once,
#                                                        not timed; crane gzips it)
#             hoist build CTX -f Dockerfile -t REF      (FROM BASE + COPY . /app/; an empty layer cache)
#           Neither downloads the base's layers.
#   Each client runs under `/usr/bin/time -f '%e %U %S %M'` (wall, user+sys CPU of the client, peak RSS).
#
# Usage
#   bench/crane.sh                          one round (~3 min on 2 cores)
#   ROUNDS=3 bench/crane.sh                 more rounds (medians shown)
#   HOIST=/path/to/hoist CRANE=/path/to/crane bench/crane.sh
#   (crane: $CRANE, else .tools/bin/crane from scripts/go-tools.sh, else on PATH)
# Results: printed, and written to bench/work/crane-results.md; raw rows in bench/work/crane-raw.tsv.
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
BENCH=$(dirname "$SELF")
ROOT=$(cd "$BENCH/.." && pwd)
WORK=$BENCH/work
ROUNDS=${ROUNDS:-1}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
TAG=bench
RAW=$WORK/crane-raw.tsv
LOGS=$WORK/crane-logs
RESULTS=$WORK/crane-results.md
LAYOUT=$WORK/oci-512m-8
BASE_DIR=$WORK/oci-base80
CTX=$WORK/ctx-mixed
CTX_TAR=$WORK/ctx-mixed.tar

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
CRANE=${CRANE:-}
if [[ -z $CRANE ]]; then
    if [[ -x $ROOT/.tools/bin/crane ]]; then CRANE=$ROOT/.tools/bin/crane; else CRANE=$(command -v crane || true); fi
fi
[[ -n $CRANE && -x $CRANE ]] || { echo "bench/crane.sh needs crane: run scripts/go-tools.sh (Go >= 1.22)" >&2; exit 2; }
for tool in docker-registry skopeo curl jq python3 timeout tar; do
    command -v "$tool" >/dev/null || { echo "bench/crane.sh needs $tool" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "bench/crane.sh needs GNU time at /usr/bin/time (apt-get install -y time)" >&2; exit 2; }

mkdir -p "$WORK" "$LOGS"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

# --- cleanup: the measured step, the registry started last (lib.sh) and a source registry ----------------

STEP_PID=
SRC_PID=
SRC_DIR=
cleanup() {
    if [[ -n $STEP_PID ]]; then
        kill "$STEP_PID" 2>/dev/null || true
        wait "$STEP_PID" 2>/dev/null || true
    fi
    stop_registry
    stop_source
}
stop_source() {
    if [[ -n $SRC_PID ]]; then
        kill "$SRC_PID" 2>/dev/null || true
        wait "$SRC_PID" 2>/dev/null || true
        SRC_PID=
    fi
    if [[ -n $SRC_DIR ]]; then
        rm -rf "$SRC_DIR"
        SRC_DIR=
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_hoist
FACTS=$(cat <<EOF
$(machine_line)
- $(hoist_version), crane $("$CRANE" version), $(skopeo --version), $(registry_version)
- $ROUNDS round(s), median shown; hoist --jobs 4 (its default); crane its defaults (push and append 4 jobs, copy GOMAXPROCS = $(nproc)); skopeo one layer at a time from oci:, up to 6 between registries
- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at the start: $(load_average)
EOF
)
echo "# hoist beside crane"
echo "$FACTS"
echo

# --- inputs (made once, cached in bench/work) ------------------------------------------------------------

[[ -f $LAYOUT/index.json ]] || timeout 900 python3 "$BENCH/gen-layout.py" "$LAYOUT" "$TAG" 8 512
[[ -f $BASE_DIR/index.json ]] || timeout 900 python3 "$BENCH/gen-layout.py" "$BASE_DIR" base 3 80 hoist-build-base
[[ -d $CTX ]] || timeout 900 python3 "$BENCH/gen-context.py" mixed "$CTX"
if [[ ! -f $CTX_TAR ]]; then
    # The context as the layer `COPY . /app/` makes: every file under app/.
    timeout 300 tar -C "$CTX" --transform 's,^\./,app/,;s,^\.$,app,' --owner=0 --group=0 -cf "$CTX_TAR.tmp" .
    mv "$CTX_TAR.tmp" "$CTX_TAR"
fi
timeout 300 find "$LAYOUT" "$BASE_DIR" "$CTX" "$CTX_TAR" -type f -exec cat {} + >/dev/null
LAYOUT_DIGEST=$(jq -r '.manifests[0].digest' "$LAYOUT/index.json")

# --- measuring --------------------------------------------------------------------------------------------

printf 'step\tclient\tround\twall_s\tuser_s\tsys_s\tmaxrss_kib\n' >"$RAW"

timed() { # STEP CLIENT ROUND CMD...: measure()s CMD (lib.sh), appends a row to $RAW
    local step=$1 client=$2 round=$3
    shift 3
    measure "$step-$client-$round" "$@"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "$client" "$round" "$STEP_WALL" "$STEP_USER" "$STEP_SYS" "$STEP_RSS" >>"$RAW"
    print_step "$round" "$step $client"
}

# digest_of HOSTPORT REPO TAG: the manifest digest the registry serves for the tag.
digest_of() {
    curl -sS -f -I -o /dev/null -w '%header{docker-content-digest}' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://$1/v2/$2/manifests/$3"
}

expect_digest() { # HOSTPORT REPO TAG WANT WHAT
    local got
    got=$(digest_of "$1" "$2" "$3")
    [[ $got == "$4" ]] || { echo "verification failed after $5: $2:$3 is '$got', expected $4" >&2; exit 1; }
}

push_step() { # CLIENT ROUND
    local client=$1 round=$2
    start_registry
    local ref=127.0.0.1:$PORT/bench/x:$TAG
    case $client in
        hoist) timed push hoist "$round" "$HOIST" push -q "oci:$LAYOUT:$TAG" "$ref" ;;
        crane) timed push crane "$round" "$CRANE" push "$LAYOUT" "$ref" ;;
        skopeo) timed push skopeo "$round" skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:$TAG" "docker://$ref" ;;
    esac
    expect_digest "127.0.0.1:$PORT" bench/x "$TAG" "$LAYOUT_DIGEST" "$client push"
    stop_registry
}

copy_step() { # CLIENT ROUND
    local client=$1 round=$2
    start_registry
    SRC_PID=$REG_PID SRC_DIR=$REG_DIR
    local src_port=$PORT
    REG_PID= REG_DIR=
    timeout "$STEP_TIMEOUT" "$HOIST" push -q "oci:$LAYOUT:$TAG" "127.0.0.1:$src_port/bench/x:$TAG" \
        >/dev/null 2>"$LOGS/copy-source-$client-$round.log"
    start_registry
    local src=127.0.0.1:$src_port/bench/x:$TAG dest=127.0.0.1:$PORT/bench/y:$TAG
    case $client in
        hoist) timed copy hoist "$round" "$HOIST" copy -q "$src" "$dest" ;;
        crane) timed copy crane "$round" "$CRANE" copy "$src" "$dest" ;;
        skopeo) timed copy skopeo "$round" skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
            "docker://$src" "docker://$dest" ;;
    esac
    expect_digest "127.0.0.1:$PORT" bench/y "$TAG" "$LAYOUT_DIGEST" "$client copy"
    stop_registry
    stop_source
}

append_step() { # CLIENT ROUND
    local client=$1 round=$2
    start_registry
    timeout "$STEP_TIMEOUT" "$HOIST" push -q "oci:$BASE_DIR:base" "127.0.0.1:$PORT/base/img:1" \
        >/dev/null 2>"$LOGS/append-base-$client-$round.log"
    local base=127.0.0.1:$PORT/base/img:1 ref=127.0.0.1:$PORT/app/x:$TAG
    case $client in
        crane) timed append crane "$round" "$CRANE" append -b "$base" -f "$CTX_TAR" -t "$ref" ;;
        hoist)
            printf 'FROM %s\nCOPY . /app/\n' "$base" >"$REG_DIR/Dockerfile"
            local cache
            cache=$(mktemp -d "$WORK/crane-hoist-cache.XXXXXX")
            timed append hoist "$round" env XDG_CACHE_HOME="$cache" "$HOIST" build -q "$CTX" -f "$REG_DIR/Dockerfile" -t "$ref"
            rm -rf "$cache"
            ;;
    esac
    # One layer on top of the base's three.
    local layers
    layers=$(curl -sS -f -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://127.0.0.1:$PORT/v2/app/x/manifests/$TAG" | jq '.layers | length')
    [[ $layers == 4 ]] || { echo "verification failed after $client append: $layers layers, expected 4" >&2; exit 1; }
    stop_registry
}

rotate() { # ROUND CLIENT... : the clients, rotated by ROUND
    local r=$1
    shift
    local a=("$@") k
    for ((k = 0; k < ${#a[@]}; k++)); do echo "${a[(k + r - 1) % ${#a[@]}]}"; done
}

for ((r = 1; r <= ROUNDS; r++)); do
    echo "## round $r"
    for c in $(rotate "$r" hoist crane skopeo); do push_step "$c" "$r"; done
    for c in $(rotate "$r" hoist crane skopeo); do copy_step "$c" "$r"; done
    for c in $(rotate "$r" hoist crane); do append_step "$c" "$r"; done
done

FACTS="$FACTS; at the end: $(load_average) (other work on the machine adds noise)"
report=$(python3 - "$RAW" "$FACTS" <<'PY'
import csv, statistics, sys
raw, facts = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(raw), delimiter="\t"))
def med(step, client, f):
    v = [f(r) for r in rows if r["step"] == step and r["client"] == client]
    return statistics.median(v) if v else None
wall = lambda r: float(r["wall_s"])
cpu = lambda r: float(r["user_s"]) + float(r["sys_s"])
rss = lambda r: int(r["maxrss_kib"]) / 1024
labels = {"push": "push, 512 MiB / 8 layers", "copy": "copy between two registries, 512 MiB / 8 layers",
          "append": "base (80 MiB) + 195 MiB of files as one layer"}
what = {("append", "crane"): "crane append", ("append", "hoist"): "hoist build (FROM base + COPY)"}
out = ["# hoist beside crane", "", facts, "",
       "| step | client | wall (s) | CPU user+sys (s) | peak RSS (MiB) | wall / hoist |",
       "| --- | --- | ---: | ---: | ---: | ---: |"]
for step in ["push", "copy", "append"]:
    h = med(step, "hoist", wall)
    for i, c in enumerate(["hoist", "crane", "skopeo"]):
        w = med(step, c, wall)
        if w is None:
            continue
        name = what.get((step, c), c)
        out.append(f"| {labels[step] if i == 0 else ''} | {name} | {w:.2f} | {med(step, c, cpu):.2f} | "
                   f"{med(step, c, rss):.1f} | {w / h:.2f}× |")
out += ["", "| ratio (hoist / crane) | wall | CPU |", "| --- | ---: | ---: |"]
for step in ["push", "copy", "append"]:
    out.append(f"| {step} | {med(step, 'hoist', wall) / med(step, 'crane', wall):.2f}× | "
               f"{med(step, 'hoist', cpu) / max(med(step, 'crane', cpu), 1e-9):.2f}× |")
out += ["", "Medians of the rounds; raw numbers in bench/work/crane-raw.tsv. Made by `bench/crane.sh`."]
print("\n".join(out))
PY
)
echo "$report" >"$RESULTS"
echo
echo "$report"
echo
echo "(written to ${RESULTS#"$ROOT"/})"
