#!/usr/bin/env python3
"""Writes a synthetic importance matrix for bench/gguf_gen_model's model.

The legacy llama-imatrix `.dat` layout (little-endian): int32 entry count;
per entry int32 name length, the name, int32 call count, int32 value count
and that many float32 values (llama-quantize divides them by the call
count); then int32 last call count, int32 dataset-name length and the name.
llama-imatrix writes one entry per matrix a matmul multiplies (every 2-D
weight but token_embd); the values here are squared-activation-like
(Gaussian squared plus a floor, times a per-tensor factor) from a fixed
seed, so quantd and llama-quantize read the same file. Standard library
only.

Usage: gguf_gen_imatrix.py OUT.dat [layers embd ff vocab]
(defaults as gguf_gen_model: 16 1024 2816 32768)
"""
import random
import struct
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: gguf_gen_imatrix.py OUT.dat [layers embd ff vocab]")
    layers, e, ff, _vocab = (
        [int(a) for a in sys.argv[2:6]] + [16, 1024, 2816, 32768][len(sys.argv[2:6]):])
    rng = random.Random(4321)
    entries = []
    for i in range(layers):
        p = f"blk.{i}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up"):
            entries.append((p + name + ".weight", e))
        entries.append((p + "ffn_down.weight", ff))
    entries.append(("output.weight", e))
    ncall = 10
    out = bytearray(struct.pack("<i", len(entries)))
    for name, cols in entries:
        factor = rng.uniform(0.5, 4.0)
        vals = [ncall * factor * (rng.gauss(0.0, 1.0) ** 2 + 0.01) for _ in range(cols)]
        raw = name.encode()
        out += struct.pack("<i", len(raw)) + raw + struct.pack("<ii", ncall, cols)
        out += struct.pack(f"<{cols}f", *vals)
    dataset = b"synthetic"
    out += struct.pack("<i", ncall) + struct.pack("<i", len(dataset)) + dataset
    with open(sys.argv[1], "wb") as f:
        f.write(out)
    print(f"wrote {sys.argv[1]}: {len(entries)} entries")


if __name__ == "__main__":
    main()
