#!/usr/bin/python3
"""Writes a small decoder-only transformer LM as ONNX, for INT4/INT8 e2e tests
and the 1 GiB quantization benchmark.

  int_make_decoder.py OUT.onnx [--hidden 320 --heads 5 --layers 2 --mlp 864
                               --vocab 1000 --opset 17 --dtype float32|float16
                               --external] [--seed 1] [--tied]

Graph: input_ids[batch, sequence] -> Gather(embedding) -> layers of
(LayerNormalization -> Q/K/V MatMul -> softmax attention -> O MatMul -> residual
-> LayerNormalization -> gate/up MatMul -> SiLU * up -> down MatMul -> residual)
-> LayerNormalization -> lm_head MatMul -> logits[batch, sequence, vocab].
With --tied the LM head reads Transpose(embedding) (GPT-2 style tied weights).

Weights are "realistic" for quantization: N(0, 1/fan_in) with heavy tails
(0.2% outliers of 4..8 sigma, as trained LLM weights have), so block-wise
INT4 sees some blocks whose range an outlier sets; output projections use the
GPT-2 residual scaling 1/sqrt(2 * layers). With --external every weight is
streamed to OUT.onnx.data (one tensor in memory at a time), so multi-GiB
models can be generated. Uses only onnx and numpy.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper


def weight(rng, shape, fan_in, dtype, gain=1.0):
    sigma = np.float32(gain / np.sqrt(fan_in))
    w = rng.standard_normal(size=shape, dtype=np.float32) * sigma
    # Heavy tails: 0.2% of the weights are outliers of 4..8 sigma.
    mask = rng.random(size=shape, dtype=np.float32) < 0.002
    n = int(mask.sum())
    w[mask] = (rng.choice([-1.0, 1.0], size=n) * rng.uniform(4.0, 8.0, size=n)).astype(np.float32) * sigma
    return w.astype(dtype)


class Writer:
    """Adds initializers inline or streamed to one external data file."""

    def __init__(self, path, external):
        self.graph_inits = []
        self.external = external
        self.data_name = os.path.basename(path) + ".data"
        self.f = open(path + ".data", "wb") if external else None

    def add(self, name, array):
        t = TensorProto()
        t.name = name
        t.data_type = {np.dtype(np.float32): TensorProto.FLOAT,
                       np.dtype(np.float16): TensorProto.FLOAT16,
                       np.dtype(np.int64): TensorProto.INT64}[array.dtype]
        t.dims.extend(array.shape)
        raw = array.tobytes()
        if self.external and len(raw) >= 1024:
            pad = (-self.f.tell()) % 4096
            self.f.write(b"\0" * pad)
            offset = self.f.tell()
            self.f.write(raw)
            t.data_location = TensorProto.EXTERNAL
            for k, v in (("location", self.data_name), ("offset", str(offset)),
                         ("length", str(len(raw)))):
                e = t.external_data.add()
                e.key, e.value = k, v
        else:
            t.raw_data = raw
        self.graph_inits.append(t)
        return name

    def close(self):
        if self.f:
            self.f.close()


def build(args):
    rng = np.random.default_rng(args.seed)
    dt = np.float16 if args.dtype == "float16" else np.float32
    onnx_dt = TensorProto.FLOAT16 if dt == np.float16 else TensorProto.FLOAT
    h, heads, mlp, vocab = args.hidden, args.heads, args.mlp, args.vocab
    hd = h // heads
    resid = 1.0 / np.sqrt(2.0 * args.layers)
    w = Writer(args.out, args.external)
    nodes = []

    def node(op, inputs, outputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[0]

    ones = w.add("ln_ones", np.ones(h, dt))
    zeros = w.add("ln_zeros", np.zeros(h, dt))
    emb = w.add("model.embed_tokens.weight", rng.standard_normal((vocab, h)).astype(dt))
    x = node("Gather", [emb, "input_ids"], ["/embed/output"], "/embed/Gather")
    shape_heads = w.add("shape_heads", np.array([0, 0, heads, hd], np.int64))
    shape_back = w.add("shape_back", np.array([0, 0, h], np.int64))
    scale = w.add("attn_scale", np.array(1.0 / np.sqrt(hd), dt))
    for i in range(args.layers):
        p = f"/model/layers.{i}"
        n1 = node("LayerNormalization", [x, ones, zeros], [f"{p}/ln1/output"], f"{p}/ln1",
                  axis=-1, epsilon=1e-5)
        qkv = {}
        for proj in ("q", "k", "v"):
            wn = w.add(f"model.layers.{i}.attn.{proj}_proj.weight", weight(rng, (h, h), h, dt))
            y = node("MatMul", [n1, wn], [f"{p}/attn/{proj}_proj/output"], f"{p}/attn/{proj}_proj/MatMul")
            y = node("Reshape", [y, shape_heads], [f"{p}/attn/{proj}/r"], f"{p}/attn/{proj}/Reshape")
            perm = [0, 2, 3, 1] if proj == "k" else [0, 2, 1, 3]
            qkv[proj] = node("Transpose", [y], [f"{p}/attn/{proj}/t"], f"{p}/attn/{proj}/Transpose",
                             perm=perm)
        s = node("MatMul", [qkv["q"], qkv["k"]], [f"{p}/attn/scores"], f"{p}/attn/QK")
        s = node("Mul", [s, scale], [f"{p}/attn/scaled"], f"{p}/attn/Scale")
        a = node("Softmax", [s], [f"{p}/attn/probs"], f"{p}/attn/Softmax", axis=-1)
        c = node("MatMul", [a, qkv["v"]], [f"{p}/attn/ctx"], f"{p}/attn/AV")
        c = node("Transpose", [c], [f"{p}/attn/ctx_t"], f"{p}/attn/ctx/Transpose", perm=[0, 2, 1, 3])
        c = node("Reshape", [c, shape_back], [f"{p}/attn/ctx_r"], f"{p}/attn/ctx/Reshape")
        wo = w.add(f"model.layers.{i}.attn.o_proj.weight", weight(rng, (h, h), h, dt, resid))
        o = node("MatMul", [c, wo], [f"{p}/attn/o_proj/output"], f"{p}/attn/o_proj/MatMul")
        x = node("Add", [x, o], [f"{p}/residual1"], f"{p}/Add1")
        n2 = node("LayerNormalization", [x, ones, zeros], [f"{p}/ln2/output"], f"{p}/ln2",
                  axis=-1, epsilon=1e-5)
        wg = w.add(f"model.layers.{i}.mlp.gate_proj.weight", weight(rng, (h, mlp), h, dt))
        wu = w.add(f"model.layers.{i}.mlp.up_proj.weight", weight(rng, (h, mlp), h, dt))
        wd = w.add(f"model.layers.{i}.mlp.down_proj.weight", weight(rng, (mlp, h), mlp, dt, resid))
        g = node("MatMul", [n2, wg], [f"{p}/mlp/gate"], f"{p}/mlp/gate_proj/MatMul")
        u = node("MatMul", [n2, wu], [f"{p}/mlp/up"], f"{p}/mlp/up_proj/MatMul")
        sg = node("Sigmoid", [g], [f"{p}/mlp/sig"], f"{p}/mlp/Sigmoid")
        g = node("Mul", [g, sg], [f"{p}/mlp/silu"], f"{p}/mlp/SiLU")
        g = node("Mul", [g, u], [f"{p}/mlp/prod"], f"{p}/mlp/Mul")
        d = node("MatMul", [g, wd], [f"{p}/mlp/down"], f"{p}/mlp/down_proj/MatMul")
        x = node("Add", [x, d], [f"{p}/residual2"], f"{p}/Add2")
    n = node("LayerNormalization", [x, ones, zeros], ["/model/norm/output"], "/model/norm",
             axis=-1, epsilon=1e-5)
    if args.tied:
        lm = node("Transpose", [emb], ["/lm_head/weight_t"], "/lm_head/Transpose", perm=[1, 0])
    else:
        lm = w.add("lm_head.weight", weight(rng, (h, vocab), h, dt))
    node("MatMul", [n, lm], ["logits"], "/lm_head/MatMul")
    w.close()
    graph = helper.make_graph(
        nodes, "decoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", onnx_dt, ["batch", "sequence", vocab])],
        initializer=w.graph_inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", args.opset)],
                              producer_name="quantd-tests")
    model.ir_version = 8
    with open(args.out, "wb") as f:
        f.write(model.SerializeToString())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=320)
    ap.add_argument("--heads", type=int, default=5)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--mlp", type=int, default=864)
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    ap.add_argument("--external", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tied", action="store_true")
    build(ap.parse_args())


if __name__ == "__main__":
    main()
