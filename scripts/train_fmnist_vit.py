#!/usr/bin/python3
"""Trains a small vision transformer on Fashion-MNIST and exports models/fmnist_vit.onnx.

Run with Debian's interpreter (python3-torch 1.13, python3-onnx 1.12):
    /usr/bin/python3 scripts/train_fmnist_vit.py [--epochs 5]
    node tools/ort/eval_fmnist.js models/fmnist_vit.onnx --predictions models/fmnist_vit.ort_predictions.txt

Model (raw pixels in [0, 1], [batch, 1, 28, 28] -> logits [batch, 10]), pre-norm ViT:
    Sub(mean) -> Div(std)                                  normalization inside the graph
    patches   Conv 7x7 stride 7, 1->64 -> Reshape/Transpose -> 16 tokens [N,16,64] + position embedding
    2 x encoder layer (pre-norm):
        x = x + Wo(MHSA(LayerNorm(x)))     4 heads of 16, attention written out with MatMul/Softmax
        x = x + W2(GELU(W1(LayerNorm(x)))) 64 -> 128 -> 64, GELU exported as Erf
    LayerNorm -> mean over tokens (ReduceMean) -> Gemm 64->10
Attention is written out (not nn.MultiheadAttention) so the export is plain MatMul, Reshape,
Transpose, Softmax, Mul, Add. Opset 17: LayerNorm exports as LayerNormalization.
Deterministic: fixed seed, deterministic algorithms, fixed thread count.
"""

import math
import sys

import torch
import torch.nn as nn

from fmnist_train_util import parse_args, train_and_export
from train_fmnist_cnn import FMNIST_MEAN, FMNIST_STD


class Attention(nn.Module):
    def __init__(self, dim, tokens, heads):
        super().__init__()
        self.heads, self.tokens, self.dim = heads, tokens, dim
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # x: [N,T,D]
        # Python-int shapes (batch as -1) export as constant Reshape targets, not Shape/Gather chains.
        t, d, h = self.tokens, self.dim, self.heads
        qkv = self.qkv(x).reshape(-1, t, 3, h, d // h).permute(2, 0, 3, 1, 4)  # [3,N,H,T,D/H]
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(-1, t, d)  # [N,T,D]
        return self.proj(y)


class EncoderLayer(nn.Module):
    def __init__(self, dim, tokens, heads, mlp):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, tokens, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))


class FmnistViT(nn.Module):
    def __init__(self, patch=7, dim=64, heads=4, mlp=128, depth=2, classes=10):
        super().__init__()
        self.register_buffer("mean", torch.tensor([FMNIST_MEAN], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([FMNIST_STD], dtype=torch.float32))
        tokens = (28 // patch) ** 2
        self.dim, self.tokens = dim, tokens
        self.patch = nn.Conv2d(1, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.layers = nn.ModuleList([EncoderLayer(dim, tokens, heads, mlp) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):  # x: [N,1,28,28] raw pixels in [0,1]
        x = (x - self.mean) / self.std
        x = self.patch(x)                                  # [N,D,4,4]
        x = x.reshape(-1, self.dim, self.tokens).transpose(1, 2) + self.pos  # [N,16,D]
        for layer in self.layers:
            x = layer(x)
        x = self.ln(x).mean(dim=1)                         # [N,D]
        return self.head(x)                                # logits [N,10]


def main():
    args = parse_args(__doc__, epochs=5, lr=2e-3, opset=17)
    acc = train_and_export("fmnist_vit", FmnistViT, args,
                           "ViT: 7x7 patches -> 16 tokens of 64, 2 pre-norm encoder layers "
                           "(4-head self-attention, LayerNorm, GELU MLP 128), mean pooling, Gemm",
                           expect_ops=["LayerNormalization", "Softmax", "MatMul", "Erf"],
                           weight_decay=0.05)
    print(f"test top-1 {acc * 100:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
