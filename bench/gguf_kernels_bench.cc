// GGUF block kernels: reference vs the dispatched variant, for every entry of
// the kernel table, and the weighted quantizers (an importance matrix) of the
// types that have one. The dispatched variant is that of the CPU's level; set
// QUANTD_CPU=scalar|sse2|avx2|avx512 to measure a lower one.
//   build/bench/gguf_kernels_bench --benchmark_filter=Q4_K
//   build/bench/gguf_kernels_bench --benchmark_filter='Weighted/IQ'
#include <cmath>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "quantd/core/gguf/quants.h"

namespace quantd::core::gguf {
namespace {

constexpr int64_t kN = 1 << 18;

const std::vector<float>& Data() {
  static const std::vector<float> data = [] {
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<float> x(kN);
    for (auto& v : x) v = nd(rng);
    return x;
  }();
  return data;
}

void BM_Quantize(benchmark::State& state, GgmlType type, bool reference) {
  const auto& x = Data();
  std::vector<uint8_t> out(RowBytes(type, kN));
  for (auto _ : state) {
    if (reference) {
      QuantizeRow_ref(type, x.data(), out.data(), kN);
    } else {
      QuantizeRow(type, x.data(), out.data(), kN);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

// Rows of 4096 values with a fixed positive importance per column (spread
// over two orders of magnitude, as activations' mean squares are).
void BM_QuantizeWeighted(benchmark::State& state, GgmlType type) {
  constexpr int64_t kRow = 4096;
  const auto& x = Data();
  std::vector<float> importance(kRow);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.0f, 0.0f);
  for (auto& v : importance) v = std::pow(10.0f, u(rng));
  std::vector<uint8_t> out(RowBytes(type, kN));
  for (auto _ : state) {
    QuantizeRows(type, x.data(), out.data(), kN / kRow, kRow, importance.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

void BM_Dequantize(benchmark::State& state, GgmlType type) {
  const auto& x = Data();
  std::vector<uint8_t> q(RowBytes(type, kN));
  QuantizeRow(type, x.data(), q.data(), kN);
  std::vector<float> back(kN);
  for (auto _ : state) {
    DequantizeRow(type, q.data(), back.data(), kN);
    benchmark::DoNotOptimize(back.data());
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

int Register() {
  for (const GgmlKernels& k : AllGgmlKernels()) {
    const GgmlType t = k.type;
    if (t == GgmlType::kF32) continue;  // a memcpy
    const std::string name = TypeName(t);
    benchmark::RegisterBenchmark(("Quantize/" + name + "/ref").c_str(), BM_Quantize, t, true);
    benchmark::RegisterBenchmark(("Quantize/" + name + "/fast").c_str(), BM_Quantize, t, false);
    benchmark::RegisterBenchmark(("Dequantize/" + name).c_str(), BM_Dequantize, t);
    if (k.quantize_weighted != nullptr) {
      benchmark::RegisterBenchmark(("QuantizeWeighted/" + name).c_str(), BM_QuantizeWeighted, t);
    }
  }
  return 0;
}
const int kRegistered = Register();

}  // namespace
}  // namespace quantd::core::gguf

BENCHMARK_MAIN();
