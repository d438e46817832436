# bench/lib.sh — what the benchmark scripts share: the hoist binary they measure, a fresh local
# docker-registry per measured step, and the machine facts every result table starts with.
# Sourced by bench/push.sh, bench/build.sh and bench/sbom.sh (which set ROOT, WORK and STEP_TIMEOUT first); not run
# on its own.

# --- the hoist binary -------------------------------------------------------------------------------

# ensure_hoist: sets HOIST to $HOIST (checked) or to target/release/hoist, built first.
ensure_hoist() {
    if [[ -n ${HOIST:-} ]]; then
        [[ -x $HOIST ]] || { echo "HOIST=$HOIST is not an executable" >&2; exit 2; }
        HOIST_GIVEN=1
        return
    fi
    HOIST=$ROOT/target/release/hoist
    # Always ask cargo: a no-op when up to date, and a stale binary would measure the wrong code.
    echo "building hoist (cargo build --release)…" >&2
    (cd "$ROOT" && timeout 1800 cargo build --release --quiet)
}

# --- machine facts ----------------------------------------------------------------------------------

# machine_line: "- machine: 2 CPUs (model), 24 GiB RAM, Linux x.y".
machine_line() {
    local cpu_model mem_gib
    cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    mem_gib=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
    echo "- machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, Linux $(uname -r)"
}

# hoist_version: "hoist 0.1.0 (abc1234[+dirty])" — dirty when src/ or the manifests differ from HEAD.
# With HOIST=PATH the binary was built elsewhere: the line names it, and the checkout's commit only as such.
hoist_version() {
    local rev
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        rev="$rev+dirty"
    fi
    if [[ -n ${HOIST_GIVEN:-} ]]; then
        echo "$("$HOIST" --version) (HOIST=$HOIST; this checkout is at $rev)"
    else
        echo "$("$HOIST" --version) ($rev)"
    fi
}

# registry_version: "docker-registry 2.8.2+ds1".
registry_version() {
    docker-registry --version | awk '{print $1, $3}'
}

# load_average: the 1, 5 and 15 minute load averages (other work on this shared machine).
load_average() {
    cut -d ' ' -f 1-3 /proc/loadavg
}

# --- registry ---------------------------------------------------------------------------------------

REG_PID=
REG_DIR=
PORT=

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry: a fresh docker-registry on 127.0.0.1:$PORT, filesystem storage in $REG_DIR (under
# $WORK), access log off; waits until /v2/ answers.
start_registry() {
    REG_DIR=$(mktemp -d "$WORK/registry.XXXXXX")
    PORT=$(free_port)
    cat >"$REG_DIR/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$PORT
  secret: hoist-bench
EOF
    docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/registry.log" 2>&1 &
    REG_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if curl -sf -o /dev/null "http://127.0.0.1:$PORT/v2/"; then
            return 0
        fi
        kill -0 "$REG_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "docker-registry did not come up on 127.0.0.1:$PORT:" >&2
    cat "$REG_DIR/registry.log" >&2
    exit 1
}

# stop_registry: stops the registry started last and deletes its storage.
stop_registry() {
    if [[ -n $REG_PID ]]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=
    fi
    if [[ -n $REG_DIR ]]; then
        rm -rf "$REG_DIR"
        REG_DIR=
    fi
}

# --- the P2 fixture: FROM an ~80 MiB base + COPY of a ~195 MiB mixed context -------------------------
# (bench/build.sh and bench/sbom.sh; they set BENCH, WORK, BASE_DIR, CTX, REPO, TAG, LOGS, RAW,
# STEP_TIMEOUT first)

# p2_inputs: generates the base and the context once (cached under bench/work/) and reads both into
# the page cache, so every tool reads them from memory.
p2_inputs() {
    if [[ ! -f $BASE_DIR/index.json ]]; then
        echo "generating $BASE_DIR (80 MiB in 3 layers)…" >&2
        timeout 900 python3 "$BENCH/gen-layout.py" "$BASE_DIR" base 3 80 hoist-build-base
    fi
    if [[ ! -d $CTX ]]; then
        echo "generating $CTX (~195 MiB of mixed files)…" >&2
        timeout 900 python3 "$BENCH/gen-context.py" mixed "$CTX"
    fi
    timeout 300 find "$CTX" "$BASE_DIR" -type f -exec cat {} + >/dev/null
}

# start_registry_with_base: a fresh registry (bench/lib.sh) with the base copied in as base/img:1, and
# the Dockerfile naming it.
start_registry_with_base() {
    start_registry
    timeout "$STEP_TIMEOUT" skopeo copy -q --dest-tls-verify=false \
        "oci:$BASE_DIR:base" "docker://127.0.0.1:$PORT/base/img:1"
    # The Dockerfile names the registry's port, so it is written per registry, outside the context.
    DOCKERFILE=$REG_DIR/Dockerfile
    cat >"$DOCKERFILE" <<EOF
FROM 127.0.0.1:$PORT/base/img:1
ENV APP_HOME=/app BENCH=1
COPY . /app/
CMD ["/app/bin/run"]
EOF
}

# verify: the pushed tag must resolve in the registry.
verify() {
    local code
    code=$(curl -sS -o /dev/null -I -w '%{http_code}' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://127.0.0.1:$PORT/v2/$REPO/manifests/$TAG")
    if [[ $code != 200 ]]; then
        echo "verification failed: $REPO:$TAG is not in the registry after $1 (HTTP $code)" >&2
        exit 1
    fi
}

# all_skipped METADATA_FILE: every blob outcome in hoist's --metadata-file is "skipped" (0 uploaded).
all_skipped() {
    python3 - "$1" <<'PY'
import json, sys
outcomes = []
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "outcome" and isinstance(x, str):
                outcomes.append(x)
            else:
                walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
walk(json.load(open(sys.argv[1])))
bad = [o for o in outcomes if o != "skipped"]
if not outcomes or bad:
    print(f"outcomes: {len(outcomes)} blobs, not skipped: {bad}", file=sys.stderr)
    sys.exit(1)
PY
}

# measure NAME CMD...: runs CMD under GNU time and a timeout, its output in $LOGS/NAME.log; on failure
# prints the log's tail (and the registry's) and exits; else sets STEP_WALL, STEP_USER, STEP_SYS (s) and
# STEP_RSS (KiB). In the background + wait, so that an interrupt reaches the trap at once and can stop it.
measure() {
    local name=$1
    shift
    local log=$LOGS/$name.log tf=$LOGS/$name.time
    timeout "$STEP_TIMEOUT" /usr/bin/time -o "$tf" -f '%e %U %S %M' "$@" >"$log" 2>&1 &
    STEP_PID=$!
    local rc=0
    wait "$STEP_PID" || rc=$?
    STEP_PID=
    if ((rc != 0)); then
        echo "FAILED (or timed out after ${STEP_TIMEOUT}s): $name: $*" >&2
        tail -n 20 "$log" >&2
        [[ -f $tf ]] && cat "$tf" >&2
        [[ -n ${REG_DIR:-} ]] && tail -n 20 "$REG_DIR/registry.log" >&2
        exit 1
    fi
    read -r STEP_WALL STEP_USER STEP_SYS STEP_RSS < <(tail -n 1 "$tf")
}

# print_step ROUND LABEL: the line for the step measure() timed last.
print_step() {
    awk -v r="$1" -v c="$2" -v w="$STEP_WALL" -v u="$STEP_USER" -v s="$STEP_SYS" -v m="$STEP_RSS" 'BEGIN {
        printf "  round %d  %-13s wall %7.2f s   cpu %6.2f s (user %.2f, sys %.2f)   peak rss %7.1f MiB\n",
            r, c, w, u + s, u, s, m / 1024 }'
}

# timed STEP ROUND CMD...: measure()s CMD and appends a row to $RAW.
timed() {
    local step=$1 round=$2
    shift 2
    measure "$step-$round" "$@"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "$round" "$STEP_WALL" "$STEP_USER" "$STEP_SYS" "$STEP_RSS" >>"$RAW"
    print_step "$round" "$step"
}

# registry_cpu: the registry process's user+sys CPU seconds so far (/proc/PID/stat, clock ticks).
registry_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$REG_PID/stat"
}

hoist_build() { # STEP ROUND CONTEXT [EXTRA ARGS...]: hoist build, pushing to app/x:1
    local step=$1 round=$2 ctx=$3
    shift 3
    local reg0
    reg0=$(registry_cpu)
    timed "$step" "$round" env XDG_CACHE_HOME="$CACHE_DIR" "$HOIST" build -q "$ctx" -f "$DOCKERFILE" \
        -t "127.0.0.1:$PORT/$REPO:$TAG" --metadata-file "$LOGS/$step-$round.json" "$@"
    # The registry's CPU during the step (a row of its own: wall 0, CPU as user), for the machine's limit.
    printf '%s\t%s\t0\t%s\t0\t0\n' "registry-$step" "$round" \
        "$(awk -v a="$reg0" -v b="$(registry_cpu)" 'BEGIN { printf "%.2f", b - a }')" >>"$RAW"
    verify "$step"
}
