#!/usr/bin/python3
"""Trains qforge's bundled Fashion-MNIST CNN and exports it to models/fmnist_cnn.onnx.

Run with Debian's interpreter (it has python3-torch 1.13 and python3-onnx):
    /usr/bin/python3 scripts/train_fmnist_cnn.py [--epochs 5] [--seed 0] [--out-dir models]

Model (takes raw pixels in [0, 1], shape [batch, 1, 28, 28], returns logits [batch, 10]):
    Sub(mean) -> Div(std)                      normalization inside the graph
    Conv(1->16, 3x3, pad 1) -> BN -> ReLU -> MaxPool 2x2
    Conv(16->32, 3x3, pad 1) -> BN -> ReLU -> MaxPool 2x2
    Flatten -> Gemm(1568->128) -> ReLU -> Gemm(128->10)
About 0.21 M parameters (~0.8 MB fp32). BatchNormalization stays a node in the exported
graph so qforge's BN-folding pass has something to fold.

Data: the Debian package dataset-fashion-mnist (IDX files, gzip) read with gzip + numpy.
Deterministic: fixed seeds, deterministic algorithms, fixed thread count (default 1), fixed
shuffling order. About 3 minutes of CPU time on one core (train_seconds in the JSON is wall time).
"""

import argparse
import datetime
import gzip
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

from onnx_export_util import export_eval_keep_bn

DATA_DIR = "/usr/share/datasets/fashion-mnist"

# Fashion-MNIST training-set pixel statistics after scaling to [0, 1]
# (computed by this script's --print-stats; stable values quoted in the literature: 0.2860 / 0.3530).
FMNIST_MEAN = 0.2860
FMNIST_STD = 0.3530


def read_idx(path):
    """Reads an IDX (MNIST-family) file, gzip-compressed, into a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: expected unsigned byte data (0x08), got {dtype_code:#x}")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(data) != offset + count:
        raise ValueError(f"{path}: size {len(data)} does not match header dims {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def load_split(split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # [N,1,28,28] in [0,1]
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


class FmnistCnn(nn.Module):
    def __init__(self, c1=16, c2=32, hidden=128):
        super().__init__()
        # Buffers (not parameters): exported as constant initializers of the Sub/Div nodes.
        self.register_buffer("mean", torch.tensor([FMNIST_MEAN], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([FMNIST_STD], dtype=torch.float32))
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.fc1 = nn.Linear(c2 * 7 * 7, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):  # x: [N,1,28,28], raw pixels in [0,1]
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # [N,c1,14,14]
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # [N,c2,7,7]
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)  # logits [N,10]


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def augment(xb, gen):
    """Random horizontal flip (clothing is left/right symmetric) and +-2 pixel shifts."""
    n = xb.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
    padded = F.pad(xb, (2, 2, 2, 2))
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()  # one shift per batch: cheap
    return padded[:, :, dy:dy + 28, dx:dx + 28]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--augment", action="store_true", help="random flips and shifts")
    ap.add_argument("--out-dir", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")))
    ap.add_argument("--print-stats", action="store_true", help="print train-set mean/std and exit")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)

    x_train, y_train = load_split("train")
    x_test, y_test = load_split("test")
    if args.print_stats:
        print(f"mean={x_train.mean().item():.6f} std={x_train.std().item():.6f}")
        return 0

    model = FmnistCnn()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params} ({n_params * 4 / 1e6:.2f} MB fp32)")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = (len(x_train) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total_loss = 0.0
        for i in range(0, len(x_train), args.batch):
            idx = perm[i:i + args.batch]
            xb, yb = x_train[idx], y_train[idx]
            if args.augment:
                xb = augment(xb, gen)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
        acc = evaluate(model, x_test, y_test)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {total_loss / len(x_train):.4f}, "
              f"test top-1 {acc * 100:.2f}%, {time.time() - t0:.0f} s", flush=True)

    model.eval()
    test_acc = evaluate(model, x_test, y_test)
    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "fmnist_cnn.onnx")
    # BatchNormalization stays a node (see onnx_export_util); the export is checked there.
    m = export_eval_keep_bn(model, torch.zeros(1, 1, 28, 28), onnx_path, "input", "logits")
    ops = [n.op_type for n in m.graph.node]
    if ops.count("BatchNormalization") != 2:
        raise SystemExit(f"expected 2 BatchNormalization nodes in the export, got ops {ops}")
    size = os.path.getsize(onnx_path)
    if size > 2 * 1024 * 1024:
        raise SystemExit(f"{onnx_path} is {size} bytes, over the 2 MB budget")

    # Fixtures for oracle tests (qforge run / tools/ort/run.js vs torch): the first 8 test images
    # and torch's logits for them, plus torch's predicted class for every test image.
    with torch.no_grad():
        sample = x_test[:8].contiguous()
        np.save(os.path.join(args.out_dir, "fmnist_cnn.sample_input.npy"), sample.numpy())
        np.save(os.path.join(args.out_dir, "fmnist_cnn.sample_logits.npy"), model(sample).numpy())
        preds = torch.cat([model(x_test[i:i + 1000]).argmax(1) for i in range(0, len(x_test), 1000)])
    with open(os.path.join(args.out_dir, "fmnist_cnn.torch_predictions.txt"), "w") as f:
        f.write("".join(f"{p}\n" for p in preds.tolist()))

    meta = {
        "model": "fmnist_cnn.onnx",
        "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist), 60000 train / 10000 test",
        "input": "input [batch,1,28,28] float32, raw pixels in [0,1]",
        "output": "logits [batch,10] float32",
        "normalization": {"mean": FMNIST_MEAN, "std": FMNIST_STD, "where": "inside the graph (Sub, Div)"},
        "test_top1": round(test_acc, 4),
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "augment": args.augment,
        "seed": args.seed,
        "threads": args.threads,
        "parameters": n_params,
        "onnx_bytes": size,
        "opset": 13,
        "ops": sorted(set(ops)),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "train_seconds": round(time.time() - t0, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "scripts/train_fmnist_cnn.py",
    }
    with open(os.path.join(args.out_dir, "fmnist_cnn.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {onnx_path} ({size} bytes), test top-1 {test_acc * 100:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
