#!/usr/bin/python3
"""Exports ResNet-18 and MobileNetV2 (torchvision architectures, random weights) to ONNX for benchmarks.

Run with Debian's interpreter (python3-torch 1.13, python3-onnx):
    /usr/bin/python3 scripts/export_reference_models.py [--out-dir models/large] [--seed 0]
                                                         [--check-torchvision]

Writes models/large/resnet18.onnx (~45 MB) and models/large/mobilenetv2.onnx (~14 MB): opset 13,
input "input" [batch,3,224,224] float32, output "logits" [batch,1000], batch symbolic ("batch"),
eval mode, BatchNormalization kept as nodes (as a user's un-fused export would have them).
These files are too large for git (models/large/ is ignored); regenerate them with this script.

The two architectures are written out below, faithful to torchvision 0.14
(torchvision.models.resnet18 and torchvision.models.mobilenet_v2): same modules, same parameter
names and shapes, same weight initialization. --check-torchvision (needs python3-torchvision)
loads our weights into torchvision's models and checks both the names and the outputs match.

Weights: torchvision's initialization from a fixed seed. BatchNorm running statistics are then
estimated from a few random-input batches (train-mode forward passes with cumulative averaging)
so activations keep a realistic scale through the network, instead of the fresh mean=0/var=1
that would let them drift; BN gamma/beta are also perturbed so BN folding is not a no-op.
"""

import argparse
import datetime
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

from onnx_export_util import export_eval_keep_bn

# ---------------------------------------------------------------- ResNet-18 (torchvision 0.14)


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18():
    return ResNet(BasicBlock, [2, 2, 2, 2])


# -------------------------------------------------------------- MobileNetV2 (torchvision 0.14)


def _make_divisible(v, divisor, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # do not round down by more than 10%
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> ReLU6, 'same' padding for odd kernels (torchvision.ops)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1,
                 activation=True):
        padding = (kernel_size - 1) // 2
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                            bias=False),
                  nn.BatchNorm2d(out_channels)]
        if activation:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = self.stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1))
        layers.extend([
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),  # dw
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),  # pw-linear
            nn.BatchNorm2d(oup),
        ])
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0, round_nearest=8, dropout=0.2):
        super().__init__()
        input_channel = 32
        last_channel = 1280
        settings = [  # t (expansion), c (channels), n (repeats), s (first stride)
            [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
            [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
        ]
        input_channel = _make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features = [Conv2dNormActivation(3, input_channel, stride=2)]
        for t, c, n, s in settings:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel,
                                                 s if i == 0 else 1, expand_ratio=t))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout),
                                        nn.Linear(self.last_channel, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v2():
    return MobileNetV2()


# ------------------------------------------------------------------------------ export


MODELS = {"resnet18": resnet18, "mobilenetv2": mobilenet_v2}
TORCHVISION_NAMES = {"resnet18": "resnet18", "mobilenetv2": "mobilenet_v2"}


def randomize_bn(model, gen, batches=4, batch=8):
    """Perturbs BN affine parameters, then estimates running stats from random inputs."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.reset_running_stats()
                m.momentum = None  # cumulative moving average over the calibration batches
        model.train()
        for _ in range(batches):
            model(torch.rand(batch, 3, 224, 224, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
    model.eval()


def check_against_torchvision(name, model):
    import torchvision  # python3-torchvision; optional
    tv = getattr(torchvision.models, TORCHVISION_NAMES[name])(weights=None).eval()
    ours, theirs = model.state_dict(), tv.state_dict()
    if list(ours.keys()) != list(theirs.keys()):
        raise SystemExit(f"{name}: parameter names differ from torchvision's")
    for k in ours:
        if ours[k].shape != theirs[k].shape:
            raise SystemExit(f"{name}: {k} has shape {tuple(ours[k].shape)}, torchvision "
                             f"{tuple(theirs[k].shape)}")
    tv.load_state_dict(ours)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (tv(x) - model(x)).abs().max().item()
    if diff > 1e-5:
        raise SystemExit(f"{name}: outputs differ from torchvision's by {diff}")
    print(f"{name}: matches torchvision {torchvision.__version__} (names, shapes, max |diff| {diff:.1e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "large")))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="resnet18,mobilenetv2", help="comma-separated subset")
    ap.add_argument("--check-torchvision", action="store_true",
                    help="verify the architectures against python3-torchvision")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)

    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"unknown model '{name}' (known: {', '.join(MODELS)})")
        torch.manual_seed(args.seed)  # the torchvision-style init draws from the global generator
        model = MODELS[name]()
        randomize_bn(model, torch.Generator().manual_seed(args.seed + 1))
        if args.check_torchvision:
            check_against_torchvision(name, model)
        path = os.path.join(args.out_dir, f"{name}.onnx")
        m = export_eval_keep_bn(model, torch.zeros(1, 3, 224, 224), path, "input", "logits")
        ops = {}
        for n in m.graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        n_params = sum(p.numel() for p in model.parameters())
        meta = {
            "model": f"{name}.onnx", "architecture": f"torchvision 0.14 {TORCHVISION_NAMES[name]}",
            "weights": f"random (torchvision init, seed {args.seed}); BN stats from random inputs",
            "input": "input [batch,3,224,224] float32", "output": "logits [batch,1000] float32",
            "opset": 13, "parameters": n_params, "onnx_bytes": os.path.getsize(path), "ops": ops,
            "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "script": "scripts/export_reference_models.py",
        }
        with open(os.path.join(args.out_dir, f"{name}.json"), "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        # Oracle fixture: one input and torch's output for it, for qforge run / ORT comparisons.
        x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(args.seed + 2))
        with torch.no_grad():
            y = model(x)
        np.save(os.path.join(args.out_dir, f"{name}.sample_input.npy"), x.numpy())
        np.save(os.path.join(args.out_dir, f"{name}.sample_logits.npy"), y.numpy())
        print(f"wrote {path} ({meta['onnx_bytes']} bytes, {n_params} parameters, ops {ops})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
