#!/usr/bin/python3
"""Makes the small ONNX models the CLI tests use (run with Debian's /usr/bin/python3).

  tiny_fmnist.onnx            image f32 [batch,1,28,28] -> Flatten -> Gemm(784->10) -> logits
  tiny_fmnist_predictions.txt its argmax class on the first 200 Fashion-MNIST test images,
                              computed here with numpy (an oracle independent of qforge)
  two_outputs.onnx            x f32 [n,3] -> Relu -> 'out/relu:0', Add(x,x) -> '../sum'
                              (names that must be sanitized into file names)
  unsupported_op.onnx         a node of a custom domain op qforge does not implement
  formats_weights.onnx        two 2x2 MatMul weights with hand-checkable values for `formats`
"""
import gzip
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"


def save(model, name):
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, name))


def tiny_fmnist():
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((10, 784)) * 0.05).astype(np.float32)
    b = (rng.standard_normal(10) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"], name="flatten", axis=1),
         helper.make_node("Gemm", ["flat", "w", "b"], ["logits"], name="fc", transB=1)],
        "tiny_fmnist",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, producer_name="qforge-tests",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    save(model, "tiny_fmnist.onnx")

    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:200]
    x = images.astype(np.float32) / np.float32(255)
    logits = x @ w.T + b
    top2 = np.sort(logits, axis=1)[:, -2:]
    # The predictions must not hinge on float rounding: every winner leads by a clear margin.
    assert (top2[:, 1] - top2[:, 0]).min() > 1e-3, "near tie; pick another seed"
    with open(os.path.join(HERE, "tiny_fmnist_predictions.txt"), "w") as f:
        f.writelines(f"{p}\n" for p in logits.argmax(axis=1))


def two_outputs():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["out/relu:0"], name="relu"),
         helper.make_node("Add", ["x", "x"], ["../sum"], name="add")],
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("out/relu:0", TensorProto.FLOAT, ["n", 3]),
         helper.make_tensor_value_info("../sum", TensorProto.FLOAT, ["n", 3])])
    model = helper.make_model(graph, producer_name="qforge-tests",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    save(model, "two_outputs.onnx")


def unsupported_op():
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery", domain="qforge.test")],
        "unsupported_op",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, producer_name="qforge-tests",
                              opset_imports=[helper.make_opsetid("", 13),
                                             helper.make_opsetid("qforge.test", 1)])
    model.ir_version = 7
    save(model, "unsupported_op.onnx")


def formats_weights():
    w1 = np.array([[1.0, -0.5], [0.25, 0.125]], np.float32)
    w2 = np.array([[1000.0, 3.0], [0.5, -2.0]], np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
         helper.make_node("MatMul", ["h", "w2"], ["y"], name="mm2")],
        "formats_weights",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, producer_name="qforge-tests",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    save(model, "formats_weights.onnx")


if __name__ == "__main__":
    tiny_fmnist()
    two_outputs()
    unsupported_op()
    formats_weights()
