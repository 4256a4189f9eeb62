#!/usr/bin/env python3
"""Byte identity with llama-quantize when it is given an importance matrix:
runs every run of $QUANTD_TESTDATA/gguf-imatrix/reference.json (llama-quantize
b4747 --imatrix imatrix-tiny.dat imatrix-tiny-f32.gguf OUT TYPE, and IQ4_XS
without it) through `$QUANTD_BIN quantize` and compares the output file's
sha256 and, per tensor, type, shape and data sha256 with the reference.

Runs whose types this build cannot write yet are listed in EXPECTED_MISSING
and must fail with "cannot write" (a test that they are refused cleanly);
their --dry-run plan must still give every tensor llama-quantize's type and
shape and the file llama-quantize's size (the mix rules need no kernels).
When such a run starts to work the test fails so that the list is updated.

Usage: gguf_imatrix_reference_test.py [--threads N] [--only NAME] [--keep DIR]
       [--imatrix-format dat|gguf]
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import gguf_header

# Runs whose tensor types are not yet written by Quantd. Empty: all must match.
EXPECTED_MISSING = set()

GGML_TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0",
                   10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 16: "IQ2_XXS",
                   17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
                   22: "IQ2_S", 23: "IQ4_XS", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0"}


# (values per block, bytes per block) of the types in the reference runs.
TYPE_GEOMETRY = {"F32": (1, 4), "F16": (1, 2), "Q4_0": (32, 18), "Q4_1": (32, 20),
                 "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34), "Q2_K": (256, 84),
                 "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210),
                 "IQ2_XXS": (256, 66), "IQ2_XS": (256, 74), "IQ3_XXS": (256, 98),
                 "IQ1_S": (256, 50), "IQ4_NL": (32, 18), "IQ3_S": (256, 110), "IQ2_S": (256, 82),
                 "IQ4_XS": (256, 136), "IQ1_M": (256, 56), "TQ1_0": (256, 54), "TQ2_0": (256, 66)}


def tensor_table(path):
    with open(path, "rb") as f:
        data = f.read()
    h = gguf_header.parse(data)
    ordered = sorted(h.tensors, key=lambda t: t[3])
    table = {}
    for i, (name, t, ne, off) in enumerate(ordered):
        end = ordered[i + 1][3] if i + 1 < len(ordered) else len(data) - h.data_start
        table[name] = (t, ne, data[h.data_start + off:h.data_start + end])
    return table


def dat_to_gguf(dat_path, out_path):
    """Writes the same importance matrix in llama.cpp's GGUF imatrix layout
    (sums and counts per tensor, imatrix.* keys), so that both readers are
    checked against the same reference bytes."""
    b = open(dat_path, "rb").read()
    o = 0
    n, = struct.unpack_from("<i", b, o); o += 4
    entries = []
    for _ in range(n):
        ln, = struct.unpack_from("<i", b, o); o += 4
        name = b[o:o + ln].decode(); o += ln
        ncall, nval = struct.unpack_from("<ii", b, o); o += 8
        vals = struct.unpack_from(f"<{nval}f", b, o); o += 4 * nval
        entries.append((name, ncall, vals))
    chunks, dlen = struct.unpack_from("<ii", b, o); o += 8
    dataset = b[o:o + dlen].decode()

    def s(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x
    kv = b""
    kv += s("general.type") + struct.pack("<I", 8) + s("imatrix")
    kv += s("imatrix.datasets") + struct.pack("<IIQ", 9, 8, 1) + s(dataset)
    kv += s("imatrix.chunk_count") + struct.pack("<II", 4, chunks)
    kv += s("imatrix.chunk_size") + struct.pack("<II", 4, 128)
    infos = b""
    blobs = []
    off = 0
    for name, ncall, vals in entries:
        # The .dat holds the sums over ncall calls; GGUF keeps the sums with
        # the count beside them, and importance = in_sum2 / counts in both.
        for suffix, ne, payload in ((".in_sum2", [len(vals), 1], struct.pack(f"<{len(vals)}f", *vals)),
                                    (".counts", [1, 1], struct.pack("<f", float(ncall)))):
            infos += s(name + suffix) + struct.pack("<I", 2) + struct.pack("<QQ", *ne)
            infos += struct.pack("<IQ", 0, off)
            pad = (-len(payload)) % 32
            blobs.append(payload + b"\0" * pad)
            off += len(payload) + pad
    head = struct.pack("<IIQQ", 0x46554747, 3, 2 * len(entries), 4) + kv + infos
    head += b"\0" * ((-len(head)) % 32)
    with open(out_path, "wb") as f:
        f.write(head + b"".join(blobs))


def sha256_file(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--keep", default="")
    ap.add_argument("--imatrix-format", choices=["dat", "gguf"], default="dat")
    args = ap.parse_args()
    quantd = os.environ["QUANTD_BIN"]
    testdata = os.path.join(os.environ["QUANTD_TESTDATA"], "gguf-imatrix")
    ref = json.load(open(os.path.join(testdata, "reference.json")))
    model = os.path.join(testdata, "imatrix-tiny-f32.gguf")

    identical, failures, missing = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        outdir = args.keep or tmp
        os.makedirs(outdir, exist_ok=True)
        imatrix = os.path.join(testdata, "imatrix-tiny.dat")
        if args.imatrix_format == "gguf":
            # Same file name as the .dat, so the recorded quantize.imatrix.file matches.
            os.makedirs(os.path.join(tmp, "gguf"), exist_ok=True)
            imatrix = os.path.join(tmp, "gguf", "imatrix-tiny.dat")
            dat_to_gguf(os.path.join(testdata, "imatrix-tiny.dat"), imatrix)
        for key, run in sorted(ref["runs"].items()):
            if args.only and args.only != key:
                continue
            ftype = key.split(" ")[0]
            out = os.path.join(outdir, key.replace(" ", "_").replace("(", "").replace(")", "") + ".gguf")
            cmd = [quantd, "quantize", model, "-o", out, "--gguf-type", ftype,
                   "--threads", str(args.threads)]
            if run["imatrix"]:
                cmd += ["--imatrix", imatrix]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if key in EXPECTED_MISSING:
                if proc.returncode != 0 and "cannot write" in proc.stderr:
                    # The mix rules do not need the kernels: a dry run's plan
                    # must give every tensor llama-quantize's type.
                    report = os.path.join(outdir, "plan.json")
                    dry = subprocess.run(cmd + ["--dry-run", "--report", report],
                                         capture_output=True, text=True)
                    rep = {} if dry.returncode else json.load(open(report))
                    plan = {e["name"]: e for e in rep.get("plan", [])}
                    wrong = [t["name"] for t in run["tensors"]
                             if t["name"] not in plan or plan[t["name"]]["type_after"] != t["type"]
                             or plan[t["name"]]["shape"] != t["ne"]]
                    size = rep.get("totals", {}).get("output_file_bytes")
                    if size != run["bytes"]:
                        wrong.append(f"file size {size} want {run['bytes']}")
                    if dry.returncode or wrong or len(plan) != len(run["tensors"]):
                        failures.append(key)
                        print(f"FAIL {key}: dry-run plan differs from llama-quantize's types: "
                              f"{wrong[:10]} {dry.stderr[-500:]}")
                        continue
                    missing.append(key)
                    print(f"n/a  {key}: refused (type not written by this build); "
                          f"plan types and file size identical")
                else:
                    failures.append(key)
                    print(f"FAIL {key}: expected a clean 'cannot write' refusal, got exit "
                          f"{proc.returncode}; update EXPECTED_MISSING\n{proc.stderr[-1000:]}")
                continue
            if proc.returncode != 0:
                failures.append(key)
                print(f"FAIL {key}: quantd exited {proc.returncode}\n{proc.stderr[-2000:]}")
                continue
            got = sha256_file(out)
            table = tensor_table(out)
            bad = []
            for t in run["tensors"]:
                e = table.get(t["name"])
                if e is None:
                    bad.append(f"{t['name']}: missing")
                    continue
                gtype = GGML_TYPE_NAMES.get(e[0], str(e[0]))
                if gtype != t["type"] or e[1] != t["ne"]:
                    bad.append(f"{t['name']}: {gtype} {e[1]}, want {t['type']} {t['ne']}")
                    continue
                block, size = TYPE_GEOMETRY[t["type"]]
                rows = 1
                for d in t["ne"][1:]:
                    rows *= d
                nbytes = t["ne"][0] // block * size * rows
                if hashlib.sha256(e[2][:nbytes]).hexdigest() != t["sha256"]:
                    bad.append(f"{t['name']} ({t['type']}): data differs")
            if got == run["sha256"] and not bad:
                identical.append(key)
                print(f"ok   {key}")
                continue
            failures.append(key)
            print(f"FAIL {key}: file sha256 {'matches' if got == run['sha256'] else 'differs'}"
                  f" (size {os.path.getsize(out)} want {run['bytes']}); {len(bad)} of "
                  f"{len(run['tensors'])} tensors differ")
            for line in bad[:20]:
                print(f"     {line}")
    print(f"{len(identical)} identical, {len(missing)} not yet written, {len(failures)} failed")
    print("identical: " + " ".join(identical))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
