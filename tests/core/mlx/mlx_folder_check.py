#!/usr/bin/env python3
"""Independent check of an MLX folder written from a Hugging Face checkpoint.

Reads both folders with json + numpy only (no Quantd code) and checks what
mlx_lm.convert would have written:
  * every shard is a valid safetensors file with metadata {"format": "mlx"},
    its tensors cover the data section exactly, and the index maps each name
    to the shard that holds it;
  * config.json and model.safetensors.index.json are byte for byte what
    mlx-lm's save_config / save_model produce (json.dump, indent=4, sorted
    top-level keys) for this checkpoint and recipe, with the per-layer mixed
    rule re-derived here from mlx-lm's predicate;
  * quantized weights unpack (LSB-first bit stream, element k at bit k*bits)
    and dequantize (code * scale + bias) to within a per-width SQNR of the
    source; other tensors are the source bytes;
  * tokenizer files and generation_config.json are copied unchanged.

usage: mlx_folder_check.py CKPT_DIR OUT_DIR BITS GROUP_SIZE RECIPE
(RECIPE: none | mixed_2_6 | mixed_3_4 | mixed_3_6 | mixed_4_6)
"""
import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "U32": np.uint32}
MIN_SQNR = {2: 4.0, 3: 11.0, 4: 17.0, 5: 23.0, 6: 29.0, 8: 38.0}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    base = 8 + n
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1]) for v in header.values())
    pos = 0
    for b, e in spans:
        assert b == pos, f"{path}: gap or overlap at {b}"
        pos = e
    assert base + pos == len(data), f"{path}: data section not covered"
    tensors = {}
    for name, v in header.items():
        b, e = v["data_offsets"]
        raw = data[base + b:base + e]
        arr = np.frombuffer(raw, dtype=DTYPES[v["dtype"]]).reshape(v["shape"])
        tensors[name] = (v["dtype"], arr, raw)
    return meta, tensors


def to_f32(dtype, arr):
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def unpack(words, bits, cols):
    rows = words.shape[0]
    raw = np.ascontiguousarray(words).view(np.uint8).reshape(rows, -1)
    bitstream = np.unpackbits(raw, axis=1, bitorder="little")
    codes = bitstream.reshape(rows, cols, bits)
    weights = (1 << np.arange(bits)).astype(np.uint32)
    return (codes.astype(np.uint32) * weights).sum(axis=2)


def mixed_predicate(recipe, module_paths, num_layers, group_size):
    low, high = {"mixed_2_6": (2, 6), "mixed_3_4": (3, 4), "mixed_3_6": (3, 6),
                 "mixed_4_6": (4, 6)}[recipe]
    down = [k for k in module_paths if "down_proj" in k]
    for layer_location, k in enumerate(down[0].split(".")):
        if k.isdigit():
            break

    def predicate(path):
        parts = path.split(".")
        index = int(parts[layer_location]) if len(parts) > layer_location else 0
        more = (index < num_layers // 8 or index >= 7 * num_layers // 8
                or (index - num_layers // 8) % 3 == 2)
        bits = low
        if ("v_proj" in path or "v_a_proj" in path or "v_b_proj" in path) and more:
            bits = high
        elif "down_proj" in path and more:
            bits = high
        elif "lm_head" in path:
            bits = high
        return {"group_size": group_size, "bits": bits, "mode": "affine"}

    return predicate


def main():
    ckpt, out, bits, group, recipe = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(
        sys.argv[4]), sys.argv[5]
    with open(os.path.join(ckpt, "config.json")) as f:
        config = json.load(f)
    gen_path = os.path.join(ckpt, "generation_config.json")
    if os.path.exists(gen_path):
        with open(gen_path) as f:
            gen = json.load(f)
        if gen.get("eos_token_id", False):
            config["eos_token_id"] = gen["eos_token_id"]

    source = {}
    for name in sorted(os.listdir(ckpt)):
        if name.endswith(".safetensors"):
            source.update(read_safetensors(os.path.join(ckpt, name))[1])
    source = {k: v for k, v in source.items() if not k.endswith(".rotary_emb.inv_freq")}

    # What mlx-lm quantizes, and at how many bits.
    quant = {"group_size": group, "bits": bits, "mode": "affine"}
    plan = {}
    candidates = [k[:-len(".weight")] for k, (dt, arr, _) in source.items()
                  if k.endswith(".weight") and arr.ndim == 2 and arr.shape[1] % group == 0]
    predicate = None
    if recipe != "none":
        predicate = mixed_predicate(recipe, candidates, config["num_hidden_layers"], group)
    for m in candidates:
        if predicate:
            plan[m] = predicate(m)
            quant[m] = plan[m]
        else:
            plan[m] = {"group_size": group, "bits": bits, "mode": "affine"}

    # config.json, byte for byte.
    expected = dict(config)
    expected["quantization"] = quant
    expected.pop("_name_or_path", None)
    expected.pop("vision_config", None)
    expected["quantization_config"] = expected["quantization"]
    expected = dict(sorted(expected.items()))
    with open(os.path.join(out, "config.json")) as f:
        got = f.read()
    want = json.dumps(expected, indent=4)
    assert got == want, f"config.json differs:\n--- got\n{got}\n--- want\n{want}"

    # Shards and index.
    with open(os.path.join(out, "model.safetensors.index.json")) as f:
        index_text = f.read()
    index = json.loads(index_text)
    output = {}
    for shard in sorted(set(index["weight_map"].values())):
        meta, tensors = read_safetensors(os.path.join(out, shard))
        assert meta == {"format": "mlx"}, f"{shard}: metadata {meta}"
        for name in tensors:
            assert index["weight_map"][name] == shard, name
        output.update(tensors)
    total_size = sum(len(raw) for _, _, raw in output.values())
    total_params = sum(arr.size for _, arr, _ in source.values())
    want_index = {"metadata": {"total_size": total_size, "total_parameters": total_params},
                  "weight_map": {k: index["weight_map"][k] for k in sorted(index["weight_map"])}}
    assert index_text == json.dumps(want_index, indent=4), "index differs"

    expected_names = set()
    for name, (dtype, arr, raw) in source.items():
        module = name[:-len(".weight")]
        if module in plan:
            b, g = plan[module]["bits"], plan[module]["group_size"]
            rows, cols = arr.shape
            wdt, words, _ = output[name]
            sdt, scales, _ = output[module + ".scales"]
            bdt, biases, _ = output[module + ".biases"]
            assert wdt == "U32" and words.shape == (rows, cols * b // 32), name
            assert sdt == bdt == dtype, (name, sdt, bdt)
            assert scales.shape == biases.shape == (rows, cols // g), name
            codes = unpack(words, b, cols).astype(np.float32)
            s = np.repeat(to_f32(sdt, scales), g, axis=1)
            z = np.repeat(to_f32(bdt, biases), g, axis=1)
            deq = codes * s + z
            ref = to_f32(dtype, arr).astype(np.float64)
            sqnr = 10 * np.log10((ref ** 2).sum() / ((ref - deq) ** 2).sum())
            assert sqnr >= MIN_SQNR[b], f"{name}: {b}-bit SQNR {sqnr:.2f} dB"
            print(f"{name}: {b}-bit SQNR {sqnr:.2f} dB")
            expected_names |= {name, module + ".scales", module + ".biases"}
        else:
            odt, _, oraw = output[name]
            assert odt == dtype and oraw == raw, f"{name}: not the source bytes"
            expected_names.add(name)
    assert expected_names == set(output), set(output) ^ expected_names

    for side in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "tokenizer.model", "generation_config.json"):
        src = os.path.join(ckpt, side)
        if os.path.exists(src):
            with open(src, "rb") as a, open(os.path.join(out, side), "rb") as b:
                assert a.read() == b.read(), f"{side} differs"
    print("OK")


if __name__ == "__main__":
    main()
