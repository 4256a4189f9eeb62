#!/usr/bin/env bash
# Hugging Face checkpoint -> Apple MLX folder, timed by checkpoint_folder.sh.
#   bench/checkpoint_mlx.sh [BUILD_DIR] [WORK_DIR]
#   environment: MLX_BENCH_BITS ("4", several separated by spaces), and
#   checkpoint_folder.sh's
variants=""
for b in ${MLX_BENCH_BITS:-4}; do variants="${variants:+$variants;}--bits $b"; done
FOLDER_BENCH_FORMAT="--format mlx" FOLDER_BENCH_VARIANTS="$variants" \
  exec bash "$(dirname "$0")/checkpoint_folder.sh" "$@"
