# bench/lib.sh — what the benchmark scripts share: the hoist binary they measure, a fresh local
# docker-registry per measured step, and the machine facts every result table starts with.
# Sourced by bench/push.sh and bench/build.sh (which set ROOT, WORK and STEP_TIMEOUT first); not run
# on its own.

# --- the hoist binary -------------------------------------------------------------------------------

# ensure_hoist: sets HOIST to $HOIST (checked) or to target/release/hoist, built first.
ensure_hoist() {
    if [[ -n ${HOIST:-} ]]; then
        [[ -x $HOIST ]] || { echo "HOIST=$HOIST is not an executable" >&2; exit 2; }
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
hoist_version() {
    local rev
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        rev="$rev+dirty"
    fi
    echo "$("$HOIST" --version) ($rev)"
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
