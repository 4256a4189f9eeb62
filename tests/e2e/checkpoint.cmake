# Hugging Face checkpoint -> GGUF end-to-end tests. Included from
# tests/e2e/CMakeLists.txt.

# Byte identity with llama.cpp's convert_hf_to_gguf.py (b4747) for both shared
# checkpoints x F32/F16/BF16/Q8_0: every comparison a plain full-file sha256,
# tokenizer.* metadata included (--require-tokenizer).
set(_ckpt_test_args "--require-tokenizer")
add_test(NAME e2e.checkpoint.ConvertMatchesReference
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/checkpoint_gguf_test.py ${_ckpt_test_args})
set_tests_properties(e2e.checkpoint.ConvertMatchesReference PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e;checkpoint" TIMEOUT 300)

# Generated checkpoints (Qwen2 biases + tied, Phi-4-mini-like partial rotary +
# LongRoPE + tied, Llama GQA; F16/BF16, sharded) convert and load in llama.cpp.
# Needs tokenizer metadata, so it runs once the tokenizer reader is in the tree.
if(EXISTS "${PROJECT_SOURCE_DIR}/core/checkpoint/tokenizer_gguf.cc")
  add_test(NAME e2e.checkpoint.GeneratedCheckpointsLoadInLlamaCpp
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/checkpoint_generated_test.sh)
  set_tests_properties(e2e.checkpoint.GeneratedCheckpointsLoadInLlamaCpp PROPERTIES
    ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e;checkpoint" TIMEOUT 300)
endif()
