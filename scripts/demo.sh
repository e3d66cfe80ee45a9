#!/usr/bin/env bash
# The main job on the bundled model: set-up, build, evaluate the fp32 model on the Fashion-MNIST
# test set, show how its weights fare in each number format, then quantize it every way qforge
# can (dynamic, weight-only, static PTQ, QAT) and print the results table: size, latency,
# accuracy per method (qforge compare), plus an HTML report.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
qf="$root/build/src/cli/qforge"
model="$root/models/fmnist_cnn.onnx"
echo
echo "== qforge info =="
"$qf" info "$model"
echo
echo "== qforge eval (fp32, Fashion-MNIST test set) =="
"$qf" eval "$model" --data fashion-mnist
echo
echo "== qforge formats (weight error per number format) =="
"$qf" formats "$model"
echo
out="$root/build/demo"
mkdir -p "$out"
echo "== qforge compare (fp32, dynamic int8, weight-only int4, static int8, QAT; Fashion-MNIST) =="
echo "   static: 1,000 calibration images; QAT: one short epoch (10,000 images, ste); latency:"
echo "   batch 1 and 32, 1 thread and all cores; accuracy on the 10,000 test images"
"$qf" compare "$model" --data fashion-mnist --methods fp32,dynamic,weight-only,static,qat \
  --keep-models "$out" --html "$out/report.html"
echo
echo "The quantized models are in $out; the report with charts is $out/report.html."
echo "Which layer hurts, and what to keep in fp32: $qf analyze $model --data fashion-mnist"
