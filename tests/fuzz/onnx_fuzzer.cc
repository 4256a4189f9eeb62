// ONNX model loading with external data, then a conversion: the input is a
// model.onnx and its model.onnx.data (fuzz_util.h layout); the first byte of
// the model picks the precision (FP16, FP32, INT8, INT4).
#include <cstdint>

#include "fuzz_util.h"
#include "quantd/core/run.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quantd;
  auto& scratch = fuzz::Scratch::Get();
  scratch.Reset();
  auto [model, external] = fuzz::SplitTwo(data, size);
  const std::string in = scratch.dir() + "/model.onnx";
  fuzz::WriteFile(in, model);
  fuzz::WriteFile(scratch.dir() + "/model.onnx.data", external);
  core::Recipe recipe;
  recipe.format = core::ModelFormat::kOnnx;
  const core::Precision kPrecisions[] = {core::Precision::kFp16, core::Precision::kFp32,
                                         core::Precision::kInt8, core::Precision::kInt4};
  recipe.precision = kPrecisions[model.empty() ? 0 : static_cast<uint8_t>(model[0]) % 4];
  (void)core::Run(recipe, in, scratch.dir() + "/out.onnx");
  return 0;
}
