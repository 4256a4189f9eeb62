// Recipe validation as the service does it (quantd.v1.Recipe bytes ->
// core::Recipe -> ValidateRecipe -> canonical form), then, for a valid
// recipe, a conversion of a small ONNX model with it (name patterns, block
// lists, types and limits all reach the converter).
#include <cstdint>
#include <cstdlib>

#include "fuzz_util.h"
#include "quantd/api/recipe_proto.h"
#include "quantd/core/recipe.h"
#include "quantd/core/run.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quantd;
  v1::Recipe proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto recipe = api::RecipeFromProto(proto);
  if (!recipe.ok()) return 0;
  if (!core::ValidateRecipe(*recipe).ok()) return 0;
  (void)core::CanonicalRecipe(*recipe);
  if (recipe->format == core::ModelFormat::kGguf || recipe->format == core::ModelFormat::kMlx) {
    return 0;
  }
  recipe->format = core::ModelFormat::kOnnx;
  recipe->threads = 1;
  auto& scratch = fuzz::Scratch::Get();
  scratch.Reset();
  const char* model = std::getenv("QUANTD_FUZZ_ONNX_MODEL");
  (void)core::Run(*recipe, model != nullptr ? model : QUANTD_FUZZ_ONNX_MODEL_DEFAULT,
                  scratch.dir() + "/out.onnx");
  return 0;
}
