# Hugging Face checkpoint -> GGUF end-to-end tests. Included from
# tests/e2e/CMakeLists.txt.

# Byte identity with llama.cpp's tools for both shared checkpoints:
# F32/F16/BF16/Q8_0 equal convert_hf_to_gguf.py (b4747); the one-step
# Q4_K_M/Q4_0/Q6_K equal convert --outtype f32 followed by llama-quantize.
add_test(NAME e2e.checkpoint.ConvertMatchesReference
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/checkpoint_gguf_test.py)
set_tests_properties(e2e.checkpoint.ConvertMatchesReference PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e;checkpoint" TIMEOUT 300)

# llama.cpp on Quantd's F32 output of each shared checkpoint reproduces the
# reference forward pass (top-1, greedy tokens, log-probs within 1e-3).
add_test(NAME e2e.checkpoint.LlamaCppMatchesReferenceLogits
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/checkpoint_llama_logits_test.sh)
set_tests_properties(e2e.checkpoint.LlamaCppMatchesReferenceLogits PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e;checkpoint" TIMEOUT 300)

# Generated checkpoints (Qwen2 biases + tied, Phi-4-mini-like partial rotary +
# LongRoPE + tied, Llama GQA; F16/BF16, sharded) convert and load in llama.cpp;
# Phi-4-like and Phi-4-mini-like ones with GPT-2 BPE tokenizers rebuilt from
# tiktoken's cl100k_base / o200k_base get llama.cpp's pre-tokenizer names
# (dbrx / gpt-4o) and tokenize in llama.cpp as tiktoken does.
add_test(NAME e2e.checkpoint.GeneratedCheckpointsLoadInLlamaCpp
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/checkpoint_generated_test.sh)
set_tests_properties(e2e.checkpoint.GeneratedCheckpointsLoadInLlamaCpp PROPERTIES
  ENVIRONMENT "${QUANTD_TEST_ENV}" LABELS "gguf;e2e;checkpoint" TIMEOUT 300)
