# Apple MLX folder end-to-end tests. Included from tests/e2e/CMakeLists.txt.

# The MLX folder of each shared checkpoint (4 bits, group 64), dequantized back
# to a float checkpoint and run by llama.cpp, keeps the float model's logits
# (mean cosine > 0.9); a misread code order (the control) falls below 0.5.
add_test(NAME e2e.mlx.DequantizedLogitsInLlamaCpp
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/mlx_llama_logits_test.sh)
set_tests_properties(e2e.mlx.DequantizedLogitsInLlamaCpp PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "e2e;mlx" TIMEOUT 300)
