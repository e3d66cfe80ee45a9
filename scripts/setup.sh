#!/usr/bin/env bash
# Installs everything qforge needs on Debian 12 (idempotent, non-interactive).
# Usage: scripts/setup.sh            (build + test dependencies, datasets, ONNX Runtime)
#        QF_SKIP_NPM=1 scripts/setup.sh   (skip ONNX Runtime, the benchmark/oracle peer)
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  libonnx-dev libprotobuf-dev protobuf-compiler
  libcli11-dev nlohmann-json3-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libstb-dev libomp-dev zlib1g-dev libopenblas-dev
  chromium libjs-chart.js
  dataset-fashion-mnist libonnx-testdata
)

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# apt_install REQUIRED PKG... : installs the packages that are not installed yet.
apt_install() {
  local required=$1; shift
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    echo "setup: missing packages and not root. Run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/qforge-apt.log 2>&1; then
    tail -20 /tmp/qforge-apt.log >&2
    echo "setup: apt-get failed (log: /tmp/qforge-apt.log). Run by hand:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}

apt_install required "${PKGS[@]}" || exit 1

# ONNX Runtime (npm) is the oracle and speed anchor; tests that need it skip without it.
# Node.js + npm are checked by command, not by package: they may come from elsewhere
# (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${QF_SKIP_NPM:-0}" != 1 ]; then
  if ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
    apt_install optional nodejs npm || echo "setup: warning: Node.js/npm not installed; ORT comparisons will be skipped" >&2
  fi
  if command -v npm >/dev/null; then
    "$root/scripts/ort_setup.sh" || echo "setup: warning: ONNX Runtime not installed; ORT comparisons will be skipped" >&2
  fi
fi
echo "setup: ok"
