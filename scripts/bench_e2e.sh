#!/usr/bin/env bash
# End-to-end fp32 latency, qforge beside ONNX Runtime, in one run: for every (model, batch) the
# two are measured back to back (same random inputs shape, single thread by default), and the
# table shows both medians and the ratio qforge / ORT (< 1: qforge is faster).
# Usage: scripts/bench_e2e.sh [--json OUT.json] [MODEL.onnx ...]
#   Default models: models/fmnist_cnn.onnx, models/large/resnet18.onnx, models/large/mobilenetv2.onnx
#   (make the large ones with: /usr/bin/python3 scripts/export_reference_models.py).
#   Env: QF_BIN (build/src/cli/qforge), QF_THREADS (1), QF_BATCHES ("1 32"), QF_RUNS (20; 10 for
#   batch >= 32 on models over 4 MB), QF_WARMUP (3), QF_ROUNDS (1: alternate qforge/ORT this many
#   times per case and keep each side's best median, which damps a noisy shared machine).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
qf="${QF_BIN:-$root/build/src/cli/qforge}"
json_out=""
if [ "${1:-}" = "--json" ]; then json_out="$2"; shift 2; fi
models=("$@")
if ((${#models[@]} == 0)); then
  models=("$root/models/fmnist_cnn.onnx" "$root/models/large/resnet18.onnx" "$root/models/large/mobilenetv2.onnx")
fi
[ -x "$qf" ] || { echo "bench_e2e: $qf not built (scripts/build.sh)" >&2; exit 1; }
if ! (cd "$root/tools/ort" && node -e "require('onnxruntime-node')" >/dev/null 2>&1); then
  echo "bench_e2e: onnxruntime-node is not installed; run scripts/ort_setup.sh" >&2
  exit 1
fi

threads="${QF_THREADS:-1}"
warmup="${QF_WARMUP:-3}"
rounds="${QF_ROUNDS:-1}"
median() { node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(j.latency_ms.median)'; }
rows=()
printf '%-22s %5s %12s %12s %8s\n' model batch "qforge ms" "ORT ms" "ratio" >&2
for m in "${models[@]}"; do
  [ -f "$m" ] || { echo "bench_e2e: $m not found" >&2; exit 1; }
  for b in ${QF_BATCHES:-1 32}; do
    runs="${QF_RUNS:-20}"
    if [ "$b" -ge 32 ] && [ "$(stat -c %s "$m")" -gt 4000000 ] && [ "$runs" -gt 10 ]; then runs=10; fi
    best_q="" best_o=""
    for ((r = 0; r < rounds; r++)); do
      q=$("$qf" bench "$m" --batch "$b" --threads "$threads" --warmup "$warmup" --runs "$runs" --json | median)
      o=$(node "$root/tools/ort/bench.js" "$m" --batch "$b" --threads "$threads" --warmup "$warmup" \
            --runs "$runs" --json | median)
      best_q=$(node -e "console.log(Math.min(${best_q:-Infinity}, $q))")
      best_o=$(node -e "console.log(Math.min(${best_o:-Infinity}, $o))")
    done
    ratio=$(node -e "console.log(($best_q / $best_o).toFixed(2))")
    name=$(basename "$m" .onnx)
    printf '%-22s %5s %12.3f %12.3f %7sx\n' "$name" "$b" "$best_q" "$best_o" "$ratio"
    rows+=("{\"model\":\"$name\",\"batch\":$b,\"threads\":$threads,\"qforge_ms\":$best_q,\"ort_ms\":$best_o,\"ratio\":$ratio}")
  done
done
if [ -n "$json_out" ]; then
  tmp="$json_out.tmp.$$"
  (IFS=,; echo "[${rows[*]}]") >"$tmp" && mv "$tmp" "$json_out"
fi
