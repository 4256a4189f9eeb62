#!/usr/bin/env python3
"""Checks the element types of a converted ONNX model against its original.

  check_types.py ORIGINAL CONVERTED --precision fp16|fp32 [--no-keep-io-types]
                 [--block-list Op,Op]

fp16: every float tensor (initializers, Constant/attribute tensors, also in
subgraphs) is FLOAT16 unless all its consumers are blocked; every input and
output of a blocked node that carries floats is FLOAT (nothing that should be
FP32 became FP16); no FLOAT tensor feeds an unblocked node.
fp32: no FLOAT16/BFLOAT16 tensor is left, and Casts to FLOAT16/BFLOAT16 exist
only to produce graph outputs (keep_io_types).
Both: graph input/output types equal the original's with keep_io_types, and
are the target type otherwise.
Exit 0 on success; prints every violation and exits 1 otherwise.
"""
import argparse
import sys

import onnx
from onnx import TensorProto

FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16}


def graphs(g):
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from graphs(a.g)
            for sg in a.graphs:
                yield from graphs(sg)


def tensors(g):
    for sub in graphs(g):
        for t in sub.initializer:
            yield t.name, t, None
        for n in sub.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield (n.output[0] if n.op_type == "Constant" else ""), a.t, n


def known_types(g):
    types = {}
    for sub in graphs(g):
        for v in list(sub.input) + list(sub.output) + list(sub.value_info):
            if v.type.HasField("tensor_type"):
                types[v.name] = v.type.tensor_type.elem_type
        for t in sub.initializer:
            types[t.name] = t.data_type
        for n in sub.node:
            if n.op_type == "Cast":
                types[n.output[0]] = next(a.i for a in n.attribute if a.name == "to")
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        types[n.output[0]] = a.t.data_type
    return types


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("original")
    ap.add_argument("converted")
    ap.add_argument("--precision", choices=["fp16", "fp32"], required=True)
    ap.add_argument("--no-keep-io-types", action="store_true")
    ap.add_argument("--block-list", default="")
    # Node names the converter kept in FP32 (the report's kept_fp32).
    ap.add_argument("--node-block-list", default="")
    args = ap.parse_args()
    orig = onnx.load(args.original, load_external_data=False)
    conv = onnx.load(args.converted, load_external_data=False)
    block = set(filter(None, args.block_list.split(",")))
    node_block = set(filter(None, args.node_block_list.split(",")))
    target = TensorProto.FLOAT16 if args.precision == "fp16" else TensorProto.FLOAT
    errors = []

    def io_check(orig_vals, conv_vals, what):
        conv_by = {v.name: v.type.tensor_type.elem_type for v in conv_vals}
        for v in orig_vals:
            t = v.type.tensor_type.elem_type
            got = conv_by.get(v.name)
            if got is None:
                errors.append(f"{what} {v.name} is missing")
                continue
            want = t if (not args.no_keep_io_types or t not in FLOATS) else target
            if got != want:
                errors.append(f"{what} {v.name}: type {got}, want {want}")

    inits = {t.name for t in orig.graph.initializer}
    io_check([v for v in orig.graph.input if v.name not in inits], conv.graph.input, "input")
    io_check(orig.graph.output, conv.graph.output, "output")

    consumers = {}
    blocked_nodes = []
    for sub in graphs(conv.graph):
        for n in sub.node:
            is_blocked = n.op_type in block or n.name in node_block
            if is_blocked:
                blocked_nodes.append(n)
            for i in n.input:
                consumers.setdefault(i, []).append((n, is_blocked))
    types = known_types(conv.graph)

    if args.precision == "fp16":
        for name, t, owner in tensors(conv.graph):
            if t.data_type != TensorProto.FLOAT:
                continue
            if owner is not None and (owner.op_type in block or owner.name in node_block):
                continue
            users = consumers.get(name, [])
            if not users or not all(b for _, b in users):
                errors.append(f"tensor {name or '(attribute)'} stayed FLOAT but feeds unblocked nodes "
                              f"{[n.name for n, b in users if not b]}")
        for n in blocked_nodes:
            for v in list(n.input) + list(n.output):
                if types.get(v) == TensorProto.FLOAT16:
                    errors.append(f"blocked {n.op_type} node {n.name}: {v} is FLOAT16")
    else:
        for name, t, _ in tensors(conv.graph):
            if t.data_type in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
                errors.append(f"tensor {name or '(attribute)'} is still {t.data_type}")
        outputs = {v.name for v in conv.graph.output}
        for sub in graphs(conv.graph):
            for n in sub.node:
                if n.op_type == "Cast" and n.output[0] not in outputs:
                    to = next(a.i for a in n.attribute if a.name == "to")
                    if to in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
                        errors.append(f"Cast {n.name} to {to} inside an FP32 model")
    for e in errors:
        print("FAIL", e)
    if not errors:
        print(f"ok   types of {args.converted} ({args.precision})")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
