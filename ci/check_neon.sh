#!/usr/bin/env bash
# Cross-compiles the distance kernels and their parity test for aarch64 and runs the test under
# qemu-user, so the NEON kernels are checked on an x86-64 machine. Installs the cross toolchain and
# qemu (Debian packages) when they are missing. Exits with the test's status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CXX=aarch64-linux-gnu-g++
QEMU=qemu-aarch64

if ! command -v "$CXX" >/dev/null 2>&1 || ! command -v "$QEMU" >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y g++-aarch64-linux-gnu qemu-user
fi

BUILD_DIR="$(mktemp -d)"
trap 'rm -rf "$BUILD_DIR"' EXIT
BIN="$BUILD_DIR/kernel_parity_test"

"$CXX" -std=c++17 -O2 -Wall -Wextra -DVECSTORE_HAVE_NEON_KERNELS -I cpp -static \
    cpp/common/cpu_features.cc \
    cpp/distance/dispatch.cc \
    cpp/distance/distance_serial.cc \
    cpp/distance/distance_neon.cc \
    cpp/tests/kernel_parity_test.cc \
    -o "$BIN"

status=0
"$QEMU" "$BIN" --require=neon || status=$?
exit "$status"
