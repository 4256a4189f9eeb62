"""Hugging Face checkpoint -> GGUF, byte-identical to llama.cpp's converter.

Converts every shared checkpoint (../shared/testdata/hf/checkpoints/*) with
`quantd quantize CKPT -o OUT --gguf-type T` for T in F32 F16 BF16 Q8_0 and
compares the sha256 with reference.json's gguf.<t>.sha256 (the bytes
convert_hf_to_gguf.py b4747 writes).

Two ways to compare, chosen per output file:
  * FULL: the output holds tokenizer.* metadata -> its sha256 must equal the
    reference. With --require-tokenizer (set by CMake once the tokenizer
    reader is part of the build) every output must be compared this way.
  * SPLICED: the output has no tokenizer.* metadata (this build has no
    tokenizer reader) -> the tokenizer.* KVs are taken from a kept reference
    GGUF of the same checkpoint (they do not depend on the outtype), spliced
    in before general.quantization_version, and the sha256 of the result must
    equal the reference. This proves every other byte: the other metadata,
    their order, the tensor infos, the alignment and the tensor data.

Then the two-step route through Quantd alone: the F32 result (spliced as
above when needed) quantized by `quantd quantize F32.gguf --gguf-type T` for
T in Q4_K_M Q4_0 Q6_K must have reference.json's llama_quantize_from_f32
sha256 -- what the one-step checkpoint -> T conversion must also produce.

Environment: QUANTD_BIN, QUANTD_TESTDATA (as set by tests/CMakeLists.txt).
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def split_gguf(data):
    """(version, [(key, kv_bytes)], tensor_count, tensor_info_bytes, data_section)."""
    pos = 0

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v

    def skip(t):
        nonlocal pos
        if t in _SCALAR_SIZES:
            pos += _SCALAR_SIZES[t]
        elif t == 8:
            (n,) = rd("Q")
            pos += n
        else:
            et, n = rd("IQ")
            for _ in range(n):
                skip(et)

    magic, version, n_tensors, n_kv = rd("IIQQ")
    assert magic == 0x46554747, "not a GGUF file"
    kvs = []
    for _ in range(n_kv):
        start = pos
        (n,) = rd("Q")
        key = data[pos:pos + n].decode()
        pos += n
        (t,) = rd("I")
        skip(t)
        kvs.append((key, data[start:pos]))
    ti_start = pos
    for _ in range(n_tensors):
        (n,) = rd("Q")
        pos += n
        (nd,) = rd("I")
        pos += 8 * nd + 4 + 8
    tensor_info = data[ti_start:pos]
    data_start = (pos + 31) // 32 * 32
    return version, kvs, n_tensors, tensor_info, data[data_start:]


def join_gguf(version, kvs, n_tensors, tensor_info, data_section):
    head = struct.pack("<IIQQ", 0x46554747, version, n_tensors, len(kvs))
    head += b"".join(b for _, b in kvs) + tensor_info
    head += b"\0" * ((-len(head)) % 32)
    return head + data_section


def splice_tokenizer(ours, tokenizer_kvs):
    version, kvs, n_tensors, ti, data = split_gguf(ours)
    assert kvs[-1][0] == "general.quantization_version", kvs[-1][0]
    return join_gguf(version, kvs[:-1] + tokenizer_kvs + kvs[-1:], n_tensors, ti, data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--require-tokenizer", action="store_true",
                    help="every output must carry tokenizer metadata (full-file comparison)")
    args = ap.parse_args()
    quantd = os.environ["QUANTD_BIN"]
    hf = os.path.join(os.environ["QUANTD_TESTDATA"], "hf")
    with open(os.path.join(hf, "reference.json")) as f:
        ref = json.load(f)

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, ck in sorted(ref["checkpoints"].items()):
            ckpt_dir = os.path.join(hf, ck["checkpoint_dir"])
            # Tokenizer KVs of this checkpoint, from any kept reference file.
            kept = [g["file"] for g in ck["gguf"].values() if g.get("file")]
            with open(os.path.join(hf, kept[0]), "rb") as f:
                ref_kvs = split_gguf(f.read())[1]
            tokenizer_kvs = [kv for kv in ref_kvs if kv[0].startswith("tokenizer.")]
            for outtype in ("f32", "f16", "bf16", "q8_0"):
                want = ck["gguf"][outtype]["sha256"]
                out = os.path.join(tmp, f"{name}-{outtype}.gguf")
                subprocess.run([quantd, "quantize", ckpt_dir, "-o", out, "--gguf-type", outtype.upper(),
                                "--quiet"], check=True)
                with open(out, "rb") as f:
                    ours = f.read()
                has_tokenizer = any(k.startswith("tokenizer.") for k, _ in split_gguf(ours)[1])
                if has_tokenizer:
                    mode, got = "FULL", hashlib.sha256(ours).hexdigest()
                elif args.require_tokenizer:
                    print(f"FAIL {name} {outtype}: no tokenizer metadata in the output")
                    failures += 1
                    continue
                else:
                    mode = "SPLICED (tokenizer KVs from the reference)"
                    got = hashlib.sha256(splice_tokenizer(ours, tokenizer_kvs)).hexdigest()
                ok = got == want
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {name} {outtype} [{mode}] {got}"
                      + ("" if ok else f" != {want}"))
                if outtype != "f32":
                    continue
                f32 = out
                if not has_tokenizer:
                    f32 = os.path.join(tmp, f"{name}-f32-spliced.gguf")
                    with open(f32, "wb") as f:
                        f.write(splice_tokenizer(ours, tokenizer_kvs))
                for qtype, q in sorted(ck["llama_quantize_from_f32"].items()):
                    qout = os.path.join(tmp, f"{name}-{qtype}.gguf")
                    subprocess.run([quantd, "quantize", f32, "-o", qout, "--gguf-type", qtype, "--quiet"],
                                   check=True)
                    with open(qout, "rb") as f:
                        got = hashlib.sha256(f.read()).hexdigest()
                    ok = got == q["sha256"]
                    failures += not ok
                    print(f"{'ok  ' if ok else 'FAIL'} {name} f32 -> {qtype} (two steps) {got}"
                          + ("" if ok else f" != {q['sha256']}"))
    if failures:
        print(f"{failures} mismatch(es)")
        sys.exit(1)


if __name__ == "__main__":
    main()
