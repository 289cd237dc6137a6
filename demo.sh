#!/usr/bin/env bash
# The main job on one machine: a probe replays the capture shipped in
# tests/data/demo.pcap, a collector measures it, and tapbusctl starts the
# measurement, shows status and statistics, and stops it. Installs missing
# Debian packages and builds first.
set -euo pipefail
cd "$(dirname "$0")"
./deps.sh

cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/demo -j "$(nproc 2>/dev/null || echo 2)" \
    --target tapbus-probe tapbus-collector tapbusctl >/dev/null
bin=build/demo/bin

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
pub="tcp://127.0.0.1:$(free_port)"
ctl="tcp://127.0.0.1:$(free_port)"
logs=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$logs"
}
trap cleanup EXIT

run() { echo; echo "\$ tapbusctl $*"; "$bin/tapbusctl" --collector "$ctl" "$@"; }

"$bin/tapbus-probe" --id demo-probe --publish "$pub" \
    --source demo=file:tests/data/demo.pcap 2>"$logs/probe.log" &
pids+=($!)
"$bin/tapbus-collector" --probe "$pub" --control "$ctl" 2>"$logs/collector.log" &
pids+=($!)

for _ in $(seq 100); do
    "$bin/tapbusctl" --collector "$ctl" --timeout 200 status >/dev/null 2>&1 && break
done

run start demo
for _ in $(seq 300); do
    "$bin/tapbusctl" --collector "$ctl" status | grep -Eq '^demo +finished' && break
    sleep 0.1
done
run status
run stats demo
run stop

echo
echo "--- probe log"
cat "$logs/probe.log"
echo "--- collector log"
cat "$logs/collector.log"
