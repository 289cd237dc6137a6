#!/usr/bin/env bash
# Install the Debian packages tapbus needs to build, test and run.
# Idempotent: installs only what is missing. Needs root (or sudo) on Debian 12.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# The packages that build and run the programs: one list each, shared with
# compose/Dockerfile so the image and this machine cannot drift apart.
read_list() {
    sed 's/#.*//' "$1" | tr -s ' \t' '\n' | sed '/^$/d'
}
mapfile -t packages < <(read_list "$here/compose/packages-build.txt"
                        read_list "$here/compose/packages-runtime.txt")

# What only the tests and the developer tools need.
packages+=(
    clang libclang-rt-14-dev libcmocka-dev
    tshark python3 python3-yaml procps iproute2 nftables influxdb curl tmux openssl
    docker-compose systemd
    # tests/integration/test_curve.py: what the loopback shows with CURVE.
    tcpdump
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
