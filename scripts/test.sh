#!/usr/bin/env bash
# The test command: set-up, build, then every test. Slow suites (label "slow") run too;
# pass --fast to skip them while iterating. Usage: scripts/test.sh [--fast] [BUILD_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fast=0
if [ "${1:-}" = "--fast" ]; then fast=1; shift; fi
dir="${1:-$root/build}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$dir"
args=(--test-dir "$dir" --output-on-failure -j"$(nproc)" --timeout 900)
[ $fast = 1 ] && args+=(-LE slow)
exec ctest "${args[@]}"
