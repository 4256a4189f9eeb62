#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the shared test data.

usage: make_seeds.py TESTDATA OUT_DIR PROTO_DIR

One folder per target under OUT_DIR. Multi-file inputs use the layout of
tests/fuzz/fuzz_util.h: u32 little-endian length of the first file, the
first file, the second file. Protobuf seeds are encoded with protoc from
text format (PROTO_DIR holds quantd/v1/quantd.proto).
"""
import hashlib
import json
import os
import struct
import subprocess
import sys


def two(first, second):
    return struct.pack("<I", len(first)) + first + second


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def encode(proto_dir, message, text):
    return subprocess.run(
        ["protoc", "-I", proto_dir, "--encode=quantd.v1." + message, "quantd/v1/quantd.proto"],
        input=text.encode(), capture_output=True, check=True).stdout


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def safetensors(tensors):
    """A small F32 safetensors file: {name: (shape, values)}."""
    header, data = {}, b""
    for name, (shape, values) in tensors.items():
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main():
    testdata, out, proto_dir = sys.argv[1:4]
    onnx = os.path.join(testdata, "onnx")
    seeds = os.path.join(out, "onnx_fuzzer")
    write(seeds, "gpt2", two(read(os.path.join(onnx, "genai-tiny-random-gpt2-fp32/past.onnx")), b""))
    ext = os.path.join(onnx, "genai-tiny-random-llama-fp16-extdata")
    write(seeds, "llama-extdata",
          two(read(os.path.join(ext, "model.onnx")), read(os.path.join(ext, "model.onnx.data"))))
    for d in sorted(os.listdir(os.path.join(onnx, "openvino-matmulnbits-3x4"))):
        if d.endswith(".onnx"):
            write(seeds, "openvino", two(read(os.path.join(onnx, "openvino-matmulnbits-3x4", d)), b""))

    seeds = os.path.join(out, "gguf_fuzzer")
    for name in ["gguf-imatrix/out-IQ2_XXS.gguf", "gguf-imatrix/out-Q4_K_M.gguf"]:
        write(seeds, os.path.basename(name), read(os.path.join(testdata, name)))
    # A header-only GGUF (v3, no tensors, one string key): quick to mutate.
    key = b"general.architecture"
    val = b"llama"
    tiny = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key +
            struct.pack("<I", 8) + struct.pack("<Q", len(val)) + val)
    write(seeds, "header-only", tiny)

    seeds = os.path.join(out, "checkpoint_fuzzer")
    for ckpt in ["llama-tiny-shared", "phi3-tiny-shared"]:
        config = read(os.path.join(testdata, "hf/checkpoints", ckpt, "config.json"))
        small = safetensors({"model.embed_tokens.weight": ([4, 2], [0.5, -1, 2, 0.25, 1, 1, 0, 3]),
                             "model.norm.weight": ([2], [1, 1])})
        write(seeds, ckpt, two(config, small))

    seeds = os.path.join(out, "recipe_fuzzer")
    recipes = {
        "fp16": "precision: PRECISION_FP16",
        "int8": "precision: PRECISION_INT8 per_channel: true exclude_regex: \"^/h\\\\.0/.*\"",
        "int4": "precision: PRECISION_INT4 block_size: 64 algorithm: QUANT_ALGORITHM_SEARCH "
                "exclude_nodes: \"x\" op_types: \"MatMul\"",
        "int4-qdq": "precision: PRECISION_INT4 int4_format: INT4_FORMAT_QDQ symmetric: false",
        "fp16-io": "precision: PRECISION_FP16 keep_io_types: false node_block_list: \"a\"",
    }
    for name, text in recipes.items():
        write(seeds, name, encode(proto_dir, "Recipe", text))

    seeds = os.path.join(out, "upload_fuzzer")
    body = b"onnx-bytes-for-the-upload-fuzzer"
    digest = hashlib.sha256(body).hexdigest()
    msgs = [
        "header { upload_id: \"fuzz-up-1\" files { name: \"model.onnx\" size_bytes: %d } }" % len(body),
        "chunk { offset: 0 data: \"%s\" }" % body.decode(),
        "finish { sha256: \"%s\" }" % digest,
    ]
    write(seeds, "complete", b"".join(
        varint(len(m)) + m for m in (encode(proto_dir, "UploadRequest", t) for t in msgs)))
    partial = [
        "header { upload_id: \"fuzz-up-2\" files { name: \"model.onnx\" size_bytes: 10 } "
        "files { name: \"model.onnx.data\" size_bytes: 6 sha256: \"%s\" } }" % ("a" * 64),
        "chunk { offset: 0 data: \"0123456789ab\" }",
        "chunk { offset: 3 data: \"x\" }",
    ]
    write(seeds, "partial", b"".join(
        varint(len(m)) + m for m in (encode(proto_dir, "UploadRequest", t) for t in partial)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
