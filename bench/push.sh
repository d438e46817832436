#!/usr/bin/env bash
# bench/push.sh — how fast, how frugal, `hoist push` is against a local registry, side by side
# with skopeo and with the registry's own ingest ceiling, all in one run on one machine.
#
# What it does
#   1. Generates two OCI layouts (once; cached under bench/work/ and reused):
#        512m-8  512 MiB in 8 layers of 64 MiB        2g-1  one 2 GiB layer
#      Layers are real tar+gzip (gzip "stored" blocks of pseudo-random bytes: incompressible,
#      deterministic, see bench/gen-layout.py).
#   2. For each layout, ROUNDS rounds; in each round, in an order that rotates every round:
#        hoist    hoist push -q --jobs $JOBS oci:DIR:bench 127.0.0.1:PORT/bench/x:bench
#        repush   the same command again, straight after: every blob exists, only HEADs + manifest
#        skopeo   skopeo copy -q --dest-tls-verify=false oci:DIR:bench docker://127.0.0.1:PORT/bench/x:bench
#                 (skopeo 1.9.3 has no parallelism flag; containers/image copies at most 6 layers at
#                 once, and only from a source with thread-safe GetBlob — its oci: source is not, so
#                 an oci: → docker:// copy sends layers one at a time)
#        curl     the "curl limit": per blob a POST …/blobs/uploads/ then `curl -T blob -X PUT
#                 <Location>&digest=…`, $JOBS blobs at once (layers, then the config), then the
#                 manifest PUT. No HEADs, no client logic: what the registry ingests at most.
#      Every measured push goes to a fresh docker-registry (filesystem storage under bench/work,
#      deleted afterwards), so nothing is skipped; the re-push reuses hoist's registry. Each push is
#      checked afterwards: the tag must resolve to the layout's manifest digest (so skopeo did not
#      recompress or convert anything).
#   3. Each client runs under `/usr/bin/time -f '%e %U %S %M'`: wall seconds, user+sys CPU seconds of
#      the client process (for curl: all curl processes and the shell around them), and peak RSS.
#
# How to read it
#   The table shows the median per client over the rounds; the raw per-round numbers are printed as
#   they come and kept in bench/work/raw.tsv, client logs in bench/work/logs/. The targets:
#     wall  hoist/skopeo ≤ 0.95            wall  hoist/curl limit ≤ 1.05 (within 5 % of the ceiling)
#     CPU   hoist/skopeo ≤ 0.30            peak RSS of hoist pushing the 2 GiB layer ≤ 64 MiB
#     re-push of the unchanged image ≤ 0.3 s wall
#   The registry runs on the same 2 cores as the client, so the client's CPU use slows the registry
#   down: on a small machine wall time and CPU time are not independent. Layouts are read from the
#   page cache (they are read once before measuring), the registry writes to the local disk.
#   The table is printed at the end and written to bench/work/results.md.
#
# Usage
#   bench/push.sh                     full run (~5–10 min on 2 cores)
#   ROUNDS=5 bench/push.sh            more rounds (default 3)
#   SKIP_2G=1 bench/push.sh           only the 512 MiB layout
#   HOIST=/path/to/hoist bench/push.sh   another binary (default: target/release/hoist, built first)
#   JOBS=N (default 4: hoist's --jobs and the curl limit's parallelism), STEP_TIMEOUT=s (default 600)
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

# --- helper modes: the curl limit, run under /usr/bin/time as one command ---------------------------

# __curl_blob BASE REPO DIGEST FILE: one monolithic upload (POST for a session, then PUT the body).
if [[ ${1:-} == __curl_blob ]]; then
    base=$2 repo=$3 digest=$4 file=$5
    loc=$(curl -sS -f -X POST -H 'Content-Length: 0' -o /dev/null -w '%header{location}' \
        "$base/v2/$repo/blobs/uploads/")
    [[ $loc == /* ]] && loc=$base$loc
    [[ $loc == *\?* ]] && sep='&' || sep='?'
    exec curl -sS -f -o /dev/null -H 'Expect:' -H 'Content-Type: application/octet-stream' \
        -T "$file" -X PUT "$loc${sep}digest=$digest"
fi

# __curl_push BASE REPO TAG JOBS LIST MANIFEST: every blob in LIST ("digest path" lines, layers first,
# config last), JOBS at a time, then the manifest under TAG.
if [[ ${1:-} == __curl_push ]]; then
    base=$2 repo=$3 tag=$4 jobs=$5 list=$6 manifest=$7
    head -n -1 "$list" | xargs -P "$jobs" -L 1 "$SELF" __curl_blob "$base" "$repo"
    tail -n 1 "$list" | xargs -L 1 "$SELF" __curl_blob "$base" "$repo"
    exec curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$manifest" "$base/v2/$repo/manifests/$tag"
fi

# --- settings ---------------------------------------------------------------------------------------

BENCH=$(dirname "$SELF")
ROOT=$(cd "$BENCH/.." && pwd)
WORK=$BENCH/work
ROUNDS=${ROUNDS:-3}
SKIP_2G=${SKIP_2G:-0}
JOBS=${JOBS:-4}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
TAG=bench
REPO=bench/x
RAW=$WORK/raw.tsv
LOGS=$WORK/logs
RESULTS=$WORK/results.md

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { echo "JOBS must be a positive integer" >&2; exit 2; }
for tool in docker-registry skopeo curl jq python3 timeout; do
    command -v "$tool" >/dev/null || { echo "bench/push.sh needs $tool" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "bench/push.sh needs GNU time at /usr/bin/time (apt-get install -y time)" >&2; exit 2; }

mkdir -p "$WORK" "$LOGS"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

# --- cleanup ----------------------------------------------------------------------------------------

STEP_PID=
cleanup() {
    if [[ -n $STEP_PID ]]; then
        kill "$STEP_PID" 2>/dev/null || true # timeout passes it on to the client's process group
        wait "$STEP_PID" 2>/dev/null || true
    fi
    stop_registry
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the hoist binary and the machine ---------------------------------------------------------------

ensure_hoist
FACTS=$(cat <<EOF
$(machine_line)
- $(hoist_version), $(skopeo --version), $(registry_version), $(curl --version | head -n 1 | awk '{print $1, $2}')
- $ROUNDS rounds, median shown; hoist and the curl limit send $JOBS blobs at once, skopeo one at a time (its oci: source is not thread-safe)
- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at the start: $(load_average)
EOF
)
echo "# hoist push benchmark"
echo "$FACTS"
echo

# --- layouts ----------------------------------------------------------------------------------------

# name  layers  MiB  label
LAYOUTS=("512m-8 8 512 512 MiB, 8 layers")
[[ $SKIP_2G == 1 ]] || LAYOUTS+=("2g-1 1 2048 2 GiB, 1 layer")

for spec in "${LAYOUTS[@]}"; do
    read -r name layers mib _ <<<"$spec"
    dir=$WORK/oci-$name
    if [[ ! -f $dir/index.json ]]; then
        echo "generating $dir ($mib MiB in $layers layers)…" >&2
        timeout 900 python3 "$BENCH/gen-layout.py" "$dir" "$TAG" "$layers" "$mib"
    fi
    # Blob list for the curl limit (layers in manifest order, then the config) and the manifest path.
    man_digest=$(jq -r --arg t "$TAG" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$dir/index.json")
    man_file=$dir/blobs/sha256/${man_digest#sha256:}
    jq -r --arg d "$dir/blobs/sha256/" '(.layers[], .config) | "\(.digest) \($d)\(.digest | ltrimstr("sha256:"))"' \
        "$man_file" >"$WORK/$name.blobs"
    echo "$man_file" >"$WORK/$name.manifest"
    # Warm the page cache so every client reads from memory.
    timeout 300 cat "$dir"/blobs/sha256/* >/dev/null
done

# --- checking ---------------------------------------------------------------------------------------

# verify LAYOUT_DIR: the tag must resolve to the layout's own manifest digest.
verify() {
    local want got
    want=$(jq -r '.manifests[0].digest' "$1/index.json")
    got=$(curl -sS -f -I -o /dev/null -w '%header{docker-content-digest}' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://127.0.0.1:$PORT/v2/$REPO/manifests/$TAG")
    if [[ $got != "$want" ]]; then
        echo "verification failed: the registry has $TAG at '$got', the layout's manifest is $want" >&2
        exit 1
    fi
}

# --- measuring --------------------------------------------------------------------------------------

printf 'layout\tclient\tround\twall_s\tuser_s\tsys_s\tmaxrss_kib\n' >"$RAW"

# timed LAYOUT CLIENT ROUND CMD...: measure()s CMD (lib.sh), appends a row to raw.tsv.
timed() {
    local layout=$1 client=$2 round=$3
    shift 3
    measure "$layout-$client-$round" "$@"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$layout" "$client" "$round" "$STEP_WALL" "$STEP_USER" "$STEP_SYS" "$STEP_RSS" >>"$RAW"
    print_step "$round" "$client"
}

run_client() { # CLIENT LAYOUT_NAME LAYOUT_DIR ROUND
    local client=$1 name=$2 dir=$3 round=$4
    start_registry
    local dest=127.0.0.1:$PORT/$REPO:$TAG
    case $client in
        hoist)
            timed "$name" hoist "$round" "$HOIST" push -q --jobs "$JOBS" "oci:$dir:$TAG" "$dest"
            verify "$dir"
            timed "$name" repush "$round" "$HOIST" push -q --jobs "$JOBS" "oci:$dir:$TAG" "$dest"
            verify "$dir"
            grep -q ' 0 uploaded' "$LOGS/$name-repush-$round.log" ||
                echo "  warning: the re-push uploaded something: $(tail -n 1 "$LOGS/$name-repush-$round.log")" >&2
            ;;
        skopeo)
            timed "$name" skopeo "$round" skopeo copy -q --dest-tls-verify=false \
                "oci:$dir:$TAG" "docker://$dest"
            verify "$dir"
            ;;
        curl)
            timed "$name" curl "$round" "$SELF" __curl_push "http://127.0.0.1:$PORT" "$REPO" "$TAG" "$JOBS" \
                "$WORK/$name.blobs" "$(<"$WORK/$name.manifest")"
            verify "$dir"
            ;;
    esac
    stop_registry
    timeout 120 sync || true
}

CLIENTS=(hoist skopeo curl)
for spec in "${LAYOUTS[@]}"; do
    read -r name _ _ label <<<"$spec"
    echo "## $label (oci-$name)"
    for ((r = 1; r <= ROUNDS; r++)); do
        # Rotate the order every round: hoist/skopeo/curl, skopeo/curl/hoist, curl/hoist/skopeo, …
        for ((k = 0; k < ${#CLIENTS[@]}; k++)); do
            run_client "${CLIENTS[(k + r - 1) % ${#CLIENTS[@]}]}" "$name" "$WORK/oci-$name" "$r"
        done
    done
    echo
done

# --- report -----------------------------------------------------------------------------------------

FACTS="$FACTS; at the end: $(load_average) (other work on the machine adds noise)"
report=$(python3 - "$RAW" "$WORK" "$FACTS" "${LAYOUTS[@]}" <<'PY'
import csv, json, os, statistics, sys

raw, work, facts, specs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows = list(csv.DictReader(open(raw), delimiter="\t"))

def med(layout, client, f):
    vals = [f(r) for r in rows if r["layout"] == layout and r["client"] == client]
    return statistics.median(vals) if vals else None

wall = lambda r: float(r["wall_s"])
cpu = lambda r: float(r["user_s"]) + float(r["sys_s"])
rss = lambda r: int(r["maxrss_kib"]) / 1024

def image_bytes(name):
    d = os.path.join(work, "oci-" + name)
    idx = json.load(open(os.path.join(d, "index.json")))
    m = json.load(open(os.path.join(d, "blobs/sha256", idx["manifests"][0]["digest"][7:])))
    return sum(b["size"] for b in [m["config"]] + m["layers"])

names = {"hoist": "hoist", "skopeo": "skopeo", "curl": "curl limit (parallel PUTs)",
         "repush": "hoist re-push (unchanged)"}
out = ["# hoist push benchmark", "", facts, "",
       "| image | client | wall (s) | throughput | CPU user+sys (s) | peak RSS (MiB) |",
       "| --- | --- | ---: | ---: | ---: | ---: |"]
ratios = {}
for spec in specs:
    name, _, _, label = spec.split(" ", 3)
    size = image_bytes(name)
    for i, c in enumerate(["hoist", "skopeo", "curl", "repush"]):
        w, u, m = med(name, c, wall), med(name, c, cpu), med(name, c, rss)
        if w is None:
            continue
        tput = "–" if c == "repush" else f"{size / w / 1e6:.0f} MB/s"
        out.append(f"| {label if i == 0 else ''} | {names[c]} | {w:.2f} | {tput} | {u:.2f} | {m:.1f} |")
    g = lambda c, f: med(name, c, f)
    ratios[name] = {
        "ws": g("hoist", wall) / g("skopeo", wall),
        "wc": g("hoist", wall) / g("curl", wall),
        "cs": g("hoist", cpu) / max(g("skopeo", cpu), 1e-9),
        "rss": g("hoist", rss),
        "re": g("repush", wall),
    }

def cell(name, key, limit, fmt):
    if name not in ratios:
        return "–"
    v = ratios[name][key]
    return (fmt.format(v)) + ("" if v <= limit else " **(missed)**")

present = [s.split(" ", 1)[0] for s in specs]
cols = ["512m-8", "2g-1"]
out += ["", "| target | 512 MiB, 8 layers | 2 GiB, 1 layer |", "| --- | ---: | ---: |"]
for title, key, limit, fmt, only in [
    ("wall, hoist / skopeo ≤ 0.95", "ws", 0.95, "{:.2f}×", None),
    ("wall, hoist / curl limit ≤ 1.05", "wc", 1.05, "{:.2f}×", None),
    ("CPU, hoist / skopeo ≤ 0.30", "cs", 0.30, "{:.2f}×", None),
    ("peak RSS of hoist ≤ 64 MiB (2 GiB layer)", "rss", 64, "{:.1f} MiB", "2g-1"),
    ("re-push of the unchanged image ≤ 0.3 s", "re", 0.3, "{:.2f} s", None),
]:
    cells = [cell(c, key, limit, fmt) if (only is None or c == only) else
             (f"({ratios[c][key]:.1f} MiB)" if c in ratios else "–") for c in cols]
    out.append(f"| {title} | " + " | ".join(cells) + " |")
out += ["", "Medians of the rounds; raw numbers in bench/work/raw.tsv. Made by `bench/push.sh`."]
print("\n".join(out))
PY
)
echo "$report" >"$RESULTS"
echo "$report"
echo
echo "(written to ${RESULTS#"$ROOT"/}; raw numbers in ${RAW#"$ROOT"/}, logs in ${LOGS#"$ROOT"/}/)"
