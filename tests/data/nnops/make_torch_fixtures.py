#!/usr/bin/python3
"""Writes torch_fixtures.txt: PyTorch results for pooling (ceil_mode, count_include_pad,
dilation) and Resize-like interpolation, used by src/runtime/ops/nn_ops_test.cc.

Run with Debian's python3 (has torch): /usr/bin/python3 tests/data/nnops/make_torch_fixtures.py
Each case is one line: `<kind> <key=value ...> | <input shape> | <input values> | <output shape>
| <output values>` with values printed with 9 significant digits (round-trips float32).
"""
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
lines = []


def fmt(t):
    return " ".join("%.9g" % v for v in t.flatten().tolist())


def shape(t):
    return " ".join(str(d) for d in t.shape)


def emit(kind, attrs, x, y):
    a = " ".join("%s=%s" % kv for kv in attrs.items())
    lines.append("%s %s | %s | %s | %s | %s" % (kind, a, shape(x), fmt(x), shape(y), fmt(y)))


for h, w in [(5, 5), (6, 7), (7, 4)]:
    x = torch.randn(1, 2, h, w)
    for k in (2, 3):
        for s in (1, 2, 3):
            for p in range(0, k // 2 + 1):
                for ceil in (0, 1):
                    for cip in (0, 1):
                        y = F.avg_pool2d(x, k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(cip))
                        emit("AveragePool", dict(k=k, s=s, p=p, d=1, ceil=ceil, cip=cip), x, y)
                    for d in (1, 2):
                        if (k - 1) * d + 1 > h + 2 * p or (k - 1) * d + 1 > w + 2 * p:
                            continue
                        y = F.max_pool2d(x, k, s, p, dilation=d, ceil_mode=bool(ceil))
                        emit("MaxPool", dict(k=k, s=s, p=p, d=d, ceil=ceil, cip=0), x, y)

# Resize: torch's bilinear / nearest / bicubic match ONNX modes as follows.
x = torch.randn(1, 2, 4, 5)
for size in [(8, 10), (3, 7), (6, 3)]:
    y = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    emit("Resize", dict(mode="linear", coord="pytorch_half_pixel"), x, y)
    y = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    emit("Resize", dict(mode="linear", coord="align_corners"), x, y)
    y = F.interpolate(x, size=size, mode="nearest")
    emit("Resize", dict(mode="nearest", coord="asymmetric", nearest="floor"), x, y)
    y = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
    emit("Resize", dict(mode="cubic", coord="pytorch_half_pixel", a="-0.75"), x, y)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_fixtures.txt")
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
print("wrote %d cases to %s" % (len(lines), out))
