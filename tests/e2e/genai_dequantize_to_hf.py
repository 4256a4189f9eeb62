"""Writes the float32 Hugging Face checkpoint whose weights are the dequantized
MatMulNBits weights of a quantized ONNX GenAI decoder folder, and the other
tensors of the source checkpoint as they are (converted to float32).

  genai_dequantize_to_hf.py GENAI_DIR SOURCE_CKPT OUT_CKPT

Exporting OUT_CKPT at fp32 then gives the float model a quantized folder
should equal exactly (up to float32 rounding of the computation): a test of
the graph and of MatMulNBits' layout, independent of the quantizer, whose
bytes other tests pin.

Names follow the exporter's graph: node /model/layers.{i}/attn/qkv_proj/...,
/mlp/{gate,up,down}_proj/..., /attn/o_proj/..., /lm_head/...; packed q|k|v
rows go back to qkv_proj (Phi-3) or q/k/v_proj, gate and up to gate_up_proj
(Phi-3) or gate_proj/up_proj. A tied embedding becomes the dequantized LM
head (the folder's GatherBlockQuantized reads those bytes too).
"""
import json
import os
import re
import shutil
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper

DTYPES = {"F32": np.float32, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            f.seek(base + begin)
            raw = f.read(end - begin)
            if info["dtype"] == "BF16":
                bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
                arr = bits.view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=DTYPES[info["dtype"]]).astype(np.float32)
            out[name] = arr.reshape(info["shape"])
        return out


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def dequantize(node, inits):
    attrs = {a.name: a.i for a in node.attribute}
    k, n, bits, block = attrs["K"], attrs["N"], attrs.get("bits", 4), attrs["block_size"]
    codes = inits[node.input[1]].reshape(n, -1)
    if bits == 4:
        q = np.empty((n, codes.shape[1] * 2), dtype=np.int32)
        q[:, 0::2] = codes & 0x0F
        q[:, 1::2] = codes >> 4
    else:
        q = codes.astype(np.int32)
    blocks = (k + block - 1) // block
    q = q[:, : blocks * block].reshape(n, blocks, block)
    scales = inits[node.input[2]].astype(np.float32).reshape(n, blocks)
    if len(node.input) > 3 and node.input[3]:
        zp_raw = inits[node.input[3]].reshape(n, -1).astype(np.int32)
        if bits == 4:
            zp = np.empty((n, zp_raw.shape[1] * 2), dtype=np.int32)
            zp[:, 0::2] = zp_raw & 0x0F
            zp[:, 1::2] = zp_raw >> 4
            zp = zp[:, :blocks]
        else:
            zp = zp_raw[:, :blocks]
    else:
        zp = np.full((n, blocks), 1 << (bits - 1), dtype=np.int32)
    w = (q - zp[:, :, None]).astype(np.float32) * scales[:, :, None]
    return w.reshape(n, blocks * block)[:, :k]


def main():
    genai_dir, src_dir, out_dir = sys.argv[1:4]
    config = json.load(open(os.path.join(src_dir, "config.json")))
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim", hidden // heads)
    ffn = config["intermediate_size"]
    src = {}
    for f in sorted(os.listdir(src_dir)):
        if f.endswith(".safetensors"):
            src.update(read_safetensors(os.path.join(src_dir, f)))
    phi3 = any(".qkv_proj." in name for name in src)

    model = onnx.load(os.path.join(genai_dir, "model.onnx"), load_external_data=False)
    onnx.external_data_helper.load_external_data_for_model(model, genai_dir)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out = dict(src)
    done = 0
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            continue
        w = dequantize(node, inits)
        done += 1
        if node.name.startswith("/lm_head/"):
            if "lm_head.weight" in src:
                out["lm_head.weight"] = w
            else:  # tied: the embedding reads the same codes
                out["model.embed_tokens.weight"] = w
            continue
        m = re.match(r"/model/layers\.(\d+)/(attn|mlp)/(\w+)/MatMul", node.name)
        if not m:
            raise SystemExit(f"unexpected MatMulNBits node {node.name}")
        p = f"model.layers.{m.group(1)}."
        proj = m.group(3)
        if proj == "qkv_proj":
            if phi3:
                out[p + "self_attn.qkv_proj.weight"] = w
            else:
                q, kv = heads * head_dim, kv_heads * head_dim
                out[p + "self_attn.q_proj.weight"] = w[:q]
                out[p + "self_attn.k_proj.weight"] = w[q:q + kv]
                out[p + "self_attn.v_proj.weight"] = w[q + kv:]
        elif proj == "o_proj":
            out[p + "self_attn.o_proj.weight"] = w
        elif proj in ("gate_proj", "up_proj") and phi3:
            full = out[p + "mlp.gate_up_proj.weight"].copy()
            if proj == "gate_proj":
                full[:ffn] = w
            else:
                full[ffn:] = w
            out[p + "mlp.gate_up_proj.weight"] = full
        else:
            out[p + "mlp." + proj + ".weight"] = w
    if done == 0:
        raise SystemExit("no MatMulNBits node in the folder")
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), out)
    config["torch_dtype"] = "float32"
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for f in os.listdir(src_dir):
        if not f.endswith(".safetensors") and f not in ("config.json", "model.safetensors.index.json"):
            shutil.copy(os.path.join(src_dir, f), os.path.join(out_dir, f))
    print(f"{done} MatMulNBits weights dequantized into {out_dir}")


if __name__ == "__main__":
    main()
