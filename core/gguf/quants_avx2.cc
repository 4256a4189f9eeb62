// Placeholder AVX2 kernels: call the references until vector versions land.
#include "quants_internal.h"

namespace quantd::core::gguf::internal {

void QuantizeQ4_K_avx2(const float* x, BlockQ4_K* y, int64_t n) { QuantizeQ4_K_ref(x, y, n); }
void QuantizeQ5_K_avx2(const float* x, BlockQ5_K* y, int64_t n) { QuantizeQ5_K_ref(x, y, n); }
void QuantizeQ6_K_avx2(const float* x, BlockQ6_K* y, int64_t n) { QuantizeQ6_K_ref(x, y, n); }
void QuantizeQ3_K_avx2(const float* x, BlockQ3_K* y, int64_t n) { QuantizeQ3_K_ref(x, y, n); }
void QuantizeQ2_K_avx2(const float* x, BlockQ2_K* y, int64_t n) { QuantizeQ2_K_ref(x, y, n); }

}  // namespace quantd::core::gguf::internal
