# Hugging Face checkpoint -> ONNX Runtime GenAI folder end-to-end tests
# (genai_test.sh says what each checks). Included from
# tests/e2e/CMakeLists.txt.
foreach(name phi3-tiny-shared llama-tiny-shared)
  add_test(NAME e2e.genai.${name}.MatchesReferenceForwardPass
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/genai_test.sh reference ${name})
  add_test(NAME e2e.genai.${name}.QuantizedEqualsDequantizedFloat
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/genai_test.sh dequantized ${name})
  set_tests_properties(e2e.genai.${name}.MatchesReferenceForwardPass
    e2e.genai.${name}.QuantizedEqualsDequantizedFloat PROPERTIES
    ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "onnx;e2e;genai" TIMEOUT 300)
endforeach()
add_test(NAME e2e.genai.GeneratedCheckpointsAgreeWithLlamaCpp
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/genai_test.sh llamacpp)
set_tests_properties(e2e.genai.GeneratedCheckpointsAgreeWithLlamaCpp PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "onnx;e2e;genai;gguf" TIMEOUT 300)
