#!/usr/bin/python3
"""Trains a small MobileNetV2-style Fashion-MNIST model and exports models/fmnist_mobilenetv2.onnx.

Run with Debian's interpreter (python3-torch 1.13, python3-onnx 1.12):
    /usr/bin/python3 scripts/train_fmnist_mobilenet.py [--epochs 2]
    node tools/ort/eval_fmnist.js models/fmnist_mobilenetv2.onnx \
        --predictions models/fmnist_mobilenetv2.ort_predictions.txt

Model (raw pixels in [0, 1], [batch, 1, 28, 28] -> logits [batch, 10]), MobileNetV2's building
blocks at a small width for 28x28 inputs:
    Sub(mean) -> Div(std)                                   normalization inside the graph
    stem  Conv 3x3 1->16 -> BN -> ReLU6 (Clip 0..6)         28x28
    inverted residual blocks (expand t, out c, stride s):
        (t=1, c=16, s=2)                                     14x14
        (t=4, c=24, s=1) x2                                  14x14, second one with a residual Add
        (t=4, c=32, s=2) x2                                  7x7,   second one with a residual Add
        (t=4, c=64, s=1)                                     7x7
      each: [1x1 expand -> BN -> ReLU6] -> depthwise 3x3 -> BN -> ReLU6 -> 1x1 project -> BN
            (linear bottleneck: no activation after the projection), Add when stride 1 and c_in = c_out
    head  Conv 1x1 64->192 -> BN -> ReLU6 -> GlobalAveragePool -> Flatten -> Gemm 192->10
BatchNormalization stays a node in the export (qforge's BN-folding pass folds it). Opset 13.
Deterministic: fixed seed, deterministic algorithms, fixed thread count.
"""

import sys

import torch
import torch.nn as nn

from fmnist_train_util import parse_args, train_and_export
from train_fmnist_cnn import FMNIST_MEAN, FMNIST_STD


def conv_bn(c_in, c_out, k, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    if act:
        layers.append(nn.ReLU6())
    return layers


class InvertedResidual(nn.Module):
    def __init__(self, c_in, c_out, stride, expand):
        super().__init__()
        hidden = c_in * expand
        layers = []
        if expand != 1:
            layers += conv_bn(c_in, hidden, 1)                              # expand 1x1
        layers += conv_bn(hidden, hidden, 3, stride, groups=hidden)         # depthwise 3x3
        layers += conv_bn(hidden, c_out, 1, act=False)                      # linear bottleneck
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class FmnistMobileNetV2(nn.Module):
    # (expand t, out channels c, repeats n, first stride s), as in the MobileNetV2 paper's table.
    SETTINGS = [(1, 16, 1, 2), (4, 24, 2, 1), (4, 32, 2, 2), (4, 64, 1, 1)]

    def __init__(self, stem=16, head=192, classes=10):
        super().__init__()
        self.register_buffer("mean", torch.tensor([FMNIST_MEAN], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([FMNIST_STD], dtype=torch.float32))
        layers = conv_bn(1, stem, 3)
        c = stem
        for t, c_out, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(c, c_out, s if i == 0 else 1, t))
                c = c_out
        layers += conv_bn(c, head, 1)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(head, classes)

    def forward(self, x):  # x: [N,1,28,28] raw pixels in [0,1]
        x = (x - self.mean) / self.std
        x = self.features(x)                                 # [N,head,7,7]
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)                            # logits [N,10]


def main():
    args = parse_args(__doc__, epochs=2, lr=4e-3)
    acc = train_and_export("fmnist_mobilenetv2", FmnistMobileNetV2, args,
                           "MobileNetV2-style: stem 16, inverted residual blocks "
                           "(t,c,n,s)=" + str(FmnistMobileNetV2.SETTINGS) + ", head 192, ReLU6, GAP, Gemm",
                           expect_ops=["Conv", "BatchNormalization", "Clip", "Add", "GlobalAveragePool", "Gemm"])
    print(f"test top-1 {acc * 100:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
