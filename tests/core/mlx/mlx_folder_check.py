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

  * with REF_DIR (../shared/testdata/hf/ref): a float32 numpy forward pass
    of the checkpoint's architecture reproduces the reference logits on the
    float weights, and on the dequantized weights stays close to them
    (cosine per prompt position), so a layout error cannot hide behind
    byte-exact kernels.

usage: mlx_folder_check.py CKPT_DIR OUT_DIR BITS GROUP_SIZE RECIPE [REF_DIR]
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


def dequantized_weights(source, output, plan, misread=False):
    """Source names -> float32 weights, quantized ones dequantized. misread:
    read every run of 8 codes backwards (what an MSB-first reader of MLX's
    4-bit words would see), the control for the logits check."""
    weights = {}
    for name, (dtype, arr, _) in source.items():
        module = name[:-len(".weight")]
        if module in plan:
            b, g = plan[module]["bits"], plan[module]["group_size"]
            _, words, _ = output[name]
            sdt, scales, _ = output[module + ".scales"]
            _, biases, _ = output[module + ".biases"]
            codes = unpack(words, b, arr.shape[1]).astype(np.float32)
            if misread:
                codes = codes.reshape(codes.shape[0], -1, 8)[:, :, ::-1].reshape(codes.shape)
            weights[name] = (codes * np.repeat(to_f32(sdt, scales), g, axis=1) +
                             np.repeat(to_f32(sdt, biases), g, axis=1))
        else:
            weights[name] = to_f32(dtype, arr)
    return weights


def forward(config, w, tokens):
    """Float32 forward pass of a Llama / Phi-3 decoder over a prompt (logits)."""
    hidden = config["hidden_size"]
    n_heads = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads", n_heads)
    hd = config.get("head_dim", hidden // n_heads)
    eps = config["rms_norm_eps"]
    theta = config.get("rope_theta", 10000.0)
    seq = len(tokens)
    inv_freq = 1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    attn_factor = 1.0
    rs = config.get("rope_scaling") or {}
    if rs.get("type") == "longrope" or rs.get("rope_type") == "longrope":
        # The prompt is shorter than original_max_position_embeddings: short factors.
        inv_freq = inv_freq / np.asarray(rs["short_factor"], dtype=np.float64)
        orig = config["original_max_position_embeddings"]
        scale = config["max_position_embeddings"] / orig
        if scale > 1.0:
            attn_factor = np.sqrt(1 + np.log(scale) / np.log(orig))
    ang = np.outer(np.arange(seq, dtype=np.float64), inv_freq)
    ang = np.concatenate([ang, ang], axis=1)
    cos = (np.cos(ang) * attn_factor).astype(np.float32)
    sin = (np.sin(ang) * attn_factor).astype(np.float32)

    def rms(x, g):
        return (x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + eps)).astype(
            np.float32) * g

    def rope(x):  # [heads, seq, hd], rotate-half convention
        x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
        return x * cos + np.concatenate([-x2, x1], axis=-1) * sin

    def silu(x):
        return x / (1 + np.exp(-x))

    h = w["model.embed_tokens.weight"][tokens]
    mask = np.triu(np.full((seq, seq), -np.inf, dtype=np.float32), 1)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms(h, w[p + "input_layernorm.weight"])
        if p + "self_attn.qkv_proj.weight" in w:
            qkv = x @ w[p + "self_attn.qkv_proj.weight"].T
            q, k, v = np.split(qkv, [n_heads * hd, n_heads * hd + n_kv * hd], axis=1)
        else:
            q = x @ w[p + "self_attn.q_proj.weight"].T
            k = x @ w[p + "self_attn.k_proj.weight"].T
            v = x @ w[p + "self_attn.v_proj.weight"].T
        q = rope(q.reshape(seq, n_heads, hd).transpose(1, 0, 2))
        k = rope(k.reshape(seq, n_kv, hd).transpose(1, 0, 2))
        v = v.reshape(seq, n_kv, hd).transpose(1, 0, 2)
        k = np.repeat(k, n_heads // n_kv, axis=0)
        v = np.repeat(v, n_heads // n_kv, axis=0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        h = h + a.transpose(1, 0, 2).reshape(seq, n_heads * hd) @ w[p + "self_attn.o_proj.weight"].T
        x = rms(h, w[p + "post_attention_layernorm.weight"])
        if p + "mlp.gate_up_proj.weight" in w:
            gate, up = np.split(x @ w[p + "mlp.gate_up_proj.weight"].T, 2, axis=1)
        else:
            gate = x @ w[p + "mlp.gate_proj.weight"].T
            up = x @ w[p + "mlp.up_proj.weight"].T
        h = h + (silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    h = rms(h, w["model.norm.weight"])
    return h @ w["lm_head.weight"].T


def check_logits(ref_dir, name, config, source, output, plan, recipe):
    with open(os.path.join(ref_dir, name + ".ref.json")) as f:
        tokens = json.load(f)["prompt"]
    ref = np.load(os.path.join(ref_dir, name + ".prompt_logits.npy")).astype(np.float64)
    float_w = {k: to_f32(dt, arr) for k, (dt, arr, _) in source.items()}
    own = forward(config, float_w, tokens).astype(np.float64)
    err = np.abs(own - ref).max()
    # The forward pass itself first: on the float weights it is the reference.
    assert err < 2e-3, f"float forward differs from the reference by {err}"

    def cosines(weights):
        logits = forward(config, weights, tokens).astype(np.float64)
        cos = [float((a @ b) / np.linalg.norm(a) / np.linalg.norm(b)) for a, b in zip(logits, ref)]
        return np.asarray(cos), float(np.mean(logits.argmax(-1) == ref.argmax(-1)))

    cos, top1 = cosines(dequantized_weights(source, output, plan))
    bad, _ = cosines(dequantized_weights(source, output, plan, misread=True))
    print(f"logits vs float reference: float forward max |diff| {err:.2e}; dequantized "
          f"{recipe}: cosine min {cos.min():.4f} mean {cos.mean():.4f}, top-1 agreement "
          f"{top1:.2f}; misread layout (control): cosine mean {bad.mean():.4f}")
    # These tiny random models amplify weight noise (embedding std 1, chaotic
    # attention): 4-bit gives a mean cosine near 0.95, a misread layout near 0.
    want_mean, want_min = (0.9, 0.8) if recipe == "none" else (0.75, 0.5)
    assert cos.mean() > want_mean and cos.min() > want_min, f"dequantized logits cosine {cos}"
    assert bad.mean() < 0.5, f"the control does not fail: cosine {bad.mean():.4f}"


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

    if len(sys.argv) > 6:
        check_logits(sys.argv[6], os.path.basename(os.path.normpath(ckpt)), config, source,
                     output, plan, recipe)

    for side in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "tokenizer.model", "generation_config.json"):
        src = os.path.join(ckpt, side)
        if os.path.exists(src):
            with open(src, "rb") as a, open(os.path.join(out, side), "rb") as b:
                assert a.read() == b.read(), f"{side} differs"
    print("OK")


if __name__ == "__main__":
    main()
