// Writes a synthetic llama-shaped F32 GGUF model for the speed benchmark.
//
// Default shape: 16 blocks, n_embd 1024, n_ff 2816, 16 heads (4 KV heads),
// vocab 32768: 247.4 M weights, the size llama-quantize was timed on.
// Weights are Gaussian (std 0.02) from a fixed seed, so runs are comparable.
//
// Usage: gguf_gen_model OUT.gguf [layers embd ff vocab]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quantd/core/base/atomic_file.h"
#include "quantd/core/gguf/gguf_file.h"

using namespace quantd::core;
using namespace quantd::core::gguf;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.gguf [layers embd ff vocab]\n", argv[0]);
    return 2;
  }
  const int layers = argc > 2 ? std::atoi(argv[2]) : 16;
  const int64_t e = argc > 3 ? std::atoll(argv[3]) : 1024;
  const int64_t ff = argc > 4 ? std::atoll(argv[4]) : 2816;
  const int64_t vocab = argc > 5 ? std::atoll(argv[5]) : 32768;
  const int heads = 16, kv_heads = 4;
  const int64_t kv = e / heads * kv_heads;

  std::vector<GgufTensorInfo> tensors;
  auto add = [&](std::string name, std::vector<int64_t> ne) {
    GgufTensorInfo t;
    t.name = std::move(name);
    t.ne = std::move(ne);
    t.type = GgmlType::kF32;
    t.nbytes = static_cast<uint64_t>(t.Elements()) * 4;
    tensors.push_back(std::move(t));
  };
  add("token_embd.weight", {e, vocab});
  for (int i = 0; i < layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", {e});
    add(p + "attn_q.weight", {e, e});
    add(p + "attn_k.weight", {e, kv});
    add(p + "attn_v.weight", {e, kv});
    add(p + "attn_output.weight", {e, e});
    add(p + "ffn_norm.weight", {e});
    add(p + "ffn_gate.weight", {e, ff});
    add(p + "ffn_up.weight", {e, ff});
    add(p + "ffn_down.weight", {ff, e});
  }
  add("output_norm.weight", {e});
  add("output.weight", {e, vocab});
  std::vector<GgufKv> kvs = {
      GgufKv::String("general.architecture", "llama"),
      GgufKv::String("general.name", "quantd-bench"),
      GgufKv::Uint32("llama.context_length", 2048),
      GgufKv::Uint32("llama.embedding_length", static_cast<uint32_t>(e)),
      GgufKv::Uint32("llama.block_count", static_cast<uint32_t>(layers)),
      GgufKv::Uint32("llama.feed_forward_length", static_cast<uint32_t>(ff)),
      GgufKv::Uint32("llama.attention.head_count", heads),
      GgufKv::Uint32("llama.attention.head_count_kv", kv_heads),
      GgufKv::Uint32("llama.rope.dimension_count", static_cast<uint32_t>(e / heads)),
      GgufKv::Uint32("general.file_type", 0),
  };
  // llama-quantize loads the llama hyper-parameters and refuses a file
  // without the RMS norm epsilon (a float32 scalar, little-endian).
  {
    const float eps = 1e-5f;
    std::string raw(sizeof(eps), '\0');
    std::memcpy(raw.data(), &eps, sizeof(eps));
    kvs.push_back({"llama.attention.layer_norm_rms_epsilon", GgufValueType::kFloat32, raw});
  }
  LayoutTensors(&tensors, kGgufDefaultAlignment);
  const std::string header = SerializeHeader(kvs, tensors);
  auto writer = AtomicFileWriter::Create(argv[1]);
  if (!writer.ok()) {
    std::fprintf(stderr, "%s\n", writer.status().ToString().c_str());
    return 1;
  }
  auto& w = **writer;
  (void)w.Write(header.data(), header.size());
  (void)w.PadTo(kGgufDefaultAlignment);
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> buf;
  int64_t total = 0;
  for (const auto& t : tensors) {
    buf.resize(static_cast<size_t>(t.Elements()));
    if (t.ne.size() == 1) {
      for (auto& v : buf) v = 1.0f;
    } else {
      for (auto& v : buf) v = normal(rng);
    }
    total += t.Elements();
    (void)w.Write(buf.data(), buf.size() * 4);
    (void)w.PadTo(kGgufDefaultAlignment);
  }
  auto st = w.Commit();
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("wrote %s: %zu tensors, %.1f M weights\n", argv[1], tensors.size(), total / 1e6);
  return 0;
}
