// Hugging Face checkpoint parsing (config.json, safetensors), then a
// conversion to GGUF: the input is config.json and model.safetensors
// (fuzz_util.h layout); the safetensors reader also runs on its own.
#include <cstdint>

#include "fuzz_util.h"
#include "quantd/core/checkpoint/safetensors.h"
#include "quantd/core/run.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quantd;
  auto& scratch = fuzz::Scratch::Get();
  scratch.Reset();
  auto [config, weights] = fuzz::SplitTwo(data, size);
  const std::string folder = scratch.dir() + "/tiny-fuzz";
  std::filesystem::create_directories(folder);
  fuzz::WriteFile(folder + "/config.json", config);
  fuzz::WriteFile(folder + "/model.safetensors", weights);
  auto file = core::checkpoint::SafetensorsFile::Open(folder + "/model.safetensors");
  if (file.ok()) {
    uint64_t sum = 0;
    for (const auto& t : (*file)->tensors()) {
      auto bytes = (*file)->Data(t);
      if (!bytes.empty()) sum += bytes[0] + bytes[bytes.size() - 1];
    }
    (void)sum;
  }
  (void)core::checkpoint::JsonNestingDepth(config);
  core::Recipe recipe;
  const char* kTypes[] = {"F32", "F16", "Q8_0", "Q4_K_M"};
  recipe.gguf_type = kTypes[size % 4];
  (void)core::Run(recipe, folder, scratch.dir() + "/out.gguf");
  return 0;
}
