"""ONNX export helper shared by train_fmnist_cnn.py and export_reference_models.py (torch 1.13, onnx 1.12).

export_eval_keep_bn() exports an eval-mode torch model to ONNX with BatchNormalization kept as
nodes, a dynamic batch axis named "batch", and no Identity nodes left over from torch's
initializer deduplication; then it runs the ONNX checker (full check, with shape inference).
"""

import onnx
import torch
from onnx import numpy_helper


def export_eval_keep_bn(model, example, path, input_name, output_name, opset=13):
    """Exports `model` (must be in eval mode) and returns the checked onnx.ModelProto.

    torch 1.13 fuses Conv+BN whenever training=TrainingMode.EVAL (its eval peephole pass runs
    regardless of do_constant_folding). PRESERVE on a model already in eval mode exports the same
    inference graph (BN uses running statistics) without that fusion; BN folding is qforge's job.
    """
    if model.training:
        raise ValueError("export_eval_keep_bn: call model.eval() first")
    torch.onnx.export(model, example, path, opset_version=opset,
                      input_names=[input_name], output_names=[output_name],
                      dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
    m = onnx.load(path)
    if _inline_identity_initializers(m):
        onnx.save(m, path)
    onnx.checker.check_model(m, full_check=True)
    return m


def _inline_identity_initializers(m):
    """Replaces `Identity(initializer)` nodes by a copy of the initializer under the output name.

    torch deduplicates bit-identical parameters (e.g. a fresh BN's weight=1 and running_var=1) and
    re-creates the duplicates with Identity nodes; those are noise in a reference model.
    Returns the number of nodes removed.
    """
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    graph_outputs = {o.name for o in g.output}
    keep, removed = [], 0
    for n in g.node:
        if (n.op_type == "Identity" and len(n.input) == 1 and n.input[0] in inits
                and n.output[0] not in graph_outputs):
            copy = numpy_helper.from_array(numpy_helper.to_array(inits[n.input[0]]), n.output[0])
            g.initializer.append(copy)
            removed += 1
        else:
            keep.append(n)
    if removed:
        del g.node[:]
        g.node.extend(keep)
    return removed
