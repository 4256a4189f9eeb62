// MLX affine benchmarks.
//
//   mlx_bench kernel [--benchmark_filter=...]
//       Throughput of the affine kernel (scalar reference and AVX2) on a
//       4096 x 4096 BF16 weight, in GB/s of input, beside memcpy.
//   mlx_bench folder OUT_DIR [LAYERS] [BITS] [noquality] [threads=N]
//       A Phi-3.5-mini-shaped BF16 checkpoint (hidden 3072, intermediate 8192,
//       vocab 32064, 32 layers unless LAYERS is given; 3.8 B parameters,
//       7.6 GB) written as an MLX folder (default 4 bits, group 64): wall time,
//       throughput and peak RSS. Tensors are views into one 256 MiB pool of
//       random BF16 values, so the time is quantize + write, and the pool is
//       the floor of the RSS. threads=N quantizes rows on N threads (the
//       caller and a pool of N - 1); the files do not change.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "core/quant/mlx_affine_avx2.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/mlx/mlx_folder_writer.h"
#include "quantd/core/quant/mlx_affine.h"
#include "quantd/core/quant/quality.h"

namespace {

using quantd::core::quant::MlxFloatType;

const std::vector<uint16_t>& Bf16Pool(size_t n) {
  static std::vector<uint16_t>* pool = nullptr;
  if (pool == nullptr || pool->size() < n) {
    delete pool;
    pool = new std::vector<uint16_t>(n);
    std::vector<float> f(1 << 20);  // in chunks: the pool is the only big allocation
    for (size_t i0 = 0; i0 < n; i0 += f.size()) {
      const size_t m = std::min(f.size(), n - i0);
      quantd::core::quant::FillGaussian(3 + i0, f.data(), static_cast<int64_t>(m));
      for (size_t i = 0; i < m; ++i) (*pool)[i0 + i] = quantd::core::FloatToBfloat16(0.02f * f[i]);
    }
  }
  return *pool;
}

constexpr int64_t kRows = 4096, kCols = 4096;

template <bool kAvx2>
void BM_MlxAffineBf16(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  if (kAvx2 && !quantd::core::quant::MlxAffineAvx2Available()) {
    state.SkipWithError("no AVX2");
    return;
  }
  const auto& w = Bf16Pool(kRows * kCols);
  std::vector<uint8_t> packed(kRows * kCols * bits / 8);
  std::vector<uint16_t> scales(kRows * kCols / 64), biases(kRows * kCols / 64);
  for (auto _ : state) {
    if (kAvx2) {
      quantd::core::quant::QuantizeMlxAffine_avx2(MlxFloatType::kBF16, bits, 64, w.data(), kRows,
                                                  kCols, kCols, packed.data(), scales.data(),
                                                  biases.data());
    } else {
      quantd::core::quant::QuantizeMlxAffine_ref(MlxFloatType::kBF16, bits, 64, w.data(), kRows,
                                                 kCols, kCols, packed.data(), scales.data(),
                                                 biases.data());
    }
    benchmark::DoNotOptimize(packed.data());
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * 2);
}
BENCHMARK(BM_MlxAffineBf16<false>)->Arg(3)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MlxAffineBf16<true>)->Arg(3)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);

void BM_Memcpy(benchmark::State& state) {
  const auto& w = Bf16Pool(kRows * kCols);
  std::vector<uint16_t> out(w.size());
  for (auto _ : state) {
    std::memcpy(out.data(), w.data(), w.size() * 2);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * 2);
}
BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond);

int RunFolder(const std::string& out_dir, int layers, int bits, bool quality, int threads) {
  constexpr int64_t kHidden = 3072, kInter = 8192, kVocab = 32064;
  const size_t pool_elems = size_t{128} << 20;  // 256 MiB of BF16
  const auto& pool = Bf16Pool(pool_elems);
  std::vector<quantd::core::mlx::MlxSourceTensor> sources;
  size_t cursor = 0;
  uint64_t input_bytes = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (cursor + n > pool.size()) cursor = 0;
    const uint8_t* p = reinterpret_cast<const uint8_t*>(pool.data() + cursor);
    cursor += static_cast<size_t>(n);
    input_bytes += n * 2;
    sources.push_back({name, "BF16", shape,
                       [p, n]() -> absl::StatusOr<absl::Span<const uint8_t>> {
                         return absl::Span<const uint8_t>(p, n * 2);
                       },
                       nullptr});
  };
  add("model.embed_tokens.weight", {kVocab, kHidden});
  for (int i = 0; i < layers; ++i) {
    const std::string l = absl::StrCat("model.layers.", i, ".");
    add(l + "input_layernorm.weight", {kHidden});
    add(l + "mlp.down_proj.weight", {kHidden, kInter});
    add(l + "mlp.gate_up_proj.weight", {2 * kInter, kHidden});
    add(l + "post_attention_layernorm.weight", {kHidden});
    add(l + "self_attn.o_proj.weight", {kHidden, kHidden});
    add(l + "self_attn.qkv_proj.weight", {3 * kHidden, kHidden});
  }
  add("model.norm.weight", {kHidden});
  add("lm_head.weight", {kVocab, kHidden});
  const std::string config = absl::StrCat(
      R"({"architectures":["Phi3ForCausalLM"],"model_type":"phi3","hidden_size":3072,)",
      R"("intermediate_size":8192,"num_hidden_layers":)", layers,
      R"(,"vocab_size":32064,"torch_dtype":"bfloat16","tie_word_embeddings":false})");
  std::filesystem::remove_all(out_dir);
  quantd::core::mlx::MlxFolderOptions opt;
  opt.quant.bits = bits;
  opt.compute_quality = quality;
  struct rusage before;
  getrusage(RUSAGE_SELF, &before);
  const auto t0 = std::chrono::steady_clock::now();
  quantd::core::ThreadPool thread_pool(threads - 1);
  quantd::core::RunContext ctx;
  ctx.pool = &thread_pool;
  ctx.parallelism = threads;
  auto r = quantd::core::mlx::WriteMlxFolder(sources, config, "", {}, out_dir, opt, ctx);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return 1;
  }
  struct rusage after;
  getrusage(RUSAGE_SELF, &after);
  auto cpu = [](const struct rusage& u) {
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  const double cpu_secs = cpu(after) - cpu(before);
  double worst_sqnr = 1e9;
  for (const auto& t : r->tensors) {
    if (t.sqnr_db) worst_sqnr = std::min(worst_sqnr, *t.sqnr_db);
  }
  if (!quality) worst_sqnr = NAN;
  std::printf(
      "layers %d, %d-bit g64: %.2f GB BF16 in, %.2f GB out, %zu files, wall %.1f s, CPU %.1f s "
      "(%.2f GB/s of input per CPU second, %d thread(s)), peak RSS %.0f MiB (%.0f MiB before the "
      "run, the 256 MiB pool included), worst tensor SQNR %.2f dB\n",
      layers, bits, input_bytes / 1e9, r->total_size / 1e9, r->files.size(), secs, cpu_secs,
      input_bytes / 1e9 / cpu_secs, threads, after.ru_maxrss / 1024.0, before.ru_maxrss / 1024.0,
      worst_sqnr);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "folder") {
    std::vector<std::string> args(argv + 3, argv + argc);
    int threads = 1;
    if (!args.empty() && args.back().rfind("threads=", 0) == 0) {
      threads = std::max(1, std::atoi(args.back().c_str() + 8));
      args.pop_back();
    }
    return RunFolder(argv[2], args.size() >= 1 ? std::atoi(args[0].c_str()) : 32,
                     args.size() >= 2 ? std::atoi(args[1].c_str()) : 4,
                     !(args.size() >= 3 && args[2] == "noquality"), threads);
  }
  if (argc >= 2 && std::string(argv[1]) == "kernel") {
    argv[1] = argv[0];
    ++argv;
    --argc;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
