#!/usr/bin/env bash
# The whole job on one machine, nothing to configure: a private influxd
# (InfluxDB 1.x, Debian package influxdb) in a temporary directory on free
# ports, two probes replaying captures shipped in tests/data, a collector
# writing to that database, and the HTTP gateway with generated credentials.
# Streams are started with curl the way DPMI analyzer users did; then
# tapbusctl shows status, statistics and what reached the database, stops
# the streams, and everything started here is stopped and removed again (also
# on Ctrl-C or a failure).
#
# Installs missing Debian packages and builds into build/demo first. With
# TAPBUS_BIN set to a directory holding tapbus-probe, tapbus-collector and
# tapbusctl (the test suite does this) it uses those and builds nothing.
# TAPBUS_INFLUXD names another influxd binary.
#
#   ./demo.sh           run the demo and clean up
#   ./demo.sh --keep    leave everything running after it, to try tapbusctl
#                       and curl by hand, until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")"

keep=0
case "${1:-}" in
    "") ;;
    --keep) keep=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "demo.sh: unknown argument '$1' (try --help)" >&2
        exit 2
        ;;
esac
[ $# -le 1 ] || { echo "demo.sh: too many arguments (try --help)" >&2; exit 2; }

if [ -n "${TAPBUS_BIN:-}" ]; then
    bin=$TAPBUS_BIN
else
    ./deps.sh
    cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build/demo -j "$(nproc 2>/dev/null || echo 2)" \
        --target tapbus-probe tapbus-collector tapbusctl >/dev/null
    bin=build/demo/bin
fi
if [ ! -d "$bin" ]; then
    echo "demo.sh: $bin is not a directory (TAPBUS_BIN names the programs' directory)" >&2
    exit 1
fi
bin=$(cd "$bin" && pwd)
for prog in tapbus-probe tapbus-collector tapbusctl; do
    if [ ! -x "$bin/$prog" ]; then
        echo "demo.sh: $bin/$prog is missing or not executable" >&2
        exit 1
    fi
done
influxd=${TAPBUS_INFLUXD:-influxd}
for tool in "$influxd" curl python3 openssl; do
    if ! command -v "$tool" >/dev/null; then
        echo "demo.sh: $tool not found (./deps.sh installs it)" >&2
        exit 1
    fi
done

capture1=tests/data/demo.pcap
capture2=tests/data/corpus/mptcp-v0.pcap

# --- clean-up: every process started here, then the work directory ---------

work=""
pids=()   # in start order; stopped in reverse (influxd, started first, last)
names=()

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local code=$? i
    trap - EXIT INT TERM
    if [ "$code" -eq 130 ] || [ "$code" -eq 143 ]; then
        echo "demo.sh: interrupted: stopping the programs and removing ${work:-nothing}" >&2
    elif [ "$code" -ne 0 ] && [ -n "$work" ]; then
        echo "demo.sh: failed (exit code $code); the end of each log:" >&2
        for i in "${!names[@]}"; do
            echo "--- ${names[$i]}" >&2
            tail -n 15 "$work/${names[$i]}.log" >&2 2>/dev/null || true
        done
    fi
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_pid "${pids[$i]}"
    done
    [ -n "$work" ] && rm -rf "$work"
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

work=$(mktemp -d "${TMPDIR:-/tmp}/tapbus-demo.XXXXXX")

# start NAME PROGRAM ARGS...: run in the background, output to NAME.log.
start() {
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 </dev/null &
    pids+=($!)
    names+=("$name")
}

# alive NAME [WHEN]: fail, saying so, when the program started as NAME has exited.
alive() {
    local i
    for i in "${!names[@]}"; do
        if [ "${names[$i]}" = "$1" ] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "demo.sh: $1 exited${2:-}" >&2
            return 1
        fi
    done
}

# wait_until WHAT NAME COMMAND...: poll COMMAND for up to 30 s while NAME runs.
wait_until() {
    local what=$1 name=$2 i
    shift 2
    for i in $(seq 300); do
        "$@" >/dev/null 2>&1 && return 0
        alive "$name" " while starting" || return 1
        sleep 0.1
    done
    echo "demo.sh: timed out waiting for $what" >&2
    return 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

say() { printf '\n$ %s\n' "$*"; }
ctl() { "$bin/tapbusctl" --collector "$control" "$@"; }
run() { say "tapbusctl $*"; ctl "$@"; }

echo "tapbus demo: work directory $work (removed at the end)"

# --- InfluxDB ----------------------------------------------------------------

influx_port=$(free_port)
rpc_port=$(free_port)
while [ "$rpc_port" = "$influx_port" ]; do rpc_port=$(free_port); done
influx_url="http://127.0.0.1:$influx_port"
cat >"$work/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"

[meta]
  dir = "$work/influx/meta"

[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:$influx_port"
  log-enabled = false
  auth-enabled = false

[monitor]
  store-enabled = false

[ifql]
  enabled = false
EOF
# INFLUXDB_* variables would override the configuration file.
unset_influx=()
for var in $(compgen -e); do
    case $var in INFLUXDB_*) unset_influx+=(-u "$var") ;; esac
done
start influxd env "${unset_influx[@]}" "$influxd" -config "$work/influxdb.conf"
influx_ping() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$influx_url/ping")" = 204 ]; }
wait_until "influxd to answer $influx_url/ping" influxd influx_ping
echo "influxd:   $influx_url (its data in the work directory)"

# --- two probes, the collector, the gateway ---------------------------------

pub1="tcp://127.0.0.1:$(free_port)"
pub2="tcp://127.0.0.1:$(free_port)"
control="tcp://127.0.0.1:$(free_port)"
start probe-edge1 "$bin/tapbus-probe" --id edge1 --publish "$pub1" \
    --source "demo=file:$capture1"
start probe-edge2 "$bin/tapbus-probe" --id edge2 --publish "$pub2" \
    --source "mptcp=file:$capture2"
echo "probe:     edge1 on $pub1, stream demo = $capture1"
echo "probe:     edge2 on $pub2, stream mptcp = $capture2"

start collector "$bin/tapbus-collector" --probe "$pub1" --probe "$pub2" --control "$control" \
    --influx-url "$influx_url" --influx-db tapbus --influx-create-db --batch-ms 200 \
    --spool-dir "$work/spool"
wait_until "the collector to answer on $control" collector \
    ctl --timeout 500 --retries 0 status
echo "collector: control $control, writing to $influx_url database tapbus"

# Credentials: a random password, in a file only its owner can read.
user=demo
password=$(openssl rand -hex 12)
(umask 077 && printf '%s:%s\n' "$user" "$password" >"$work/credentials")
http="127.0.0.1:$(free_port)"
start gateway "$bin/tapbusctl" --collector "$control" serve --http "$http" \
    --credentials "$work/credentials"
gateway_up() { curl -sf -o /dev/null -u "$user:$password" "http://$http/status"; }
wait_until "the HTTP gateway to answer on $http" gateway gateway_up
echo "gateway:   http://$http, user $user, password $password" \
    "(credentials file mode $(stat -c %a "$work/credentials"))"

# Both probes announce their streams to the collector within a moment.
offered() {
    local streams
    streams=$(ctl --json streams) || return 1
    python3 -c 'import json, sys
have = {s["stream"] for s in json.load(sys.stdin)["streams"] if s["probe"]}
sys.exit(0 if {"demo", "mptcp"} <= have else 1)' <<<"$streams"
}
wait_until "the probes to offer their streams" collector offered

# --- the measurement -----------------------------------------------------------

url="http://$http/start?streamname1=demo&streamname2=mptcp"
say "curl -sS -u $user:$password \"$url\""
reply=$(curl -sS -w 'HTTP %{http_code}' -u "$user:$password" "$url")
echo "$reply"
if [ "${reply##*$'\n'}" != "HTTP 200" ]; then
    echo "demo.sh: the gateway did not start the streams" >&2
    exit 1
fi

# File streams are replayed as fast as the bus takes them; then the collector
# writes their last seconds, intervals and totals to the database.
finished_and_written() {
    local st
    st=$(ctl --json status) || return 1
    python3 -c 'import json, sys
st = json.load(sys.stdin)
done = {s["stream"] for s in st["streams"] if s["state"] == "finished"}
d = st["database"] or {}
ok = ({"demo", "mptcp"} <= done and d.get("connected") and d.get("queued_points") == 0
      and d.get("batch_points") == 0 and d.get("spool_points") == 0)
sys.exit(0 if ok else 1)' <<<"$st"
}
wait_until "both streams to finish and reach the database" collector finished_and_written

run status
run stats demo
run db
run db tapbus_traffic demo -n 12
run db tapbus_interval demo
run db tapbus_top_flow demo -n 10
run db tapbus_stream
if [ "$keep" -eq 1 ]; then
    cat <<EOF

Everything keeps running. Try, in another terminal:
  $bin/tapbusctl --collector $control top demo
  curl -u $user:$password "http://$http/stats?stream=mptcp"
  curl -u $user:$password "http://$http/start?streamname1=demo"   # replay it again
  curl -G $influx_url/query --data-urlencode db=tapbus \\
      --data-urlencode "q=SELECT sum(packets) FROM tapbus_traffic GROUP BY stream, class"
Ctrl-C stops it all and removes $work.
EOF
    while :; do
        for name in "${names[@]}"; do alive "$name"; done
        sleep 1
    done
fi
run stop

echo
echo "demo done: stopping the programs and removing $work"
