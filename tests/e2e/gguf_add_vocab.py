#!/usr/bin/env python3
"""Copies a GGUF file and adds a minimal SentencePiece ("llama") vocabulary
sized to the model's output rows, so llama.cpp can load a synthetic model
that ships without a tokenizer. Tensor data is copied unchanged (offsets are
relative to the data section, so only the header grows).

Usage: gguf_add_vocab.py IN.gguf OUT.gguf
"""
import struct
import sys


def main(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    pos = 0

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v

    def rstr():
        nonlocal pos
        (n,) = rd("Q")
        s = data[pos:pos + n]
        pos += n
        return s

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip(t):
        nonlocal pos
        if t in sizes:
            pos += sizes[t]
        elif t == 8:
            rstr()
        else:
            et, n = rd("IQ")
            for _ in range(n):
                skip(et)

    magic, version, n_tensors, n_kv = rd("IIQQ")
    assert magic == 0x46554747, "not a GGUF file"
    kv_start = pos
    for _ in range(n_kv):
        rstr()
        (t,) = rd("I")
        skip(t)
    kv_bytes = data[kv_start:pos]
    ti_start = pos
    n_vocab = None
    for _ in range(n_tensors):
        name = rstr()
        (nd,) = rd("I")
        ne = rd("Q" * nd)
        rd("IQ")
        if name == b"output.weight" or (name == b"token_embd.weight" and n_vocab is None):
            n_vocab = ne[1]
    ti_bytes = data[ti_start:pos]
    data_start = (pos + 31) // 32 * 32

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
