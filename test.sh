#!/usr/bin/env bash
# Build and run the whole test suite twice: with gcc, then with clang under
# AddressSanitizer + UndefinedBehaviorSanitizer; then short runs of the fuzz
# targets. Installs missing Debian packages first. Build trees go to
# build/test-gcc, build/test-asan and build/test-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
./deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
# tshark's view of the capture corpus is computed once for both builds.
export TAPBUS_TSHARK_CACHE="$PWD/build/tshark-cache.json"
mkdir -p build

echo "== gcc build and tests"
cmake -S . -B build/test-gcc -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/test-gcc -j "$jobs"
ctest --test-dir build/test-gcc --output-on-failure

echo "== clang build with ASan+UBSan and tests"
cmake -S . -B build/test-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTAPBUS_SANITIZE=ON >/dev/null
cmake --build build/test-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build/test-asan --output-on-failure

# Short runs of every libFuzzer target (tests/fuzz/run.sh: 20 s each, a fixed
# seed, from copies of the seeds in a temporary directory). A crash fails the
# suite and prints the path of the input that caused it.
if command -v clang >/dev/null 2>&1; then
    echo "== fuzz targets, 20 s each"
    tests/fuzz/run.sh --seconds 20 --seed 1 --build build/test-fuzz
else
    echo "== fuzz targets SKIPPED: clang not found (./deps.sh installs it)"
fi
