#!/usr/bin/env bash
# Checks beyond the README's test command: lint, the slow crash harness, the main job, the
# benchmarks at a tiny scale (timing is never asserted), and the C++ kernel parity tests (native,
# and aarch64 NEON under qemu). Expects vecstore installed in the active Python environment.
# Runnable locally from the repo root.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet ruff
python3 -m ruff check python tests bench

# The 200+ SIGKILL crash run (a few minutes).
python3 -m pytest -m slow tests/crash -q

python3 -m vecstore info
python3 -m vecstore demo --n 20000 --queries 200

python3 -m pip install --quiet ".[bench]"
VECSTORE_BENCH_SCALE=0.01 python3 -m pytest bench/ --benchmark-disable -q

cmake -S . -B build/cpp-tests -DVECSTORE_BUILD_CPP_TESTS=ON -DVECSTORE_BUILD_PYTHON=OFF >/dev/null
cmake --build build/cpp-tests --parallel 2 >/dev/null
ctest --test-dir build/cpp-tests --output-on-failure
bash ci/check_neon.sh
