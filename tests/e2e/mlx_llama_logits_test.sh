#!/usr/bin/env bash
# An MLX folder's layout, proved through a real runtime: for each shared
# Hugging Face checkpoint, quantd quantize --format mlx (4 bits, group 64),
# mlx_dequantize_to_hf.py turns the MLX folder back into a float checkpoint
# (w = code * scale + bias), quantd converts that to an F32 GGUF, and
# llama.cpp's log-probs over the reference prompt (gguf_llama_prompt_logprobs.mjs)
# must stay close to the float model's reference logits
# (../shared/testdata/hf/ref/<name>.prompt_logits.npy): mean cosine over the
# 16 positions of the mean-centred vectors above MIN_COSINE. The control
# misreads the code order (every run of 8 codes backwards) and must fall
# below MAX_CONTROL_COSINE, so a layout error cannot pass.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
hf="$QUANTD_TESTDATA/hf"
py="${QUANTD_PYTHON:-/usr/bin/python3}"
if [ ! -d "$here/node_modules/node-llama-cpp" ]; then
  echo "node-llama-cpp is not installed: run scripts/setup.sh" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Mean cosine (mean-centred per position) between llama.cpp's log-probs in
# $1 (raw float32 [16, vocab]) and the reference logits $2.
cosine() {
  "$py" - "$1" "$2" <<'PY'
import sys
import numpy as np
ref = np.load(sys.argv[2]).astype(np.float64)
got = np.fromfile(sys.argv[1], dtype="<f4").astype(np.float64).reshape(ref.shape)
assert np.isfinite(got).all(), "llama.cpp gave a zero probability"
got -= got.mean(axis=1, keepdims=True)
ref -= ref.mean(axis=1, keepdims=True)
cos = (got * ref).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
print(f"{cos.mean():.4f} {cos.min():.4f}")
PY
}

min_cosine=0.9
max_control_cosine=0.5
status=0
for name in phi3-tiny-shared llama-tiny-shared; do
  ckpt="$hf/checkpoints/$name"
  "$QUANTD_BIN" quantize "$ckpt" -o "$tmp/$name-mlx/" --format mlx --bits 4 --group-size 64 --quiet
  for variant in dequantized misread; do
    flag=""
    [ "$variant" = misread ] && flag="--misread"
    "$py" "$here/mlx_dequantize_to_hf.py" "$ckpt" "$tmp/$name-mlx" "$tmp/$variant" $flag
    "$QUANTD_BIN" quantize "$tmp/$variant/$name" -o "$tmp/$name-$variant.gguf" --gguf-type F32 --quiet
    if ! (cd "$here" && node gguf_llama_prompt_logprobs.mjs "$tmp/$name-$variant.gguf" \
            "$hf/ref/$name.ref.json" "$tmp/$name-$variant.f32" 2>"$tmp/node.log"); then
      cat "$tmp/node.log" >&2
      exit 1
    fi
    read -r mean min < <(cosine "$tmp/$name-$variant.f32" "$hf/ref/$name.prompt_logits.npy")
    echo "$name: MLX 4-bit group 64, $variant layout, llama.cpp vs float logits: cosine mean $mean min $min"
    eval "cos_$variant=$mean"
    rm -rf "$tmp/$variant" "$tmp/$name-$variant.gguf"
  done
  if ! "$py" -c "import sys; sys.exit(not (float(sys.argv[1]) > $min_cosine))" "$cos_dequantized"; then
    echo "FAIL $name: dequantized MLX logits cosine $cos_dequantized <= $min_cosine" >&2
    status=1
  fi
  if ! "$py" -c "import sys; sys.exit(not (float(sys.argv[1]) < $max_control_cosine))" "$cos_misread"; then
    echo "FAIL $name: the misread control does not fail (cosine $cos_misread >= $max_control_cosine)" >&2
    status=1
  fi
done
exit "$status"
