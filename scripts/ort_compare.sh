#!/usr/bin/env bash
# qforge beside ONNX Runtime: fp32 latency side by side (batch 1 and 32, one thread) and
# Fashion-MNIST predicted-class agreement on the bundled model.
# Usage: scripts/ort_compare.sh [QFORGE_BIN]     (default: build/src/cli/qforge)
#   Env: QF_COMPARE_ROUNDS (2), QF_COMPARE_MIN_TIME (1.0 s), QF_COMPARE_SKIP_EVAL=1.
#   Uses models/large/{resnet18,mobilenetv2}.onnx when present
#   (make them with: /usr/bin/python3 scripts/export_reference_models.py).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
qf="${1:-$root/build/src/cli/qforge}"
if [ ! -x "$qf" ]; then
  echo "ort_compare: $qf not found; build qforge first (scripts/build.sh)" >&2
  exit 1
fi
if ! (cd "$root/tools/ort" && node -e "require('onnxruntime-node')" >/dev/null 2>&1); then
  echo "ort_compare: onnxruntime-node is not installed; run scripts/ort_setup.sh" >&2
  exit 1
fi

models=("$root/models/fmnist_cnn.onnx")
for m in resnet18 mobilenetv2; do
  if [ -f "$root/models/large/$m.onnx" ]; then
    models+=("$root/models/large/$m.onnx")
  else
    echo "ort_compare: skipping $m (models/large/$m.onnx missing; see scripts/export_reference_models.py)" >&2
  fi
done

if [ "${QF_COMPARE_SKIP_EVAL:-0}" != 1 ]; then
  tmp="$(mktemp -d /tmp/qforge-compare.XXXXXX)"
  trap 'rm -rf "$tmp"' EXIT
  if ! "$qf" eval "$root/models/fmnist_cnn.onnx" --data fashion-mnist --predictions "$tmp/qforge.txt" \
      --json >"$tmp/qforge.json" 2>"$tmp/qforge.err"; then
    tail -1 "$tmp/qforge.err" >&2
    echo "ort_compare: qforge eval failed" >&2
    exit 1
  fi
  node "$root/tools/ort/eval_fmnist.js" "$root/models/fmnist_cnn.onnx" --predictions "$tmp/ort.txt"
  differ=$(paste -d' ' "$tmp/qforge.txt" "$tmp/ort.txt" | awk '$1 != $2' | wc -l)
  total=$(wc -l <"$tmp/ort.txt")
  top1=$(node -p "(100 * require('$tmp/qforge.json').top1).toFixed(2)")
  echo "qforge fmnist_cnn.onnx  Fashion-MNIST test: top-1 $top1%"
  echo "predicted class: qforge and ONNX Runtime differ on $differ of $total test images"
  echo
fi

node "$root/tools/ort/compare.js" --qforge "$qf" "${models[@]}" --threads 1 \
  --rounds "${QF_COMPARE_ROUNDS:-2}" --min-time "${QF_COMPARE_MIN_TIME:-1.0}"
