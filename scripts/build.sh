#!/usr/bin/env bash
# Configures and builds qforge. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/build}"; shift || true
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="${QF_BUILD_TYPE:-Release}" "$@" >/dev/null
ninja -C "$dir" -j"${QF_JOBS:-$(nproc)}"
