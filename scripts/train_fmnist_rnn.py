#!/usr/bin/python3
"""Trains a one-layer LSTM (or GRU) classifier on Fashion-MNIST and exports models/fmnist_lstm.onnx.

Run with Debian's interpreter (python3-torch 1.13, python3-onnx 1.12):
    /usr/bin/python3 scripts/train_fmnist_rnn.py [--cell lstm|gru] [--epochs 2]
    node tools/ort/eval_fmnist.js models/fmnist_lstm.onnx --predictions models/fmnist_lstm.ort_predictions.txt

Model (raw pixels in [0, 1], [batch, 1, 28, 28] -> logits [batch, 10]):
    Sub(mean) -> Div(std) -> Reshape [batch, 28, 28] (the 28 image rows are 28 time steps of 28
    pixels) -> LSTM (or GRU) hidden 128, one layer, forward -> last hidden state -> Gemm 128->10
The recurrent model for dynamic quantization of LSTM / GRU weights (issue 4). Opset 13.
Deterministic: fixed seed, deterministic algorithms, fixed thread count.
"""

import sys

import torch
import torch.nn as nn

from fmnist_train_util import parse_args, train_and_export
from train_fmnist_cnn import FMNIST_MEAN, FMNIST_STD


def make_model(cell, hidden=128, classes=10):
    class FmnistRnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor([FMNIST_MEAN], dtype=torch.float32))
            self.register_buffer("std", torch.tensor([FMNIST_STD], dtype=torch.float32))
            rnn = nn.LSTM if cell == "lstm" else nn.GRU
            self.rnn = rnn(input_size=28, hidden_size=hidden, num_layers=1, batch_first=True)
            self.fc = nn.Linear(hidden, classes)

        def forward(self, x):  # x: [N,1,28,28] raw pixels in [0,1]
            x = ((x - self.mean) / self.std).reshape(-1, 28, 28)  # [N, T=28, 28]
            _, h = self.rnn(x)
            h = h[0] if cell == "lstm" else h  # h_n: [1, N, hidden]
            return self.fc(h[0])  # logits [N,10]

    return FmnistRnn


def main():
    cell = "lstm"
    if "--cell" in sys.argv:
        i = sys.argv.index("--cell")
        cell = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    if cell not in ("lstm", "gru"):
        raise SystemExit("--cell must be lstm or gru")
    args = parse_args(__doc__, epochs=2, lr=3e-3)
    acc = train_and_export(f"fmnist_{cell}", make_model(cell), args,
                           f"{cell.upper()} 28 steps x 28 pixels, hidden 128, one layer -> Linear 128->10",
                           expect_ops=[cell.upper(), "Gemm"])
    print(f"test top-1 {acc * 100:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
