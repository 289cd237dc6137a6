#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each over its seeds.
#
#   tests/fuzz/run.sh [--seconds N | --minutes N] [--seed N] [--build DIR] [TARGET...]
#
# Each target runs N seconds (default 20) on one core, from a copy of its
# seeds in a temporary directory (removed afterwards: nothing is written to
# the source tree). TARGET: decode, wire, offer, ctl, conf, lineproto, capfile,
# dpmi (or fuzz_NAME); default all. --seed fixes libFuzzer's random seed
# (./test.sh uses 1: repeatable runs); default: a new one each run. A crash, a
# leak or a hang fails the run; the input that caused it is kept under
# BUILD/artifacts/TARGET/ and its path printed. See tests/fuzz/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

seconds=20
seed=0
build="$top/build/fuzz"
targets=()
usage() {
    sed -n '4p' "$0" | sed 's/^# *//' >&2
    exit 2
}
number() {
    [[ "$2" =~ ^[1-9][0-9]{0,5}$ ]] || { echo "run.sh: $1 needs a positive number, not '$2'" >&2; exit 2; }
}
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) [ $# -ge 2 ] || usage; number "$1" "$2"; seconds=$2; shift 2 ;;
    --minutes) [ $# -ge 2 ] || usage; number "$1" "$2"; seconds=$(($2 * 60)); shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; number "$1" "$2"; seed=$2; shift 2 ;;
    --build) [ $# -ge 2 ] || usage; build=$(realpath -m "$2"); shift 2 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; usage ;;
    *) targets+=("fuzz_${1#fuzz_}"); shift ;;
    esac
done
all=(fuzz_decode fuzz_wire fuzz_offer fuzz_ctl fuzz_conf fuzz_lineproto fuzz_capfile fuzz_dpmi)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    [[ " ${all[*]} " == *" $t "* ]] || { echo "run.sh: no fuzz target '${t#fuzz_}' (${all[*]#fuzz_})" >&2; exit 2; }
done
command -v clang >/dev/null || { echo "run.sh: clang not found (./deps.sh installs it)" >&2; exit 1; }

echo "== fuzz: building ${targets[*]} in $build"
cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTAPBUS_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}" fuzz_seeds

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tapbus-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/generated/decode" "$tmp/generated/ctl"
"$build/bin/fuzz_seeds" "$tmp/generated"

# Where each target's seeds are: its own directory here, and the inputs the
# repository already has.
seeds_of() {
    local name=${1#fuzz_}
    [ -d "$here/corpus/$name" ] && echo "$here/corpus/$name"
    [ -d "$tmp/generated/$name" ] && echo "$tmp/generated/$name"
    case "$name" in
    wire) echo "$top/tests/data/wire" ;;
    offer) echo "$top/tests/data/wire" ;;
    esac
    return 0
}

failed=()
for t in "${targets[@]}"; do
    corpus="$tmp/corpus-$t"
    artifacts="$build/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    while read -r d; do
        find "$d" -maxdepth 1 -type f -exec cp -t "$corpus" {} +
    done < <(seeds_of "$t")
    echo "== fuzz: $t for ${seconds}s from $(ls "$corpus" | wc -l) seeds"
    log="$tmp/$t.log"
    rc=0
    # -timeout: one input taking longer is a hang, a failure like a crash.
    # -rss_limit_mb: a target growing beyond this is a failure too.
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$build/bin/$t" -max_total_time="$seconds" -seed="$seed" -timeout=25 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" >"$log" 2>&1 || rc=$?
    # The summary: what libFuzzer last reported (executions, coverage) and
    # its final statistics.
    grep -E '^#[0-9]+' "$log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    if [ "$rc" -ne 0 ]; then
        tail -n 60 "$log"
        input=$(grep -oE "(Test unit written to|artifact_prefix.*; Test unit written to) [^ ]+" "$log" |
                tail -n 1 | awk '{print $NF}')
        echo "== fuzz: $t FAILED (exit $rc); input: ${input:-see the output above}"
        echo "   reproduce: $build/bin/$t ${input:-INPUT}"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzz: failed: ${failed[*]}"
    exit 1
fi
echo "== fuzz: ${targets[*]} passed"
