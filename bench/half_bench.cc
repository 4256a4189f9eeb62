// FP32 -> FP16 conversion kernel throughput against memcpy of the same FP32
// buffer, on one core. Prints the ratio (target: >= 60 % of memcpy).
//
//   build/bench/half_bench [--benchmark_filter=...]
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "quantd/core/base/half.h"

namespace {

std::vector<float> Input(size_t n) {
  std::mt19937 gen(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

void BM_Memcpy(benchmark::State& state) {
  const size_t n = state.range(0);
  auto in = Input(n);
  std::vector<float> out(n);
  for (auto _ : state) {
    std::memcpy(out.data(), in.data(), n * sizeof(float));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * n * sizeof(float));
}

void BM_FloatToHalf(benchmark::State& state) {
  const size_t n = state.range(0);
  auto in = Input(n);
  std::vector<uint16_t> out(n);
  quantd::core::NarrowingStats stats;
  for (auto _ : state) {
    quantd::core::FloatToHalfSpan(in.data(), out.data(), n, &stats);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * n * sizeof(float));
}

void BM_FloatToHalfRef(benchmark::State& state) {
  const size_t n = state.range(0);
  auto in = Input(n);
  std::vector<uint16_t> out(n);
  quantd::core::NarrowingStats stats;
  for (auto _ : state) {
    quantd::core::FloatToHalfSpan_ref(in.data(), out.data(), n, &stats);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * n * sizeof(float));
}

void BM_HalfToFloat(benchmark::State& state) {
  const size_t n = state.range(0);
  auto in = Input(n);
  std::vector<uint16_t> half(n);
  quantd::core::NarrowingStats stats;
  quantd::core::FloatToHalfSpan(in.data(), half.data(), n, &stats);
  std::vector<float> out(n);
  for (auto _ : state) {
    quantd::core::HalfToFloatSpan(half.data(), out.data(), n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * n * sizeof(float));
}

// 256 Ki floats (1 MiB, in cache) and 16 Mi floats (64 MiB, memory bound).
#define SIZES Arg(1 << 18)->Arg(1 << 24)
BENCHMARK(BM_Memcpy)->SIZES;
BENCHMARK(BM_FloatToHalf)->SIZES;
BENCHMARK(BM_FloatToHalfRef)->SIZES;
BENCHMARK(BM_HalfToFloat)->SIZES;

// Collects bytes/s per benchmark to print ratios against memcpy.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      // With --benchmark_repetitions: ratios of the mean and the median only
      // (a ratio of two standard deviations or two CVs means nothing).
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "mean" &&
          r.aggregate_name != "median") {
        continue;
      }
      auto it = r.counters.find("bytes_per_second");
      if (it != r.counters.end()) rates_[r.benchmark_name()] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void PrintRatios() const {
    std::printf("\nthroughput relative to memcpy of the same FP32 buffer (one core):\n");
    for (const auto& [name, rate] : rates_) {
      auto slash = name.find('/');
      std::string size = name.substr(slash);
      auto base = rates_.find("BM_Memcpy" + size);
      if (base == rates_.end() || name.rfind("BM_Memcpy", 0) == 0) continue;
      std::printf("  %-28s %6.2f GB/s  = %5.1f %% of memcpy (%.2f GB/s)\n", name.c_str(),
                  rate / 1e9, 100.0 * rate / base->second, base->second / 1e9);
    }
  }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
