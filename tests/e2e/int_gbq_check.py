#!/usr/bin/python3
"""GatherBlockQuantized embeddings in ONNX Runtime: 8-bit tables, and a tied
embedding / LM head stored once.

Generates the e2e decoder (int_make_decoder.py: hidden 320, vocab 1000), FP32
and FP16, untied and with the LM head reading Transpose(embedding), quantizes them
with `quantd quantize ... --quantize-embeddings --embedding-op
gatherblockquantized`, and for each configuration:
  - checks the graph: with a tied table shared, the GatherBlockQuantized reads
    (through Reshape) exactly the LM head's MatMulNBits codes, scales and zero
    points, and the output is smaller than the same recipe with
    `--embedding-op gather` (its own copy of the table) by about the size of
    that copy;
  - decodes every MatMulNBits and GatherBlockQuantized here with numpy from
    the documented layouts (independent of the C++ code), writes the same
    model with those float weights (MatMul / Gather), and runs both in ONNX
    Runtime (ort_compare.mjs, optimizations off): the logits must agree to
    cosine 0.9999999 and max |diff| 1e-3 (FP16: 0.999999 and 0.1, as every
    product is rounded to FP16), i.e. ORT reads the bytes as decoded;
  - compares the quantized model with the float original (cosine >= 0.98 for
    4-bit, 0.999 for 8-bit, the int.* floors).

Env: QUANTD_BIN, QUANTD_SOURCE_DIR; argument: a scratch directory.
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GBQ = ["--quantize-embeddings", "--embedding-op", "gatherblockquantized"]
INT4_HEAD = ["--precision", "int4", "--lm-head", "int4"]
INT8_HEAD = ["--precision", "int8", "--int8-mode", "matmulnbits", "--lm-head", "int8"]
# name, model (tied or untied), flags, bits of the shared table (0: not shared),
# min cosine against the float model.
CONFIGS = [
    ("tied-int4-sym", "tied", INT4_HEAD + GBQ, 4, 0.98),
    # 320 / 64 = 5 blocks: an odd count, the last zero-point byte half used.
    ("tied-int4-asym-b64", "tied", INT4_HEAD + ["--asymmetric", "--block-size", "64"] + GBQ, 4,
     0.98),
    ("tied-int8-sym", "tied", INT8_HEAD + GBQ, 8, 0.999),
    ("tied-int8-asym-b64", "tied", INT8_HEAD + ["--asymmetric", "--block-size", "64"] + GBQ, 8,
     0.999),
    # 4-bit LM head, 8-bit embeddings: not the same codes, two copies.
    ("tied-int4-int8emb-separate", "tied", INT4_HEAD + ["--int8-embeddings"] + GBQ, 0, 0.98),
    ("untied-gbq8-sym", "untied", ["--precision", "int8"] + GBQ, 0, 0.999),
    # 320 % 128 != 0: the last block of each row is short.
    ("untied-gbq8-asym-b128", "untied",
     ["--precision", "int8", "--asymmetric", "--block-size", "128"] + GBQ, 0, 0.999),
    ("untied-int4-int8emb-gbq8", "untied", ["--precision", "int4", "--int8-embeddings"] + GBQ, 0,
     0.98),
    # FP16 models: FP16 scales, FP16 Gather output.
    ("tied16-int4-sym", "tied16", INT4_HEAD + GBQ, 4, 0.98),
    ("untied16-gbq8-asym", "untied16", ["--precision", "int8", "--asymmetric"] + GBQ, 0, 0.999),
]


def attrs(n):
    return {a.name: a.i for a in n.attribute}


def nibbles(b, count):
    out = np.empty(len(b) * 2, np.int32)
    out[0::2] = b & 0xF
    out[1::2] = b >> 4
    return out[:count]


def raw(t):
    return np.frombuffer(t.raw_data, dtype=np.uint8)


def floats(t):
    return numpy_helper.to_array(t).astype(np.float32)


class Model:
    def __init__(self, path):
        self.m = onnx.load(path)
        self.inits = {t.name: t for t in self.m.graph.initializer}
        self.reshape = {n.output[0]: n.input[0] for n in self.m.graph.node if n.op_type == "Reshape"}

    def tensor(self, value):
        """The initializer behind `value`, through a Reshape (its bytes are the same)."""
        return self.inits[self.reshape.get(value, value)]


def decode_matmulnbits(model, n):
    a = attrs(n)
    k, nn, bs, bits = a["K"], a["N"], a["block_size"], a.get("bits", 4)
    nb = (k + bs - 1) // bs
    b = raw(model.tensor(n.input[1]))
    q = (nibbles(b, nn * nb * bs) if bits == 4 else b.astype(np.int32)).reshape(nn, nb * bs)
    s = floats(model.tensor(n.input[2])).reshape(nn, nb)
    if len(n.input) > 3 and n.input[3]:
        zb = raw(model.tensor(n.input[3]))
        if bits == 4:
            per = (nb + 1) // 2
            z = nibbles(zb, nn * per * 2).reshape(nn, per * 2)[:, :nb]
        else:
            z = zb.astype(np.int32).reshape(nn, nb)
    else:
        z = np.full((nn, nb), 1 << (bits - 1))
    w = (q - np.repeat(z, bs, axis=1)) * np.repeat(s, bs, axis=1)
    return w[:, :k].T.astype(np.float32)  # [K, N]


def decode_gbq(model, n):
    a = attrs(n)
    assert a["gather_axis"] == 0 and a["quantize_axis"] == 1, a
    bs, bits = a["block_size"], a.get("bits", 4)
    dt = model.tensor(n.input[0])
    # A shared table's tensors keep MatMulNBits' shapes (codes [N, blocks,
    # blob], scales [N * blocks]); the Reshapes only regroup the same bytes.
    rows = dt.dims[0]
    s = floats(model.tensor(n.input[2])).reshape(rows, -1)
    nb = s.shape[1]
    if dt.data_type == TensorProto.UINT8:
        cols = int(np.prod(dt.dims[1:])) * 8 // bits
        b = raw(dt)
        q = (nibbles(b, rows * cols) if bits == 4 else b.astype(np.int32)).reshape(rows, cols)
        default_zp = 1 << (bits - 1)
    else:  # int4 (22) / uint4 (21): one element per logical position
        cols = int(np.prod(dt.dims[1:]))
        q = nibbles(raw(dt), rows * cols).reshape(rows, cols)
        if dt.data_type == TensorProto.INT4:
            q = np.where(q >= 8, q - 16, q)
        default_zp = 0
    if len(n.input) > 3 and n.input[3]:
        zt = model.tensor(n.input[3])
        zb = raw(zt)
        if zt.data_type == TensorProto.UINT8 and bits == 4:
            per = (nb + 1) // 2
            z = nibbles(zb, rows * per * 2).reshape(rows, per * 2)[:, :nb]
        elif zt.data_type == TensorProto.UINT8:
            z = zb.astype(np.int32).reshape(rows, nb)
        else:
            z = nibbles(zb, rows * nb).reshape(rows, nb)
    else:
        z = np.full((rows, nb), default_zp)
    zz = np.repeat(z, bs, axis=1)[:, :cols]
    ss = np.repeat(s, bs, axis=1)[:, :cols]
    return ((q - zz) * ss).astype(np.float32)


def write_decoded(src, dst):
    """The model at `src` with every MatMulNBits / GatherBlockQuantized
    replaced by MatMul / Gather over the weights decoded here."""
    model = Model(src)
    g = model.m.graph
    nodes, extra = [], []
    for n in g.node:
        if n.op_type == "MatMulNBits":
            name = n.name + "_decoded_W"
            dt = np.float16 if model.tensor(n.input[2]).data_type == TensorProto.FLOAT16 else np.float32
            extra.append(numpy_helper.from_array(decode_matmulnbits(model, n).astype(dt), name))
            nodes.append(helper.make_node("MatMul", [n.input[0], name], list(n.output), name=n.name))
        elif n.op_type == "GatherBlockQuantized":
            name = n.name + "_decoded_table"
            dt = np.float16 if model.tensor(n.input[2]).data_type == TensorProto.FLOAT16 else np.float32
            extra.append(numpy_helper.from_array(decode_gbq(model, n).astype(dt), name))
            nodes.append(helper.make_node("Gather", [name, n.input[1]], list(n.output),
                                          name=n.name, axis=0))
        else:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(extra)
    onnx.save(model.m, dst)


def quantize(quantd, src, out, flags):
    r = subprocess.run([quantd, "quantize", src, "-o", out] + flags, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"quantd quantize {' '.join(flags)} failed: {r.stderr[-2000:]}")


def size_of(path):
    return sum(os.path.getsize(p) for p in (path, path + ".data") if os.path.exists(p))


def compare(ref, test, min_cos, max_abs=None):
    cmd = ["node", os.path.join(os.environ["QUANTD_SOURCE_DIR"], "tests/e2e/ort_compare.mjs"),
           "--ref", ref, "--test", test, "--min-cosine", str(min_cos), "--opt", "disabled",
           "--json"]
    if max_abs is not None:
        cmd += ["--max-abs", str(max_abs)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    res = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {"ok": False}
    out = res.get("results", [{}])[0]
    return bool(res.get("ok")), out.get("cosine"), out.get("maxAbs"), r.stderr.strip()[-300:]


def check_structure(path, bits):
    """Errors (strings) in the graph of a shared-table output."""
    model = Model(path)
    g = model.m.graph
    mnb = [n for n in g.node if n.op_type == "MatMulNBits" and n.output[0] == "logits"]
    gbq = [n for n in g.node if n.op_type == "GatherBlockQuantized"]
    if len(mnb) != 1 or len(gbq) != 1:
        return [f"want one LM head MatMulNBits and one GatherBlockQuantized: {len(mnb)}, {len(gbq)}"]
    head, emb = mnb[0], gbq[0]
    errors = []
    if attrs(head)["bits"] != bits or attrs(emb)["bits"] != bits:
        errors.append(f"bits {attrs(head)['bits']} / {attrs(emb)['bits']}, want {bits}")
    shared = [(1, 0), (2, 2)] + ([(3, 3)] if len(head.input) > 3 else [])
    for hi, ei in shared:
        if model.reshape.get(emb.input[ei]) != head.input[hi]:
            errors.append(f"GatherBlockQuantized input {ei} does not read {head.input[hi]}")
    if len(emb.input) != len(head.input):
        errors.append("zero points differ")
    if "model.embed_tokens.weight" in model.inits:
        errors.append("the float table is still stored")
    return errors


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    quantd = os.environ["QUANTD_BIN"]
    make = os.path.join(os.environ["QUANTD_SOURCE_DIR"], "tests/e2e/int_make_decoder.py")
    src = {}
    for kind in ("tied", "untied", "tied16", "untied16"):
        src[kind] = os.path.join(work, f"{kind}.onnx")
        extra = (["--tied"] if kind.startswith("tied") else []) + \
            (["--dtype", "float16"] if kind.endswith("16") else [])
        subprocess.run([sys.executable, make, src[kind]] + extra, check=True,
                       stdout=subprocess.DEVNULL)
    vocab, hidden = 1000, 320
    failed = []
    for name, kind, flags, bits, min_cos in CONFIGS:
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        out, dec = os.path.join(d, "model.onnx"), os.path.join(d, "decoded.onnx")
        for p in (out, out + ".data"):
            if os.path.exists(p):
                os.remove(p)
        quantize(quantd, src[kind], out, ["--report", out + ".json"] + flags)
        notes = "\n".join(json.load(open(out + ".json")).get("notes", []))
        errors = []
        if bits:
            errors += check_structure(out, bits)
            if "stored once" not in notes:
                errors.append("the report does not say the table is stored once")
            # The same recipe with the embedding as DequantizeLinear + Gather:
            # the table's own copy (INT4 blocked, or INT8 per row).
            sep = os.path.join(d, "separate.onnx")
            sep_flags = [f if f != "gatherblockquantized" else "gather" for f in flags]
            quantize(quantd, src[kind], sep, sep_flags)
            saved = size_of(sep) - size_of(out)
            table = vocab * hidden * bits // 8
            print(f"     {name}: {size_of(out)} bytes, {size_of(sep)} with its own copy of the "
                  f"table: {saved} bytes saved (codes of the table: {table})")
            if not table * 0.95 <= saved <= table * 1.5:
                errors.append(f"saved {saved} bytes, want about {table}")
        elif kind == "tied" and "quantized separately" not in notes:
            errors.append("the report does not say why the tied table is quantized separately")
        write_decoded(out, dec)
        # FP16: W' and every product are rounded to FP16 (as int_layout_check.py).
        fp16 = kind.endswith("16")
        ok_dec, cos_dec, abs_dec, err_dec = compare(dec, out, 0.999999 if fp16 else 0.9999999,
                                                    0.1 if fp16 else 1e-3)
        ok_flt, cos_flt, _, err_flt = compare(src[kind], out, min_cos)
        if not ok_dec:
            errors.append(f"ORT vs decoded weights: cosine {cos_dec}, max |diff| {abs_dec} {err_dec}")
        if not ok_flt:
            errors.append(f"ORT vs float: cosine {cos_flt} < {min_cos} {err_flt}")
        print(f"{'ok  ' if not errors else 'FAIL'} {name}: cosine(decoded, quantized) = {cos_dec}, "
              f"max |diff| {abs_dec}; cosine(float, quantized) = {cos_flt}")
        for e in errors:
            print(f"     {e}")
        if errors:
            failed.append(name)
    if failed:
        raise SystemExit(f"GatherBlockQuantized check failed: {failed}")


if __name__ == "__main__":
    main()
