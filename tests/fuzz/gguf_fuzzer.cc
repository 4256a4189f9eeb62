// GGUF parsing, then a conversion (llama-quantize compatible): the input is
// a .gguf file; its size picks the target type.
#include <cstdint>

#include "absl/types/span.h"
#include "fuzz_util.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/run.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quantd;
  auto& scratch = fuzz::Scratch::Get();
  scratch.Reset();
  (void)core::gguf::GgufFile::Parse(absl::Span<const uint8_t>(data, size));
  const std::string in = scratch.dir() + "/model.gguf";
  fuzz::WriteFile(in, absl::string_view(reinterpret_cast<const char*>(data), size));
  core::Recipe recipe;
  recipe.format = core::ModelFormat::kGguf;
  const char* kTypes[] = {"Q8_0", "Q4_0", "Q4_K_M", "F16", "Q6_K", "Q4_1", "Q5_0", "Q5_1", "BF16"};
  recipe.gguf_type = kTypes[size % (sizeof(kTypes) / sizeof(kTypes[0]))];
  recipe.allow_requantize = true;
  (void)core::Run(recipe, in, scratch.dir() + "/out.gguf");
  return 0;
}
