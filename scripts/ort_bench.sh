#!/usr/bin/env bash
# ONNX Runtime fp32 latency of the bundled and reference models (batch 1 and 32, one thread).
# Usage: scripts/ort_bench.sh [--json] [MODEL.onnx ...]
#   Default models: models/fmnist_cnn.onnx, models/large/resnet18.onnx, models/large/mobilenetv2.onnx
#   (make the large ones with: /usr/bin/python3 scripts/export_reference_models.py).
#   Env: QF_ORT_THREADS (1), QF_ORT_BATCHES ("1 32"), QF_ORT_WARMUP (3), QF_ORT_RUNS (20;
#   runs are capped at 10 for batch >= 32 on the 224x224 models to keep the run short).
# Prints bench.js's report per (model, batch); --json prints its JSON objects (qforge bench's fields).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
json=()
if [ "${1:-}" = "--json" ]; then json=(--json); shift; fi
models=("$@")
if ((${#models[@]} == 0)); then
  models=("$root/models/fmnist_cnn.onnx" "$root/models/large/resnet18.onnx" "$root/models/large/mobilenetv2.onnx")
fi
if ! (cd "$root/tools/ort" && node -e "require('onnxruntime-node')" >/dev/null 2>&1); then
  echo "ort_bench: onnxruntime-node is not installed; run scripts/ort_setup.sh" >&2
  exit 1
fi

threads="${QF_ORT_THREADS:-1}"
warmup="${QF_ORT_WARMUP:-3}"
for m in "${models[@]}"; do
  if [ ! -f "$m" ]; then
    echo "ort_bench: $m not found (reference models: /usr/bin/python3 scripts/export_reference_models.py)" >&2
    exit 1
  fi
  for b in ${QF_ORT_BATCHES:-1 32}; do
    runs="${QF_ORT_RUNS:-20}"
    size=$(stat -c %s "$m")
    if [ "$b" -ge 32 ] && [ "$size" -gt 4000000 ] && [ "$runs" -gt 10 ]; then runs=10; fi
    node "$root/tools/ort/bench.js" "$m" --batch "$b" --threads "$threads" --warmup "$warmup" \
      --runs "$runs" "${json[@]}"
  done
done
