#!/usr/bin/env bash
# Smoke checks that keep the main job and the benchmarks from rotting; timing is never asserted.
# Expects vecstore installed in the active Python environment. Runnable locally from the repo root.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m vecstore info
python3 -m vecstore demo --n 20000 --queries 200

python3 -m pip install --quiet ".[bench]"
VECSTORE_BENCH_SCALE=0.01 python3 -m pytest bench/ --benchmark-disable -q

# The C++ kernel parity test (every SIMD level of this CPU against serial, with guard pages), then
# the same test for aarch64 NEON, cross-compiled and run under qemu-user.
cmake -S . -B build/cpp-tests -DVECSTORE_BUILD_CPP_TESTS=ON -DVECSTORE_BUILD_PYTHON=OFF >/dev/null
cmake --build build/cpp-tests --parallel 2 >/dev/null
ctest --test-dir build/cpp-tests --output-on-failure
bash ci/check_neon.sh
