#!/usr/bin/env bash
# bench.sh — tapbus throughput benchmark.
#
# usage: tests/bench/bench.sh [BUILD_DIR]      (default ./build; builds nothing)
#
# Generates a synthetic capture (tb-gen-pcap), then measures
#   1. raw:      libpcap reading the file (tb-pcap-rate)
#   2. decode:   the same plus tb_decode() on every packet (tb-pcap-rate --decode)
#   +  alone:    tapbus-probe publishing the file to tb-bus-sink, a subscriber
#                that only receives (the probe's own rate)
#   3. e2e:      tapbus-probe -> ZeroMQ over loopback TCP -> tapbus-collector:
#                packets / (time from `tapbusctl start` to the stream's state
#                being `finished` in `tapbusctl --json stats`)
# and reports the peak RSS (VmHWM) of the probe and the collector, their CPU
# time per packet and the time they spent runnable but waiting for a CPU (on
# a busy machine that wait, not tapbus, sets the end-to-end rate), and checks
# that the collector counted every packet.
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
SINK=$(find_bin tb-bus-sink)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tapbus-bench.XXXXXX")
PROBE_PID=
COLLECTOR_PID=
TIMED_PID=

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
    if [[ -n $TIMED_PID ]]; then
        kill "$TIMED_PID" 2>/dev/null || true
        wait "$TIMED_PID" 2>/dev/null || true
    fi
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

# key=value line -> value of key.
field() {
    sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"
}

# Peak resident set size in kB, from the kernel's high-water mark.
vm_hwm() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# Scheduler accounting of a process, summed over its threads, from
# /proc/PID/task/TID/schedstat (ns on a CPU, ns runnable but waiting for one):
# prints "oncpu_ns wait_ns main_oncpu_ns main_wait_ns" (main = the thread
# that runs the program's loop; the others are ZeroMQ's I/O threads).
sched_ns() {
    local pid=$1 t on wait _ son=0 swait=0 mon=0 mwait=0
    for t in /proc/"$pid"/task/*; do
        read -r on wait _ <"$t/schedstat" 2>/dev/null || continue
        son=$((son + on)) swait=$((swait + wait))
        if [[ ${t##*/} == "$pid" ]]; then
            mon=$on mwait=$wait
        fi
    done
    echo "$son $swait $mon $mwait"
}

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

# The timed part of an end-to-end run, in one python3 process (so polling
# costs the measured machine almost nothing and the clock is monotonic):
# `tapbusctl start`, then `tapbusctl --json stats` every POLL seconds until
# the state is "finished". Prints "seconds state packets seq_gaps
# lost_packets bad_messages" and writes the last stats document to argv[6].
# Exit status 1 if a program died or the run timed out.
TIMED_RUN='
import json, os, subprocess, sys, time
ctl, control, stream, poll, timeout, out_path, log_path = sys.argv[1:8]
pids = [int(p) for p in sys.argv[8:]]
poll, timeout = float(poll), float(timeout)
log = open(log_path, "a")
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
t0 = time.monotonic()
if subprocess.run([ctl, "--collector", control, "start", stream], stdout=log,
                  stderr=log).returncode != 0:
    print("tapbusctl start failed", file=sys.stderr)
    sys.exit(1)
state, s = "unknown", {}
while True:
    time.sleep(poll)
    r = subprocess.run([ctl, "--collector", control, "--json", "stats", stream],
                       stdout=subprocess.PIPE, stderr=log, text=True)
    t1 = time.monotonic()  # right after the reply, before parsing it
    if r.returncode == 0:
        try:
            s = json.loads(r.stdout)
        except ValueError:
            s = {}
        state = s.get("state", "unknown")
        if state == "finished":
            break
    if not all(alive(p) for p in pids):
        print("a program exited during the run", file=sys.stderr)
        sys.exit(1)
    if t1 - t0 > timeout:
        print("not finished after %.0f s (state %s, %s packets)"
              % (timeout, state, s.get("packets", 0)), file=sys.stderr)
        sys.exit(1)
with open(out_path, "w") as f:
    json.dump(s, f, indent=2)
loss = s.get("loss") or {}
print("%.3f %s %d %d %d %d" % (t1 - t0, state, s.get("packets", 0), loss.get("seq_gaps", 0),
                               loss.get("lost_packets", 0), loss.get("bad_messages", 0)))
'

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

# Field-wise difference of two sched_ns lines, as one comma-joined word.
sched_delta() {
    local -a a b
    read -r -a a <<<"$1"
    read -r -a b <<<"$2"
    echo "$((b[0] - a[0])),$((b[1] - a[1])),$((b[2] - a[2])),$((b[3] - a[3]))"
}

# One end-to-end run. Runs in the main shell (not in $(...)) so the trap
# always knows the PIDs. Sets E_SECS E_PACKETS E_PROBE_KB E_COLL_KB
# E_PROBE_SCHED E_COLL_SCHED (sched_ns deltas) E_GAPS E_LOST E_BAD.
e2e_run() {
    local run=$1 psched0 csched0
    start_programs "$run"
    psched0=$(sched_ns "$PROBE_PID")
    csched0=$(sched_ns "$COLLECTOR_PID")
    # In the background and waited for, so a signal to this script is
    # handled at once rather than when the run ends.
    python3 -c "$TIMED_RUN" "$CTL" "$CONTROL" "$STREAM" "$POLL" "$TIMEOUT" \
        "$TMP/stats.$run.json" "$TMP/ctl.$run.log" "$PROBE_PID" "$COLLECTOR_PID" \
        >"$TMP/timed.$run.out" 2>"$TMP/timed.$run.log" &
    TIMED_PID=$!
    wait "$TIMED_PID" || fail "end-to-end run $run: $(tail -n 1 "$TMP/timed.$run.log")"
    TIMED_PID=
    read -r E_SECS _ E_PACKETS E_GAPS E_LOST E_BAD <"$TMP/timed.$run.out"
    E_PROBE_KB=$(vm_hwm "$PROBE_PID")
    E_COLL_KB=$(vm_hwm "$COLLECTOR_PID")
    E_PROBE_SCHED=$(sched_delta "$psched0" "$(sched_ns "$PROBE_PID")")
    E_COLL_SCHED=$(sched_delta "$csched0" "$(sched_ns "$COLLECTOR_PID")")
    stop_programs
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

# Best of RUNS runs of the probe alone: file -> decode -> publish into
# tb-bus-sink, which only receives. Sets A_PPS A_SECS.
alone_run() {
    local i line pps n pport
    A_PPS=0 A_SECS=0
    for ((i = 1; i <= RUNS; i++)); do
        read -r pport _ <<<"$(free_ports)"
        "$PROBE" --id bench-probe --publish "tcp://127.0.0.1:$pport" $PROBE_ARGS \
            --source "$STREAM=file:$CAPTURE" 2>"$TMP/alone.$i.log" &
        PROBE_PID=$!
        line=$("$SINK" "tcp://127.0.0.1:$pport" "$STREAM" "$TIMEOUT") ||
            fail "probe-alone run $i: $line"
        stop_programs
        n=$(field packets "$line")
        [[ $n == "$PACKETS" ]] || fail "probe-alone run $i: $n packets, expected $PACKETS"
        pps=$(field pps "$line")
        if ((pps > A_PPS)); then
            A_PPS=$pps
            A_SECS=$(field seconds "$line")
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
alone_run

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
        PROBE_SCHED=$E_PROBE_SCHED COLL_SCHED=$E_COLL_SCHED GAPS=$E_GAPS LOST=$E_LOST BAD=$E_BAD
    fi
done

read -r E2E_PPS RATIO DEC_RATIO <<<"$(python3 -c '
import sys
n, secs, raw, dec = map(float, sys.argv[1:])
pps = n / secs if secs > 0 else 0
print("%.0f %.1f %.1f" % (pps, 100 * pps / raw if raw else 0, 100 * pps / dec if dec else 0))
' "$PACKETS" "$best_e2e" "$RAW_PPS" "$DEC_PPS")"

# "oncpu,wait,main_oncpu,main_wait" ns -> a readable line.
sched_line() {
    python3 -c '
import sys
on, wait, mon, mwait = (int(x) for x in sys.argv[1].split(","))
n = int(sys.argv[2])
print("on CPU %.2f s = %.0f ns/packet (main thread %.2f s = %.0f ns/packet), "
      "waited for a CPU %.2f s" % (on / 1e9, on / n, mon / 1e9, mon / n, wait / 1e9))
' "$1" "$PACKETS"
}

echo
printf '%-34s %14s %10s\n' measurement packets/s seconds
printf '%-34s %14s %10s\n' "raw read (libpcap)" "$(fmt_int "$RAW_PPS")" "$RAW_S"
printf '%-34s %14s %10s\n' "raw read + tb_decode" "$(fmt_int "$DEC_PPS")" "$DEC_S"
printf '%-34s %14s %10s  (%s%% of raw)\n' "probe alone: file -> publish" "$(fmt_int "$A_PPS")" \
    "$A_SECS" "$(python3 -c 'import sys; print("%.1f" % (100 * float(sys.argv[1]) / float(sys.argv[2])))' "$A_PPS" "$RAW_PPS")"
printf '%-34s %14s %10s  (+-%s s poll resolution)\n' "end-to-end probe -> collector" \
    "$(fmt_int "$E2E_PPS")" "$best_e2e" "$POLL"
echo
printf 'end-to-end / raw:      %s%% (of raw + decode: %s%%)\n' "$RATIO" "$DEC_RATIO"
printf 'peak RSS (VmHWM):      probe %s kB (%s MiB), collector %s kB (%s MiB)\n' "$PROBE_KB" \
    $((PROBE_KB / 1024)) "$COLL_KB" $((COLL_KB / 1024))
printf 'probe during e2e:      %s\n' "$(sched_line "$PROBE_SCHED")"
printf 'collector during e2e:  %s\n' "$(sched_line "$COLL_SCHED")"
printf 'machine:               %s CPUs, load average %s\n' "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'loss:                  seq_gaps %s, lost_packets %s, bad_messages %s\n' "$GAPS" "$LOST" \
    "$BAD"
if [[ $count_ok == 1 ]]; then
    printf 'packet count:          %s of %s  OK\n' "$E2E_PACKETS" "$PACKETS"
else
    printf 'packet count:          %s of %s  MISMATCH\n' "$E2E_PACKETS" "$PACKETS"
    show_logs
    exit 1
fi
