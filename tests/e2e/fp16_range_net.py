#!/usr/bin/env python3
"""Writes a conv net whose BatchNormalization variance is beyond FP16's range.

  fp16_range_net.py OUT.onnx

image[1,3,16,16] -> Conv(24 ch) -> BatchNormalization (variance 9.8e7 on every
channel, as a published detection net has; Conv weights scaled so the
normalized values are O(1)) -> Sigmoid -> probs. Weights are Constant nodes
(opset 11), as paddle2onnx writes them. Converting it to FP16 by clamping the
variance to 65504 saturates the output; a correct conversion keeps the BN in
FP32.
"""
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

rng = np.random.default_rng(7)
ch = 24


def const(name, arr):
    return helper.make_node("Constant", [], [name], name=name + "_const",
                            value=numpy_helper.from_array(arr.astype(np.float32), name))


nodes = [
    const("w", rng.normal(0, 1.0, (ch, 3, 3, 3)) * 3000.0),
    const("b", rng.normal(0, 100.0, ch)),
    const("scale", np.abs(rng.normal(1, 0.2, ch))),
    const("bias", rng.normal(0, 0.2, ch)),
    const("mean", rng.normal(0, 100.0, ch)),
    const("var", np.full(ch, 9.8e7) * np.abs(rng.normal(1, 0.1, ch))),
    helper.make_node("Conv", ["image", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
    helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["bn"],
                     name="bn"),
    helper.make_node("Sigmoid", ["bn"], ["probs"], name="sigmoid"),
]
graph = helper.make_graph(
    nodes, "fp16_range",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
    [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, ch, 16, 16])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=6)
save(model, sys.argv[1])
