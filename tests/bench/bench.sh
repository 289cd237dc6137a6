#!/usr/bin/env bash
# bench.sh — tapbus throughput benchmark.
#
# usage: tests/bench/bench.sh [BUILD_DIR]      (default ./build; builds nothing)
#
# Generates a synthetic capture (tb-gen-pcap), then measures
#   1. raw:      libpcap reading the file (tb-pcap-rate)
#   2. decode:   the same plus tb_decode() on every packet (tb-pcap-rate --decode)
#   3. e2e:      tapbus-probe -> ZeroMQ over loopback TCP -> tapbus-collector:
#                packets / (time from `tapbusctl start` to the stream's state
#                being `finished` in `tapbusctl --json stats`)
# and reports the peak RSS (VmHWM) and CPU time of the probe and the collector
# and checks that the collector counted every packet.
#
# Environment:
#   PACKETS=5000000  packets in the capture
#   FLOWS=10000      distinct flows
#   SNAPLEN=128      captured bytes per packet
#   SEED=1           generator seed
#   RUNS=1           repetitions of each measurement (best rate is reported)
#   TIMEOUT=600      seconds an end-to-end run may take before it fails
#   POLL=0.2         seconds between stats polls (the e2e time's resolution)
#   PROBE_ARGS=      extra tapbus-probe options (e.g. "--batch 4096")
#   COLLECTOR_ARGS=  extra tapbus-collector options
#   KEEP=0           1 keeps the temp dir (capture and logs) for inspection
#
# Exit status: 0 when every run finished with the right packet count, 1
# otherwise (the programs' logs are printed), 2 on a usage error.
set -euo pipefail

BUILD=${1:-./build}
PACKETS=${PACKETS:-5000000}
FLOWS=${FLOWS:-10000}
SNAPLEN=${SNAPLEN:-128}
SEED=${SEED:-1}
RUNS=${RUNS:-1}
TIMEOUT=${TIMEOUT:-600}
POLL=${POLL:-0.2}
PROBE_ARGS=${PROBE_ARGS:-}
COLLECTOR_ARGS=${COLLECTOR_ARGS:-}
KEEP=${KEEP:-0}
STREAM=bench

die() {
    echo "bench.sh: $*" >&2
    exit 2
}

for v in PACKETS FLOWS SNAPLEN SEED RUNS TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((PACKETS > 0)) || die "PACKETS must be at least 1"
((RUNS > 0)) || die "RUNS must be at least 1"
[[ $POLL =~ ^[0-9]*\.?[0-9]+$ ]] || die "POLL must be a number of seconds, not '$POLL'"
command -v python3 >/dev/null || die "python3 is needed (JSON parsing, free ports)"
[[ -d $BUILD ]] || die "build directory '$BUILD' does not exist (pass it as the first argument)"

# Executables live in BUILD/bin, or beside their sources in older trees.
find_bin() {
    local name=$1 d
    for d in "$BUILD/bin" "$BUILD/probe" "$BUILD/collector" "$BUILD/controller" \
        "$BUILD/tests/tools"; do
        if [[ -x $d/$name ]]; then
            echo "$d/$name"
            return 0
        fi
    done
    die "$name not found under $BUILD (build it first)"
}
PROBE=$(find_bin tapbus-probe)
COLLECTOR=$(find_bin tapbus-collector)
CTL=$(find_bin tapbusctl)
GEN=$(find_bin tb-gen-pcap)
RATE=$(find_bin tb-pcap-rate)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tapbus-bench.XXXXXX")
PROBE_PID=
COLLECTOR_PID=

# Stop one of our programs: SIGTERM (it flushes and exits), SIGKILL after 5 s.
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_programs() {
    stop_pid "$PROBE_PID"
    stop_pid "$COLLECTOR_PID"
    PROBE_PID=
    COLLECTOR_PID=
}

cleanup() {
    stop_programs
    if [[ $KEEP == 1 ]]; then
        echo "bench.sh: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_logs() {
    local f
    for f in "$TMP"/*.log; do
        [[ -s $f ]] || continue
        echo "---- $(basename "$f") (last 40 lines) ----" >&2
        tail -n 40 "$f" >&2
    done
}

fail() {
    echo "bench.sh: FAILED: $*" >&2
    show_logs
    exit 1
}

now() { # seconds since the epoch, microsecond resolution
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        echo "${EPOCHREALTIME/,/.}"
    else
        date +%s.%N
    fi
}

# key=value line -> value of key.
field() {
    sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"
}

# Peak resident set size in kB, from the kernel's high-water mark.
vm_hwm() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# User + system CPU time of a process in clock ticks (fields 14, 15 of stat;
# the command name in field 2 may hold spaces, so cut after its ')').
cpu_ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo 0
        return
    }
    s=${s##*) }
    awk '{ print $12 + $13 }' <<<"$s"
}
HZ=$(getconf CLK_TCK)

# Two distinct free TCP ports on 127.0.0.1. Another program may take them
# before we bind; start_programs() retries with new ports if a bind fails.
free_ports() {
    python3 -c '
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
'
}

# JSON document on stdin -> "state packets seq_gaps lost_packets bad_messages".
parse_stats() {
    python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except ValueError:
    print("invalid 0 0 0 0")
    sys.exit(0)
s = j.get("stats", j) if isinstance(j, dict) else {}
loss = s.get("loss") or {}
print(s.get("state", "unknown"), s.get("packets", 0), loss.get("seq_gaps", 0),
      loss.get("lost_packets", 0), loss.get("bad_messages", 0))
'
}

# Start probe and collector on fresh ports; sets PROBE_PID, COLLECTOR_PID,
# CONTROL. Waits until the probe publishes and the collector answers.
start_programs() {
    local run=$1 pport cport deadline _
    for _ in 1 2 3; do
        read -r pport cport <<<"$(free_ports)"
        CONTROL=tcp://127.0.0.1:$cport
        # shellcheck disable=SC2086 # PROBE_ARGS is a list of options
        "$PROBE" --id bench --source "$STREAM=file:$CAPTURE" \
            --publish "tcp://127.0.0.1:$pport" $PROBE_ARGS >"$TMP/probe.$run.log" 2>&1 &
        PROBE_PID=$!
        # shellcheck disable=SC2086
        "$COLLECTOR" --probe "tcp://127.0.0.1:$pport" --control "$CONTROL" \
            $COLLECTOR_ARGS >"$TMP/collector.$run.log" 2>&1 &
        COLLECTOR_PID=$!
        deadline=$(($(date +%s) + 15))
        while (($(date +%s) < deadline)); do
            if ! kill -0 "$PROBE_PID" 2>/dev/null || ! kill -0 "$COLLECTOR_PID" 2>/dev/null; then
                break
            fi
            if grep -q publishing "$TMP/probe.$run.log" &&
                "$CTL" --collector "$CONTROL" --timeout 500 status >/dev/null 2>&1; then
                return 0
            fi
            sleep 0.05
        done
        if grep -qi "cannot bind" "$TMP/probe.$run.log" "$TMP/collector.$run.log"; then
            echo "bench.sh: port taken, retrying with new ports" >&2
            stop_programs
            continue
        fi
        fail "probe or collector did not come up (run $run)"
    done
    fail "could not find free ports after 3 attempts"
}

# One end-to-end run. Runs in the main shell (not in $(...)) so the trap
# always knows the PIDs. Sets E_SECS E_PACKETS E_PROBE_KB E_COLL_KB
# E_PROBE_TICKS E_COLL_TICKS E_GAPS E_LOST E_BAD.
e2e_run() {
    local run=$1 t0 t1 out state=unknown packets=0 gaps=0 lost=0 bad=0 pcpu0 ccpu0 deadline
    start_programs "$run"
    pcpu0=$(cpu_ticks "$PROBE_PID")
    ccpu0=$(cpu_ticks "$COLLECTOR_PID")
    t0=$(now)
    "$CTL" --collector "$CONTROL" start "$STREAM" >"$TMP/ctl.$run.log" 2>&1 ||
        fail "tapbusctl start failed (run $run)"
    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        sleep "$POLL"
        # Timestamp right after the reply, before parsing it.
        if out=$("$CTL" --collector "$CONTROL" --json stats "$STREAM" 2>>"$TMP/ctl.$run.log"); then
            t1=$(now)
            read -r state packets gaps lost bad <<<"$(parse_stats <<<"$out")"
            [[ $state == finished ]] && break
        fi
        kill -0 "$PROBE_PID" 2>/dev/null || fail "probe exited during run $run"
        kill -0 "$COLLECTOR_PID" 2>/dev/null || fail "collector exited during run $run"
        (($(date +%s) < deadline)) ||
            fail "stream not finished after $TIMEOUT s (state $state, $packets packets)"
    done
    echo "$out" >"$TMP/stats.$run.json"
    E_PROBE_KB=$(vm_hwm "$PROBE_PID")
    E_COLL_KB=$(vm_hwm "$COLLECTOR_PID")
    E_PROBE_TICKS=$(($(cpu_ticks "$PROBE_PID") - pcpu0))
    E_COLL_TICKS=$(($(cpu_ticks "$COLLECTOR_PID") - ccpu0))
    stop_programs
    E_SECS=$(python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' \
        "$t0" "$t1")
    E_PACKETS=$packets E_GAPS=$gaps E_LOST=$lost E_BAD=$bad
}

# Best of RUNS runs of tb-pcap-rate with the given options. Sets R_PPS R_SECS.
rate_run() {
    local i line pps n
    R_PPS=0 R_SECS=0
    for ((i = 1; i <= RUNS; i++)); do
        line=$("$RATE" "$@" "$CAPTURE" 2>>"$TMP/rate.log") || fail "tb-pcap-rate $* failed"
        n=$(field packets "$line")
        [[ $n == "$PACKETS" ]] || fail "tb-pcap-rate $* read $n packets, expected $PACKETS"
        pps=$(field pps "$line")
        if ((pps > R_PPS)); then
            R_PPS=$pps
            R_SECS=$(field seconds "$line")
        fi
    done
}

fmt_int() { # 1234567 -> 1,234,567
    python3 -c 'import sys; print("{:,}".format(int(float(sys.argv[1]))))' "$1"
}

# ---- main ---------------------------------------------------------------

CAPTURE=$TMP/bench.pcap
echo "tapbus benchmark: $PACKETS packets, $FLOWS flows, snaplen $SNAPLEN, seed $SEED, build $BUILD"
"$GEN" --packets "$PACKETS" --flows "$FLOWS" --snaplen "$SNAPLEN" --seed "$SEED" \
    -o "$CAPTURE" 2>"$TMP/gen.log" || fail "tb-gen-pcap failed"
cat "$TMP/gen.log"
cat "$CAPTURE" >/dev/null # every measurement reads from the page cache

rate_run
RAW_PPS=$R_PPS RAW_S=$R_SECS
rate_run --decode
DEC_PPS=$R_PPS DEC_S=$R_SECS

# End-to-end: the fastest run is reported with its own RSS and CPU figures;
# every run must count every packet.
best_e2e=
count_ok=1
for ((r = 1; r <= RUNS; r++)); do
    e2e_run "$r"
    echo "run $r: end-to-end $E_SECS s, $E_PACKETS packets"
    [[ $E_PACKETS == "$PACKETS" ]] || count_ok=0
    if [[ -z $best_e2e ]] ||
        python3 -c 'import sys; sys.exit(float(sys.argv[1]) >= float(sys.argv[2]))' \
            "$E_SECS" "$best_e2e"; then
        best_e2e=$E_SECS E2E_PACKETS=$E_PACKETS PROBE_KB=$E_PROBE_KB COLL_KB=$E_COLL_KB
        PROBE_CPU=$E_PROBE_TICKS COLL_CPU=$E_COLL_TICKS GAPS=$E_GAPS LOST=$E_LOST BAD=$E_BAD
    fi
done

read -r E2E_PPS RATIO PROBE_CPU_S COLL_CPU_S <<<"$(python3 -c '
import sys
n, secs, raw, pc, cc, hz = map(float, sys.argv[1:])
pps = n / secs if secs > 0 else 0
print("%.0f %.1f %.2f %.2f" % (pps, 100 * pps / raw if raw else 0, pc / hz, cc / hz))
' "$PACKETS" "$best_e2e" "$RAW_PPS" "$PROBE_CPU" "$COLL_CPU" "$HZ")"

echo
printf '%-34s %14s %10s\n' measurement packets/s seconds
printf '%-34s %14s %10s\n' "raw read (libpcap)" "$(fmt_int "$RAW_PPS")" "$RAW_S"
printf '%-34s %14s %10s\n' "raw read + tb_decode" "$(fmt_int "$DEC_PPS")" "$DEC_S"
printf '%-34s %14s %10s  (+-%s s poll resolution)\n' "end-to-end probe -> collector" \
    "$(fmt_int "$E2E_PPS")" "$best_e2e" "$POLL"
echo
printf 'end-to-end / raw:      %s%%\n' "$RATIO"
printf 'peak RSS (VmHWM):      probe %s kB (%s MiB), collector %s kB (%s MiB)\n' "$PROBE_KB" \
    $((PROBE_KB / 1024)) "$COLL_KB" $((COLL_KB / 1024))
printf 'CPU during e2e:        probe %s s, collector %s s\n' "$PROBE_CPU_S" "$COLL_CPU_S"
printf 'loss:                  seq_gaps %s, lost_packets %s, bad_messages %s\n' "$GAPS" "$LOST" \
    "$BAD"
if [[ $count_ok == 1 ]]; then
    printf 'packet count:          %s of %s  OK\n' "$E2E_PACKETS" "$PACKETS"
else
    printf 'packet count:          %s of %s  MISMATCH\n' "$E2E_PACKETS" "$PACKETS"
    show_logs
    exit 1
fi
