// INT4 and INT8 benchmarks.
//
//  * Throughput of the INT4 RTN kernel (MatMulNBits layout and QDQ) in GB/s
//    of FP32 input, one thread and all threads, beside memcpy of the same
//    bytes in the same run (bytes_per_second is the input size / time).
//  * The whole-matrix drivers with their quality report, INT4 RTN beside
//    INT8 (the LM head / --precision int8 / --int8-layers path), at each
//    report level (none, summary, full) and 1 or 2 threads, timed in
//    process CPU seconds (every thread; robust on a shared machine): counter
//    ns_per_weight is CPU nanoseconds per weight.
//  * Quality of --algorithm search vs RTN on heavy-tailed weights: counters
//    sqnr_rtn_db, sqnr_search_db and gain_db (whole-matrix SQNR).
//
//   int4_bench [--benchmark_filter=...]
//   QUANTD_CPU=sse2 int4_bench ...   (the kernels of a lower CPU level)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "quantd/core/quant/int4_blockwise.h"
#include "quantd/core/quant/quality.h"
#include "quantd/core/quant/weight_quantizer.h"

namespace {

using quantd::core::quant::DequantizeInt4;
using quantd::core::quant::Int4Algorithm;
using quantd::core::quant::Int4Layout;
using quantd::core::quant::Int4Options;
using quantd::core::quant::Int8Options;
using quantd::core::quant::Int8Type;
using quantd::core::quant::MatrixSource;
using quantd::core::quant::QualityLevel;

constexpr int64_t kK = 4096, kN = 4096;  // 64 MiB of FP32: beyond every cache

const std::vector<float>& Weights() {
  static const auto* w = [] {
    auto* v = new std::vector<float>(kK * kN);
    quantd::core::quant::FillGaussian(1, v->data(), static_cast<int64_t>(v->size()));
    for (auto& x : *v) x *= 0.02f;
    return v;
  }();
  return *w;
}

// Weight distributions for the search benchmark: 0 Gaussian, 1 Laplace,
// 2 Student-t(3) with 0.1% outliers x10 (heavy-tailed, "realistic").
std::vector<float> Distribution(int64_t k, int64_t n, int kind, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::exponential_distribution<float> e(1.0f);
  std::student_t_distribution<float> t(3.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> w(k * n);
  for (auto& x : w) {
    if (kind == 0) {
      x = 0.02f * g(rng);
    } else if (kind == 1) {
      x = 0.02f * e(rng) * (u(rng) < 0.5f ? -1.0f : 1.0f);
    } else {
      x = 0.02f * t(rng);
      if (u(rng) < 0.001f) x *= 10.0f;
    }
  }
  return w;
}

int AllThreads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

void BM_Memcpy(benchmark::State& state) {
  const auto& w = Weights();
  std::vector<float> dst(w.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), w.data(), w.size() * sizeof(float));
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size() * sizeof(float)));
}
BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

// args: block size, symmetric, layout (0 MatMulNBits, 1 QDQ), threads (0 = all)
void BM_Int4Rtn(benchmark::State& state) {
  const auto& w = Weights();
  Int4Options o;
  o.block_size = static_cast<int>(state.range(0));
  o.symmetric = state.range(1) != 0;
  o.layout = state.range(2) == 0 ? Int4Layout::kMatMulNBits : Int4Layout::kQdq;
  const int threads = state.range(3) == 0 ? AllThreads() : static_cast<int>(state.range(3));
  MatrixSource src;
  src.bytes = {reinterpret_cast<const uint8_t*>(w.data()), w.size() * sizeof(float)};
  src.k = kK;
  src.n = kN;
  src.row_stride = kN;
  quantd::core::ThreadPool pool(threads - 1);  // the benchmark thread is the other one
  quantd::core::RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = threads;
  for (auto _ : state) {
    auto r = quantd::core::quant::QuantizeInt4Matrix(src, o, ctx, nullptr);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    benchmark::DoNotOptimize(r->packed.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size() * sizeof(float)));
  state.counters["threads"] = threads;
}
BENCHMARK(BM_Int4Rtn)
    ->ArgNames({"bs", "sym", "qdq", "threads"})
    ->Args({32, 1, 0, 1})
    ->Args({32, 1, 0, 0})
    ->Args({32, 0, 0, 1})
    ->Args({128, 1, 0, 1})
    ->Args({32, 1, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// args: int8 (0: INT4 RTN bs 32 symmetric; 1: INT8, row-major W[K, N] as
// MatMul weights are; 2: INT8 of W stored [N, K], as Gemm transB weights
// are), report (0 none, 1 summary, 2 full), threads (0 = all). INT8 is per
// channel QInt8, as the LM head of an INT4 model; codes row-major [K, N].
void BM_MatrixReport(benchmark::State& state) {
  const auto& w = Weights();
  const bool int8 = state.range(0) != 0;
  const bool transposed = state.range(0) == 2;
  const int report = static_cast<int>(state.range(1));
  const int threads = state.range(2) == 0 ? AllThreads() : static_cast<int>(state.range(2));
  MatrixSource src;
  src.bytes = {reinterpret_cast<const uint8_t*>(w.data()), w.size() * sizeof(float)};
  src.k = kK;
  src.n = kN;
  src.row_stride = transposed ? 1 : kN;
  src.col_stride = transposed ? kK : 1;
  Int8Options o8;
  o8.per_channel = true;
  o8.out_row_stride = kN;
  quantd::core::ThreadPool pool(threads - 1);
  quantd::core::RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = threads;
  const QualityLevel level = report == 2 ? QualityLevel::kFull : QualityLevel::kSampled;
  for (auto _ : state) {
    quantd::core::TensorReport q;
    quantd::core::TensorReport* qp = report == 0 ? nullptr : &q;
    if (int8) {
      auto r = quantd::core::quant::QuantizeInt8Matrix(src, o8, ctx, qp, level);
      if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
      benchmark::DoNotOptimize(r->data.data());
    } else {
      auto r = quantd::core::quant::QuantizeInt4Matrix(src, Int4Options{}, ctx, qp, level);
      if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
      benchmark::DoNotOptimize(r->packed.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size() * sizeof(float)));
  state.counters["threads"] = threads;
  state.counters["ns_per_weight"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(w.size()) * 1e-9,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_MatrixReport)
    ->ArgNames({"int8", "report", "threads"})
    ->ArgsProduct({{0, 1, 2}, {0, 1, 2}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();

// SQNR of RTN vs search, whole matrix. args: block size, symmetric,
// distribution (0 Gaussian, 1 Laplace, 2 t(3) + outliers).
void BM_Int4SearchQuality(benchmark::State& state) {
  const int64_t k = 1024, n = 256;
  const std::vector<float> w = Distribution(k, n, static_cast<int>(state.range(2)), 42);
  Int4Options rtn;
  rtn.block_size = static_cast<int>(state.range(0));
  rtn.symmetric = state.range(1) != 0;
  Int4Options search = rtn;
  search.algorithm = Int4Algorithm::kSearch;
  MatrixSource src;
  src.bytes = {reinterpret_cast<const uint8_t*>(w.data()), w.size() * sizeof(float)};
  src.k = k;
  src.n = n;
  src.row_stride = n;
  quantd::core::TensorReport q_rtn, q_search;
  for (auto _ : state) {
    auto r = quantd::core::quant::QuantizeInt4Matrix(src, search, {}, &q_search);
    benchmark::DoNotOptimize(r->packed.data());
  }
  auto r = quantd::core::quant::QuantizeInt4Matrix(src, rtn, {}, &q_rtn);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size() * sizeof(float)));
  state.counters["sqnr_rtn_db"] = *q_rtn.sqnr_db;
  state.counters["sqnr_search_db"] = *q_search.sqnr_db;
  state.counters["gain_db"] = *q_search.sqnr_db - *q_rtn.sqnr_db;
  state.counters["out_err_rtn"] = *q_rtn.rel_output_error;
  state.counters["out_err_search"] = *q_search.rel_output_error;
}
BENCHMARK(BM_Int4SearchQuality)
    ->ArgNames({"bs", "sym", "dist"})
    ->ArgsProduct({{32, 128}, {1, 0}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
