#!/usr/bin/env bash
# The main job on the bundled model: set-up, build, evaluate the fp32 model on the Fashion-MNIST
# test set, show how its weights fare in each number format, then quantize it statically
# (calibrate on 1,000 training images, int8 per-channel) and compare accuracy, size and speed.
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
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo
echo "== qforge calibrate (1,000 training images, minmax) =="
"$qf" calibrate "$model" --data fashion-mnist --samples 1000 --method minmax --out "$out/calib.json"
echo
echo "== qforge quantize (static int8, per-channel weights) =="
"$qf" quantize "$model" --method static --calib "$out/calib.json" -o "$out/fmnist_cnn.qf" \
  --data fashion-mnist --samples 200
echo
echo "== qforge eval (int8, Fashion-MNIST test set) =="
"$qf" eval "$out/fmnist_cnn.qf" --data fashion-mnist
echo
echo "== qforge bench (fp32 then int8; batch 1 and 32, 1 thread) =="
for m in "$model" "$out/fmnist_cnn.qf"; do
  "$qf" bench "$m" --batch 1 --threads 1
  "$qf" bench "$m" --batch 32 --threads 1
done
