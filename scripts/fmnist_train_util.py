"""Shared training/export loop for the small Fashion-MNIST models (MobileNetV2-style, MLP, ViT).

Reuses train_fmnist_cnn.py's conventions: data from the Debian dataset-fashion-mnist IDX files,
raw [0, 1] pixels in, normalization (Sub mean, Div std) inside the model, AdamW with a one-cycle
schedule, fixed seeds and thread count, deterministic algorithms, ONNX export with a dynamic
"batch" axis and BatchNormalization kept as nodes, the ONNX checker run on the export.

Writes, for a model called NAME, into --out-dir:
    NAME.onnx                    the model
    NAME.json                    how it was trained, its test top-1, op list, sizes
    NAME.torch_predictions.txt   PyTorch's predicted class for each of the 10 000 test images
    NAME.sample_input.npy / NAME.sample_logits.npy   first 8 test images and PyTorch's logits
"""

import argparse
import datetime
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from onnx_export_util import export_eval_keep_bn
from train_fmnist_cnn import FMNIST_MEAN, FMNIST_STD, augment, evaluate, load_split

DEFAULT_OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))


def parse_args(doc, epochs, lr, batch=128, opset=13, augment_default=False):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--opset", type=int, default=opset)
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction, default=augment_default,
                    help="random flips and shifts")
    ap.add_argument("--out-dir", default=DEFAULT_OUT)
    return ap.parse_args()


def train_and_export(name, make_model, args, describe, expect_ops=None, weight_decay=1e-4):
    """Trains make_model() on Fashion-MNIST, exports NAME.onnx and its fixtures; returns test top-1."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)

    x_train, y_train = load_split("train")
    x_test, y_test = load_split("test")
    model = make_model()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: parameters: {n_params} ({n_params * 4 / 1e6:.2f} MB fp32)", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=weight_decay)
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
            if (i // args.batch) % 100 == 99:
                print(f"  epoch {epoch + 1} step {i // args.batch + 1}/{steps_per_epoch}: "
                      f"loss {loss.item():.4f}, {time.time() - t0:.0f} s", flush=True)
        acc = evaluate(model, x_test, y_test)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {total_loss / len(x_train):.4f}, "
              f"test top-1 {acc * 100:.2f}%, {time.time() - t0:.0f} s", flush=True)
    train_seconds = time.time() - t0

    model.eval()
    test_acc = evaluate(model, x_test, y_test)
    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, f"{name}.onnx")
    m = export_eval_keep_bn(model, torch.zeros(1, 1, 28, 28), onnx_path, "input", "logits",
                            opset=args.opset)
    ops = [n.op_type for n in m.graph.node]
    if expect_ops is not None:
        missing = set(expect_ops) - set(ops)
        if missing:
            raise SystemExit(f"{name}: expected ops {sorted(missing)} in the export, got {sorted(set(ops))}")
    size = os.path.getsize(onnx_path)
    if size > 2 * 1024 * 1024:
        raise SystemExit(f"{onnx_path} is {size} bytes, over the 2 MB budget")

    with torch.no_grad():
        sample = x_test[:8].contiguous()
        np.save(os.path.join(args.out_dir, f"{name}.sample_input.npy"), sample.numpy())
        np.save(os.path.join(args.out_dir, f"{name}.sample_logits.npy"), model(sample).numpy())
        preds = torch.cat([model(x_test[i:i + 1000]).argmax(1) for i in range(0, len(x_test), 1000)])
    with open(os.path.join(args.out_dir, f"{name}.torch_predictions.txt"), "w") as f:
        f.write("".join(f"{p}\n" for p in preds.tolist()))

    meta = {
        "model": f"{name}.onnx",
        "architecture": describe,
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
        "opset": args.opset,
        "ops": sorted(set(ops)),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "train_seconds": round(train_seconds, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "scripts/" + os.path.basename(sys.argv[0]),
    }
    with open(os.path.join(args.out_dir, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {onnx_path} ({size} bytes), test top-1 {test_acc * 100:.2f}%", flush=True)
    return test_acc
