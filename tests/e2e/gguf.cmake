# GGUF end-to-end tests (issue 5). Included from tests/e2e/CMakeLists.txt.

# Byte identity with llama-quantize on the 20 shared reference runs.
add_test(NAME e2e.gguf.reference_runs
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/gguf_reference_test.py --threads 2)
set_tests_properties(e2e.gguf.reference_runs PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e" TIMEOUT 300)
