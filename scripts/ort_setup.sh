#!/usr/bin/env bash
# Installs ONNX Runtime for Node (onnxruntime-node, CPU) into tools/ort; idempotent, non-interactive.
# ONNX Runtime is qforge's oracle and speed anchor (tools/ort/*.js). The package's install
# script only fetches GPU (CUDA/TensorRT) binaries, so it is skipped: the Linux x64 CPU
# library ships inside the npm tarball.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/tools/ort"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "ort_setup: node and npm are needed for ONNX Runtime. Install them with:" >&2
  echo "  apt-get install -y nodejs npm" >&2
  exit 1
fi

loads() { (cd "$dir" && node -e "require('onnxruntime-node')" >/dev/null 2>&1); }

want="$(cd "$dir" && node -p "require('./package.json').dependencies['onnxruntime-node']")"
have="$(cd "$dir" && node -p "try { require('onnxruntime-node/package.json').version } catch (e) { '' }" 2>/dev/null || true)"
if [ "$have" = "$want" ] && loads; then
  echo "ort_setup: onnxruntime-node $have already installed in tools/ort"
  exit 0
fi

echo "ort_setup: installing onnxruntime-node $want into tools/ort (npm, --ignore-scripts)"
log="$(mktemp /tmp/qforge-npm.XXXXXX.log)"
# npm ci uses the committed lock file when it is there; fall back to npm install without it.
if [ -f "$dir/package-lock.json" ]; then cmd=(npm ci); else cmd=(npm install); fi
if ! (cd "$dir" && "${cmd[@]}" --ignore-scripts --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "ort_setup: '${cmd[*]} --ignore-scripts' failed in $dir (log: $log)." >&2
  echo "  It needs the npm registry (network). Retry by hand: cd tools/ort && ${cmd[*]} --ignore-scripts" >&2
  exit 1
fi
if ! loads; then
  (cd "$dir" && node -e "require('onnxruntime-node')") >&2 || true
  echo "ort_setup: onnxruntime-node installed but its native library does not load (see above)" >&2
  exit 1
fi
rm -f "$log"
echo "ort_setup: onnxruntime-node $(cd "$dir" && node -p "require('onnxruntime-node/package.json').version") ready in tools/ort"
