# Opset conversion: an opset-9 model whose ops changed meaning after 9 is
# converted by ONNX's version converter and quantized (INT8 weight-only,
# dynamic, INT4 QDQ); ONNX Runtime's outputs must agree with the original's.
add_test(NAME e2e.opset.upgrade COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/opset_upgrade_test.sh)
set_tests_properties(e2e.opset.upgrade PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS e2e TIMEOUT 300)
