# Hugging Face checkpoint -> GGUF end-to-end tests. Included from
# tests/e2e/CMakeLists.txt.

# Byte identity with llama.cpp's convert_hf_to_gguf.py (b4747) for both shared
# checkpoints x F32/F16/BF16/Q8_0. Until the tokenizer reader
# (core/checkpoint/tokenizer_gguf.cc) is part of the tree, outputs carry no
# tokenizer.* metadata and the test splices the reference's tokenizer KVs in
# before hashing; once it is, --require-tokenizer makes every comparison a
# plain full-file sha256.
set(_ckpt_test_args "")
if(EXISTS "${PROJECT_SOURCE_DIR}/core/checkpoint/tokenizer_gguf.cc")
  set(_ckpt_test_args "--require-tokenizer")
endif()
add_test(NAME e2e.checkpoint.ConvertMatchesReference
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/checkpoint_gguf_test.py ${_ckpt_test_args})
set_tests_properties(e2e.checkpoint.ConvertMatchesReference PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e;checkpoint" TIMEOUT 300)
