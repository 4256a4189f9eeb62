#!/usr/bin/python3
"""Checks that ONNX Runtime reads quantd's INT4/INT8 tensors exactly as quantd
describes them.

For each configuration: write a one-MatMul model (K=100 so K % block != 0, and
K < 128 for block 128), quantize it with `quantd quantize`, decode the
quantized tensors here with numpy from the documented layouts (independent of
the C++ code), write a float model whose weight is that decoded W', and run
both in ONNX Runtime (ort_compare.mjs, graph optimizations off so ORT does
not fuse DequantizeLinear into kernels that also quantize the activations):
outputs must agree to cosine 0.99999999 (FP16 models: 0.999999, as W' and
the product are rounded to FP16), i.e. ORT's MatMulNBits /
DequantizeLinear dequantize to the same W'.
Also checks the quality report against W' (SQNR recomputed here).

Env: QUANTD_BIN, QUANTD_SOURCE_DIR; argument: a scratch directory.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

K, N = 100, 40


def make_model(path, dtype, w):
    onnx_dt = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    init = helper.make_tensor("W", onnx_dt, w.shape, w.astype(dtype).tobytes(), raw=True)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", onnx_dt, ["batch", K])],
        [helper.make_tensor_value_info("y", onnx_dt, ["batch", N])], initializer=[init])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def raw(t):
    return np.frombuffer(t.raw_data, dtype=np.uint8)


def nibbles(b, count):
    out = np.empty(len(b) * 2, np.int32)
    out[0::2] = b & 0xF
    out[1::2] = b >> 4
    return out[:count]


def floats(t):
    dt = np.float16 if t.data_type == TensorProto.FLOAT16 else np.float32
    return np.frombuffer(t.raw_data, dtype=dt).astype(np.float32)


def attrs(n):
    return {a.name: a.i for a in n.attribute}


def decode(path):
    m = onnx.load(path)
    inits = {t.name: t for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "MatMulNBits":
            a = attrs(n)
            k, nn, bs = a["K"], a["N"], a["block_size"]
            nb = (k + bs - 1) // bs
            q = nibbles(raw(inits[n.input[1]]), nn * nb * bs).reshape(nn, nb * bs)
            s = floats(inits[n.input[2]]).reshape(nn, nb)
            if len(n.input) > 3 and n.input[3]:
                per = (nb + 1) // 2
                z = nibbles(raw(inits[n.input[3]]), nn * per * 2).reshape(nn, per * 2)[:, :nb]
            else:
                z = np.full((nn, nb), 8)
            w = (q - np.repeat(z, bs, axis=1)) * np.repeat(s, bs, axis=1)
            return w[:, :k].T.astype(np.float32), np.float32 if inits[n.input[2]].data_type == 1 else np.float16
        if n.op_type == "DequantizeLinear":
            a = attrs(n)
            qt = inits[n.input[0]]
            st = inits[n.input[1]]
            dims = list(qt.dims)
            count = int(np.prod(dims))
            s = floats(st)
            if qt.data_type in (TensorProto.INT8, TensorProto.UINT8):
                q = np.frombuffer(qt.raw_data, np.int8 if qt.data_type == TensorProto.INT8 else np.uint8)
                q = q.astype(np.int32).reshape(dims)
                z = np.frombuffer(inits[n.input[2]].raw_data,
                                  np.int8 if qt.data_type == TensorProto.INT8 else np.uint8).astype(np.int32)
                if s.size > 1:  # per channel, axis 1
                    w = (q - z[None, :]) * s[None, :]
                else:
                    w = (q - z[0]) * s[0]
            else:  # int4 (22) / uint4 (21), blocked along axis 0
                bs = a["block_size"]
                q = nibbles(raw(qt), count).reshape(dims)
                if qt.data_type == 22:
                    q = np.where(q >= 8, q - 16, q)
                nb = (dims[0] + bs - 1) // bs
                s = s.reshape(nb, dims[1])
                if len(n.input) > 2 and n.input[2]:
                    z = nibbles(raw(inits[n.input[2]]), nb * dims[1]).reshape(nb, dims[1])
                else:
                    z = np.zeros((nb, dims[1]), np.int32)
                w = (q - np.repeat(z, bs, axis=0)[:dims[0]]) * np.repeat(s, bs, axis=0)[:dims[0]]
            return w.astype(np.float32), (np.float16 if st.data_type == TensorProto.FLOAT16 else np.float32)
    raise SystemExit(f"{path}: no quantized node found")


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    quantd = os.environ["QUANTD_BIN"]
    compare = os.path.join(os.environ["QUANTD_SOURCE_DIR"], "tests/e2e/ort_compare.mjs")
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((K, N)) * 0.05).astype(np.float32)
    w[rng.random((K, N)) < 0.01] *= 8
    w[:16, 0] = 0  # an all-zero block
    configs = [
        ("nbits-sym-16", np.float32, ["--precision", "int4", "--block-size", "16"]),
        ("nbits-asym-32", np.float32, ["--precision", "int4", "--asymmetric", "--block-size", "32"]),
        ("nbits-asym-128", np.float32, ["--precision", "int4", "--asymmetric", "--block-size", "128"]),
        ("nbits-sym-32-fp16", np.float16, ["--precision", "int4"]),
        ("nbits-search-asym-64", np.float32, ["--precision", "int4", "--asymmetric", "--block-size",
                                              "64", "--algorithm", "search"]),
        ("qdq-sym-32", np.float32, ["--precision", "int4", "--int4-format", "qdq"]),
        ("qdq-asym-64", np.float32, ["--precision", "int4", "--int4-format", "qdq", "--asymmetric",
                                     "--block-size", "64"]),
        ("int8-per-channel", np.float32, ["--precision", "int8", "--per-channel"]),
        ("uint8-per-tensor", np.float32, ["--precision", "int8", "--int8-weight-type", "quint8"]),
    ]
    failed = []
    for name, dtype, flags in configs:
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        src, out, ref = (os.path.join(d, f) for f in ("float.onnx", "quant.onnx", "decoded.onnx"))
        make_model(src, dtype, w)
        subprocess.run([quantd, "quantize", src, "-o", out, "--report", out + ".json"] + flags,
                       check=True, stdout=subprocess.DEVNULL)
        w_hat, _ = decode(out)
        make_model(ref, dtype, w_hat)
        r = subprocess.run(["node", compare, "--ref", ref, "--test", out, "--min-cosine", "0.999999" if dtype == np.float16 else "0.99999999",
                            "--opt", "disabled", "--json"], capture_output=True, text=True)
        res = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {"ok": False}
        # The report's SQNR must be the one of W' (fp16 models: of the fp16 weights).
        wf = w.astype(dtype).astype(np.float32)
        sqnr = 10 * math.log10(float((wf.astype(np.float64) ** 2).sum()) /
                               float(((wf.astype(np.float64) - w_hat) ** 2).sum()))
        rep = json.load(open(out + ".json"))["tensors"][0]["sqnr_db"]
        ok = res.get("ok") and abs(rep - sqnr) < 1e-3
        cos = res.get("results", [{}])[0].get("cosine")
        print(f"{'ok  ' if ok else 'FAIL'} {name}: ORT cosine(decoded, quantized) = {cos}, "
              f"SQNR report {rep:.4f} dB, recomputed {sqnr:.4f} dB {r.stderr.strip()}")
        if not ok:
            failed.append(name)
    if failed:
        raise SystemExit(f"layout check failed: {failed}")


if __name__ == "__main__":
    main()
