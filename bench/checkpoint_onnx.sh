#!/usr/bin/env bash
# Hugging Face checkpoint -> ONNX Runtime GenAI folder, timed by
# checkpoint_folder.sh (wall time, CPU time, peak RSS, output size).
#   bench/checkpoint_onnx.sh [BUILD_DIR] [WORK_DIR]
#   environment: ONNX_BENCH_VARIANTS (";"-separated recipe flags, default
#   "--precision int4"), and checkpoint_folder.sh's
FOLDER_BENCH_FORMAT="--format onnx" \
  FOLDER_BENCH_VARIANTS="${ONNX_BENCH_VARIANTS:---precision int4}" \
  exec bash "$(dirname "$0")/checkpoint_folder.sh" "$@"
