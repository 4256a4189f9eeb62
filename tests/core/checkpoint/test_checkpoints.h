// Writers of small safetensors files and checkpoint folders for the
// checkpoint reader tests. Every value is a deterministic function of the
// tensor name and index, so tests can recompute what they wrote.
#ifndef QUANTD_TESTS_CORE_CHECKPOINT_TEST_CHECKPOINTS_H_
#define QUANTD_TESTS_CORE_CHECKPOINT_TEST_CHECKPOINTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quantd::core::checkpoint::testing {

struct FakeTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype = "F32";  // F32, F16, BF16 (anything else: 2 bytes of zeros per element)
};

// The value element `i` of tensor `name` holds (before F16/BF16 rounding).
float FakeValue(const std::string& name, int64_t i);

// A whole safetensors file: 8-byte length, JSON header, data (tensors in the
// given order, contiguous).
std::string SafetensorsBytes(const std::vector<FakeTensor>& tensors);
// A file with an arbitrary header text and data section.
std::string RawSafetensors(const std::string& header, const std::string& data);

void WriteBytes(const std::string& path, const std::string& bytes);

// config.json of a tiny model: hidden 64, 2 layers, 4 heads / `kv_heads`,
// intermediate 96, vocab 128.
nlohmann::json TinyConfig(const std::string& architecture, int kv_heads = 2);

// The tensors a checkpoint of `config` holds (HF names and shapes).
std::vector<FakeTensor> TinyTensors(const nlohmann::json& config, const std::string& dtype = "F32");

// Writes config.json and the tensors: one model.safetensors when shards == 1,
// else `shards` files with an index (tensor k goes to shard k % shards).
void WriteCheckpoint(const std::string& dir, const nlohmann::json& config,
                     const std::vector<FakeTensor>& tensors, int shards = 1);

}  // namespace quantd::core::checkpoint::testing

#endif  // QUANTD_TESTS_CORE_CHECKPOINT_TEST_CHECKPOINTS_H_
