#!/usr/bin/env python3
"""Byte-identity with llama-quantize: runs every reference run listed in
$QUANTD_TESTDATA/gguf/reference.json through `$QUANTD_BIN quantize` and
requires the same output sha256. On a mismatch it prints which tensors
differ (type, offset, size, sha256) so the failing kernel is obvious.

Usage: gguf_reference_test.py [--threads N] [--only SUBSTRING] [--keep DIR]
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import gguf_header

# Runs that are known to differ, with the reason. Empty: all must match.
KNOWN_DIFFERENT = {}

GGML_TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0",
                   10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 20: "IQ4_NL",
                   30: "BF16"}


def read_tensor_table(path):
    """Returns {name: (type, ne, abs_offset, nbytes)} of a GGUF file; minimal parser."""
    with open(path, "rb") as f:
        data = f.read()
    h = gguf_header.parse(data)
    infos = [(name, t, ne, off) for name, t, ne, off in h.tensors]
    data_start = h.data_start
    table = {}
    ordered = sorted(infos, key=lambda i: i[3])
    for i, (name, t, ne, off) in enumerate(ordered):
        end = ordered[i + 1][3] if i + 1 < len(ordered) else len(data) - data_start
        table[name] = (t, ne, data_start + off, end - off, data)
    return table


def tensor_sha(entry, nbytes):
    t, ne, off, _, data = entry
    return hashlib.sha256(data[off:off + nbytes]).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--keep", default="")
    args = ap.parse_args()
    quantd = os.environ["QUANTD_BIN"]
    testdata = os.path.join(os.environ["QUANTD_TESTDATA"], "gguf")
    with open(os.path.join(testdata, "reference.json")) as f:
        ref = json.load(f)

    failures = []
    passed = 0
    known = 0
    with tempfile.TemporaryDirectory() as tmp:
        outdir = args.keep or tmp
        os.makedirs(outdir, exist_ok=True)
        for run in ref["outputs"]:
            if args.only and args.only not in run["file"]:
                continue
            out = os.path.join(outdir, run["file"])
            cmd = [quantd, "quantize", os.path.join(testdata, run["input"]), "-o", out,
                   "--gguf-type", run["type"], "--threads", str(args.threads)] + run["flags"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            label = run["command"]
            if proc.returncode != 0:
                failures.append(label)
                print(f"FAIL {label}: quantd exited {proc.returncode}\n{proc.stderr[-2000:]}")
                continue
            got = sha256_file(out)
            if got == run["sha256"]:
                passed += 1
                print(f"ok   {label}")
                continue
            if run["file"] in KNOWN_DIFFERENT:
                known += 1
                print(f"KNOWN-DIFF {label}: {KNOWN_DIFFERENT[run['file']]}")
                continue
            failures.append(label)
            size = os.path.getsize(out)
            print(f"FAIL {label}: sha256 {got} size {size}, want {run['sha256']} size {run['bytes']}")
            table = read_tensor_table(out)
            bad = 0
            for t in run["tensors"]:
                entry = table.get(t["name"])
                if entry is None:
                    print(f"     {t['name']}: missing in output")
                    bad += 1
                    continue
                gtype = GGML_TYPE_NAMES.get(entry[0], str(entry[0]))
                problems = []
                if gtype != t["type"]:
                    problems.append(f"type {gtype} want {t['type']}")
                if entry[1] != t["ne"]:
                    problems.append(f"ne {entry[1]} want {t['ne']}")
                if entry[2] != t["offset"]:
                    problems.append(f"offset {entry[2]} want {t['offset']}")
                if not problems and tensor_sha(entry, t["bytes"]) != t["sha256"]:
                    problems.append("data differs")
                if problems:
                    bad += 1
                    if bad <= 25:
                        print(f"     {t['name']} ({t['type']}): " + "; ".join(problems))
            print(f"     {bad} of {len(run['tensors'])} tensors differ")
    print(f"{passed} identical, {known} known-different, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
