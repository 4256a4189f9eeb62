# GGUF end-to-end tests. Included from tests/e2e/CMakeLists.txt.

# Byte identity with llama-quantize on the 20 shared reference runs.
add_test(NAME e2e.gguf.reference_runs
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/gguf_reference_test.py --threads 2)
set_tests_properties(e2e.gguf.reference_runs PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e" TIMEOUT 300)

# llama.cpp (node-llama-cpp 3.21.1, CPU) loads Quantd's output and generates.
foreach(type Q4_K_M Q8_0 IQ4_XS TQ1_0 TQ2_0)
  add_test(NAME e2e.gguf.llama_generate.${type}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/gguf_llama_e2e.sh ${type})
  set_tests_properties(e2e.gguf.llama_generate.${type} PROPERTIES
    ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e" TIMEOUT 300)
endforeach()

# GGUF jobs through the service: quantd serve + quantctl quantize.
if(TARGET quantctl)
  add_test(NAME e2e.gguf.service_quantctl
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/gguf_service_test.sh $<TARGET_FILE:quantctl>)
  set_tests_properties(e2e.gguf.service_quantctl PROPERTIES
    ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e" TIMEOUT 120)
endif()

# The same 20 runs single-threaded (the synchronous writer path).
add_test(NAME e2e.gguf.reference_runs_1thread
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/gguf_reference_test.py --threads 1)
set_tests_properties(e2e.gguf.reference_runs_1thread PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e" TIMEOUT 300)

# Byte identity with llama-quantize given an importance matrix (27 shared
# reference runs; the lattice types not written by this build are checked to
# be refused cleanly), with the legacy .dat and with the same matrix in
# llama.cpp's GGUF imatrix layout.
add_test(NAME e2e.gguf.imatrix_reference_runs
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/gguf_imatrix_reference_test.py --threads 2)
set_tests_properties(e2e.gguf.imatrix_reference_runs PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e" TIMEOUT 300)
add_test(NAME e2e.gguf.imatrix_reference_runs_gguf_matrix
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/gguf_imatrix_reference_test.py --threads 1
          --imatrix-format gguf)
set_tests_properties(e2e.gguf.imatrix_reference_runs_gguf_matrix PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e" TIMEOUT 300)

# Split models: quantd splits tiny-llama into 3 parts; the parts quantize to
# the bytes of the whole; --keep-split output loads and generates in llama.cpp.
add_test(NAME e2e.gguf.split_parts
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/gguf_split_e2e.sh)
set_tests_properties(e2e.gguf.split_parts PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e" TIMEOUT 300)

# Importance matrices and split models through the service (quantctl).
if(TARGET quantctl)
  add_test(NAME e2e.gguf.imatrix_service
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/gguf_imatrix_service_test.sh $<TARGET_FILE:quantctl>)
  set_tests_properties(e2e.gguf.imatrix_service PROPERTIES
    ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e" TIMEOUT 180)
endif()
