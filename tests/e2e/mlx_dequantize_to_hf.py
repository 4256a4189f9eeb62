#!/usr/bin/env python3
"""Turns an MLX folder back into a float Hugging Face checkpoint folder.

Reads the MLX folder with json + numpy only (the unpacking and dequantization
of tests/core/mlx/mlx_folder_check.py: LSB-first bit stream, w = code * scale
+ bias per group), and writes OUT_DIR/<name of CKPT_DIR>/ (llama.cpp's
general.name derives from the folder name) holding config.json, the
tokenizer files and generation_config.json copied from the source
checkpoint CKPT_DIR, and every tensor of the MLX folder as one F32
model.safetensors (quantized ones dequantized, the others converted as they
are). What MLX dropped (lm_head with tied embeddings) stays dropped.

--misread: read every run of 8 codes backwards (what an MSB-first reader of
MLX's 4-bit words would see), the control that must break the model.

usage: mlx_dequantize_to_hf.py CKPT_DIR MLX_DIR OUT_DIR [--misread]
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "mlx"))
from mlx_folder_check import dequantized_weights, read_safetensors  # noqa: E402

SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "tokenizer.model")


def write_safetensors(path, tensors):
    """Writes {name: float32 array} as one safetensors file (sorted names)."""
    header, offset = {}, 0
    for name in sorted(tensors):
        size = tensors[name].size * 4
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in sorted(tensors):
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


def main():
    args = [a for a in sys.argv[1:] if a != "--misread"]
    misread = "--misread" in sys.argv[1:]
    ckpt, mlx, out_root = args
    with open(os.path.join(mlx, "config.json")) as f:
        quant = json.load(f)["quantization"]
    with open(os.path.join(mlx, "model.safetensors.index.json")) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    output = {}
    for shard in shards:
        output.update(read_safetensors(os.path.join(mlx, shard))[1])

    # Quantized modules (those with scales), their widths from the config
    # (per-module entries of the mixed recipes override the global ones), and
    # the logical weight shapes for dequantized_weights.
    plan, shapes = {}, {}
    for name in output:
        if name.endswith(".scales"):
            module = name[:-len(".scales")]
            own = quant.get(module)
            bits = (own or quant)["bits"]
            group = (own or quant)["group_size"]
            plan[module] = {"bits": bits, "group_size": group}
            words = output[module + ".weight"][1]
            shapes[module + ".weight"] = (words.shape[0], words.shape[1] * 32 // bits)
    source = {}
    for name, entry in output.items():
        module = name.rsplit(".", 1)[0]
        if module in plan and not name.endswith(".weight"):
            continue  # scales and biases
        if name in shapes:
            source[name] = ("F32", np.broadcast_to(np.float32(0), shapes[name]), None)
        else:
            source[name] = entry
    weights = dequantized_weights(source, output, plan, misread=misread)

    out = os.path.join(out_root, os.path.basename(os.path.normpath(ckpt)))
    os.makedirs(out)
    for side in SIDE_FILES:
        if os.path.exists(os.path.join(ckpt, side)):
            shutil.copyfile(os.path.join(ckpt, side), os.path.join(out, side))
    write_safetensors(os.path.join(out, "model.safetensors"), weights)
    print(f"{mlx} -> {out}: {len(weights)} tensors, {len(plan)} dequantized"
          + (" (misread layout)" if misread else ""))


if __name__ == "__main__":
    main()
