#!/usr/bin/env python3
"""Copies a GGUF file and adds a minimal SentencePiece ("llama") vocabulary
sized to the model's output rows, so llama.cpp can load a synthetic model
that ships without a tokenizer. Tensor data is copied unchanged (offsets are
relative to the data section, so only the header grows).

Usage: gguf_add_vocab.py IN.gguf OUT.gguf
"""
import struct
import sys

import gguf_header


def main(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    h = gguf_header.parse(data)
    n_vocab = None
    for name, _, ne, _ in h.tensors:
        if name == "output.weight" or (name == "token_embd.weight" and n_vocab is None):
            n_vocab = ne[1]
    magic, n_tensors, n_kv = gguf_header.GGUF_MAGIC, len(h.tensors), h.n_kv
    kv_bytes, ti_bytes, data_start = h.kv_bytes, h.tensor_info_bytes, h.data_start

    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    def kv_str(k, v):
        return s(k) + struct.pack("<I", 8) + s(v)

    def kv_u32(k, v):
        return s(k) + struct.pack("<II", 4, v)

    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    words = ["\u2581" + w for w in "the a of and to in is it that was he for on are with as I his they be at".split()]
    i = 0
    while len(tokens) < n_vocab:
        tokens.append(words[i % len(words)] + ("" if i < len(words) else str(i)))
        i += 1
    tokens = tokens[:n_vocab]
    types = [2, 3, 3] + [6] * 256 + [1] * (n_vocab - 259)
    extra = kv_str("tokenizer.ggml.model", "llama")
    extra += s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, n_vocab) + b"".join(s(t) for t in tokens)
    extra += s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, n_vocab) + b"".join(
        struct.pack("<f", -float(i)) for i in range(n_vocab))
    extra += s("tokenizer.ggml.token_type") + struct.pack("<IIQ", 9, 5, n_vocab) + b"".join(
        struct.pack("<i", t) for t in types)
    extra += kv_u32("tokenizer.ggml.bos_token_id", 1) + kv_u32("tokenizer.ggml.eos_token_id", 2)
    extra += kv_u32("tokenizer.ggml.unknown_token_id", 0)
    header = struct.pack("<IIQQ", magic, 3, n_tensors, n_kv + 7) + kv_bytes + extra + ti_bytes
    header += b"\0" * ((len(header) + 31) // 32 * 32 - len(header))
    with open(dst, "wb") as f:
        f.write(header)
        f.write(data[data_start:])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
