#!/usr/bin/python3
"""Makes the training golden fixture tests/data/train_golden/ with PyTorch (Debian's torch 1.13).

A small conv-bn-relu-pool-gemm classifier is exported to ONNX (model.onnx, BatchNormalization
kept as a node), then one training step is taken in PyTorch on a fixed batch:
  x.npy, labels.npy            the batch
  logits.npy, loss.npy         forward in training mode (batch statistics), cross-entropy
  grad__<name>.npy             dLoss/d(parameter) for every parameter
  sgd__<name>.npy              the parameter after one SGD step (lr 0.1, momentum 0.9, wd 1e-3)
  adamw__<name>.npy            ... after one AdamW step instead (lr 0.01, wd 0.1)
  running__<name>.npy          BatchNorm running mean / var after the step
<name> is the ONNX initializer name with characters other than [A-Za-z0-9_] replaced by '_'.
Run: /usr/bin/python3 scripts/make_train_golden.py  (from the repository root)
"""
import os
import re

import numpy as np
import onnx
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "train_golden")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        y = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(y, 1))


def safe(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():  # non-trivial BN parameters and statistics
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.5, 0.5)
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 1.5)
    net.eval()
    x = torch.rand(6, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 3, 4, 1])
    # Exported in training mode so BatchNormalization stays a node (an eval-mode export folds
    # it into the conv); its training-only attribute and outputs are then dropped, leaving the
    # plain inference node (qforge switches it to batch statistics when training).
    path = os.path.join(OUT, "model.onnx")
    torch.onnx.export(net, x, path, input_names=["input"], output_names=["logits"],
                      opset_version=14, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.TRAINING,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    model = onnx.load(path)
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            keep = [a for a in node.attribute if a.name != "training_mode"]
            del node.attribute[:]
            node.attribute.extend(keep)
            del node.output[1:]
    onnx.checker.check_model(model)
    onnx.save(model, path)
    save("x", x.numpy())
    save("labels", labels.numpy().astype(np.int64))
    state0 = {k: v.clone() for k, v in net.state_dict().items()}

    for opt_name in ("sgd", "adamw"):
        net.load_state_dict(state0)
        net.train()
        if opt_name == "sgd":
            opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        else:
            opt = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.1)
        opt.zero_grad()
        logits = net(x)
        loss = nn.functional.cross_entropy(logits, labels)
        loss.backward()
        if opt_name == "sgd":
            save("logits", logits.detach().numpy())
            save("loss", np.array([loss.item()], dtype=np.float32))
            for n, p in net.named_parameters():
                save("grad__" + safe(n), p.grad.numpy())
            save("running__" + safe("bn.running_mean"), net.bn.running_mean.numpy())
            save("running__" + safe("bn.running_var"), net.bn.running_var.numpy())
        opt.step()
        for n, p in net.named_parameters():
            save(opt_name + "__" + safe(n), p.detach().numpy())
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
