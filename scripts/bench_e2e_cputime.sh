#!/usr/bin/env bash
# fp32 end-to-end CPU time per run, qforge beside ONNX Runtime (single thread): on a machine
# shared with other work, wall-clock medians swing with the scheduler; CPU time does much less.
# Each side runs twice (1 and 1 + R timed runs, one warm-up each) under GNU time, and the
# difference of user + sys CPU seconds divided by R is the per-run cost (model loading and
# weight packing cancel out).
# Usage: scripts/bench_e2e_cputime.sh MODEL.onnx BATCH R     Env: QF_BIN (build/src/cli/qforge)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
qf="${QF_BIN:-$root/build/src/cli/qforge}"
[ $# -eq 3 ] || { echo "usage: $0 MODEL.onnx BATCH R" >&2; exit 1; }
m=$1 b=$2 r=$3
[ -x /usr/bin/time ] || { echo "bench_e2e_cputime: needs GNU time (apt-get install time)" >&2; exit 1; }
[ -x "$qf" ] || { echo "bench_e2e_cputime: $qf not built" >&2; exit 1; }
[ -f "$m" ] || { echo "bench_e2e_cputime: $m not found" >&2; exit 1; }
cpu() { /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'; }
qf_run() { cpu env OMP_NUM_THREADS=1 "$qf" bench "$m" --batch "$b" --threads 1 --warmup 1 --runs "$1" --json; }
ort_run() { cpu node "$root/tools/ort/bench.js" "$m" --batch "$b" --threads 1 --warmup 1 --runs "$1" --json; }
q1=$(qf_run 1) q2=$(qf_run $((1 + r)))
o1=$(ort_run 1) o2=$(ort_run $((1 + r)))
node -e "const q = ($q2 - $q1) / $r * 1000, o = ($o2 - $o1) / $r * 1000;
console.log('$(basename "$m" .onnx) batch $b: qforge ' + q.toFixed(1) + ' ms, ORT ' + o.toFixed(1) +
            ' ms CPU per run, ratio ' + (q / o).toFixed(2))"
