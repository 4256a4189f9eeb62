"""Writes a random Hugging Face checkpoint folder (config.json + safetensors
shards + index) for checkpoint-conversion benchmarks.

  make_hf_checkpoint.py OUT_DIR [--hidden 3072 --layers 32 --inter 8192
                                 --vocab 32064 --heads 32 --kv-heads 32
                                 --dtype bf16 --shards 2 --arch phi3|llama|qwen2
                                 --tied --partial-rotary 0.75 --longrope
                                 --tokenizer-from DIR
                                 --bos-token-id N --eos-token-id N]

Defaults give a Phi-3.5-mini-shaped model (3.8 B parameters, 7.6 GB in
BF16). Tensors are generated and written one at a time, so memory stays at
one tensor. Weights are uniform random (seeded). --tied drops lm_head
(tie_word_embeddings); --longrope adds Phi-3 LongRoPE factors (131072
positions over 4096); --tokenizer-from copies the tokenizer files of another
checkpoint (its vocabulary must fit --vocab).
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np


def tensors(a):
    h, f, v = a.hidden, a.inter, a.vocab
    hd = h // a.heads
    out = [("model.embed_tokens.weight", (v, h))]
    for layer in range(a.layers):
        p = f"model.layers.{layer}."
        out.append((p + "input_layernorm.weight", (h,)))
        out.append((p + "post_attention_layernorm.weight", (h,)))
        out.append((p + "self_attn.o_proj.weight", (h, a.heads * hd)))
        out.append((p + "mlp.down_proj.weight", (h, f)))
        if a.arch == "phi3":
            out.append((p + "self_attn.qkv_proj.weight", ((a.heads + 2 * a.kv_heads) * hd, h)))
            out.append((p + "mlp.gate_up_proj.weight", (2 * f, h)))
        else:
            out.append((p + "self_attn.q_proj.weight", (a.heads * hd, h)))
            out.append((p + "self_attn.k_proj.weight", (a.kv_heads * hd, h)))
            out.append((p + "self_attn.v_proj.weight", (a.kv_heads * hd, h)))
            out.append((p + "mlp.gate_proj.weight", (f, h)))
            out.append((p + "mlp.up_proj.weight", (f, h)))
        if a.arch == "qwen2":
            out.append((p + "self_attn.q_proj.bias", (a.heads * hd,)))
            out.append((p + "self_attn.k_proj.bias", (a.kv_heads * hd,)))
            out.append((p + "self_attn.v_proj.bias", (a.kv_heads * hd,)))
    out.append(("model.norm.weight", (h,)))
    if not a.tied:
        out.append(("lm_head.weight", (v, h)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", choices=["phi3", "llama", "qwen2"], default="phi3")
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--partial-rotary", type=float, default=None)
    ap.add_argument("--longrope", action="store_true")
    ap.add_argument("--tokenizer-from", default=None)
    ap.add_argument("--bos-token-id", type=int, default=None)
    ap.add_argument("--eos-token-id", type=int, default=None)
    ap.add_argument("--hidden", type=int, default=3072)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--inter", type=int, default=8192)
    ap.add_argument("--vocab", type=int, default=32064)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=32)
    ap.add_argument("--dtype", choices=["bf16", "f16", "f32"], default="bf16")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    esize = 4 if a.dtype == "f32" else 2
    st_dtype = {"bf16": "BF16", "f16": "F16", "f32": "F32"}[a.dtype]
    all_t = tensors(a)
    total = sum(int(np.prod(s)) * esize for _, s in all_t)
    # Split into shards of about equal bytes, keeping tensor order.
    shards, cur, acc = [[]], 0, 0
    for name, shape in all_t:
        if acc >= total * (cur + 1) / a.shards and cur + 1 < a.shards:
            shards.append([])
            cur += 1
        shards[-1].append((name, shape))
        acc += int(np.prod(shape)) * esize
    weight_map = {}
    for k, part in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in part:
            n = int(np.prod(shape)) * esize
            header[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
            weight_map[name] = fname
        hb = json.dumps(header).encode()
        hb += b" " * (-len(hb) % 8)  # as the safetensors library pads: tensors 8-byte aligned
        with open(os.path.join(a.out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(hb)) + hb)
            for name, shape in part:
                x = (rng.random(shape, dtype=np.float32) - 0.5) * 0.1
                if name.endswith("norm.weight"):
                    x += 1.0
                if a.dtype == "bf16":
                    f.write((x.view(np.uint32) >> 16).astype(np.uint16).tobytes())
                elif a.dtype == "f16":
                    f.write(x.astype(np.float16).tobytes())
                else:
                    f.write(x.tobytes())
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    classes = {"phi3": "Phi3ForCausalLM", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}
    config = {
        "architectures": [classes[a.arch]],
        "model_type": a.arch, "hidden_size": a.hidden, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
        "intermediate_size": a.inter, "vocab_size": a.vocab, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None,
        "tie_word_embeddings": a.tied, "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[a.dtype],
    }
    for key in ("bos_token_id", "eos_token_id"):
        if getattr(a, key) is not None:
            config[key] = getattr(a, key)
    if a.arch == "phi3":
        config.update({"original_max_position_embeddings": 4096, "sliding_window": 2047})
    if a.partial_rotary is not None:
        config["partial_rotary_factor"] = a.partial_rotary
    if a.longrope:
        rope_dims = int((a.partial_rotary or 1.0) * a.hidden) // a.heads
        n = rope_dims // 2
        config["max_position_embeddings"] = 131072
        config["rope_scaling"] = {
            "type": "longrope",
            "long_factor": [round(1.0 + 3.0 * i / max(n - 1, 1), 6) for i in range(n)],
            "short_factor": [round(1.0 + 0.5 * i / max(n - 1, 1), 6) for i in range(n)],
        }
    if a.tokenizer_from:
        for name in ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                     "added_tokens.json"):
            src = os.path.join(a.tokenizer_from, name)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(a.out, name))
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


if __name__ == "__main__":
    main()
