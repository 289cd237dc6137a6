#!/usr/bin/env bash
# Install the Debian packages tapbus needs to build, test and run.
# Idempotent: installs only what is missing. Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang libclang-rt-14-dev
    libzmq3-dev libczmq-dev libpcap-dev libmsgpack-dev libcurl4-openssl-dev
    libjansson-dev libcmocka-dev zlib1g-dev libmicrohttpd-dev
    tshark python3 procps iproute2 nftables influxdb curl tmux openssl
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
