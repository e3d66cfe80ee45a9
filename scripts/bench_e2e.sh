#!/usr/bin/env bash
# End-to-end latency, qforge beside ONNX Runtime, in one run: for every (model, batch) the
# runtimes are measured back to back (same random inputs shape, single thread by default), and
# the table shows the medians and the ratios.
# Usage: scripts/bench_e2e.sh [--int8] [--json OUT.json] [MODEL.onnx ...]
#   fp32 (default): qforge fp32 vs ORT fp32; ratio = qforge / ORT (< 1: qforge is faster).
#   --int8: the model quantized statically by qforge (calibrated on 64 Fashion-MNIST images for
#     models/fmnist_*, else on the MODEL.sample_input.npy next to it; the speed does not depend
#     on the calibration data), qforge running its .qf beside ORT running fp32 and ORT running the same
#     quantization exported as a QDQ .onnx; speedups = ORT ms / qforge int8 ms (> 1: qforge is
#     faster). The quantized models are cached in QF_INT8_DIR (default /tmp/qforge_bench_int8;
#     delete it after changing the quantizer).
#   Default models: models/fmnist_cnn.onnx, models/large/resnet18.onnx, models/large/mobilenetv2.onnx
#   (make the large ones with: /usr/bin/python3 scripts/export_reference_models.py).
#   Env: QF_BIN (build/src/cli/qforge), QF_THREADS (1), QF_BATCHES ("1 32"), QF_RUNS (20; 10 for
#   batch >= 32 on models over 4 MB), QF_WARMUP (3), QF_ROUNDS (1: alternate the runtimes this
#   many times per case and keep each side's best median, which damps a noisy shared machine).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
qf="${QF_BIN:-$root/build/src/cli/qforge}"
int8=0
json_out=""
while (($#)); do
  case "$1" in
    --int8) int8=1; shift ;;
    --json) json_out="$2"; shift 2 ;;
    *) break ;;
  esac
done
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
qf_ms() { "$qf" bench "$1" --batch "$2" --threads "$threads" --warmup "$warmup" --runs "$3" --json | median; }
ort_ms() {
  node "$root/tools/ort/bench.js" "$1" --batch "$2" --threads "$threads" --warmup "$warmup" \
    --runs "$3" --json | median
}
minf() { node -e "console.log(Math.min(${1:-Infinity}, $2))"; }

# int8: M.qf and M.qdq.onnx of model $1 in QF_INT8_DIR, made once (calibrate + quantize static).
int8_dir="${QF_INT8_DIR:-/tmp/qforge_bench_int8}"
quantize() {
  local m="$1" name d calib data=fashion-mnist samples=64
  name=$(basename "$m" .onnx)
  d="$int8_dir/$name"
  if [ -f "$d/$name.qf" ] && [ -f "$d/$name.qdq.onnx" ]; then return; fi
  mkdir -p "$d/calib"
  if [[ "$name" != fmnist_* ]] && [ -f "${m%.onnx}.sample_input.npy" ]; then
    cp "${m%.onnx}.sample_input.npy" "$d/calib/0.npy"
    data="$d/calib" samples=1
  fi
  calib="$d/calib.json"
  "$qf" calibrate "$m" --data "$data" --samples "$samples" --out "$calib" >/dev/null
  "$qf" quantize "$m" --method static --calib "$calib" -o "$d/$name.qf" >/dev/null
  "$qf" quantize "$m" --method static --calib "$calib" -o "$d/$name.qdq.onnx" >/dev/null
}

rows=()
if ((int8)); then
  printf '%-22s %5s %14s %12s %12s %10s %10s\n' model batch "qf int8 ms" "ORT fp32 ms" \
    "ORT QDQ ms" "vs fp32" "vs QDQ" >&2
else
  printf '%-22s %5s %12s %12s %8s\n' model batch "qforge ms" "ORT ms" "ratio" >&2
fi
for m in "${models[@]}"; do
  [ -f "$m" ] || { echo "bench_e2e: $m not found" >&2; exit 1; }
  name=$(basename "$m" .onnx)
  if ((int8)); then quantize "$m"; fi
  for b in ${QF_BATCHES:-1 32}; do
    runs="${QF_RUNS:-20}"
    if [ "$b" -ge 32 ] && [ "$(stat -c %s "$m")" -gt 4000000 ] && [ "$runs" -gt 10 ]; then runs=10; fi
    if ((int8)); then
      best_q="" best_f="" best_d=""
      for ((r = 0; r < rounds; r++)); do
        best_q=$(minf "$best_q" "$(qf_ms "$int8_dir/$name/$name.qf" "$b" "$runs")")
        best_f=$(minf "$best_f" "$(ort_ms "$m" "$b" "$runs")")
        best_d=$(minf "$best_d" "$(ort_ms "$int8_dir/$name/$name.qdq.onnx" "$b" "$runs")")
      done
      vs_f=$(node -e "console.log(($best_f / $best_q).toFixed(2))")
      vs_d=$(node -e "console.log(($best_d / $best_q).toFixed(2))")
      printf '%-22s %5s %14.3f %12.3f %12.3f %9sx %9sx\n' "$name" "$b" "$best_q" "$best_f" \
        "$best_d" "$vs_f" "$vs_d"
      rows+=("{\"model\":\"$name\",\"batch\":$b,\"threads\":$threads,\"qforge_int8_ms\":$best_q,\"ort_fp32_ms\":$best_f,\"ort_qdq_ms\":$best_d,\"speedup_vs_ort_fp32\":$vs_f,\"speedup_vs_ort_qdq\":$vs_d}")
      continue
    fi
    best_q="" best_o=""
    for ((r = 0; r < rounds; r++)); do
      best_q=$(minf "$best_q" "$(qf_ms "$m" "$b" "$runs")")
      best_o=$(minf "$best_o" "$(ort_ms "$m" "$b" "$runs")")
    done
    ratio=$(node -e "console.log(($best_q / $best_o).toFixed(2))")
    printf '%-22s %5s %12.3f %12.3f %7sx\n' "$name" "$b" "$best_q" "$best_o" "$ratio"
    rows+=("{\"model\":\"$name\",\"batch\":$b,\"threads\":$threads,\"qforge_ms\":$best_q,\"ort_ms\":$best_o,\"ratio\":$ratio}")
  done
done
if [ -n "$json_out" ]; then
  tmp="$json_out.tmp.$$"
  (IFS=,; echo "[${rows[*]}]") >"$tmp" && mv "$tmp" "$json_out"
fi
