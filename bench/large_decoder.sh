# Sourced by the bench scripts that time the ~1.35 GB FP32 decoder
# (tests/e2e/int_make_decoder.py: hidden 2048, 16 heads, 4 layers, MLP 5632,
# vocabulary 32000, external data). Needs $here (the bench/ folder).
#
#   ensure_large_decoder MODEL.onnx   generates it once (MODEL.onnx + .data)
#   model_bytes MODEL.onnx            bytes of the model and its data
ensure_large_decoder() {
  local model=$1
  [ -f "$model.data" ] && return 0
  mkdir -p "$(dirname "$model")"
  echo "generating a ~1.35 GB FP32 decoder in $(dirname "$model") ..."
  /usr/bin/python3 "$here/../tests/e2e/int_make_decoder.py" "$model" --hidden 2048 \
    --heads 16 --layers 4 --mlp 5632 --vocab 32000 --external
}

model_bytes() {
  echo $(( $(stat -c %s "$1") + $(stat -c %s "$1.data") ))
}
