#!/usr/bin/env bash
# bench/compress.sh — the layer compressors side by side, and libdeflate's CPU-dispatch check.
#
#   bench/compress.sh [table]    the table in docs/compression.md: flate2/zlib-rs levels 1–6, 9,
#                                libdeflate 1–6, 9, 12, ISA-L igzip 0, 1, 3 (when it builds: needs nasm,
#                                autoconf, automake, libtool) over 100 MiB of /usr/lib/x86_64-linux-gnu cut
#                                into independent 4 MiB blocks (hoist's layer writer: one gzip member per
#                                block): MiB/s on 1 and 2 threads, compressed/original, size against
#                                zlib 1, inflate MiB/s of each output through hoist's streaming reader, and
#                                the decoders side by side. One run, printed as markdown.
#   bench/compress.sh stored     zlib-rs 1 and libdeflate 1 against hoist's layer writer (src/builder/gzip.rs,
#                                compiled into the bench: libdeflate 1 with incompressible 64 KiB runs
#                                stored) on bench/build.sh's context (bench/work/ctx-mixed, generated if
#                                missing: 64 MiB of text and 130 MiB of random binaries; MIB=180) and on
#                                DATA (100 MiB of shared libraries: next to nothing to store, the same size).
#   bench/compress.sh dispatch   libdeflate's output (sha256 of all members, levels 0–9 and 12, 32 MiB of
#                                the same files) and hoist's layer writer's (levels 1–9, the same files
#                                plus a block of alternating random and text runs) from: the normal build; a build with libdeflate's test
#                                hook (TEST_SUPPORT__DO_NOT_USE) run with every run-time CPU feature on,
#                                then with LIBDEFLATE_DISABLE_CPU_FEATURES turning off each group; and a
#                                build for x86-64-v3 (AVX2, BMI2 at compile time; where the CPU runs it).
#                                Fails unless all agree. scripts/test.sh runs it (MIB=8) in CI.
#
# DATA=DIR (default /usr/lib/x86_64-linux-gnu) and MIB=N change the input. The bench is its own cargo
# package (bench/compress), built in target/compress-bench*, so `cargo test` never builds it.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
DATA=${DATA:-/usr/lib/x86_64-linux-gnu}
mode=${1:-table}

build() { # build TARGET_SUFFIX [cargo args...] → prints the binary's path
    local dir=$ROOT/target/compress-bench$1; shift
    (cd "$BENCH/compress" && CARGO_TARGET_DIR=$dir cargo build -q --release "$@") >&2
    echo "$dir/release/hoist-compress-bench"
}

case $mode in
table)
    features=()
    if command -v nasm >/dev/null && command -v autoreconf >/dev/null && command -v libtoolize >/dev/null; then
        features=(--features isal)
    else
        echo "compress.sh: ISA-L left out (needs: apt-get install -y nasm autoconf automake libtool)" >&2
    fi
    bin=$(build "" "${features[@]}")
    "$bin" table "$DATA" "${MIB:-100}"
    ;;
stored)
    ctx=$BENCH/work/ctx-mixed
    [[ -d $ctx ]] || python3 "$BENCH/gen-context.py" mixed "$ctx"
    bin=$(build "")
    echo "bench/build.sh's context ($ctx):"
    "$bin" stored "$ctx" "${MIB:-180}"
    echo
    echo "$DATA:"
    "$bin" stored "$DATA" 100
    ;;
dispatch)
    mib=${MIB:-32}
    out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
    ref=$(build "" )
    "$ref" digests "$DATA" "$mib" > "$out/ref.txt"
    echo "reference (baseline x86-64 build, every run-time path this CPU has):"
    cat "$out/ref.txt"
    grep -q '^hoist ' "$out/ref.txt" || { echo "compress.sh: no hoist digests in the reference" >&2; exit 1; }
    fail=0
    check() { # check LABEL FILE
        if diff -q "$out/ref.txt" "$2" >/dev/null; then
            echo "same bytes: $1"
        else
            echo "DIFFERENT: $1"; diff "$out/ref.txt" "$2" || true; fail=1
        fi
    }
    hook=$(CFLAGS="-O2 -DTEST_SUPPORT__DO_NOT_USE" build -hook)
    # The hook is live: libdeflate built with it aborts on a feature name it does not know (a build
    # without it ignores the variable, and every comparison below would be of one path with itself).
    if (LIBDEFLATE_DISABLE_CPU_FEATURES=no-such-feature "$hook" digests "$DATA" 1 >/dev/null 2>&1; exit $?) 2>/dev/null; then
        echo "compress.sh: libdeflate's test hook is not compiled in (CFLAGS did not reach libdeflate-sys)" >&2; exit 1
    fi
    echo "libdeflate's test hook is live (it refuses an unknown feature name)"
    for off in "" pclmulqdq,vpclmulqdq avx512bw,avx512vl,zmm,avx512_vnni avx2,avx,avx_vnni bmi2 \
        pclmulqdq,avx,avx2,bmi2,zmm,avx512bw,avx512vl,vpclmulqdq,avx512_vnni,avx_vnni; do
        LIBDEFLATE_DISABLE_CPU_FEATURES=$off "$hook" digests "$DATA" "$mib" > "$out/cmp.txt"
        check "run-time features off: ${off:-none}" "$out/cmp.txt"
    done
    # An x86-64-v3 build only runs on a CPU that has AVX2, BMI1/2, FMA, MOVBE and LZCNT (abm).
    if awk '/^flags/ { for (i = 3; i <= NF; i++) f[$i] = 1; exit }
            END { exit !(f["avx2"] && f["bmi1"] && f["bmi2"] && f["fma"] && f["movbe"] && f["abm"]) }' /proc/cpuinfo; then
        v3=$(CFLAGS="-O2 -march=x86-64-v3" build -v3)
        "$v3" digests "$DATA" "$mib" > "$out/cmp.txt"
        check "built for x86-64-v3 (AVX2 match-finder tables, BMI2 at compile time)" "$out/cmp.txt"
    else
        echo "not checked: an x86-64-v3 build (this CPU cannot run one)"
    fi
    exit $fail
    ;;
*) echo "usage: bench/compress.sh [table|stored|dispatch]" >&2; exit 2 ;;
esac
