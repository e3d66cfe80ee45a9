#!/usr/bin/env bash
# Reproduces the README's QAT results table: runs `qforge qat` for every model x estimator x
# bits (x distillation) configuration listed below, keeps each run's log, command and JSON
# summary, and writes the table (results.md) and all summaries (results.json).
#
# Usage:
#   scripts/qat_results.sh              run every configuration not yet done, then the table
#   scripts/qat_results.sh run NAME...  run these configurations (even if done before)
#   scripts/qat_results.sh list         the configuration names
#   scripts/qat_results.sh table        only (re)write results.md / results.json from the runs
# Environment:
#   QFORGE   the qforge binary       (default: build/src/cli/qforge)
#   OUT      where runs are written  (default: /tmp/qat_runs)
#   THREADS  --threads of every run  (default: 1; the table reports it)
#
# results/qat/ holds a copy of the .cmd / .log / .json files and results.md of the runs in the
# README (OUT=/tmp/qat_runs, copied after the runs; the .qf models are not kept).
# Each run: OUT/NAME.cmd (the exact command), OUT/NAME.log (stdout + stderr), OUT/NAME.json
# (`qforge qat --json`: settings, fp32 / static PTQ (W8A8, from the same calibration table, also
# in the W4 rows: qforge quantize has no 4-bit static PTQ) / fake-quant / integer accuracy on all
# 10 000 test images, agreement, wall times). Runs take minutes each (the
# MobileNetV2 ones much longer: depthwise backward is slow); a run already done is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
QFORGE=${QFORGE:-build/src/cli/qforge}
OUT=${OUT:-/tmp/qat_runs}
THREADS=${THREADS:-1}

# NAME  MODEL  ESTIMATOR  BITS_W  DISTILL  EPOCHS  IMAGES_PER_EPOCH  LR  OPTIMIZER  [EXTRA FLAGS]
# DISTILL is --distill-weight: 0 labels only, 1 label-free distillation (--distill), between: the
# mix W * KL + (1 - W) * cross-entropy. EXTRA FLAGS go to qforge qat as they are (e.g.
# --val-images N: held-out checkpoint selection; --freeze-bn-step N).
# Every run: batch 64, 1000 minmax calibration images (seed 1), activations 8 bit, AdamW with
# cosine decay (sgd: momentum 0.9), no weight decay, observers frozen at the calibrated ranges; the images of an
# epoch are the first IMAGES_PER_EPOCH of a fresh shuffle of all 60 000 training images (60000:
# the full epoch; the smaller subsets because CPU time was scarce; accuracy is always on all
# 10 000 test images).
# Learning rates: W8 3e-5 (about 1% of the rate the fp32 models were trained with, 3e-3 / 4e-3:
# a short fine-tune that stays near the calibrated starting point); W4 3e-4 (more to recover).
# Runs are listed in the order they matter (a partial table is still useful).
# rec_*: the documented default W8A8 recipe (docs/training.md, "The W8A8 recipe"): label-free
# distillation toward the fp32 model (--distill), AdamW --lr 1e-5 with cosine decay, 1 epoch of
# 12 800 images (3 200 for MobileNetV2), every estimator, several seeds (--seed also draws the
# calibration images, so each seed has its own static PTQ baseline).
CONFIGS=$(cat <<'EOF'
cnn_w8_ste_distill   models/fmnist_cnn.onnx          ste  8 1 1 12800 3e-5  adamw
cnn_w8_ste           models/fmnist_cnn.onnx          ste  8 0 1 12800 3e-5  adamw
cnn_w4_ste           models/fmnist_cnn.onnx          ste  4 0 1 12800 3e-4  adamw
cnn_w8_lsq_distill   models/fmnist_cnn.onnx          lsq  8 1 1 12800 3e-5  adamw
cnn_w8_soft_distill  models/fmnist_cnn.onnx          soft 8 1 1 12800 3e-5  adamw
cnn_w4_lsq           models/fmnist_cnn.onnx          lsq  4 0 1 12800 3e-4  adamw
cnn_w4_soft          models/fmnist_cnn.onnx          soft 4 0 1 12800 3e-4  adamw
cnn_w4_ste_distill   models/fmnist_cnn.onnx          ste  4 1 1 12800 3e-4  adamw
cnn_w8_lsq           models/fmnist_cnn.onnx          lsq  8 0 1 12800 3e-5  adamw
cnn_w8_soft          models/fmnist_cnn.onnx          soft 8 0 1 12800 3e-5  adamw
cnn_w8_ste_sgd       models/fmnist_cnn.onnx          ste  8 0 1 12800 1e-3  sgd
cnn_w8_ste_full      models/fmnist_cnn.onnx          ste  8 0 1 60000 3e-5  adamw
cnn_w8_lsq_full      models/fmnist_cnn.onnx          lsq  8 0 1 60000 3e-5  adamw
cnn_w8_soft_full     models/fmnist_cnn.onnx          soft 8 0 1 60000 3e-5  adamw
cnn_w8_lsq_mix_val   models/fmnist_cnn.onnx          lsq  8 0.5 1 12800 3e-5 adamw --val-images 5000
cnn_w8_soft_mix_val  models/fmnist_cnn.onnx          soft 8 0.5 1 12800 3e-5 adamw --val-images 5000
rec_cnn_w8_ste_s1    models/fmnist_cnn.onnx          ste  8 1 1 12800 1e-5  adamw --seed 1
rec_cnn_w8_lsq_s1    models/fmnist_cnn.onnx          lsq  8 1 1 12800 1e-5  adamw --seed 1
rec_cnn_w8_soft_s1   models/fmnist_cnn.onnx          soft 8 1 1 12800 1e-5  adamw --seed 1
rec_cnn_w8_ste_s2    models/fmnist_cnn.onnx          ste  8 1 1 12800 1e-5  adamw --seed 2
rec_cnn_w8_lsq_s2    models/fmnist_cnn.onnx          lsq  8 1 1 12800 1e-5  adamw --seed 2
rec_cnn_w8_soft_s2   models/fmnist_cnn.onnx          soft 8 1 1 12800 1e-5  adamw --seed 2
rec_cnn_w8_ste_s3    models/fmnist_cnn.onnx          ste  8 1 1 12800 1e-5  adamw --seed 3
rec_cnn_w8_lsq_s3    models/fmnist_cnn.onnx          lsq  8 1 1 12800 1e-5  adamw --seed 3
rec_cnn_w8_soft_s3   models/fmnist_cnn.onnx          soft 8 1 1 12800 1e-5  adamw --seed 3
rec_cnn_w8_ste_s4    models/fmnist_cnn.onnx          ste  8 1 1 12800 1e-5  adamw --seed 4
rec_cnn_w8_lsq_s4    models/fmnist_cnn.onnx          lsq  8 1 1 12800 1e-5  adamw --seed 4
rec_cnn_w8_soft_s4   models/fmnist_cnn.onnx          soft 8 1 1 12800 1e-5  adamw --seed 4
rec_cnn_w8_ste_full  models/fmnist_cnn.onnx          ste  8 1 1 60000 1e-5  adamw --seed 1
rec_cnn_w8_lsq_full  models/fmnist_cnn.onnx          lsq  8 1 1 60000 1e-5  adamw --seed 1
rec_cnn_w8_soft_full models/fmnist_cnn.onnx          soft 8 1 1 60000 1e-5  adamw --seed 1
cnn_w8_ste_bn100     models/fmnist_cnn.onnx          ste  8 0 1 12800 3e-5  adamw --freeze-bn-step 100
rec_mbv2_w8_ste_s1   models/fmnist_mobilenetv2.onnx  ste  8 1 1 3200  1e-5  adamw --seed 1
rec_mbv2_w8_lsq_s1   models/fmnist_mobilenetv2.onnx  lsq  8 1 1 3200  1e-5  adamw --seed 1
rec_mbv2_w8_soft_s1  models/fmnist_mobilenetv2.onnx  soft 8 1 1 3200  1e-5  adamw --seed 1
rec_mbv2_w8_ste_s2   models/fmnist_mobilenetv2.onnx  ste  8 1 1 3200  1e-5  adamw --seed 2
rec_mbv2_w8_lsq_s2   models/fmnist_mobilenetv2.onnx  lsq  8 1 1 3200  1e-5  adamw --seed 2
rec_mbv2_w8_soft_s2  models/fmnist_mobilenetv2.onnx  soft 8 1 1 3200  1e-5  adamw --seed 2
mbv2_w8_ste          models/fmnist_mobilenetv2.onnx  ste  8 0 1 3200  3e-5  adamw
mbv2_w8_ste_distill  models/fmnist_mobilenetv2.onnx  ste  8 1 1 3200  3e-5  adamw
mbv2_w4_ste          models/fmnist_mobilenetv2.onnx  ste  4 0 1 3200  3e-4  adamw
mbv2_w8_lsq          models/fmnist_mobilenetv2.onnx  lsq  8 0 1 3200  3e-5  adamw
mbv2_w8_soft         models/fmnist_mobilenetv2.onnx  soft 8 0 1 3200  3e-5  adamw
mbv2_w4_lsq          models/fmnist_mobilenetv2.onnx  lsq  4 0 1 3200  3e-4  adamw
mbv2_w4_soft         models/fmnist_mobilenetv2.onnx  soft 4 0 1 3200  3e-4  adamw
EOF
)

config_line() { awk -v n="$1" '$1 == n' <<<"$CONFIGS"; }

run_one() {
  local line
  line=$(config_line "$1")
  [[ -n "$line" ]] || { echo "qat_results.sh: unknown configuration '$1'" >&2; exit 2; }
  local name model est bits distill epochs limit lr opt extra
  read -r name model est bits distill epochs limit lr opt extra <<<"$line"
  local cmd=("$QFORGE" qat "$model" --data fashion-mnist --epochs "$epochs" --limit "$limit"
    --estimator "$est" --bits-w "$bits" --bits-a 8 --optimizer "$opt" --lr "$lr" --threads "$THREADS"
    -o "$OUT/$name.qf" --json "$OUT/$name.json")
  if [[ "$distill" == 1 ]]; then
    cmd+=(--distill)
  elif [[ "$distill" != 0 ]]; then
    cmd+=(--distill-weight "$distill")
  fi
  # shellcheck disable=SC2206  # EXTRA FLAGS are words
  [[ -n "$extra" ]] && cmd+=($extra)
  echo "${cmd[*]}" >"$OUT/$name.cmd"
  # The binary's commit (of the source tree it was run from) and the machine load, for the table's notes.
  echo "# source tree $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/$name.cmd"
  echo "== $name: ${cmd[*]}" >&2
  "${cmd[@]}" >"$OUT/$name.log" 2>&1 || { echo "qat_results.sh: $name failed, see $OUT/$name.log" >&2; return 1; }
  echo "# finished $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/$name.cmd"
  tail -n 4 "$OUT/$name.log" >&2
}

# One markdown table of the runs in a JSON array file.
render() {
  echo "| model | bits | estimator | loss | optimizer, lr | epochs x images | steps | selection | seed | threads | train s | total s | fp32 % | static PTQ W8A8 % | QAT % (integer) | vs fp32 | vs PTQ | agreement % |"
  echo "|---|---|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  jq -r '.[] | (.distill_weight // (if .distill then 1 else 0 end)) as $w | "| \(.model | sub(".*/"; "") | sub("\\.onnx$"; "")) | W\(.bits_w)A\(.bits_a) | \(.estimator) | \(if $w == 1 then "distill (no labels)" elif $w > 0 then "labels + distill \($w)" else "labels" end)\(if (.freeze_bn // 0) > 0 then ", BN stats until step \(.freeze_bn)" else "" end) | \(.optimizer) \(.lr) | \(.epochs) x \(.images_per_epoch) | \(.steps) | \(if (.val_images // 0) > 0 then "held-out \(.val_images): step \(.selected_step)" else "last step" end) | \(.seed) | \(.threads) | \(.train_seconds | floor) | \(.total_seconds | floor) | \(.fp32 * 100 | round / 100) | \(.ptq * 100 | round / 100) | \(.integer * 100 | round / 100) | \((.integer - .fp32) * 100 | round / 100) | \((.integer - .ptq) * 100 | round / 100) | \(.agreement * 100 | round / 100) |"' "$1"
}

# results.md: the recipe runs (rec_*) first, then every other configuration; results.json: all.
table() {
  local names
  names=$(awk '{print $1}' <<<"$CONFIGS")
  local files=() rec=() other=()
  for n in $names; do
    [[ -f "$OUT/$n.json" ]] || continue
    files+=("$OUT/$n.json")
    if [[ "$n" == rec_* ]]; then rec+=("$OUT/$n.json"); else other+=("$OUT/$n.json"); fi
  done
  [[ ${#files[@]} -gt 0 ]] || { echo "qat_results.sh: no runs in $OUT" >&2; exit 1; }
  jq -s '.' "${files[@]}" >"$OUT/results.json"
  {
    if [[ ${#rec[@]} -gt 0 ]]; then
      echo "The W8A8 recipe (\`rec_*\` runs; the three \"1 x 60000\" rows are the same flags on a full epoch, not the recipe):"
      echo
      jq -s '.' "${rec[@]}" >"$OUT/results_recipe.json"
      render "$OUT/results_recipe.json"
      echo
      echo "Every other configuration:"
      echo
    fi
    if [[ ${#other[@]} -gt 0 ]]; then
      jq -s '.' "${other[@]}" >"$OUT/results_other.json"
      render "$OUT/results_other.json"
    fi
  } >"$OUT/results.md"
  cat "$OUT/results.md"
}

mkdir -p "$OUT"
case "${1:-all}" in
  list) awk '{print $1}' <<<"$CONFIGS" ;;
  table) table ;;
  run)
    shift
    for n in "$@"; do run_one "$n"; done
    ;;
  all)
    for n in $(awk '{print $1}' <<<"$CONFIGS"); do
      [[ -f "$OUT/$n.json" ]] || run_one "$n"
    done
    table
    ;;
  *) echo "usage: $0 [all|run NAME...|list|table]" >&2; exit 2 ;;
esac
