#!/usr/bin/python3
"""Trains a 3-layer MLP on Fashion-MNIST and exports models/fmnist_mlp.onnx.

Run with Debian's interpreter (python3-torch 1.13, python3-onnx 1.12):
    /usr/bin/python3 scripts/train_fmnist_mlp.py [--epochs 8]
    node tools/ort/eval_fmnist.js models/fmnist_mlp.onnx --predictions models/fmnist_mlp.ort_predictions.txt

Model (raw pixels in [0, 1], [batch, 1, 28, 28] -> logits [batch, 10]):
    Sub(mean) -> Div(std) -> Flatten -> Gemm 784->256 -> Relu -> Gemm 256->128 -> Relu -> Gemm 128->10
The Linear-heavy model for dynamic and weight-only quantization (issue 4). Opset 13.
Deterministic: fixed seed, deterministic algorithms, fixed thread count.
"""

import sys

import torch
import torch.nn as nn

from fmnist_train_util import parse_args, train_and_export
from train_fmnist_cnn import FMNIST_MEAN, FMNIST_STD


class FmnistMlp(nn.Module):
    def __init__(self, hidden=(256, 128), classes=10):
        super().__init__()
        self.register_buffer("mean", torch.tensor([FMNIST_MEAN], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([FMNIST_STD], dtype=torch.float32))
        self.fc1 = nn.Linear(28 * 28, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], classes)

    def forward(self, x):  # x: [N,1,28,28] raw pixels in [0,1]
        x = torch.flatten((x - self.mean) / self.std, 1)  # [N,784]
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)  # logits [N,10]


def main():
    args = parse_args(__doc__, epochs=8, lr=2e-3)
    acc = train_and_export("fmnist_mlp", FmnistMlp, args, "MLP 784-256-128-10, ReLU",
                           expect_ops=["Gemm", "Relu", "Flatten"])
    print(f"test top-1 {acc * 100:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
