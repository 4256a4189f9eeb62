"""Hugging Face checkpoint -> GGUF, byte-identical to llama.cpp's tools.

For every shared checkpoint (../shared/testdata/hf/checkpoints/*):
  * `quantd quantize CKPT -o OUT --gguf-type T` for T in F32 F16 BF16 Q8_0
    has reference.json's gguf.<t>.sha256 (the bytes convert_hf_to_gguf.py
    b4747 writes);
  * the one-step `quantd quantize CKPT -o OUT --gguf-type T` for T in Q4_K_M
    Q4_0 Q6_K has reference.json's llama_quantize_from_f32.<T>.sha256 (the
    bytes of convert_hf_to_gguf.py --outtype f32 followed by llama-quantize
    T), at 1 and 2 threads;
  * the two-step route through Quantd alone (the F32 result quantized by
    `quantd quantize F32.gguf --gguf-type T`) gives the same bytes.

Environment: QUANTD_BIN, QUANTD_TESTDATA (as set by tests/CMakeLists.txt).
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    quantd = os.environ["QUANTD_BIN"]
    hf = os.path.join(os.environ["QUANTD_TESTDATA"], "hf")
    with open(os.path.join(hf, "reference.json")) as f:
        ref = json.load(f)

    failures = 0

    def check(label, path, want):
        nonlocal failures
        got = sha256(path)
        ok = got == want
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label} {got}" + ("" if ok else f" != {want}"))

    def quantize(src, out, gguf_type, *extra):
        subprocess.run([quantd, "quantize", src, "-o", out, "--gguf-type", gguf_type, "--quiet", *extra],
                       check=True)

    with tempfile.TemporaryDirectory() as tmp:
        for name, ck in sorted(ref["checkpoints"].items()):
            ckpt_dir = os.path.join(hf, ck["checkpoint_dir"])
            for outtype in ("f32", "f16", "bf16", "q8_0"):
                out = os.path.join(tmp, f"{name}-{outtype}.gguf")
                quantize(ckpt_dir, out, outtype.upper())
                check(f"{name} {outtype}", out, ck["gguf"][outtype]["sha256"])
            f32 = os.path.join(tmp, f"{name}-f32.gguf")
            for qtype, q in sorted(ck["llama_quantize_from_f32"].items()):
                for threads in ("1", "2"):
                    out = os.path.join(tmp, f"{name}-{qtype}-t{threads}.gguf")
                    quantize(ckpt_dir, out, qtype, "--threads", threads)
                    check(f"{name} -> {qtype} (one step, {threads} thread(s))", out, q["sha256"])
                out = os.path.join(tmp, f"{name}-f32-{qtype}.gguf")
                quantize(f32, out, qtype)
                check(f"{name} -> f32 -> {qtype} (two steps)", out, q["sha256"])
    if failures:
        print(f"{failures} mismatch(es)")
        sys.exit(1)


if __name__ == "__main__":
    main()
