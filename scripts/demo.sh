#!/usr/bin/env bash
# The main job on the bundled model: set-up, build, then evaluate the fp32 model on the
# Fashion-MNIST test set and show how its weights fare in each number format.
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
echo "== qforge bench (batch 1 and 32, 1 thread) =="
"$qf" bench "$model" --batch 1 --threads 1
"$qf" bench "$model" --batch 32 --threads 1
