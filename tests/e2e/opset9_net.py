#!/usr/bin/python3
"""Writes an opset-9 ONNX model whose ops changed meaning after opset 9.

  opset9_net.py OUT.onnx

Quantizing it needs a newer opset (DequantizeLinear is opset 10, dynamic
INT8 11, per-axis scales 13), so quantd converts it with ONNX's version
converter. It holds what that conversion has to carry over:
  - Slice with starts/ends/axes attributes (inputs from opset 10),
  - Clip with min/max attributes (inputs from opset 11),
  - Upsample, nearest with scales 2x1.5 from a Constant node and linear on an
    intermediate value (Resize from opset 10; sampling defaults changed at 11),
  - BatchNormalization (a new version at 14 and 15),
  - Constant nodes with value tensors, one of them a 64x64 MatMul weight,
  - MatMul and Gemm (transB) weights large enough to be quantized,
  - values named by number ("3", "4", ...) as PyTorch's exporter names them,
    which the converter's own value names could collide with.
Inputs: x [1, 96], img [1, 2, 3, 4]; outputs: y [1, 64], up_nearest, up_linear.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(out):
    rng = np.random.default_rng(9)

    def w(name, *shape, scale=0.1):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    def const(out_name, array, node_name):
        return helper.make_node("Constant", [], [out_name], name=node_name,
                                value=numpy_helper.from_array(array.astype(np.float32), out_name + "_value"))

    nodes = [
        helper.make_node("Slice", ["x"], ["3"], name="slice", starts=[16], ends=[80], axes=[1]),
        helper.make_node("Clip", ["3"], ["4"], name="clip", min=-1.5, max=1.5),
        helper.make_node("MatMul", ["4", "fc1.weight"], ["5"], name="fc1"),
        const("6", rng.standard_normal(128) * 0.1, "bias1"),
        helper.make_node("Add", ["5", "6"], ["7"], name="add1"),
        helper.make_node("Relu", ["7"], ["8"], name="relu1"),
        helper.make_node("Gemm", ["8", "fc2.weight", "fc2.bias"], ["9"], name="fc2", transB=1),
        const("10", rng.standard_normal((64, 64)) * 0.1, "fc3.weight"),
        helper.make_node("MatMul", ["9", "10"], ["y"], name="fc3"),
        const("11", np.array([1, 1, 2, 1.5]), "scales_nearest"),
        helper.make_node("Upsample", ["img", "11"], ["up_nearest"], name="up_nearest", mode="nearest"),
        helper.make_node("BatchNormalization", ["img", "bn.scale", "bn.bias", "bn.mean", "bn.var"],
                         ["12"], name="bn", epsilon=1e-5),
        helper.make_node("Upsample", ["12", "scales_linear"], ["up_linear"], name="up_linear",
                         mode="linear"),
    ]
    inits = [
        w("fc1.weight", 64, 128),
        w("fc2.weight", 64, 128),  # Gemm B, transposed
        w("fc2.bias", 64),
        numpy_helper.from_array(np.array([1.5, 0.5], np.float32), "bn.scale"),
        numpy_helper.from_array(np.array([0.1, -0.2], np.float32), "bn.bias"),
        numpy_helper.from_array(np.array([0.3, -0.1], np.float32), "bn.mean"),
        numpy_helper.from_array(np.array([2.0, 0.5], np.float32), "bn.var"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales_linear"),
    ]
    graph = helper.make_graph(
        nodes, "opset9_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 96]),
         helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64]),
         helper.make_tensor_value_info("up_nearest", TensorProto.FLOAT, [1, 2, 6, 6]),
         helper.make_tensor_value_info("up_linear", TensorProto.FLOAT, [1, 2, 6, 8])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)],
                              producer_name="opset9_net")
    model.ir_version = 4
    onnx.checker.check_model(model)
    onnx.save(model, out)


if __name__ == "__main__":
    main(sys.argv[1])
