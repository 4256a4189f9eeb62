#!/usr/bin/env bash
# Split GGUF models: tiny-llama (+ a minimal vocabulary) is split into 3
# parts by quantd itself (F32, --split-max-size: llama.cpp's split layout);
# quantizing the parts gives the same file as quantizing the whole; the
# --keep-split output of the parts has 3 parts with split.* keys and loads
# and generates in llama.cpp (node-llama-cpp, given the first part); a
# missing part is refused naming it.
#
# Usage: gguf_split_e2e.sh   (env: QUANTD_BIN, QUANTD_TESTDATA)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -d "$here/node_modules/node-llama-cpp" ]; then
  echo "node-llama-cpp is not installed: run scripts/setup.sh" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/gguf_add_vocab.py" "$QUANTD_TESTDATA/gguf/tiny-llama-f32.gguf" "$tmp/in.gguf"
"$QUANTD_BIN" quantize "$tmp/in.gguf" -o "$tmp/parts.gguf" --gguf-type F32 --split-max-size 6M -q
for i in 1 2 3; do test -f "$tmp/parts-0000$i-of-00003.gguf"; done
test ! -e "$tmp/parts-00004-of-00004.gguf"

"$QUANTD_BIN" quantize "$tmp/in.gguf" -o "$tmp/whole-q4.gguf" --gguf-type Q4_K_M -q
"$QUANTD_BIN" quantize "$tmp/parts-00002-of-00003.gguf" -o "$tmp/parts-q4.gguf" --gguf-type Q4_K_M -q
cmp "$tmp/whole-q4.gguf" "$tmp/parts-q4.gguf"
echo "quantizing the 3 parts gives the bytes of quantizing the whole"

"$QUANTD_BIN" quantize "$tmp/parts-00001-of-00003.gguf" -o "$tmp/ks.gguf" --gguf-type Q4_K_M \
  --keep-split -q
/usr/bin/python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
import gguf_header
tmp = sys.argv[2]
names = set()
for i in range(1, 4):
    data = open(f"{tmp}/ks-0000{i}-of-00003.gguf", "rb").read()
    h = gguf_header.parse(data)
    names |= {t[0] for t in h.tensors}
    assert h.n_kv >= 3, h.n_kv
    if i > 1:
        assert h.n_kv == 3, f"part {i} has {h.n_kv} keys, want only split.*"
assert len(names) == len(gguf_header.parse(open(f"{tmp}/whole-q4.gguf", "rb").read()).tensors)
print("keep-split: 3 parts, metadata in the first, split.* keys in each, every tensor once")
' "$here" "$tmp"
(cd "$here" && node gguf_llama_generate.mjs "$tmp/ks-00001-of-00003.gguf" 8)

rm "$tmp/parts-00003-of-00003.gguf"
if "$QUANTD_BIN" quantize "$tmp/parts-00001-of-00003.gguf" -o "$tmp/x.gguf" --gguf-type Q4_K_M \
     -q 2>"$tmp/err"; then
  echo "a split model with a missing part was accepted" >&2
  exit 1
fi
grep -q "parts-00003-of-00003.gguf" "$tmp/err"
echo "missing part refused: $(cat "$tmp/err")"
