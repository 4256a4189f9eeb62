#!/usr/bin/env python3
"""Writes two small nets that FP16 breaks unless the FP16 safety analysis keeps
some of their nodes in FP32.

  fp16_bounds_net.py OUT_DIR

OUT_DIR/amplify.onnx (activations statically bounded beyond FP16's range):
  x[1,16] -> MatMul -> Sigmoid (s in (0,1))
  t = s * 1e5              (a constant beyond the range: constant_out_of_range)
  v = (s * 400) * 300      (both constants in range, the product is not:
                            v reaches 1.2e5 when s saturates: activation_out_of_range)
  y = MatMul((t + v) * 0.001, W2)   (the Add and the scale-down read values
                            beyond the range: activation_out_of_range)
OUT_DIR/underflow.onnx (constants that flush to zero in FP16):
  xm = x[2,8] * [[1],[0]]  (the second row is zero)
  rms_out = gamma * xm / Sqrt(ReduceMean(xm * xm) + 1e-9)   (the epsilon flushes:
                            the Add, the Sqrt and the Div are kept: underflow)
  tiny_out = Tanh((x / 1e-8) * 1e-9)   (the divisor flushes, Div kept; the scale
                            flushes, Mul kept: underflow)
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

out_dir = sys.argv[1]
rng = np.random.default_rng(11)


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def model(name, nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    save(m, os.path.join(out_dir, name + ".onnx"))


def n(op, ins, out, **attrs):
    return helper.make_node(op, ins, [out], name=out, **attrs)


model("amplify", [
    n("MatMul", ["x", "w1"], "h"),
    n("Sigmoid", ["h"], "s"),
    n("Mul", ["s", "big"], "t"),
    n("Mul", ["s", "k400"], "u"),
    n("Mul", ["u", "k300"], "v"),
    n("Add", ["t", "v"], "w"),
    n("Mul", ["w", "milli"], "z"),
    n("MatMul", ["z", "w2"], "y"),
], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
   [const("w1", rng.normal(0, 4.0, (16, 8))), const("big", 1e5), const("k400", 400.0),
    const("k300", 300.0), const("milli", 1e-3), const("w2", rng.normal(0, 0.5, (8, 4)))])

model("underflow", [
    n("Mul", ["x", "rows"], "xm"),
    n("Mul", ["xm", "xm"], "sq"),
    n("ReduceMean", ["sq"], "ms", axes=[-1], keepdims=1),
    n("Add", ["ms", "eps"], "var_eps"),
    n("Sqrt", ["var_eps"], "rms"),
    n("Div", ["xm", "rms"], "normed"),
    n("Mul", ["normed", "gamma"], "rms_out"),
    n("Div", ["x", "tiny"], "d"),
    n("Mul", ["d", "tiny_scale"], "e"),
    n("Tanh", ["e"], "tiny_out"),
], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
   [helper.make_tensor_value_info("rms_out", TensorProto.FLOAT, [2, 8]),
    helper.make_tensor_value_info("tiny_out", TensorProto.FLOAT, [2, 8])],
   [const("rows", [[1.0], [0.0]]), const("eps", 1e-9), const("gamma", rng.normal(1, 0.1, 8)),
    const("tiny", 1e-8), const("tiny_scale", 1e-9)])
