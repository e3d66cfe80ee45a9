#!/usr/bin/env bash
# Training speed, qforge beside PyTorch: one epoch (or the first N images) of fp32 training of an
# ONNX model, single thread, same architecture (PyTorch rebuilds it from the same .onnx file:
# same weights, same trainable parameters), same batch size, optimizer (SGD momentum 0.9,
# weight decay 5e-4, lr 0.05, constant schedule), loss (cross-entropy) and data in the same order
# (Fashion-MNIST training images in file order, no augmentation, no shuffling).
# The two are run alternately QF_ROUNDS times; each round measures CPU time (not wall time: the
# machine is shared) of the training loop only (qforge: the epoch's "cpu s" from `qforge train`;
# PyTorch: time.process_time() around the loop) and of the whole process. The table shows the
# medians and ratio = qforge / PyTorch (< 1: qforge is faster), the JSON has every round.
#
# Usage: scripts/bench_train.sh [--json OUT.json] [MODEL.onnx[:LIMIT] ...]
#   Default: models/fmnist_cnn.onnx:60000 (one full epoch) models/fmnist_mobilenetv2.onnx:6000
#   (the first 6000 images: a one-epoch subset, to keep the run short).
#   Env: QF_BIN (build/src/cli/qforge), QF_ROUNDS (3), QF_BATCH (64), QF_THREADS (1).
# PyTorch is Debian's python3-torch, run by /usr/bin/python3 (the default python3 may lack it).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
qf="${QF_BIN:-$root/build/src/cli/qforge}"
py=/usr/bin/python3
json_out=""
while (($#)); do
  case "$1" in
    --json) json_out="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
cases=("$@")
if ((${#cases[@]} == 0)); then
  cases=("$root/models/fmnist_cnn.onnx:60000" "$root/models/fmnist_mobilenetv2.onnx:6000")
fi
[ -x "$qf" ] || { echo "bench_train: $qf not built (scripts/build.sh)" >&2; exit 1; }
"$py" -c "import torch, onnx" 2>/dev/null ||
  { echo "bench_train: $py lacks torch or onnx (apt-get install python3-torch python3-onnx)" >&2; exit 1; }

work="$(mktemp -d /tmp/qforge_bench_train.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# ---- The PyTorch side: an ONNX graph interpreted by torch ops (the ops of the bundled models).
cat >"$work/torch_train.py" <<'EOF'
"""One epoch of PyTorch training of an ONNX model; prints JSON with CPU seconds."""
import gzip, json, os, sys, time

t_start = time.process_time()
import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F

model_path, limit, batch, threads, data_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.set_num_threads(threads)
torch.manual_seed(0)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


images = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))[:limit]
labels = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))[:limit]
x_all = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
y_all = torch.from_numpy(labels.astype(np.int64))

g = onnx.load(model_path).graph
inits = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()) for t in g.initializer}
# Trainable: as qforge's DefaultTrainable: float initializers with more than one element, except
# BatchNormalization's running mean and variance.
stats = set()
for n in g.node:
    if n.op_type == "BatchNormalization":
        stats.update(n.input[3:5])
params = {}
for k, v in inits.items():
    if v.dtype == torch.float32 and v.numel() > 1 and k not in stats:
        params[k] = torch.nn.Parameter(v)
values_const = {k: v for k, v in inits.items() if k not in params}


def attrs(n):
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


def forward(x):
    v = dict(values_const)
    v.update(params)
    v[g.input[0].name] = x
    for n in g.node:
        a = attrs(n)
        i = [v[s] if s else None for s in n.input]
        op = n.op_type
        if op == "Constant":
            out = torch.from_numpy(onnx.numpy_helper.to_array(a["value"]).copy())
        elif op in ("Add", "Sub", "Mul", "Div"):
            out = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op](i[0], i[1])
        elif op == "Conv":
            p = a.get("pads", [0, 0, 0, 0])
            assert p[:2] == p[2:], "asymmetric pads"
            out = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, a.get("strides", [1, 1]),
                           p[:2], a.get("dilations", [1, 1]), a.get("group", 1))
        elif op == "BatchNormalization":
            out = F.batch_norm(i[0], i[3], i[4], i[1], i[2], training=True,
                               momentum=1.0 - a.get("momentum", 0.9), eps=a.get("epsilon", 1e-5))
        elif op == "Relu":
            out = F.relu(i[0])
        elif op == "Clip":
            out = torch.clamp(i[0], float(i[1]), float(i[2]))
        elif op == "MaxPool":
            p = a.get("pads", [0, 0, 0, 0])
            out = F.max_pool2d(i[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]), p[:2],
                               ceil_mode=bool(a.get("ceil_mode", 0)))
        elif op == "GlobalAveragePool":
            out = F.adaptive_avg_pool2d(i[0], 1)
        elif op == "Flatten":
            out = torch.flatten(i[0], a.get("axis", 1))
        elif op == "Gemm":
            assert a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0 and not a.get("transA", 0)
            w = i[1] if a.get("transB", 0) else i[1].t()
            out = F.linear(i[0], w, i[2] if len(i) > 2 else None)
        else:
            raise SystemExit(f"bench_train: the PyTorch side has no op {op}")
        v[n.output[0]] = out
    return v[g.output[0].name]


opt = torch.optim.SGD(list(params.values()), lr=0.05, momentum=0.9, weight_decay=5e-4)
n = x_all.shape[0]
t0, w0 = time.process_time(), time.perf_counter()
loss_sum = 0.0
for b in range(0, n, batch):
    x, y = x_all[b:b + batch], y_all[b:b + batch]
    opt.zero_grad()
    loss = F.cross_entropy(forward(x), y)
    loss.backward()
    opt.step()
    loss_sum += loss.item() * x.shape[0]
t1, w1 = time.process_time(), time.perf_counter()
print(json.dumps({"loop_cpu_s": t1 - t0, "loop_wall_s": w1 - w0, "process_cpu_s": t1 - t_start,
                  "images": n, "mean_loss": loss_sum / n, "torch": torch.__version__}))
EOF

# ---- The driver: alternate the two, collect CPU times, print medians and ratios.
QF="$qf" ROUNDS="${QF_ROUNDS:-3}" BATCH="${QF_BATCH:-64}" THREADS="${QF_THREADS:-1}" \
  WORK="$work" JSON_OUT="$json_out" "$py" - "${cases[@]}" <<'EOF'
import json, os, re, resource, statistics, subprocess, sys

qf, rounds, batch, threads, work = (os.environ["QF"], int(os.environ["ROUNDS"]),
                                    int(os.environ["BATCH"]), int(os.environ["THREADS"]), os.environ["WORK"])
data_dir = "/usr/share/datasets/fashion-mnist"
env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
           MKL_NUM_THREADS=str(threads))


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_qforge(model, limit):
    c0 = child_cpu()
    out = subprocess.run([qf, "train", model, "--data", "fashion-mnist", "--threads", str(threads),
                          "--batch", str(batch), "--limit", str(limit), "--test-limit", "0",
                          "--epochs", "1", "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9",
                          "--weight-decay", "5e-4", "--schedule", "constant", "--augment", "none",
                          "--no-shuffle", "-q", "-o", os.path.join(work, "trained.onnx")],
                         env=env, check=True, capture_output=True, text=True).stdout
    process = child_cpu() - c0
    # The table: epoch loss train% test% time-s cpu-s samples/s lr
    row = [l.split() for l in out.splitlines() if re.match(r"\s*1\s", l)][0]
    return {"loop_cpu_s": float(row[5]), "loop_wall_s": float(row[4]), "process_cpu_s": process,
            "mean_loss": float(row[1])}


def run_torch(model, limit):
    c0 = child_cpu()
    out = subprocess.run(["/usr/bin/python3", os.path.join(work, "torch_train.py"), model, str(limit),
                          str(batch), str(threads), data_dir], env=env, check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["process_cpu_s_rusage"] = child_cpu() - c0
    return r


results = []
for case in sys.argv[1:]:
    model, _, limit = case.partition(":")
    limit = int(limit or 60000)
    q, t = [], []
    for r in range(rounds):
        # Alternate which side goes first, so drifting load hits both alike.
        order = [("q", run_qforge), ("t", run_torch)] if r % 2 == 0 else [("t", run_torch), ("q", run_qforge)]
        for side, fn in order:
            res = fn(model, limit)
            (q if side == "q" else t).append(res)
            print(f"  round {r + 1} {'qforge ' if side == 'q' else 'pytorch'} {os.path.basename(model)}: "
                  f"loop {res['loop_cpu_s']:.2f} s cpu, process {res['process_cpu_s']:.2f} s cpu, "
                  f"mean loss {res['mean_loss']:.4f}", file=sys.stderr, flush=True)
    med = lambda xs, k: statistics.median(x[k] for x in xs)
    results.append({"model": os.path.basename(model), "images": limit, "batch": batch, "threads": threads,
                    "rounds": rounds, "qforge": q, "pytorch": t,
                    "qforge_loop_cpu_s": med(q, "loop_cpu_s"), "pytorch_loop_cpu_s": med(t, "loop_cpu_s"),
                    "qforge_process_cpu_s": med(q, "process_cpu_s"),
                    "pytorch_process_cpu_s": med(t, "process_cpu_s"),
                    "ratio_loop": med(q, "loop_cpu_s") / med(t, "loop_cpu_s"),
                    "ratio_process": med(q, "process_cpu_s") / med(t, "process_cpu_s")})

hdr = f"{'model':<24}{'images':>7}{'batch':>6}{'qforge cpu s':>14}{'torch cpu s':>13}{'ratio':>7}{'ratio (process)':>17}"
print(hdr)
for r in results:
    print(f"{r['model']:<24}{r['images']:>7}{r['batch']:>6}{r['qforge_loop_cpu_s']:>14.2f}"
          f"{r['pytorch_loop_cpu_s']:>13.2f}{r['ratio_loop']:>7.2f}{r['ratio_process']:>17.2f}")
print(f"(medians of {rounds} alternating rounds, training-loop CPU time, {threads} thread(s); "
      "ratio = qforge / PyTorch; process = whole process incl. start-up and data loading)")
if os.environ.get("JSON_OUT"):
    with open(os.environ["JSON_OUT"], "w") as f:
        json.dump(results, f, indent=1)
EOF
