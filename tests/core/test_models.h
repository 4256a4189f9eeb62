// Helpers that build small ONNX models in memory for core tests.
#ifndef QUANTD_TESTS_CORE_TEST_MODELS_H_
#define QUANTD_TESTS_CORE_TEST_MODELS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"

namespace quantd::testing {

// A FLOAT tensor with raw_data.
onnx::TensorProto FloatTensor(const std::string& name, std::vector<int64_t> dims,
                              const std::vector<float>& values);
// A tensor of `type` with `raw` bytes.
onnx::TensorProto RawTensor(const std::string& name, int32_t type, std::vector<int64_t> dims,
                            const std::string& raw);

onnx::ValueInfoProto Value(const std::string& name, int32_t elem_type, std::vector<int64_t> dims);

onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op, const std::string& name,
                         std::vector<std::string> inputs, std::vector<std::string> outputs);

// x[1,4] -> MatMul(W[4,3]) -> Add(b[3]) -> Relu -> Sigmoid -> y[1,3], opset 17.
onnx::ModelProto SmallMlp();

// A fresh empty temp directory, removed by the caller (or left in /tmp).
std::string MakeTempDir(const std::string& prefix);

// Writes `proto` to `path`; dies on failure.
void WriteModel(const onnx::ModelProto& proto, const std::string& path);
onnx::ModelProto ReadModelProto(const std::string& path);

std::vector<float> RandomFloats(size_t n, uint32_t seed, float scale = 1.0f);

// w [k, n] row-major as stored by column: element (i, j) at j * k + i.
template <typename T>
std::vector<T> StoredByColumn(const std::vector<T>& w, int64_t k, int64_t n) {
  std::vector<T> out(w.size());
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < n; ++j) out[j * k + i] = w[i * n + j];
  }
  return out;
}

// Nodes of `g` (not subgraphs) with op type `op`; the first node named `name`;
// the first node of type `op`; the initializer named `name` (null: none).
int CountOps(const onnx::GraphProto& g, const std::string& op);
const onnx::NodeProto* FindNode(const onnx::GraphProto& g, const std::string& name);
const onnx::NodeProto* NodeOfType(const onnx::GraphProto& g, const std::string& op);
const onnx::TensorProto* Init(const onnx::GraphProto& g, const std::string& name);

}  // namespace quantd::testing

#endif  // QUANTD_TESTS_CORE_TEST_MODELS_H_
