#!/usr/bin/env python3
"""Generates the test models the e2e suite needs (Debian's python3-onnx/numpy).

  gen_models.py OUT_DIR [--decoder-dim D] [--layers L] [--vocab V]

Writes:
  decoder.onnx  a small decoder LM (embedding Gather, LayerNorm, single-head
                causal attention with a float Range-built mask, SiLU MLP,
                LM head), opset 17, realistic weights (Gaussian, a few
                outliers), int64 input_ids [batch, sequence] -> logits.
  convnet.onnx  a small conv net (Conv, BatchNormalization, Relu, MaxPool,
                Resize, GlobalAveragePool, Gemm, Softmax), opset 17.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def weights(rng, shape, std=0.02, outliers=0.001):
    w = rng.normal(0.0, std, size=shape).astype(np.float32)
    n = max(1, int(w.size * outliers))
    idx = rng.choice(w.size, n, replace=False)
    w.flat[idx] *= 20.0  # heavy tail, as in real LMs
    return w


def decoder(rng, d, layers, vocab, ff):
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(op, ins, outs, **attrs):
        nodes.append(helper.make_node(op, ins, outs, name=outs[0] + "_node", **attrs))
        return outs[0]

    init("embed", weights(rng, (vocab, d), 0.1))
    h = node("Gather", ["embed", "input_ids"], ["h0"])
    # Causal mask from a float Range (kept FP32 by the default block list).
    node("Shape", ["input_ids"], ["ids_shape"])
    init("one_i", np.array([1], dtype=np.int64))
    node("Gather", ["ids_shape", "one_i"], ["seq_1"], axis=0)
    node("Squeeze", ["seq_1"], ["seq_i"])
    node("Cast", ["seq_i"], ["seq_f"], to=TensorProto.FLOAT)
    init("zero_f", np.array(0.0, dtype=np.float32))
    init("one_f", np.array(1.0, dtype=np.float32))
    node("Range", ["zero_f", "seq_f", "one_f"], ["pos"])
    init("ax0", np.array([0], dtype=np.int64))
    init("ax1", np.array([1], dtype=np.int64))
    node("Unsqueeze", ["pos", "ax0"], ["pos_row"])
    node("Unsqueeze", ["pos", "ax1"], ["pos_col"])
    node("Greater", ["pos_row", "pos_col"], ["future"])
    init("neg_big", np.array(-1e9, dtype=np.float32))  # clamped to -65504 in FP16
    node("Where", ["future", "neg_big", "zero_f"], ["mask"])
    init("scale", np.array(1.0 / np.sqrt(d), dtype=np.float32))
    for i in range(layers):
        p = f"l{i}_"
        init(p + "ln1_g", np.ones(d, np.float32) + rng.normal(0, 0.05, d).astype(np.float32))
        init(p + "ln1_b", rng.normal(0, 0.02, d).astype(np.float32))
        x = node("LayerNormalization", [h, p + "ln1_g", p + "ln1_b"], [p + "x"], axis=-1, epsilon=1e-5)
        for m in ("q", "k", "v", "o"):
            init(p + "W" + m, weights(rng, (d, d)))
        q = node("MatMul", [x, p + "Wq"], [p + "q"])
        k = node("MatMul", [x, p + "Wk"], [p + "k"])
        v = node("MatMul", [x, p + "Wv"], [p + "v"])
        kt = node("Transpose", [k], [p + "kt"], perm=[0, 2, 1])
        s = node("MatMul", [q, kt], [p + "s"])
        s = node("Mul", [s, "scale"], [p + "ss"])
        s = node("Add", [s, "mask"], [p + "sm"])
        a = node("Softmax", [s], [p + "a"], axis=-1)
        o = node("MatMul", [a, v], [p + "att"])
        o = node("MatMul", [o, p + "Wo"], [p + "o"])
        h = node("Add", [h, o], [p + "h1"])
        init(p + "ln2_g", np.ones(d, np.float32))
        init(p + "ln2_b", np.zeros(d, np.float32))
        x2 = node("LayerNormalization", [h, p + "ln2_g", p + "ln2_b"], [p + "x2"], axis=-1, epsilon=1e-5)
        init(p + "W1", weights(rng, (d, ff)))
        init(p + "W2", weights(rng, (ff, d)))
        u = node("MatMul", [x2, p + "W1"], [p + "u"])
        g = node("Sigmoid", [u], [p + "g"])
        u = node("Mul", [u, g], [p + "silu"])
        u = node("MatMul", [u, p + "W2"], [p + "down"])
        h = node("Add", [h, u], [p + "h2"])
    init("lnf_g", np.ones(d, np.float32))
    init("lnf_b", np.zeros(d, np.float32))
    x = node("LayerNormalization", [h, "lnf_g", "lnf_b"], ["xf"], axis=-1, epsilon=1e-5)
    init("lm_head", weights(rng, (d, vocab), 0.05))
    node("MatMul", [x, "lm_head"], ["logits"])
    graph = helper.make_graph(
        nodes, "decoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", vocab])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def convnet(rng):
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(op, ins, outs, **attrs):
        nodes.append(helper.make_node(op, ins, outs, name=outs[0] + "_node", **attrs))
        return outs[0]

    init("c1_w", weights(rng, (8, 3, 3, 3), 0.3))
    init("c1_b", rng.normal(0, 0.1, 8).astype(np.float32))
    node("Conv", ["image", "c1_w", "c1_b"], ["c1"], pads=[1, 1, 1, 1])
    init("bn_s", np.abs(rng.normal(1, 0.1, 8)).astype(np.float32))
    init("bn_b", rng.normal(0, 0.1, 8).astype(np.float32))
    init("bn_m", rng.normal(0, 0.1, 8).astype(np.float32))
    init("bn_v", np.abs(rng.normal(1, 0.1, 8)).astype(np.float32))
    node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"])
    node("Relu", ["bn"], ["r1"])
    node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2])
    init("c2_w", weights(rng, (16, 8, 3, 3), 0.2))
    node("Conv", ["p1", "c2_w"], ["c2"], pads=[1, 1, 1, 1])
    node("Relu", ["c2"], ["r2"])
    init("rs_scales", np.array([1, 1, 2, 2], dtype=np.float32))
    node("Resize", ["r2", "", "rs_scales"], ["up"], mode="linear")
    node("GlobalAveragePool", ["up"], ["gap"])
    node("Flatten", ["gap"], ["flat"])
    init("fc_w", weights(rng, (10, 16), 0.3))
    init("fc_b", np.zeros(10, np.float32))
    node("Gemm", ["flat", "fc_w", "fc_b"], ["fc"], transB=1)
    node("Softmax", ["fc"], ["probs"], axis=-1)
    graph = helper.make_graph(
        nodes, "convnet",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--decoder-dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--ff", type=int, default=0, help="MLP width (default 2x dim)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--external", action="store_true", help="weights in <model>.data")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    ff = args.ff or 2 * args.decoder_dim
    for name, model in (("decoder", decoder(rng, args.decoder_dim, args.layers, args.vocab, ff)),
                        ("convnet", convnet(rng))):
        onnx.checker.check_model(model)
        path = os.path.join(args.out, name + ".onnx")
        if args.external:
            onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=name + ".onnx.data", size_threshold=1024)
        else:
            onnx.save_model(model, path)
        print(path)


if __name__ == "__main__":
    main()
